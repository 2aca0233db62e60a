//! Sans-IO ARP resolution (RFC 826, RFC 1122 §2.3.2), generic over the packet type `P` that waits
//! for an address.
//!
//! Limits (see [`NeighborConfig`]; every drop is counted in [`LinkStats`]):
//! - a resolved entry lives `entry_lifetime` (60 s) after it was last confirmed by an ARP packet,
//!   then it is removed and the next packet resolves the address again (RFC 1122 §2.3.2.1
//!   "timeout": a host must not keep using a stale mapping forever);
//! - at most one request per `retry_interval` (1 s) per address (RFC 1122 §2.3.2.1 prevents ARP
//!   flooding this way), at most `max_tries` (3) requests; when the last goes unanswered for one
//!   more interval the queued packets are handed back as `failed` (the caller reports host
//!   unreachable) and the entry is forgotten;
//! - per unresolved address at most `queue_per_address` (16, at least 1) packets wait; when full
//!   the OLDEST is dropped (`arp_queue_drops`), since RFC 1122 §2.3.2.2 asks to keep the latest;
//! - at most `max_pending` (64) addresses are being resolved at once; a packet for one more is
//!   dropped (`arp_pending_limit_drops`);
//! - at most `max_entries` (1024) resolved entries; inserting one more evicts the entry confirmed
//!   longest ago (`arp_evictions`).
//!
//! Learning follows RFC 826's merge rule: any ARP packet whose sender address is already in the
//! table updates it (and completes a pending resolution); a new entry is created only from a
//! packet whose target protocol address is ours. Senders that are 0.0.0.0 (RFC 5227 probes),
//! non-unicast MACs, and packets claiming our own address are never learned.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::rx::LinkStats;
use crate::wire::arp::{ArpOperation, ArpRepr};
use crate::wire::ethernet::MacAddr;

/// Limits and timers of the neighbor cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    /// How long a resolved entry stays usable after the last ARP packet confirmed it.
    pub entry_lifetime: Duration,
    /// Minimum time between two requests for the same address.
    pub retry_interval: Duration,
    /// Requests sent for one address before giving up.
    pub max_tries: u32,
    /// Packets held per unresolved address (values below 1 count as 1); drop-oldest.
    pub queue_per_address: usize,
    /// Resolved entries kept; the least recently confirmed is evicted for a new one.
    pub max_entries: usize,
    /// Addresses being resolved at once.
    pub max_pending: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        Self {
            entry_lifetime: Duration::from_secs(60),
            retry_interval: Duration::from_secs(1),
            max_tries: 3,
            queue_per_address: 16,
            max_entries: 1024,
            max_pending: 64,
        }
    }
}

/// Why `resolve` refused a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResolveDrop {
    /// `max_pending` addresses are already being resolved.
    #[error("too many addresses awaiting ARP resolution")]
    PendingLimit,
    /// 0.0.0.0 has no link-layer address.
    #[error("destination 0.0.0.0 cannot be resolved")]
    InvalidDestination,
}

/// What `resolve` decided for one packet.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolve<P> {
    /// Send now to this MAC.
    Ready(MacAddr, P),
    /// The packet waits for a reply; send `request` (broadcast) if present.
    Queued { request: Option<ArpRepr> },
    /// The packet was refused.
    Dropped(P, ResolveDrop),
}

/// What an incoming ARP packet produced.
#[derive(Debug, PartialEq, Eq)]
pub struct ArpOutcome<P> {
    /// A reply to send (unicast to its `target_mac`).
    pub reply: Option<ArpRepr>,
    /// Packets whose destination just resolved, in the order they were queued.
    pub released: Vec<(MacAddr, P)>,
}

/// What the passing of time produced.
#[derive(Debug, PartialEq, Eq)]
pub struct TimeoutOutcome<P> {
    /// Retransmitted requests to broadcast.
    pub requests: Vec<ArpRepr>,
    /// Packets whose destination did not answer `max_tries` requests.
    pub failed: Vec<(Ipv4Addr, P)>,
}

#[derive(Debug, Clone)]
struct Resolved {
    mac: MacAddr,
    /// None for static entries, which never expire and are never evicted or overwritten.
    expires: Option<Instant>,
    confirmed: Instant,
}

impl Resolved {
    fn live_at(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

#[derive(Debug)]
struct Pending<P> {
    tries: u32,
    next_retry: Instant,
    queue: VecDeque<P>,
}

/// The ARP table plus the packets waiting for it. See the module documentation for the rules.
#[derive(Debug)]
pub struct NeighborCache<P> {
    config: NeighborConfig,
    our_mac: MacAddr,
    our_ip: Ipv4Addr,
    // BTreeMaps keep every outcome (request order, eviction ties) deterministic.
    resolved: BTreeMap<Ipv4Addr, Resolved>,
    pending: BTreeMap<Ipv4Addr, Pending<P>>,
    /// No resolved entry expires before this.
    next_sweep: Option<Instant>,
    stats: LinkStats,
}

impl<P> NeighborCache<P> {
    pub fn new(config: NeighborConfig, our_mac: MacAddr, our_ip: Ipv4Addr) -> Self {
        Self {
            config,
            our_mac,
            our_ip,
            resolved: BTreeMap::new(),
            pending: BTreeMap::new(),
            next_sweep: None,
            stats: LinkStats::default(),
        }
    }

    pub fn config(&self) -> &NeighborConfig {
        &self.config
    }

    pub fn our_mac(&self) -> MacAddr {
        self.our_mac
    }

    pub fn our_ip(&self) -> Ipv4Addr {
        self.our_ip
    }

    /// Changes the addresses we answer for and send from.
    pub fn set_addresses(&mut self, our_mac: MacAddr, our_ip: Ipv4Addr) {
        self.our_mac = our_mac;
        self.our_ip = our_ip;
    }

    /// Counters; only the `arp_*` fields are used here.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Returns the counters and zeroes them (for summing into a runtime-wide total).
    pub fn take_stats(&mut self) -> LinkStats {
        std::mem::take(&mut self.stats)
    }

    /// Resolved entries (including expired ones not yet swept).
    pub fn len(&self) -> usize {
        self.resolved.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resolved.is_empty()
    }

    /// Addresses being resolved.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The MAC for `ip`, if resolved and not expired at `now`.
    pub fn lookup(&self, now: Instant, ip: Ipv4Addr) -> Option<MacAddr> {
        self.resolved
            .get(&ip)
            .filter(|e| e.live_at(now))
            .map(|e| e.mac)
    }

    /// The resolved entries as (address, MAC), in address order (expired ones not yet swept
    /// included), for status displays.
    pub fn entries(&self) -> impl Iterator<Item = (Ipv4Addr, MacAddr)> + '_ {
        self.resolved.iter().map(|(ip, e)| (*ip, e.mac))
    }

    /// Adds a permanent entry (never expires, never evicted, not changed by ARP, and not counted
    /// against `max_entries`: the operator bounds those). Completes a
    /// pending resolution; the queued packets are returned.
    pub fn insert_static(&mut self, ip: Ipv4Addr, mac: MacAddr, now: Instant) -> Vec<(MacAddr, P)> {
        self.resolved.insert(
            ip,
            Resolved {
                mac,
                expires: None,
                confirmed: now,
            },
        );
        self.release(ip, mac)
    }

    /// Removes any entry and pending resolution for `ip`; queued packets are dropped.
    pub fn remove(&mut self, ip: Ipv4Addr) {
        self.resolved.remove(&ip);
        self.pending.remove(&ip);
    }

    /// Finds the MAC for a packet to `ip`, or queues the packet and asks for it.
    pub fn resolve(&mut self, now: Instant, ip: Ipv4Addr, packet: P) -> Resolve<P> {
        if let Some(mac) = fixed_mac(ip) {
            return Resolve::Ready(mac, packet);
        }
        if ip.is_unspecified() {
            self.stats.arp_invalid_destination_drops += 1;
            return Resolve::Dropped(packet, ResolveDrop::InvalidDestination);
        }
        if let Some(mac) = self.lookup(now, ip) {
            return Resolve::Ready(mac, packet);
        }
        if self.resolved.remove(&ip).is_some() {
            self.stats.arp_expired += 1;
        }
        let capacity = self.config.queue_per_address.max(1);
        if let Some(pending) = self.pending.get_mut(&ip) {
            if pending.queue.len() >= capacity {
                // RFC 1122 §2.3.2.2: keep the latest packet; the oldest goes.
                pending.queue.pop_front();
                self.stats.arp_queue_drops += 1;
            }
            pending.queue.push_back(packet);
            // Normally on_timeout retries; this covers a caller that polls late.
            let request = if now >= pending.next_retry && pending.tries < self.config.max_tries {
                pending.tries += 1;
                pending.next_retry = now + self.config.retry_interval;
                Some(self.request(ip))
            } else {
                None
            };
            return Resolve::Queued { request };
        }
        if self.pending.len() >= self.config.max_pending {
            self.stats.arp_pending_limit_drops += 1;
            return Resolve::Dropped(packet, ResolveDrop::PendingLimit);
        }
        let next_retry = now + self.config.retry_interval;
        self.pending.insert(
            ip,
            Pending {
                tries: 1,
                next_retry,
                queue: VecDeque::from([packet]),
            },
        );
        Resolve::Queued {
            request: Some(self.request(ip)),
        }
    }

    /// Learns from a received ARP packet and answers requests for our address.
    pub fn on_arp(&mut self, now: Instant, arp: &ArpRepr) -> ArpOutcome<P> {
        self.stats.record_arp_in(arp.operation);
        let mut outcome = ArpOutcome {
            reply: None,
            released: Vec::new(),
        };
        let ours = !self.our_ip.is_unspecified();
        if ours && arp.sender_ip == self.our_ip {
            if arp.sender_mac != self.our_mac {
                self.stats.arp_address_conflicts += 1;
                log::warn!(
                    "ARP: {} claims our address {}",
                    arp.sender_mac,
                    arp.sender_ip
                );
            }
            return outcome;
        }
        let for_us = ours && arp.target_ip == self.our_ip;
        let learnable = arp.sender_mac.is_unicast()
            && !arp.sender_ip.is_unspecified()
            && fixed_mac(arp.sender_ip).is_none();
        if learnable {
            // RFC 826 "Packet Reception": merge into an existing entry first…
            let merged = self.merge(now, arp.sender_ip, arp.sender_mac, &mut outcome.released);
            // …and add a new one only if we are the target.
            if !merged && for_us {
                self.insert(now, arp.sender_ip, arp.sender_mac);
            }
        }
        // A request from a non-unicast MAC is bogus; answering it would spray a group.
        if for_us && arp.operation == ArpOperation::Request && arp.sender_mac.is_unicast() {
            self.stats.record_arp_out(ArpOperation::Reply);
            outcome.reply = Some(ArpRepr {
                operation: ArpOperation::Reply,
                sender_mac: self.our_mac,
                sender_ip: self.our_ip,
                target_mac: arp.sender_mac,
                target_ip: arp.sender_ip,
            });
        }
        outcome
    }

    /// Retries or fails pending resolutions whose time has come and removes expired entries.
    pub fn on_timeout(&mut self, now: Instant) -> TimeoutOutcome<P> {
        let mut outcome = TimeoutOutcome {
            requests: Vec::new(),
            failed: Vec::new(),
        };
        let due: Vec<Ipv4Addr> = self
            .pending
            .iter()
            .filter(|(_, p)| p.next_retry <= now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            let Some(pending) = self.pending.get_mut(&ip) else {
                continue;
            };
            if pending.tries >= self.config.max_tries {
                if let Some(pending) = self.pending.remove(&ip) {
                    self.stats.arp_unresolved_drops += pending.queue.len() as u64;
                    log::debug!("ARP: {ip} unanswered after {} requests", pending.tries);
                    outcome
                        .failed
                        .extend(pending.queue.into_iter().map(|p| (ip, p)));
                }
            } else {
                pending.tries += 1;
                pending.next_retry = now + self.config.retry_interval;
                outcome.requests.push(self.request(ip));
            }
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            let before = self.resolved.len();
            self.resolved.retain(|_, e| e.live_at(now));
            self.stats.arp_expired += (before - self.resolved.len()) as u64;
            self.next_sweep = self.resolved.values().filter_map(|e| e.expires).min();
        }
        outcome
    }

    /// When `on_timeout` next has work: a retry, a failure or an expiry.
    pub fn poll_deadline(&self) -> Option<Instant> {
        let retry = self.pending.values().map(|p| p.next_retry).min();
        retry.into_iter().chain(self.next_sweep).min()
    }

    /// A gratuitous ARP announcing our address (RFC 5227 §2.3 announcement: a broadcast request
    /// whose sender and target protocol addresses are both ours).
    pub fn gratuitous(&self) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: self.our_mac,
            sender_ip: self.our_ip,
            target_mac: MacAddr::ZERO,
            target_ip: self.our_ip,
        }
    }

    /// A request for `ip`, counted as sent.
    fn request(&mut self, ip: Ipv4Addr) -> ArpRepr {
        self.stats.record_arp_out(ArpOperation::Request);
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: self.our_mac,
            sender_ip: self.our_ip,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    /// Updates an existing or pending entry for `ip`; false when there is none.
    fn merge(
        &mut self,
        now: Instant,
        ip: Ipv4Addr,
        mac: MacAddr,
        released: &mut Vec<(MacAddr, P)>,
    ) -> bool {
        if self.pending.contains_key(&ip) {
            self.insert(now, ip, mac);
            released.extend(self.release(ip, mac));
            return true;
        }
        match self.resolved.get(&ip) {
            None => false,
            // Static entries are the operator's word; ARP does not change them.
            Some(entry) if entry.expires.is_none() => true,
            Some(entry) => {
                if entry.mac != mac {
                    log::debug!("ARP: {ip} moved from {} to {mac}", entry.mac);
                }
                self.insert(now, ip, mac);
                true
            }
        }
    }

    /// Adds a dynamic entry, evicting the least recently confirmed one if the table is full.
    fn insert(&mut self, now: Instant, ip: Ipv4Addr, mac: MacAddr) {
        if !self.resolved.contains_key(&ip) && self.resolved.len() >= self.config.max_entries {
            let oldest = self
                .resolved
                .iter()
                .filter(|(_, e)| e.expires.is_some())
                .min_by_key(|(_, e)| e.confirmed)
                .map(|(ip, _)| *ip);
            match oldest {
                Some(victim) => {
                    self.resolved.remove(&victim);
                    self.stats.arp_evictions += 1;
                }
                // Only static entries: they are the operator's, keep them and skip this one.
                None => return,
            }
        }
        let expires = now + self.config.entry_lifetime;
        self.resolved.insert(
            ip,
            Resolved {
                mac,
                expires: Some(expires),
                confirmed: now,
            },
        );
        self.next_sweep = Some(self.next_sweep.map_or(expires, |t| t.min(expires)));
    }

    /// Ends a pending resolution, handing back its packets in queue order.
    fn release(&mut self, ip: Ipv4Addr, mac: MacAddr) -> Vec<(MacAddr, P)> {
        self.pending
            .remove(&ip)
            .map(|p| p.queue.into_iter().map(|packet| (mac, packet)).collect())
            .unwrap_or_default()
    }
}

/// Addresses whose MAC needs no ARP: limited broadcast and IPv4 multicast (RFC 1112 §6.4: the
/// low 23 bits of the group go into 01:00:5e:00:00:00).
fn fixed_mac(ip: Ipv4Addr) -> Option<MacAddr> {
    if ip.is_broadcast() {
        Some(MacAddr::BROADCAST)
    } else if ip.is_multicast() {
        let o = ip.octets();
        Some(MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x01]);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const OTHER_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x03]);
    const OTHER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

    fn cache() -> NeighborCache<u32> {
        NeighborCache::new(NeighborConfig::default(), US_MAC, US)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn arp(op: ArpOperation, mac: MacAddr, ip: Ipv4Addr, target_ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: op,
            sender_mac: mac,
            sender_ip: ip,
            target_mac: if op == ArpOperation::Reply {
                US_MAC
            } else {
                MacAddr::ZERO
            },
            target_ip,
        }
    }

    fn request_for(ip: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: US_MAC,
            sender_ip: US,
            target_mac: MacAddr::ZERO,
            target_ip: ip,
        }
    }

    #[test]
    fn request_for_our_address_is_answered_with_our_mac() {
        let mut c = cache();
        let out = c.on_arp(
            Instant::now(),
            &arp(ArpOperation::Request, PEER_MAC, PEER, US),
        );
        assert_eq!(
            out.reply,
            Some(ArpRepr {
                operation: ArpOperation::Reply,
                sender_mac: US_MAC,
                sender_ip: US,
                target_mac: PEER_MAC,
                target_ip: PEER,
            })
        );
        assert!(out.released.is_empty());
        assert_eq!(
            (c.stats().arp_requests_in, c.stats().arp_replies_out),
            (1, 1)
        );
    }

    #[test]
    fn request_targeting_us_creates_an_entry() {
        // RFC 826: "If I am the target … add the triplet".
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        assert_eq!(c.lookup(t0, PEER), Some(PEER_MAC));
    }

    #[test]
    fn request_for_another_host_is_neither_answered_nor_learned() {
        let mut c = cache();
        let t0 = Instant::now();
        let out = c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, OTHER));
        assert_eq!(out.reply, None);
        assert_eq!(c.lookup(t0, PEER), None);
        assert!(c.is_empty());
    }

    #[test]
    fn any_arp_updates_an_existing_entry() {
        // RFC 826 merge rule: the sender is updated even when the packet is not for us.
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        let out = c.on_arp(
            t0 + secs(1),
            &arp(ArpOperation::Request, OTHER_MAC, PEER, OTHER),
        );
        assert_eq!(out.reply, None);
        assert_eq!(c.lookup(t0 + secs(1), PEER), Some(OTHER_MAC));
    }

    #[test]
    fn update_from_any_arp_extends_the_lifetime() {
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        c.on_arp(
            t0 + secs(50),
            &arp(ArpOperation::Request, PEER_MAC, PEER, OTHER),
        );
        assert_eq!(c.lookup(t0 + secs(100), PEER), Some(PEER_MAC));
        assert_eq!(c.lookup(t0 + secs(110), PEER), None);
    }

    #[test]
    fn zero_sender_multicast_sender_and_our_own_address_are_not_learned() {
        let mut c = cache();
        let t0 = Instant::now();
        // RFC 5227 probe: sender 0.0.0.0. We answer (defending our address) but learn nothing.
        let probe = arp(ArpOperation::Request, PEER_MAC, Ipv4Addr::UNSPECIFIED, US);
        assert!(c.on_arp(t0, &probe).reply.is_some());
        let mcast = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
        assert_eq!(
            c.on_arp(t0, &arp(ArpOperation::Request, mcast, PEER, US))
                .reply,
            None
        );
        assert!(c.is_empty());
        let conflict = c.on_arp(t0, &arp(ArpOperation::Request, OTHER_MAC, US, US));
        assert_eq!(conflict.reply, None);
        assert_eq!(c.stats().arp_address_conflicts, 1);
        assert!(c.is_empty());
    }

    #[test]
    fn first_packet_queues_and_sends_one_request() {
        let mut c = cache();
        let t0 = Instant::now();
        assert_eq!(
            c.resolve(t0, PEER, 1),
            Resolve::Queued {
                request: Some(request_for(PEER))
            }
        );
        assert_eq!(c.pending_len(), 1);
        assert_eq!(c.stats().arp_requests_out, 1);
        assert_eq!(c.poll_deadline(), Some(t0 + secs(1)));
    }

    #[test]
    fn at_most_one_request_per_second_per_address() {
        // RFC 1122 §2.3.2.1: rate-limit requests per destination.
        let mut c = cache();
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        for ms in [1, 500, 999] {
            let now = t0 + Duration::from_millis(ms);
            assert_eq!(c.resolve(now, PEER, 2), Resolve::Queued { request: None });
            assert!(c.on_timeout(now).requests.is_empty());
        }
        let out = c.on_timeout(t0 + secs(1));
        assert_eq!(out.requests, vec![request_for(PEER)]);
        assert_eq!(
            c.resolve(t0 + secs(1), PEER, 3),
            Resolve::Queued { request: None }
        );
        assert_eq!(c.stats().arp_requests_out, 2);
        // Another address has its own budget.
        assert_eq!(
            c.resolve(t0 + secs(1), OTHER, 4),
            Resolve::Queued {
                request: Some(request_for(OTHER))
            }
        );
    }

    #[test]
    fn late_resolve_sends_the_due_retry_itself() {
        let mut c = cache();
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        assert_eq!(
            c.resolve(t0 + secs(2), PEER, 2),
            Resolve::Queued {
                request: Some(request_for(PEER))
            }
        );
        assert_eq!(c.poll_deadline(), Some(t0 + secs(3)));
    }

    #[test]
    fn three_unanswered_requests_fail_the_queued_packets() {
        let mut c = cache();
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        c.resolve(t0, PEER, 2);
        assert_eq!(c.on_timeout(t0 + secs(1)).requests.len(), 1);
        assert_eq!(c.on_timeout(t0 + secs(2)).requests.len(), 1);
        let out = c.on_timeout(t0 + secs(3));
        assert!(out.requests.is_empty());
        assert_eq!(out.failed, vec![(PEER, 1), (PEER, 2)]);
        assert_eq!(c.pending_len(), 0);
        assert_eq!(c.poll_deadline(), None);
        assert_eq!(c.stats().arp_requests_out, 3);
        assert_eq!(c.stats().arp_unresolved_drops, 2);
        // A new packet starts a fresh resolution.
        assert_eq!(
            c.resolve(t0 + secs(3), PEER, 3),
            Resolve::Queued {
                request: Some(request_for(PEER))
            }
        );
    }

    #[test]
    fn reply_releases_queued_packets_in_order() {
        let mut c = cache();
        let t0 = Instant::now();
        for p in 1..=3 {
            c.resolve(t0, PEER, p);
        }
        let out = c.on_arp(t0 + secs(1), &arp(ArpOperation::Reply, PEER_MAC, PEER, US));
        assert_eq!(out.reply, None);
        assert_eq!(
            out.released,
            vec![(PEER_MAC, 1), (PEER_MAC, 2), (PEER_MAC, 3)]
        );
        assert_eq!(c.pending_len(), 0);
        assert_eq!(
            c.resolve(t0 + secs(1), PEER, 4),
            Resolve::Ready(PEER_MAC, 4)
        );
        assert_eq!(c.stats().arp_replies_in, 1);
    }

    #[test]
    fn request_from_pending_host_also_releases_queued_packets() {
        // The merge rule completes a resolution from the peer's own request too.
        let mut c = cache();
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        let out = c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, OTHER));
        assert_eq!(out.released, vec![(PEER_MAC, 1)]);
        assert_eq!(out.reply, None);
    }

    #[test]
    fn full_queue_drops_the_oldest_packet() {
        // RFC 1122 §2.3.2.2: keep the latest.
        let config = NeighborConfig {
            queue_per_address: 2,
            ..Default::default()
        };
        let mut c: NeighborCache<u32> = NeighborCache::new(config, US_MAC, US);
        let t0 = Instant::now();
        for p in 1..=4 {
            c.resolve(t0, PEER, p);
        }
        assert_eq!(c.stats().arp_queue_drops, 2);
        let out = c.on_arp(t0, &arp(ArpOperation::Reply, PEER_MAC, PEER, US));
        assert_eq!(out.released, vec![(PEER_MAC, 3), (PEER_MAC, 4)]);
    }

    #[test]
    fn too_many_pending_addresses_drops_the_packet() {
        let config = NeighborConfig {
            max_pending: 2,
            ..Default::default()
        };
        let mut c: NeighborCache<u32> = NeighborCache::new(config, US_MAC, US);
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        c.resolve(t0, OTHER, 2);
        let third = Ipv4Addr::new(192, 0, 2, 4);
        assert_eq!(
            c.resolve(t0, third, 3),
            Resolve::Dropped(3, ResolveDrop::PendingLimit)
        );
        assert_eq!(c.stats().arp_pending_limit_drops, 1);
        // Already-pending addresses still queue.
        assert_eq!(c.resolve(t0, PEER, 4), Resolve::Queued { request: None });
    }

    #[test]
    fn full_table_evicts_the_least_recently_confirmed_entry() {
        let config = NeighborConfig {
            max_entries: 2,
            ..Default::default()
        };
        let mut c: NeighborCache<u32> = NeighborCache::new(config, US_MAC, US);
        let t0 = Instant::now();
        let host = |n: u8| Ipv4Addr::new(192, 0, 2, 10 + n);
        let mac = |n: u8| MacAddr([0x52, 0x54, 0, 0, 1, n]);
        c.on_arp(t0, &arp(ArpOperation::Request, mac(1), host(1), US));
        c.on_arp(
            t0 + secs(1),
            &arp(ArpOperation::Request, mac(2), host(2), US),
        );
        // Re-confirming host 1 makes host 2 the oldest.
        c.on_arp(
            t0 + secs(2),
            &arp(ArpOperation::Request, mac(1), host(1), US),
        );
        c.on_arp(
            t0 + secs(3),
            &arp(ArpOperation::Request, mac(3), host(3), US),
        );
        let now = t0 + secs(3);
        assert_eq!(c.len(), 2);
        let entries: Vec<_> = c.entries().collect();
        assert_eq!(entries, vec![(host(1), mac(1)), (host(3), mac(3))]);
        assert_eq!(c.lookup(now, host(1)), Some(mac(1)));
        assert_eq!(c.lookup(now, host(2)), None);
        assert_eq!(c.lookup(now, host(3)), Some(mac(3)));
        assert_eq!(c.stats().arp_evictions, 1);
    }

    #[test]
    fn entries_expire_after_their_lifetime() {
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        assert_eq!(c.poll_deadline(), Some(t0 + secs(60)));
        assert_eq!(c.lookup(t0 + secs(59), PEER), Some(PEER_MAC));
        assert_eq!(c.lookup(t0 + secs(60), PEER), None);
        // Expired: the next packet resolves again.
        assert_eq!(
            c.resolve(t0 + secs(60), PEER, 1),
            Resolve::Queued {
                request: Some(request_for(PEER))
            }
        );
        c.on_timeout(t0 + secs(60));
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats().arp_expired, 1);
        let reply = arp(ArpOperation::Reply, OTHER_MAC, PEER, US);
        assert_eq!(
            c.on_arp(t0 + secs(61), &reply).released,
            vec![(OTHER_MAC, 1)]
        );
        assert_eq!(c.lookup(t0 + secs(61), PEER), Some(OTHER_MAC));
    }

    #[test]
    fn reply_completes_resolution_even_while_an_expired_entry_lingers() {
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        // Expired but not yet swept: on_timeout was never called.
        let late = t0 + secs(70);
        assert!(matches!(
            c.resolve(late, PEER, 7),
            Resolve::Queued { request: Some(_) }
        ));
        let out = c.on_arp(late, &arp(ArpOperation::Reply, OTHER_MAC, PEER, US));
        assert_eq!(out.released, vec![(OTHER_MAC, 7)]);
        assert_eq!(c.pending_len(), 0);
    }

    #[test]
    fn static_entries_never_expire_and_ignore_arp() {
        let mut c = cache();
        let t0 = Instant::now();
        c.resolve(t0, PEER, 1);
        assert_eq!(c.insert_static(PEER, PEER_MAC, t0), vec![(PEER_MAC, 1)]);
        c.on_arp(t0, &arp(ArpOperation::Request, OTHER_MAC, PEER, US));
        c.on_timeout(t0 + secs(3600));
        assert_eq!(c.lookup(t0 + secs(3600), PEER), Some(PEER_MAC));
        assert_eq!(c.poll_deadline(), None);
    }

    #[test]
    fn broadcast_and_multicast_destinations_need_no_arp() {
        let mut c = cache();
        let t0 = Instant::now();
        assert_eq!(
            c.resolve(t0, Ipv4Addr::BROADCAST, 1),
            Resolve::Ready(MacAddr::BROADCAST, 1)
        );
        // RFC 1112 §6.4: 224.128.1.2 → 01:00:5e:00:01:02 (the 24th bit from the end is dropped).
        assert_eq!(
            c.resolve(t0, Ipv4Addr::new(224, 128, 1, 2), 2),
            Resolve::Ready(MacAddr([0x01, 0, 0x5e, 0, 1, 2]), 2)
        );
        assert_eq!(
            c.resolve(t0, Ipv4Addr::UNSPECIFIED, 3),
            Resolve::Dropped(3, ResolveDrop::InvalidDestination)
        );
        assert_eq!(c.stats().arp_invalid_destination_drops, 1);
    }

    #[test]
    fn gratuitous_announces_our_address() {
        let mut c = cache();
        assert_eq!(
            c.gratuitous(),
            ArpRepr {
                operation: ArpOperation::Request,
                sender_mac: US_MAC,
                sender_ip: US,
                target_mac: MacAddr::ZERO,
                target_ip: US,
            }
        );
        let new_ip = Ipv4Addr::new(192, 0, 2, 9);
        c.set_addresses(OTHER_MAC, new_ip);
        assert_eq!(c.gratuitous().sender_ip, new_ip);
        let out = c.on_arp(
            Instant::now(),
            &arp(ArpOperation::Request, PEER_MAC, PEER, new_ip),
        );
        assert_eq!(out.reply.map(|r| r.sender_mac), Some(OTHER_MAC));
    }

    #[test]
    fn poll_deadline_is_the_earliest_retry_or_expiry() {
        let mut c = cache();
        let t0 = Instant::now();
        c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
        c.resolve(t0 + secs(5), OTHER, 1);
        assert_eq!(c.poll_deadline(), Some(t0 + secs(6)));
        let taken = c.take_stats();
        assert_eq!(taken.arp_requests_out, 1);
        assert_eq!(c.stats(), &LinkStats::default());
    }
}
