use super::*;
use std::thread;

const N: usize = 10_000;

fn frame(i: usize) -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[..8].copy_from_slice(&(i as u64).to_be_bytes());
    f
}

fn pair_with(seed: u64, imp: Impairments) -> (MemoryDevice, MemoryDevice) {
    MemoryLink::pair(MemoryLinkConfig {
        seed,
        a_to_b: imp,
        ..Default::default()
    })
}

fn drain(dev: &MemoryDevice) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while dev
        .recv_batch(&mut out, usize::MAX, Duration::ZERO)
        .unwrap()
        > 0
    {}
    out
}

/// Sends N frames a→b and returns what b received.
fn run(seed: u64, imp: Impairments) -> (Vec<Vec<u8>>, MemoryStats) {
    let imp = Impairments {
        queue_limit: 2 * N,
        reorder_hold: Duration::ZERO,
        ..imp
    };
    let (a, b) = pair_with(seed, imp);
    for i in 0..N {
        a.send(&frame(i)).unwrap();
    }
    let got = drain(&b);
    (got, a.stats())
}

/// Asserts that `start.elapsed()` lies in [`min`, `max`); `what` names the event.
fn assert_took(start: Instant, min: Duration, max: Duration, what: &str) {
    let took = start.elapsed();
    assert!(took >= min, "{what} after {took:?}, before {min:?}");
    assert!(took < max, "{what} only after {took:?}, deadline {max:?}");
}

fn assert_rate(count: u64, p: f64) {
    let expected = p * N as f64;
    // Within 15 % (about 5 standard deviations at p = 0.1).
    assert!(
        (count as f64 - expected).abs() <= expected * 0.15,
        "observed {count} of {N}, expected about {expected}"
    );
}

fn lossy() -> Impairments {
    Impairments {
        loss: 0.1,
        duplicate: 0.1,
        reorder: 0.1,
        corrupt: 0.1,
        ..Default::default()
    }
}

#[test]
fn clean_link_delivers_everything_in_order_both_ways() {
    let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
    for i in 0..5 {
        a.send(&frame(i)).unwrap();
        b.send(&frame(100 + i)).unwrap();
    }
    assert_eq!(drain(&b), (0..5).map(frame).collect::<Vec<_>>());
    assert_eq!(drain(&a), (100..105).map(frame).collect::<Vec<_>>());
    assert_eq!(
        a.stats(),
        MemoryStats {
            sent: 5,
            delivered: 5,
            ..Default::default()
        }
    );
    assert_eq!(a.incoming_stats(), b.stats());
}

#[test]
fn same_seed_gives_the_same_delivered_sequence() {
    let (first, s1) = run(7, lossy());
    let (second, s2) = run(7, lossy());
    assert_eq!(first, second);
    assert_eq!(s1, s2);
}

#[test]
fn different_seed_gives_a_different_sequence() {
    assert_ne!(run(7, lossy()).0, run(8, lossy()).0);
}

#[test]
fn loss_rate_matches_probability() {
    let (got, s) = run(
        1,
        Impairments {
            loss: 0.1,
            ..Default::default()
        },
    );
    assert_rate(s.lost, 0.1);
    assert_eq!(got.len() as u64, N as u64 - s.lost);
    assert_eq!(s.delivered, got.len() as u64);
}

#[test]
fn duplicate_rate_matches_probability() {
    let (got, s) = run(
        2,
        Impairments {
            duplicate: 0.1,
            ..Default::default()
        },
    );
    assert_rate(s.duplicated, 0.1);
    assert_eq!(got.len() as u64, N as u64 + s.duplicated);
    // A duplicate follows its original.
    let dups = got.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    assert_eq!(dups, s.duplicated);
}

#[test]
fn reorder_rate_matches_probability_and_swaps_with_the_next_frame() {
    let (got, s) = run(
        3,
        Impairments {
            reorder: 0.1,
            ..Default::default()
        },
    );
    assert_rate(s.reordered, 0.1);
    assert_eq!(got.len(), N);
    let ids: Vec<u64> = got
        .iter()
        .map(|f| u64::from_be_bytes(f[..8].try_into().unwrap()))
        .collect();
    let inversions = ids.windows(2).filter(|w| w[0] > w[1]).count() as u64;
    // Each reordered frame lands right after the frame sent after it, except a last frame
    // held with nothing behind it: the hold releases it, in order.
    assert!(
        inversions == s.reordered || inversions + 1 == s.reordered,
        "{inversions} inversions for {} reordered",
        s.reordered
    );
    for w in ids.windows(2).filter(|w| w[0] > w[1]) {
        assert_eq!(
            w[0],
            w[1] + 1,
            "a held frame comes right after its successor"
        );
    }
}

#[test]
fn corrupt_rate_matches_probability_and_flips_exactly_one_bit() {
    let (got, s) = run(
        4,
        Impairments {
            corrupt: 0.1,
            ..Default::default()
        },
    );
    assert_rate(s.corrupted, 0.1);
    let mut flipped = 0;
    for (i, f) in got.iter().enumerate() {
        let bits: u32 = f
            .iter()
            .zip(frame(i).iter())
            .map(|(x, y)| (x ^ y).count_ones())
            .sum();
        assert!(bits <= 1, "frame {i} has {bits} bits flipped");
        flipped += bits as u64;
    }
    assert_eq!(flipped, s.corrupted);
}

#[test]
fn full_queue_drops_and_counts() {
    let (a, b) = pair_with(
        0,
        Impairments {
            queue_limit: 3,
            ..Default::default()
        },
    );
    for i in 0..5 {
        a.send(&frame(i)).unwrap();
    }
    assert_eq!(drain(&b), (0..3).map(frame).collect::<Vec<_>>());
    assert_eq!(a.stats().queue_drops, 2);
}

#[test]
fn frames_dropped_at_a_full_queue_take_no_link_time() {
    // 1250 bytes at 1 Mbit/s is 10 ms; only the two queued frames may occupy the link.
    let imp = Impairments {
        rate_bps: Some(1_000_000),
        queue_limit: 2,
        ..Default::default()
    };
    let (a, _b) = pair_with(0, imp);
    let start = Instant::now();
    for _ in 0..5 {
        a.send(&[0u8; 1250]).unwrap();
    }
    let end = Instant::now();
    assert_eq!(a.stats().queue_drops, 3);
    let free_at = a.tx.state.lock().link_free_at.unwrap();
    let busy = Duration::from_millis(20);
    assert!(free_at >= start + busy && free_at <= end + busy);
}

#[test]
fn oversized_frame_is_refused() {
    let (a, _b) = MemoryLink::pair(MemoryLinkConfig {
        mtu: 100,
        ..Default::default()
    });
    assert!(a.send(&[0u8; 114]).is_ok());
    assert_eq!(
        a.send(&[0u8; 115]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    let (c, _d) = MemoryLink::pair(MemoryLinkConfig {
        medium: Medium::Ip,
        mtu: 100,
        ..Default::default()
    });
    assert_eq!(c.medium(), Medium::Ip);
    assert_eq!(
        c.send(&[0u8; 101]).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
}

#[test]
fn recv_batch_times_out_promptly_with_zero() {
    let (_a, b) = MemoryLink::pair(MemoryLinkConfig::default());
    let mut out = Vec::new();
    let start = Instant::now();
    assert_eq!(
        b.recv_batch(&mut out, 8, Duration::from_millis(30))
            .unwrap(),
        0
    );
    let (min, max) = (Duration::from_millis(30), Duration::from_millis(500));
    assert_took(start, min, max, "timeout returned");
    assert!(out.is_empty());
}

#[test]
fn recv_batch_respects_max() {
    let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
    for i in 0..5 {
        a.send(&frame(i)).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(b.recv_batch(&mut out, 2, Duration::ZERO).unwrap(), 2);
    assert_eq!(b.recv_batch(&mut out, 0, Duration::ZERO).unwrap(), 0);
    assert_eq!(b.recv_batch(&mut out, 10, Duration::ZERO).unwrap(), 3);
    assert_eq!(out, (0..5).map(frame).collect::<Vec<_>>());
}

#[test]
fn recv_batch_wakes_promptly_when_a_frame_is_sent() {
    let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
    let start = Instant::now();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(30));
        a.send(&frame(1)).unwrap();
        a
    });
    let mut out = Vec::new();
    let n = b.recv_batch(&mut out, 8, Duration::from_secs(10)).unwrap();
    let (min, max) = (Duration::from_millis(30), Duration::from_secs(2));
    assert_took(start, min, max, "woke");
    sender.join().unwrap();
    assert_eq!(n, 1);
}

#[test]
fn delay_is_honoured() {
    let delay = Duration::from_millis(50);
    let (a, b) = pair_with(
        0,
        Impairments {
            delay,
            ..Default::default()
        },
    );
    let start = Instant::now();
    a.send(&frame(1)).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        b.recv_batch(&mut out, 8, Duration::ZERO).unwrap(),
        0,
        "arrived early"
    );
    assert_eq!(
        b.recv_batch(&mut out, 8, Duration::from_secs(5)).unwrap(),
        1
    );
    assert_took(start, delay, Duration::from_secs(2), "delivered");
}

#[test]
fn jitter_delays_within_bound_without_reordering() {
    let imp = Impairments {
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(20),
        ..Default::default()
    };
    let (a, b) = pair_with(9, imp);
    let start = Instant::now();
    for i in 0..50 {
        a.send(&frame(i)).unwrap();
    }
    let mut out = Vec::new();
    let deadline = start + Duration::from_secs(5);
    while out.len() < 50 && Instant::now() < deadline {
        b.recv_batch(&mut out, 64, Duration::from_millis(100))
            .unwrap();
    }
    assert!(start.elapsed() >= Duration::from_millis(5));
    assert_eq!(out, (0..50).map(frame).collect::<Vec<_>>());
}

#[test]
fn rate_limit_is_honoured() {
    // 10 frames of 1250 bytes at 1 Mbit/s: 10 ms each, the last arrives after 100 ms.
    let (a, b) = pair_with(
        0,
        Impairments {
            rate_bps: Some(1_000_000),
            ..Default::default()
        },
    );
    let start = Instant::now();
    for _ in 0..10 {
        a.send(&[0u8; 1250]).unwrap();
    }
    let mut out = Vec::new();
    let mut first = None;
    let deadline = start + Duration::from_secs(5);
    while out.len() < 10 && Instant::now() < deadline {
        b.recv_batch(&mut out, 64, Duration::from_millis(200))
            .unwrap();
        first.get_or_insert_with(|| start.elapsed());
    }
    assert_eq!(out.len(), 10);
    assert!(
        first.unwrap() >= Duration::from_millis(10),
        "first after {first:?}"
    );
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(3));
    assert_took(start, min, max, "all ten delivered");
}

#[test]
fn held_frame_is_released_after_the_hold_when_nothing_follows() {
    let imp = Impairments {
        reorder: 1.0,
        reorder_hold: Duration::from_millis(20),
        ..Default::default()
    };
    let (a, b) = pair_with(0, imp);
    let start = Instant::now();
    a.send(&frame(1)).unwrap();
    let mut out = Vec::new();
    assert_eq!(
        b.recv_batch(&mut out, 8, Duration::from_secs(5)).unwrap(),
        1
    );
    let (min, max) = (Duration::from_millis(20), Duration::from_secs(2));
    assert_took(start, min, max, "released");
}

#[test]
fn stats_add_sums_every_counter() {
    let mut s = MemoryStats {
        sent: 1,
        lost: 2,
        ..Default::default()
    };
    s.add(&MemoryStats {
        sent: 1,
        delivered: 3,
        lost: 1,
        duplicated: 4,
        reordered: 5,
        corrupted: 6,
        queue_drops: 7,
    });
    assert_eq!(
        s,
        MemoryStats {
            sent: 2,
            delivered: 3,
            lost: 3,
            duplicated: 4,
            reordered: 5,
            corrupted: 6,
            queue_drops: 7
        }
    );
}
