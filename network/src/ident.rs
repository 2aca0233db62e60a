//! The IPv4 Identification field (RFC 791 §3.2, RFC 6864, RFC 7739).
//!
//! RFC 6864 §4.1: an atomic datagram (DF set, not a fragment) may carry any ID. A datagram
//! that may be fragmented needs an ID unique per (source, destination, protocol) for as
//! long as its fragments may live (the MSL).
//!
//! Choice: RFC 7739 §5.3's table of counters, shared by every network worker. A keyed hash
//! of (src, dst, protocol) picks one of `BUCKETS` atomic counters and, with a second keyed
//! hash, a constant offset added to it. Per tuple the offset is constant and its counter
//! never repeats a value before it wraps, so the IDs of one tuple are unique for the next
//! 65536 datagrams sent to the tuples sharing its bucket, whichever worker sends them.
//! The secret key keeps the IDs unpredictable to anyone not on the path, so they leak
//! neither our send rate nor other flows. Clone the generator into each worker: clones
//! share counters and key. Atomic datagrams use the same generator (simpler, harmless).

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::wire::IpProtocol;

/// Counters in the table (16 KiB shared by all workers).
pub const BUCKETS: usize = 4096;

/// Hands out IPv4 identifications; clone it into every worker of one stack.
#[derive(Debug, Clone)]
pub struct IdentGenerator {
    counters: Arc<[AtomicU32]>,
    key: (u64, u64),
}

impl Default for IdentGenerator {
    fn default() -> Self {
        Self::new()
    }
}

impl IdentGenerator {
    /// A generator with a random key (std's `RandomState` is seeded by the OS).
    pub fn new() -> Self {
        let s = RandomState::new();
        Self::with_key(s.hash_one(1u8), s.hash_one(2u8))
    }

    /// A generator with a chosen key, for reproducible tests.
    pub fn with_key(k0: u64, k1: u64) -> Self {
        let counters = (0..BUCKETS).map(|_| AtomicU32::new(0)).collect();
        IdentGenerator {
            counters,
            key: (k0, k1),
        }
    }

    fn keyed_hash(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol) -> u64 {
        let mut h = DefaultHasher::new();
        self.key.hash(&mut h);
        (src, dst, u8::from(protocol)).hash(&mut h);
        h.finish()
    }

    fn bucket(&self, hash: u64) -> usize {
        (hash >> 32) as usize % BUCKETS
    }

    /// The next ID for a datagram from `src` to `dst` carrying `protocol`.
    pub fn next(&self, src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol) -> u16 {
        let h = self.keyed_hash(src, dst, protocol);
        let n = self.counters[self.bucket(h)].fetch_add(1, Ordering::Relaxed);
        (n as u16).wrapping_add(h as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn ids_of_one_tuple_are_unique_across_workers_until_wrap() {
        let worker1 = IdentGenerator::with_key(1, 2);
        let worker2 = worker1.clone();
        let bucket = |g: &IdentGenerator, d| g.bucket(g.keyed_hash(A, d, IpProtocol::Udp));
        // Another flow in another bucket, sending in between.
        let other = (1..=255u8)
            .map(|i| Ipv4Addr::new(198, 51, 100, i))
            .find(|d| bucket(&worker1, *d) != bucket(&worker1, B))
            .unwrap();
        let mut seen = HashSet::new();
        for i in 0..65536u32 {
            let g = if i % 3 == 0 { &worker1 } else { &worker2 };
            assert!(seen.insert(g.next(A, B, IpProtocol::Udp)), "repeat at {i}");
            g.next(A, other, IpProtocol::Udp);
        }
        assert!(
            !seen.insert(worker1.next(A, B, IpProtocol::Udp)),
            "wraps after 65536"
        );
    }

    #[test]
    fn first_ids_of_different_tuples_are_unpredictable() {
        let g = IdentGenerator::new();
        let ids: HashSet<u16> = (1..=32u8)
            .map(|i| g.next(A, Ipv4Addr::new(198, 51, 100, i), IpProtocol::Udp))
            .collect();
        assert!(ids.len() > 24, "first IDs barely vary: {ids:?}");
    }

    #[test]
    fn different_keys_give_different_sequences() {
        let a = IdentGenerator::with_key(1, 2).next(A, B, IpProtocol::Tcp);
        let b = IdentGenerator::with_key(3, 4).next(A, B, IpProtocol::Tcp);
        assert_ne!(a, b);
    }
}
