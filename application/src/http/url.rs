//! `http://` and `ws://` URLs (RFC 9110 §4.2, RFC 6455 §3) as the client and the tools take
//! them: scheme, host, port and the request target, and resolution of a redirect's `Location`
//! against the URL it answered (RFC 3986 §5.2, for the reference forms servers send).

use std::fmt;

/// The schemes this client speaks (no TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `http://`, default port 80.
    Http,
    /// `ws://`, default port 80 (RFC 6455 §3).
    Ws,
}

impl Scheme {
    /// The scheme's name, lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Ws => "ws",
        }
    }
}

/// An absolute `http://` or `ws://` URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    /// The scheme.
    pub scheme: Scheme,
    /// The host: a name (lower-cased) or an IPv4 address.
    pub host: String,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// Whether the URL named the port (kept for the Host field).
    pub explicit_port: bool,
    /// The request target: the path (at least `/`) and any `?query`, without the fragment.
    pub target: String,
}

/// Why a URL was refused; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub String);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UrlError {}

impl From<UrlError> for std::io::Error {
    fn from(e: UrlError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.0)
    }
}

impl Url {
    /// Parses `http://host[:port][/path][?query][#fragment]` (or `ws://`).
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        let (scheme, rest) = match s.split_once("://") {
            Some((sch, rest)) if sch.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            Some((sch, rest)) if sch.eq_ignore_ascii_case("ws") => (Scheme::Ws, rest),
            Some((sch, _)) => {
                return Err(UrlError(format!(
                    "{s}: scheme {sch:?} is not supported; use http:// or ws:// (no TLS)"
                )))
            }
            None => {
                return Err(UrlError(format!(
                    "{s}: not an absolute URL; write it as http://HOST[:PORT]/PATH"
                )))
            }
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError(format!(
                "{s}: user information in URLs is not supported; drop the part before '@'"
            )));
        }
        let (host, port, explicit_port) = match authority.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                    UrlError(format!("{s}: port {p:?} is not a number from 1 to 65535"))
                })?;
                (h, port, true)
            }
            None => (authority, 80, false),
        };
        if host.is_empty() {
            return Err(UrlError(format!("{s}: the host is missing")));
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        {
            return Err(UrlError(format!(
                "{s}: host {host:?} is not a name or an IPv4 address"
            )));
        }
        let tail = tail.split('#').next().unwrap_or("");
        let target = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError(format!(
                "{s}: spaces and control characters must be percent-encoded in the path"
            )));
        }
        Ok(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            explicit_port,
            target,
        })
    }

    /// The Host field's value (RFC 9110 §7.2): the host, with the port when it was named.
    pub fn authority(&self) -> String {
        if self.explicit_port {
            format!("{}:{}", self.host, self.port)
        } else {
            self.host.clone()
        }
    }

    /// The target's path, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("/")
    }

    /// Resolves a redirect's `Location` (absolute, scheme-relative `//host/…`, absolute path
    /// or relative path) against this URL.
    pub fn join(&self, location: &str) -> Result<Url, UrlError> {
        let location = location.trim();
        if location.contains("://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        let mut url = self.clone();
        if location.starts_with('/') {
            url.target = location.split('#').next().unwrap_or("/").to_string();
        } else if location.starts_with('?') {
            url.target = format!("{}{}", self.path(), location);
        } else {
            let base = self.path();
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            url.target = format!("/{}{}", dir.trim_start_matches('/'), location);
        }
        url.target = url.target.split('#').next().unwrap_or("/").to_string();
        Ok(url)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_scheme_host_port_and_target() {
        let u = Url::parse("http://Example.TEST:8080/a/b?x=1#frag").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.host, "example.test");
        assert_eq!(u.port, 8080);
        assert_eq!(u.target, "/a/b?x=1");
        assert_eq!(u.authority(), "example.test:8080");
        assert_eq!(u.path(), "/a/b");
        let u = Url::parse("ws://192.0.2.2?q").unwrap();
        assert_eq!(
            (u.scheme, u.port, u.target.as_str()),
            (Scheme::Ws, 80, "/?q")
        );
        assert_eq!(u.authority(), "192.0.2.2");
        assert_eq!(u.to_string(), "ws://192.0.2.2/?q");
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        for (s, needle) in [
            ("https://a/", "no TLS"),
            ("192.0.2.2/x", "http://HOST"),
            ("http://a:0/", "1 to 65535"),
            ("http://a:x/", "1 to 65535"),
            ("http:///x", "host is missing"),
            ("http://u@a/", "user information"),
            ("http://a b/", "not a name"),
            ("http://a/b c", "percent-encoded"),
        ] {
            let e = Url::parse(s).unwrap_err();
            assert!(e.0.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn redirect_locations_resolve_against_the_url() {
        // RFC 3986 §5.2 for the reference forms Location carries (RFC 9110 §10.2.2).
        let base = Url::parse("http://a.test:81/dir/page?x").unwrap();
        assert_eq!(
            base.join("http://b.test/z").unwrap().to_string(),
            "http://b.test/z"
        );
        assert_eq!(
            base.join("//c.test/y").unwrap().to_string(),
            "http://c.test/y"
        );
        assert_eq!(
            base.join("/abs?q#f").unwrap().to_string(),
            "http://a.test:81/abs?q"
        );
        assert_eq!(
            base.join("other").unwrap().to_string(),
            "http://a.test:81/dir/other"
        );
        assert_eq!(
            base.join("?y=2").unwrap().to_string(),
            "http://a.test:81/dir/page?y=2"
        );
    }
}
