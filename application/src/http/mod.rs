//! HTTP/1.1: message types (RFC 9110 semantics), the wire syntax of RFC 9112, a server and a
//! client. The codecs know no socket; the server and the client run over any byte stream with
//! `std::net`-shaped calls, so the same code serves over the stack's `TcpStream` and over
//! `std::net::TcpStream`.

pub mod body;
pub mod client;
pub mod files;
mod headers;
mod percent;
pub mod request;
pub mod response;
pub mod router;
pub mod server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_client;
#[cfg(test)]
mod tests_server;
#[cfg(test)]
mod tests_stack;
pub mod url;

pub use body::{BodyFraming, ChunkedDecoder, ChunkedEncoder};
pub use client::{Client, ClientBody, ClientConfig, ClientRequest, ClientResponse, Connector};
pub use files::Files;
pub use headers::Headers;
pub use percent::PercentError;
pub use request::{
    emit_request, parse_request, parse_request_head, parse_response_head, Limits, ParseError,
    RequestHead, ResponseHead,
};
pub use response::{write_response, ResponseContext};
pub use router::Router;
pub use server::{Connection, Listen, Server, ServerConfig, ServerStats, ShutdownHandle};
pub use url::{Scheme, Url, UrlError};

use std::fmt;
use std::io::{Read, Write};
use std::net::SocketAddr;

/// A request method (RFC 9110 §9). Methods outside this list are answered with 501.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD: as GET, without the body.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// CONNECT
    Connect,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// PATCH (RFC 5789)
    Patch,
}

impl Method {
    /// Every method this module knows.
    pub const ALL: [Method; 9] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
    ];

    /// The method's token as it appears on the wire (methods are case-sensitive).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
        }
    }

    /// The method named exactly by `token`, if this module knows it.
    pub fn from_token(token: &[u8]) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.as_str().as_bytes() == token)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol version of a message (RFC 9112 §2.3). Other versions are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless keep-alive is asked for.
    Http10,
    /// HTTP/1.1: connections persist unless `Connection: close` is sent.
    Http11,
}

impl Version {
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as the server hands it to a handler: head and whole body (chunked bodies are
/// already decoded, their trailers dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The request target as sent (origin form `/path?query`, or absolute form, or `*`).
    pub target: String,
    /// The path part of the target, still percent-encoded.
    pub path: String,
    /// The query part of the target without the `?`, still percent-encoded.
    pub query: Option<String>,
    /// The version of the request.
    pub version: Version,
    /// The header fields in the order received.
    pub headers: Headers,
    /// The body (empty when there was none).
    pub body: Vec<u8>,
    /// The client's address, when the server knows it.
    pub remote: Option<SocketAddr>,
}

impl Request {
    /// A request with no fields and no body (for building requests and tests).
    pub fn new(method: Method, target: &str) -> Request {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.to_string(), None),
        };
        Request {
            method,
            target: target.to_string(),
            path,
            query,
            version: Version::Http11,
            headers: Headers::new(),
            body: Vec::new(),
            remote: None,
        }
    }

    /// The query as (name, value) pairs in order, decoded as
    /// `application/x-www-form-urlencoded` (`+` is a space, then `%XX` escapes; RFC 3986
    /// §2.1); empty when there is no query. Fails on a bad escape or text that is not UTF-8
    /// ([`Router`] answers such requests 400 before any handler sees them).
    pub fn query_pairs(&self) -> Result<Vec<(String, String)>, PercentError> {
        match &self.query {
            Some(q) => percent::parse_query(q),
            None => Ok(Vec::new()),
        }
    }
}

/// A response body.
pub enum Body {
    /// No body (and `Content-Length: 0` where the status allows a body).
    Empty,
    /// A body held in memory, sent with Content-Length.
    Bytes(Vec<u8>),
    /// A body read from `reader`: with `len` known it is sent with Content-Length (exactly
    /// `len` bytes), else chunked (to an HTTP/1.1 client) or until the connection closes (1.0).
    Reader {
        /// Where the bytes come from.
        reader: Box<dyn Read + Send>,
        /// The body's length, when known.
        len: Option<u64>,
    },
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Body::Reader { len, .. } => write!(f, "Reader(len: {len:?})"),
        }
    }
}

/// A byte stream a protocol upgrade takes over (RFC 9110 §7.8): the connection after a `101
/// Switching Protocols` response, with whatever the server had already read past the request.
pub struct Upgraded {
    /// Bytes the client sent after the request that the server already read.
    pub buffered: Vec<u8>,
    /// The connection itself.
    pub stream: Box<dyn UpgradeStream>,
}

/// A connection an upgrade can take over.
pub trait UpgradeStream: Read + Write + Send {
    /// As `TcpStream::set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()>;
    /// As `TcpStream::shutdown(Shutdown::Write)`.
    fn shutdown_write(&self) -> std::io::Result<()>;
}

impl<T: UpgradeStream + ?Sized> UpgradeStream for Box<T> {
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn shutdown_write(&self) -> std::io::Result<()> {
        (**self).shutdown_write()
    }
}

impl<T: UpgradeStream + ?Sized> UpgradeStream for &mut T {
    fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn shutdown_write(&self) -> std::io::Result<()> {
        (**self).shutdown_write()
    }
}

/// What runs on the connection after a `101 Switching Protocols` response.
pub type OnUpgrade = Box<dyn FnOnce(Upgraded) + Send>;

/// A response a handler returns.
pub struct Response {
    /// The status code (RFC 9110 §15).
    pub status: u16,
    /// The header fields; the server adds Date, Content-Length or Transfer-Encoding, and
    /// Connection where needed.
    pub headers: Headers,
    /// The body.
    pub body: Body,
    /// For a 101 response: what takes the connection over once the response is written.
    pub on_upgrade: Option<OnUpgrade>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("upgrade", &self.on_upgrade.is_some())
            .finish()
    }
}

impl Response {
    /// A response with `status`, no fields and no body.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Headers::new(),
            body: Body::Empty,
            on_upgrade: None,
        }
    }

    /// A response with `status` and `body`, of type `content_type`.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        let mut r = Response::new(status);
        r.headers.set("Content-Type", content_type);
        r.body = Body::Bytes(body.into());
        r
    }

    /// A `text/plain; charset=utf-8` response.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response::with_body(
            status,
            "text/plain; charset=utf-8",
            body.into().into_bytes(),
        )
    }

    /// Adds a header field (builder style).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Response {
        self.headers.append(name, value);
        self
    }
}

/// The reason phrase for `status` (RFC 9110 §15), or `""` for codes without one here.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Turns requests into responses. Any `Fn(Request) -> Response + Send + Sync` is one.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: Request) -> Response;
}

impl<F> Handler for F
where
    F: Fn(Request) -> Response + Send + Sync + 'static,
{
    fn handle(&self, req: Request) -> Response {
        self(req)
    }
}
