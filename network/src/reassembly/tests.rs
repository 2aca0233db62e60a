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

fn push_all(r: &mut Reassembler, now: Instant, frags: &[(Ipv4Repr, Vec<u8>)]) -> Vec<Reassembly> {
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

#[test]
fn memory_charged_equals_what_is_held_through_eviction_poisoning_and_expiry() {
    let per = 1480 + FRAGMENT_OVERHEAD;
    let mut r = Reassembler::new(ReassemblyConfig {
        memory_limit: 2 * per,
        ..ReassemblyConfig::default()
    });
    let now = t0();
    for ident in 1..=3 {
        let first = &pieces(ident, 4000, 1500)[0];
        r.push(now, &first.0, &first.1);
        assert_eq!(r.memory(), r.held());
        // The third first fragment evicts the oldest datagram to fit the cap of two.
        assert_eq!(r.held(), usize::from(ident.min(2)) * per);
    }
    // An overlap poisons datagram 3: its bytes are no longer held nor charged.
    r.push(now, &header(3, 8, true, 16), &data(16));
    assert_eq!(r.memory(), r.held());
    assert_eq!(r.memory(), per);
    r.expire(now + Duration::from_secs(31));
    assert_eq!((r.memory(), r.held()), (0, 0));
}
