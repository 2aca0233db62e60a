//! Ephemeral port choice (RFC 6056), for sockets that do not name their local port.
//!
//! - A connection whose remote is known (TCP connect): RFC 6056 §3.3.4 Algorithm 4, double-hash
//!   port selection. A keyed hash F of (local address, remote address, remote port) gives each
//!   destination its own secret offset into the range, so the ports used towards one peer tell
//!   nothing about those used towards another; a second keyed hash G picks one of
//!   [`TABLE_LEN`] counters, which moves on with every port tried, so successive connections to
//!   one peer take successive ports and a port comes back to that peer only after the whole
//!   range (few TIME-WAIT collisions, §3.3.4).
//! - A socket with no remote yet (UDP bind to port 0): RFC 6056 §3.3.1 Algorithm 1, a start
//!   drawn at random for each call, then every port in turn.
//!
//! Both yield candidates the caller filters (is the port free? does the 4-tuple hash to the
//! worker that will own it?) and keeps the first that suits. The keys and random numbers
//! come from the caller: nothing here reads a clock or the operating system's randomness.
//!
//! Limits: an iterator yields at most as many candidates as the range holds ports (16,384 by
//! default), so a full range ends the search instead of looping. The counter table is
//! [`TABLE_LEN`] atomics (16 KiB), shared by concurrent callers without a lock; two callers
//! whose destinations share a counter at the same moment may each skip a port the other took,
//! which costs only a filter check.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::tcp::isn::siphash24;

/// RFC 6335 §6: the dynamic (ephemeral) port range, 49152–65535.
pub const EPHEMERAL_PORTS: RangeInclusive<u16> = 49152..=65535;

/// Counters in the RFC 6056 §3.3.4 table. Many more than the RFC's example of 10, so that
/// destinations rarely share one (each counter shared leaks how many connections the other
/// destination saw; Linux grew its table for that reason too).
pub const TABLE_LEN: usize = 4096;

/// Chooses ephemeral ports by RFC 6056 Algorithm 4 (see the module documentation). Shared by
/// reference between threads: [`candidates`](Self::candidates) takes `&self`.
#[derive(Debug)]
pub struct EphemeralPorts {
    secret: [u8; 16],
    range: RangeInclusive<u16>,
    min: u16,
    span: u32,
    table: Box<[AtomicU32]>,
}

impl EphemeralPorts {
    /// Ports from [`EPHEMERAL_PORTS`], keyed by `secret` (random, kept for the stack's life
    /// and never shown to peers).
    pub fn new(secret: [u8; 16]) -> Self {
        Self::with_range(secret, EPHEMERAL_PORTS)
    }

    /// Ports from `range` instead (an empty range yields no candidates).
    pub fn with_range(secret: [u8; 16], range: RangeInclusive<u16>) -> Self {
        EphemeralPorts {
            secret,
            min: *range.start(),
            span: span(&range),
            range,
            table: (0..TABLE_LEN).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The range candidates come from.
    pub fn range(&self) -> RangeInclusive<u16> {
        self.range.clone()
    }

    /// RFC 6056 §3.3.4: candidate local ports for a connection from `local` to `remote`, best
    /// first. Each candidate taken moves the destination's counter on, so the next call for
    /// the same destination starts after it.
    pub fn candidates(&self, local: Ipv4Addr, remote: SocketAddrV4) -> Candidates<'_> {
        let mut input = [0u8; 11];
        input[1..5].copy_from_slice(&local.octets());
        input[5..9].copy_from_slice(&remote.ip().octets());
        input[9..11].copy_from_slice(&remote.port().to_be_bytes());
        // Two keyed hashes, told apart by their first byte (the RFC's secret_key1 and 2).
        input[0] = b'F';
        let offset = siphash24(&self.secret, &input);
        input[0] = b'G';
        let index = (siphash24(&self.secret, &input) % TABLE_LEN as u64) as usize;
        Candidates {
            min: self.min,
            span: self.span,
            offset: offset % u64::from(self.span.max(1)),
            counter: Counter::Shared(&self.table[index]),
            left: self.span,
        }
    }
}

/// RFC 6056 §3.3.1 Algorithm 1: candidates from [`EPHEMERAL_PORTS`] for a socket with no
/// remote (UDP bind to port 0), starting at `random` (which the caller draws unpredictably
/// for every call) and then every port in turn.
pub fn random_candidates(random: u32) -> Candidates<'static> {
    let span = span(&EPHEMERAL_PORTS);
    Candidates {
        min: *EPHEMERAL_PORTS.start(),
        span,
        offset: u64::from(random) % u64::from(span),
        counter: Counter::Local(0),
        left: span,
    }
}

fn span(range: &RangeInclusive<u16>) -> u32 {
    if range.is_empty() {
        0
    } else {
        u32::from(*range.end() - *range.start()) + 1
    }
}

#[derive(Debug)]
enum Counter<'a> {
    /// A counter of the §3.3.4 table, moved on by every candidate taken.
    Shared(&'a AtomicU32),
    Local(u32),
}

/// Candidate ephemeral ports, best first; at most as many as the range holds.
#[derive(Debug)]
pub struct Candidates<'a> {
    min: u16,
    span: u32,
    offset: u64,
    counter: Counter<'a>,
    left: u32,
}

impl Iterator for Candidates<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let step = match &mut self.counter {
            Counter::Shared(c) => c.fetch_add(1, Ordering::Relaxed),
            Counter::Local(n) => {
                *n += 1;
                *n - 1
            }
        };
        let at = (self.offset + u64::from(step)) % u64::from(self.span);
        Some(self.min + at as u16)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left as usize, Some(self.left as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn peer(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, last), port)
    }

    fn secret(b: u8) -> [u8; 16] {
        [b; 16]
    }

    #[test]
    fn candidates_cover_the_ephemeral_range_once_each() {
        let p = EphemeralPorts::new(secret(1));
        let got: Vec<u16> = p.candidates(US, peer(1, 80)).collect();
        assert_eq!(got.len(), 16384);
        let set: HashSet<u16> = got.iter().copied().collect();
        assert_eq!(set.len(), 16384);
        assert!(got.iter().all(|port| EPHEMERAL_PORTS.contains(port)));
    }

    #[test]
    fn successive_connections_to_one_peer_take_successive_ports() {
        // RFC 6056 §3.3.4: the destination's counter moves on with every port tried.
        let p = EphemeralPorts::new(secret(1));
        let first = p.candidates(US, peer(1, 80)).next().unwrap();
        let mut c = p.candidates(US, peer(1, 80));
        let (second, third) = (c.next().unwrap(), c.next().unwrap());
        let fourth = p.candidates(US, peer(1, 80)).next().unwrap();
        let next = |port: u16| if port == 65535 { 49152 } else { port + 1 };
        assert_eq!(
            (second, third, fourth),
            (next(first), next(next(first)), next(next(next(first))))
        );
    }

    #[test]
    fn a_port_comes_back_to_one_peer_only_after_the_whole_range() {
        let p = EphemeralPorts::with_range(secret(1), 50000..=50099);
        let ports: Vec<u16> = (0..100)
            .map(|_| p.candidates(US, peer(1, 80)).next().unwrap())
            .collect();
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), 100);
        assert_eq!(p.candidates(US, peer(1, 80)).next(), Some(ports[0]));
    }

    #[test]
    fn different_peers_start_at_unrelated_ports() {
        let p = EphemeralPorts::new(secret(1));
        let starts: HashSet<u16> = (1..=100)
            .map(|i| p.candidates(US, peer(i, 443)).next().unwrap())
            .collect();
        // 100 draws from 16,384 ports: a handful of collisions at most.
        assert!(starts.len() > 90, "{}", starts.len());
        // The remote port counts too.
        let a = p.candidates(US, peer(200, 80)).next();
        let b = p.candidates(US, peer(200, 81)).next();
        assert_ne!(a, b);
    }

    #[test]
    fn the_secret_decides_the_ports() {
        let (a, b) = (
            EphemeralPorts::new(secret(1)),
            EphemeralPorts::new(secret(2)),
        );
        let pa: Vec<u16> = (1..=20)
            .map(|i| a.candidates(US, peer(i, 53)).next().unwrap())
            .collect();
        let pb: Vec<u16> = (1..=20)
            .map(|i| b.candidates(US, peer(i, 53)).next().unwrap())
            .collect();
        assert_ne!(pa, pb);
        // The same secret gives the same choice (a restart with a new secret does not).
        let c = EphemeralPorts::new(secret(1));
        assert_eq!(c.candidates(US, peer(1, 53)).next(), Some(pa[0]));
    }

    #[test]
    fn the_caller_keeps_the_first_candidate_that_suits_it() {
        let fresh = || EphemeralPorts::new(secret(3));
        let order: Vec<u16> = fresh().candidates(US, peer(1, 80)).take(7).collect();
        let taken: HashSet<u16> = order[..5].iter().copied().collect();
        let p = fresh();
        let chosen = p
            .candidates(US, peer(1, 80))
            .find(|port| !taken.contains(port));
        assert_eq!(chosen, Some(order[5]));
        // The next connection to that peer starts after the ports already tried.
        assert_eq!(p.candidates(US, peer(1, 80)).next(), Some(order[6]));
    }

    #[test]
    fn a_small_range_is_covered_and_an_empty_one_yields_nothing() {
        let p = EphemeralPorts::with_range(secret(1), 10..=12);
        assert_eq!(p.range(), 10..=12);
        let mut got: Vec<u16> = p.candidates(US, peer(1, 80)).collect();
        got.sort_unstable();
        assert_eq!(got, [10, 11, 12]);
        let full = EphemeralPorts::with_range(secret(1), 65535..=65535);
        assert_eq!(
            full.candidates(US, peer(1, 80)).collect::<Vec<_>>(),
            [65535]
        );
        #[allow(clippy::reversed_empty_ranges)]
        let empty = EphemeralPorts::with_range(secret(1), 12..=10);
        assert_eq!(empty.candidates(US, peer(1, 80)).next(), None);
    }

    #[test]
    fn random_candidates_start_at_the_random_number_and_cover_the_range() {
        let got: Vec<u16> = random_candidates(5).collect();
        assert_eq!(got[..3], [49157, 49158, 49159]);
        assert_eq!(got.len(), 16384);
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 16384);
        // Any u32 works, the end of the range wraps to its start.
        let got: Vec<u16> = random_candidates(u32::MAX).take(2).collect();
        let at = (u32::MAX % 16384) as u16 + 49152;
        assert_eq!(got[0], at);
        assert!(EPHEMERAL_PORTS.contains(&got[1]));
        assert_eq!(
            random_candidates(16383).take(2).collect::<Vec<_>>(),
            [65535, 49152]
        );
    }

    #[test]
    fn threads_share_one_chooser() {
        let p = std::sync::Arc::new(EphemeralPorts::new(secret(4)));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .map(|_| p.candidates(US, peer(1, 80)).next().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<u16> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        // One counter, moved atomically: 400 selections, 400 different ports.
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 400);
    }
}
