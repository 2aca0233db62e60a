//! The blocking side: a small datagram-socket trait, implemented for `std::net::UdpSocket` (and
//! by the runtime for the stack's own `UdpSocket`), and the loops that run the sans-IO parts
//! over it: [`resolve`] (one lookup), [`serve`] (authoritative) and [`serve_forwarding`].
//!
//! These loops own the clock (`Instant::now()`); the state machines they drive do not.
//! The server loops handle one datagram at a time; while a forwarded query waits for its
//! upstream, other queries wait in the socket's receive queue (bounded by the socket).

use super::forwarder::{answer_or_forward, forward_reply, Outcome};
use super::resolver::{LookupAnswer, ResolveError, Resolver, Step};
use super::{answer, Catalog, Name, RecordType, ServerStats};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
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

/// Resolves (`name`, `qtype`), blocking until the answer, an error, or the last timeout.
/// `new_socket` makes a socket for a server; it is called for each new question (a fresh
/// random source port, RFC 5452) and the socket is reused for that question's retries.
///
/// TCP fallback seam: on `Err(ResolveError::Truncated { server, question })` the caller (or,
/// once TCP exists, this function) asks `question` again over TCP.
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

/// The forwarding server: the zones in `catalog` are answered locally, other names with RD
/// are resolved upstream through `resolver` (and its cache), over sockets from `new_socket`.
pub fn serve_forwarding<S, U, F>(
    socket: &S,
    catalog: &Catalog,
    resolver: &mut Resolver,
    mut new_socket: F,
    stats: &Mutex<ServerStats>,
    stop: &AtomicBool,
) -> io::Result<()>
where
    S: DatagramSocket,
    U: DatagramSocket,
    F: FnMut(SocketAddr) -> io::Result<U>,
{
    serve_with(
        socket,
        stats,
        stop,
        |query, stats| match answer_or_forward(query, catalog, stats) {
            Outcome::Drop => None,
            Outcome::Reply(bytes) => Some(bytes),
            Outcome::Forward(q) => {
                let result = resolve(
                    resolver,
                    &mut new_socket,
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
