//! The resolver's cache: RRsets by (name, type) for as long as their TTL says, and negative
//! answers (RFC 2308): NXDOMAIN by name, NODATA by (name, type), for the SOA's negative TTL.
//!
//! Bounded by bytes, not entries: each entry is charged [`entry_cost`] (its names, its
//! records' data and a fixed [`ENTRY_OVERHEAD`] for the map), so a few huge RRsets cannot
//! hold more memory than many small ones. The total stays at most the capacity (default
//! [`DEFAULT_CACHE_BYTES`]). To make room, expired entries go first, then the entries
//! closest to expiry (counted in `evictions`); an entry larger than the whole capacity is not
//! stored (`not_cacheable`). Making room scans the entries, linear in their number.

use super::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The default bound on the bytes the cache holds: 1 MiB.
pub const DEFAULT_CACHE_BYTES: usize = 1 << 20;
/// What an entry costs beyond its names and data: the map's slot, the key, the vectors.
pub const ENTRY_OVERHEAD: usize = 96;
/// What a record costs beyond its owner name and data: type, class, TTL, the struct itself.
const RECORD_OVERHEAD: usize = 48;
/// RFC 8767 §4: a week is the longest anything stays.
pub const MAX_POSITIVE_TTL: u32 = 7 * 86_400;
/// RFC 2308 §5: negative answers are kept for at most a few hours.
pub const MAX_NEGATIVE_TTL: u32 = 3 * 3_600;

super::counters! {
    /// Cache activity, one counter per outcome.
    pub struct CacheStats {
        /// Lookups answered with records.
        hits,
        /// Lookups answered with a cached NXDOMAIN or NODATA.
        negative_hits,
        misses,
        inserts,
        /// Entries found expired and removed.
        expired,
        /// Live entries removed to make room: the cache was full.
        evictions,
        /// Not stored: a TTL of zero, a negative answer without an SOA (RFC 2308 §5), or an
        /// entry larger than the whole cache.
        not_cacheable,
    }
}

/// What the cache knows about (name, type), TTLs counted down to `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    Records(Vec<Record>),
    /// The name does not exist, whatever the type. The SOA that said so.
    NxDomain(Record),
    /// The name exists without records of this type.
    NoData(Record),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    RRset(Name, RecordType),
    /// RFC 2308 §5: NXDOMAIN is cached against the name alone.
    NxDomain(Name),
}

#[derive(Debug, Clone)]
struct Entry {
    value: Cached,
    stored: Instant,
    expires: Instant,
    cost: usize,
}

/// The bytes an RDATA holds, about as stored.
fn rdata_cost(d: &RData) -> usize {
    match d {
        RData::A(_) => 4,
        RData::Aaaa(_) => 16,
        RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => n.wire_len(),
        RData::Mx { exchange, .. } => 2 + exchange.wire_len(),
        RData::Txt(strings) => strings.iter().map(|s| s.len() + 24).sum(),
        RData::Soa(s) => s.mname.wire_len() + s.rname.wire_len() + 20,
        RData::Srv { target, .. } => 6 + target.wire_len(),
        RData::Unknown { data, .. } => data.len(),
    }
}

fn record_cost(r: &Record) -> usize {
    RECORD_OVERHEAD + r.name.wire_len() + rdata_cost(&r.data)
}

/// What the cache charges for an entry at `name` holding `value`.
pub fn entry_cost(name: &Name, value: &Cached) -> usize {
    let data: usize = match value {
        Cached::Records(rs) => rs.iter().map(record_cost).sum(),
        Cached::NxDomain(soa) | Cached::NoData(soa) => record_cost(soa),
    };
    ENTRY_OVERHEAD + name.wire_len() + data
}

/// The resolver's cache (see the module documentation).
#[derive(Debug, Clone)]
pub struct Cache {
    entries: HashMap<Key, Entry>,
    /// The bound on `bytes`.
    capacity: usize,
    /// What the entries cost now, by [`entry_cost`].
    bytes: usize,
    stats: CacheStats,
}

impl Cache {
    /// A cache holding at most `capacity_bytes` bytes of entries.
    pub fn new(capacity_bytes: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            capacity: capacity_bytes,
            bytes: 0,
            stats: CacheStats::default(),
        }
    }

    /// What the entries cost now, at most the capacity.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Stores an RRset; its TTL is the smallest of its records' (RFC 2181 §5.2 wants them
    /// equal; the smallest is the safe reading).
    pub fn insert_rrset(
        &mut self,
        now: Instant,
        name: &Name,
        rtype: RecordType,
        records: Vec<Record>,
    ) {
        let ttl = records
            .iter()
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0)
            .min(MAX_POSITIVE_TTL);
        self.store(
            now,
            Key::RRset(name.clone(), rtype),
            Cached::Records(records),
            ttl,
        );
    }

    /// Stores a negative answer for `name` (NXDOMAIN, any type) or (`name`, `rtype`) (NODATA).
    /// RFC 2308 §5: the TTL is the smaller of the SOA's TTL and MINIMUM.
    pub fn insert_negative(
        &mut self,
        now: Instant,
        name: &Name,
        rtype: RecordType,
        nxdomain: bool,
        soa: Record,
    ) {
        let RData::Soa(s) = &soa.data else {
            self.stats.not_cacheable += 1;
            return;
        };
        let ttl = soa.ttl.min(s.minimum).min(MAX_NEGATIVE_TTL);
        let (key, value) = if nxdomain {
            (Key::NxDomain(name.clone()), Cached::NxDomain(soa))
        } else {
            (Key::RRset(name.clone(), rtype), Cached::NoData(soa))
        };
        self.store(now, key, value, ttl);
    }

    fn store(&mut self, now: Instant, key: Key, value: Cached, ttl: u32) {
        let name = match &key {
            Key::RRset(n, _) | Key::NxDomain(n) => n,
        };
        let cost = entry_cost(name, &value);
        if ttl == 0 || cost > self.capacity {
            self.stats.not_cacheable += 1;
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.cost;
        }
        if self.bytes + cost > self.capacity {
            self.make_room(now, cost);
        }
        let expires = now + Duration::from_secs(u64::from(ttl));
        self.bytes += cost;
        self.entries.insert(
            key,
            Entry {
                value,
                stored: now,
                expires,
                cost,
            },
        );
        self.stats.inserts += 1;
    }

    /// Frees entries until `needed` more bytes fit: the expired ones, then the soonest to
    /// expire.
    fn make_room(&mut self, now: Instant, needed: usize) {
        let before = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let live = e.expires > now;
            if !live {
                freed += e.cost;
            }
            live
        });
        self.bytes -= freed;
        self.stats.expired += (before - self.entries.len()) as u64;
        while self.bytes + needed > self.capacity {
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(e) = self.entries.remove(&soonest) {
                self.bytes -= e.cost;
            }
            self.stats.evictions += 1;
        }
    }

    /// What is known about (`name`, `rtype`) at `now`, with TTLs reduced by the time spent in
    /// the cache.
    pub fn get(&mut self, now: Instant, name: &Name, rtype: RecordType) -> Option<Cached> {
        let found = self
            .live(now, &Key::NxDomain(name.clone()))
            .or_else(|| self.live(now, &Key::RRset(name.clone(), rtype)));
        match &found {
            Some(Cached::Records(_)) => self.stats.hits += 1,
            Some(_) => self.stats.negative_hits += 1,
            None => self.stats.misses += 1,
        }
        found
    }

    fn live(&mut self, now: Instant, key: &Key) -> Option<Cached> {
        let entry = self.entries.get(key)?;
        if entry.expires <= now {
            let cost = entry.cost;
            self.entries.remove(key);
            self.bytes -= cost;
            self.stats.expired += 1;
            return None;
        }
        let elapsed = now.saturating_duration_since(entry.stored).as_secs();
        let age = u32::try_from(elapsed).unwrap_or(u32::MAX);
        let age_record = |r: &Record| Record {
            ttl: r.ttl.saturating_sub(age),
            ..r.clone()
        };
        Some(match &entry.value {
            Cached::Records(rs) => Cached::Records(rs.iter().map(age_record).collect()),
            Cached::NxDomain(soa) => Cached::NxDomain(age_record(soa)),
            Cached::NoData(soa) => Cached::NoData(age_record(soa)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::testutil::name;
    use std::net::Ipv4Addr;

    fn a(owner: &str, ttl: u32) -> Record {
        Record::new(name(owner), ttl, RData::A(Ipv4Addr::new(192, 0, 2, 1)))
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        crate::dns::testutil::soa("test", ttl, minimum)
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn rrset_lives_for_its_ttl_and_counts_down() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_rrset(
            t0,
            &name("a.test"),
            RecordType::A,
            vec![a("a.test", 100), a("a.test", 60)],
        );
        assert_eq!(
            c.get(t0 + secs(20), &name("A.TEST"), RecordType::A),
            Some(Cached::Records(vec![a("a.test", 80), a("a.test", 40)]))
        );
        assert_eq!(
            c.get(t0 + secs(59), &name("a.test"), RecordType::A)
                .map(|_| ()),
            Some(())
        );
        assert_eq!(c.get(t0 + secs(60), &name("a.test"), RecordType::A), None);
        assert!(c.is_empty());
        assert_eq!(
            (c.stats().hits, c.stats().misses, c.stats().expired),
            (2, 1, 1)
        );
    }

    #[test]
    fn other_types_at_the_same_name_miss() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_rrset(t0, &name("a.test"), RecordType::A, vec![a("a.test", 100)]);
        assert_eq!(c.get(t0, &name("a.test"), RecordType::AAAA), None);
    }

    #[test]
    fn nxdomain_covers_every_type_for_the_negative_ttl() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_negative(t0, &name("gone.test"), RecordType::A, true, soa(300, 30));
        assert_eq!(
            c.get(t0 + secs(10), &name("gone.test"), RecordType::MX),
            Some(Cached::NxDomain(soa(290, 30)))
        );
        assert_eq!(
            c.get(t0 + secs(30), &name("gone.test"), RecordType::A),
            None
        );
        assert_eq!(c.stats().negative_hits, 1);
    }

    #[test]
    fn nodata_covers_only_its_type() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_negative(t0, &name("a.test"), RecordType::AAAA, false, soa(20, 3600));
        assert!(matches!(
            c.get(t0, &name("a.test"), RecordType::AAAA),
            Some(Cached::NoData(_))
        ));
        assert_eq!(c.get(t0, &name("a.test"), RecordType::A), None);
        assert_eq!(
            c.get(t0 + secs(20), &name("a.test"), RecordType::AAAA),
            None
        );
    }

    #[test]
    fn zero_ttl_and_non_soa_negatives_are_not_cached() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_rrset(t0, &name("a.test"), RecordType::A, vec![a("a.test", 0)]);
        c.insert_negative(t0, &name("b.test"), RecordType::A, true, a("b.test", 60));
        c.insert_negative(t0, &name("c.test"), RecordType::A, true, soa(60, 0));
        assert!(c.is_empty());
        assert_eq!(c.stats().not_cacheable, 3);
    }

    #[test]
    fn ttls_are_capped() {
        let t0 = Instant::now();
        let mut c = Cache::new(4096);
        c.insert_rrset(
            t0,
            &name("a.test"),
            RecordType::A,
            vec![a("a.test", u32::MAX)],
        );
        c.insert_negative(
            t0,
            &name("b.test"),
            RecordType::A,
            true,
            soa(u32::MAX, u32::MAX),
        );
        let week = secs(u64::from(MAX_POSITIVE_TTL));
        assert!(c
            .get(t0 + week - secs(1), &name("a.test"), RecordType::A)
            .is_some());
        assert!(c.get(t0 + week, &name("a.test"), RecordType::A).is_none());
        assert!(c
            .get(
                t0 + secs(u64::from(MAX_NEGATIVE_TTL)),
                &name("b.test"),
                RecordType::A
            )
            .is_none());
    }

    /// What one A record at a name of `n` characters plus ".test" costs.
    fn one_a_cost(owner: &str) -> usize {
        entry_cost(&name(owner), &Cached::Records(vec![a(owner, 1)]))
    }

    #[test]
    fn full_cache_drops_expired_then_the_soonest_to_expire() {
        let t0 = Instant::now();
        // Room for two entries of equal size, not three.
        let mut c = Cache::new(2 * one_a_cost("aaa.test") + 10);
        let put = |c: &mut Cache, at: Instant, owner: &str, ttl: u32| {
            c.insert_rrset(at, &name(owner), RecordType::A, vec![a(owner, ttl)])
        };
        put(&mut c, t0, "sho.test", 5);
        put(&mut c, t0, "lon.test", 500);
        // Full, nothing expired: "sho" expires first and goes.
        put(&mut c, t0, "mid.test", 50);
        assert_eq!(c.len(), 2);
        assert_eq!(c.stats().evictions, 1);
        assert!(c.bytes() <= c.capacity());
        assert!(c.get(t0, &name("sho.test"), RecordType::A).is_none());
        // At t0+60 "mid" has expired: it makes the room, nothing live is evicted.
        put(&mut c, t0 + secs(60), "new.test", 50);
        assert_eq!((c.len(), c.stats().evictions, c.stats().expired), (2, 1, 1));
        assert!(c
            .get(t0 + secs(60), &name("lon.test"), RecordType::A)
            .is_some());
    }

    #[test]
    fn the_bound_is_bytes_one_large_rrset_evicts_many_small_entries() {
        let t0 = Instant::now();
        let small = one_a_cost("s00.test");
        let mut c = Cache::new(10 * small);
        for i in 0..10 {
            let owner = format!("s{i:02}.test");
            c.insert_rrset(t0, &name(&owner), RecordType::A, vec![a(&owner, 100)]);
        }
        assert_eq!((c.len(), c.stats().evictions), (10, 0));
        // One TXT RRset of about four small entries' worth pushes out at least four.
        let big = Record::new(
            name("big.test"),
            200,
            RData::Txt(vec![vec![b'x'; 3 * small]]),
        );
        c.insert_rrset(t0, &name("big.test"), RecordType::TXT, vec![big]);
        assert!(c.stats().evictions >= 4, "{:?}", c.stats());
        assert!(c.bytes() <= c.capacity());
        assert!(c.get(t0, &name("big.test"), RecordType::TXT).is_some());
    }

    #[test]
    fn an_entry_larger_than_the_whole_cache_is_not_stored() {
        let t0 = Instant::now();
        let mut c = Cache::new(200);
        let big = Record::new(name("big.test"), 60, RData::Txt(vec![vec![b'x'; 255]]));
        c.insert_rrset(t0, &name("big.test"), RecordType::TXT, vec![big]);
        assert!(c.is_empty());
        assert_eq!((c.bytes(), c.stats().not_cacheable), (0, 1));
    }

    #[test]
    fn replacing_an_entry_in_a_full_cache_evicts_nothing() {
        let t0 = Instant::now();
        let mut c = Cache::new(one_a_cost("a.test"));
        c.insert_rrset(t0, &name("a.test"), RecordType::A, vec![a("a.test", 5)]);
        c.insert_rrset(t0, &name("a.test"), RecordType::A, vec![a("a.test", 9)]);
        assert_eq!((c.len(), c.stats().evictions), (1, 0));
        assert_eq!(c.bytes(), one_a_cost("a.test"));
    }
}
