//! `TcpListener`: a listen shared by every transport worker, and its accept queue.

use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::bounded;
use netstack_transport::tcp::SocketOptions;
use netstack_transport::udp::EPHEMERAL_PORTS;
use parking_lot::{Condvar, Mutex};

use super::{
    check_buffers, gone, timeout_io, v4_all, AcceptQueue, ListenerShared, TcpStream,
    DEFAULT_BACKLOG, DEFAULT_TTL, MAX_BACKLOG,
};
use crate::msg::TcpCmd;
use crate::stack::Shared;
use crate::StackHandle;

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
