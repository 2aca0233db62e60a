//! `TcpListener` and `TcpStream`: `std::net`-shaped TCP sockets over the stack.
//!
//! A connection lives in the `tcp::Endpoint` of the transport worker its 4-tuple hashes to.
//! Its send and receive buffers are rings shared with the application (`tcp::ring`): a `write`
//! with space free and a `read` with data ready copy once, between the caller's slice and the
//! ring, and touch no channel. The worker hears of them through its ready list (one entry per
//! connection at most, one wake-up when the list goes from empty to non-empty):
//! - a write puts its connection on the list unless it is there already, so new bytes go out
//!   at the worker's next look instead of waiting for an ACK; a writer faster than the worker
//!   costs it one look per wake-up, not one per write;
//! - a read that reopened the receive window by at least min(MSS, buffer / 2) and doubled it
//!   (RFC 9293 §3.8.6.2.2; the worker's last advertised edge is published in the ring).
//!
//! An application thread sleeps only when it must wait, on the condition variable of the side
//! it waits for; the worker wakes it only if one is waiting: readers when data or the end of
//! the stream arrives, writers when at least a third of the send buffer is free (as Linux).
//! Commands (connect, listen, close, shutdown, options) travel on the worker's command queue,
//! never behind packets, and the hot path sends none.
//!
//! Listeners are in a shared table; every worker holds a copy of each listen, since a SYN lands
//! on whichever worker its 4-tuple hashes to. Accepted connections queue on the listener.
//!
//! Errors carry the `io::ErrorKind` std gives on Linux: `ConnectionRefused`,
//! `ConnectionReset` (reported once; later reads return `Ok(0)` and writes `BrokenPipe`),
//! `TimedOut`, `HostUnreachable`, `AddrInUse`, `AddrNotAvailable`, `NotConnected`,
//! `BrokenPipe`, `WouldBlock` (non-blocking, and timeouts, as Linux's EAGAIN), `InvalidInput`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use netstack_network::wire::IpProtocol;
use netstack_transport::tcp::recv_buffer::{HINT_WINDOW_EDGE, HINT_WINDOW_STEP};
use netstack_transport::tcp::ring::{Consumer, Producer};
use netstack_transport::tcp::{
    AppIo, ConnId, FourTuple, Keepalive, SocketOptions, State, TcpError,
};
use netstack_transport::udp::EPHEMERAL_PORTS;
use parking_lot::{Condvar, Mutex};

use crate::msg::TcpCmd;
use crate::stack::Shared;
use crate::udp::check_timeout;
use crate::StackHandle;

/// Connections a listener holds ready for `accept` at most, whatever backlog is asked.
pub const MAX_BACKLOG: usize = 4096;

/// The backlog `TcpListener::bind` uses (std's, and Linux's default somaxconn before 5.4).
pub const DEFAULT_BACKLOG: usize = 128;

/// How far past its backlog a listener's queue may grow while workers admit SYNs at the same
/// time (each checks the queue once per batch of packets).
const ACCEPT_SLACK: usize = 256;

/// The default IPv4 TTL of a TCP socket (Linux's net.ipv4.ip_default_ttl).
pub const DEFAULT_TTL: u8 = 64;

// Connection flags, set by the worker (CONNECTED, EOF, CLOSED) or the application.
const CONNECTED: u32 = 1;
/// The peer's FIN arrived: reads return 0 once the ring is empty.
const EOF: u32 = 2;
/// The connection is over (orderly or with an error): no more writes.
const CLOSED: u32 = 4;
const READ_SHUT: u32 = 8;
const WRITE_SHUT: u32 = 16;

/// What a connection's worker and its application threads share.
pub(crate) struct ConnShared {
    pub worker: usize,
    id: OnceLock<ConnId>,
    tx: Mutex<Option<Producer>>,
    tx_cond: Condvar,
    rx: Mutex<Option<Consumer>>,
    rx_cond: Condvar,
    flags: AtomicU32,
    readers_waiting: AtomicU32,
    writers_waiting: AtomicU32,
    /// The connection is on its worker's ready list (so it is not put there twice).
    queued: AtomicBool,
    /// The error that ended the connection, until a call reports it (once, as Linux).
    error: Mutex<Option<TcpError>>,
    /// The error, kept after it was reported, for `connect` and `info`.
    final_error: Mutex<Option<TcpError>>,
    opts: Mutex<SocketOptions>,
    ttl: std::sync::atomic::AtomicU8,
}

impl ConnShared {
    pub fn new(worker: usize) -> Self {
        Self {
            worker,
            id: OnceLock::new(),
            tx: Mutex::new(None),
            tx_cond: Condvar::new(),
            rx: Mutex::new(None),
            rx_cond: Condvar::new(),
            flags: AtomicU32::new(0),
            readers_waiting: AtomicU32::new(0),
            writers_waiting: AtomicU32::new(0),
            queued: AtomicBool::new(false),
            error: Mutex::new(None),
            final_error: Mutex::new(None),
            opts: Mutex::new(SocketOptions::default()),
            ttl: std::sync::atomic::AtomicU8::new(DEFAULT_TTL),
        }
    }

    pub fn id(&self) -> Option<ConnId> {
        self.id.get().copied()
    }

    fn has(&self, flag: u32) -> bool {
        self.flags.load(Ordering::SeqCst) & flag != 0
    }

    fn set(&self, flag: u32) {
        self.flags.fetch_or(flag, Ordering::SeqCst);
    }

    /// The worker gave the connection an id and its rings (the application's sides).
    /// The options the connection started with (an accepted one: its listener's).
    pub fn set_opts(&self, opts: SocketOptions) {
        *self.opts.lock() = opts;
    }

    pub fn attach(&self, id: ConnId, io: Option<AppIo>) {
        let _ = self.id.set(id);
        if let Some(io) = io {
            *self.tx.lock() = Some(io.send);
            *self.rx.lock() = Some(io.recv);
        }
    }

    /// Wakes every thread waiting on this connection, whatever it waits for.
    fn wake_all(&self) {
        drop(self.rx.lock());
        self.rx_cond.notify_all();
        drop(self.tx.lock());
        self.tx_cond.notify_all();
    }

    pub fn on_connected(&self) {
        self.set(CONNECTED);
        self.wake_all();
    }

    /// Data (or the end of the stream, when `eof`) arrived: wake a reader if one waits.
    pub fn on_readable(&self, eof: bool) {
        if eof {
            self.set(EOF);
        }
        // Pairs with the reader's SeqCst increment then ring check (see `read_inner`).
        if self.readers_waiting.load(Ordering::SeqCst) > 0 {
            drop(self.rx.lock());
            self.rx_cond.notify_all();
        }
    }

    /// At least a third of the send buffer is free: wake a writer if one waits.
    pub fn on_writable(&self) {
        if self.writers_waiting.load(Ordering::SeqCst) > 0 {
            drop(self.tx.lock());
            self.tx_cond.notify_all();
        }
    }

    pub fn on_closed(&self, err: Option<TcpError>) {
        if let Some(e) = err {
            let mut pending = self.error.lock();
            if self.final_error.lock().is_none() {
                *pending = Some(e);
                *self.final_error.lock() = Some(e);
            }
        }
        self.set(CLOSED | EOF);
        self.wake_all();
    }

    /// The stack stops taking data from the application (a shutdown of the stack): later
    /// writes fail, and no write can slip in behind the FIN the worker is about to queue.
    pub fn shut_write(&self) {
        let g = self.tx.lock();
        self.set(WRITE_SHUT);
        drop(g);
        // A writer waiting for room fails with BrokenPipe now rather than at the next ACK.
        self.tx_cond.notify_all();
    }

    /// Takes the pending error, if any (reported once).
    fn take_error(&self) -> Option<TcpError> {
        self.error.lock().take()
    }

    /// Puts the connection on its worker's ready list (once), waking the worker when the
    /// list was empty.
    fn nudge(&self, shared: &Shared) {
        let Some(id) = self.id() else { return };
        if self.queued.swap(true, Ordering::SeqCst) {
            return;
        }
        shared.tcp_nudge(self.worker, id);
    }

    /// The worker took the connection off its ready list.
    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::SeqCst);
    }
}

/// A listener's accept queue, shared by every worker.
pub(crate) struct ListenerShared {
    pub local: SocketAddrV4,
    backlog: usize,
    /// What accepted connections start with.
    pub opts: SocketOptions,
    /// Connections waiting in `queue` (read by the workers without the lock).
    waiting: AtomicUsize,
    queue: Mutex<AcceptQueue>,
    cond: Condvar,
}

#[derive(Default)]
struct AcceptQueue {
    ready: VecDeque<(Arc<ConnShared>, SocketAddrV4)>,
    /// The listener is gone: no more pushes.
    closed: bool,
}

impl ListenerShared {
    /// A worker's `Accepted` event; false when the queue is full (the worker aborts it).
    pub fn push(&self, conn: Arc<ConnShared>, remote: SocketAddrV4) -> bool {
        let mut q = self.queue.lock();
        // Workers admit SYNs against `waiting`, refreshed once per batch, so several may
        // overshoot the backlog by a little at once; past this slack the connection is reset.
        if q.ready.len() >= self.backlog + ACCEPT_SLACK || q.closed {
            return false;
        }
        q.ready.push_back((conn, remote));
        self.waiting.store(q.ready.len(), Ordering::Relaxed);
        self.cond.notify_one();
        true
    }

    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.cond.notify_all();
    }

    /// Connections waiting to be accepted.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

fn v4_all(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddrV4>> {
    let v: Vec<SocketAddrV4> = addr
        .to_socket_addrs()?
        .filter_map(|a| match a {
            SocketAddr::V4(a) => Some(a),
            SocketAddr::V6(_) => None,
        })
        .collect();
    if v.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no IPv4 address given (IPv6 is not supported yet)",
        ));
    }
    Ok(v)
}

/// Buffer sizes in `opts` within the stack's bounds, else `InvalidInput`.
fn check_buffers(opts: &SocketOptions) -> io::Result<()> {
    use crate::{MAX_TCP_BUFFER, MIN_TCP_BUFFER};
    for (what, n) in [("send", opts.send_buffer), ("receive", opts.recv_buffer)] {
        if let Some(n) = n {
            if !(MIN_TCP_BUFFER..=MAX_TCP_BUFFER).contains(&n) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{what} buffer of {n} bytes: use {MIN_TCP_BUFFER} to {MAX_TCP_BUFFER}"),
                ));
            }
        }
    }
    Ok(())
}

fn timeout_io(what: &str) -> io::Error {
    // Linux reports SO_RCVTIMEO/SO_SNDTIMEO expiry as EAGAIN, which std maps to WouldBlock.
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} timed out"))
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the stack has shut down")
}

/// What `TcpStream::info` reports, like Linux's `TCP_INFO`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpInfo {
    /// The connection's local address and port.
    pub local: SocketAddrV4,
    /// The peer's address and port.
    pub remote: SocketAddrV4,
    /// The transport worker that owns the connection.
    pub worker: usize,
    /// The RFC 9293 state.
    pub state: State,
    /// Bytes in the send buffer: unacknowledged plus unsent.
    pub send_queue: usize,
    /// Bytes received and not yet read (in order).
    pub recv_queue: usize,
    /// Congestion window, in bytes.
    pub cwnd: u64,
    /// Slow-start threshold, in bytes; `u64::MAX` until the first loss.
    pub ssthresh: u64,
    /// Smoothed round-trip time (RFC 6298); `None` before the first sample.
    pub srtt: Option<Duration>,
    /// The current retransmission timeout, backoff included.
    pub rto: Duration,
    /// The peer's advertised window, in bytes (scaled).
    pub snd_wnd: u64,
    /// The window this end advertised that the peer has not filled yet, in bytes.
    pub rcv_wnd: u64,
    /// Data bytes sent for the first time (retransmissions not counted).
    pub bytes_sent: u64,
    /// Data bytes the peer acknowledged.
    pub bytes_acked: u64,
    /// Data bytes received in order.
    pub bytes_received: u64,
    /// Segments sent, retransmissions and pure ACKs included.
    pub segments_sent: u64,
    /// Segments received for this connection.
    pub segments_received: u64,
    /// Segments sent again (SYN, data or FIN), whatever the cause.
    pub retransmissions: u64,
}

impl std::fmt::Display for TcpInfo {
    /// One line, like `ss -ti`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<12} {:>8} {:>8} {:<21} {:<21} worker:{} cwnd:{} ssthresh:{} rtt:{} rto:{} snd_wnd:{} rcv_wnd:{} bytes_sent:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{} retrans:{}",
            format!("{:?}", self.state),
            self.recv_queue,
            self.send_queue,
            self.local,
            self.remote,
            self.worker,
            self.cwnd,
            self.ssthresh,
            self.srtt
                .map_or_else(|| "-".to_string(), |d| format!("{:.3}ms", d.as_secs_f64() * 1e3)),
            format_args!("{:.0}ms", self.rto.as_secs_f64() * 1e3),
            self.snd_wnd,
            self.rcv_wnd,
            self.bytes_sent,
            self.bytes_acked,
            self.bytes_received,
            self.segments_sent,
            self.segments_received,
            self.retransmissions,
        )
    }
}

/// Options a stream carries between calls.
#[derive(Default)]
struct StreamOpts {
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// A TCP connection on the stack, shaped like `std::net::TcpStream`. Handles made with
/// `try_clone` share it; it closes when the last one is dropped (FIN after the buffered data,
/// or RST when unread data remains or linger is zero, as Linux).
pub struct TcpStream {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    conn: Arc<ConnShared>,
    shared: Arc<Shared>,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    opts: Mutex<StreamOpts>,
    nonblocking: AtomicBool,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        // The last handle: close. No lock is held while the command is queued, so a full
        // command queue can only delay this thread, never the worker.
        if let Some(id) = self.conn.id() {
            let _ = self
                .shared
                .tcp_command(self.conn.worker, TcpCmd::Close { id });
        }
    }
}

impl TcpStream {
    /// Opens a connection to `addr` from an ephemeral port of the stack's address, trying
    /// each address `addr` resolves to in turn; the last error is returned if none answers.
    ///
    /// Blocks until the handshake completes or fails with `ConnectionRefused` (a RST or an ICMP
    /// port unreachable answered), `HostUnreachable` or `NetworkUnreachable` (an ICMP error,
    /// or an on-link peer that never answered ARP), `TimedOut` (6 SYN retransmissions, about
    /// 2 minutes, went unanswered), `AddrNotAvailable` (no free local port toward that peer),
    /// `InvalidInput` (no IPv4 address; port 0, 0.0.0.0 or 255.255.255.255), `NotConnected`
    /// (the stack has shut down) or `ConnectionAborted` (it began shutting down meanwhile).
    /// Errors from resolving `addr` are returned as they come.
    pub fn connect(stack: &StackHandle, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_with(stack, addr, SocketOptions::default())
    }

    /// Like [`connect`](Self::connect), with the connection's options from the start: buffer
    /// sizes (SO_SNDBUF/SO_RCVBUF, each from [`MIN_TCP_BUFFER`](crate::MIN_TCP_BUFFER) to
    /// [`MAX_TCP_BUFFER`](crate::MAX_TCP_BUFFER), else `InvalidInput`), Nagle, keepalive,
    /// linger, the user timeout, the congestion controller and the SYN options.
    pub fn connect_with(
        stack: &StackHandle,
        addr: impl ToSocketAddrs,
        opts: SocketOptions,
    ) -> io::Result<TcpStream> {
        check_buffers(&opts)?;
        let mut last = None;
        for a in v4_all(addr)? {
            match Self::connect_inner(stack, a, None, opts) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address")))
    }

    /// Opens a connection to `addr`, giving up with `TimedOut` after `timeout`; otherwise
    /// the errors of [`connect`](Self::connect). A zero `timeout` or an IPv6 `addr` is
    /// `InvalidInput`.
    pub fn connect_timeout(
        stack: &StackHandle,
        addr: &SocketAddr,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot set a 0 duration timeout",
            ));
        }
        let a = v4_all(addr)?[0];
        Self::connect_inner(stack, a, Some(timeout), SocketOptions::default())
    }

    fn connect_inner(
        stack: &StackHandle,
        remote: SocketAddrV4,
        timeout: Option<Duration>,
        opts: SocketOptions,
    ) -> io::Result<TcpStream> {
        let shared = stack.shared().clone();
        shared.check_running()?;
        if remote.port() == 0 || remote.ip().is_unspecified() || remote.ip().is_broadcast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot connect to {remote}"),
            ));
        }
        let local_ip = shared.config.addr.addr;
        // RFC 6056 §3.3.4 (double-hash) candidates; the worker is the one the 4-tuple hashes
        // to, so this connection's segments will always meet it. A 4-tuple still in use (say
        // in TIME-WAIT) is refused by the worker with AddrInUse: the next candidate is tried.
        let deadline = timeout.map(|t| Instant::now() + t);
        for port in shared.tcp_ports.candidates(local_ip, remote).take(64) {
            let local = SocketAddrV4::new(local_ip, port);
            let worker = shared
                .sharder
                .transport_worker(IpProtocol::Tcp, local, remote);
            let conn = Arc::new(ConnShared::new(worker));
            *conn.opts.lock() = opts;
            let cmd = TcpCmd::Connect {
                tuple: FourTuple { local, remote },
                conn: conn.clone(),
                opts,
            };
            shared.tcp_command(worker, cmd)?;
            let mut g = conn.rx.lock();
            loop {
                if conn.has(CONNECTED) {
                    drop(g);
                    return Ok(TcpStream::new(conn, shared, local, remote));
                }
                if conn.has(CLOSED) {
                    match *conn.final_error.lock() {
                        Some(TcpError::AddrInUse) => break, // that 4-tuple is taken: next port
                        Some(e) => return Err(e.into()),
                        None => {
                            return Err(io::Error::new(
                                io::ErrorKind::ConnectionReset,
                                "closed during connect",
                            ))
                        }
                    }
                }
                match deadline {
                    Some(d) => {
                        if conn.rx_cond.wait_until(&mut g, d).timed_out()
                            && !conn.has(CONNECTED | CLOSED)
                        {
                            drop(g);
                            // The worker handles commands in order: by the time it reads this
                            // one it has given the connection an id (or refused it), so the
                            // abort never misses it.
                            let _ = shared.tcp_command(worker, TcpCmd::AbortConn { conn });
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("connect to {remote} timed out"),
                            ));
                        }
                    }
                    None => conn.rx_cond.wait(&mut g),
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("no free local port to reach {remote}"),
        ))
    }

    fn new(
        conn: Arc<ConnShared>,
        shared: Arc<Shared>,
        local: SocketAddrV4,
        peer: SocketAddrV4,
    ) -> TcpStream {
        TcpStream {
            inner: Arc::new(StreamInner {
                conn,
                shared,
                local,
                peer,
                opts: Mutex::new(StreamOpts::default()),
                nonblocking: AtomicBool::new(false),
            }),
        }
    }

    fn id(&self) -> io::Result<ConnId> {
        self.inner
            .conn
            .id()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    fn command(&self, cmd: TcpCmd) -> io::Result<()> {
        self.inner.shared.tcp_command(self.inner.conn.worker, cmd)
    }

    /// The peer's address. Never fails.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.peer))
    }

    /// The local address: the stack's address and this end's port. Never fails.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// Another handle to the same connection, sharing its options, for a second thread (a
    /// reader beside a writer, say); it closes when every handle is dropped. Never fails.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    /// SO_RCVTIMEO: a read waits at most this long, then fails with `WouldBlock`; `None`
    /// waits forever (the default). A zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner.opts.lock().read_timeout = t;
        Ok(())
    }

    /// SO_SNDTIMEO: a write waits at most this long for send buffer space, then fails with
    /// `WouldBlock`; `None` waits forever (the default). A zero duration is `InvalidInput`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner.opts.lock().write_timeout = t;
        Ok(())
    }

    /// The read timeout set by [`set_read_timeout`](Self::set_read_timeout). Never fails.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.opts.lock().read_timeout)
    }

    /// The write timeout set by [`set_write_timeout`](Self::set_write_timeout). Never fails.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.opts.lock().write_timeout)
    }

    /// O_NONBLOCK: reads and writes (of every handle) fail with `WouldBlock` instead of
    /// waiting. Never fails.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Changes one option and hands the whole set to the worker.
    fn update_opts(&self, f: impl FnOnce(&mut SocketOptions)) -> io::Result<()> {
        let id = self.id()?;
        let opts = {
            let mut o = self.inner.conn.opts.lock();
            f(&mut o);
            *o
        };
        self.command(TcpCmd::SetOptions { id, opts })
    }

    /// TCP_NODELAY: disables Nagle's algorithm, so small writes leave at once instead of
    /// waiting for the ACK of data in flight. Off by default. Fails with `NotConnected` once
    /// the stack has shut down.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.update_opts(|o| o.nodelay = on)
    }

    /// Whether TCP_NODELAY is set. Never fails.
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(self.inner.conn.opts.lock().nodelay)
    }

    /// SO_LINGER. Only a zero timeout changes anything here: the close then aborts with a RST
    /// (a non-zero linger behaves as the default, a background graceful close). Fails with
    /// `NotConnected` once the stack has shut down.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.update_opts(|o| o.linger_zero = linger == Some(Duration::ZERO))
    }

    /// `Some(Duration::ZERO)` after `set_linger(Some(Duration::ZERO))`, else `None` (the
    /// only values this stack keeps). Never fails.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        Ok(self
            .inner
            .conn
            .opts
            .lock()
            .linger_zero
            .then_some(Duration::ZERO))
    }

    /// SO_KEEPALIVE with its parameters (TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT); `None`
    /// turns keepalive off (the default). An idle time or interval under one second, or a
    /// count of 0, is `InvalidInput`; `NotConnected` once the stack has shut down. When every
    /// probe goes unanswered the connection fails with `TimedOut`.
    pub fn set_keepalive(&self, keepalive: Option<Keepalive>) -> io::Result<()> {
        if let Some(k) = keepalive {
            if k.idle < Duration::from_secs(1)
                || k.interval < Duration::from_secs(1)
                || k.count == 0
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "keepalive idle and interval must be at least 1 s and count at least 1",
                ));
            }
        }
        self.update_opts(|o| o.keepalive = keepalive)
    }

    /// The keepalive parameters, `None` when keepalive is off. Never fails.
    pub fn keepalive(&self) -> io::Result<Option<Keepalive>> {
        Ok(self.inner.conn.opts.lock().keepalive)
    }

    /// TCP_USER_TIMEOUT (RFC 5482): the connection fails with `TimedOut` when sent data stays
    /// unacknowledged this long; `None` leaves it to the retransmission limit (the default). A
    /// zero duration is `InvalidInput`; `NotConnected` once the stack has shut down.
    pub fn set_user_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.update_opts(|o| o.user_timeout = t)
    }

    /// IP_TTL for this connection's packets. Applies to segments built from now on. A value
    /// outside 1 to 255 is `InvalidInput`; `NotConnected` once the stack has shut down.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl)
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "TTL must be 1 to 255"))?;
        self.inner.conn.ttl.store(ttl, Ordering::Relaxed);
        let id = self.id()?;
        self.command(TcpCmd::SetTtl { id, ttl })
    }

    /// The IP TTL of this connection's packets ([`DEFAULT_TTL`] unless set). Never fails.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(u32::from(self.inner.conn.ttl.load(Ordering::Relaxed)))
    }

    /// SO_SNDBUF: the send buffer's size in bytes, fixed when the connection was made
    /// ([`StackConfig::tcp_send_buffer`](crate::StackConfig::tcp_send_buffer)).
    pub fn send_buffer_size(&self) -> usize {
        self.inner
            .conn
            .tx
            .lock()
            .as_ref()
            .map_or(0, Producer::capacity)
    }

    /// SO_RCVBUF: the receive buffer's size in bytes, fixed when the connection was made
    /// ([`StackConfig::tcp_recv_buffer`](crate::StackConfig::tcp_recv_buffer)).
    pub fn recv_buffer_size(&self) -> usize {
        self.inner
            .conn
            .rx
            .lock()
            .as_ref()
            .map_or(0, Consumer::capacity)
    }

    /// SO_ERROR: the error that ended the connection, if it was not reported yet (taking it
    /// here means reads and writes will not report it).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(self.inner.conn.take_error().map(Into::into))
    }

    /// The connection's state and counters, like Linux's `TCP_INFO` (one round trip to the
    /// worker). Fails with `NotConnected` once the worker no longer holds the connection (it
    /// closed and left TIME-WAIT) or the stack has shut down.
    pub fn info(&self) -> io::Result<TcpInfo> {
        let id = self.id()?;
        let (reply, rx) = bounded(1);
        self.command(TcpCmd::Info { id, reply })?;
        rx.recv()
            .map_err(|_| gone())?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the connection is gone"))
    }

    /// Half or full close, as `std::net::TcpStream::shutdown`: `Write` sends a FIN after
    /// the buffered data (later writes fail with `BrokenPipe`); `Read` makes reads return 0
    /// from now on (as Linux); `Both` does both and wakes every thread blocked on the stream.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let id = self.id()?;
        let conn = &self.inner.conn;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            conn.set(READ_SHUT);
            drop(conn.rx.lock());
            conn.rx_cond.notify_all();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            // Under the writers' lock: no write lands behind the FIN.
            conn.shut_write();
            if !conn.has(CLOSED) {
                self.command(TcpCmd::ShutdownWrite { id })?;
            }
        }
        Ok(())
    }

    /// Reads without consuming: the next `read` returns the same bytes. Returns and fails as
    /// `read` does.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf, true)
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf, false)
    }

    fn read_with(&self, buf: &mut [u8], peek: bool) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let conn = &self.inner.conn;
        let mut deadline = None;
        let mut g = conn.rx.lock();
        loop {
            let Some(ring) = g.as_mut() else {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
            };
            let n = if peek {
                ring.peek_at(0, buf)
            } else {
                ring.read(buf)
            };
            if n > 0 {
                let nudge = !peek && window_update_due(ring);
                drop(g);
                if nudge {
                    conn.nudge(&self.inner.shared);
                }
                return Ok(n);
            }
            if conn.has(READ_SHUT) {
                return Ok(0);
            }
            if let Some(e) = conn.take_error() {
                return Err(e.into());
            }
            if conn.has(EOF | CLOSED) {
                return Ok(0);
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "no data waiting"));
            }
            if deadline.is_none() {
                deadline = Some(
                    self.inner
                        .opts
                        .lock()
                        .read_timeout
                        .map(|t| Instant::now() + t),
                );
            }
            // Announce the wait, then look again: the worker publishes data before it checks
            // for waiters, so one of the two sees the other (both SeqCst).
            conn.readers_waiting.fetch_add(1, Ordering::SeqCst);
            let ready =
                g.as_ref().is_some_and(|r| !r.is_empty()) || conn.has(EOF | CLOSED | READ_SHUT);
            let timed_out = if ready {
                false
            } else {
                match deadline.flatten() {
                    Some(d) => conn.rx_cond.wait_until(&mut g, d).timed_out(),
                    None => {
                        conn.rx_cond.wait(&mut g);
                        false
                    }
                }
            };
            conn.readers_waiting.fetch_sub(1, Ordering::SeqCst);
            if timed_out && g.as_ref().is_none_or(|r| r.is_empty()) && !conn.has(EOF | CLOSED) {
                return Err(timeout_io("read"));
            }
        }
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let conn = &self.inner.conn;
        let mut deadline = None;
        let mut g = conn.tx.lock();
        loop {
            if conn.has(WRITE_SHUT) {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the stream was shut down for writing",
                ));
            }
            if conn.has(CLOSED) {
                if let Some(e) = conn.take_error() {
                    return Err(e.into());
                }
                return Err(TcpError::BrokenPipe.into());
            }
            let Some(ring) = g.as_mut() else {
                return Err(io::Error::new(io::ErrorKind::NotConnected, "not connected"));
            };
            let n = ring.write(buf);
            if n > 0 {
                // Tell the worker, so new bytes go out now rather than at the next ACK (which
                // may be a round trip away when everything sent so far is in flight). At most
                // one entry per connection waits on the ready list, so a writer faster than
                // the worker costs it one look per wake-up, not one per write.
                drop(g);
                conn.nudge(&self.inner.shared);
                return Ok(n);
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "send buffer full",
                ));
            }
            if deadline.is_none() {
                deadline = Some(
                    self.inner
                        .opts
                        .lock()
                        .write_timeout
                        .map(|t| Instant::now() + t),
                );
            }
            conn.writers_waiting.fetch_add(1, Ordering::SeqCst);
            let ready = g.as_ref().is_some_and(|r| r.free() > 0) || conn.has(CLOSED | WRITE_SHUT);
            let timed_out = if ready {
                false
            } else {
                match deadline.flatten() {
                    Some(d) => conn.tx_cond.wait_until(&mut g, d).timed_out(),
                    None => {
                        conn.tx_cond.wait(&mut g);
                        false
                    }
                }
            };
            conn.writers_waiting.fetch_sub(1, Ordering::SeqCst);
            if timed_out && g.as_ref().is_none_or(|r| r.free() == 0) && !conn.has(CLOSED) {
                return Err(timeout_io("write"));
            }
        }
    }
}

/// After a read: has the window reopened enough that the peer should hear of it? The same rule
/// as the connection's own (RFC 9293 §3.8.6.2.2, and at least doubling, as Linux), computed
/// from the edge the worker last advertised.
fn window_update_due(ring: &Consumer) -> bool {
    let cap = ring.capacity();
    let free = cap - ring.len();
    let end = ring.end_position();
    let remaining = ring.hint(HINT_WINDOW_EDGE).wrapping_sub(end);
    let remaining = if remaining > cap { 0 } else { remaining };
    let step = ring.hint(HINT_WINDOW_STEP).max(1);
    free >= 2 * remaining && free - remaining >= step
}

impl Read for TcpStream {
    /// Copies up to `buf.len()` received bytes straight out of the receive buffer, waiting
    /// while it is empty. `Ok(0)` is the end of the stream: the peer's FIN, after
    /// `shutdown(Read)`, or after the error that ended the connection was reported. That error
    /// is returned once: `ConnectionReset` (the peer's RST), `TimedOut` (retransmissions,
    /// keepalive or the user timeout gave up), `HostUnreachable` or `NetworkUnreachable`
    /// (the same, after an ICMP error said so), `ConnectionAborted` (the stack shut down).
    /// `WouldBlock` when non-blocking with nothing to read, or when the read timeout passes.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_inner(buf)
    }
}

impl Write for TcpStream {
    /// Copies as much of `buf` as the send buffer has room for (at least one byte), waiting
    /// while it is full; the stack sends it in the background. Fails with `BrokenPipe` after
    /// `shutdown(Write)` or once the connection is over, except that the error that ended it is
    /// reported first, once (see `read`). `WouldBlock` when non-blocking with the buffer full,
    /// or when the write timeout passes.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    /// Does nothing: a written byte is already the stack's to send. Never fails.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.inner.local)
            .field("peer", &self.inner.peer)
            .finish()
    }
}

/// A TCP listener on the stack, shaped like `std::net::TcpListener`. Handles made with
/// `try_clone` share it; the port is released when the last one is dropped, and connections
/// still waiting to be accepted are then reset.
pub struct TcpListener {
    inner: Arc<ListenerInner>,
}

struct ListenerInner {
    listener: Arc<ListenerShared>,
    shared: Arc<Shared>,
    nonblocking: AtomicBool,
}

impl Drop for ListenerInner {
    fn drop(&mut self) {
        let local = self.listener.local;
        self.shared.tcp_listeners.remove(&local.port());
        self.listener.close();
        for w in 0..self.shared.sharder.transport_workers() {
            let _ = self.shared.tcp_command(w, TcpCmd::Unlisten { local });
        }
        // Connections accepted by the stack but never by the application: reset them. The
        // queue's lock is released before any command is queued.
        let queued: Vec<_> = self.listener.queue.lock().ready.drain(..).collect();
        for (conn, _) in queued {
            if let Some(id) = conn.id() {
                let _ = self.shared.tcp_command(conn.worker, TcpCmd::Abort { id });
            }
        }
    }
}

impl TcpListener {
    /// Listens on `addr` (0.0.0.0 or the stack's address) with the default backlog of
    /// [`DEFAULT_BACKLOG`]. Port 0 picks a free ephemeral port (`local_addr` tells which).
    ///
    /// Fails with `AddrInUse` when another listener holds the port (whatever its address) or
    /// no ephemeral port is free, `AddrNotAvailable` when the address is not the stack's,
    /// `InvalidInput` when `addr` has no IPv4 address, and `NotConnected` once the stack has
    /// shut down. Errors from resolving `addr` are returned as they come.
    pub fn bind(stack: &StackHandle, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with_backlog(stack, addr, DEFAULT_BACKLOG)
    }

    /// Like `bind`, with the accept queue's length (1 to [`MAX_BACKLOG`]; larger values are
    /// capped, as Linux caps at somaxconn, and 0 counts as 1). While the queue is full, SYNs
    /// and handshake-completing ACKs are dropped, as Linux does, so the peer retries. Fails as
    /// `bind` does.
    pub fn bind_with_backlog(
        stack: &StackHandle,
        addr: impl ToSocketAddrs,
        backlog: usize,
    ) -> io::Result<TcpListener> {
        Self::bind_with(stack, addr, backlog, SocketOptions::default())
    }

    /// Like [`bind_with_backlog`](Self::bind_with_backlog), with the options every accepted
    /// connection starts with (buffer sizes as for
    /// [`TcpStream::connect_with`], Nagle, keepalive, linger, the congestion controller, the
    /// SYN options).
    pub fn bind_with(
        stack: &StackHandle,
        addr: impl ToSocketAddrs,
        backlog: usize,
        opts: SocketOptions,
    ) -> io::Result<TcpListener> {
        check_buffers(&opts)?;
        let shared = stack.shared().clone();
        shared.check_running()?;
        let mut local = v4_all(addr)?[0];
        if !local.ip().is_unspecified() && *local.ip() != shared.config.addr.addr {
            return Err(io::Error::new(
                io::ErrorKind::AddrNotAvailable,
                format!(
                    "{}: not an address of this stack ({})",
                    local.ip(),
                    shared.config.addr
                ),
            ));
        }
        let backlog = backlog.clamp(1, MAX_BACKLOG);
        let make = |local| {
            Arc::new(ListenerShared {
                local,
                backlog,
                opts,
                waiting: AtomicUsize::new(0),
                queue: Mutex::new(AcceptQueue::default()),
                cond: Condvar::new(),
            })
        };
        let listener = if local.port() == 0 {
            // An ephemeral port no listener holds, from a random start (RFC 6056 §3.3.1).
            let span = u32::from(*EPHEMERAL_PORTS.end() - *EPHEMERAL_PORTS.start()) + 1;
            let start = shared.random_u32();
            let mut found = None;
            for i in 0..span {
                let port = *EPHEMERAL_PORTS.start() + (start.wrapping_add(i) % span) as u16;
                if let dashmap::Entry::Vacant(v) = shared.tcp_listeners.entry(port) {
                    local.set_port(port);
                    let l = make(local);
                    v.insert(l.clone());
                    found = Some(l);
                    break;
                }
            }
            found.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "no free ephemeral port to listen on",
                )
            })?
        } else {
            match shared.tcp_listeners.entry(local.port()) {
                dashmap::Entry::Occupied(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("TCP {local}: address already in use"),
                    ))
                }
                dashmap::Entry::Vacant(v) => {
                    let l = make(local);
                    v.insert(l.clone());
                    l
                }
            }
        };
        let me = TcpListener {
            inner: Arc::new(ListenerInner {
                listener: listener.clone(),
                shared: shared.clone(),
                nonblocking: AtomicBool::new(false),
            }),
        };
        // Every worker listens (a SYN lands on whichever worker its 4-tuple hashes to), each
        // with the whole backlog for its SYN queue; the shared accept queue holds `backlog`.
        let workers = shared.sharder.transport_workers();
        let mut replies = Vec::with_capacity(workers);
        for w in 0..workers {
            let (reply, rx) = bounded(1);
            let cmd = TcpCmd::Listen {
                local,
                backlog,
                opts,
                listener: listener.clone(),
                reply,
            };
            shared.tcp_command(w, cmd)?;
            replies.push(rx);
        }
        for rx in replies {
            // A worker that refused: dropping `me` undoes the listens that succeeded.
            match rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(gone()),
            }
        }
        Ok(me)
    }

    /// The address listened on, with the port chosen when bound to port 0. Never fails.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.listener.local))
    }

    /// O_NONBLOCK for `accept` (of every handle): it fails with `WouldBlock` when no
    /// connection is waiting. Never fails.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// IP_TTL for accepted connections: only the stack's default, [`DEFAULT_TTL`], is taken;
    /// other values are `Unsupported` (set the TTL on each accepted stream instead).
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        if ttl == u32::from(DEFAULT_TTL) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a listener's TTL is fixed at 64; set it on each accepted stream",
            ))
        }
    }

    /// The TTL of accepted connections: always [`DEFAULT_TTL`]. Never fails.
    pub fn ttl(&self) -> io::Result<u32> {
        Ok(u32::from(DEFAULT_TTL))
    }

    /// SO_ERROR: a listener has no asynchronous errors to report.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Another handle to the same listener, for a second accepting thread. Never fails.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.clone(),
        })
    }

    /// Waits for the next connection that completed its handshake and returns it with the
    /// peer's address (what happened to it since, a FIN or RST, its reads report). Fails with
    /// `WouldBlock` when non-blocking and none is waiting, and with `NotConnected` once the
    /// stack has shut down.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// Like `accept`, but gives up with `WouldBlock` at `deadline` (`None`: waits as long as
    /// `accept`).
    pub fn accept_until(&self, deadline: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
        let l = &self.inner.listener;
        let mut q = l.queue.lock();
        loop {
            if let Some((conn, remote)) = q.ready.pop_front() {
                l.waiting.store(q.ready.len(), Ordering::Relaxed);
                drop(q);
                let local = SocketAddrV4::new(self.inner.shared.config.addr.addr, l.local.port());
                let stream = TcpStream::new(conn, self.inner.shared.clone(), local, remote);
                let id = stream.id()?;
                stream.command(TcpCmd::Accepted { id })?;
                return Ok((stream, SocketAddr::V4(remote)));
            }
            if q.closed || self.inner.shared.check_running().is_err() {
                return Err(gone());
            }
            if self.inner.nonblocking.load(Ordering::Relaxed) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "no connection waiting",
                ));
            }
            match deadline {
                Some(d) => {
                    if l.cond.wait_until(&mut q, d).timed_out() && q.ready.is_empty() {
                        return Err(timeout_io("accept"));
                    }
                }
                None => l.cond.wait(&mut q),
            }
        }
    }

    /// An endless iterator of `accept` results (it never returns `None`).
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<TcpStream>> + '_ {
        std::iter::from_fn(move || Some(self.accept().map(|(s, _)| s)))
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.inner.listener.local)
            .finish()
    }
}
