//! `TcpListener` and `TcpStream`: `std::net`-shaped TCP sockets over the stack.
//!
//! A connection lives in the `tcp::Endpoint` of the transport worker its 4-tuple hashes to.
//! Reads and writes are commands to that worker, answered on a reply channel; when there is
//! nothing to read (or no room to write) the caller sleeps on the connection's condition
//! variable until the worker sees a `Readable`, `Writable` or `Closed` event. Listeners are in
//! a shared table (every worker holds a copy of each listen, since a SYN lands on whichever
//! worker its 4-tuple hashes to); accepted connections queue on the listener.
//!
//! Errors carry the `io::ErrorKind` std gives: `ConnectionRefused`, `ConnectionReset`,
//! `TimedOut`, `AddrInUse`, `AddrNotAvailable`, `NotConnected`, `BrokenPipe`, `WouldBlock`
//! (non-blocking and timeouts, as on Linux), `InvalidInput`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Sender};
use netstack_network::wire::IpProtocol;
use netstack_transport::tcp::FourTuple;
use netstack_transport::tcp::{ConnId, SocketOptions, TcpError};
use netstack_transport::udp::EPHEMERAL_PORTS;
use parking_lot::{Condvar, Mutex};

use crate::msg::{TcpCmd, TransportMsg};
use crate::stack::Shared;
use crate::udp::check_timeout;
use crate::StackHandle;

/// The most one read or write command moves: the default socket buffer size.
const MAX_IO_CHUNK: usize = 256 * 1024;

/// Connections a listener holds ready for `accept` at most (the whole stack's backlog).
pub const MAX_BACKLOG: usize = 1024;

/// What a connection's worker and its application threads share.
pub(crate) struct ConnShared {
    pub worker: usize,
    state: Mutex<ConnState>,
    cond: Condvar,
}

#[derive(Default)]
struct ConnState {
    id: Option<ConnId>,
    connected: bool,
    /// Set by the worker on `Readable`; cleared by a reader before it asks for data.
    readable: bool,
    writable: bool,
    /// `Some(None)`: ended in order; `Some(Some(e))`: ended with `e`.
    closed: Option<Option<TcpError>>,
}

impl ConnShared {
    pub fn new(worker: usize, id: Option<ConnId>) -> Self {
        let state = ConnState {
            id,
            connected: id.is_some(),
            ..ConnState::default()
        };
        Self {
            worker,
            state: Mutex::new(state),
            cond: Condvar::new(),
        }
    }

    pub fn set_id(&self, id: ConnId) {
        self.state.lock().id = Some(id);
    }

    pub fn on_connected(&self, id: ConnId) {
        let mut s = self.state.lock();
        s.id = Some(id);
        s.connected = true;
        s.writable = true;
        self.cond.notify_all();
    }

    pub fn on_readable(&self) {
        self.state.lock().readable = true;
        self.cond.notify_all();
    }

    pub fn on_writable(&self) {
        self.state.lock().writable = true;
        self.cond.notify_all();
    }

    pub fn on_closed(&self, err: Option<TcpError>) {
        let mut s = self.state.lock();
        s.closed.get_or_insert(err);
        s.readable = true;
        s.writable = true;
        self.cond.notify_all();
    }
}

/// A listener's accept queue, shared by every worker.
pub(crate) struct ListenerShared {
    pub local: SocketAddrV4,
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
        if q.ready.len() >= MAX_BACKLOG || q.closed {
            return false;
        }
        q.ready.push_back((conn, remote));
        self.cond.notify_one();
        true
    }

    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.cond.notify_all();
    }
}

fn v4(addr: impl ToSocketAddrs) -> io::Result<SocketAddrV4> {
    for a in addr.to_socket_addrs()? {
        if let SocketAddr::V4(a) = a {
            return Ok(a);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "no IPv4 address given (IPv6 is not supported yet)",
    ))
}

fn timeout_io(what: &str) -> io::Error {
    // Linux reports SO_RCVTIMEO/SO_SNDTIMEO expiry as EAGAIN, which std maps to WouldBlock.
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} timed out"))
}

/// Options a stream carries between calls.
#[derive(Default)]
struct StreamOpts {
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// A TCP connection on the stack.
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
        // The last handle: close (FIN after what is buffered; RST if unread data remains).
        if let Some(id) = self.conn.state.lock().id {
            let _ = self
                .shared
                .send_transport(self.conn.worker, TransportMsg::Tcp(TcpCmd::Close { id }));
        }
    }
}

impl TcpStream {
    /// Opens a connection to `addr` from an ephemeral port of the stack's address.
    pub fn connect(stack: &StackHandle, addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(stack, v4(addr)?, None)
    }

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
        Self::connect_inner(stack, v4(addr)?, Some(timeout))
    }

    fn connect_inner(
        stack: &StackHandle,
        remote: SocketAddrV4,
        timeout: Option<Duration>,
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
        // RFC 6056 §3.3.1: a random start in the ephemeral range; the worker is the one the
        // 4-tuple hashes to, so this connection's segments will always meet it.
        let span = u32::from(*EPHEMERAL_PORTS.end() - *EPHEMERAL_PORTS.start()) + 1;
        let start = shared.random_u32();
        let deadline = timeout.map(|t| Instant::now() + t);
        for i in 0..span.min(64) {
            let port = *EPHEMERAL_PORTS.start() + (start.wrapping_add(i) % span) as u16;
            let local = SocketAddrV4::new(local_ip, port);
            let worker = shared
                .sharder
                .transport_worker(IpProtocol::Tcp, local, remote);
            let conn = Arc::new(ConnShared::new(worker, None));
            let cmd = TcpCmd::Connect {
                tuple: FourTuple { local, remote },
                conn: conn.clone(),
            };
            shared.send_transport(worker, TransportMsg::Tcp(cmd))?;
            let mut s = conn.state.lock();
            loop {
                if s.connected {
                    drop(s);
                    return Ok(TcpStream::new(conn, shared, local, remote));
                }
                match s.closed {
                    Some(Some(TcpError::AddrInUse)) => break, // that 4-tuple is taken: next port
                    Some(Some(e)) => return Err(e.into()),
                    Some(None) => {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "closed during connect",
                        ))
                    }
                    None => {}
                }
                match deadline {
                    Some(d) => {
                        if conn.cond.wait_until(&mut s, d).timed_out()
                            && !s.connected
                            && s.closed.is_none()
                        {
                            let id = s.id;
                            drop(s);
                            if let Some(id) = id {
                                let _ = shared.send_transport(
                                    worker,
                                    TransportMsg::Tcp(TcpCmd::Abort { id }),
                                );
                            }
                            return Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                format!("connect to {remote} timed out"),
                            ));
                        }
                    }
                    None => conn.cond.wait(&mut s),
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
            .state
            .lock()
            .id
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "not connected"))
    }

    fn command(&self, cmd: TcpCmd) -> io::Result<()> {
        self.inner
            .shared
            .send_transport(self.inner.conn.worker, TransportMsg::Tcp(cmd))
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.peer))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.local))
    }

    /// Another handle to the same connection; it closes when every handle is dropped.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            inner: self.inner.clone(),
        })
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner.opts.lock().read_timeout = t;
        Ok(())
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.inner.opts.lock().write_timeout = t;
        Ok(())
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.opts.lock().read_timeout)
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.opts.lock().write_timeout)
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// TCP_NODELAY: disables Nagle's algorithm.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        let id = self.id()?;
        let opts = SocketOptions {
            nodelay: on,
            ..SocketOptions::default()
        };
        self.command(TcpCmd::SetOptions { id, opts })
    }

    /// Half or full close, as `std::net::TcpStream::shutdown`.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let id = self.id()?;
        match how {
            Shutdown::Write | Shutdown::Both => self.command(TcpCmd::ShutdownWrite { id }),
            // Reads after a read shutdown return EOF on Linux; nothing to tell the peer.
            Shutdown::Read => Ok(()),
        }
    }

    /// Waits until `flag` (readable or writable) is set, the connection closes, or the deadline.
    fn wait(&self, want_read: bool, deadline: Option<Instant>) -> io::Result<()> {
        let conn = &self.inner.conn;
        let mut s = conn.state.lock();
        loop {
            let ready = if want_read { s.readable } else { s.writable };
            if ready || s.closed.is_some() {
                return Ok(());
            }
            match deadline {
                Some(d) => {
                    if conn.cond.wait_until(&mut s, d).timed_out() {
                        let ready = if want_read { s.readable } else { s.writable };
                        if !ready && s.closed.is_none() {
                            return Err(timeout_io(if want_read { "read" } else { "write" }));
                        }
                    }
                }
                None => conn.cond.wait(&mut s),
            }
        }
    }

    /// Sends the command `make` builds to the connection's worker and waits for its answer.
    fn ask<T>(
        &self,
        make: impl FnOnce(Sender<Result<T, TcpError>>) -> TcpCmd,
    ) -> io::Result<Result<T, TcpError>> {
        let (tx, rx) = bounded(1);
        self.command(make(tx))?;
        rx.recv()
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the stack has shut down"))
    }

    fn read_inner(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.id()?;
        let deadline = self
            .inner
            .opts
            .lock()
            .read_timeout
            .map(|t| Instant::now() + t);
        loop {
            self.inner.conn.state.lock().readable = false;
            // The worker fills a buffer of `max` bytes; a read returns at most what the
            // receive buffer holds anyway, so a huge `buf` must not cost a huge allocation.
            let max = buf.len().min(MAX_IO_CHUNK);
            match self.ask(|reply| TcpCmd::Recv { id, max, reply })? {
                Ok(data) => {
                    buf[..data.len()].copy_from_slice(&data);
                    return Ok(data.len());
                }
                Err(TcpError::WouldBlock) => {
                    if self.inner.nonblocking.load(Ordering::Relaxed) {
                        return Err(io::Error::new(io::ErrorKind::WouldBlock, "no data waiting"));
                    }
                    self.wait(true, deadline)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn write_inner(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.id()?;
        let deadline = self
            .inner
            .opts
            .lock()
            .write_timeout
            .map(|t| Instant::now() + t);
        loop {
            self.inner.conn.state.lock().writable = false;
            // At most one send buffer's worth per command; the worker takes what fits.
            let data = buf[..buf.len().min(MAX_IO_CHUNK)].to_vec();
            match self.ask(|reply| TcpCmd::Send { id, data, reply })? {
                Ok(0) => {
                    if self.inner.nonblocking.load(Ordering::Relaxed) {
                        return Err(io::Error::new(
                            io::ErrorKind::WouldBlock,
                            "send buffer full",
                        ));
                    }
                    self.wait(false, deadline)?;
                }
                Ok(n) => return Ok(n),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Read for TcpStream {
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
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_inner(buf)
    }

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

/// A TCP listener on the stack.
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
            let _ = self
                .shared
                .send_transport(w, TransportMsg::Tcp(TcpCmd::Unlisten { local }));
        }
        // Connections accepted by the stack but never by the application: reset them.
        let queued: Vec<_> = self.listener.queue.lock().ready.drain(..).collect();
        for (conn, _) in queued {
            if let Some(id) = conn.state.lock().id {
                let _ = self
                    .shared
                    .send_transport(conn.worker, TransportMsg::Tcp(TcpCmd::Abort { id }));
            }
        }
    }
}

impl TcpListener {
    /// Listens on `addr` (0.0.0.0 or the stack's address; port 0 is refused for now).
    pub fn bind(stack: &StackHandle, addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let shared = stack.shared().clone();
        shared.check_running()?;
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
        if local.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "listening on port 0 is not supported yet; give a port",
            ));
        }
        let listener = Arc::new(ListenerShared {
            local,
            queue: Mutex::new(AcceptQueue::default()),
            cond: Condvar::new(),
        });
        match shared.tcp_listeners.entry(local.port()) {
            dashmap::Entry::Occupied(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("TCP {local}: address already in use"),
                ))
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(listener.clone());
            }
        }
        let workers = shared.sharder.transport_workers();
        // Each worker enforces the backlog on its own SYN/accept queues: split it.
        let backlog = (128 / workers).max(1);
        for w in 0..workers {
            let cmd = TcpCmd::Listen {
                local,
                backlog,
                listener: listener.clone(),
            };
            shared.send_transport(w, TransportMsg::Tcp(cmd))?;
        }
        Ok(TcpListener {
            inner: Arc::new(ListenerInner {
                listener,
                shared,
                nonblocking: AtomicBool::new(false),
            }),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::V4(self.inner.listener.local))
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.inner.nonblocking.store(on, Ordering::Relaxed);
        Ok(())
    }

    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            inner: self.inner.clone(),
        })
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(None)
    }

    /// Like `accept`, but gives up with `WouldBlock` at `deadline`.
    pub fn accept_until(&self, deadline: Option<Instant>) -> io::Result<(TcpStream, SocketAddr)> {
        let l = &self.inner.listener;
        let mut q = l.queue.lock();
        loop {
            if let Some((conn, remote)) = q.ready.pop_front() {
                drop(q);
                let local = SocketAddrV4::new(self.inner.shared.config.addr.addr, l.local.port());
                let stream = TcpStream::new(conn, self.inner.shared.clone(), local, remote);
                let id = stream.id()?;
                stream.command(TcpCmd::Accepted { id })?;
                return Ok((stream, SocketAddr::V4(remote)));
            }
            if q.closed || self.inner.shared.check_running().is_err() {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the stack has shut down",
                ));
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

    /// An iterator of `accept` results.
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
