//! The blocking side: a small datagram-socket trait and a small byte-stream trait, implemented
//! for `std::net`'s `UdpSocket` and `TcpStream` (and, in `crate::stack_socket`, for the
//! stack's own), and the loops that run the sans-IO parts over them: [`resolve_with_tcp`] (one
//! lookup), [`serve`] (authoritative) and [`serve_forwarding_with_tcp`].
//!
//! These loops own the clock (`Instant::now()`); the state machines they drive do not.
//! The server loops handle one datagram at a time; while a forwarded query waits for its
//! upstream, other queries wait in the socket's receive queue (bounded by the socket).
//!
//! DNS over TCP, client side (RFC 7766 §5, §6.2.1): when the resolver asks for a retry over
//! TCP, [`exchange_over_tcp`] opens a connection with a [`StreamConnector`], writes the one
//! query and reads the one answer with the framing of `super::tcp`, all by the resolver's
//! deadline (every read and write gets only the time left, so a peer that trickles bytes
//! cannot stretch it), then closes. The answer is at most 65,535 octets: the two-octet length
//! bounds it.

use super::forwarder::{answer_or_forward, forward_reply, Outcome};
use super::resolver::{LookupAnswer, ResolveError, Resolver, Step};
use super::tcp::{read_message, write_message};
use super::{answer, Catalog, Name, RecordType, ServerStats};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// A std socket for talking to `server`, bound to an ephemeral port of the matching family.
/// Linux picks ephemeral ports at random, which is what RFC 5452 asks for.
pub fn std_socket_for(server: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    UdpSocket::bind(any)
}

/// A seed for [`Resolver::new`] from the process's hash keys, which std draws from the OS:
/// unpredictable to an off-path attacker without another dependency.
pub fn random_seed() -> u64 {
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
    let mut lookup = resolver.lookup(name, qtype);
    let mut socket: Option<S> = None;
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        let now = Instant::now();
        match lookup.poll(resolver, now) {
            Step::Done(result) => return result,
            Step::Send(t) => {
                if t.fresh_socket || socket.is_none() {
                    socket = Some(new_socket(t.server).map_err(|e| ResolveError::Io(e.kind()))?);
                }
                if let Some(s) = &socket {
                    if let Err(e) = s.send_to(&t.payload, t.server) {
                        // A failed send is a lost datagram: the timeout retries it.
                        log::debug!("dns: send to {} failed: {e}", t.server);
                    }
                }
            }
            Step::SendTcp(t) => {
                match exchange_over_tcp(connect_tcp, t.server, &t.payload, t.deadline) {
                    Ok(answer) => lookup.on_tcp_response(resolver, Instant::now(), &answer),
                    Err(e) => {
                        log::debug!("dns: retry over TCP to {} failed: {e}", t.server);
                        lookup.on_tcp_failure(resolver, e.kind());
                    }
                }
            }
            Step::Wait(deadline) => {
                let Some(s) = &socket else {
                    return Err(ResolveError::Io(io::ErrorKind::NotConnected));
                };
                let wait = deadline.saturating_duration_since(now);
                if wait.is_zero() {
                    continue;
                }
                s.set_read_timeout(Some(wait))
                    .map_err(|e| ResolveError::Io(e.kind()))?;
                match s.recv_from(&mut buf) {
                    Ok((n, from)) => lookup.on_response(resolver, Instant::now(), from, &buf[..n]),
                    Err(e) if is_timeout(&e) || is_transient(&e) => {}
                    Err(e) => return Err(ResolveError::Io(e.kind())),
                }
            }
        }
    }
}

/// Receives datagrams until `stop` is set, handing each to `handle` and sending back what it
/// returns.
fn serve_with<S: DatagramSocket>(
    socket: &S,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
    mut handle: impl FnMut(&[u8], &mut ServerStats) -> Option<Vec<u8>>,
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
        let reply = handle(&buf[..n], &mut local);
        // Counted before the reply leaves, so a client that has its answer sees the count.
        add_stats(stats, &local);
        if let Some(reply) = reply {
            if let Err(e) = socket.send_to(&reply, from) {
                log::debug!("dns: reply to {from} failed: {e}");
                add_stats(
                    stats,
                    &ServerStats {
                        send_errors: 1,
                        ..ServerStats::default()
                    },
                );
            }
        }
    }
    Ok(())
}

fn add_stats(shared: &Mutex<ServerStats>, local: &ServerStats) {
    // A poisoned lock only means another thread panicked while adding: the counts still add.
    let mut guard = shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.add(local);
}

/// The authoritative server: answers from `catalog` until `stop` is set, adding what it does
/// to `stats`. Returns early only on a socket error other than a timeout.
pub fn serve<S: DatagramSocket>(
    socket: &S,
    catalog: &Catalog,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()> {
    serve_with(socket, stats, stop, |query, stats| {
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
    S: DatagramSocket,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U>,
{
    serve_forwarding_with_tcp(socket, catalog, resolver, new_socket, NoTcp, stats, stop)
}

/// The forwarding server: the zones in `catalog` are answered locally, other names with RD
/// are resolved upstream through `resolver` (and its cache), over sockets from `new_socket`,
/// and over TCP connections from `connect_tcp` when an upstream answer comes back truncated.
/// When that retry fails the client gets the truncated answer, TC set.
pub fn serve_forwarding_with_tcp<S, U, F, C>(
    socket: &S,
    catalog: &Catalog,
    resolver: &mut Resolver,
    mut new_socket: F,
    mut connect_tcp: C,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    S: DatagramSocket,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U>,
    C: StreamConnector,
{
    serve_with(
        socket,
        stats,
        stop,
        |query, stats| match answer_or_forward(query, catalog, stats) {
            Outcome::Drop => None,
            Outcome::Reply(bytes) => Some(bytes),
            Outcome::Forward(q) => {
                let result = resolve_with_tcp(
                    resolver,
                    &mut new_socket,
                    &mut connect_tcp,
                    q.question.name.clone(),
                    q.question.qtype,
                );
                Some(forward_reply(&q, &result, stats))
            }
        },
    )
}

#[cfg(test)]
mod tests;
