//! ICMP error policy: when an error may be sent at all (RFC 1122 §3.2.2, RFC 1812
//! §4.3.2.7) and how often (RFC 1812 §4.3.2.8).

use std::net::Ipv4Addr;
use std::time::Instant;

use crate::wire::icmpv4::msg_type;
use crate::wire::{IpProtocol, Ipv4Cidr, Ipv4Repr};

/// How many ICMP errors may be sent: a token bucket of `burst` tokens refilled at
/// `per_second` (RFC 1812 §4.3.2.8 suggests a token bucket; Linux's default is similar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpRateConfig {
    pub burst: u32,
    pub per_second: u32,
}

impl Default for IcmpRateConfig {
    fn default() -> Self {
        IcmpRateConfig {
            burst: 50,
            per_second: 1000,
        }
    }
}

impl IcmpRateConfig {
    /// One worker's share, so `workers` limiters together keep the configured totals
    /// (each keeps at least one token of burst and one per second).
    pub fn share(&self, workers: usize) -> Self {
        let n = workers.max(1) as u32;
        IcmpRateConfig {
            burst: (self.burst / n).max(1),
            per_second: (self.per_second / n).max(1),
        }
    }
}

/// Tokens are kept in millionths so refills of a few microseconds are not lost.
const SCALE: u64 = 1_000_000;

/// A token bucket. Sans-IO: the caller passes `now`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    config: IcmpRateConfig,
    micro_tokens: u64,
    last: Option<Instant>,
}

impl RateLimiter {
    /// Starts full: a burst is allowed at once.
    pub fn new(config: IcmpRateConfig) -> Self {
        RateLimiter {
            config,
            micro_tokens: u64::from(config.burst) * SCALE,
            last: None,
        }
    }

    /// Takes a token if one is available.
    pub fn allow(&mut self, now: Instant) -> bool {
        let cap = u64::from(self.config.burst) * SCALE;
        if let Some(last) = self.last {
            let micros = now.saturating_duration_since(last).as_micros();
            // tokens/s × µs = µtokens.
            let add = micros.saturating_mul(u128::from(self.config.per_second));
            let add = u64::try_from(add).unwrap_or(u64::MAX);
            self.micro_tokens = self.micro_tokens.saturating_add(add).min(cap);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
        if self.micro_tokens >= SCALE {
            self.micro_tokens -= SCALE;
            true
        } else {
            false
        }
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
    /// The token bucket is empty (RFC 1812 §4.3.2.8).
    RateLimited,
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

    #[test]
    fn rate_limiter_allows_burst_then_refills_at_rate() {
        let mut r = RateLimiter::new(IcmpRateConfig {
            burst: 50,
            per_second: 1000,
        });
        let t = Instant::now();
        assert_eq!((0..60).filter(|_| r.allow(t)).count(), 50);
        // 1000/s: one token per millisecond.
        assert!(!r.allow(t + Duration::from_micros(999)));
        assert!(r.allow(t + Duration::from_micros(1000)));
        assert!(!r.allow(t + Duration::from_micros(1000)));
        // A long pause refills only up to the burst.
        let later = t + Duration::from_secs(10);
        assert_eq!((0..60).filter(|_| r.allow(later)).count(), 50);
    }

    #[test]
    fn rate_share_divides_among_workers() {
        let c = IcmpRateConfig::default().share(4);
        assert_eq!((c.burst, c.per_second), (12, 250));
        assert_eq!(
            IcmpRateConfig {
                burst: 1,
                per_second: 1
            }
            .share(8)
            .burst,
            1
        );
    }
}
