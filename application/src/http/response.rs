//! Writing a response (RFC 9112 §4, §6; RFC 9110 §6.6.1, §8.6, §9.3.2): the status line, Date,
//! the body's framing (Content-Length, chunked, or until close), Connection, and no body where
//! the status or the method forbids one. Parsing a response head for the client is
//! [`super::request::parse_response_head`], which shares the field grammar with requests.

use std::io::{self, BufWriter, Read, Write};
use std::time::SystemTime;

use super::body::ChunkedEncoder;
use super::{reason_phrase, Body, Response, Version};

/// What the response answers, as far as writing it is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseContext {
    /// The version of the request (an HTTP/1.0 client gets no chunked body).
    pub version: Version,
    /// True when the request was HEAD: fields as for GET, no body (RFC 9110 §9.3.2).
    pub head: bool,
    /// True when the server means to keep the connection open after this response.
    pub keep_alive: bool,
}

/// Largest body copied into the same write as the head, and the write buffer's size.
const WRITE_BUFFER: usize = 16 * 1024;

/// True when a response with `status` never has a body (RFC 9110 §6.4.1: 1xx, 204, 304).
pub fn status_has_no_body(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Writes `resp` to `w` and returns whether the connection may stay open afterwards: false
/// when `ctx.keep_alive` is false or when the body had to be delimited by closing (an unknown
/// length to an HTTP/1.0 client). The status line always says HTTP/1.1 (RFC 9110 §6.2).
///
/// The server owns the framing fields: Content-Length and Transfer-Encoding set by the handler
/// are replaced, except that a handler's Content-Length is kept on a bodiless answer to HEAD
/// or on a 304 (where it describes the representation). Date is added when missing (RFC 9110
/// §6.6.1), Connection: close when the connection will close, Connection: keep-alive to an
/// HTTP/1.0 client that keeps it.
pub fn write_response<W: Write>(
    w: &mut W,
    resp: &mut Response,
    ctx: ResponseContext,
) -> io::Result<bool> {
    let status = resp.status;
    let informational = (100..200).contains(&status);
    let no_body = status_has_no_body(status);
    let body = std::mem::replace(&mut resp.body, Body::Empty);
    let keep_handler_length =
        matches!(body, Body::Empty) && (ctx.head || status == 304) && !informational;
    let mut headers = std::mem::take(&mut resp.headers);
    if !keep_handler_length {
        headers.remove("content-length");
    }
    headers.remove("transfer-encoding");

    // What goes on the wire after the head.
    enum Out {
        Nothing,
        Bytes(Vec<u8>),
        Exact(Box<dyn Read + Send>, u64),
        Chunked(Box<dyn Read + Send>),
        UntilClose(Box<dyn Read + Send>),
    }
    // A handler may ask for the connection to close.
    let mut keep_alive = ctx.keep_alive && !headers.has_token("connection", "close");
    let send = if no_body {
        // RFC 9110 §8.6: no Content-Length in 1xx or 204; a 304 keeps the handler's.
        Out::Nothing
    } else {
        match body {
            Body::Empty => {
                if !keep_handler_length {
                    headers.append("Content-Length", "0");
                }
                Out::Nothing
            }
            Body::Bytes(b) => {
                headers.append("Content-Length", b.len().to_string());
                Out::Bytes(b)
            }
            Body::Reader {
                reader,
                len: Some(n),
            } => {
                headers.append("Content-Length", n.to_string());
                Out::Exact(reader, n)
            }
            Body::Reader { reader, len: None } => {
                if ctx.version == Version::Http11 {
                    headers.append("Transfer-Encoding", "chunked");
                    Out::Chunked(reader)
                } else {
                    // RFC 9112 §6.3 rule 8: a 1.0 client reads such a body until close.
                    keep_alive = false;
                    Out::UntilClose(reader)
                }
            }
        }
    };
    let send = if ctx.head { Out::Nothing } else { send };

    if !informational && status != 101 {
        if !headers.contains("date") {
            // RFC 9110 §6.6.1: an origin server with a clock sends Date.
            headers.append("Date", httpdate::fmt_http_date(SystemTime::now()));
        }
        headers.remove("connection");
        if !keep_alive {
            headers.append("Connection", "close");
        } else if ctx.version == Version::Http10 {
            // RFC 9112 §9.3: a 1.0 connection persists only when both ends say keep-alive.
            headers.append("Connection", "keep-alive");
        }
    }

    let mut out = BufWriter::with_capacity(WRITE_BUFFER, w);
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.to_string().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reason_phrase(status).as_bytes());
    head.extend_from_slice(b"\r\n");
    headers.emit(&mut head);
    head.extend_from_slice(b"\r\n");
    out.write_all(&head)?;
    match send {
        Out::Nothing => {}
        Out::Bytes(b) => out.write_all(&b)?,
        Out::Exact(reader, n) => {
            let copied = io::copy(&mut reader.take(n), &mut out)?;
            if copied != n {
                // The reader promised more than it had: the framing is now wrong, so the
                // connection must close (the caller sees the error).
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("response body ended after {copied} of {n} bytes"),
                ));
            }
        }
        Out::Chunked(mut reader) => {
            let mut enc = ChunkedEncoder::new(&mut out);
            let mut buf = vec![0u8; WRITE_BUFFER];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                enc.write_all(&buf[..n])?;
            }
            enc.finish()?;
        }
        Out::UntilClose(mut reader) => {
            io::copy(&mut reader, &mut out)?;
        }
    }
    out.flush()?;
    Ok(keep_alive)
}

/// Writes `HTTP/1.1 100 Continue` (RFC 9110 §15.2.1), the interim answer to
/// `Expect: 100-continue`.
pub fn write_continue<W: Write>(w: &mut W) -> io::Result<()> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    w.flush()
}

/// A short plain-text error response with `Connection: close`, for rejected requests.
pub fn error_response(status: u16) -> Response {
    let mut text = format!("{status} {}\n", reason_phrase(status));
    if reason_phrase(status).is_empty() {
        text = format!("{status}\n");
    }
    Response::text(status, text).header("Connection", "close")
}
