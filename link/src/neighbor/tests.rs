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

#[test]
fn unsolicited_reply_creates_no_entry_and_is_counted() {
    // Even a reply addressed to us: we asked nothing of PEER, so nothing is planted.
    let mut c = cache();
    let t0 = Instant::now();
    let out = c.on_arp(t0, &arp(ArpOperation::Reply, PEER_MAC, PEER, US));
    assert_eq!(
        out,
        ArpOutcome {
            reply: None,
            released: vec![]
        }
    );
    assert_eq!(c.lookup(t0, PEER), None);
    assert!(c.is_empty());
    assert_eq!(c.stats().arp_unsolicited_reply_drops, 1);
    // A gratuitous reply (sender and target both the sender's) neither.
    c.on_arp(t0, &arp(ArpOperation::Reply, OTHER_MAC, OTHER, OTHER));
    assert!(c.is_empty());
    assert_eq!(c.stats().arp_unsolicited_reply_drops, 2);
}

#[test]
fn reply_to_a_request_we_sent_creates_the_entry() {
    let mut c = cache();
    let t0 = Instant::now();
    c.resolve(t0, PEER, 1);
    let out = c.on_arp(t0, &arp(ArpOperation::Reply, PEER_MAC, PEER, US));
    assert_eq!(out.released, vec![(PEER_MAC, 1)]);
    assert_eq!(c.lookup(t0, PEER), Some(PEER_MAC));
    assert_eq!(c.stats().arp_unsolicited_reply_drops, 0);
}

#[test]
fn gratuitous_request_refreshes_an_existing_entry_but_creates_none() {
    // RFC 826's merge rule for entries we have; a request not aimed at us adds nothing.
    let mut c = cache();
    let t0 = Instant::now();
    c.on_arp(t0, &arp(ArpOperation::Request, OTHER_MAC, OTHER, OTHER));
    assert_eq!(c.lookup(t0, OTHER), None);
    c.on_arp(t0, &arp(ArpOperation::Request, PEER_MAC, PEER, US));
    let moved = MacAddr([0x52, 0x54, 0, 0, 0, 0x09]);
    c.on_arp(t0 + secs(1), &arp(ArpOperation::Request, moved, PEER, PEER));
    assert_eq!(c.lookup(t0 + secs(1), PEER), Some(moved));
    assert_eq!(c.stats().arp_unsolicited_reply_drops, 0);
}

#[test]
fn static_entry_is_not_overwritten_by_a_reply_or_a_request_aimed_at_us() {
    let mut c = cache();
    let t0 = Instant::now();
    c.insert_static(PEER, PEER_MAC, t0);
    c.on_arp(t0, &arp(ArpOperation::Reply, OTHER_MAC, PEER, US));
    c.on_arp(t0, &arp(ArpOperation::Request, OTHER_MAC, PEER, US));
    assert_eq!(c.lookup(t0 + secs(86_400), PEER), Some(PEER_MAC));
}
