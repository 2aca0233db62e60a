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

    /// Bytes of the fragments actually stored, each counted as `memory_limit` counts it
    /// (payload + `FRAGMENT_OVERHEAD`), found by walking them: `memory()` must equal it.
    pub fn held(&self) -> usize {
        self.entries
            .values()
            .map(|e| match &e.slot {
                Slot::Collecting(p) => p
                    .fragments
                    .values()
                    .map(|d| d.len() + FRAGMENT_OVERHEAD)
                    .sum(),
                Slot::Poisoned => 0,
            })
            .sum()
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
mod tests;
