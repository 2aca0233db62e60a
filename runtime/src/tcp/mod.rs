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
use std::io;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use netstack_transport::tcp::ring::{Consumer, Producer};
use netstack_transport::tcp::{AppIo, ConnId, SocketOptions, TcpError};
use parking_lot::{Condvar, Mutex};

use crate::stack::Shared;

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

pub(super) fn v4_all(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddrV4>> {
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
pub(super) fn check_buffers(opts: &SocketOptions) -> io::Result<()> {
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

pub(super) fn timeout_io(what: &str) -> io::Error {
    // Linux reports SO_RCVTIMEO/SO_SNDTIMEO expiry as EAGAIN, which std maps to WouldBlock.
    io::Error::new(io::ErrorKind::WouldBlock, format!("{what} timed out"))
}

pub(super) fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the stack has shut down")
}

mod listener;
mod stream;

pub use listener::TcpListener;
pub use stream::{TcpInfo, TcpStream};
