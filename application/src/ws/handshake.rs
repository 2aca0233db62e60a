//! The opening handshake (RFC 6455 §4): the server's checks of an upgrade request and its 101
//! answer, the client's request and its checks of the answer, and the small bounded head reader
//! both use when no HTTP server or client sits in front.

use std::io::{self, Read, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::{Digest, Sha1};

use crate::http::{Headers, Limits, Method, Request, Response, Version};

/// The GUID RFC 6455 §1.3 appends to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The largest request or response head [`read_head`] accepts, in bytes.
pub const MAX_HEAD_LEN: usize = 16 * 1024;

/// The largest number of header fields a head may carry.
pub const MAX_HEAD_FIELDS: usize = 100;

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2 item 5.4).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    BASE64.encode(sha.finalize())
}

/// A new random Sec-WebSocket-Key: 16 random bytes, base64 (RFC 6455 §4.1).
pub fn new_key() -> io::Result<String> {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(io::Error::other)?;
    Ok(BASE64.encode(nonce))
}

/// What the server agreed to in an accepted upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The Sec-WebSocket-Accept value.
    pub accept: String,
    /// The subprotocol chosen, if any.
    pub protocol: Option<String>,
}

fn reject(status: u16, why: &str) -> Response {
    log::debug!("websocket upgrade rejected with {status}: {why}");
    let mut r = Response::text(status, format!("{why}\n"));
    if status == 426 {
        // RFC 6455 §4.4: name the versions this server speaks.
        r.headers.set("Sec-WebSocket-Version", "13");
    }
    r
}

/// Checks an upgrade request (RFC 6455 §4.2.1) and picks a subprotocol: the first of
/// `protocols` (the server's preference) that the client offered. On failure, the answer to
/// send: 400, or 426 with `Sec-WebSocket-Version: 13` for a missing or other version.
pub fn check_request(req: &Request, protocols: &[String]) -> Result<Accepted, Response> {
    if req.method != Method::Get {
        return Err(reject(400, "a WebSocket upgrade must be a GET"));
    }
    if req.version != Version::Http11 {
        return Err(reject(400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    if !req.headers.contains("Host") {
        return Err(reject(400, "no Host field"));
    }
    if !req.headers.has_token("Upgrade", "websocket") {
        return Err(reject(400, "no `Upgrade: websocket`"));
    }
    if !req.headers.has_token("Connection", "Upgrade") {
        return Err(reject(400, "no `Connection: Upgrade`"));
    }
    let version_13 = req.headers.count("Sec-WebSocket-Version") == 1
        && req
            .headers
            .get("Sec-WebSocket-Version")
            .map(|v| v.trim_ascii())
            == Some(b"13");
    if !version_13 {
        return Err(reject(426, "only WebSocket version 13 is supported"));
    }
    let key = match req.headers.get("Sec-WebSocket-Key") {
        Some(k) if req.headers.count("Sec-WebSocket-Key") == 1 => k.trim_ascii(),
        _ => return Err(reject(400, "no single Sec-WebSocket-Key")),
    };
    match BASE64.decode(key) {
        Ok(nonce) if nonce.len() == 16 => {}
        _ => return Err(reject(400, "Sec-WebSocket-Key is not 16 bytes in base64")),
    }
    let offered: Vec<&[u8]> = req.headers.tokens("Sec-WebSocket-Protocol").collect();
    let protocol = protocols
        .iter()
        .find(|p| offered.contains(&p.as_bytes()))
        .cloned();
    Ok(Accepted {
        accept: accept_key(key),
        protocol,
    })
}

/// The 101 answer for an accepted request (RFC 6455 §4.2.2), without its upgrade hook.
pub fn switching_protocols(accepted: &Accepted) -> Response {
    let mut r = Response::new(101);
    r.headers.set("Upgrade", "websocket");
    r.headers.set("Connection", "Upgrade");
    r.headers.set("Sec-WebSocket-Accept", &accepted.accept);
    if let Some(p) = &accepted.protocol {
        r.headers.set("Sec-WebSocket-Protocol", p);
    }
    r
}

/// Writes a handshake answer (the 101, or a refusal that closes the connection) with the
/// HTTP codec's writer, for [`super::accept_raw`] (the HTTP server writes responses in every
/// other case).
pub fn write_response<W: Write>(w: &mut W, mut r: Response) -> io::Result<()> {
    let ctx = crate::http::ResponseContext {
        version: Version::Http11,
        head: false,
        keep_alive: r.status == 101,
    };
    crate::http::write_response(w, &mut r, ctx)?;
    w.flush()
}

/// Reads until the end of a message head (the empty line), at most [`MAX_HEAD_LEN`] bytes.
/// Returns the head (with its final CRLF CRLF) and the bytes read past it.
pub fn read_head<S: Read>(stream: &mut S) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let mut searched = 0;
    loop {
        if let Some(i) = find_end(&buf[searched..]) {
            let end = searched + i + 4;
            let rest = buf.split_off(end);
            return Ok((buf, rest));
        }
        searched = buf.len().saturating_sub(3);
        if buf.len() >= MAX_HEAD_LEN {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handshake head above 16 KiB",
            ));
        }
        let want = chunk.len().min(MAX_HEAD_LEN + 4 - buf.len());
        let n = match stream.read(&mut chunk[..want]) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside the handshake",
                ));
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// The head limits of the handshake: [`MAX_HEAD_LEN`] and [`MAX_HEAD_FIELDS`].
fn limits() -> Limits {
    Limits {
        max_request_line: MAX_HEAD_LEN,
        max_head: MAX_HEAD_LEN,
        max_fields: MAX_HEAD_FIELDS,
        max_body: 0,
    }
}

/// Parses a request head as [`read_head`] returns it, with the HTTP codec's parser (RFC 9112),
/// for [`super::accept_raw`].
pub fn parse_request_head(head: &[u8]) -> io::Result<Request> {
    match crate::http::parse_request_head(head, &limits()) {
        Ok(Some((h, _))) => Ok(h.request),
        Ok(None) => Err(bad("incomplete request head")),
        Err(e) => Err(bad(format!("bad upgrade request: {e}"))),
    }
}

/// The client's upgrade request (RFC 6455 §4.1).
pub fn client_request(host: &str, path: &str, key: &str, protocols: &[&str]) -> Vec<u8> {
    let mut req = Request::new(Method::Get, path);
    req.headers.append("Host", host);
    req.headers.append("Upgrade", "websocket");
    req.headers.append("Connection", "Upgrade");
    req.headers.append("Sec-WebSocket-Key", key);
    req.headers.append("Sec-WebSocket-Version", "13");
    if !protocols.is_empty() {
        req.headers
            .append("Sec-WebSocket-Protocol", protocols.join(", "));
    }
    let mut out = Vec::with_capacity(256);
    crate::http::emit_request(&req, &mut out);
    out
}

/// Parses a response head as [`read_head`] returns it, with the HTTP codec's parser: the
/// status and the fields.
pub fn parse_response_head(head: &[u8]) -> io::Result<(u16, Headers)> {
    match crate::http::parse_response_head(head, &limits()) {
        Ok(Some((h, _))) => Ok((h.status, h.headers)),
        Ok(None) => Err(bad("incomplete response head")),
        Err(e) => Err(bad(format!("bad upgrade response: {e}"))),
    }
}

/// Checks the server's answer (RFC 6455 §4.1, the client's checks 1-6) and returns the
/// subprotocol it chose.
pub fn check_response(
    status: u16,
    headers: &Headers,
    key: &str,
    offered: &[&str],
) -> io::Result<Option<String>> {
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::ConnectionRefused, why));
    if status != 101 {
        return refuse(format!("the server answered the upgrade with {status}"));
    }
    if !headers.has_token("Upgrade", "websocket") || !headers.has_token("Connection", "Upgrade") {
        return Err(bad("101 without the Upgrade and Connection tokens"));
    }
    let expected = accept_key(key.as_bytes());
    if headers.get("Sec-WebSocket-Accept").map(|v| v.trim_ascii()) != Some(expected.as_bytes()) {
        return Err(bad("wrong Sec-WebSocket-Accept"));
    }
    if headers.contains("Sec-WebSocket-Extensions") {
        return Err(bad(
            "the server chose an extension the client did not offer",
        ));
    }
    match headers.get_str("Sec-WebSocket-Protocol").map(str::trim) {
        None => Ok(None),
        Some(p) if offered.contains(&p) => Ok(Some(p.to_string())),
        Some(_) => Err(bad(
            "the server chose a subprotocol the client did not offer",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request() -> Request {
        let mut r = Request::new(Method::Get, "/chat");
        r.headers.append("Host", "server.example.com");
        r.headers.append("Upgrade", "websocket");
        r.headers.append("Connection", "Upgrade");
        r.headers
            .append("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        r.headers.append("Sec-WebSocket-Version", "13");
        r
    }

    #[test]
    fn accept_value_matches_rfc_6455_section_1_3() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        let a = check_request(&upgrade_request(), &[]).unwrap();
        assert_eq!(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(a.protocol, None);
    }

    #[test]
    fn tokens_match_case_insensitively_inside_lists() {
        let mut r = upgrade_request();
        r.headers.set("Upgrade", "foo, WebSocket");
        r.headers.set("Connection", "keep-alive, UPGRADE");
        assert!(check_request(&r, &[]).is_ok());
    }

    #[test]
    fn requests_without_get_http11_host_or_tokens_get_400() {
        let mut cases = Vec::new();
        let mut r = upgrade_request();
        r.method = Method::Post;
        cases.push(r);
        let mut r = upgrade_request();
        r.version = Version::Http10;
        cases.push(r);
        let mut r = upgrade_request();
        r.headers.remove("Host");
        cases.push(r);
        let mut r = upgrade_request();
        r.headers.set("Upgrade", "h2c");
        cases.push(r);
        let mut r = upgrade_request();
        r.headers.set("Connection", "keep-alive");
        cases.push(r);
        for (i, r) in cases.iter().enumerate() {
            assert_eq!(check_request(r, &[]).unwrap_err().status, 400, "case {i}");
        }
    }

    #[test]
    fn a_missing_or_other_version_gets_426_naming_13() {
        for v in [None, Some("8"), Some("14")] {
            let mut r = upgrade_request();
            r.headers.remove("Sec-WebSocket-Version");
            if let Some(v) = v {
                r.headers.append("Sec-WebSocket-Version", v);
            }
            let resp = check_request(&r, &[]).unwrap_err();
            assert_eq!(resp.status, 426);
            assert_eq!(resp.headers.get("Sec-WebSocket-Version"), Some(&b"13"[..]));
        }
    }

    #[test]
    fn a_key_that_is_not_16_bytes_of_base64_gets_400() {
        for key in [
            None,
            Some("AAAA"),
            Some("not base64 at all!!!!!=="),
            Some("dGhlIHNhbXBsZSBub25jZXg="),
        ] {
            let mut r = upgrade_request();
            r.headers.remove("Sec-WebSocket-Key");
            if let Some(k) = key {
                r.headers.append("Sec-WebSocket-Key", k);
            }
            assert_eq!(check_request(&r, &[]).unwrap_err().status, 400, "{key:?}");
        }
    }

    #[test]
    fn the_subprotocol_is_the_servers_first_preference_the_client_offered() {
        let mut r = upgrade_request();
        r.headers
            .append("Sec-WebSocket-Protocol", "chat, superchat");
        r.headers.append("Sec-WebSocket-Protocol", "echo");
        let prefs = ["echo".to_string(), "chat".to_string()];
        assert_eq!(
            check_request(&r, &prefs).unwrap().protocol.as_deref(),
            Some("echo")
        );
        let prefs = ["other".to_string()];
        assert_eq!(check_request(&r, &prefs).unwrap().protocol, None);
        let resp = switching_protocols(&check_request(&r, &["chat".to_string()]).unwrap());
        assert_eq!(resp.status, 101);
        assert_eq!(
            resp.headers.get("Sec-WebSocket-Protocol"),
            Some(&b"chat"[..])
        );
    }

    #[test]
    fn the_head_reader_returns_the_bytes_after_the_head_and_is_bounded() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\x81\x00";
        let (head, rest) = read_head(&mut input).unwrap();
        assert_eq!(rest, b"\x81\x00");
        let req = parse_request_head(&head).unwrap();
        assert_eq!((req.method, req.path.as_str()), (Method::Get, "/"));
        assert_eq!(req.headers.get("host"), Some(&b"a"[..]));

        let big = vec![b'a'; MAX_HEAD_LEN + 100];
        let err = read_head(&mut &big[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let err = read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn the_client_checks_status_tokens_accept_and_protocol() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
            Sec-WebSocket-Protocol: chat\r\n\r\n";
        let (status, headers) = parse_response_head(head).unwrap();
        assert_eq!(
            check_response(status, &headers, key, &["chat"])
                .unwrap()
                .as_deref(),
            Some("chat")
        );
        assert!(check_response(status, &headers, key, &["other"]).is_err());
        assert!(check_response(status, &headers, "AAAAAAAAAAAAAAAAAAAAAA==", &["chat"]).is_err());
        assert!(check_response(200, &headers, key, &["chat"]).is_err());
        let mut h = headers.clone();
        h.remove("Connection");
        assert!(check_response(101, &h, key, &["chat"]).is_err());
    }
}
