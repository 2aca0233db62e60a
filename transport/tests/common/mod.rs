//! A deterministic virtual link between TCP endpoints: seeded loss, duplication, reordering,
//! corruption, delay and a rate-limited bottleneck with a drop-tail queue. Virtual time only.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netstack_link::prng::SplitMix64;
use netstack_network::wire::DstUnreachable;
use netstack_transport::tcp::{IcmpErrorInfo, IcmpErrorKind};

/// The simulator's generator: the shared SplitMix64 (`netstack_link::prng`), seeded and drawn
/// as the simulator always has been, so every seed replays the scenario it always named.
#[derive(Debug, Clone)]
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed ^ 0x9e37_79b9_7f4a_7c15))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.next_f64()
    }
    /// True with probability `p`; draws nothing when `p` is 0 (unlike `SplitMix64::chance`).
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// One direction's impairments.
#[derive(Debug, Clone, Copy)]
pub struct Impairments {
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a packet gets an extra random delay of up to `jitter` (reordering).
    pub reorder: f64,
    pub jitter: Duration,
    pub corrupt: f64,
    pub delay: Duration,
    /// Bottleneck rate in bits per second.
    pub rate_bps: u64,
    /// Drop-tail queue in front of the bottleneck, in bytes.
    pub queue_bytes: usize,
    /// The path MTU: larger packets are dropped and answered with ICMP fragmentation-needed
    /// (RFC 1191), which itself may be lost.
    pub mtu: usize,
}

impl Impairments {
    pub fn clean(delay: Duration, rate_bps: u64) -> Self {
        Impairments {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            jitter: Duration::ZERO,
            corrupt: 0.0,
            delay,
            rate_bps,
            queue_bytes: 256 * 1024,
            mtu: 1500,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct LinkStats {
    pub sent: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    pub delivered: u64,
    pub too_big: u64,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    order: u64,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    bytes: Vec<u8>,
}

/// One direction of the link.
#[derive(Debug)]
pub struct Pipe {
    pub imp: Impairments,
    free_at: Option<Instant>,
    queue: BinaryHeap<Reverse<InFlight>>,
    order: u64,
    pub stats: LinkStats,
    /// ICMP errors on their way back to the sender.
    icmp: VecDeque<(Instant, IcmpErrorInfo)>,
}

impl Pipe {
    pub fn new(imp: Impairments) -> Self {
        Pipe {
            imp,
            free_at: None,
            queue: BinaryHeap::new(),
            order: 0,
            stats: LinkStats::default(),
            icmp: VecDeque::new(),
        }
    }

    /// Bytes on the wire for a TCP segment: IPv4 header plus the segment.
    fn wire_len(bytes: &[u8]) -> usize {
        bytes.len() + 20
    }

    pub fn send(
        &mut self,
        now: Instant,
        rng: &mut Rng,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        mut bytes: Vec<u8>,
    ) {
        self.stats.sent += 1;
        if rng.chance(self.imp.loss) {
            self.stats.lost += 1;
            return;
        }
        if Self::wire_len(&bytes) > self.imp.mtu {
            // RFC 1191: the router drops it and says how large a packet may be.
            self.stats.too_big += 1;
            let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired {
                next_hop_mtu: self.imp.mtu as u16,
            });
            if let Some(info) = IcmpErrorInfo::new(kind, src, dst, &bytes) {
                if !rng.chance(self.imp.loss) {
                    self.icmp.push_back((now + self.imp.delay, info));
                }
            }
            return;
        }
        let tx = Duration::from_nanos(
            Self::wire_len(&bytes) as u64 * 8 * 1_000_000_000 / self.imp.rate_bps.max(1),
        );
        let start = self.free_at.map_or(now, |f| f.max(now));
        let backlog = start.saturating_duration_since(now);
        let backlog_bytes = backlog.as_secs_f64() * self.imp.rate_bps as f64 / 8.0;
        if backlog_bytes > self.imp.queue_bytes as f64 {
            self.stats.queue_drops += 1;
            return;
        }
        self.free_at = Some(start + tx);
        let mut at = start + tx + self.imp.delay;
        if rng.chance(self.imp.reorder) {
            at += Duration::from_nanos(rng.below(self.imp.jitter.as_nanos() as u64 + 1));
        }
        if rng.chance(self.imp.corrupt) && !bytes.is_empty() {
            let i = rng.below(bytes.len() as u64) as usize;
            bytes[i] ^= 1 << rng.below(8);
            self.stats.corrupted += 1;
        }
        if rng.chance(self.imp.duplicate) {
            self.stats.duplicated += 1;
            let later = at + Duration::from_nanos(rng.below(1_000_000));
            self.push(later, src, dst, bytes.clone());
        }
        self.push(at, src, dst, bytes);
    }

    fn push(&mut self, at: Instant, src: Ipv4Addr, dst: Ipv4Addr, bytes: Vec<u8>) {
        self.order += 1;
        self.queue.push(Reverse(InFlight {
            at,
            order: self.order,
            src,
            dst,
            bytes,
        }));
    }

    pub fn next_arrival(&self) -> Option<Instant> {
        let icmp = self.icmp.front().map(|(t, _)| *t);
        [self.queue.peek().map(|Reverse(p)| p.at), icmp]
            .into_iter()
            .flatten()
            .min()
    }

    /// Pops the next ICMP error due back at the sender by `now`.
    pub fn pop_icmp(&mut self, now: Instant) -> Option<IcmpErrorInfo> {
        if self.icmp.front()?.0 > now {
            return None;
        }
        self.icmp.pop_front().map(|(_, i)| i)
    }

    /// Pops the next packet due by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Ipv4Addr, Ipv4Addr, Vec<u8>)> {
        if self.queue.peek()?.0.at > now {
            return None;
        }
        let Reverse(p) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some((p.src, p.dst, p.bytes))
    }
}

/// The byte at `offset` of stream `stream` of run `seed`: a pattern that catches reordering,
/// duplication and loss of any byte.
pub fn pattern(seed: u64, stream: u64, offset: u64) -> u8 {
    let x = offset
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(seed.wrapping_mul(31))
        .wrapping_add(stream * 7);
    (x ^ (x >> 13) ^ (offset >> 8)) as u8
}
