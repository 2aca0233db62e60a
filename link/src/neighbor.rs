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
//! table updates it (and completes a pending resolution: the reply to a request we sent); a new
//! entry is created only from a request whose target protocol address is ours. An unsolicited
//! reply (gratuitous or forged) never creates one (`arp_unsolicited_reply_drops`). Senders that
//! are 0.0.0.0 (RFC 5227 probes), non-unicast MACs, and packets claiming our own address are
//! never learned. Static entries ([`NeighborCache::insert_static`]) are never changed by ARP.
//! (Link RX has already dropped ARP whose sender MAC is not the frame's Ethernet source.)

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
            // …and add a new one only for a request aimed at us: a reply we did not ask for
            // (nothing pending) would let anyone plant an entry.
            if !merged {
                match arp.operation {
                    ArpOperation::Request if for_us => {
                        self.insert(now, arp.sender_ip, arp.sender_mac)
                    }
                    ArpOperation::Request => {}
                    ArpOperation::Reply => self.stats.arp_unsolicited_reply_drops += 1,
                }
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
mod tests;
