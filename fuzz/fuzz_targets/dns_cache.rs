//! The resolver's cache: records and negative answers taken from fuzzer-made messages, looked
//! up as time passes. Ops (byte mod 4): 0 store a message's answers (each RRset under its
//! name) and, when it carries an SOA in its authority section, a negative answer for its
//! question (1 byte: NXDOMAIN or NODATA, then a chunk); 1 look up a name the messages used
//! (1 byte); 2 time passes (1 byte); 3 look up (name, type) from the last message's question.
//! Invariants: the cache stays within its capacity; what it returns is for the name asked,
//! with TTLs never above what was stored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::dns::cache::Cached;
use netstack_application::dns::{Cache, Message, Name, RData, Record, RecordType};
use netstack_fuzz::{Clock, Script};

/// The cache's byte bound: small, so evictions happen often.
const CAPACITY: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let mut cache = Cache::new(CAPACITY);
    let mut clock = Clock::new();
    let mut seen: Vec<(Name, RecordType)> = Vec::new();
    let mut max_ttl = 0u32;
    while let Some(op) = s.u8() {
        match op % 4 {
            0 => {
                let nx = s.u8().unwrap_or(0) & 1 == 1;
                let Some(chunk) = s.chunk() else { break };
                let Ok(m) = Message::parse(chunk) else {
                    continue;
                };
                for r in &m.answers {
                    max_ttl = max_ttl.max(r.ttl);
                    let set: Vec<Record> = m
                        .answers
                        .iter()
                        .filter(|o| o.name == r.name && o.rtype() == r.rtype())
                        .cloned()
                        .collect();
                    cache.insert_rrset(clock.now(), &r.name, r.rtype(), set);
                    if seen.len() < 16 {
                        seen.push((r.name.clone(), r.rtype()));
                    }
                }
                if let (Some(q), Some(soa)) = (
                    m.questions.first(),
                    m.authorities
                        .iter()
                        .find(|r| matches!(r.data, RData::Soa(_))),
                ) {
                    max_ttl = max_ttl.max(soa.ttl);
                    cache.insert_negative(clock.now(), &q.name, q.qtype, nx, soa.clone());
                    if seen.len() < 16 {
                        seen.push((q.name.clone(), q.qtype));
                    }
                }
            }
            1 | 3 => {
                let i = usize::from(s.u8().unwrap_or(0));
                let Some((name, rtype)) = seen.get(i % seen.len().max(1)).cloned() else {
                    continue;
                };
                match cache.get(clock.now(), &name, rtype) {
                    Some(Cached::Records(rs)) => {
                        for r in rs {
                            assert_eq!(r.name, name);
                            assert!(r.ttl <= max_ttl);
                        }
                    }
                    Some(Cached::NxDomain(soa)) | Some(Cached::NoData(soa)) => {
                        assert!(soa.ttl <= max_ttl)
                    }
                    None => {}
                }
            }
            _ => clock.advance(s.u8().unwrap_or(0)),
        }
        assert!(cache.bytes() <= CAPACITY, "{} bytes held", cache.bytes());
    }
});
