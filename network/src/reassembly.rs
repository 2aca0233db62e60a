//! IPv4 reassembly (RFC 791 §3.2, RFC 815, RFC 1122 §3.3.2), hardened.
//!
//! Policy, in one place:
//! - Datagrams are keyed by (src, dst, protocol, ident) (RFC 791 §3.2).
//! - Fragments may arrive in any order. An exact duplicate (same offset, same bytes) is
//!   ignored. Any other overlap drops the whole datagram and poisons its key until the key
//!   times out (in the spirit of RFC 5722: overlaps only serve evasion attacks), as does a
//!   fragment that contradicts a known end (a second, different last fragment, or data past
//!   the end).
//! - A datagram lives at most `timeout` (default 30 s, counted from its first fragment,
//!   not refreshed; RFC 1122 §3.3.2 recommends 60–120 s, Linux uses 30 s). On expiry the
//!   caller receives the first fragment (if it arrived) to send ICMP Time Exceeded code 1.
//! - A reassembled datagram may not exceed 65535 bytes (header included): a fragment that
//!   would push it past drops and poisons the datagram (the "ping of death").
//! - Memory is bounded by `memory_limit`, counting each stored fragment as its payload plus
//!   `FRAGMENT_OVERHEAD` (so floods of tiny fragments are bounded too). When a fragment does
//!   not fit, the oldest other datagrams are evicted first; if it still does not fit, its
//!   own datagram is dropped. At most `max_datagrams` datagrams (poisoned keys included) are
//!   in progress; a new one beyond that evicts the oldest.
//! - Non-last fragments must carry a non-zero multiple of 8 bytes (RFC 791 §3.2); others
//!   are dropped on their own.
//!
//! Every outcome increments a counter of `ReassemblyStats`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::ipv4::{Ipv4Repr, HEADER_LEN, MAX_PACKET_LEN};
use crate::wire::IpProtocol;

/// Memory charged per stored fragment beyond its payload (map node, Vec header).
pub const FRAGMENT_OVERHEAD: usize = 64;

/// Limits of one reassembler (one per network worker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyConfig {
    /// Lifetime of a datagram in progress, from its first fragment.
    pub timeout: Duration,
    /// Bytes of fragments held at once (payload + `FRAGMENT_OVERHEAD` each).
    pub memory_limit: usize,
    /// Datagrams (and poisoned keys) in progress at once.
    pub max_datagrams: usize,
}

impl Default for ReassemblyConfig {
    fn default() -> Self {
        ReassemblyConfig {
            timeout: Duration::from_secs(30),
            memory_limit: 4 * 1024 * 1024,
            max_datagrams: 512,
        }
    }
}

impl ReassemblyConfig {
    /// This config with the memory and datagram limits divided among `workers` shards, so
    /// the stack as a whole keeps the configured totals.
    pub fn share(&self, workers: usize) -> Self {
        let n = workers.max(1);
        ReassemblyConfig {
            timeout: self.timeout,
            memory_limit: self.memory_limit / n,
            max_datagrams: (self.max_datagrams / n).max(1),
        }
    }
}

/// Which datagram a fragment belongs to (RFC 791 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub ident: u16,
}

impl FragmentKey {
    pub fn of(header: &Ipv4Repr) -> Self {
        FragmentKey {
            src: header.src,
            dst: header.dst,
            protocol: header.protocol,
            ident: header.ident,
        }
    }
}

crate::counters! {
    /// Counters, one per outcome.
    pub struct ReassemblyStats {
        /// Fragments offered to `push`.
        fragments,
        /// Datagrams completed.
        reassembled,
        /// Exact duplicates ignored.
        duplicates,
        /// Datagrams dropped (and keys poisoned) for an overlapping fragment.
        overlaps,
        /// Datagrams dropped for a fragment contradicting the known end.
        inconsistent,
        /// Datagrams dropped for exceeding 65535 bytes.
        too_long,
        /// Single fragments dropped: a non-last one with a length not a non-zero multiple of 8.
        bad_fragments,
        /// Fragments dropped because their key is poisoned.
        poisoned_drops,
        /// Datagrams expired incomplete.
        timeouts,
        /// Of those, how many had their first fragment (a Time Exceeded is due).
        timeouts_with_first,
        /// Datagrams evicted (or refused) to stay within `memory_limit`.
        evicted_memory,
        /// Datagrams evicted to stay within `max_datagrams`.
        evicted_max_datagrams,
    }
}

/// Why `push` did not store a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReassemblyDrop {
    Duplicate,
    Overlap,
    Inconsistent,
    TooLong,
    BadFragment,
    Poisoned,
    MemoryLimit,
}

/// What `push` did with a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reassembly {
    /// The datagram is whole: the first fragment's header with MF clear, offset 0 and the
    /// full payload length.
    Complete { header: Ipv4Repr, payload: Vec<u8> },
    /// Stored; the datagram is still incomplete.
    Held,
    /// Not stored (counted).
    Dropped(ReassemblyDrop),
}

/// A datagram that timed out incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub key: FragmentKey,
    /// The fragment at offset 0 (header and payload) when it had arrived: RFC 792 /
    /// RFC 1122 §3.3.2 ask for Time Exceeded code 1 quoting it; without it, none is sent.
    pub first_fragment: Option<(Ipv4Repr, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct Partial {
    /// Payload by byte offset; never overlapping.
    fragments: BTreeMap<usize, Vec<u8>>,
    /// Payload length, once the last fragment (MF clear) arrived.
    total: Option<usize>,
    received: usize,
    first: Option<Ipv4Repr>,
    memory: usize,
}

#[derive(Debug)]
enum Slot {
    Collecting(Partial),
    Poisoned,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    deadline: Instant,
    slot: Slot,
}

/// One shard of reassembly state. Sans-IO: time comes in as `now`.
#[derive(Debug)]
pub struct Reassembler {
    config: ReassemblyConfig,
    entries: HashMap<FragmentKey, Entry>,
    /// Creation order; with a fixed timeout it is also deadline order.
    order: BTreeMap<u64, FragmentKey>,
    next_seq: u64,
    memory: usize,
    stats: ReassemblyStats,
}

impl Reassembler {
    pub fn new(config: ReassemblyConfig) -> Self {
        Reassembler {
            config,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            memory: 0,
            stats: ReassemblyStats::default(),
        }
    }

    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Bytes currently charged against `memory_limit`.
    pub fn memory(&self) -> usize {
        self.memory
    }

    /// Datagrams (and poisoned keys) in progress.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The earliest time `expire` has work to do.
    pub fn poll_deadline(&self) -> Option<Instant> {
        let (_, key) = self.order.first_key_value()?;
        self.entries.get(key).map(|e| e.deadline)
    }

    /// Offers one fragment (`header.is_fragment()`), its payload being `payload`.
    pub fn push(&mut self, now: Instant, header: &Ipv4Repr, payload: &[u8]) -> Reassembly {
        self.stats.fragments += 1;
        let key = FragmentKey::of(header);
        let offset = usize::from(header.frag_offset);
        let end = offset + payload.len();
        if header.more_frags && (payload.is_empty() || !payload.len().is_multiple_of(8)) {
            self.stats.bad_fragments += 1;
            return Reassembly::Dropped(ReassemblyDrop::BadFragment);
        }
        if HEADER_LEN + end > MAX_PACKET_LEN {
            self.stats.too_long += 1;
            return self.poison(now, key, ReassemblyDrop::TooLong);
        }
        if !self.entries.contains_key(&key) && !self.admit(now, key) {
            self.stats.evicted_max_datagrams += 1;
            return Reassembly::Dropped(ReassemblyDrop::MemoryLimit);
        }
        let Some(Entry { slot, .. }) = self.entries.get_mut(&key) else {
            return Reassembly::Dropped(ReassemblyDrop::MemoryLimit);
        };
        let Slot::Collecting(partial) = slot else {
            self.stats.poisoned_drops += 1;
            return Reassembly::Dropped(ReassemblyDrop::Poisoned);
        };
        match check(partial, offset, end, header.more_frags, payload) {
            Check::Fits => {}
            Check::Duplicate => {
                self.stats.duplicates += 1;
                return Reassembly::Dropped(ReassemblyDrop::Duplicate);
            }
            Check::Overlap => {
                self.stats.overlaps += 1;
                return self.poison(now, key, ReassemblyDrop::Overlap);
            }
            Check::Inconsistent => {
                self.stats.inconsistent += 1;
                return self.poison(now, key, ReassemblyDrop::Inconsistent);
            }
        }
        let need = payload.len() + FRAGMENT_OVERHEAD;
        if !self.make_room(key, need) {
            self.stats.evicted_memory += 1;
            self.remove(&key);
            return Reassembly::Dropped(ReassemblyDrop::MemoryLimit);
        }
        self.memory += need;
        let Some(Entry {
            slot: Slot::Collecting(partial),
            ..
        }) = self.entries.get_mut(&key)
        else {
            return Reassembly::Dropped(ReassemblyDrop::MemoryLimit);
        };
        partial.memory += need;
        partial.received += payload.len();
        partial.fragments.insert(offset, payload.to_vec());
        if offset == 0 {
            partial.first = Some(*header);
        }
        if !header.more_frags {
            partial.total = Some(end);
        }
        match (partial.total, partial.first) {
            // No overlaps are stored, so byte count == end means [0, end) is covered.
            (Some(total), Some(first)) if partial.received == total => {
                let mut data = Vec::with_capacity(total);
                for piece in partial.fragments.values() {
                    data.extend_from_slice(piece);
                }
                self.remove(&key);
                self.stats.reassembled += 1;
                let header = Ipv4Repr {
                    more_frags: false,
                    frag_offset: 0,
                    payload_len: total,
                    ..first
                };
                Reassembly::Complete {
                    header,
                    payload: data,
                }
            }
            _ => Reassembly::Held,
        }
    }

    /// Removes the datagrams whose time is up; returns those that were still collecting.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired> {
        let mut out = Vec::new();
        while let Some((_, &key)) = self.order.first_key_value() {
            match self.entries.get(&key) {
                Some(e) if e.deadline > now => break,
                _ => {}
            }
            if let Some(Slot::Collecting(mut p)) = self.remove(&key) {
                self.stats.timeouts += 1;
                let first_fragment = match (p.first, p.fragments.remove(&0)) {
                    (Some(h), Some(data)) => Some((h, data)),
                    _ => None,
                };
                if first_fragment.is_some() {
                    self.stats.timeouts_with_first += 1;
                }
                out.push(Expired {
                    key,
                    first_fragment,
                });
            }
        }
        out
    }

    /// Creates an entry for a new key, evicting the oldest datagram at the datagram limit.
    /// False only when the limit is zero.
    fn admit(&mut self, now: Instant, key: FragmentKey) -> bool {
        if self.config.max_datagrams == 0 {
            return false;
        }
        while self.entries.len() >= self.config.max_datagrams {
            let Some((_, &oldest)) = self.order.first_key_value() else {
                break;
            };
            self.remove(&oldest);
            self.stats.evicted_max_datagrams += 1;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            seq,
            deadline: now + self.config.timeout,
            slot: Slot::Collecting(Partial::default()),
        };
        self.entries.insert(key, entry);
        self.order.insert(seq, key);
        true
    }

    /// Evicts the oldest datagrams other than `keep` until `need` more bytes fit.
    fn make_room(&mut self, keep: FragmentKey, need: usize) -> bool {
        while self.memory + need > self.config.memory_limit {
            let victim = self
                .order
                .values()
                .copied()
                .find(|k| *k != keep && self.charged(k) > 0);
            let Some(victim) = victim else { return false };
            self.remove(&victim);
            self.stats.evicted_memory += 1;
        }
        true
    }

    fn charged(&self, key: &FragmentKey) -> usize {
        match self.entries.get(key) {
            Some(Entry {
                slot: Slot::Collecting(p),
                ..
            }) => p.memory,
            _ => 0,
        }
    }

    /// Drops what was collected under `key` and keeps the key poisoned until its deadline.
    fn poison(&mut self, now: Instant, key: FragmentKey, why: ReassemblyDrop) -> Reassembly {
        if !self.entries.contains_key(&key) && !self.admit(now, key) {
            return Reassembly::Dropped(why);
        }
        let freed = self.charged(&key);
        self.memory -= freed;
        if let Some(e) = self.entries.get_mut(&key) {
            e.slot = Slot::Poisoned;
        }
        Reassembly::Dropped(why)
    }

    fn remove(&mut self, key: &FragmentKey) -> Option<Slot> {
        let e = self.entries.remove(key)?;
        self.order.remove(&e.seq);
        if let Slot::Collecting(p) = &e.slot {
            self.memory -= p.memory;
        }
        Some(e.slot)
    }
}

enum Check {
    Fits,
    Duplicate,
    Overlap,
    Inconsistent,
}

/// Classifies a new fragment [offset, end) against what `p` holds.
fn check(p: &Partial, offset: usize, end: usize, more_frags: bool, payload: &[u8]) -> Check {
    let same_end = if more_frags {
        p.total.is_none_or(|t| t > end)
    } else {
        p.total == Some(end)
    };
    if same_end
        && p.fragments
            .get(&offset)
            .is_some_and(|d| d.as_slice() == payload)
    {
        return Check::Duplicate;
    }
    let stored_end = p.fragments.last_key_value().map_or(0, |(o, d)| o + d.len());
    match p.total {
        // A fragment past the known end, a non-last one reaching it, or a second last one.
        Some(total)
            if end > total || (more_frags && end >= total) || (!more_frags && end != total) =>
        {
            return Check::Inconsistent
        }
        None if !more_frags && stored_end > end => return Check::Inconsistent,
        _ => {}
    }
    let before = p.fragments.range(..=offset).next_back();
    let after = p.fragments.range(offset..).next();
    let overlaps_before = before.is_some_and(|(o, d)| o + d.len() > offset);
    let overlaps_after = after.is_some_and(|(o, _)| *o < end);
    if overlaps_before || overlaps_after {
        Check::Overlap
    } else {
        Check::Fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragment::fragment;
    use crate::wire::Ipv4Packet;

    fn t0() -> Instant {
        Instant::now()
    }

    fn header(ident: u16, offset: u16, more: bool, len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            protocol: IpProtocol::Udp,
            ttl: 64,
            dscp_ecn: 0,
            ident,
            dont_frag: false,
            more_frags: more,
            frag_offset: offset,
            payload_len: len,
        }
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Splits a `len`-byte datagram with id `ident` into (header, payload) fragments.
    fn pieces(ident: u16, len: usize, mtu: usize) -> Vec<(Ipv4Repr, Vec<u8>)> {
        let full = header(ident, 0, false, len);
        fragment(&full, &data(len), mtu)
            .unwrap()
            .iter()
            .map(|b| {
                let p = Ipv4Packet::new_checked(&b[..]).unwrap();
                (Ipv4Repr::parse(&p, true).unwrap(), p.payload().to_vec())
            })
            .collect()
    }

    fn push_all(
        r: &mut Reassembler,
        now: Instant,
        frags: &[(Ipv4Repr, Vec<u8>)],
    ) -> Vec<Reassembly> {
        frags.iter().map(|(h, d)| r.push(now, h, d)).collect()
    }

    fn complete(len: usize, ident: u16) -> Reassembly {
        Reassembly::Complete {
            header: header(ident, 0, false, len),
            payload: data(len),
        }
    }

    #[test]
    fn in_order_fragments_reassemble() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let out = push_all(&mut r, t0(), &pieces(1, 4000, 1500));
        assert_eq!(
            out,
            vec![Reassembly::Held, Reassembly::Held, complete(4000, 1)]
        );
        assert_eq!((r.len(), r.memory(), r.stats().reassembled), (0, 0, 1));
        assert_eq!(r.poll_deadline(), None);
    }

    #[test]
    fn reversed_fragments_reassemble() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let mut f = pieces(1, 4000, 1500);
        f.reverse();
        let out = push_all(&mut r, t0(), &f);
        assert_eq!(
            out,
            vec![Reassembly::Held, Reassembly::Held, complete(4000, 1)]
        );
    }

    #[test]
    fn duplicated_fragment_is_ignored() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let f = pieces(1, 4000, 1500);
        let now = t0();
        assert_eq!(r.push(now, &f[1].0, &f[1].1), Reassembly::Held);
        assert_eq!(
            r.push(now, &f[1].0, &f[1].1),
            Reassembly::Dropped(ReassemblyDrop::Duplicate)
        );
        assert_eq!(r.push(now, &f[2].0, &f[2].1), Reassembly::Held);
        assert_eq!(
            r.push(now, &f[2].0, &f[2].1),
            Reassembly::Dropped(ReassemblyDrop::Duplicate)
        );
        assert_eq!(r.push(now, &f[0].0, &f[0].1), complete(4000, 1));
        assert_eq!(r.stats().duplicates, 2);
    }

    /// Pushes fragment `a` then `b` (offset, MF, length) of one datagram; returns b's outcome.
    fn second_of(a: (u16, bool, usize), b: (u16, bool, usize)) -> Reassembly {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert_eq!(
            r.push(t0(), &header(9, a.0, a.1, a.2), &data(a.2)),
            Reassembly::Held
        );
        r.push(t0(), &header(9, b.0, b.1, b.2), &data(b.2))
    }

    #[test]
    fn overlapping_fragment_drops_whole_datagram() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let now = t0();
        assert_eq!(
            r.push(now, &header(9, 0, true, 16), &data(16)),
            Reassembly::Held
        );
        // Bytes 8..24 overlap 0..16.
        assert_eq!(
            r.push(now, &header(9, 8, false, 16), &data(16)),
            Reassembly::Dropped(ReassemblyDrop::Overlap)
        );
        assert_eq!(r.memory(), 0);
        // The key stays poisoned: even the fragments that would complete it are dropped.
        assert_eq!(
            r.push(now, &header(9, 16, false, 8), &data(8)),
            Reassembly::Dropped(ReassemblyDrop::Poisoned)
        );
        assert_eq!(
            r.push(now, &header(9, 0, true, 16), &data(16)),
            Reassembly::Dropped(ReassemblyDrop::Poisoned)
        );
        assert_eq!((r.stats().overlaps, r.stats().poisoned_drops), (1, 2));
        // ... until it times out; poisoned keys yield no Time Exceeded.
        assert_eq!(r.expire(now + Duration::from_secs(30)), vec![]);
        assert_eq!(
            r.push(now, &header(9, 0, true, 16), &data(16)),
            Reassembly::Held
        );
    }

    #[test]
    fn same_offset_different_bytes_is_an_overlap() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let now = t0();
        r.push(now, &header(9, 0, true, 16), &data(16));
        assert_eq!(
            r.push(now, &header(9, 0, true, 16), &[0xaa; 16]),
            Reassembly::Dropped(ReassemblyDrop::Overlap)
        );
    }

    #[test]
    fn overlap_with_a_later_fragment_is_detected() {
        let out = second_of((16, true, 16), (8, true, 16));
        assert_eq!(out, Reassembly::Dropped(ReassemblyDrop::Overlap));
    }

    #[test]
    fn second_last_fragment_with_another_end_drops_the_datagram() {
        let out = second_of((16, false, 8), (32, false, 8));
        assert_eq!(out, Reassembly::Dropped(ReassemblyDrop::Inconsistent));
    }

    #[test]
    fn last_fragment_before_stored_data_drops_the_datagram() {
        let out = second_of((32, true, 8), (0, false, 8));
        assert_eq!(out, Reassembly::Dropped(ReassemblyDrop::Inconsistent));
    }

    #[test]
    fn fragment_past_the_known_end_drops_the_datagram() {
        let out = second_of((16, false, 8), (24, true, 8));
        assert_eq!(out, Reassembly::Dropped(ReassemblyDrop::Inconsistent));
    }

    #[test]
    fn non_last_fragment_not_multiple_of_8_is_dropped() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        assert_eq!(
            r.push(t0(), &header(9, 0, true, 12), &data(12)),
            Reassembly::Dropped(ReassemblyDrop::BadFragment)
        );
        assert_eq!(
            r.push(t0(), &header(9, 0, true, 0), &[]),
            Reassembly::Dropped(ReassemblyDrop::BadFragment)
        );
        assert_eq!((r.stats().bad_fragments, r.len()), (2, 0));
    }

    #[test]
    fn timeout_yields_time_exceeded_only_with_first_fragment() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let now = t0();
        let f = pieces(1, 4000, 1500);
        let g = pieces(2, 4000, 1500);
        r.push(now, &f[0].0, &f[0].1);
        r.push(now + Duration::from_secs(1), &g[1].0, &g[1].1);
        assert_eq!(r.poll_deadline(), Some(now + Duration::from_secs(30)));
        assert_eq!(r.expire(now + Duration::from_millis(29_999)), vec![]);
        let expired = r.expire(now + Duration::from_secs(30));
        assert_eq!(
            expired,
            vec![Expired {
                key: FragmentKey::of(&f[0].0),
                first_fragment: Some(f[0].clone())
            }]
        );
        assert_eq!(r.poll_deadline(), Some(now + Duration::from_secs(31)));
        let expired = r.expire(now + Duration::from_secs(31));
        assert_eq!(
            expired,
            vec![Expired {
                key: FragmentKey::of(&g[1].0),
                first_fragment: None
            }]
        );
        assert_eq!(
            (
                r.stats().timeouts,
                r.stats().timeouts_with_first,
                r.memory()
            ),
            (2, 1, 0)
        );
    }

    #[test]
    fn datagram_past_65535_is_dropped() {
        let mut r = Reassembler::new(ReassemblyConfig::default());
        let now = t0();
        r.push(now, &header(3, 0, true, 1480), &data(1480));
        // Offset 65512 + 8 bytes + 20 header = 65540.
        assert_eq!(
            r.push(now, &header(3, 65512, false, 8), &data(8)),
            Reassembly::Dropped(ReassemblyDrop::TooLong)
        );
        assert_eq!((r.stats().too_long, r.memory()), (1, 0));
        assert_eq!(
            r.push(now, &header(3, 1480, false, 8), &data(8)),
            Reassembly::Dropped(ReassemblyDrop::Poisoned)
        );
        // Exactly 65535 is fine.
        let out = push_all(&mut r, now, &pieces(4, 65515, 1500));
        assert_eq!(out.last(), Some(&complete(65515, 4)));
    }

    #[test]
    fn memory_cap_evicts_oldest_datagram_first() {
        let per = 1480 + FRAGMENT_OVERHEAD;
        let config = ReassemblyConfig {
            memory_limit: 3 * per,
            ..Default::default()
        };
        let mut r = Reassembler::new(config);
        let now = t0();
        let frags: Vec<_> = (1..=4).map(|id| pieces(id, 4000, 1500)).collect();
        for f in &frags[..3] {
            assert_eq!(r.push(now, &f[0].0, &f[0].1), Reassembly::Held);
        }
        assert_eq!(r.memory(), 3 * per);
        // A fourth datagram evicts the first (oldest), not the others.
        assert_eq!(
            r.push(now, &frags[3][0].0, &frags[3][0].1),
            Reassembly::Held
        );
        assert_eq!(
            (r.len(), r.memory(), r.stats().evicted_memory),
            (3, 3 * per, 1)
        );
        assert_eq!(
            push_all(&mut r, now, &frags[1][1..]).last(),
            Some(&complete(4000, 2))
        );
        // Datagram 1 starts over: its first fragment is gone.
        assert_eq!(
            r.push(now, &frags[0][1].0, &frags[0][1].1),
            Reassembly::Held
        );
    }

    #[test]
    fn datagram_larger_than_memory_cap_is_refused() {
        let config = ReassemblyConfig {
            memory_limit: 2000,
            ..Default::default()
        };
        let mut r = Reassembler::new(config);
        let out = push_all(&mut r, t0(), &pieces(1, 4000, 1500));
        assert_eq!(
            out,
            vec![
                Reassembly::Held,
                Reassembly::Dropped(ReassemblyDrop::MemoryLimit),
                Reassembly::Held
            ]
        );
        assert_eq!(r.stats().evicted_memory, 1);
        assert!(r.memory() <= 2000);
    }

    #[test]
    fn max_datagrams_evicts_oldest() {
        let config = ReassemblyConfig {
            max_datagrams: 2,
            ..Default::default()
        };
        let mut r = Reassembler::new(config);
        let now = t0();
        let frags: Vec<_> = (1..=3).map(|id| pieces(id, 3000, 1500)).collect();
        for f in &frags {
            assert_eq!(r.push(now, &f[0].0, &f[0].1), Reassembly::Held);
        }
        assert_eq!((r.len(), r.stats().evicted_max_datagrams), (2, 1));
        assert_eq!(
            push_all(&mut r, now, &frags[2][1..]).last(),
            Some(&complete(3000, 3))
        );
        assert_eq!(
            push_all(&mut r, now, &frags[1][1..]).last(),
            Some(&complete(3000, 2))
        );
        assert_eq!(
            push_all(&mut r, now, &frags[0][1..]).last(),
            Some(&Reassembly::Held)
        );
    }

    #[test]
    fn config_share_divides_limits() {
        let c = ReassemblyConfig::default().share(4);
        assert_eq!((c.memory_limit, c.max_datagrams), (1024 * 1024, 128));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn fragment_shuffle_reassemble_returns_the_original(
                len in 1usize..20_000,
                mtu in 68usize..3000,
                seed in any::<u64>(),
                dups in proptest::collection::vec(any::<proptest::sample::Index>(), 0..4),
            ) {
                let mut frags = pieces(5, len, mtu);
                // A duplicate of an unfragmented datagram is a new datagram; duplicate
                // only real fragments.
                let fragmented = frags.len() > 1;
                for d in dups.into_iter().filter(|_| fragmented) {
                    let f = d.get(&frags).clone();
                    frags.push(f);
                }
                // Deterministic shuffle from the seed (Fisher-Yates with an LCG).
                let mut x = seed | 1;
                for i in (1..frags.len()).rev() {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    frags.swap(i, (x >> 33) as usize % (i + 1));
                }
                let mut r = Reassembler::new(ReassemblyConfig::default());
                let done: Vec<_> = push_all(&mut r, t0(), &frags)
                    .into_iter()
                    .filter(|o| matches!(o, Reassembly::Complete { .. }))
                    .collect();
                // Duplicates arriving after completion may rebuild the datagram again
                // (same key, a new datagram to the reassembler): never anything else.
                prop_assert!(!done.is_empty());
                for d in &done {
                    prop_assert_eq!(d, &complete(len, 5));
                }
            }
        }
    }
}
