//! `TcpStream`: a connection's handle, its reads and writes straight on the shared rings, its
//! options and its close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use netstack_network::wire::IpProtocol;
use netstack_transport::tcp::recv_buffer::{HINT_WINDOW_EDGE, HINT_WINDOW_STEP};
use netstack_transport::tcp::ring::{Consumer, Producer};
use netstack_transport::tcp::{ConnId, FourTuple, Keepalive, SocketOptions, State, TcpError};
use parking_lot::Mutex;

use super::{
    check_buffers, gone, timeout_io, v4_all, ConnShared, CLOSED, CONNECTED, EOF, READ_SHUT,
    WRITE_SHUT,
};
use crate::msg::TcpCmd;
use crate::stack::Shared;
use crate::udp::check_timeout;
use crate::StackHandle;

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

    pub(super) fn new(
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

    pub(super) fn id(&self) -> io::Result<ConnId> {
        self.inner
            .conn
            .id()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    pub(super) fn command(&self, cmd: TcpCmd) -> io::Result<()> {
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
