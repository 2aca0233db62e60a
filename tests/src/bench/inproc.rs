//! The in-process cases: two netstack stacks over the in-memory link (192.0.2.2 ↔ 192.0.2.3)
//! moving bulk data over one or many flows, exchanging 1-byte requests, opening and closing
//! connections, and holding idle connections while the resident set is read.

use std::io::ErrorKind;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::MemoryLinkConfig;
use netstack_runtime::{Stack, TcpListener, TcpStream};

use super::tcp::{
    bulk_send, connect_request_close, discard, echo, io_err, request_response, Mode, Outcome,
    CONNECT_TIMEOUT, DISCARD_PORT, ECHO_PORT,
};
use crate::inprocess::{pair_with, B};

fn pair(workers: usize) -> Result<(Stack, Stack), String> {
    pair_with(MemoryLinkConfig::default(), Some((workers, workers)))
}

fn target(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(B, port))
}

/// `flows` bulk flows at once between two netstack stacks over the in-memory link: stack A sends
/// `bytes` in all (split evenly) to discard readers on stack B with the same [`bulk_send`] the
/// TAP clients use; the time is until the last flow is done. `workers` network and transport
/// workers per stack.
pub fn memory_bulk(bytes: u64, flows: usize, workers: usize) -> Result<Outcome, String> {
    let flows = flows.max(1);
    let (a, b) = pair(workers)?;
    let listener =
        TcpListener::bind(&b, ("0.0.0.0", DISCARD_PORT)).map_err(io_err("bind on stack B"))?;
    let to = target(DISCARD_PORT);
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let each = bytes / flows as u64;
    let start = Instant::now();
    thread::scope(|s| {
        let readers = s.spawn(|| -> Result<(), String> {
            for _ in 0..flows {
                let (c, _) = listener
                    .accept_until(Some(deadline))
                    .map_err(io_err("accept on stack B"))?;
                s.spawn(|| discard(c));
            }
            Ok(())
        });
        let senders: Vec<_> = (0..flows)
            .map(|_| {
                let a = &a;
                s.spawn(move || {
                    TcpStream::connect_timeout(a, &to, CONNECT_TIMEOUT)
                        .map_err(|e| format!("connect {to}: {e}"))
                        .and_then(|c| bulk_send(c, each))
                })
            })
            .collect();
        let mut moved = 0;
        for h in senders {
            moved += h
                .join()
                .map_err(|_| "a sender panicked".to_string())??
                .bytes;
        }
        readers
            .join()
            .map_err(|_| "the acceptor panicked".to_string())??;
        Ok(Outcome {
            bytes: moved,
            ops: flows as u64,
            elapsed: start.elapsed(),
            ..Outcome::default()
        })
    })
}

/// 1-byte request/response ([`Mode::RequestResponse`]) or connect–request–close
/// ([`Mode::ConnectRequestClose`]) between two netstack stacks over the in-memory link for
/// `duration`, with the loops the TAP clients run; stack B serves echo one connection at a time.
pub fn memory_exchanges(mode: Mode, duration: Duration, workers: usize) -> Result<Outcome, String> {
    let (a, b) = pair(workers)?;
    let listener =
        TcpListener::bind(&b, ("0.0.0.0", ECHO_PORT)).map_err(io_err("bind on stack B"))?;
    let to = target(ECHO_PORT);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let until = Instant::now() + Duration::from_millis(50);
                match listener.accept_until(Some(until)) {
                    Ok((c, _)) => echo(c),
                    Err(e) if e.kind() == ErrorKind::TimedOut => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        });
        let connect = || TcpStream::connect_timeout(&a, &to, CONNECT_TIMEOUT);
        let result = match mode {
            Mode::ConnectRequestClose => connect_request_close(connect, duration),
            _ => connect()
                .map_err(|e| format!("connect {to}: {e}"))
                .and_then(|c| request_response(c, duration)),
        };
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// What the idle-connection case measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Idle {
    /// Established connections held (each with an end on both stacks).
    pub count: u64,
    /// Resident bytes of the process before the first and after the last connection.
    pub rss_before: u64,
    pub rss_after: u64,
    /// How long opening them all took.
    pub elapsed: Duration,
    /// Connects that failed with `AddrNotAvailable` and were tried again (see
    /// [`CONNECT_RETRIES`]).
    pub retries: u64,
    /// Listening ports the connections were spread over ([`CONNECTIONS_PER_PORT`] each).
    pub ports: u64,
}

impl Idle {
    /// Resident bytes per connection end: what one stack holds for one idle established
    /// connection (both stacks are in this process, so the growth is shared by 2 × count ends).
    pub fn per_end(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / (2 * self.count.max(1)) as f64
    }
}

/// The process's resident set, from `/proc/self/statm` (its second field, in pages).
pub fn resident_bytes() -> Result<u64, String> {
    let statm =
        std::fs::read_to_string("/proc/self/statm").map_err(io_err("reading /proc/self/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("/proc/self/statm unreadable: {statm:?}"))?;
    // SAFETY: sysconf has no memory preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * u64::try_from(page).unwrap_or(4096))
}

/// How often one of the idle connections is tried again after `AddrNotAvailable`. The runtime
/// picks a local port by probing 64 consecutive ports from a random start, so once thousands of
/// connections go to one remote address a probe can meet a run of 64 taken ports while most of
/// the range is free; a new attempt starts somewhere else. The retries are counted and shown.
pub const CONNECT_RETRIES: u32 = 16;

/// Idle connections to one listening port. A 4-tuple toward one port has only the 16,384
/// ephemeral ports (RFC 6335 §6) to vary, and probes fail more often as the range fills, so
/// larger counts are spread over more listening ports, half the range each.
pub const CONNECTIONS_PER_PORT: usize = 8_192;
/// The first of the idle case's listening ports.
const IDLE_BASE_PORT: u16 = 20_000;

/// `count` idle established connections between two netstack stacks over the in-memory link,
/// spread over listening ports [`CONNECTIONS_PER_PORT`] at a time: the resident set before and
/// after (one warm-up connection first, the vectors that hold the streams reserved before).
/// `progress` is called every 1,000 connections.
pub fn idle_connections(
    count: usize,
    workers: usize,
    mut progress: impl FnMut(usize),
) -> Result<Idle, String> {
    let (a, b) = pair(workers)?;
    let ports = count.div_ceil(CONNECTIONS_PER_PORT).max(1);
    let listeners = (0..ports)
        .map(|i| {
            let port = IDLE_BASE_PORT + i as u16;
            TcpListener::bind_with_backlog(&b, ("0.0.0.0", port), 1024)
                .map_err(io_err("bind on stack B"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accept = |l: &TcpListener, until| {
        l.accept_until(Some(until))
            .map(|(c, _)| c)
            .map_err(io_err("accept on stack B"))
    };
    let connect = |i: usize| {
        let to = target(IDLE_BASE_PORT + (i / CONNECTIONS_PER_PORT) as u16);
        TcpStream::connect_timeout(&a, &to, CONNECT_TIMEOUT).map_err(|e| (to, e))
    };
    // Warm-up: ARP on both sides, the first connection's lazy allocations.
    let warm = connect(0).map_err(|(to, e)| format!("connect {to}: {e}"))?;
    let warm_peer = accept(&listeners[0], Instant::now() + CONNECT_TIMEOUT)?;
    let mut clients = Vec::with_capacity(count);
    let share = |p: usize| CONNECTIONS_PER_PORT.min(count - p * CONNECTIONS_PER_PORT);
    let mut servers: Vec<Vec<TcpStream>> =
        (0..ports).map(|p| Vec::with_capacity(share(p))).collect();
    thread::sleep(Duration::from_millis(100));
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    let until = start + CONNECT_TIMEOUT + Duration::from_millis(20) * count as u32;
    let mut retries = 0u64;
    thread::scope(|s| {
        let acceptors: Vec<_> = servers
            .iter_mut()
            .zip(&listeners)
            .enumerate()
            .map(|(p, (held, l))| {
                s.spawn(move || -> Result<(), String> {
                    while held.len() < share(p) {
                        held.push(accept(l, until).map_err(|e| format!("{e} ({})", held.len()))?);
                    }
                    Ok(())
                })
            })
            .collect();
        let mut opened = || -> Result<(), String> {
            for i in 0..count {
                let mut tries = 0;
                let c = loop {
                    match connect(i) {
                        Err((_, e)) if e.kind() == ErrorKind::AddrNotAvailable => {
                            tries += 1;
                            retries += 1;
                            if tries > CONNECT_RETRIES {
                                break Err(e);
                            }
                        }
                        Err((to, e)) => return Err(format!("connect {to}: {e} (after {i})")),
                        Ok(c) => break Ok(c),
                    }
                };
                clients.push(c.map_err(|e| format!("connect: {e} (after {i})"))?);
                if (i + 1) % 1000 == 0 {
                    progress(i + 1);
                }
            }
            Ok(())
        };
        let opened = opened();
        for h in acceptors {
            h.join().map_err(|_| "an acceptor panicked".to_string())??;
        }
        opened
    })?;
    let elapsed = start.elapsed();
    // Let the last handshakes' ACKs land and the workers go idle.
    thread::sleep(Duration::from_millis(500));
    let rss_after = resident_bytes()?;
    drop((clients, servers, warm, warm_peer));
    Ok(Idle {
        count: count as u64,
        rss_before,
        rss_after,
        elapsed,
        retries,
        ports: ports as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_flows_between_two_stacks_over_the_memory_link_arrive_whole() {
        for flows in [1, 4] {
            let o = memory_bulk(1 << 20, flows, 1).unwrap();
            assert_eq!(o.bytes, 1 << 20, "{flows} flows");
            assert_eq!(o.ops, flows as u64);
        }
    }

    #[test]
    fn request_loops_between_two_stacks_count_every_exchange() {
        for mode in [Mode::RequestResponse, Mode::ConnectRequestClose] {
            let o = memory_exchanges(mode, Duration::from_millis(100), 1).unwrap();
            assert!(o.ops > 0 && o.bytes == 2 * o.ops, "{mode:?}: {o:?}");
        }
    }

    #[test]
    fn idle_connections_are_all_established_and_grow_the_resident_set() {
        let i = idle_connections(50, 1, |_| {}).unwrap();
        assert_eq!((i.count, i.ports), (50, 1));
        assert!(i.rss_before > 0 && i.rss_after > 0, "{i:?}");
    }
}
