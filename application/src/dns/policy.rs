//! Who the UDP server serves and how much: the client networks offered recursion, and
//! response rate limiting per client prefix (RRL), sans-IO (the caller passes `now`).
//!
//! Policy, in one place:
//! - Recursion (forwarding upstream) only for clients inside an allowed network
//!   ([`ClientNet`]); anyone else asking for a name outside the zones gets REFUSED, counted
//!   as `refused_recursion`. Authoritative answers from the zones are for everyone.
//! - Every UDP response goes through [`RateLimiter::check`]: each client /24 prefix has a token
//!   bucket of `responses_per_second` tokens, refilled continuously, holding at most one
//!   second's worth. A response without a token is limited: every `slip`th limited response
//!   goes out truncated (TC set, no records), so a real client behind a spoofed flood retries
//!   over TCP (RFC 7766); the others are dropped. `responses_per_second == 0` turns limiting
//!   off. Counted as `rate_limited_slipped` and `rate_limited_dropped`.
//! - The bucket table holds at most `max_prefixes` prefixes (default [`DEFAULT_RRL_PREFIXES`]);
//!   when full, buckets that have refilled (worth nothing) are removed, then the one seen
//!   longest ago, counted as `rrl_evictions`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

/// Prefixes the rate limiter tracks at once unless told otherwise.
pub const DEFAULT_RRL_PREFIXES: usize = 4096;
/// Every second limited response goes out truncated (BIND's default slip).
pub const DEFAULT_RRL_SLIP: u32 = 2;
/// Responses per second per client /24 unless told otherwise (`--dns-rate`).
pub const DEFAULT_DNS_RATE: u32 = 100;

/// An IPv4 network clients may come from, e.g. 192.0.2.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientNet {
    pub addr: Ipv4Addr,
    /// 0 to 32; larger values are taken as 32.
    pub prefix_len: u8,
}

impl ClientNet {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> ClientNet {
        ClientNet {
            addr,
            prefix_len: prefix_len.min(32),
        }
    }

    fn mask(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => (u32::from(a) ^ u32::from(self.addr)) & self.mask() == 0,
            IpAddr::V6(_) => false,
        }
    }
}

impl core::fmt::Display for ClientNet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let net = Ipv4Addr::from(u32::from(self.addr) & self.mask());
        write!(f, "{net}/{}", self.prefix_len)
    }
}

/// True when `client` is inside one of `allow`.
pub fn recursion_allowed(allow: &[ClientNet], client: IpAddr) -> bool {
    allow.iter().any(|n| n.contains(client))
}

/// Rate limiting settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Responses per second per client /24; 0: no limit.
    pub responses_per_second: u32,
    /// Every `slip`th limited response is sent truncated; 0: none (all dropped), 1: all.
    pub slip: u32,
    /// Prefixes tracked at once.
    pub max_prefixes: usize,
}

impl RateLimit {
    /// No limit at all.
    pub const OFF: RateLimit = RateLimit {
        responses_per_second: 0,
        slip: DEFAULT_RRL_SLIP,
        max_prefixes: DEFAULT_RRL_PREFIXES,
    };

    /// `responses_per_second` per /24 with the default slip and table size.
    pub fn per_second(responses_per_second: u32) -> RateLimit {
        RateLimit {
            responses_per_second,
            ..RateLimit::OFF
        }
    }
}

impl Default for RateLimit {
    fn default() -> RateLimit {
        RateLimit::per_second(DEFAULT_DNS_RATE)
    }
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Send it truncated: TC set, no records.
    Slip,
    Drop,
}

super::counters! {
    /// What the rate limiter did.
    pub struct RateLimitStats {
        slipped,
        dropped,
        /// Prefixes removed from a full table while their bucket was not yet full.
        evictions,
    }
}

#[derive(Debug, Clone)]
struct Bucket {
    /// Tokens, in millionths of a response (so slow rates refill smoothly).
    micro_tokens: u64,
    last: Instant,
    limited: u64,
}

/// RRL-style response rate limiter (see the module documentation).
#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: RateLimit,
    buckets: HashMap<u32, Bucket>,
    stats: RateLimitStats,
}

const MICRO: u64 = 1_000_000;

impl RateLimiter {
    pub fn new(config: RateLimit) -> RateLimiter {
        RateLimiter {
            config,
            buckets: HashMap::new(),
            stats: RateLimitStats::default(),
        }
    }

    pub fn config(&self) -> RateLimit {
        self.config
    }

    pub fn stats(&self) -> RateLimitStats {
        self.stats
    }

    /// Prefixes tracked now.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The /24 a client belongs to; IPv6 clients (none over our IPv4 stack) share one key.
    fn prefix(client: IpAddr) -> u32 {
        match client {
            IpAddr::V4(a) => u32::from(a) & 0xffff_ff00,
            IpAddr::V6(_) => u32::MAX,
        }
    }

    /// Whether a response to `client` may go out at `now`, spending a token if so.
    pub fn check(&mut self, now: Instant, client: IpAddr) -> Verdict {
        let rate = u64::from(self.config.responses_per_second);
        if rate == 0 {
            return Verdict::Send;
        }
        let full = rate * MICRO;
        let key = Self::prefix(client);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.config.max_prefixes {
            self.make_room(now, full, rate);
        }
        if self.config.max_prefixes == 0 {
            return Verdict::Send;
        }
        let b = self.buckets.entry(key).or_insert(Bucket {
            micro_tokens: full,
            last: now,
            limited: 0,
        });
        let elapsed = now.saturating_duration_since(b.last);
        b.last = b.last.max(now);
        b.micro_tokens = refill(b.micro_tokens, elapsed, rate, full);
        if b.micro_tokens >= MICRO {
            b.micro_tokens -= MICRO;
            return Verdict::Send;
        }
        b.limited += 1;
        let slip = u64::from(self.config.slip);
        if slip != 0 && b.limited.is_multiple_of(slip) {
            self.stats.slipped += 1;
            Verdict::Slip
        } else {
            self.stats.dropped += 1;
            Verdict::Drop
        }
    }

    fn make_room(&mut self, now: Instant, full: u64, rate: u64) {
        self.buckets.retain(|_, b| {
            refill(
                b.micro_tokens,
                now.saturating_duration_since(b.last),
                rate,
                full,
            ) < full
        });
        while self.buckets.len() >= self.config.max_prefixes {
            let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
            else {
                return;
            };
            self.buckets.remove(&oldest);
            self.stats.evictions += 1;
        }
    }
}

fn refill(micro_tokens: u64, elapsed: Duration, rate: u64, full: u64) -> u64 {
    let added = elapsed.as_micros().saturating_mul(u128::from(rate));
    let added = u64::try_from(added).unwrap_or(u64::MAX);
    micro_tokens.saturating_add(added).min(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(198, 51, a, b))
    }

    fn limiter(rate: u32, slip: u32) -> RateLimiter {
        RateLimiter::new(RateLimit {
            responses_per_second: rate,
            slip,
            max_prefixes: 4,
        })
    }

    #[test]
    fn client_nets_contain_their_addresses_only() {
        let n = ClientNet::new(Ipv4Addr::new(192, 0, 2, 2), 24);
        assert!(n.contains(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200))));
        assert!(!n.contains(IpAddr::V4(Ipv4Addr::new(192, 0, 3, 1))));
        assert_eq!(n.to_string(), "192.0.2.0/24");
        let all = ClientNet::new(Ipv4Addr::UNSPECIFIED, 0);
        assert!(all.contains(ip(100, 1)));
        assert!(!recursion_allowed(&[], ip(100, 1)));
        assert!(recursion_allowed(&[n, all], ip(100, 1)));
    }

    #[test]
    fn within_the_rate_every_response_goes_out() {
        let mut l = limiter(5, 2);
        let t = Instant::now();
        for i in 0..50u32 {
            // 4 per second: under the rate of 5.
            let now = t + Duration::from_millis(250) * i;
            assert_eq!(l.check(now, ip(100, 1)), Verdict::Send, "response {i}");
        }
        assert_eq!(l.stats(), RateLimitStats::default());
    }

    #[test]
    fn past_the_rate_every_second_limited_response_slips_and_the_rest_drop() {
        let mut l = limiter(5, 2);
        let t = Instant::now();
        let verdicts: Vec<_> = (0..11).map(|_| l.check(t, ip(100, 1))).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Send; 5]);
        assert_eq!(
            &verdicts[5..],
            &[
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip,
                Verdict::Drop,
                Verdict::Slip
            ]
        );
        assert_eq!(l.stats().slipped, 3);
        assert_eq!(l.stats().dropped, 3);
        // A fifth of a second later one token is back.
        let later = t + Duration::from_millis(200);
        assert_eq!(l.check(later, ip(100, 1)), Verdict::Send);
        assert_eq!(l.check(later, ip(100, 1)), Verdict::Drop);
    }

    #[test]
    fn slip_zero_drops_every_limited_response_and_slip_one_truncates_each() {
        let t = Instant::now();
        let mut none = limiter(1, 0);
        let mut all = limiter(1, 1);
        assert_eq!(none.check(t, ip(1, 1)), Verdict::Send);
        assert_eq!(all.check(t, ip(1, 1)), Verdict::Send);
        for _ in 0..4 {
            assert_eq!(none.check(t, ip(1, 1)), Verdict::Drop);
            assert_eq!(all.check(t, ip(1, 1)), Verdict::Slip);
        }
    }

    #[test]
    fn one_flooded_prefix_does_not_limit_another() {
        let mut l = limiter(2, 2);
        let t = Instant::now();
        for _ in 0..100 {
            l.check(t, ip(100, 1));
        }
        // Same /24, another host: limited too. Another /24: not.
        assert_ne!(l.check(t, ip(100, 77)), Verdict::Send);
        assert_eq!(l.check(t, ip(101, 1)), Verdict::Send);
    }

    #[test]
    fn rate_zero_is_off() {
        let mut l = limiter(0, 2);
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(l.check(t, ip(1, 1)), Verdict::Send);
        }
        assert!(l.is_empty());
    }

    #[test]
    fn the_prefix_table_is_bounded_refilled_buckets_go_first_then_the_oldest_counted() {
        let mut l = limiter(1, 2);
        let t = Instant::now();
        // Four prefixes, each with its token spent.
        for p in 0..4 {
            l.check(t + Duration::from_millis(p), ip(p as u8, 1));
        }
        assert_eq!(l.len(), 4);
        // A fifth while none has refilled: the oldest (prefix 0) is evicted and counted.
        l.check(t + Duration::from_millis(10), ip(9, 1));
        assert_eq!(l.len(), 4);
        assert_eq!(l.stats().evictions, 1);
        // Two seconds on every bucket is full again: they go without counting.
        l.check(t + Duration::from_secs(3), ip(10, 1));
        assert_eq!(l.len(), 1);
        assert_eq!(l.stats().evictions, 1);
    }
}
