//! An HTTP/1.1 client (RFC 9112): requests with Content-Length or chunked bodies, responses
//! read with the same head parser and limits the server uses, persistent connections kept per
//! host and reused, bounded redirects, and timeouts. It opens connections through a
//! [`Connector`], so the same client runs over `std::net` ([`std_connector`]) and over the
//! stack (`crate::stack_socket::http_connector`, which resolves names with the stack's DNS
//! resolver).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::body::{BodyFraming, ChunkedDecoder};
use super::request::{parse_response_head, Limits, ResponseHead};
use super::server::Connection;
use super::url::Url;
use super::{Headers, Method, UpgradeStream, Version};

/// Opens the client's connections: any
/// `FnMut(&str, u16, Duration) -> io::Result<impl Connection>` (host, port, connect timeout)
/// is one.
pub trait Connector {
    /// The connections it opens.
    type Stream: Connection;
    /// Connects to `host` (a name or an address) on `port`, giving up after `timeout`.
    fn connect(&mut self, host: &str, port: u16, timeout: Duration) -> io::Result<Self::Stream>;
}

impl<S, F> Connector for F
where
    S: Connection,
    F: FnMut(&str, u16, Duration) -> io::Result<S>,
{
    type Stream = S;
    fn connect(&mut self, host: &str, port: u16, timeout: Duration) -> io::Result<S> {
        self(host, port, timeout)
    }
}

/// A connector over `std::net`, resolving names with the operating system's resolver.
pub fn std_connector() -> impl Connector<Stream = std::net::TcpStream> {
    |host: &str, port: u16, timeout: Duration| {
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"));
        for addr in (host, port).to_socket_addrs()? {
            match std::net::TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long a connect may take.
    pub connect_timeout: Duration,
    /// How long one read or write may block (a silent server ends in `TimedOut`).
    pub io_timeout: Duration,
    /// Whether redirects (301, 302, 303, 307, 308 with a Location) are followed; when not, the
    /// redirect is the response.
    pub follow_redirects: bool,
    /// The most redirects followed for one request; past it the last redirect response is an
    /// error.
    pub max_redirects: usize,
    /// Idle connections kept per host and port for reuse.
    pub max_idle_per_host: usize,
    /// Head limits for responses; `max_body` bounds a response body.
    pub limits: Limits,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(30),
            follow_redirects: true,
            max_redirects: 10,
            max_idle_per_host: 4,
            limits: Limits {
                max_body: 1 << 30,
                ..Limits::default()
            },
        }
    }
}

/// A request body.
#[derive(Default)]
pub enum ClientBody {
    /// No body.
    #[default]
    Empty,
    /// Sent with Content-Length.
    Bytes(Vec<u8>),
    /// Sent chunked (RFC 9112 §7.1), read until the reader ends. Not replayed on a redirect
    /// that keeps the method (307, 308): such a redirect is returned as the response.
    Chunked(Box<dyn Read + Send>),
}

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientBody::Empty => f.write_str("Empty"),
            ClientBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            ClientBody::Chunked(_) => f.write_str("Chunked"),
        }
    }
}

/// A request to send.
#[derive(Debug)]
pub struct ClientRequest {
    /// The method.
    pub method: Method,
    /// Where to.
    pub url: Url,
    /// Fields to send; the client adds Host, Content-Length or Transfer-Encoding, and
    /// User-Agent when missing.
    pub headers: Headers,
    /// The body.
    pub body: ClientBody,
}

impl ClientRequest {
    /// A request with no fields and no body.
    pub fn new(method: Method, url: Url) -> ClientRequest {
        ClientRequest {
            method,
            url,
            headers: Headers::new(),
            body: ClientBody::Empty,
        }
    }
}

/// A response, body read whole.
#[derive(Debug, Clone)]
pub struct ClientResponse {
    /// The status code.
    pub status: u16,
    /// The reason phrase as sent.
    pub reason: String,
    /// The server's version.
    pub version: Version,
    /// The header fields.
    pub headers: Headers,
    /// The body, chunked coding removed.
    pub body: Vec<u8>,
    /// The URL that answered (after redirects).
    pub url: Url,
    /// True when the request went over a connection kept from an earlier one.
    pub reused_connection: bool,
    /// The redirects followed, in order.
    pub redirects: Vec<Url>,
}

/// Connection reuse counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Connections opened.
    pub connections_opened: u64,
    /// Requests sent over a kept connection.
    pub connections_reused: u64,
    /// Requests sent again on a new connection because a kept one had been closed by the
    /// server before the response began.
    pub stale_retries: u64,
}

/// An HTTP/1.1 client keeping idle connections per host for reuse.
pub struct Client<C: Connector> {
    connector: C,
    config: ClientConfig,
    idle: HashMap<(String, u16), Vec<C::Stream>>,
    stats: ClientStats,
}

impl<C: Connector> Client<C> {
    /// A client opening connections with `connector`.
    pub fn new(connector: C, config: ClientConfig) -> Client<C> {
        Client {
            connector,
            config,
            idle: HashMap::new(),
            stats: ClientStats::default(),
        }
    }

    /// The reuse counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// GET `url`, following redirects.
    pub fn get(&mut self, url: &str) -> io::Result<ClientResponse> {
        self.send(ClientRequest::new(Method::Get, Url::parse(url)?))
    }

    /// Sends `req`, following redirects up to the configured bound: 301, 302 and 303 turn a
    /// non-HEAD request into a GET without a body (RFC 9110 §15.4); 307 and 308 repeat the
    /// method and body.
    pub fn send(&mut self, mut req: ClientRequest) -> io::Result<ClientResponse> {
        let mut redirects = Vec::new();
        loop {
            let replay = match &req.body {
                ClientBody::Empty => Some(ClientBody::Empty),
                ClientBody::Bytes(b) => Some(ClientBody::Bytes(b.clone())),
                ClientBody::Chunked(_) => None,
            };
            let mut resp = self.send_once(&mut req)?;
            resp.redirects = redirects.clone();
            let location = resp
                .headers
                .get_str("location")
                .map(str::to_string)
                .filter(|_| self.config.follow_redirects)
                .filter(|_| matches!(resp.status, 301 | 302 | 303 | 307 | 308));
            let Some(location) = location else {
                return Ok(resp);
            };
            if redirects.len() >= self.config.max_redirects {
                return Err(io::Error::other(format!(
                    "{}: more than {} redirects; the last pointed to {location}",
                    redirects.first().unwrap_or(&req.url),
                    self.config.max_redirects
                )));
            }
            let next = req.url.join(&location)?;
            let body = match resp.status {
                307 | 308 => match replay {
                    Some(b) => b,
                    // A streamed body cannot be sent twice: the redirect is the answer.
                    None => return Ok(resp),
                },
                _ => {
                    if req.method != Method::Head {
                        req.method = Method::Get;
                    }
                    req.headers.remove("content-type");
                    ClientBody::Empty
                }
            };
            redirects.push(next.clone());
            req.url = next;
            req.body = body;
        }
    }

    /// One exchange, no redirects. A kept connection that turns out closed before any byte of
    /// the response arrived is replaced by a new one once, for requests whose body can be sent
    /// again.
    fn send_once(&mut self, req: &mut ClientRequest) -> io::Result<ClientResponse> {
        let key = (req.url.host.clone(), req.url.port);
        let mut kept = self.idle.get_mut(&key).and_then(Vec::pop);
        loop {
            let reused = kept.is_some();
            let mut stream = match kept.take() {
                Some(s) => s,
                None => {
                    let s = self
                        .connector
                        .connect(&key.0, key.1, self.config.connect_timeout)?;
                    self.stats.connections_opened += 1;
                    s
                }
            };
            stream.set_read_timeout(Some(self.config.io_timeout))?;
            stream.set_write_timeout(Some(self.config.io_timeout))?;
            if reused {
                self.stats.connections_reused += 1;
            }
            match self.exchange(&mut stream, req) {
                Ok((mut resp, keep)) => {
                    resp.reused_connection = reused;
                    if keep {
                        let pool = self.idle.entry(key).or_default();
                        if pool.len() < self.config.max_idle_per_host {
                            pool.push(stream);
                        }
                    }
                    return Ok(resp);
                }
                Err(Exchange::Stale(e))
                    if reused && !matches!(req.body, ClientBody::Chunked(_)) =>
                {
                    log::debug!("http client: kept connection to {}:{} was closed ({e}); retrying on a new one", key.0, key.1);
                    self.stats.stale_retries += 1;
                    continue;
                }
                Err(Exchange::Stale(e) | Exchange::Failed(e)) => return Err(e),
            }
        }
    }

    fn exchange(
        &mut self,
        stream: &mut C::Stream,
        req: &mut ClientRequest,
    ) -> Result<(ClientResponse, bool), Exchange> {
        write_request(stream, req).map_err(Exchange::Stale)?;
        let limits = self.config.limits;
        let mut buf = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + self.config.io_timeout;
        // Read the head; 1xx responses (100 Continue and others) before the final one are
        // skipped (RFC 9110 §15.2).
        let (head, mut rest) = loop {
            match parse_response_head(&buf, &limits) {
                Ok(Some((head, used))) => {
                    let rest = buf.split_off(used);
                    if (100..200).contains(&head.status) && head.status != 101 {
                        buf = rest;
                        continue;
                    }
                    break (head, rest);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(Exchange::Failed(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("bad response head from {}: {e}", req.url),
                    )))
                }
            }
            if Instant::now() > deadline {
                return Err(Exchange::Failed(timed_out(&req.url)));
            }
            match stream.read(&mut chunk) {
                Ok(0) if buf.is_empty() => {
                    return Err(Exchange::Stale(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("{} closed the connection before responding", req.url),
                    )))
                }
                Ok(0) => {
                    return Err(Exchange::Failed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{} closed the connection inside the response head", req.url),
                    )))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if buf.is_empty() && is_reset(&e) => return Err(Exchange::Stale(e)),
                Err(e) => return Err(Exchange::Failed(e)),
            }
        };
        let framing = head.framing(req.method).map_err(|e| {
            Exchange::Failed(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad response framing from {}: {e}", req.url),
            ))
        })?;
        let body = read_body(stream, framing, &mut rest, &mut chunk, &limits, &req.url)
            .map_err(Exchange::Failed)?;
        let keep = head.keep_alive() && framing != BodyFraming::UntilClose && rest.is_empty();
        let ResponseHead {
            version,
            status,
            reason,
            headers,
        } = head;
        Ok((
            ClientResponse {
                status,
                reason,
                version,
                headers,
                body,
                url: req.url.clone(),
                reused_connection: false,
                redirects: Vec::new(),
            },
            keep,
        ))
    }
}

/// Why an exchange failed: `Stale` when a kept connection proved closed before the response
/// began (the request may be sent again on a new one), `Failed` otherwise.
enum Exchange {
    Stale(io::Error),
    Failed(io::Error),
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn timed_out(url: &Url) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{url}: no complete response in time"),
    )
}

/// Writes the request head and body: Host and User-Agent when missing, Content-Length for a
/// byte body (also `0` for POST, PUT and PATCH without one), chunked for a streamed body.
fn write_request<S: Write>(stream: &mut S, req: &mut ClientRequest) -> io::Result<()> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(req.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(req.url.target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut fields = req.headers.clone();
    if !fields.contains("host") {
        fields.set("Host", req.url.authority());
    }
    if !fields.contains("user-agent") {
        fields.set(
            "User-Agent",
            concat!("netstack/", env!("CARGO_PKG_VERSION")),
        );
    }
    fields.remove("content-length");
    fields.remove("transfer-encoding");
    match &req.body {
        ClientBody::Empty => {
            if matches!(req.method, Method::Post | Method::Put | Method::Patch) {
                fields.set("Content-Length", "0");
            }
        }
        ClientBody::Bytes(b) => fields.set("Content-Length", b.len().to_string()),
        ClientBody::Chunked(_) => fields.set("Transfer-Encoding", "chunked"),
    }
    fields.emit(&mut head);
    head.extend_from_slice(b"\r\n");
    match &mut req.body {
        ClientBody::Empty => stream.write_all(&head)?,
        ClientBody::Bytes(b) => {
            head.extend_from_slice(b);
            stream.write_all(&head)?;
        }
        ClientBody::Chunked(reader) => {
            stream.write_all(&head)?;
            let mut enc = super::body::ChunkedEncoder::new(&mut *stream);
            io::copy(reader, &mut enc)?;
            enc.finish()?;
        }
    }
    stream.flush()
}

/// Reads a body framed as `framing`, starting with the bytes already read (`rest`, left
/// holding whatever followed the body).
fn read_body<S: Read>(
    stream: &mut S,
    framing: BodyFraming,
    rest: &mut Vec<u8>,
    chunk: &mut [u8],
    limits: &Limits,
    url: &Url,
) -> io::Result<Vec<u8>> {
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{url}: response body over {} bytes", limits.max_body),
        )
    };
    let eof = || {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{url}: the connection closed inside the response body"),
        )
    };
    match framing {
        BodyFraming::None => Ok(Vec::new()),
        BodyFraming::Length(n) => {
            if n > limits.max_body {
                return Err(too_large());
            }
            let n = n as usize;
            while rest.len() < n {
                match stream.read(chunk) {
                    Ok(0) => return Err(eof()),
                    Ok(k) => rest.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let tail = rest.split_off(n);
            Ok(std::mem::replace(rest, tail))
        }
        BodyFraming::UntilClose => {
            let mut body = std::mem::take(rest);
            loop {
                match stream.read(chunk) {
                    Ok(0) => return Ok(body),
                    Ok(k) => {
                        body.extend_from_slice(&chunk[..k]);
                        if body.len() as u64 > limits.max_body {
                            return Err(too_large());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new(limits);
            let mut body = Vec::new();
            let mut input = std::mem::take(rest);
            loop {
                let (used, done) = dec.decode(&input, &mut body).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{url}: bad chunked body: {e}"),
                    )
                })?;
                input.drain(..used);
                if done {
                    *rest = input;
                    return Ok(body);
                }
                match stream.read(chunk) {
                    Ok(0) => return Err(eof()),
                    Ok(k) => input.extend_from_slice(&chunk[..k]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
}

/// The address of `host` when it is an IPv4 literal.
pub fn literal_addr(host: &str, port: u16) -> Option<SocketAddr> {
    host.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|ip| SocketAddr::from((ip, port)))
}
