//! The blocking side: a small datagram-socket trait and a small byte-stream trait, implemented
//! for `std::net`'s `UdpSocket` and `TcpStream` (and, in `crate::stack_socket`, for the
//! stack's own), and the loops that run the sans-IO parts over them: [`resolve_with_tcp`] (one
//! lookup), [`serve`] (authoritative) and [`serve_forwarding_with_tcp`].
//!
//! These loops own the clock (`Instant::now()`); the state machines they drive do not.
//!
//! The forwarding server ([`serve_forwarding_with_policy`]) keeps many lookups in flight: the
//! receiving thread answers from the zones and the cache itself, and hands every lookup that
//! must wait for an upstream to a thread of its own, so a silent upstream (or a slow name)
//! delays only the clients waiting for it. At most [`ForwardPolicy::max_in_flight`] lookups
//! wait at once (default [`DEFAULT_MAX_IN_FLIGHT`]); a forwarded query past that is dropped
//! and counted (`forward_dropped`), and the client's own retry comes later. The lookups share
//! one resolver (its cache and counters) behind a lock held only while a state machine runs,
//! never across a wait. When the server stops, it waits for the lookups in flight, each bounded
//! by the resolver's timeouts.
//!
//! Upstream sockets: `new_socket(server)` must return a socket connected to `server`, so only
//! the server's datagrams reach the lookup (RFC 5452 §9.2); [`std_socket_for`] does.
//!
//! Every UDP response of the servers passes the rate limiter of [`super::policy`] first.
//!
//! DNS over TCP, client side (RFC 7766 §5, §6.2.1): when the resolver asks for a retry over
//! TCP, [`exchange_over_tcp`] opens a connection with a [`StreamConnector`], writes the one
//! query and reads the one answer with the framing of `super::tcp`, all by the resolver's
//! deadline (every read and write gets only the time left, so a peer that trickles bytes
//! cannot stretch it), then closes. The answer is at most 65,535 octets: the two-octet length
//! bounds it.

use super::forwarder::{answer_or_forward_for, forward_reply, slip_reply, Outcome};
use super::policy::{recursion_allowed, ClientNet, RateLimit, RateLimiter, Verdict};
use super::resolver::{Lookup, LookupAnswer, ResolveError, Resolver, Step};
use super::tcp::{read_message, write_message};
use super::{answer, Catalog, Name, RecordType, ServerStats};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Forwarded lookups waiting for an upstream at once, unless told otherwise.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// How a UDP server treats its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPolicy {
    /// The networks offered recursion; `None`: every client.
    pub allow: Option<Vec<ClientNet>>,
    /// The per-prefix response rate limit.
    pub rate: RateLimit,
    /// Forwarded lookups waiting at once; more are dropped and counted.
    pub max_in_flight: usize,
}

impl Default for ForwardPolicy {
    /// Recursion for everyone, no rate limit, [`DEFAULT_MAX_IN_FLIGHT`] lookups.
    fn default() -> ForwardPolicy {
        ForwardPolicy {
            allow: None,
            rate: RateLimit::OFF,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// How often a server loop looks at its stop flag when no query arrives.
pub const STOP_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The largest datagram read: a UDP payload can be 65,507 octets.
const RECV_BUFFER: usize = 65_536;

/// The blocking datagram calls DNS needs, shaped like `std::net::UdpSocket`'s.
pub trait DatagramSocket {
    fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize>;
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;
    /// `None` blocks forever; a timeout shows as `WouldBlock` or `TimedOut`, as std does.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl DatagramSocket for UdpSocket {
    fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, buf, addr)
    }
    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf)
    }
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UdpSocket::set_read_timeout(self, timeout)
    }
}

/// References and shared pointers to a socket are sockets (the server loops borrow theirs).
macro_rules! forward_datagram_socket {
    ($($ptr:ty),*) => {$(
        impl<T: DatagramSocket + ?Sized> DatagramSocket for $ptr {
            fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
                (**self).send_to(buf, addr)
            }
            fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
                (**self).recv_from(buf)
            }
            fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
                (**self).set_read_timeout(timeout)
            }
        }
    )*};
}

forward_datagram_socket!(&T, std::sync::Arc<T>, Box<T>);

/// The blocking byte-stream calls DNS over TCP needs, shaped like `std::net::TcpStream`'s.
pub trait StreamSocket: Read + Write {
    /// `None` blocks forever; a timeout shows as `WouldBlock` or `TimedOut`, as std does.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
    /// As `set_read_timeout`, for writes.
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl StreamSocket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

/// Opens the TCP connections of retries over TCP. Any
/// `FnMut(SocketAddr, Duration) -> io::Result<impl StreamSocket>` is one (see
/// [`std_tcp_connect`], and `crate::stack_socket::tcp_connector` for the stack's).
pub trait StreamConnector {
    type Stream: StreamSocket;
    /// Connects to `server`, giving up after `timeout`.
    fn connect(&mut self, server: SocketAddr, timeout: Duration) -> io::Result<Self::Stream>;
}

impl<T, F> StreamConnector for F
where
    T: StreamSocket,
    F: FnMut(SocketAddr, Duration) -> io::Result<T>,
{
    type Stream = T;
    fn connect(&mut self, server: SocketAddr, timeout: Duration) -> io::Result<T> {
        self(server, timeout)
    }
}

/// A std TCP connection to `server` within `timeout`.
pub fn std_tcp_connect(server: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    TcpStream::connect_timeout(&server, timeout)
}

/// No TCP at all: every retry over TCP fails with `Unsupported` (what [`resolve`] and
/// [`serve_forwarding`] use; set `tcp_timeout: None` to not even ask).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTcp;

impl StreamConnector for NoTcp {
    type Stream = TcpStream;
    fn connect(&mut self, server: SocketAddr, _: Duration) -> io::Result<TcpStream> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("no TCP transport to ask {server} over"),
        ))
    }
}

/// A stream whose every read and write gets only the time left until `deadline`.
struct Deadlined<'a, S: StreamSocket> {
    stream: &'a mut S,
    deadline: Instant,
}

impl<S: StreamSocket> Deadlined<'_, S> {
    /// The time left, or `TimedOut` when there is none (std refuses a zero timeout).
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "DNS over TCP: no answer by the deadline",
            ));
        }
        Ok(left)
    }
}

impl<S: StreamSocket> Read for Deadlined<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl<S: StreamSocket> Write for Deadlined<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// One query over a new TCP connection to `server`, its answer read whole, all by
/// `deadline`; the connection closes when this returns (RFC 7766 §6.2.1: the client closes
/// once it has its answers). A close before the answer is `UnexpectedEof`; the deadline
/// passing is `TimedOut` (or `WouldBlock`, as std reports a read timeout).
pub fn exchange_over_tcp<C: StreamConnector + ?Sized>(
    connector: &mut C,
    server: SocketAddr,
    query: &[u8],
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    let mut stream = connector.connect(server, left)?;
    let mut framed = Deadlined {
        stream: &mut stream,
        deadline,
    };
    write_message(&mut framed, query)?;
    // read_message allocates what the two-octet length says: at most 65,535 octets.
    read_message(&mut framed)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "DNS over TCP: the server closed without answering",
        )
    })
}

/// A std socket for talking to `server`, bound to an ephemeral port of the matching family
/// and connected to `server`. Linux picks ephemeral ports at random, which is what RFC 5452
/// asks for.
pub fn std_socket_for(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any)?;
    s.connect(server)?;
    Ok(s)
}

/// A seed for [`Resolver::new`] from the OS random source (getrandom); should that fail,
/// from the process's hash keys, which std also draws from the OS.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_ok() {
        return u64::from_ne_bytes(b);
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(since_epoch.map_or(0, |d| d.as_nanos()));
    h.finish()
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// An ICMP error that Linux may report on a later call: the timeout decides, not the error.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Resolves (`name`, `qtype`) over UDP only: [`resolve_with_tcp`] with [`NoTcp`], so a
/// truncated answer ends as `ResolveError::Truncated` (counted as a failed TCP retry unless
/// the resolver's `tcp_timeout` is `None`).
pub fn resolve<S, F>(
    resolver: &mut Resolver,
    new_socket: &mut F,
    name: Name,
    qtype: RecordType,
) -> Result<LookupAnswer, ResolveError>
where
    S: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<S>,
{
    resolve_with_tcp(resolver, new_socket, &mut NoTcp, name, qtype)
}

/// Resolves (`name`, `qtype`), blocking until the answer, an error, or the last timeout.
/// `new_socket` makes a socket for a server; it is called for each new question (a fresh
/// random source port, RFC 5452) and the socket is reused for that question's retries.
/// A truncated answer is asked again over a TCP connection from `connect_tcp` to the same
/// server ([`exchange_over_tcp`]); if that fails the result is `ResolveError::Truncated`.
pub fn resolve_with_tcp<S, F, C>(
    resolver: &mut Resolver,
    new_socket: &mut F,
    connect_tcp: &mut C,
    name: Name,
    qtype: RecordType,
) -> Result<LookupAnswer, ResolveError>
where
    S: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<S>,
    C: StreamConnector + ?Sized,
{
    let lookup = resolver.lookup(name, qtype);
    drive(resolver, lookup, None, new_socket, connect_tcp)
}

/// [`resolve_with_tcp`] for lookups running side by side: [`drive_shared`] from the start.
pub(super) fn resolve_shared<S, F, C>(
    shared: &Mutex<SharedResolver>,
    new_socket: &Mutex<F>,
    connect_tcp: &Mutex<C>,
    name: Name,
    qtype: RecordType,
    stats: &mut ServerStats,
) -> Result<LookupAnswer, ResolveError>
where
    S: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<S>,
    C: StreamConnector,
{
    let lookup = lock(shared).resolver.lookup(name, qtype);
    drive_shared(shared, lookup, None, new_socket, connect_tcp, stats)
}

/// Drives `lookup` (from `first`, when the caller already polled it) with a shared resolver:
/// the resolver is locked only to step the lookup, the socket maker and the connector only for
/// one call each, never across a wait; the resolver's and cache's counters that grew go into
/// `stats`.
fn drive_shared<S, F, C>(
    shared: &Mutex<SharedResolver>,
    lookup: Lookup,
    first: Option<Step>,
    new_socket: &Mutex<F>,
    connect_tcp: &Mutex<C>,
    stats: &mut ServerStats,
) -> Result<LookupAnswer, ResolveError>
where
    S: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<S>,
    C: StreamConnector,
{
    let mut new_socket = |server| (lock(new_socket))(server);
    let result = drive(
        shared,
        lookup,
        first,
        &mut new_socket,
        &mut SharedConnector(connect_tcp),
    );
    lock(shared).export(stats);
    result
}

/// Runs a state machine with the resolver it needs: directly, or under a lock.
trait ResolverAccess {
    fn with<T>(&mut self, f: impl FnOnce(&mut Resolver) -> T) -> T;
}

impl ResolverAccess for &mut Resolver {
    fn with<T>(&mut self, f: impl FnOnce(&mut Resolver) -> T) -> T {
        f(self)
    }
}

/// The resolver the forwarder's lookups share, and how much of its counters the server's
/// counters already hold.
pub(super) struct SharedResolver {
    resolver: Resolver,
    exported: [u64; 3],
}

impl SharedResolver {
    /// Shares `resolver`, whose counters so far belong to whoever used it before.
    pub(super) fn new(resolver: Resolver) -> Mutex<SharedResolver> {
        let mut shared = SharedResolver {
            resolver,
            exported: [0; 3],
        };
        shared.export(&mut ServerStats::default());
        Mutex::new(shared)
    }

    /// Adds to `stats` what the resolver and its cache counted since the last call.
    fn export(&mut self, stats: &mut ServerStats) {
        let (r, c) = (self.resolver.stats(), self.resolver.cache().stats());
        let now = [r.responses_oversize, r.records_not_cached, c.evictions];
        let [a, b, e] = [0, 1, 2].map(|i| now[i].saturating_sub(self.exported[i]));
        stats.upstream_oversize += a;
        stats.records_not_cached += b;
        stats.cache_evictions += e;
        self.exported = now;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked holding it; the state is whole.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ResolverAccess for &Mutex<SharedResolver> {
    fn with<T>(&mut self, f: impl FnOnce(&mut Resolver) -> T) -> T {
        f(&mut lock(self).resolver)
    }
}

/// A connector shared by the forwarder's lookups: locked for each connect.
struct SharedConnector<'a, C>(&'a Mutex<C>);

impl<C: StreamConnector> StreamConnector for SharedConnector<'_, C> {
    type Stream = C::Stream;
    fn connect(&mut self, server: SocketAddr, timeout: Duration) -> io::Result<C::Stream> {
        lock(self.0).connect(server, timeout)
    }
}

/// Drives `lookup` to its end, starting with `first` when the caller already polled it.
/// A fresh socket (connected to the server) for each new question, and whenever a retry goes
/// to another server than the socket is connected to.
fn drive<R, S, F, C>(
    mut resolver: R,
    mut lookup: Lookup,
    mut first: Option<Step>,
    new_socket: &mut F,
    connect_tcp: &mut C,
) -> Result<LookupAnswer, ResolveError>
where
    R: ResolverAccess,
    S: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<S>,
    C: StreamConnector + ?Sized,
{
    let mut socket: Option<(S, SocketAddr)> = None;
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let now = Instant::now();
        let step = match first.take() {
            Some(step) => step,
            None => resolver.with(|r| lookup.poll(r, now)),
        };
        match step {
            Step::Done(result) => return result,
            Step::Send(t) => {
                if t.fresh_socket || socket.as_ref().is_none_or(|(_, to)| *to != t.server) {
                    let s = new_socket(t.server).map_err(|e| ResolveError::Io(e.kind()))?;
                    socket = Some((s, t.server));
                }
                if let Some((s, _)) = &socket {
                    if let Err(e) = s.send_to(&t.payload, t.server) {
                        // A failed send is a lost datagram: the timeout retries it.
                        log::debug!("dns: send to {} failed: {e}", t.server);
                    }
                }
            }
            Step::SendTcp(t) => {
                match exchange_over_tcp(connect_tcp, t.server, &t.payload, t.deadline) {
                    Ok(answer) => {
                        resolver.with(|r| lookup.on_tcp_response(r, Instant::now(), &answer))
                    }
                    Err(e) => {
                        log::debug!("dns: retry over TCP to {} failed: {e}", t.server);
                        resolver.with(|r| lookup.on_tcp_failure(r, e.kind()));
                    }
                }
            }
            Step::Wait(deadline) => {
                let Some((s, _)) = &socket else {
                    return Err(ResolveError::Io(io::ErrorKind::NotConnected));
                };
                let wait = deadline.saturating_duration_since(now);
                if wait.is_zero() {
                    continue;
                }
                s.set_read_timeout(Some(wait))
                    .map_err(|e| ResolveError::Io(e.kind()))?;
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        resolver.with(|r| lookup.on_response(r, Instant::now(), from, &buf[..n]))
                    }
                    Err(e) if is_timeout(&e) || is_transient(&e) => {}
                    Err(e) => return Err(ResolveError::Io(e.kind())),
                }
            }
        }
    }
}

/// Sends `reply` to `client` unless the rate limiter says otherwise (then a truncated form,
/// or nothing), counting what happened into `stats`.
fn send_limited<S: DatagramSocket + ?Sized>(
    socket: &S,
    limiter: &Mutex<RateLimiter>,
    reply: Vec<u8>,
    client: SocketAddr,
    stats: &Mutex<ServerStats>,
) {
    let mut local = ServerStats::default();
    let out = {
        let mut l = lock(limiter);
        let before = l.stats();
        let verdict = l.check(Instant::now(), client.ip());
        let after = l.stats();
        local.rate_limited_slipped += after.slipped - before.slipped;
        local.rate_limited_dropped += after.dropped - before.dropped;
        local.rrl_evictions += after.evictions - before.evictions;
        match verdict {
            Verdict::Send => Some(reply),
            Verdict::Slip => slip_reply(&reply),
            Verdict::Drop => None,
        }
    };
    if let Some(out) = out {
        if let Err(e) = socket.send_to(&out, client) {
            log::debug!("dns: reply to {client} failed: {e}");
            local.send_errors += 1;
        }
    }
    add_stats(stats, &local);
}

/// Receives datagrams until `stop` is set, handing each to `handle` with its sender and
/// sending back what it returns, through the rate limiter.
fn serve_with<S: DatagramSocket>(
    socket: &S,
    limiter: &Mutex<RateLimiter>,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
    mut handle: impl FnMut(&[u8], SocketAddr, &mut ServerStats) -> Option<Vec<u8>>,
) -> io::Result<()> {
    socket.set_read_timeout(Some(STOP_POLL_INTERVAL))?;
    let mut buf = vec![0u8; RECV_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if is_timeout(&e) || is_transient(&e) => continue,
            Err(e) => return Err(e),
        };
        let mut local = ServerStats::default();
        let reply = handle(&buf[..n], from, &mut local);
        // Counted before the reply leaves, so a client that has its answer sees the count.
        add_stats(stats, &local);
        if let Some(reply) = reply {
            send_limited(socket, limiter, reply, from, stats);
        }
    }
    Ok(())
}

fn add_stats(shared: &Mutex<ServerStats>, local: &ServerStats) {
    lock(shared).add(local);
}

/// The authoritative server: answers from `catalog` until `stop` is set, adding what it does
/// to `stats`. Returns early only on a socket error other than a timeout. No rate limit: see
/// [`serve_limited`].
pub fn serve<S: DatagramSocket>(
    socket: &S,
    catalog: &Catalog,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()> {
    serve_limited(socket, catalog, RateLimit::OFF, stats, stop)
}

/// [`serve`] with responses rate-limited per client prefix by `rate`.
pub fn serve_limited<S: DatagramSocket>(
    socket: &S,
    catalog: &Catalog,
    rate: RateLimit,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()> {
    let limiter = Mutex::new(RateLimiter::new(rate));
    serve_with(socket, &limiter, stats, stop, |query, _, stats| {
        answer(query, catalog, stats)
    })
}

/// The forwarding server over UDP only: [`serve_forwarding_with_tcp`] with [`NoTcp`], so a
/// truncated upstream answer is relayed truncated.
pub fn serve_forwarding<S, U, F>(
    socket: &S,
    catalog: &Catalog,
    resolver: &mut Resolver,
    new_socket: F,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    S: DatagramSocket + Sync,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U> + Send,
{
    serve_forwarding_with_tcp(socket, catalog, resolver, new_socket, NoTcp, stats, stop)
}

/// [`serve_forwarding_with_policy`] with [`ForwardPolicy::default`]: recursion for every
/// client, no rate limit.
pub fn serve_forwarding_with_tcp<S, U, F, C>(
    socket: &S,
    catalog: &Catalog,
    resolver: &mut Resolver,
    new_socket: F,
    connect_tcp: C,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    S: DatagramSocket + Sync,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U> + Send,
    C: StreamConnector + Send,
{
    let policy = ForwardPolicy::default();
    serve_forwarding_with_policy(
        socket,
        catalog,
        resolver,
        new_socket,
        connect_tcp,
        &policy,
        stats,
        stop,
    )
}

/// The forwarding server: the zones in `catalog` are answered locally, other names with RD
/// are resolved upstream through `resolver` (and its cache), over sockets from `new_socket`
/// (connected to the server), and over TCP connections from `connect_tcp` when an upstream
/// answer comes back truncated. When that retry fails the client gets the truncated answer,
/// TC set. `policy` says who is offered recursion, the rate limit and how many lookups wait
/// at once (see the module documentation). `resolver` holds the cache and counters of every
/// lookup once this returns.
#[allow(clippy::too_many_arguments)]
pub fn serve_forwarding_with_policy<S, U, F, C>(
    socket: &S,
    catalog: &Catalog,
    resolver: &mut Resolver,
    new_socket: F,
    connect_tcp: C,
    policy: &ForwardPolicy,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    S: DatagramSocket + Sync,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U> + Send,
    C: StreamConnector + Send,
{
    let shared = SharedResolver::new(resolver.clone());
    let limiter = Mutex::new(RateLimiter::new(policy.rate));
    let in_flight = AtomicUsize::new(0);
    // The lookups share the socket maker and the TCP connector; each is locked for one call
    // (a bind, or one TCP connect), never across a lookup's wait.
    let (new_socket, connect_tcp) = (Mutex::new(new_socket), Mutex::new(connect_tcp));
    let (shared_ref, limiter_ref, in_flight_ref) = (&shared, &limiter, &in_flight);
    let (new_socket_ref, connect_tcp_ref) = (&new_socket, &connect_tcp);
    let result = std::thread::scope(|scope| {
        serve_with(socket, limiter_ref, stats, stop, |query, from, local| {
            let recursion = policy
                .allow
                .as_ref()
                .is_none_or(|allow| recursion_allowed(allow, from.ip()));
            let q = match answer_or_forward_for(query, catalog, recursion, local) {
                Outcome::Drop => return None,
                Outcome::Reply(reply) => return Some(reply),
                Outcome::Forward(q) => q,
            };
            // The cache answers here, without a thread.
            let (lookup, step) = {
                let mut guard = lock(shared_ref);
                let r = &mut guard.resolver;
                let mut lookup = r.lookup(q.question.name.clone(), q.question.qtype);
                let step = lookup.poll(r, Instant::now());
                (lookup, step)
            };
            if let Step::Done(result) = step {
                return Some(forward_reply(&q, &result, local));
            }
            if in_flight_ref.load(Ordering::Acquire) >= policy.max_in_flight {
                log::debug!(
                    "dns: {} lookups in flight, dropping one",
                    policy.max_in_flight
                );
                local.forward_dropped += 1;
                return None;
            }
            in_flight_ref.fetch_add(1, Ordering::AcqRel);
            let spawned = std::thread::Builder::new()
                .name("dns-lookup".into())
                .spawn_scoped(scope, move || {
                    let mut local = ServerStats::default();
                    let result = drive_shared(
                        shared_ref,
                        lookup,
                        Some(step),
                        new_socket_ref,
                        connect_tcp_ref,
                        &mut local,
                    );
                    let reply = forward_reply(&q, &result, &mut local);
                    add_stats(stats, &local);
                    send_limited(socket, limiter_ref, reply, from, stats);
                    in_flight_ref.fetch_sub(1, Ordering::AcqRel);
                });
            if let Err(e) = spawned {
                log::debug!("dns: no thread for a lookup: {e}");
                in_flight_ref.fetch_sub(1, Ordering::AcqRel);
                local.forward_dropped += 1;
            }
            None
        })
    });
    let mut shared = shared.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut local = ServerStats::default();
    shared.export(&mut local);
    add_stats(stats, &local);
    *resolver = shared.resolver;
    result
}

#[cfg(test)]
mod tests;
