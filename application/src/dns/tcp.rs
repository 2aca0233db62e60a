//! DNS over TCP (RFC 1035 §4.2.2, RFC 7766): every message is preceded by its length in two
//! octets.
//!
//! - Framing: [`write_message`] and [`read_message`] for blocking streams; [`Deframer`] splits
//!   whatever bytes have arrived into messages without blocking.
//! - [`serve_connection`]: the simplest server, one query at a time from the catalog, over any
//!   byte stream.
//! - [`serve_pipelined`]: the server netstackd runs per connection (RFC 7766 §6.2.1.1). It reads
//!   queries while earlier ones are still being answered, answers each as soon as it is ready
//!   (authoritative answers at once, forwarded ones when the upstream replies, so answers may
//!   leave in another order than their queries came), and closes an idle connection.
//!
//! Policy, in one place:
//! - Answers are the ones UDP gets (the same triage, zones and forwarding rule as
//!   [`answer_or_forward`](super::answer_or_forward)), except their size: up to 65,535 octets,
//!   never truncated (RFC 7766 §8).
//! - A connection is idle while none of its queries is outstanding; it is closed (FIN) after
//!   [`TcpServer::idle_timeout`] idle, counted as `idle_closed` (RFC 7766 §6.2.3). Bytes of an
//!   incomplete message do not count as activity, so a client trickling a message cannot hold
//!   a connection open.
//! - At most [`MAX_OUTSTANDING`] queries of one connection are read and not yet answered; past
//!   that the server stops reading it, and TCP flow control holds the client back.
//! - Forwarded queries wait in one queue of [`FORWARD_QUEUE`] per server; a query that finds it
//!   full is answered SERVFAIL at once (`forward_queue_full`). [`TCP_FORWARD_LOOKUPS`] of them
//!   are resolved at once, so a silent upstream holds back only the queries waiting for it.
//! - An answer that cannot be written within the idle timeout (a client that does not read)
//!   ends the connection (`write_failures`). A peer that closes inside a message:
//!   `cut_frames`.
//! - The number of connections is bounded by whoever accepts them (netstackd's services).

use super::authority::{answer_over, answer_query, triage, IncomingQuery, Transport, Triage};
use super::forwarder::forward_reply;
use super::resolver::{ResolveError, Resolver};
use super::socket::{
    resolve_shared, DatagramSocket, SharedResolver, StreamConnector, STOP_POLL_INTERVAL,
};
use super::{Catalog, ServerStats};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The largest message a two-octet length can frame.
pub const MAX_TCP_MESSAGE: usize = 65_535;

/// RFC 7766 §6.2.3: how long a server keeps a connection with nothing outstanding. Seconds,
/// as the RFC suggests; a busy server may use less.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Queries of one connection read but not yet answered, at most.
pub const MAX_OUTSTANDING: usize = 32;

/// Forwarded queries waiting for the upstream, per server, at most.
pub const FORWARD_QUEUE: usize = 256;

/// Forwarded DNS-over-TCP queries resolved at once, per server (one thread each).
pub const TCP_FORWARD_LOOKUPS: usize = 16;

/// How much one read takes from the stream.
const READ_CHUNK: usize = 16 * 1024;

/// RA is bit 7 of the fourth header octet (RFC 1035 §4.1.1).
const RA_BYTE: usize = 3;
const RA_BIT: u8 = 0x80;

super::counters! {
    /// What the DNS-over-TCP server did with its connections, one counter per cause.
    pub struct TcpServerStats {
        /// Connections closed after the idle timeout (RFC 7766 §6.2.3).
        idle_closed,
        /// Connections the peer closed inside a message.
        cut_frames,
        /// Connections ended because an answer could not be written in time.
        write_failures,
        /// Forwarded queries answered SERVFAIL because the upstream queue was full.
        forward_queue_full,
    }
}

/// Writes one length-prefixed message.
pub fn write_message<W: Write>(w: &mut W, message: &[u8]) -> io::Result<()> {
    w.write_all(&frame(message)?)
}

/// `message` with its two-octet length in front.
fn frame(message: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(message.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "DNS message over 65,535 octets",
        )
    })?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Ok(framed)
}

/// Reads one length-prefixed message. `Ok(None)`: the peer closed between messages (RFC 7766
/// §6.2.3: a clean end); a close inside a message is `UnexpectedEof`.
pub fn read_message<R: Read>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut message)?;
    Ok(Some(message))
}

/// Splits a byte stream into length-prefixed messages as the bytes arrive, in any pieces.
///
/// It holds what it was given until a whole message is there; the caller bounds that by taking
/// every complete message out before pushing more (then at most one partial message, under
/// 64 KiB, plus one push is held).
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    /// Where the unconsumed bytes start in `buf`.
    start: usize,
}

impl Deframer {
    /// Adds bytes that arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if one has arrived whole.
    pub fn next_message(&mut self) -> Option<Vec<u8>> {
        let rest = &self.buf[self.start..];
        let len = usize::from(super::read_u16(rest, 0)?);
        let message = rest.get(2..2 + len)?.to_vec();
        self.start += 2 + len;
        Some(message)
    }

    /// Bytes held that do not make a whole message yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// Answers every query on one TCP connection from `catalog` until the peer closes it, one at a
/// time: the simplest DNS-over-TCP server, for a blocking stream (give it a read timeout to
/// bound idle connections). netstackd runs [`serve_pipelined`] instead.
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    catalog: &Catalog,
    stats: &mut ServerStats,
) -> io::Result<()> {
    while let Some(query) = read_message(stream)? {
        if let Some(reply) = answer_over(Transport::Tcp, &query, catalog, stats) {
            write_message(stream, &reply)?;
        }
    }
    Ok(())
}

/// The calls [`serve_pipelined`] makes on a connected stream besides reading and writing,
/// shaped like `std::net::TcpStream`'s (timeouts show as `WouldBlock` or `TimedOut`).
pub trait StreamSocket {
    /// `None` blocks forever.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// `None` blocks forever.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// Half or full close.
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl StreamSocket for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
}

/// What every connection of one DNS-over-TCP server shares.
#[derive(Clone)]
pub struct TcpServer {
    /// The zones answered authoritatively.
    pub catalog: Arc<Catalog>,
    /// Query outcomes, shared with the UDP server so both count together.
    pub stats: Arc<Mutex<ServerStats>>,
    /// Connection outcomes.
    pub tcp_stats: Arc<Mutex<TcpServerStats>>,
    /// Where names outside the zones go; `None`: authoritative only (they are REFUSED).
    pub forwarder: Option<TcpForwarder>,
    /// RFC 7766 §6.2.3.
    pub idle_timeout: Duration,
    /// Set to end every connection (each notices within [`STOP_POLL_INTERVAL`]).
    pub stop: Arc<AtomicBool>,
}

impl TcpServer {
    /// An authoritative server for `catalog` with the default idle timeout and fresh counters.
    pub fn new(catalog: Arc<Catalog>) -> TcpServer {
        TcpServer {
            catalog,
            stats: Arc::default(),
            tcp_stats: Arc::default(),
            forwarder: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            stop: Arc::default(),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn count(&self, f: impl FnOnce(&mut TcpServerStats)) {
        f(&mut self.tcp_stats.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// What to do with one query that came over TCP.
#[derive(Debug, Clone)]
pub enum TcpOutcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Resolve upstream, then send [`forward_reply`]'s bytes back.
    Forward(IncomingQuery),
    /// Send nothing (shorter than a header, or a response).
    Drop,
}

/// The UDP server's rules for a query that came over TCP: answered from the zones (a forwarding
/// server sets RA), or forwarded when `forwarding`, the name is outside the zones and RD is set;
/// the size limit is TCP's.
pub fn answer_or_forward_tcp(
    query: &[u8],
    catalog: &Catalog,
    forwarding: bool,
    stats: &mut ServerStats,
) -> TcpOutcome {
    let with_ra = |mut bytes: Vec<u8>| {
        if forwarding {
            if let Some(b) = bytes.get_mut(RA_BYTE) {
                *b |= RA_BIT;
            }
        }
        TcpOutcome::Reply(bytes)
    };
    let q = match triage(query, Transport::Tcp, stats) {
        Triage::Drop => return TcpOutcome::Drop,
        Triage::Reply(bytes) => return with_ra(bytes),
        Triage::Query(q) => q,
    };
    if !forwarding || catalog.find(&q.question.name).is_some() || !q.message.header.rd {
        return with_ra(answer_query(&q, catalog, stats));
    }
    stats.forwarded += 1;
    TcpOutcome::Forward(q)
}

fn add_stats(shared: &Mutex<ServerStats>, local: &ServerStats) {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .add(local);
}

/// A forwarded query and where its answer goes.
struct Job {
    query: IncomingQuery,
    reply: SyncSender<Vec<u8>>,
}

/// The upstream side of a forwarding DNS-over-TCP server: [`TCP_FORWARD_LOOKUPS`] threads
/// resolving forwarded queries side by side with one resolver and cache, handing each answer to
/// the connection that asked, so a silent upstream or a slow name holds back only its own
/// queries. Cloned into every connection; the threads end when the stop flag is set or every
/// handle is gone.
#[derive(Clone)]
pub struct TcpForwarder {
    jobs: crossbeam_channel::Sender<Job>,
}

impl TcpForwarder {
    /// Starts the lookup threads, under one thread whose handle is returned. `new_socket`
    /// makes the UDP socket (connected to the server) for each upstream question and
    /// `connect_tcp` the TCP connection that asks again when an upstream answer comes back
    /// truncated; each is locked for one call, never across a lookup's wait. `stats` are the
    /// server's.
    pub fn spawn<U, F, C>(
        resolver: Resolver,
        new_socket: F,
        connect_tcp: C,
        stats: Arc<Mutex<ServerStats>>,
        stop: Arc<AtomicBool>,
    ) -> io::Result<(TcpForwarder, JoinHandle<()>)>
    where
        U: DatagramSocket,
        F: FnMut(SocketAddr) -> io::Result<U> + Send + 'static,
        C: StreamConnector + Send + 'static,
    {
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(FORWARD_QUEUE);
        let handle = thread::Builder::new()
            .name("dns-tcp-forward".into())
            .spawn(move || {
                let shared = SharedResolver::new(resolver);
                let (new_socket, connect_tcp) = (Mutex::new(new_socket), Mutex::new(connect_tcp));
                thread::scope(|scope| {
                    for _ in 0..TCP_FORWARD_LOOKUPS {
                        let (queue, stop, stats) = (queue.clone(), &stop, &stats);
                        let (shared, new_socket, connect_tcp) =
                            (&shared, &new_socket, &connect_tcp);
                        let spawned = thread::Builder::new()
                            .name("dns-tcp-lookup".into())
                            .spawn_scoped(scope, move || {
                                forward_jobs(&queue, shared, new_socket, connect_tcp, stats, stop)
                            });
                        if let Err(e) = spawned {
                            log::warn!("dns: a DNS-over-TCP lookup thread did not start: {e}");
                        }
                    }
                });
            })?;
        Ok((TcpForwarder { jobs }, handle))
    }

    /// Queues `query`; when the queue is full, the SERVFAIL to send back at once.
    fn submit(
        &self,
        query: IncomingQuery,
        reply: SyncSender<Vec<u8>>,
        stats: &mut ServerStats,
    ) -> Option<Vec<u8>> {
        match self.jobs.try_send(Job { query, reply }) {
            Ok(()) => None,
            Err(
                crossbeam_channel::TrySendError::Full(job)
                | crossbeam_channel::TrySendError::Disconnected(job),
            ) => {
                let busy = Err(ResolveError::Io(io::ErrorKind::WouldBlock));
                Some(forward_reply(&job.query, &busy, stats))
            }
        }
    }
}

/// One lookup thread of a [`TcpForwarder`]: takes forwarded queries until the stop flag is set
/// or every handle is gone, and resolves each to its end.
fn forward_jobs<U, F, C>(
    queue: &crossbeam_channel::Receiver<Job>,
    shared: &Mutex<SharedResolver>,
    new_socket: &Mutex<F>,
    connect_tcp: &Mutex<C>,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) where
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U>,
    C: StreamConnector,
{
    loop {
        let job = match queue.recv_timeout(STOP_POLL_INTERVAL) {
            Ok(job) => job,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let q = &job.query.question;
        let mut local = ServerStats::default();
        let result = resolve_shared(
            shared,
            new_socket,
            connect_tcp,
            q.name.clone(),
            q.qtype,
            &mut local,
        );
        let reply = forward_reply(&job.query, &result, &mut local);
        add_stats(stats, &local);
        // The connection keeps room for every answer it waits for; a closed one is gone.
        let _ = job.reply.try_send(reply);
    }
}

/// Queries of one connection read and not yet answered, shared by its reader and its writer.
struct Pending {
    state: Mutex<PendingState>,
    cond: Condvar,
}

struct PendingState {
    outstanding: usize,
    /// When the last query was answered (or the connection opened).
    last_done: Instant,
    /// The writer gave up: the connection is over.
    failed: bool,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            state: Mutex::new(PendingState {
                outstanding: 0,
                last_done: Instant::now(),
                failed: false,
            }),
            cond: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for room for one more query, then counts it. False: the connection is over.
    fn begin(&self, server: &TcpServer) -> bool {
        let mut s = self.lock();
        while s.outstanding >= MAX_OUTSTANDING && !s.failed && !server.stopping() {
            s = self
                .cond
                .wait_timeout(s, STOP_POLL_INTERVAL)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if s.failed || server.stopping() {
            return false;
        }
        s.outstanding += 1;
        true
    }

    fn done(&self) {
        let mut s = self.lock();
        s.outstanding = s.outstanding.saturating_sub(1);
        s.last_done = Instant::now();
        self.cond.notify_all();
    }

    fn fail(&self) {
        self.lock().failed = true;
        self.cond.notify_all();
    }

    fn failed(&self) -> bool {
        self.lock().failed
    }

    /// How long nothing has been outstanding; zero while something is.
    fn idle_for(&self) -> Duration {
        let s = self.lock();
        if s.outstanding > 0 {
            Duration::ZERO
        } else {
            s.last_done.elapsed()
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Serves one connection of `server` (RFC 7766): reads queries while earlier ones are being
/// answered and writes each answer as soon as it is ready, until the peer closes its side (the
/// outstanding answers are still sent), the idle timeout, an error, or the stop flag. Ends with
/// a FIN. The caller's thread reads; a scoped thread writes.
pub fn serve_pipelined<S>(stream: &S, server: &TcpServer) -> io::Result<()>
where
    S: StreamSocket + Sync,
    for<'a> &'a S: Read + Write,
{
    stream.set_read_timeout(Some(STOP_POLL_INTERVAL))?;
    stream.set_write_timeout(Some(STOP_POLL_INTERVAL))?;
    let pending = Pending::new();
    // Room for every answer the connection may wait for, so no answer ever blocks its sender.
    let (replies, outbox) = mpsc::sync_channel::<Vec<u8>>(MAX_OUTSTANDING);
    let result = thread::scope(|scope| {
        let writer = scope.spawn(|| write_answers(stream, outbox, &pending, server));
        let result = read_queries(stream, replies, &pending, server);
        let _ = writer.join();
        result
    });
    // RFC 7766 §6.2.3: the server closes (FIN) once it has nothing left to send.
    let _ = stream.shutdown(Shutdown::Write);
    result
}

/// The reading half: deframes queries and answers or forwards each.
fn read_queries<S>(
    stream: &S,
    replies: SyncSender<Vec<u8>>,
    pending: &Pending,
    server: &TcpServer,
) -> io::Result<()>
where
    for<'a> &'a S: Read,
{
    let mut deframer = Deframer::default();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while let Some(query) = deframer.next_message() {
            if !pending.begin(server) {
                return Ok(());
            }
            let mut local = ServerStats::default();
            let forwarding = server.forwarder.is_some();
            let reply = match answer_or_forward_tcp(&query, &server.catalog, forwarding, &mut local)
            {
                TcpOutcome::Reply(bytes) => Some(bytes),
                TcpOutcome::Drop => None,
                TcpOutcome::Forward(q) => match &server.forwarder {
                    Some(f) => {
                        let busy = f.submit(q, replies.clone(), &mut local);
                        if busy.is_some() {
                            server.count(|s| s.forward_queue_full += 1);
                        }
                        busy
                    }
                    None => None,
                },
            };
            let forwarded = local.forwarded > 0 && reply.is_none();
            add_stats(&server.stats, &local);
            match reply {
                Some(bytes) => {
                    if replies.try_send(bytes).is_err() {
                        return Ok(()); // the writer has gone
                    }
                }
                None if forwarded => {} // the forwarder sends the answer
                None => pending.done(),
            }
        }
        if server.stopping() || pending.failed() {
            return Ok(());
        }
        match (&mut &*stream).read(&mut buf) {
            Ok(0) => {
                if deframer.pending() > 0 {
                    server.count(|s| s.cut_frames += 1);
                }
                return Ok(());
            }
            Ok(n) => deframer.push(&buf[..n]),
            Err(e) if is_timeout(&e) => {
                if pending.idle_for() >= server.idle_timeout {
                    server.count(|s| s.idle_closed += 1);
                    return Ok(());
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The writing half: sends answers as they come, until every sender is gone or the stop flag.
fn write_answers<S>(stream: &S, outbox: Receiver<Vec<u8>>, pending: &Pending, server: &TcpServer)
where
    for<'a> &'a S: Write,
{
    loop {
        let answer = match outbox.recv_timeout(STOP_POLL_INTERVAL) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) if !server.stopping() => continue,
            Err(_) => return,
        };
        let deadline = Instant::now() + server.idle_timeout;
        let written = frame(&answer)
            .and_then(|framed| write_all_until(&mut &*stream, &framed, deadline, &server.stop));
        if let Err(e) = written {
            log::debug!("dns tcp: answer not written: {e}");
            server.count(|s| s.write_failures += 1);
            pending.fail();
            return;
        }
        pending.done();
    }
}

/// `write_all` through write timeouts, up to `deadline` or the stop flag.
fn write_all_until<W: Write>(
    w: &mut W,
    mut data: &[u8],
    deadline: Instant,
    stop: &AtomicBool,
) -> io::Result<()> {
    while !data.is_empty() {
        match w.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the peer does not read its answers",
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
