//! `UdpSocket`: a `std::net::UdpSocket`-shaped socket over the stack.
//!
//! The socket's receive queue is shared between the transport worker that owns its port
//! (which pushes datagrams and ICMP errors in) and application threads (which pop them out);
//! a reader sleeps on a condition variable and is woken only when the queue goes from empty to
//! non-empty, an error arrives, or the stack shuts down.
//!
//! Sends need no per-socket state from a worker, so the sending thread builds the datagram
//! itself (with its shard's [`UdpSender`]) and hands it straight to link TX: one cross-thread
//! wake-up fewer per datagram than a round through the transport worker, and errors (no route,
//! too large) are reported by the call that caused them, as with std.
//!
//! Errors carry the `io::ErrorKind` std gives on Linux: `AddrInUse`, `AddrNotAvailable`,
//! `WouldBlock` (non-blocking, and read timeouts, as Linux's EAGAIN), `ConnectionRefused` (an
//! ICMP port unreachable for a connected socket, reported once on the next call),
//! `NotConnected`, `PermissionDenied` (broadcast without `set_broadcast`), `InvalidInput`.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_network::endpoint::{Ipv4Endpoint, SendError, SendOptions};
use netstack_network::wire::IpProtocol;
use netstack_transport::ports;
use netstack_transport::udp::{BindError, SocketId, UdpRepr, UdpStats, HEADER_LEN, MAX_PAYLOAD};
use parking_lot::{Condvar, Mutex};

use crate::msg::{TxMsg, TxPacket};
use crate::stack::Shared;

/// Bytes of payload a socket's receive queue holds before further datagrams are dropped
/// (Linux's default rmem is about this size).
pub const RECV_QUEUE_BYTES: usize = 256 * 1024;
/// Datagrams a socket's receive queue holds at most, whatever their size.
pub const RECV_QUEUE_DATAGRAMS: usize = 1024;

/// A received datagram: the buffer it arrived in (the whole frame, not copied) and where the
/// payload sits in it.
#[derive(Clone)]
pub(crate) struct Datagram {
    pub from: SocketAddrV4,
    /// The destination address of its IPv4 header: ours or a broadcast.
    pub to: Ipv4Addr,
    pub buf: Vec<u8>,
    pub payload: std::ops::Range<usize>,
}

impl Datagram {
    fn len(&self) -> usize {
        self.payload.len()
    }
}

/// What the transport worker and the application threads share for one socket.
pub(crate) struct SocketInner {
    pub id: SocketId,
    pub local: SocketAddrV4,
    state: Mutex<RecvState>,
    readable: Condvar,
    pub remote: Mutex<Option<SocketAddrV4>>,
    nonblocking: AtomicBool,
    broadcast: AtomicBool,
    timeouts: Mutex<(Option<Duration>, Option<Duration>)>,
}

#[derive(Default)]
struct RecvState {
    queue: VecDeque<Datagram>,
    bytes: usize,
    error: Option<io::ErrorKind>,
    closed: bool,
}

impl SocketInner {
    /// Queues a datagram; false when the queue is full (the caller counts the drop).
    pub fn push(&self, d: Datagram) -> bool {
        let mut s = self.state.lock();
        if s.queue.len() >= RECV_QUEUE_DATAGRAMS || s.bytes + d.len() > RECV_QUEUE_BYTES {
            return false;
        }
        let was_empty = s.queue.is_empty();
        s.bytes += d.len();
        s.queue.push_back(d);
        drop(s);
        if was_empty {
            self.readable.notify_all();
        }
        true
    }

    /// Records an error for the next call (as Linux's pending socket error).
    pub fn set_error(&self, kind: io::ErrorKind) {
        self.state.lock().error = Some(kind);
        self.readable.notify_all();
    }

    /// Wakes every reader with an error: the stack is gone.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.readable.notify_all();
    }
}

/// A UDP socket on a [`Stack`](crate::Stack), shaped like `std::net::UdpSocket`. Handles
/// made with `try_clone` share it; the port is released when the last one is dropped.
///
/// Its receive queue holds at most [`RECV_QUEUE_DATAGRAMS`] datagrams and
/// [`RECV_QUEUE_BYTES`] of payload; past either, arriving datagrams are dropped and counted
/// (`udp.rx_queue_full`). After `connect`, an ICMP error about a datagram sent to the peer is
/// reported once, by the next send or receive: `ConnectionRefused` (port unreachable),
/// `HostUnreachable`, `NetworkUnreachable`.
pub struct UdpSocket {
    handle: Arc<Handle>,
}

/// Unbinds the port when the last clone of a socket goes.
struct Handle {
    inner: Arc<SocketInner>,
    shared: Arc<Shared>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared
            .udp
            .lock()
            .unbind(self.inner.local.port(), self.inner.id);
    }
}

fn v4(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match a {
            SocketAddr::V4(a) => return Ok(a),
            SocketAddr::V6(a) => last = Some(a),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        match last {
            Some(a) => format!("{a}: IPv6 is not supported by this stack yet"),
            None => "no addresses to bind or send to".to_string(),
        },
    ))
}

impl UdpSocket {
    /// Binds to `addr` (port 0 picks an ephemeral port; address 0.0.0.0 or the stack's own).
    ///
    /// Fails with `AddrInUse` when the port is taken (or no ephemeral port is free),
    /// `AddrNotAvailable` when the address is not the stack's, `InvalidInput` when `addr` has
    /// no IPv4 address, and `NotConnected` once the stack has shut down. Errors from resolving
    /// `addr` are returned as they come.
    pub fn bind(stack: &crate::StackHandle, addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let shared = stack.shared().clone();
        let local = v4(addr)?;
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
        shared.check_running()?;
        // Port 0: RFC 6056 §3.3.1, as the socket has no remote yet (see `ports`).
        let candidates = ports::random_candidates(shared.random_u32());
        let mut made = None;
        shared
            .udp
            .lock()
            .bind(local, candidates, |id, bound| {
                let inner = Arc::new(SocketInner::new(id, bound));
                made = Some(inner.clone());
                inner
            })
            .map_err(|e| match e {
                BindError::AddrInUse => io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("UDP {local}: address already in use"),
                ),
                BindError::NoEphemeralPort => {
                    io::Error::new(io::ErrorKind::AddrInUse, "no free ephemeral UDP port")
                }
            })?;
        let inner = made.expect("bind succeeded, so the socket was made");
        Ok(UdpSocket {
            handle: Arc::new(Handle { inner, shared }),
        })
    }

    fn inner(&self) -> &SocketInner {
        &self.handle.inner
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// The address bound, with the port chosen when bound to port 0. Never fails.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner().local))
    }

    /// The address given to `connect`; `NotConnected` when there is none.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner()
            .remote
            .lock()
            .map(SocketAddr::V4)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket is not connected"))
    }

    /// Another handle to the same socket, sharing its queue and options; the port stays bound
    /// until every handle is dropped. Never fails.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            handle: self.handle.clone(),
        })
    }

    /// Sends `buf` as one datagram to `addr` (fragmented when larger than the MTU allows) and
    /// returns `buf.len()`; the datagram is queued for the device, not yet on the wire.
    ///
    /// Fails with `InvalidInput` when `buf` exceeds 65,507 bytes or `addr` has no IPv4 address
    /// or port 0, `PermissionDenied` for a broadcast address without `set_broadcast(true)`,
    /// `NetworkUnreachable` when no route leads to `addr`, `WouldBlock` when the device's send
    /// queue is full and the socket is non-blocking or its write timeout passes, a pending ICMP
    /// error (see [`UdpSocket`]), and `NotConnected` once the stack has shut down.
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let dst = v4(addr)?;
        self.send_datagram(buf, dst)
    }

    /// Sends `buf` as one datagram to the connected peer: `send_to` with the address given to
    /// `connect`, and its errors; `NotConnected` when there is none.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let dst = (*self.inner().remote.lock()).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "send on an unconnected socket: use send_to or connect first",
            )
        })?;
        self.send_datagram(buf, dst)
    }

    fn send_datagram(&self, buf: &[u8], dst: SocketAddrV4) -> io::Result<usize> {
        let shared = self.shared();
        self.take_error()?;
        if buf.len() > MAX_PAYLOAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "message too long: {} bytes, UDP over IPv4 carries at most {MAX_PAYLOAD}",
                    buf.len()
                ),
            ));
        }
        if dst.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot send to port 0",
            ));
        }
        let ip = *dst.ip();
        if (ip.is_broadcast() || shared.config.addr.broadcast() == Some(ip))
            && !self.inner().broadcast.load(Ordering::Relaxed)
        {
            // Linux: EACCES unless SO_BROADCAST is set.
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{ip} is a broadcast address: call set_broadcast(true) first"),
            ));
        }
        let packets = shared.udp_tx[shared.udp_worker(self.inner().local.port())]
            .lock()
            .build(
                Instant::now(),
                shared.config.addr.addr,
                self.inner().local.port(),
                dst,
                buf,
            )?;
        let (nonblocking, timeout) = (
            self.inner().nonblocking.load(Ordering::Relaxed),
            self.inner().timeouts.lock().1,
        );
        shared.send_tx(TxMsg::Packets(packets), nonblocking, timeout)?;
        Ok(buf.len())
    }

    /// Receives one datagram, waiting while none is queued, and returns its length (as
    /// copied) and source; a datagram longer than `buf` is truncated (the rest is lost), as
    /// with std.
    ///
    /// Fails with `WouldBlock` when non-blocking with nothing queued or when the read timeout
    /// passes, a pending ICMP error (see [`UdpSocket`]), and `NotConnected` once the stack has
    /// shut down.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_inner(buf, false).map(|(n, from, _)| (n, from))
    }

    /// Like `recv_from`, and also the destination address of the datagram's IPv4 header: the
    /// stack's own address, or a broadcast (255.255.255.255 or the subnet's) for a socket
    /// bound to 0.0.0.0 (what Linux's `IP_PKTINFO` tells as `ipi_addr`). A service that
    /// answers whatever it receives uses it to leave broadcasts unanswered.
    pub fn recv_from_to(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Ipv4Addr)> {
        self.recv_inner(buf, false)
    }

    /// Like `recv_from`, but leaves the datagram queued: the next receive returns it again.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_inner(buf, true).map(|(n, from, _)| (n, from))
    }

    /// Like `recv_from`, without the source (after `connect`, only the peer's datagrams
    /// arrive).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf, false).map(|(n, _, _)| n)
    }

    /// Like `recv`, but leaves the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv_inner(buf, true).map(|(n, _, _)| n)
    }

    fn take_error(&self) -> io::Result<()> {
        match self.inner().state.lock().error.take() {
            Some(kind) => Err(pending_error(kind)),
            None => Ok(()),
        }
    }

    fn recv_inner(&self, buf: &mut [u8], peek: bool) -> io::Result<(usize, SocketAddr, Ipv4Addr)> {
        let inner = self.inner();
        let deadline = inner.timeouts.lock().0.map(|t| Instant::now() + t);
        let nonblocking = inner.nonblocking.load(Ordering::Relaxed);
        let mut s = inner.state.lock();
        loop {
            if let Some(kind) = s.error.take() {
                return Err(pending_error(kind));
            }
            if let Some(d) = s.queue.front() {
                let data = &d.buf[d.payload.clone()];
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                let (from, to) = (d.from, d.to);
                if !peek {
                    let len = d.len();
                    s.queue.pop_front();
                    s.bytes -= len;
                }
                return Ok((n, SocketAddr::V4(from), to));
            }
            if s.closed {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the stack has shut down",
                ));
            }
            if nonblocking {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    "no datagram waiting",
                ));
            }
            match deadline {
                Some(d) => {
                    if inner.readable.wait_until(&mut s, d).timed_out()
                        && s.queue.is_empty()
                        && s.error.is_none()
                        && !s.closed
                    {
                        // Linux reports SO_RCVTIMEO expiry as EAGAIN, which std maps to WouldBlock.
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "read timed out"));
                    }
                }
                None => inner.readable.wait(&mut s),
            }
        }
    }

    /// Restricts sends and receives to `addr`: `send` goes there, datagrams from elsewhere are
    /// no longer delivered, and ICMP errors about what was sent there are reported. Connecting
    /// again replaces the peer. Fails with `InvalidInput` when `addr` has no IPv4 address.
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let remote = v4(addr)?;
        let inner = self.inner();
        *inner.remote.lock() = Some(remote);
        self.shared()
            .udp
            .lock()
            .connect(inner.local.port(), inner.id, Some(remote));
        Ok(())
    }

    /// SO_RCVTIMEO: a receive waits at most this long, then fails with `WouldBlock`; `None`
    /// waits forever (the default). A zero duration is `InvalidInput`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner().timeouts.lock().0 = t;
        Ok(())
    }

    /// SO_SNDTIMEO: a send waits at most this long for room in the device's send queue, then
    /// fails with `WouldBlock`; `None` waits forever (the default). A zero duration is
    /// `InvalidInput`.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner().timeouts.lock().1 = t;
        Ok(())
    }

    /// The receive timeout set by [`set_read_timeout`](Self::set_read_timeout). Never fails.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner().timeouts.lock().0)
    }

    /// The send timeout set by [`set_write_timeout`](Self::set_write_timeout). Never fails.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner().timeouts.lock().1)
    }

    /// O_NONBLOCK: receives with nothing queued, and sends that find the device's send queue
    /// full, fail with `WouldBlock` instead of waiting. Never fails.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner().nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// SO_BROADCAST: allows sends to 255.255.255.255 and to the stack's subnet broadcast
    /// address (refused with `PermissionDenied` otherwise, as Linux). Never fails.
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner().broadcast.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether SO_BROADCAST is set (off by default). Never fails.
    pub fn broadcast(&self) -> io::Result<bool> {
        Ok(self.inner().broadcast.load(Ordering::Relaxed))
    }

    /// The pending error, if any, cleared (as `SO_ERROR`).
    pub fn take_error_kind(&self) -> Option<io::ErrorKind> {
        self.inner().state.lock().error.take()
    }
}

impl SocketInner {
    pub(crate) fn new(id: SocketId, local: SocketAddrV4) -> Self {
        Self {
            id,
            local,
            state: Mutex::new(RecvState::default()),
            readable: Condvar::new(),
            remote: Mutex::new(None),
            nonblocking: AtomicBool::new(false),
            broadcast: AtomicBool::new(false),
            timeouts: Mutex::new((None, None)),
        }
    }
}

/// std refuses a zero timeout with `InvalidInput`; so do the stack's sockets.
pub(crate) fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        // std refuses a zero timeout the same way.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(())
}

fn pending_error(kind: io::ErrorKind) -> io::Error {
    let what = match kind {
        io::ErrorKind::ConnectionRefused => "connection refused (ICMP port unreachable)",
        io::ErrorKind::HostUnreachable => "host unreachable (ICMP)",
        io::ErrorKind::NetworkUnreachable => "network unreachable (ICMP)",
        _ => "error reported by ICMP",
    };
    io::Error::new(kind, what)
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.inner().local)
            .field("remote", &*self.inner().remote.lock())
            .finish()
    }
}

/// Builds outgoing datagrams for the sockets of one transport shard: UDP header, then IPv4
/// (routing, identification, fragmentation) through its own `Ipv4Endpoint`. Behind a mutex in
/// `Shared`, held only while one datagram is built.
pub(crate) struct UdpSender {
    pub ip: Ipv4Endpoint,
    pub stats: UdpStats,
}

impl UdpSender {
    pub fn build(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        src_port: u16,
        dst: SocketAddrV4,
        data: &[u8],
    ) -> io::Result<Vec<TxPacket>> {
        let mut udp = Vec::with_capacity(HEADER_LEN + data.len());
        UdpRepr {
            src_port,
            dst_port: dst.port(),
        }
        .emit(src, *dst.ip(), data, &mut udp);
        match self.ip.send(
            now,
            *dst.ip(),
            IpProtocol::Udp,
            &udp,
            SendOptions::default(),
        ) {
            Ok(o) => {
                self.stats.tx_datagrams += 1;
                Ok(TxPacket::all(o).collect())
            }
            Err(e) => {
                self.stats.tx_errors += 1;
                Err(match e {
                    SendError::NoRoute => io::Error::new(
                        io::ErrorKind::NetworkUnreachable,
                        format!("no route to {}", dst.ip()),
                    ),
                    other => io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("datagram to {dst} cannot be sent: {other:?}"),
                    ),
                })
            }
        }
    }
}
