//! ICMP echo through the whole pipeline between two stacks over the in-memory link (device,
//! link RX/TX, network workers, the ping API): round trips per second and latency; and the
//! latency summary of any list of round trips (UDP's too). Reported, never asserted.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netstack_link::device::memory::MemoryLinkConfig;

use crate::inprocess::pair_with;

/// Round trips measured for a while, and their latency.
#[derive(Debug, Clone)]
pub struct Pings {
    pub name: String,
    pub round_trips: u64,
    pub per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Sorts `rtts` and builds a row for `elapsed` seconds of work.
pub fn row(name: String, mut rtts: Vec<Duration>, elapsed: Duration) -> Pings {
    rtts.sort_unstable();
    let pick = |q: f64| {
        rtts.get(((rtts.len() as f64 * q) as usize).min(rtts.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Pings {
        name,
        round_trips: rtts.len() as u64,
        per_sec: rtts.len() as f64 / elapsed.as_secs_f64(),
        p50: pick(0.50),
        p99: pick(0.99),
        max: rtts.last().copied().unwrap_or_default(),
    }
}

/// Runs `pingers` threads, each pinging B from A back to back for `duration`.
pub fn memory_icmp(pingers: usize, payload: usize, duration: Duration) -> Pings {
    let (a, _b) = pair_with(MemoryLinkConfig::default(), None).expect("two stacks");
    let dst = Ipv4Addr::new(192, 0, 2, 3);
    // Warm up ARP.
    let warm = a.pinger().unwrap();
    for seq in 0..50 {
        if warm.ping(dst, seq, b"warm", Duration::from_secs(1)).is_ok() {
            break;
        }
    }
    let start = Instant::now();
    let rtts: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..pingers)
            .map(|_| {
                let p = a.pinger().unwrap();
                s.spawn(move || {
                    let data = vec![0x5a; payload];
                    let mut rtts = Vec::new();
                    let mut seq = 0u16;
                    while start.elapsed() < duration {
                        seq = seq.wrapping_add(1);
                        if let Ok(rtt) = p.ping(dst, seq, &data, Duration::from_secs(1)) {
                            rtts.push(rtt);
                        }
                    }
                    rtts
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    row(
        format!("memory link, {pingers} pinger(s), {payload} B"),
        rtts,
        start.elapsed(),
    )
}
