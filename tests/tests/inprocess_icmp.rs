//! In-process tier: two stacks joined by the in-memory link ping each other.
//! No root needed; impairments are seeded, so a failure names the seed that reproduces it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netstack_link::device::memory::Impairments;
use netstack_runtime::Stack;
use netstack_tests::inprocess::{impaired_pair, A, B};

fn pair(impairments: Impairments, seed: u64) -> (Stack, Stack) {
    impaired_pair(impairments, seed)
}

fn payload(len: usize, seq: u16) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u16).wrapping_mul(31).wrapping_add(seq) as u8)
        .collect()
}

/// Pings until `count` distinct sequence numbers have been answered, retrying each up to
/// `tries` times; returns the round-trip times.
fn ping_all(
    from: &Stack,
    to: Ipv4Addr,
    len: usize,
    count: u16,
    tries: usize,
    per_try: Duration,
) -> Vec<Duration> {
    let p = from.pinger().unwrap();
    let mut rtts = Vec::new();
    let mut seq = 0u16;
    for i in 0..count {
        let mut last = None;
        for _ in 0..tries {
            seq = seq.wrapping_add(1);
            let data = payload(len, seq);
            match p.ping(to, seq, &data, per_try) {
                Ok(rtt) => {
                    last = None;
                    rtts.push(rtt);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            panic!("echo {i} of {len} bytes to {to} never answered after {tries} tries: {e}");
        }
    }
    rtts
}

#[test]
fn two_stacks_ping_each_other_at_56_1472_and_8000_bytes() {
    let (a, b) = pair(Impairments::default(), 1);
    for len in [56, 1472, 8000] {
        let rtts = ping_all(&a, B, len, 5, 3, Duration::from_secs(2));
        assert_eq!(rtts.len(), 5);
        let rtts = ping_all(&b, A, len, 5, 3, Duration::from_secs(2));
        assert_eq!(rtts.len(), 5);
    }
    let (sa, sb) = (a.stats(), b.stats());
    // 8000 bytes need fragments both ways: both sides reassembled something.
    assert!(
        sa.ipv4.reassembly.reassembled > 0 && sb.ipv4.reassembly.reassembled > 0,
        "{sa:?}\n{sb:?}"
    );
    assert!(sb.ipv4.icmp_tx_echo_replies >= 15, "{sb:?}");
    a.shutdown(Duration::from_secs(2)).unwrap();
    b.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn ping_survives_ten_percent_loss_by_retrying() {
    for seed in [7, 8] {
        let loss = Impairments {
            loss: 0.10,
            ..Impairments::default()
        };
        let (a, b) = pair(loss, seed);
        for len in [56, 1472, 8000] {
            // 8000 bytes is six fragments each way: a try succeeds ~28% of the time at 10% loss.
            let rtts = ping_all(&a, B, len, 3, 60, Duration::from_millis(150));
            assert_eq!(rtts.len(), 3, "seed {seed}");
        }
        // The loss really happened: 9 echoes succeeded, and A (which sends nothing else over
        // IPv4) had to send more requests than that.
        let sent = a.stats().ipv4.tx_datagrams;
        assert!(
            sent > 9,
            "seed {seed}: {sent} requests for 9 answers: nothing was lost"
        );
        drop((a, b));
    }
}

#[test]
fn an_unanswered_ping_times_out_with_timed_out() {
    let (a, _b) = pair(Impairments::default(), 3);
    let p = a.pinger().unwrap();
    let start = Instant::now();
    // 192.0.2.9 is on-link but nobody answers ARP for it.
    let err = p
        .ping(
            Ipv4Addr::new(192, 0, 2, 9),
            1,
            b"x",
            Duration::from_millis(300),
        )
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn shutdown_joins_every_thread_promptly() {
    let (a, b) = pair(Impairments::default(), 4);
    ping_all(&a, B, 56, 1, 3, Duration::from_secs(2));
    let start = Instant::now();
    a.shutdown(Duration::from_secs(2)).unwrap();
    b.shutdown(Duration::from_secs(2)).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_neighbour_that_never_answers_arp_makes_ping_fail_with_host_unreachable() {
    let (a, _b) = pair(Impairments::default(), 5);
    let p = a.pinger().unwrap();
    let start = Instant::now();
    // Three ARP requests a second apart, then one more second: about 3 s.
    let err = p
        .ping(
            Ipv4Addr::new(192, 0, 2, 9),
            1,
            b"x",
            Duration::from_secs(10),
        )
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::HostUnreachable, "{err}");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(
        a.stats().link.arp_requests_out,
        3 + 1,
        "three tries plus the gratuitous ARP"
    );
}
