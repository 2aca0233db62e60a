use super::*;
use crate::wire::icmpv4::msg_type;
use std::time::Duration;

const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const FAR: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

fn endpoint_at(addr: &str, gateway: Option<Ipv4Addr>) -> Ipv4Endpoint {
    let config = Ipv4Config {
        gateway,
        ..Ipv4Config::new(addr.parse().unwrap())
    };
    Ipv4Endpoint::new(config, IdentGenerator::with_key(7, 8))
}

fn us() -> Ipv4Endpoint {
    endpoint_at("192.0.2.2/24", Some(PEER))
}

fn peer() -> Ipv4Endpoint {
    endpoint_at("192.0.2.1/24", None)
}

fn header(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol) -> Ipv4Repr {
    Ipv4Repr {
        src,
        dst,
        protocol,
        ttl: 64,
        dscp_ecn: 0,
        ident: 99,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        payload_len: 0,
    }
}

fn udp_to(dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    header(PEER, dst, IpProtocol::Udp).to_bytes(payload)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 % 256) as u8).collect()
}

/// Feeds packets in order; all but the last must be Held. Returns the last outcome.
fn feed(e: &mut Ipv4Endpoint, now: Instant, packets: &[Vec<u8>]) -> Received {
    let (last, rest) = packets.split_last().unwrap();
    for p in rest {
        assert_eq!(e.receive(now, p), Received::Held);
    }
    e.receive(now, last)
}

fn responded(r: Received) -> Outgoing {
    match r {
        Received::Respond(out) => out,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The ICMP message inside a single-packet response.
fn icmp_of(out: &Outgoing) -> Vec<u8> {
    assert_eq!(out.packets.len(), 1);
    Ipv4Packet::new_checked(&out.packets[0][..])
        .unwrap()
        .payload()
        .to_vec()
}

fn echo_request(len: usize) -> Vec<u8> {
    Icmpv4Repr::EchoRequest {
        ident: 0x77,
        seq_no: 3,
        data: &data(len),
    }
    .to_bytes()
}

#[test]
fn echo_reply_for_56_1472_and_8000_byte_payloads() {
    let now = Instant::now();
    for (len, fragments) in [(56, 1), (1472, 1), (8000, 6)] {
        let (mut us, mut peer) = (us(), peer());
        let request = peer.send(
            now,
            US,
            IpProtocol::Icmp,
            &echo_request(len),
            SendOptions::default(),
        );
        let request = request.unwrap();
        assert_eq!(request.packets.len(), fragments, "request of {len}");
        let reply = responded(feed(&mut us, now, &request.packets));
        assert_eq!(
            (reply.next_hop, reply.packets.len()),
            (PEER, fragments),
            "reply of {len}"
        );
        assert!(reply.packets.iter().all(|p| p.len() <= 1500));
        let got = feed(&mut peer, now, &reply.packets);
        let want = IcmpEvent::EchoReply {
            src: US,
            ident: 0x77,
            seq_no: 3,
            data: data(len),
        };
        assert_eq!(got, Received::Icmp(want), "reply of {len}");
        assert_eq!(
            (
                us.stats().icmp_rx_echo_requests,
                us.stats().icmp_tx_echo_replies
            ),
            (1, 1)
        );
    }
}

#[test]
fn echo_to_broadcast_is_not_answered() {
    let mut us = us();
    let request =
        header(PEER, Ipv4Addr::new(192, 0, 2, 255), IpProtocol::Icmp).to_bytes(&echo_request(8));
    let got = us.receive(Instant::now(), &request);
    assert_eq!(got, Received::Dropped(DropReason::EchoIgnored));
    assert_eq!(us.stats().icmp_echo_ignored, 1);
}

#[test]
fn echo_not_answered_when_disabled() {
    let config = Ipv4Config {
        answer_echo: false,
        ..Ipv4Config::new("192.0.2.2/24".parse().unwrap())
    };
    let mut us = Ipv4Endpoint::new(config, IdentGenerator::new());
    let request = header(PEER, US, IpProtocol::Icmp).to_bytes(&echo_request(8));
    assert_eq!(
        us.receive(Instant::now(), &request),
        Received::Dropped(DropReason::EchoIgnored)
    );
}

#[test]
fn unfragmented_datagram_is_delivered_in_place_without_padding() {
    let mut us = us();
    let mut packet = udp_to(US, b"hello");
    packet.extend_from_slice(&[0; 20]); // Ethernet padding
    match us.receive(Instant::now(), &packet) {
        Received::Deliver { header, payload } => {
            assert_eq!(payload, Payload::InPlace(20..25));
            assert_eq!(payload.bytes(&packet), b"hello");
            assert_eq!(
                (header.src, header.protocol, header.payload_len),
                (PEER, IpProtocol::Udp, 5)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(us.stats().rx_delivered, 1);
}

#[test]
fn fragmented_datagram_is_delivered_owned() {
    let (mut us, mut peer) = (us(), peer());
    let now = Instant::now();
    let out = peer
        .send(
            now,
            US,
            IpProtocol::Udp,
            &data(3000),
            SendOptions::default(),
        )
        .unwrap();
    match feed(&mut us, now, &out.packets) {
        Received::Deliver { header, payload } => {
            assert_eq!(payload, Payload::Owned(data(3000)));
            assert_eq!((header.payload_len, header.more_frags), (3000, false));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(us.stats().reassembly.reassembled, 1);
}

#[test]
fn malformed_packets_are_dropped_and_counted_by_cause() {
    let mut us = us();
    let now = Instant::now();
    let good = udp_to(US, b"x");
    let mut bad_version = good.clone();
    bad_version[0] = 0x65;
    let mut bad_checksum = good.clone();
    bad_checksum[8] ^= 1;
    let mut short_total = good.clone();
    short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
    let mut bad_ihl = good.clone();
    bad_ihl[0] = 0x4f;
    for (p, e) in [
        (&good[..10], WireError::Truncated),
        (&bad_version[..], WireError::BadVersion),
        (&bad_checksum[..], WireError::BadChecksum),
        (&short_total[..], WireError::BadTotalLength),
        (&bad_ihl[..], WireError::BadHeaderLength),
    ] {
        assert_eq!(
            us.receive(now, p),
            Received::Dropped(DropReason::Malformed(e))
        );
    }
    let s = us.stats();
    assert_eq!(
        (
            s.rx_truncated,
            s.rx_bad_version,
            s.rx_bad_checksum,
            s.rx_bad_total_len,
            s.rx_bad_header_len
        ),
        (1, 1, 1, 1, 1)
    );
    assert_eq!(s.rx_packets, 5);
}

#[test]
fn packets_for_other_hosts_are_not_for_us() {
    let mut us = us();
    let now = Instant::now();
    for dst in [
        Ipv4Addr::new(192, 0, 2, 3),
        FAR,
        Ipv4Addr::new(224, 0, 0, 1),
    ] {
        assert_eq!(
            us.receive(now, &udp_to(dst, b"x")),
            Received::Dropped(DropReason::NotForUs)
        );
    }
    assert_eq!(us.stats().rx_not_for_us, 3);
    // Both broadcasts are ours.
    for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(192, 0, 2, 255)] {
        assert!(matches!(
            us.receive(now, &udp_to(dst, b"x")),
            Received::Deliver { .. }
        ));
    }
}

#[test]
fn martian_source_is_dropped() {
    let mut us = us();
    let martians = [
        Ipv4Addr::BROADCAST,
        Ipv4Addr::new(192, 0, 2, 255),
        Ipv4Addr::new(224, 0, 0, 5),
        Ipv4Addr::new(240, 0, 0, 1),
        Ipv4Addr::LOCALHOST,
        US,
    ];
    for src in martians {
        let p = header(src, US, IpProtocol::Udp).to_bytes(b"x");
        assert_eq!(
            us.receive(Instant::now(), &p),
            Received::Dropped(DropReason::BadSource)
        );
    }
    assert_eq!(us.stats().rx_bad_source, 6);
}

/// (type, code, quoted header, quoted data) of the single ICMP error in `out`.
fn parse_error(out: &Outgoing) -> (u8, u8, Ipv4Repr, Vec<u8>) {
    let icmp = icmp_of(out);
    let p = Icmpv4Packet::new_checked(&icmp[..]).unwrap();
    assert!(p.verify_checksum());
    let (h, d) = Ipv4Repr::parse_quoted(p.data()).unwrap();
    (p.msg_type(), p.code(), h, d.to_vec())
}

#[test]
fn unsupported_protocol_draws_protocol_unreachable() {
    let mut us = us();
    let original = header(PEER, US, IpProtocol::Unknown(99)).to_bytes(&data(12));
    let out = responded(us.receive(Instant::now(), &original));
    assert_eq!(out.next_hop, PEER);
    let (t, c, h, d) = parse_error(&out);
    assert_eq!((t, c), (msg_type::DST_UNREACHABLE, 2));
    assert_eq!(
        (h.protocol, h.ident, h.payload_len),
        (IpProtocol::Unknown(99), 99, 12)
    );
    assert_eq!(d, data(12));
    assert_eq!(
        (
            us.stats().rx_unsupported_protocol,
            us.stats().icmp_tx_errors
        ),
        (1, 1)
    );
}

#[test]
fn set_supported_switches_delivery_and_unreachable() {
    let mut us = us();
    let now = Instant::now();
    us.set_supported(IpProtocol::Unknown(99), true);
    let other = header(PEER, US, IpProtocol::Unknown(99)).to_bytes(b"x");
    assert!(matches!(us.receive(now, &other), Received::Deliver { .. }));
    us.set_supported(IpProtocol::Udp, false);
    let (t, c, ..) = parse_error(&responded(us.receive(now, &udp_to(US, b"x"))));
    assert_eq!((t, c), (msg_type::DST_UNREACHABLE, 2));
}

#[test]
fn no_protocol_unreachable_about_a_broadcast() {
    let mut us = us();
    let p = header(PEER, Ipv4Addr::new(192, 0, 2, 255), IpProtocol::Unknown(99)).to_bytes(b"x");
    assert_eq!(
        us.receive(Instant::now(), &p),
        Received::Dropped(DropReason::UnsupportedProtocol)
    );
    assert_eq!(us.stats().icmp_suppressed_broadcast, 1);
}

#[test]
fn port_unreachable_quotes_header_and_up_to_528_bytes() {
    let mut us = us();
    let now = Instant::now();
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    let out = us.icmp_error(now, &udp_to(US, &data(1000)), kind).unwrap();
    assert_eq!(out.packets[0].len(), 576);
    let (t, c, h, d) = parse_error(&out);
    assert_eq!((t, c, h.src, h.dst, h.payload_len), (3, 3, PEER, US, 1000));
    assert_eq!(d, data(528));
    // A short datagram is quoted whole.
    let out = us.icmp_error(now, &udp_to(US, &data(8)), kind).unwrap();
    assert_eq!(parse_error(&out).3, data(8));
}

#[test]
fn no_error_about_an_icmp_error() {
    let mut us = us();
    let quoted = header(US, FAR, IpProtocol::Udp);
    let unreachable = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::PortUnreachable,
        header: quoted,
        data: &[0; 8],
    };
    let original = header(PEER, US, IpProtocol::Icmp).to_bytes(&unreachable.to_bytes());
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::ProtocolUnreachable);
    assert_eq!(us.icmp_error(Instant::now(), &original, kind), None);
    assert_eq!(us.stats().icmp_suppressed_about_icmp_error, 1);
}

#[test]
fn no_error_about_a_non_first_fragment() {
    let mut us = us();
    let frag = Ipv4Repr {
        frag_offset: 1480,
        ..header(PEER, US, IpProtocol::Udp)
    };
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    assert_eq!(
        us.icmp_error(Instant::now(), &frag.to_bytes(&data(8)), kind),
        None
    );
    assert_eq!(us.stats().icmp_suppressed_fragment, 1);
}

#[test]
fn icmp_error_about_garbage_is_counted() {
    let mut us = us();
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    assert_eq!(us.icmp_error(Instant::now(), &[0x45, 0], kind), None);
    assert_eq!(us.stats().icmp_bad_original, 1);
}

#[test]
fn icmp_errors_are_rate_limited() {
    let mut config = Ipv4Config::new("192.0.2.2/24".parse().unwrap());
    config.icmp_rate = IcmpRateConfig {
        burst: 2,
        per_second: 10,
        ..IcmpRateConfig::default()
    };
    let mut us = Ipv4Endpoint::new(config, IdentGenerator::new());
    let now = Instant::now();
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    let original = udp_to(US, b"12345678");
    let sent = (0..5)
        .filter(|_| us.icmp_error(now, &original, kind).is_some())
        .count();
    // A burst of 2 plus a jitter of up to half of it.
    assert!((2..=3).contains(&sent), "{sent}");
    assert_eq!(sent as u64 + us.stats().icmp_rate_limited, 5);
    // 10/s (up to 15/s with the jitter): one more after 100 ms.
    assert!(us
        .icmp_error(now + Duration::from_millis(100), &original, kind)
        .is_some());
}

#[test]
fn icmp_errors_to_one_destination_prefix_are_limited_apart_and_counted() {
    let mut config = Ipv4Config::new("192.0.2.2/24".parse().unwrap());
    config.gateway = Some(PEER);
    config.icmp_seed = 1;
    config.icmp_rate = IcmpRateConfig {
        per_destination_burst: 3,
        ..IcmpRateConfig::default()
    };
    let mut us = Ipv4Endpoint::new(config, IdentGenerator::new());
    let now = Instant::now();
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    let from_peer = udp_to(US, b"12345678");
    let from_far = header(FAR, US, IpProtocol::Udp).to_bytes(b"12345678");
    let sent = (0..10)
        .filter(|_| us.icmp_error(now, &from_peer, kind).is_some())
        .count();
    assert_eq!(sent, 3);
    assert_eq!(us.stats().icmp_rate_limited_destination, 7);
    assert_eq!(us.stats().icmp_rate_limited, 0);
    // Another /24 has its own bucket.
    let sent = (0..10)
        .filter(|_| us.icmp_error(now, &from_far, kind).is_some())
        .count();
    assert_eq!(sent, 3);
    assert_eq!(us.stats().icmp_rate_limited_destination, 14);
}

#[test]
fn reassembly_timeout_sends_time_exceeded_only_with_first_fragment() {
    let (mut us, mut peer) = (us(), peer());
    let t0 = Instant::now();
    let a = peer
        .send(t0, US, IpProtocol::Udp, &data(3000), SendOptions::default())
        .unwrap();
    let b = peer
        .send(t0, US, IpProtocol::Udp, &data(3000), SendOptions::default())
        .unwrap();
    assert_eq!(us.receive(t0, &a.packets[0]), Received::Held); // first fragment
    assert_eq!(us.receive(t0, &b.packets[1]), Received::Held); // a middle one
    let deadline = us.poll_deadline().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));
    assert_eq!(us.on_timeout(deadline - Duration::from_millis(1)), vec![]);
    let out = us.on_timeout(deadline);
    assert_eq!(out.len(), 1);
    let (t, c, h, d) = parse_error(&out[0]);
    assert_eq!(
        (t, c, h.more_frags, h.frag_offset),
        (msg_type::TIME_EXCEEDED, 1, true, 0)
    );
    assert_eq!(d, data(528));
    assert_eq!(us.poll_deadline(), None);
    assert_eq!(
        (us.stats().reassembly.timeouts, us.stats().icmp_tx_errors),
        (2, 1)
    );
}

#[test]
fn overlapping_fragments_through_the_endpoint_are_dropped() {
    let mut us = us();
    let now = Instant::now();
    let f = |off, more, len| {
        Ipv4Repr {
            frag_offset: off,
            more_frags: more,
            ..header(PEER, US, IpProtocol::Udp)
        }
        .to_bytes(&data(len))
    };
    assert_eq!(us.receive(now, &f(0, true, 16)), Received::Held);
    assert_eq!(
        us.receive(now, &f(8, false, 16)),
        Received::Dropped(DropReason::Reassembly(ReassemblyDrop::Overlap))
    );
    assert_eq!(us.stats().reassembly.overlaps, 1);
}

#[test]
fn send_fragments_and_reports_errors() {
    let mut us = us();
    let now = Instant::now();
    let opts = SendOptions::default();
    let out = us
        .send(now, FAR, IpProtocol::Udp, &data(1481), opts)
        .unwrap();
    assert_eq!((out.next_hop, out.packets.len()), (PEER, 2));
    let df = SendOptions {
        dont_frag: true,
        ..opts
    };
    assert_eq!(
        us.send(now, FAR, IpProtocol::Udp, &data(1481), df),
        Err(SendError::MessageTooLong { mtu: 1500 })
    );
    assert_eq!(
        us.send(now, FAR, IpProtocol::Udp, &data(1480), df)
            .unwrap()
            .packets
            .len(),
        1
    );
    assert_eq!(
        us.send(now, FAR, IpProtocol::Udp, &data(65516), opts),
        Err(SendError::PayloadTooLarge)
    );
    let s = us.stats();
    assert_eq!(
        (
            s.tx_datagrams,
            s.tx_packets,
            s.tx_fragmented,
            s.tx_message_too_long,
            s.tx_payload_too_large
        ),
        (2, 3, 1, 1, 1)
    );
}

#[test]
fn send_in_place_writes_the_header_a_whole_send_would_and_never_fragments() {
    let mut a = us();
    let mut b = us();
    let payload = [7u8; 100];
    let opts = SendOptions {
        dont_frag: true,
        ..SendOptions::default()
    };
    let whole = a
        .send(Instant::now(), PEER, IpProtocol::Tcp, &payload, opts)
        .unwrap();
    let mut buf = vec![0u8; HEADER_LEN];
    buf.extend_from_slice(&payload);
    let hop = b
        .send_in_place(Instant::now(), PEER, IpProtocol::Tcp, &mut buf, opts)
        .unwrap();
    assert_eq!(hop, whole.next_hop);
    assert_eq!(whole.packets.len(), 1);
    // The same generator key and state: the same identification, so the same bytes.
    assert_eq!(buf, whole.packets[0]);
    let mut big = vec![0u8; HEADER_LEN + 1500];
    assert_eq!(
        b.send_in_place(Instant::now(), PEER, IpProtocol::Tcp, &mut big, opts),
        Err(SendError::MessageTooLong { mtu: 1500 })
    );
    // With segmentation offload the device cuts it up: a datagram up to 64 KiB goes whole.
    let tso = SendOptions {
        segmentation_offload: true,
        ..opts
    };
    let mut large = vec![0u8; 65535];
    assert!(b
        .send_in_place(Instant::now(), PEER, IpProtocol::Tcp, &mut large, tso)
        .is_ok());
    assert_eq!(u16::from_be_bytes([large[2], large[3]]), 65535);
}

#[test]
fn send_without_route_is_no_route() {
    let mut lonely = endpoint_at("192.0.2.2/24", None);
    let got = lonely.send(
        Instant::now(),
        FAR,
        IpProtocol::Udp,
        b"x",
        SendOptions::default(),
    );
    assert_eq!(got, Err(SendError::NoRoute));
    assert_eq!(lonely.stats().tx_no_route, 1);
    let on_link = lonely.send(
        Instant::now(),
        PEER,
        IpProtocol::Udp,
        b"x",
        SendOptions::default(),
    );
    assert_eq!(on_link.unwrap().next_hop, PEER);
}

#[test]
fn sent_datagram_carries_options_and_our_address() {
    let mut us = us();
    let opts = SendOptions {
        ttl: Some(5),
        dont_frag: true,
        dscp_ecn: 0xb8,
        segmentation_offload: false,
    };
    let out = us
        .send(Instant::now(), PEER, IpProtocol::Tcp, b"abc", opts)
        .unwrap();
    let p = Ipv4Packet::new_checked(&out.packets[0][..]).unwrap();
    let h = Ipv4Repr::parse(&p, true).unwrap();
    assert_eq!(
        (h.src, h.dst, h.ttl, h.dont_frag, h.dscp_ecn),
        (US, PEER, 5, true, 0xb8)
    );
    assert_eq!(p.payload(), b"abc");
}

fn icmp_error_from(reporter: Ipv4Addr, quoted_src: Ipv4Addr) -> Vec<u8> {
    let quoted = Ipv4Repr {
        payload_len: 100,
        ..header(quoted_src, FAR, IpProtocol::Udp)
    };
    let msg = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::FragRequired { next_hop_mtu: 1280 },
        header: quoted,
        data: &[1, 2, 3, 4, 5, 6, 7, 8],
    };
    header(reporter, US, IpProtocol::Icmp).to_bytes(&msg.to_bytes())
}

#[test]
fn icmp_error_about_our_datagram_goes_up() {
    let mut us = us();
    let got = us.receive(Instant::now(), &icmp_error_from(PEER, US));
    let want = IcmpEvent::Error {
        reporter: PEER,
        kind: IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 1280 }),
        header: Ipv4Repr {
            payload_len: 100,
            ..header(US, FAR, IpProtocol::Udp)
        },
        data: vec![1, 2, 3, 4, 5, 6, 7, 8],
    };
    assert_eq!(got, Received::Icmp(want));
    assert_eq!(us.stats().icmp_rx_errors, 1);
}

#[test]
fn icmp_error_about_someone_elses_datagram_is_dropped() {
    let mut us = us();
    let got = us.receive(
        Instant::now(),
        &icmp_error_from(PEER, Ipv4Addr::new(192, 0, 2, 9)),
    );
    assert_eq!(got, Received::Dropped(DropReason::IcmpNotOurs));
    assert_eq!(us.stats().icmp_rx_not_ours, 1);
}

#[test]
fn malformed_icmp_is_counted() {
    let mut us = us();
    let mut msg = echo_request(8);
    msg[9] ^= 1;
    let got = us.receive(
        Instant::now(),
        &header(PEER, US, IpProtocol::Icmp).to_bytes(&msg),
    );
    assert_eq!(
        got,
        Received::Dropped(DropReason::IcmpMalformed(WireError::BadChecksum))
    );
    let got = us.receive(
        Instant::now(),
        &header(PEER, US, IpProtocol::Icmp).to_bytes(&[8, 0]),
    );
    assert_eq!(
        got,
        Received::Dropped(DropReason::IcmpMalformed(WireError::Truncated))
    );
    assert_eq!(
        (
            us.stats().icmp_rx_bad_checksum,
            us.stats().icmp_rx_truncated
        ),
        (1, 1)
    );
}

#[test]
fn shard_key_is_the_same_for_all_fragments_of_a_datagram() {
    let mut peer = peer();
    let out = peer
        .send(
            Instant::now(),
            US,
            IpProtocol::Udp,
            &data(5000),
            SendOptions::default(),
        )
        .unwrap();
    let keys: Vec<u64> = out.packets.iter().map(|p| shard_key(p)).collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    let other = peer
        .send(
            Instant::now(),
            US,
            IpProtocol::Udp,
            &data(5000),
            SendOptions::default(),
        )
        .unwrap();
    assert_ne!(shard_key(&other.packets[0]), keys[0]);
    for len in 0..25 {
        shard_key(&vec![0xff; len]);
    }
}

#[test]
fn stats_add_sums_every_counter() {
    let mut a = Ipv4Stats {
        rx_packets: 1,
        tx_no_route: 2,
        ..Default::default()
    };
    a.reassembly.timeouts = 3;
    let mut total = a;
    total.add(&a);
    assert_eq!(
        (
            total.rx_packets,
            total.tx_no_route,
            total.reassembly.timeouts
        ),
        (2, 4, 6)
    );
}

#[test]
fn fragments_with_link_padding_reassemble() {
    let (mut us, mut peer) = (us(), peer());
    let now = Instant::now();
    let mut out = peer.send(
        now,
        US,
        IpProtocol::Udp,
        &data(1500),
        SendOptions::default(),
    );
    let packets = &mut out.as_mut().unwrap().packets;
    packets[1].extend_from_slice(&[0xee; 30]);
    let got = feed(&mut us, now, packets);
    assert!(matches!(got, Received::Deliver { payload: Payload::Owned(p), .. } if p == data(1500)));
}

#[test]
fn port_unreachable_about_a_reassembled_datagram() {
    let (mut us, mut peer) = (us(), peer());
    let now = Instant::now();
    let out = peer.send(
        now,
        US,
        IpProtocol::Udp,
        &data(3000),
        SendOptions::default(),
    );
    let Received::Deliver { header, payload } = feed(&mut us, now, &out.unwrap().packets) else {
        panic!("not delivered")
    };
    let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
    let err = us
        .icmp_error_about(now, &header, payload.bytes(&[]), kind)
        .unwrap();
    let (t, c, h, d) = parse_error(&err);
    assert_eq!((t, c, h.payload_len, h.more_frags), (3, 3, 3000, false));
    assert_eq!(d, data(528));
}

#[test]
fn echo_reply_keeps_dscp_but_not_ecn() {
    let mut us = us();
    let request = Ipv4Repr {
        dscp_ecn: 0xb9,
        ..header(PEER, US, IpProtocol::Icmp)
    };
    let reply = responded(us.receive(Instant::now(), &request.to_bytes(&echo_request(8))));
    assert_eq!(
        Ipv4Packet::new_checked(&reply.packets[0][..])
            .unwrap()
            .dscp_ecn(),
        0xb8
    );
}

#[test]
fn port_and_protocol_unreachable_are_hard_connection_refused() {
    // RFC 1122 §4.2.3.9: codes 2 and 3 are hard errors; std on Linux says ECONNREFUSED.
    for reason in [
        DstUnreachable::PortUnreachable,
        DstUnreachable::ProtocolUnreachable,
    ] {
        assert_eq!(
            IcmpErrorKind::DstUnreachable(reason).socket_error(),
            SocketIcmpError::Error {
                kind: io::ErrorKind::ConnectionRefused,
                hard: true
            },
            "{reason:?}"
        );
    }
}

#[test]
fn network_unreachable_and_unknown_network_are_soft_network_unreachable() {
    for reason in [
        DstUnreachable::NetUnreachable,
        DstUnreachable::DstNetUnknown,
    ] {
        assert_eq!(
            IcmpErrorKind::DstUnreachable(reason).socket_error(),
            SocketIcmpError::Error {
                kind: io::ErrorKind::NetworkUnreachable,
                hard: false
            },
            "{reason:?}"
        );
    }
}

#[test]
fn other_unreachable_codes_and_ttl_exceeded_are_soft_host_unreachable() {
    let kinds = [
        IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
        IcmpErrorKind::DstUnreachable(DstUnreachable::SourceRouteFailed),
        IcmpErrorKind::DstUnreachable(DstUnreachable::DstHostUnknown),
        IcmpErrorKind::DstUnreachable(DstUnreachable::AdminProhibited),
        IcmpErrorKind::DstUnreachable(DstUnreachable::Other(15)),
        IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded),
    ];
    for k in kinds {
        assert_eq!(
            k.socket_error(),
            SocketIcmpError::Error {
                kind: io::ErrorKind::HostUnreachable,
                hard: false
            },
            "{k:?}"
        );
    }
}

#[test]
fn fragmentation_needed_is_path_mtu_news_and_reassembly_timeout_is_nothing() {
    // RFC 1191 §4: the next-hop MTU, not an error for the socket.
    let k = IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 1280 });
    assert_eq!(
        k.socket_error(),
        SocketIcmpError::PathMtu { next_hop_mtu: 1280 }
    );
    let k = IcmpErrorKind::TimeExceeded(TimeExceeded::FragReassembly);
    assert_eq!(k.socket_error(), SocketIcmpError::Nothing);
}

#[test]
fn undeliverable_datagram_is_reported_as_host_unreachable_with_8_quoted_bytes() {
    let mut us = us();
    let udp = data(40);
    let sent = us
        .send(
            Instant::now(),
            FAR,
            IpProtocol::Udp,
            &udp,
            SendOptions::default(),
        )
        .unwrap();
    let got = us.local_unreachable(&sent.packets[0]).unwrap();
    let header = Ipv4Repr::parse(
        &Ipv4Packet::new_checked(&sent.packets[0][..]).unwrap(),
        true,
    )
    .unwrap();
    assert_eq!(
        got,
        LocalUnreachable::Transport {
            kind: IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
            header,
            data: udp[..8].to_vec(),
        }
    );
}

#[test]
fn undeliverable_short_datagram_quotes_what_there_is() {
    let us = us();
    let p = header(US, FAR, IpProtocol::Udp).to_bytes(&[1, 2, 3]);
    match us.local_unreachable(&p) {
        Some(LocalUnreachable::Transport { data, .. }) => assert_eq!(data, [1, 2, 3]),
        other => panic!("expected a transport report, got {other:?}"),
    }
}

#[test]
fn undeliverable_echo_request_is_reported_to_its_pinger() {
    let mut us = us();
    let sent = us
        .send(
            Instant::now(),
            FAR,
            IpProtocol::Icmp,
            &echo_request(56),
            SendOptions::default(),
        )
        .unwrap();
    assert_eq!(
        us.local_unreachable(&sent.packets[0]),
        Some(LocalUnreachable::Echo {
            dst: FAR,
            ident: 0x77,
            seq_no: 3
        })
    );
}

#[test]
fn undeliverable_non_first_fragment_garbage_or_icmp_error_is_not_reported() {
    let mut us = us();
    let sent = us
        .send(
            Instant::now(),
            FAR,
            IpProtocol::Udp,
            &data(3000),
            SendOptions::default(),
        )
        .unwrap();
    assert_eq!(sent.packets.len(), 3);
    assert!(us.local_unreachable(&sent.packets[0]).is_some());
    assert_eq!(us.local_unreachable(&sent.packets[1]), None);
    assert_eq!(us.local_unreachable(&[0x45, 0, 0]), None);
    assert_eq!(us.local_unreachable(&[]), None);
    // An ICMP error of ours that went nowhere: nobody to tell.
    let icmp = Icmpv4Repr::DstUnreachable {
        reason: DstUnreachable::PortUnreachable,
        header: header(FAR, US, IpProtocol::Udp),
        data: &[0; 8],
    }
    .to_bytes();
    let p = header(US, FAR, IpProtocol::Icmp).to_bytes(&icmp);
    assert_eq!(us.local_unreachable(&p), None);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic_receive(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
            let mut us = us();
            let now = Instant::now();
            us.receive(now, &bytes);
            us.local_unreachable(&bytes);
            shard_key(&bytes);
            us.on_timeout(now + Duration::from_secs(60));
            prop_assert_eq!(us.stats().rx_packets, 1);
        }

        /// Valid headers with random bytes flipped reach the deeper paths (ICMP, reassembly).
        #[test]
        fn mutated_packets_never_panic_receive(
            protocol in prop_oneof![Just(1u8), Just(6), Just(17), any::<u8>()],
            body in proptest::collection::vec(any::<u8>(), 0..200),
            flips in proptest::collection::vec((0usize..220, any::<u8>()), 0..4),
            frag in (any::<bool>(), 0u16..8192),
        ) {
            let mut us = us();
            let h = Ipv4Repr {
                more_frags: frag.0,
                frag_offset: frag.1 * 8,
                ..header(PEER, US, IpProtocol::from(protocol))
            };
            let mut p = h.to_bytes(&body);
            for (at, v) in flips {
                if let Some(b) = p.get_mut(at) {
                    *b = v;
                }
            }
            let now = Instant::now();
            us.receive(now, &p);
            let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
            us.icmp_error(now, &p, kind);
            us.on_timeout(now + Duration::from_secs(31));
        }
    }
}
