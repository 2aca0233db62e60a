//! ICMP error policy: when an error may be sent at all (RFC 1122 §3.2.2, RFC 1812
//! §4.3.2.7) and how often (RFC 1812 §4.3.2.8).
//!
//! The rate limit is two token buckets, both of which must have a token:
//! - one per destination /24 (the source of the datagram the error is about), kept in a table
//!   of at most [`IcmpRateConfig::destinations`] entries (the least recently used is
//!   forgotten). A flood of probes that draws errors to one prefix, e.g. spoofed from a DNS
//!   server's address to find a resolver's open port (SAD DNS, CCS 2020), drains only that
//!   prefix's bucket and never the global one below, so a probe from elsewhere cannot tell
//!   how many errors those probes drew.
//! - one global bucket bounding the total. Its capacity and refill rate are re-drawn every
//!   second as `limit + random(0..=limit/2)` (as Linux randomised its global ICMP limit after
//!   SAD DNS), from a seeded generator, so what remains of it after other flows' errors is
//!   not a fixed number an observer can subtract from.

use netstack_link::prng::SplitMix64;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::icmpv4::msg_type;
use crate::wire::{IpProtocol, Ipv4Cidr, Ipv4Repr};

/// How many ICMP errors may be sent: a global token bucket of `burst` tokens refilled at
/// `per_second` (RFC 1812 §4.3.2.8 suggests a token bucket; Linux's defaults are the same),
/// both raised by a random 0 to 50 % re-drawn every second, and one bucket per destination
/// /24 of `per_destination_burst` tokens refilled at `per_destination_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRateConfig {
    pub burst: u32,
    pub per_second: u32,
    pub per_destination_burst: u32,
    pub per_destination_per_second: u32,
    /// How many destination /24s have a bucket at once (the bound on the table's memory).
    pub destinations: usize,
}

impl Default for IcmpRateConfig {
    /// Global 50 burst, 1000/s; per /24 10 burst, 100/s (one prefix gets at most a fifth of
    /// the global burst); 256 prefixes tracked.
    fn default() -> Self {
        IcmpRateConfig {
            burst: 50,
            per_second: 1000,
            per_destination_burst: 10,
            per_destination_per_second: 100,
            destinations: 256,
        }
    }
}

impl IcmpRateConfig {
    /// One worker's share, so `workers` limiters together keep the configured totals
    /// (each keeps at least one token of burst and one per second). Every worker keeps a
    /// table of `destinations` prefixes.
    pub fn share(&self, workers: usize) -> Self {
        let n = workers.max(1) as u32;
        IcmpRateConfig {
            burst: (self.burst / n).max(1),
            per_second: (self.per_second / n).max(1),
            per_destination_burst: (self.per_destination_burst / n).max(1),
            per_destination_per_second: (self.per_destination_per_second / n).max(1),
            destinations: self.destinations,
        }
    }
}

/// Tokens are kept in millionths so refills of a few microseconds are not lost.
const SCALE: u64 = 1_000_000;
/// How often the global budget's jitter is re-drawn.
const JITTER_PERIOD: Duration = Duration::from_secs(1);

/// A token bucket. Sans-IO: the caller passes `now`.
#[derive(Debug, Clone)]
struct Bucket {
    micro_tokens: u64,
    last: Option<Instant>,
}

impl Bucket {
    fn full(burst: u32) -> Self {
        Bucket {
            micro_tokens: u64::from(burst) * SCALE,
            last: None,
        }
    }

    /// Adds what `per_second` earned since the last call, up to `burst`.
    fn refill(&mut self, now: Instant, burst: u32, per_second: u32) {
        let cap = u64::from(burst) * SCALE;
        if let Some(last) = self.last {
            let micros = now.saturating_duration_since(last).as_micros();
            // tokens/s × µs = µtokens.
            let add = micros.saturating_mul(u128::from(per_second));
            let add = u64::try_from(add).unwrap_or(u64::MAX);
            self.micro_tokens = self.micro_tokens.saturating_add(add);
        }
        self.micro_tokens = self.micro_tokens.min(cap);
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
    }

    fn has_token(&self) -> bool {
        self.micro_tokens >= SCALE
    }

    fn take(&mut self) {
        self.micro_tokens -= SCALE;
    }
}

/// `limit` plus a uniform draw from `0..=limit / 2`. The jitter need not be cryptographic,
/// only unknown to the peer: the runtime seeds the generator from the OS's random keys.
fn jitter(rng: &mut SplitMix64, limit: u32) -> u32 {
    let extra = rng.below(u64::from(limit / 2) + 1);
    limit.saturating_add(extra as u32)
}

#[derive(Debug, Clone)]
struct Destination {
    prefix: u32,
    bucket: Bucket,
    last_used: Instant,
}

/// The ICMP error rate limit (see the module documentation). Sans-IO: the caller passes
/// `now`; the jitter comes from the seed given to [`RateLimiter::new`].
#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: IcmpRateConfig,
    rng: SplitMix64,
    global: Bucket,
    /// This second's global capacity and refill rate, and when the second began.
    burst_now: u32,
    per_second_now: u32,
    period_start: Option<Instant>,
    /// At most `config.destinations` entries.
    destinations: Vec<Destination>,
}

impl RateLimiter {
    /// Starts full: a burst is allowed at once. `seed` drives the jitter (equal seeds give
    /// equal budgets, so tests are deterministic).
    pub fn new(config: IcmpRateConfig, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let burst_now = jitter(&mut rng, config.burst);
        let per_second_now = jitter(&mut rng, config.per_second);
        RateLimiter {
            config,
            rng,
            global: Bucket::full(burst_now),
            burst_now,
            per_second_now,
            period_start: None,
            destinations: Vec::new(),
        }
    }

    /// This second's global capacity (between `burst` and `1.5 × burst`).
    pub fn current_burst(&self) -> u32 {
        self.burst_now
    }

    /// How many destination prefixes have a bucket now (at most `config.destinations`).
    pub fn tracked_destinations(&self) -> usize {
        self.destinations.len()
    }

    /// Takes a token for an error sent to `dst` if both its prefix's bucket and the global
    /// one have one; otherwise neither is charged and the error is
    /// [`Suppressed::RateLimited`] (global) or [`Suppressed::DestinationRateLimited`].
    pub fn allow(&mut self, now: Instant, dst: Ipv4Addr) -> Result<(), Suppressed> {
        self.redraw_jitter(now);
        self.global.refill(now, self.burst_now, self.per_second_now);
        if !self.global.has_token() {
            return Err(Suppressed::RateLimited);
        }
        let (burst, rate) = (
            self.config.per_destination_burst,
            self.config.per_destination_per_second,
        );
        let Some(d) = self.destination(now, dst) else {
            // A table of size zero: only the global bucket limits.
            self.global.take();
            return Ok(());
        };
        d.bucket.refill(now, burst, rate);
        if !d.bucket.has_token() {
            return Err(Suppressed::DestinationRateLimited);
        }
        d.bucket.take();
        self.global.take();
        Ok(())
    }

    /// A new second draws a new global capacity and rate (the bucket keeps what it holds,
    /// up to the new capacity).
    fn redraw_jitter(&mut self, now: Instant) {
        match self.period_start {
            None => self.period_start = Some(now),
            Some(start) if now.saturating_duration_since(start) >= JITTER_PERIOD => {
                // Bring the bucket up to `now` at the old second's rate first.
                self.global.refill(now, self.burst_now, self.per_second_now);
                self.burst_now = jitter(&mut self.rng, self.config.burst);
                self.per_second_now = jitter(&mut self.rng, self.config.per_second);
                self.period_start = Some(now);
            }
            Some(_) => {}
        }
    }

    /// The bucket of `dst`'s /24, created full (forgetting the least recently used prefix
    /// when the table is full).
    fn destination(&mut self, now: Instant, dst: Ipv4Addr) -> Option<&mut Destination> {
        let prefix = u32::from(dst) & 0xffff_ff00;
        let i = match self.destinations.iter().position(|d| d.prefix == prefix) {
            Some(i) => i,
            None => {
                let fresh = Destination {
                    prefix,
                    bucket: Bucket::full(self.config.per_destination_burst),
                    last_used: now,
                };
                if self.destinations.len() < self.config.destinations {
                    self.destinations.push(fresh);
                    self.destinations.len() - 1
                } else {
                    let (i, _) = self
                        .destinations
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, d)| d.last_used)?;
                    self.destinations[i] = fresh;
                    i
                }
            }
        };
        let d = &mut self.destinations[i];
        if now > d.last_used {
            d.last_used = now;
        }
        Some(d)
    }
}

/// Why no ICMP error may be sent about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suppressed {
    /// RFC 1122 §3.2.2: never about an ICMP error message (or an ICMP message whose type
    /// cannot be read).
    AboutIcmpError,
    /// RFC 1122 §3.2.2: never about a datagram sent to a broadcast or multicast address.
    BroadcastOrMulticast,
    /// RFC 1122 §3.2.2: never about a datagram whose source is not one host (zero,
    /// loopback, broadcast, multicast, class E).
    NonUnicastSource,
    /// RFC 1122 §3.2.2: never about a fragment other than the first.
    NonFirstFragment,
    /// The global token bucket is empty (RFC 1812 §4.3.2.8).
    RateLimited,
    /// The bucket of the error's destination /24 is empty.
    DestinationRateLimited,
}

/// True when `addr` is a broadcast for us: limited (255.255.255.255) or our subnet's.
pub fn is_broadcast(addr: Ipv4Addr, local: &Ipv4Cidr) -> bool {
    addr.is_broadcast() || local.broadcast() == Some(addr)
}

/// RFC 1122 §3.2.2 (and §3.2.1.3 for the source classes): may we send an ICMP error about
/// a datagram with this `header`, whose payload (or its first fragment's) starts with
/// `payload`? Link-layer broadcasts are the link layer's to filter.
pub fn error_allowed(
    header: &Ipv4Repr,
    payload: &[u8],
    local: &Ipv4Cidr,
) -> Result<(), Suppressed> {
    if header.frag_offset != 0 {
        return Err(Suppressed::NonFirstFragment);
    }
    if is_broadcast(header.dst, local) || header.dst.is_multicast() {
        return Err(Suppressed::BroadcastOrMulticast);
    }
    let s = header.src;
    if s.is_unspecified()
        || s.is_loopback()
        || s.is_multicast()
        || is_broadcast(s, local)
        || s.octets()[0] >= 240
    {
        return Err(Suppressed::NonUnicastSource);
    }
    if header.protocol == IpProtocol::Icmp
        && !payload.first().is_some_and(|t| msg_type::is_query(*t))
    {
        return Err(Suppressed::AboutIcmpError);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn local() -> Ipv4Cidr {
        "192.0.2.2/24".parse().unwrap()
    }

    fn udp_from(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::Udp,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            payload_len: 8,
        }
    }

    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    #[test]
    fn error_about_ordinary_unicast_is_allowed() {
        assert_eq!(
            error_allowed(&udp_from(PEER, US), &[0; 8], &local()),
            Ok(())
        );
        let first = Ipv4Repr {
            more_frags: true,
            ..udp_from(PEER, US)
        };
        assert_eq!(error_allowed(&first, &[0; 8], &local()), Ok(()));
    }

    #[test]
    fn no_error_about_an_icmp_error() {
        let h = Ipv4Repr {
            protocol: IpProtocol::Icmp,
            ..udp_from(PEER, US)
        };
        for t in [3u8, 4, 5, 11, 12] {
            assert_eq!(
                error_allowed(&h, &[t, 0], &local()),
                Err(Suppressed::AboutIcmpError)
            );
        }
        assert_eq!(
            error_allowed(&h, &[], &local()),
            Err(Suppressed::AboutIcmpError)
        );
        assert_eq!(error_allowed(&h, &[8, 0], &local()), Ok(()));
    }

    #[test]
    fn no_error_about_broadcast_or_multicast_destination() {
        for dst in [
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(192, 0, 2, 255),
            Ipv4Addr::new(224, 0, 0, 1),
        ] {
            assert_eq!(
                error_allowed(&udp_from(PEER, dst), &[0; 8], &local()),
                Err(Suppressed::BroadcastOrMulticast)
            );
        }
    }

    #[test]
    fn no_error_about_non_unicast_source() {
        for src in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(192, 0, 2, 255),
            Ipv4Addr::new(239, 1, 2, 3),
            Ipv4Addr::new(240, 0, 0, 1),
        ] {
            assert_eq!(
                error_allowed(&udp_from(src, US), &[0; 8], &local()),
                Err(Suppressed::NonUnicastSource),
                "{src}"
            );
        }
    }

    #[test]
    fn no_error_about_non_first_fragment() {
        let h = Ipv4Repr {
            frag_offset: 8,
            ..udp_from(PEER, US)
        };
        assert_eq!(
            error_allowed(&h, &[0; 8], &local()),
            Err(Suppressed::NonFirstFragment)
        );
    }

    const UPSTREAM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);

    /// Only the global bucket: no destination table.
    fn global_only(burst: u32, per_second: u32) -> IcmpRateConfig {
        IcmpRateConfig {
            burst,
            per_second,
            destinations: 0,
            ..IcmpRateConfig::default()
        }
    }

    fn allowed(r: &mut RateLimiter, now: Instant, dst: Ipv4Addr, tries: usize) -> usize {
        (0..tries).filter(|_| r.allow(now, dst).is_ok()).count()
    }

    #[test]
    fn rate_limiter_allows_burst_then_refills_at_rate() {
        let mut r = RateLimiter::new(global_only(50, 1000), 7);
        let t = Instant::now();
        let first = allowed(&mut r, t, PEER, 100);
        assert!((50..=75).contains(&first), "{first}");
        // 1000/s plus up to 50 %: less than one token in 666 µs, at least one in 1 ms.
        assert!(r.allow(t + Duration::from_micros(666), PEER).is_err());
        assert!(r.allow(t + Duration::from_micros(1000), PEER).is_ok());
        assert_eq!(
            r.allow(t + Duration::from_micros(1000), PEER),
            Err(Suppressed::RateLimited)
        );
        // A long pause refills only up to this second's capacity.
        let later = allowed(&mut r, t + Duration::from_secs(10), PEER, 100);
        assert!((50..=75).contains(&later), "{later}");
    }

    #[test]
    fn global_budget_is_redrawn_each_second_between_limit_and_one_and_a_half_limit() {
        // A flood each second against the global bucket alone: what it lets through varies
        // from second to second within [limit, 1.5 × limit], so an observer cannot learn how
        // many tokens other flows used by counting the errors left for itself.
        let mut r = RateLimiter::new(global_only(20, 20), 42);
        let t = Instant::now();
        let counts: Vec<usize> = (0..60)
            .map(|k| allowed(&mut r, t + Duration::from_secs(k), PEER, 100))
            .collect();
        assert!(counts.iter().all(|c| (20..=30).contains(c)), "{counts:?}");
        let mut distinct = counts.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() >= 5, "too little jitter: {counts:?}");
        // Within one second the capacity holds still.
        let cap = r.current_burst();
        assert!((20..=30).contains(&cap));
        let within = t + Duration::from_secs(60);
        let n = allowed(&mut r, within, PEER, 100);
        assert!((20..=r.current_burst() as usize).contains(&n), "{n}");
        assert_eq!(
            allowed(&mut r, within + Duration::from_millis(1), PEER, 100),
            0
        );
    }

    #[test]
    fn same_seed_draws_the_same_budgets_and_another_seed_differs() {
        let t = Instant::now();
        let run = |seed| {
            let mut r = RateLimiter::new(global_only(100, 100), seed);
            (0..20)
                .map(|k| allowed(&mut r, t + Duration::from_secs(k), PEER, 200))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn a_flood_of_errors_to_one_prefix_does_not_change_what_another_prefix_gets() {
        // SAD DNS: probes spoofed from the upstream's address draw errors to the upstream;
        // the attacker then probes from its own address and counts the errors it gets. With
        // a prefix's bucket smaller than the global one, that count no longer depends on how
        // many of the spoofed probes drew an error.
        let t = Instant::now();
        let mut seen = Vec::new();
        for spoofed in [0, 1, 5, 10, 100, 1000] {
            let mut r = RateLimiter::new(IcmpRateConfig::default(), 9);
            let to_upstream = allowed(&mut r, t, UPSTREAM, spoofed);
            assert_eq!(to_upstream, spoofed.min(10));
            seen.push(allowed(&mut r, t, PEER, 100));
        }
        assert_eq!(seen, vec![10; 6]);
    }

    #[test]
    fn a_prefix_whose_bucket_is_empty_charges_nothing_to_the_global_bucket() {
        let config = IcmpRateConfig {
            burst: 20,
            per_second: 1,
            per_destination_burst: 5,
            per_destination_per_second: 1,
            destinations: 8,
        };
        let mut r = RateLimiter::new(config, 3);
        let t = Instant::now();
        assert_eq!(allowed(&mut r, t, UPSTREAM, 5), 5);
        for _ in 0..1000 {
            assert_eq!(
                r.allow(t, UPSTREAM),
                Err(Suppressed::DestinationRateLimited)
            );
        }
        // The global bucket lost only the five: the other prefix has its full five.
        assert_eq!(allowed(&mut r, t, PEER, 100), 5);
    }

    #[test]
    fn hosts_of_one_slash_24_share_a_bucket_and_refill_at_its_rate() {
        let mut r = RateLimiter::new(IcmpRateConfig::default(), 5);
        let t = Instant::now();
        assert_eq!(allowed(&mut r, t, Ipv4Addr::new(192, 0, 2, 1), 4), 4);
        assert_eq!(allowed(&mut r, t, Ipv4Addr::new(192, 0, 2, 200), 100), 6);
        assert_eq!(r.tracked_destinations(), 1);
        // 100/s per prefix: one token per 10 ms.
        let soon = t + Duration::from_millis(10);
        assert_eq!(allowed(&mut r, soon, Ipv4Addr::new(192, 0, 2, 9), 100), 1);
    }

    #[test]
    fn destination_table_is_bounded_and_forgets_the_least_recently_used() {
        let config = IcmpRateConfig {
            destinations: 1,
            ..IcmpRateConfig::default()
        };
        let mut r = RateLimiter::new(config, 11);
        let t = Instant::now();
        assert_eq!(allowed(&mut r, t, UPSTREAM, 100), 10);
        let t1 = t + Duration::from_micros(1);
        assert_eq!(allowed(&mut r, t1, PEER, 5), 5);
        assert_eq!(r.tracked_destinations(), 1);
        // The upstream's bucket was forgotten: it starts full again (the global bucket still
        // bounds the total).
        let t2 = t1 + Duration::from_micros(1);
        assert_eq!(allowed(&mut r, t2, UPSTREAM, 100), 10);
        assert_eq!(r.tracked_destinations(), 1);
    }

    #[test]
    fn rate_share_divides_among_workers() {
        let c = IcmpRateConfig::default().share(4);
        assert_eq!((c.burst, c.per_second), (12, 250));
        assert_eq!(
            (c.per_destination_burst, c.per_destination_per_second),
            (2, 25)
        );
        assert_eq!(c.destinations, 256);
        let one = IcmpRateConfig {
            burst: 1,
            per_second: 1,
            per_destination_burst: 1,
            per_destination_per_second: 1,
            destinations: 4,
        }
        .share(8);
        assert_eq!((one.burst, one.per_destination_burst), (1, 1));
    }
}
