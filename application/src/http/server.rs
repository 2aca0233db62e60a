//! The HTTP/1.1 server: an accept loop and one connection loop per connection, generic over a
//! listener ([`Listen`]) and a connection ([`Connection`]), so the same code serves over
//! `std::net` and over the stack's sockets.
//!
//! # Threads, and why
//! The stack's `TcpStream` (like `std::net::TcpStream`) offers blocking reads with timeouts and
//! no readiness API an event loop could wait on, so a connection that waits for its next request
//! needs a thread that waits on it. Each accepted connection gets its own thread with a small
//! stack ([`ServerConfig::stack_size`], 256 KiB by default: the connection loop keeps its
//! buffers on the heap), and the handler runs on that same thread: handing requests to a
//! separate pool would cost two cross-thread wake-ups per request, the most expensive thing the
//! runtime does (DESIGN.md), and would not bound memory any better. The bound is the connection
//! limit ([`ServerConfig::max_connections`]): at most that many connection threads, hence that
//! many handler threads, exist at once. Past it a new connection is answered `503` with
//! `Connection: close` by a short-lived thread (at most [`MAX_REJECTORS`] at once; beyond that
//! it is closed without an answer) and counted in [`ServerStats::rejected_over_limit`].
//!
//! # Timeouts
//! A connection waiting for the first byte of a request is closed after
//! [`ServerConfig::idle_timeout`]; once a request has started, its head must be complete within
//! [`ServerConfig::header_timeout`] (else `408` and close), so a client sending one byte at a
//! time cannot hold a thread. Body reads and response writes give up after
//! `idle_timeout` without progress.
//!
//! # Shutdown
//! [`Server::shutdown`] stops accepting, lets each connection finish the request it is
//! serving (answered with `Connection: close`), closes idle connections within a second, and
//! waits for all of them up to a deadline.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::body::{BodyFraming, ChunkedDecoder};
use super::request::{parse_request_head_bytes, persistent, HeadScanner, Limits, ParseError};
use super::response::{error_response, write_continue, write_response, ResponseContext};
use super::{Handler, Method, UpgradeStream, Upgraded, Version};

/// A connection the server can serve: a byte stream with `std::net::TcpStream`'s timeouts.
pub trait Connection: UpgradeStream + 'static {
    /// As `TcpStream::set_write_timeout`.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// As `TcpStream::peer_addr`.
    fn peer_addr(&self) -> io::Result<SocketAddr>;
    /// As `TcpStream::set_nodelay` (responses are written whole, so Nagle only adds delay to
    /// pipelined answers). Does nothing by default.
    fn set_nodelay(&self, _on: bool) -> io::Result<()> {
        Ok(())
    }
}

/// A listener the server accepts connections from.
pub trait Listen: Send + Sync + 'static {
    /// The connections it yields.
    type Conn: Connection;
    /// Waits for the next connection. May also return `WouldBlock` or `TimedOut` now and then
    /// (the accept loop then checks for shutdown and calls again).
    fn accept(&self) -> io::Result<(Self::Conn, SocketAddr)>;
    /// The address listened on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Makes a thread blocked in `accept` return soon, for shutdown.
    fn wake_accept(&self);
}

impl UpgradeStream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        TcpStream::shutdown(self, Shutdown::Write)
    }
}

impl Connection for TcpStream {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, on)
    }
}

impl Listen for TcpListener {
    type Conn = TcpStream;

    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }

    fn wake_accept(&self) {
        // A connection to ourselves wakes the blocked accept; the loop then sees the flag.
        if let Ok(mut addr) = TcpListener::local_addr(self) {
            if addr.ip().is_unspecified() {
                addr.set_ip(match addr {
                    SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                    SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                });
            }
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
    }
}

/// The most threads answering `503` to connections past the limit at once.
pub const MAX_REJECTORS: usize = 16;

/// How long a closing connection keeps reading (and dropping) what the client still sends, so
/// that the last response is not destroyed by a reset (RFC 9112 §9.6).
const LINGER: Duration = Duration::from_millis(500);
/// The most bytes read and dropped while lingering.
const LINGER_BYTES: usize = 256 * 1024;
/// How long an idle connection waits in one read before it looks at the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_secs(1);
/// Bytes read per `read` call.
const READ_CHUNK: usize = 8 * 1024;
/// The read buffer capacity a connection keeps between requests.
const KEEP_BUFFER: usize = 64 * 1024;

/// The server's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Parser limits: request line (414), head and field count (431), body (413).
    pub limits: Limits,
    /// The most connections served at once (each has a thread); more get 503.
    pub max_connections: usize,
    /// Time for a request head to arrive once its first byte has (else 408 and close).
    pub header_timeout: Duration,
    /// Time a connection may wait for the next request, or make no progress reading a body
    /// or writing a response, before it is closed.
    pub idle_timeout: Duration,
    /// Time for a whole request body to arrive once its head has, so a client trickling a
    /// body cannot hold a connection either.
    pub body_timeout: Duration,
    /// The stack size of each connection thread.
    pub stack_size: usize,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            limits: Limits::default(),
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
            stack_size: 256 * 1024,
        }
    }
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    active: AtomicUsize,
    rejectors: AtomicUsize,
    requests: AtomicU64,
    responses: [AtomicU64; 5],
    rejected_over_limit: AtomicU64,
    parse_errors: [AtomicU64; ParseError::ALL.len()],
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    handler_panics: AtomicU64,
    upgrades: AtomicU64,
    accept_errors: AtomicU64,
}

impl Counters {
    fn response(&self, status: u16) {
        if let Some(c) = self
            .responses
            .get(usize::from(status / 100).wrapping_sub(1))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Connections accepted (those rejected over the limit included).
    pub connections_accepted: u64,
    /// Connections being served now.
    pub connections_active: u64,
    /// Request heads parsed successfully.
    pub requests: u64,
    /// Responses written, by class: `[1xx, 2xx, 3xx, 4xx, 5xx]` (100 Continue included).
    pub responses: [u64; 5],
    /// Connections answered 503 (or closed) because the connection limit was reached.
    pub rejected_over_limit: u64,
    /// Rejected requests by cause, indexed like [`ParseError::ALL`].
    pub parse_errors: [u64; ParseError::ALL.len()],
    /// Connections closed because a request head did not arrive in time.
    pub header_timeouts: u64,
    /// Connections closed because no request came within the idle timeout.
    pub idle_timeouts: u64,
    /// Connections closed because a body read or a response write made no progress in time.
    pub body_timeouts: u64,
    /// Handlers that panicked (answered 500).
    pub handler_panics: u64,
    /// Connections handed over to an upgrade.
    pub upgrades: u64,
    /// Failed `accept` calls.
    pub accept_errors: u64,
}

impl ServerStats {
    /// Rejections with `cause`.
    pub fn parse_errors_of(&self, cause: ParseError) -> u64 {
        self.parse_errors[cause.index()]
    }

    /// Responses with a status in `class`xx (1 to 5).
    pub fn responses_of_class(&self, class: u16) -> u64 {
        self.responses
            .get(usize::from(class).wrapping_sub(1))
            .copied()
            .unwrap_or(0)
    }
}

struct Shared {
    config: ServerConfig,
    handler: Box<dyn Handler>,
    counters: Counters,
    stopping: AtomicBool,
}

impl Shared {
    fn stats(&self) -> ServerStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ServerStats {
            connections_accepted: load(&c.accepted),
            connections_active: c.active.load(Ordering::Relaxed) as u64,
            requests: load(&c.requests),
            responses: std::array::from_fn(|i| load(&c.responses[i])),
            rejected_over_limit: load(&c.rejected_over_limit),
            parse_errors: std::array::from_fn(|i| load(&c.parse_errors[i])),
            header_timeouts: load(&c.header_timeouts),
            idle_timeouts: load(&c.idle_timeouts),
            body_timeouts: load(&c.body_timeouts),
            handler_panics: load(&c.handler_panics),
            upgrades: load(&c.upgrades),
            accept_errors: load(&c.accept_errors),
        }
    }
}

/// Stops a running [`Server`] from another thread: it stops accepting and lets connections
/// finish. Cheap to clone.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl ShutdownHandle {
    /// Stops accepting; connections close after the request they are serving.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        (self.wake)();
    }

    /// The server's counters now.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }
}

/// A running HTTP/1.1 server: an accept thread and a thread per connection. See the module
/// documentation for the design.
pub struct Server {
    shared: Arc<Shared>,
    accept_thread: Option<JoinHandle<()>>,
    local_addr: Option<SocketAddr>,
    handle: ShutdownHandle,
}

impl Server {
    /// Starts serving `handler` on `listener` with `config`, in background threads.
    pub fn start<L: Listen>(
        listener: L,
        handler: impl Handler,
        config: ServerConfig,
    ) -> io::Result<Server> {
        let local_addr = listener.local_addr().ok();
        let shared = Arc::new(Shared {
            config,
            handler: Box::new(handler),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
        });
        let listener = Arc::new(listener);
        // Weak: the listener closes when the accept loop ends, whoever holds a handle.
        let waker = Arc::downgrade(&listener);
        let handle = ShutdownHandle {
            shared: shared.clone(),
            wake: Arc::new(move || {
                if let Some(l) = waker.upgrade() {
                    l.wake_accept();
                }
            }),
        };
        let accept_shared = shared.clone();
        let accept_thread = thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_loop(&*listener, &accept_shared))?;
        Ok(Server {
            shared,
            accept_thread: Some(accept_thread),
            local_addr,
            handle,
        })
    }

    /// Binds a `std::net::TcpListener` on `addr` and serves `handler` on it.
    pub fn bind_std(
        addr: impl std::net::ToSocketAddrs,
        handler: impl Handler,
        config: ServerConfig,
    ) -> io::Result<Server> {
        Server::start(TcpListener::bind(addr)?, handler, config)
    }

    /// The address listened on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The server's counters now.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats()
    }

    /// A handle that stops the server from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Blocks until the server stops accepting (after a [`ShutdownHandle::shutdown`]).
    pub fn wait(mut self) {
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }

    /// Stops accepting, lets connections finish their current request, and waits up to
    /// `deadline` for every connection to close. Returns the final counters.
    pub fn shutdown(mut self, deadline: Duration) -> ServerStats {
        self.handle.shutdown();
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let until = Instant::now() + deadline;
        while self.shared.counters.active.load(Ordering::SeqCst) > 0 && Instant::now() < until {
            thread::sleep(Duration::from_millis(10));
        }
        self.shared.stats()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.accept_thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

fn accept_loop<L: Listen>(listener: &L, shared: &Arc<Shared>) {
    let c = &shared.counters;
    while !shared.stopping.load(Ordering::SeqCst) {
        let (conn, remote) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => {}
                    io::ErrorKind::NotConnected => break, // the stack is gone
                    _ => {
                        c.accept_errors.fetch_add(1, Ordering::Relaxed);
                        log::warn!("http: accept failed: {e}");
                        // Out of descriptors and the like: do not spin.
                        thread::sleep(Duration::from_millis(10));
                    }
                }
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        c.accepted.fetch_add(1, Ordering::Relaxed);
        if c.active.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections {
            c.active.fetch_sub(1, Ordering::SeqCst);
            reject_over_limit(conn, shared);
            continue;
        }
        let conn_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .stack_size(shared.config.stack_size)
            .spawn(move || {
                let _active = ActiveGuard(&conn_shared.counters.active);
                serve_connection(conn, remote, &conn_shared);
            });
        if let Err(e) = spawned {
            // The connection (moved into the closure) is dropped with it.
            log::warn!("http: cannot start a connection thread: {e}");
            c.active.fetch_sub(1, Ordering::SeqCst);
            c.rejected_over_limit.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Past the connection limit: 503 and close, from a short-lived thread so the accept loop
/// never waits on a client; with too many of those already, close at once.
fn reject_over_limit<C: Connection>(conn: C, shared: &Arc<Shared>) {
    let c = &shared.counters;
    c.rejected_over_limit.fetch_add(1, Ordering::Relaxed);
    if c.rejectors.fetch_add(1, Ordering::SeqCst) >= MAX_REJECTORS {
        c.rejectors.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let shared2 = shared.clone();
    let spawned = thread::Builder::new()
        .name("http-reject".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let _guard = ActiveGuard(&shared2.counters.rejectors);
            let mut conn = conn;
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let mut resp = error_response(503).header("Retry-After", "1");
            let ctx = ResponseContext {
                version: Version::Http11,
                head: false,
                keep_alive: false,
            };
            if write_response(&mut conn, &mut resp, ctx).is_ok() {
                shared2.counters.response(503);
            }
            linger_close(&mut conn);
        });
    if spawned.is_err() {
        c.rejectors.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Closes our side and reads what the client still sends for a moment, so that a reset does
/// not destroy the response it has not read yet (RFC 9112 §9.6).
fn linger_close<C: Connection>(conn: &mut C) {
    let _ = conn.flush();
    if conn.shutdown_write().is_err() {
        return;
    }
    let until = Instant::now() + LINGER;
    let mut dropped = 0;
    let mut buf = [0u8; 4096];
    while dropped < LINGER_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// Why reading more bytes failed.
enum ReadEnd {
    /// The peer closed (or reset) the connection.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// Idle while the server is shutting down.
    Stopping,
}

struct ConnState<'a, C: Connection> {
    conn: C,
    buf: Vec<u8>,
    /// Where each read lands before its bytes join `buf` (allocated once per connection, so
    /// no read zero-fills fresh space).
    scratch: Box<[u8; READ_CHUNK]>,
    shared: &'a Shared,
    /// The read timeout last set, to skip redundant calls.
    read_timeout: Option<Duration>,
}

impl<C: Connection> ConnState<'_, C> {
    /// Reads more bytes into `buf`, waiting at most until `deadline`. When `idle` and the
    /// server is stopping, gives up with [`ReadEnd::Stopping`].
    fn read_more(&mut self, deadline: Instant, idle: bool) -> Result<usize, ReadEnd> {
        loop {
            if idle && self.shared.stopping.load(Ordering::Relaxed) {
                return Err(ReadEnd::Stopping);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadEnd::TimedOut);
            }
            // Whole milliseconds (at least one: a zero timeout is an error), so the timeout
            // set is often the same as the last one and needs no system call.
            let mut wait = Duration::from_millis(left.as_millis().max(1) as u64);
            if idle {
                wait = wait.min(SHUTDOWN_POLL);
            }
            if self.read_timeout != Some(wait) {
                if self.conn.set_read_timeout(Some(wait)).is_err() {
                    return Err(ReadEnd::Closed);
                }
                self.read_timeout = Some(wait);
            }
            match self.conn.read(&mut self.scratch[..]) {
                Ok(0) => return Err(ReadEnd::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&self.scratch[..n]);
                    return Ok(n);
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => continue,
                    _ => return Err(ReadEnd::Closed),
                },
            }
        }
    }

    /// Reads more of a request body, within the idle timeout and before `body_deadline`; false
    /// when the connection is to end (a timeout is counted).
    fn read_body_more(&mut self, body_deadline: Instant) -> bool {
        let deadline = (Instant::now() + self.shared.config.idle_timeout).min(body_deadline);
        match self.read_more(deadline, false) {
            Ok(_) => true,
            Err(ReadEnd::TimedOut) => {
                self.shared
                    .counters
                    .body_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(_) => false,
        }
    }

    /// Answers a rejected request and closes.
    fn reject(&mut self, e: ParseError) {
        let c = &self.shared.counters;
        c.parse_errors[e.index()].fetch_add(1, Ordering::Relaxed);
        log::debug!("http: rejected a request: {e:?}");
        self.send_error(e.status());
    }

    fn send_error(&mut self, status: u16) {
        let mut resp = error_response(status);
        let ctx = ResponseContext {
            version: Version::Http11,
            head: false,
            keep_alive: false,
        };
        if write_response(&mut self.conn, &mut resp, ctx).is_ok() {
            self.shared.counters.response(status);
        }
        linger_close(&mut self.conn);
    }
}

/// Serves requests on one connection until it closes, times out, fails or is upgraded.
fn serve_connection<C: Connection>(conn: C, remote: SocketAddr, shared: &Shared) {
    let config = &shared.config;
    let c = &shared.counters;
    let _ = conn.set_nodelay(true);
    let _ = conn.set_write_timeout(Some(config.idle_timeout));
    let mut st = ConnState {
        conn,
        buf: Vec::new(),
        scratch: Box::new([0; READ_CHUNK]),
        shared,
        read_timeout: None,
    };
    loop {
        // 1. The head (RFC 9112 §2.2), within the idle and header timeouts.
        let idle_deadline = Instant::now() + config.idle_timeout;
        let mut header_deadline = None;
        let mut scanner = HeadScanner::new();
        let span = loop {
            match scanner.scan(&st.buf, &config.limits) {
                Err(e) => return st.reject(e),
                Ok(Some(span)) => break span,
                Ok(None) => {}
            }
            let idle = st.buf.is_empty();
            let deadline = if idle {
                idle_deadline
            } else {
                *header_deadline.get_or_insert_with(|| Instant::now() + config.header_timeout)
            };
            match st.read_more(deadline, idle) {
                Ok(_) => {}
                Err(ReadEnd::Closed) | Err(ReadEnd::Stopping) => return,
                Err(ReadEnd::TimedOut) if idle => {
                    c.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(ReadEnd::TimedOut) => {
                    // RFC 9110 §15.5.9: 408 and close.
                    c.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    return st.send_error(408);
                }
            }
        };
        let head = match parse_request_head_bytes(&st.buf[span.start..span.end], &config.limits) {
            Ok(h) => h,
            Err(e) => return st.reject(e),
        };
        st.buf.drain(..span.end);
        c.requests.fetch_add(1, Ordering::Relaxed);
        let mut req = head.request;
        req.remote = Some(remote);
        let version = req.version;
        let keep_alive = persistent(version, &req.headers);

        // 2. The body (RFC 9112 §6.3), after a 100 Continue when the client waits for one
        // and has sent nothing of the body yet (RFC 9110 §10.1.1).
        if head.expect_continue && head.framing != BodyFraming::None && st.buf.is_empty() {
            if write_continue(&mut st.conn).is_err() {
                return;
            }
            c.response(100);
        }
        let body_deadline = Instant::now() + config.body_timeout;
        match head.framing {
            BodyFraming::None | BodyFraming::UntilClose => {}
            BodyFraming::Length(n) => {
                // The parser has checked n against the body limit, so it fits in memory.
                let n = n as usize;
                while st.buf.len() < n {
                    if !st.read_body_more(body_deadline) {
                        return;
                    }
                }
                req.body = st.buf.drain(..n).collect();
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new(&config.limits);
                loop {
                    match decoder.decode(&st.buf, &mut req.body) {
                        Err(e) => return st.reject(e),
                        Ok((used, done)) => {
                            st.buf.drain(..used);
                            if done {
                                break;
                            }
                        }
                    }
                    if !st.read_body_more(body_deadline) {
                        return;
                    }
                }
            }
        }

        // 3. The handler; a panic is answered 500 and closes the connection.
        let method = req.method;
        let mut resp = match catch_unwind(AssertUnwindSafe(|| shared.handler.handle(req))) {
            Ok(r) => r,
            Err(_) => {
                c.handler_panics.fetch_add(1, Ordering::Relaxed);
                log::warn!("http: a handler panicked; answered 500");
                return st.send_error(500);
            }
        };

        // 4. An upgrade (RFC 9110 §7.8): write the 101, then the connection is no longer HTTP.
        if resp.status == 101 {
            let Some(on_upgrade) = resp.on_upgrade.take() else {
                log::warn!("http: a 101 response without an upgrade hook; answered 500");
                return st.send_error(500);
            };
            let ctx = ResponseContext {
                version,
                head: false,
                keep_alive: true,
            };
            if write_response(&mut st.conn, &mut resp, ctx).is_err() {
                return;
            }
            c.response(101);
            c.upgrades.fetch_add(1, Ordering::Relaxed);
            let _ = st.conn.set_read_timeout(None);
            let _ = st.conn.set_write_timeout(None);
            let ConnState { conn, buf, .. } = st;
            on_upgrade(Upgraded {
                buffered: buf,
                stream: Box::new(conn),
            });
            return;
        }

        // A large body must not stay allocated while the connection idles.
        if st.buf.capacity() > KEEP_BUFFER && st.buf.len() <= KEEP_BUFFER {
            st.buf.shrink_to(KEEP_BUFFER);
        }

        // 5. The response, in order (one request at a time: pipelined requests wait in buf).
        // A stopping server closes after the request in progress.
        let ctx = ResponseContext {
            version,
            head: method == Method::Head,
            keep_alive: keep_alive && !shared.stopping.load(Ordering::Relaxed),
        };
        let status = resp.status;
        match write_response(&mut st.conn, &mut resp, ctx) {
            Ok(true) => c.response(status),
            Ok(false) => {
                c.response(status);
                return linger_close(&mut st.conn);
            }
            Err(e) => {
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) {
                    c.body_timeouts.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        }
    }
}
