//! Static files: a [`Handler`] that serves a directory tree.
//!
//! What it does, by RFC 9110 section:
//! - GET and HEAD only; other methods get 405 with `Allow: GET, HEAD` (§15.5.6).
//! - `Content-Type` by file extension ([`content_type`]), `application/octet-stream` otherwise.
//! - Validators (§8.8): a strong `ETag` made of the file's inode, size and modification time
//!   (§8.8.3), and `Last-Modified` as an IMF-fixdate (§8.8.2, §5.6.7).
//! - Conditional requests (§13.2.2 order): `If-None-Match` (a list or `*`, weak comparison,
//!   §13.1.2) answers 304 when it matches; only when it is absent, `If-Modified-Since`
//!   (§13.1.3) answers 304 when the file is not newer. An unparsable date is ignored.
//! - Ranges (§14): `Accept-Ranges: bytes`; a single range of GET (`bytes=a-b`, `a-`, `-n`)
//!   gets 206 with `Content-Range`; an unsatisfiable one 416 with `Content-Range: bytes */len`
//!   (§15.5.17); several ranges, another unit or a malformed field get the whole file with 200
//!   (§14.2 lets a server ignore Range). `If-Range` (§13.1.5) keeps the range only when its
//!   entity-tag matches strongly or its date equals `Last-Modified`.
//! - A directory is served by its `index.html`, else by a generated HTML listing (names
//!   escaped, at most [`MAX_LISTING`] entries); a directory asked for without its trailing
//!   slash is redirected with 301 to the path with the slash, so relative links resolve.
//! - Bodies are streamed from the open file ([`Body::Reader`] with the length), never read
//!   into memory.
//!
//! No way out of the root: the path (after the mount prefix) is split into segments at `/`,
//! and each segment is percent-decoded on its own. A request is refused (404, never served)
//! when a decoded segment is `.` or `..`, or holds `/` (from `%2F`), `\` (from `\` or `%5C`),
//! NUL or a drive-like `X:` start, or when a segment other than the last is empty (`//etc`,
//! an absolute path). Then the joined path and the root are both canonicalized and the file is
//! served only if the first lies under the second, so a symbolic link inside the root that
//! leads outside it is refused, while one that stays inside works. On Linux the opened file is
//! checked once more through `/proc/self/fd`, so a link swapped in between the check and the
//! open is refused too.
//!
//! Limits: file names must be UTF-8 to be served (others are listed, lossily, but not
//! served); dotfiles are served like any other file.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::percent;
use super::{Body, Handler, Method, Request, Response};

/// The most entries a generated directory listing shows; the rest are counted, not listed.
pub const MAX_LISTING: usize = 10_000;

/// The `Content-Type` for a file name, by its extension (compared case-insensitively):
/// html, htm, css, js, mjs, json, txt, png, jpg, jpeg, gif, svg, ico, wasm, pdf, xml; anything
/// else is `application/octet-stream`. Text types say `charset=utf-8`.
pub fn content_type(name: &str) -> &'static str {
    let ext = match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => return "application/octet-stream",
    };
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        // RFC 9239 §6: text/javascript is the one registered type for JavaScript.
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        _ => "application/octet-stream",
    }
}

/// Serves the files under a root directory; see the [module documentation](self).
///
/// Mount it under a prefix of a [`Router`](super::router::Router) and tell it the prefix, so
/// `/static/css/a.css` is looked up as `css/a.css` under the root:
///
/// ```no_run
/// use netstack_application::http::{Files, Method, Router};
///
/// let router = Router::new().prefix(Method::Get, "/static", Files::new("/srv/www").under("/static"));
/// ```
#[derive(Debug, Clone)]
pub struct Files {
    root: PathBuf,
    prefix: String,
    listing: bool,
}

/// Why a path was not served; each maps to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Malformed or escaping path, missing file, or outside the root: 404.
    NotFound,
    /// The file exists but may not be read: 403.
    Forbidden,
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::NotFound => Response::text(404, "Not Found\n"),
            Refusal::Forbidden => Response::text(403, "Forbidden\n"),
        }
    }
}

fn io_refusal(e: &io::Error) -> Refusal {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Refusal::Forbidden,
        _ => Refusal::NotFound,
    }
}

impl Files {
    /// Serves the tree under `root`, mounted at `/`, with directory listings on. The root is
    /// resolved on every request, so it may be created or replaced later.
    pub fn new(root: impl Into<PathBuf>) -> Files {
        Files {
            root: root.into(),
            prefix: String::new(),
            listing: true,
        }
    }

    /// Mounts the tree at `prefix` (such as `/static` or `/static/`): the prefix is taken off
    /// the request's path before the lookup, and a path outside it gets 404.
    pub fn under(mut self, prefix: &str) -> Files {
        self.prefix = prefix.trim_end_matches('/').to_string();
        self
    }

    /// Turns the generated listing of directories without `index.html` on or off (off: 404).
    pub fn listing(mut self, on: bool) -> Files {
        self.listing = on;
        self
    }

    /// The relative path a request path names under the root, and whether it ended in `/`;
    /// `None` when the path is not under the prefix or breaks a rule of the module
    /// documentation.
    fn relative(&self, path: &str) -> Option<(PathBuf, bool)> {
        // RFC 9112 §3.2, RFC 3986 §2: a request-target is visible ASCII; anything else (raw
        // spaces, controls, CR or LF that would end up in a Location field) is refused.
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let normalized = percent::normalize_path(path).ok()?;
        let prefix = percent::normalize_path(&self.prefix).ok()?;
        let rest = normalized.strip_prefix(&prefix)?;
        if rest.is_empty() {
            return Some((PathBuf::new(), false));
        }
        let rest = rest.strip_prefix('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        let last = segments.len() - 1;
        let mut rel = PathBuf::new();
        for (i, seg) in segments.iter().enumerate() {
            if seg.is_empty() {
                if i == last {
                    break; // a trailing slash
                }
                return None; // `//`: an empty segment, or an absolute path after the prefix
            }
            let bytes = percent::decode(seg).ok()?;
            let name = String::from_utf8(bytes).ok()?;
            if !segment_is_safe(&name) {
                return None;
            }
            rel.push(name);
        }
        Some((rel, rest.is_empty() || rest.ends_with('/')))
    }

    /// `rel` joined to the canonical `root`, canonicalized, if it stays under the root.
    fn resolve(root: &Path, rel: &Path) -> Result<(PathBuf, Metadata), Refusal> {
        let full = fs::canonicalize(root.join(rel)).map_err(|e| io_refusal(&e))?;
        if !full.starts_with(root) {
            log::debug!("static files: {} leads outside the root", rel.display());
            return Err(Refusal::NotFound);
        }
        let meta = fs::metadata(&full).map_err(|e| io_refusal(&e))?;
        Ok((full, meta))
    }

    fn serve_dir(&self, req: &Request, root: &Path, dir: &Path, slash: bool) -> Response {
        if !slash {
            // So that relative links in the page resolve under the directory.
            let mut location = format!("{}/", req.path);
            if let Some(q) = &req.query {
                location.push('?');
                location.push_str(q);
            }
            return Response::text(301, "Moved Permanently\n").header("Location", location);
        }
        // The index goes through the same canonical check: it may be a link leading out.
        let index = dir.join("index.html");
        if let Ok(full) = fs::canonicalize(&index) {
            if full.starts_with(root) && full.is_file() {
                return serve_file(req, root, &full);
            }
        }
        if !self.listing {
            return Refusal::NotFound.response();
        }
        match listing(&req.path, dir) {
            Ok(html) => Response::with_body(200, "text/html; charset=utf-8", html),
            Err(e) => io_refusal(&e).response(),
        }
    }
}

/// True when a decoded path segment names an entry of the directory it is in, and nothing
/// else: not `.` or `..`, no separator of any platform, no NUL, no drive (`C:`).
fn segment_is_safe(name: &str) -> bool {
    let b = name.as_bytes();
    let drive = b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':';
    !(name == "." || name == ".." || drive || b.iter().any(|&c| matches!(c, b'/' | b'\\' | 0)))
}

impl Handler for Files {
    fn handle(&self, req: Request) -> Response {
        if !matches!(req.method, Method::Get | Method::Head) {
            return Response::text(405, "Method Not Allowed\n").header("Allow", "GET, HEAD");
        }
        let Some((rel, slash)) = self.relative(&req.path) else {
            return Refusal::NotFound.response();
        };
        let root = match fs::canonicalize(&self.root) {
            Ok(r) => r,
            Err(e) => return io_refusal(&e).response(),
        };
        let (full, meta) = match Files::resolve(&root, &rel) {
            Ok(found) => found,
            Err(r) => return r.response(),
        };
        if meta.is_dir() {
            self.serve_dir(&req, &root, &full, slash)
        } else if slash {
            // `/file.txt/` names a directory that is not there.
            Refusal::NotFound.response()
        } else {
            serve_file(&req, &root, &full)
        }
    }
}

/// The validators of a file (RFC 9110 §8.8).
struct Validators {
    /// The strong entity-tag, with its quotes.
    etag: String,
    /// The modification time, truncated to seconds as `Last-Modified` carries it.
    modified: SystemTime,
}

impl Validators {
    fn of(meta: &Metadata) -> Validators {
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let since = mtime.duration_since(UNIX_EPOCH).unwrap_or_default();
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0u64;
        // §8.8.3: a strong tag changes whenever the content does; inode, size and mtime to
        // the nanosecond change with every replacement or write we can see.
        let etag = format!(
            "\"{inode:x}-{:x}-{:x}.{:x}\"",
            meta.len(),
            since.as_secs(),
            since.subsec_nanos()
        );
        Validators {
            etag,
            modified: UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        }
    }

    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// An entity-tag as received (RFC 9110 §8.8.3): weak or strong, and the opaque tag with its
/// quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// The value of an `If-None-Match` or `If-Range` field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EtagList<'a> {
    /// `*`: any current representation.
    Any,
    /// A list of entity-tags.
    Tags(Vec<EntityTag<'a>>),
}

/// Parses a list of entity-tags or `*`; `None` when the value is malformed (RFC 9110 §8.8.3).
fn parse_etags(value: &[u8]) -> Option<EtagList<'_>> {
    let value = value.trim_ascii();
    if value == b"*" {
        return Some(EtagList::Any);
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start(); // empty list elements (§5.6.1)
        }
        if rest.is_empty() {
            break;
        }
        let (weak, r) = match rest.strip_prefix(b"W/") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        if r.first() != Some(&b'"') {
            return None;
        }
        let close = 1 + r[1..].iter().position(|&b| b == b'"')?;
        // etagc = %x21 / %x23-7E / obs-text: no space, no quote, no control.
        if r[1..close].iter().any(|&b| b <= 0x20 || b == 0x7f) {
            return None;
        }
        tags.push(EntityTag {
            weak,
            opaque: &r[..=close],
        });
        rest = r[close + 1..].trim_ascii_start();
        match rest.first() {
            None => break,
            Some(b',') => {}
            Some(_) => return None,
        }
    }
    Some(EtagList::Tags(tags))
}

/// RFC 9110 §13.1.2: `If-None-Match` matches when it is `*` (the file exists) or lists a tag
/// equal to ours by weak comparison (opaque tags equal, weakness ignored). A malformed value
/// matches nothing.
fn none_match_hits(req: &Request, etag: &str) -> bool {
    req.headers
        .get_all("If-None-Match")
        .any(|v| match parse_etags(v) {
            Some(EtagList::Any) => true,
            Some(EtagList::Tags(tags)) => tags.iter().any(|t| t.opaque == etag.as_bytes()),
            None => false,
        })
}

/// RFC 9110 §13.1.3: the file was not modified after the `If-Modified-Since` date. A date
/// that does not parse makes the field ignored.
fn not_modified_since(req: &Request, v: &Validators) -> bool {
    let Some(date) = req.headers.get_str("If-Modified-Since") else {
        return false;
    };
    match httpdate::parse_http_date(date.trim()) {
        Ok(since) => v.modified <= since,
        Err(_) => false,
    }
}

/// RFC 9110 §13.1.5: the range applies when `If-Range` is absent, or holds an entity-tag
/// equal to ours by strong comparison (weak tags never match), or a date equal to our
/// `Last-Modified`.
fn if_range_holds(req: &Request, v: &Validators) -> bool {
    let Some(value) = req.headers.get("If-Range") else {
        return true;
    };
    let value = value.trim_ascii();
    if value.starts_with(b"\"") || value.starts_with(b"W/") {
        return matches!(parse_etags(value), Some(EtagList::Tags(tags))
            if tags.len() == 1 && !tags[0].weak && tags[0].opaque == v.etag.as_bytes());
    }
    match std::str::from_utf8(value)
        .ok()
        .map(httpdate::parse_http_date)
    {
        Some(Ok(date)) => date == v.modified,
        _ => false,
    }
}

/// What a `Range` field asks of a representation of `len` bytes (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeAsk {
    /// Serve the whole representation: no field, another unit, malformed, or several ranges.
    Whole,
    /// Serve bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// A single range with no byte in the representation: 416.
    Unsatisfiable,
}

/// Digits as a u64, saturating (a huge position is still a position); `None` if not digits.
fn parse_pos(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn parse_range(value: &str, len: u64) -> RangeAsk {
    let Some((unit, set)) = value.trim().split_once('=') else {
        return RangeAsk::Whole;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeAsk::Whole;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let [spec] = specs.as_slice() else {
        // None, or several: §14.2 lets us ignore the field and send 200 with everything.
        return RangeAsk::Whole;
    };
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix-range: the last n bytes; n = 0 or an empty file selects nothing.
        let Some(n) = parse_pos(b) else {
            return RangeAsk::Whole;
        };
        if n == 0 || len == 0 {
            return RangeAsk::Unsatisfiable;
        }
        return RangeAsk::Part {
            first: len - n.min(len),
            last: len - 1,
        };
    }
    let Some(first) = parse_pos(a) else {
        return RangeAsk::Whole;
    };
    let last = if b.is_empty() {
        u64::MAX
    } else {
        match parse_pos(b) {
            Some(last) if last >= first => last,
            _ => return RangeAsk::Whole, // last < first is invalid, hence ignored
        }
    };
    if first >= len {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part {
        first,
        last: last.min(len - 1),
    }
}

/// True when the open `file` lies under `root`, as the kernel names it now. This closes the
/// window between the canonical check and the open, in which a directory of the path could be
/// swapped for a link leading out. Without `/proc` (or off Linux) the check before the open
/// stands alone.
fn opened_under(file: &File, root: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        match fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            Ok(path) => path.starts_with(root),
            Err(_) => true,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, root);
        true
    }
}

/// Serves the regular file at the canonical `path` under the canonical `root`.
fn serve_file(req: &Request, root: &Path, path: &Path) -> Response {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return io_refusal(&e).response(),
    };
    if !opened_under(&file, root) {
        log::debug!("static files: {} moved outside the root", path.display());
        return Refusal::NotFound.response();
    }
    // The metadata of the open file, so validators and length describe what we send.
    let meta = match file.metadata() {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Refusal::NotFound.response(),
        Err(e) => return io_refusal(&e).response(),
    };
    let len = meta.len();
    let v = Validators::of(&meta);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let with_validators = |status: u16| {
        Response::new(status)
            .header("ETag", &v.etag)
            .header("Last-Modified", v.last_modified())
            .header("Accept-Ranges", "bytes")
    };

    // RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it.
    let not_modified = if req.headers.contains("If-None-Match") {
        none_match_hits(req, &v.etag)
    } else {
        not_modified_since(req, &v)
    };
    if not_modified {
        // §15.4.5: a 304 carries the validators a 200 would have.
        return with_validators(304);
    }

    let ask = match req.headers.get_str("Range") {
        // §14.2: Range is defined for GET only; HEAD gets the 200 head.
        Some(range) if req.method == Method::Get && if_range_holds(req, &v) => {
            parse_range(range, len)
        }
        _ => RangeAsk::Whole,
    };
    let resp = with_validators(200).header("Content-Type", content_type(name));
    match ask {
        RangeAsk::Whole => Response {
            body: Body::Reader {
                reader: Box::new(file.take(len)),
                len: Some(len),
            },
            ..resp
        },
        RangeAsk::Part { first, last } => {
            if let Err(e) = file.seek(SeekFrom::Start(first)) {
                log::warn!("static files: seek in {}: {e}", path.display());
                return Response::text(500, "Internal Server Error\n");
            }
            let count = last - first + 1;
            let mut resp = resp.header("Content-Range", format!("bytes {first}-{last}/{len}"));
            resp.status = 206;
            resp.body = Body::Reader {
                reader: Box::new(file.take(count)),
                len: Some(count),
            };
            resp
        }
        RangeAsk::Unsatisfiable => {
            // §15.5.17: 416 says the current length.
            Response::text(416, "Range Not Satisfiable\n")
                .header("Content-Range", format!("bytes */{len}"))
                .header("Accept-Ranges", "bytes")
        }
    }
}

/// Escapes text for HTML content and attribute values (the five characters HTML gives
/// meaning to).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML page listing `dir`, sorted by name, directories marked with a trailing `/`; links
/// are relative (the request path ends in `/`) and percent-encoded.
fn listing(request_path: &str, dir: &Path) -> io::Result<String> {
    let mut entries = Vec::new();
    let mut more = 0usize;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entries.len() >= MAX_LISTING {
            more += 1;
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        // file_type does not follow links; a link to a directory is listed as a file.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        entries.push((name, is_dir));
    }
    entries.sort();
    let title = html_escape(&String::from_utf8_lossy(
        &percent::decode(request_path).unwrap_or_else(|_| request_path.as_bytes().to_vec()),
    ));
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in &entries {
        let slash = if *is_dir { "/" } else { "" };
        html.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            percent::encode_segment(name.as_bytes()),
            html_escape(name)
        ));
    }
    html.push_str("</ul>\n");
    if more > 0 {
        html.push_str(&format!("<p>{more} more entries not listed</p>\n"));
    }
    html.push_str("</body></html>\n");
    Ok(html)
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
