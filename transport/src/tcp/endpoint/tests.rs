//! Endpoint tests: demultiplexing, listeners, SYN cookies, RSTs for closed ports, ICMP.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::*;
use crate::tcp::segment::{Checksum, TcpPacket};
use crate::tcp::testing::pump;
use netstack_network::wire::DstUnreachable;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn t0() -> Instant {
    thread_local!(static T: Instant = Instant::now());
    T.with(|t| *t)
}

fn server_addr() -> SocketAddrV4 {
    SocketAddrV4::new(B, 80)
}

fn tuple(port: u16) -> FourTuple {
    FourTuple {
        local: SocketAddrV4::new(A, port),
        remote: server_addr(),
    }
}

fn ep() -> Endpoint {
    Endpoint::new(TcpConfig::default(), [9; 16])
}

type Wire = Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>;

fn out(e: &mut Endpoint, now: Instant) -> Wire {
    let mut v = Vec::new();
    e.poll_transmit(now, &mut v);
    v
}

fn parse(bytes: &[u8]) -> TcpRepr {
    let p = TcpPacket::new_checked(bytes).unwrap();
    TcpRepr::parse(&p, A, B, Checksum::Ignore).unwrap()
}

fn events(e: &mut Endpoint) -> Vec<TcpEvent> {
    std::iter::from_fn(|| e.poll_event()).collect()
}

/// Two endpoints with one established connection: (client, server, client id, server id).
fn connected_pair() -> (Endpoint, Endpoint, ConnId, ConnId) {
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 8, SocketOptions::default())
        .unwrap();
    let id = a
        .connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    let sid = accepted_id(&mut b);
    (a, b, id, sid)
}

/// The id of the single `Accepted` event `e` has queued.
fn accepted_id(e: &mut Endpoint) -> ConnId {
    match events(e).as_slice() {
        [TcpEvent::Accepted { id, .. }] => *id,
        other => panic!("expected one Accepted event, got {other:?}"),
    }
}

#[test]
fn handshake_data_and_close_between_two_endpoints() {
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 8, SocketOptions::default())
        .unwrap();
    let id = a
        .connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    assert_eq!(events(&mut a), vec![TcpEvent::Connected(id)]);
    let sid = match events(&mut b).as_slice() {
        [TcpEvent::Accepted { listener, id }] => {
            assert_eq!(*listener, server_addr());
            *id
        }
        e => panic!("{e:?}"),
    };
    assert_eq!(a.send(id, b"ping").unwrap(), 4);
    pump(&mut a, &mut b, t0());
    assert_eq!(events(&mut b), vec![TcpEvent::Readable(sid)]);
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(sid, &mut buf).unwrap(), 4);
    assert_eq!(&buf[..4], b"ping");
    a.close(id);
    pump(&mut a, &mut b, t0());
    assert_eq!(b.recv(sid, &mut buf), Ok(0));
    b.close(sid);
    pump(&mut a, &mut b, t0());
    // The active closer holds TIME-WAIT; the passive side is gone.
    assert_eq!(b.connection_count(), 0);
    assert_eq!(a.connection_count(), 1);
    a.on_timeout(t0() + Duration::from_secs(61));
    assert_eq!(a.connection_count(), 0);
}

#[test]
fn segment_to_a_closed_port_draws_rst() {
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    let (mut a, mut b) = (ep(), ep());
    a.connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    let syn = out(&mut a, t0()).remove(0);
    b.on_segment(t0(), syn.0, syn.1, &syn.2);
    let w = out(&mut b, t0());
    assert_eq!(w.len(), 1);
    let r = parse(&w[0].2);
    assert_eq!(r.flags, Flags::RST | Flags::ACK);
    assert_eq!(r.ack, parse(&syn.2).seq + 1);
    assert_eq!(b.stats().endpoint.rst_sent_no_socket, 1);
    // And the client hears "refused".
    a.on_segment(t0(), w[0].0, w[0].1, &w[0].2);
    assert!(matches!(
        events(&mut a).as_slice(),
        [TcpEvent::Closed(_, Some(TcpError::ConnectionRefused))]
    ));
}

#[test]
fn ack_to_a_closed_port_draws_rst_with_its_ack_number() {
    let mut b = ep();
    let seg = TcpRepr {
        src_port: 1234,
        dst_port: 99,
        seq: SeqNumber(5),
        ack: SeqNumber(777),
        flags: Flags::ACK,
        ..TcpRepr::default()
    };
    b.on_segment(t0(), A, B, &seg.to_bytes(A, B, &[]));
    let r = parse(&out(&mut b, t0())[0].2);
    assert_eq!((r.flags, r.seq), (Flags::RST, SeqNumber(777)));
}

#[test]
fn rst_to_a_closed_port_is_never_answered() {
    let mut b = ep();
    let seg = TcpRepr {
        src_port: 1234,
        dst_port: 99,
        flags: Flags::RST,
        ..TcpRepr::default()
    };
    b.on_segment(t0(), A, B, &seg.to_bytes(A, B, &[]));
    assert!(out(&mut b, t0()).is_empty());
    assert_eq!(b.stats().endpoint.rst_ignored_no_socket, 1);
}

#[test]
fn corrupted_segment_is_dropped_and_counted() {
    let mut b = ep();
    let seg = TcpRepr {
        src_port: 1234,
        dst_port: 99,
        flags: Flags::SYN,
        ..TcpRepr::default()
    };
    let mut bytes = seg.to_bytes(A, B, &[]);
    bytes[4] ^= 1;
    b.on_segment(t0(), A, B, &bytes);
    b.on_segment(t0(), A, B, &bytes[..10]);
    assert!(out(&mut b, t0()).is_empty());
    assert_eq!(b.stats().endpoint.dropped_bad_checksum, 1);
    assert_eq!(b.stats().endpoint.dropped_too_short, 1);
}

#[test]
fn listen_twice_on_one_address_is_addr_in_use() {
    let mut b = ep();
    b.listen(server_addr(), 1, SocketOptions::default())
        .unwrap();
    assert_eq!(
        b.listen(server_addr(), 1, SocketOptions::default()),
        Err(TcpError::AddrInUse)
    );
    let mut a = ep();
    a.connect(t0(), tuple(1), SocketOptions::default()).unwrap();
    assert_eq!(
        a.connect(t0(), tuple(1), SocketOptions::default()),
        Err(TcpError::AddrInUse)
    );
}

#[test]
fn wildcard_listener_accepts_on_any_local_address() {
    let (mut a, mut b) = (ep(), ep());
    b.listen(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80),
        8,
        SocketOptions::default(),
    )
    .unwrap();
    a.connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    assert!(matches!(
        events(&mut b).as_slice(),
        [TcpEvent::Accepted { .. }]
    ));
}

#[test]
fn syn_cookie_connection_completes_after_the_syn_queue_overflowed() {
    // RFC 4987 §3.6
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 1, SocketOptions::default())
        .unwrap();
    // First SYN fills the one-entry SYN queue; its handshake is left hanging.
    a.connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    let syn1 = out(&mut a, t0()).remove(0);
    b.on_segment(t0(), syn1.0, syn1.1, &syn1.2);
    out(&mut b, t0());
    // The second gets a cookie: the server keeps no state for it.
    let id = a
        .connect(t0(), tuple(40001), SocketOptions::default())
        .unwrap();
    let syn2 = out(&mut a, t0()).remove(0);
    b.on_segment(t0(), syn2.0, syn2.1, &syn2.2);
    assert_eq!(b.connection_count(), 1);
    assert_eq!(b.stats().endpoint.syn_cookies_sent, 1);
    let synack = out(&mut b, t0()).remove(0);
    let r = parse(&synack.2);
    assert_eq!(r.mss, Some(1460));
    assert!(r.sack_permitted && r.timestamp.is_some() && r.window_scale.is_some());
    a.on_segment(t0(), synack.0, synack.1, &synack.2);
    a.send(id, b"hello").unwrap();
    pump(&mut a, &mut b, t0() + Duration::from_millis(1));
    assert_eq!(b.stats().endpoint.syn_cookies_accepted, 1);
    let sid = match events(&mut b).as_slice() {
        [TcpEvent::Accepted { id, .. }, TcpEvent::Readable(_)] => *id,
        e => panic!("{e:?}"),
    };
    let mut buf = [0u8; 8];
    assert_eq!(b.recv(sid, &mut buf).unwrap(), 5);
    assert_eq!(
        b.connection(sid).unwrap().options_enabled(),
        crate::tcp::connection::EnabledOptions {
            window_scaling: true,
            timestamps: true,
            sack: true
        }
    );
}

#[test]
fn forged_cookie_ack_is_dropped_while_cookies_are_in_use() {
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 1, SocketOptions::default())
        .unwrap();
    a.connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    let syn1 = out(&mut a, t0()).remove(0);
    b.on_segment(t0(), syn1.0, syn1.1, &syn1.2);
    let syn = TcpRepr {
        src_port: 5,
        dst_port: 80,
        seq: SeqNumber(1),
        flags: Flags::SYN,
        ..TcpRepr::default()
    };
    b.on_segment(t0(), A, B, &syn.to_bytes(A, B, &[]));
    out(&mut b, t0());
    let ack = TcpRepr {
        src_port: 5,
        dst_port: 80,
        seq: SeqNumber(2),
        ack: SeqNumber(12345),
        flags: Flags::ACK,
        ..TcpRepr::default()
    };
    b.on_segment(t0(), A, B, &ack.to_bytes(A, B, &[]));
    assert_eq!(b.stats().endpoint.syn_cookies_rejected, 1);
    assert!(out(&mut b, t0()).is_empty());
    assert_eq!(b.connection_count(), 1);
}

#[test]
fn full_accept_queue_drops_new_syns() {
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 1, SocketOptions::default())
        .unwrap();
    a.connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    a.connect(t0(), tuple(40001), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    assert_eq!(b.stats().endpoint.accept_queue_overflows, 1);
    // Taking the first frees the queue; the SYN retransmission then succeeds.
    let sid = accepted_id(&mut b);
    b.accepted(sid);
    let t1 = t0() + Duration::from_secs(1);
    a.on_timeout(t1);
    pump(&mut a, &mut b, t1);
    assert!(matches!(
        events(&mut b).as_slice(),
        [TcpEvent::Accepted { .. }]
    ));
}

#[test]
fn a_shared_accept_queue_refreshed_before_the_runtime_took_the_accepts_stays_bounded() {
    // The runtime refreshes the count from its shared queue once per batch of segments, but
    // pushes accepted connections into that queue only after several batches: a refresh in
    // between must not forget the accepts this endpoint announced and nobody took yet.
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 2, SocketOptions::default())
        .unwrap();
    for port in 40000..40005 {
        b.set_accept_queue(server_addr(), 0);
        a.connect(t0(), tuple(port), SocketOptions::default())
            .unwrap();
        pump(&mut a, &mut b, t0());
    }
    let accepted = events(&mut b)
        .iter()
        .filter(|e| matches!(e, TcpEvent::Accepted { .. }))
        .count();
    assert_eq!(accepted, 2, "the backlog is 2");
    assert_eq!(b.stats().endpoint.accept_queue_overflows, 3);
    // Once the runtime pushed them, its count is the whole truth: taking them (the runtime's
    // `accepted` calls) does not count them off a second time.
    b.set_accept_queue(server_addr(), 2);
    for id in b.ids() {
        b.accepted(id);
    }
    a.connect(t0(), tuple(40010), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t0());
    assert!(events(&mut b).is_empty(), "the shared queue is still full");
}

#[test]
fn new_syn_reopens_a_time_wait_tuple() {
    // RFC 6191: a SYN above the old RCV.NXT (or with a newer timestamp) may reuse TIME-WAIT.
    let (mut a, mut b, id, sid) = connected_pair();
    // The server closes first, so the server holds TIME-WAIT.
    b.close(sid);
    pump(&mut a, &mut b, t0());
    a.close(id);
    pump(&mut a, &mut b, t0());
    assert_eq!(b.connection_count(), 1);
    let t1 = t0() + Duration::from_secs(2);
    let id2 = a
        .connect(t1, tuple(40000), SocketOptions::default())
        .unwrap();
    pump(&mut a, &mut b, t1);
    assert!(events(&mut a).contains(&TcpEvent::Connected(id2)));
    assert_eq!(b.stats().endpoint.time_wait_reused, 1);
}

#[test]
fn icmp_port_unreachable_refuses_a_connect() {
    let mut a = ep();
    let id = a
        .connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    let syn = out(&mut a, t0()).remove(0);
    let info = IcmpErrorInfo::new(
        IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
        A,
        B,
        &syn.2[..8],
    )
    .unwrap();
    a.on_icmp_error(t0(), info);
    assert_eq!(
        events(&mut a),
        vec![TcpEvent::Closed(id, Some(TcpError::ConnectionRefused))]
    );
    let mut buf = [0u8; 1];
    assert_eq!(a.recv(id, &mut buf), Err(TcpError::ConnectionRefused));
    assert_eq!(a.stats().endpoint.icmp_accepted, 1);
}

#[test]
fn icmp_for_no_connection_is_ignored() {
    let mut a = ep();
    let info = IcmpErrorInfo::new(
        IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
        A,
        B,
        &[0, 1, 0, 80, 0, 0, 0, 0],
    )
    .unwrap();
    a.on_icmp_error(t0(), info);
    assert_eq!(a.stats().endpoint.icmp_ignored, 1);
    assert!(IcmpErrorInfo::new(
        IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
        A,
        B,
        &[0; 7]
    )
    .is_none());
}

#[test]
fn abort_sends_rst_and_the_peer_sees_a_reset() {
    let (mut a, mut b, id, sid) = connected_pair();
    a.abort(id);
    pump(&mut a, &mut b, t0());
    assert_eq!(
        events(&mut b),
        vec![TcpEvent::Closed(sid, Some(TcpError::ConnectionReset))]
    );
    assert_eq!(a.connection_count(), 0);
    assert_eq!(a.send(id, b"x"), Err(TcpError::NotConnected));
}

#[test]
fn stats_of_workers_add_up() {
    let mut s = TcpStats::default();
    let mut o = TcpStats::default();
    o.endpoint.segments_received = 3;
    o.connections.retransmissions = 2;
    s.add(&o);
    s.add(&o);
    assert_eq!(s.endpoint.segments_received, 6);
    assert_eq!(s.connections.retransmissions, 4);
}

#[test]
fn options_change_on_a_live_connection() {
    let (mut a, mut b, id, sid) = connected_pair();
    let nodelay = SocketOptions {
        nodelay: true,
        ..SocketOptions::default()
    };
    a.set_options(id, nodelay).unwrap();
    assert!(a.connection(id).unwrap().options().nodelay);
    // With Nagle off, two small writes go out back to back.
    a.send(id, b"a").unwrap();
    assert_eq!(out(&mut a, t0()).len(), 1);
    a.send(id, b"b").unwrap();
    assert_eq!(out(&mut a, t0()).len(), 1);
    assert_eq!(
        a.set_options(ConnId(999), nodelay),
        Err(TcpError::NotConnected)
    );
    let _ = (&mut b, sid);
}

#[test]
fn readiness_reports_readable_bytes_and_send_space() {
    let (mut a, mut b, id, sid) = connected_pair();
    let cap = TcpConfig::default().send_buffer;
    assert_eq!(a.readiness(id), Some((0, cap)));
    a.send(id, b"hello").unwrap();
    pump(&mut a, &mut b, t0());
    assert_eq!(b.readiness(sid), Some((5, cap)));
    a.shutdown_write(id);
    assert_eq!(a.readiness(id), Some((0, 0)));
}

#[test]
fn syn_flood_holds_bounded_state_and_a_real_client_still_connects() {
    // RFC 4987 §3.6: past the SYN queue, cookies keep the listener stateless.
    let (mut a, mut b) = (ep(), ep());
    b.listen(server_addr(), 8, SocketOptions::default())
        .unwrap();
    for port in 1000..3000u16 {
        let syn = TcpRepr {
            src_port: port,
            dst_port: 80,
            seq: SeqNumber(u32::from(port) * 7919),
            flags: Flags::SYN,
            window: 1000,
            mss: Some(1460),
            ..TcpRepr::default()
        };
        b.on_segment(
            t0(),
            Ipv4Addr::new(198, 51, 100, 9),
            B,
            &syn.to_bytes(Ipv4Addr::new(198, 51, 100, 9), B, &[]),
        );
    }
    assert_eq!(b.connection_count(), 8, "only the SYN queue holds state");
    assert_eq!(b.stats().endpoint.syn_cookies_sent, 1992);
    // The stateless replies were bounded by the queue limit, not by the flood.
    assert_eq!(b.stats().endpoint.stateless_queue_drops, 1992 - 1024);
    let replies = out(&mut b, t0()).len();
    assert!(
        replies <= TcpConfig::default().max_stateless_queue + 8,
        "{replies}"
    );
    let id = a
        .connect(t0(), tuple(40000), SocketOptions::default())
        .unwrap();
    a.send(id, b"through").unwrap();
    pump(&mut a, &mut b, t0());
    let sid = match events(&mut b).as_slice() {
        [TcpEvent::Accepted { id, .. }, TcpEvent::Readable(_)] => *id,
        e => panic!("{e:?}"),
    };
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(sid, &mut buf).unwrap(), 7);
}

#[test]
fn time_wait_is_bounded_and_a_connection_past_the_limit_leaves_after_its_last_ack() {
    // Bounded memory (issue 4): `max_time_wait`, counted in `time_wait_overflows`.
    let cfg = TcpConfig {
        max_time_wait: 1,
        ..TcpConfig::default()
    };
    let (mut a, mut b) = (Endpoint::new(cfg, [9; 16]), ep());
    b.listen(server_addr(), 8, SocketOptions::default())
        .unwrap();
    for port in [40000, 40001] {
        let id = a
            .connect(t0(), tuple(port), SocketOptions::default())
            .unwrap();
        pump(&mut a, &mut b, t0());
        let sid = accepted_id(&mut b);
        a.close(id);
        pump(&mut a, &mut b, t0());
        b.close(sid);
        pump(&mut a, &mut b, t0());
        events(&mut a);
        events(&mut b);
    }
    assert_eq!(a.time_wait_count(), 1);
    assert_eq!(
        a.connection_count(),
        1,
        "the second connection skipped TIME-WAIT"
    );
    assert_eq!(a.stats().endpoint.time_wait_overflows, 1);
    // The peer got its last ACK both times: nothing left in LAST-ACK, nothing reset.
    assert_eq!(b.connection_count(), 0);
    assert_eq!(b.stats().endpoint.resets_received, 0);
    // When the first leaves TIME-WAIT, the table has room again.
    a.on_timeout(t0() + Duration::from_secs(61));
    assert_eq!((a.time_wait_count(), a.connection_count()), (0, 0));
}

#[test]
fn endpoint_totals_are_the_sum_of_every_connections_counters_live_and_closed() {
    // The totals are added call by call (no connection keeps a copy of its counters): they
    // must match the connections' own counters while open, and stay after they are gone.
    let (mut a, mut b, id, sid) = connected_pair();
    let data = vec![5u8; 10_000];
    let mut sent = 0;
    while sent < data.len() {
        sent += a.send(id, &data[sent..]).unwrap();
        pump(&mut a, &mut b, t0());
    }
    let mut buf = vec![0u8; 20_000];
    let mut got = 0;
    while let Ok(n) = b.recv(sid, &mut buf) {
        if n == 0 {
            break;
        }
        got += n;
        pump(&mut a, &mut b, t0());
    }
    assert_eq!(got, data.len());
    for (e, cid) in [(&a, id), (&b, sid)] {
        let own = e.connection(cid).unwrap().counters();
        let total = e.stats().connections;
        assert_eq!(total.segments_sent, own.segments_sent);
        assert_eq!(total.segments_received, own.segments_received);
        assert_eq!(total.bytes_sent, own.bytes_sent);
        assert_eq!(total.bytes_received, own.bytes_received);
    }
    assert_eq!(a.stats().connections.bytes_sent, 10_000);
    assert_eq!(b.stats().connections.bytes_received, 10_000);
    let before = a.stats().connections;
    a.abort(id);
    pump(&mut a, &mut b, t0());
    assert!(a.connection(id).is_none());
    let after = a.stats().connections;
    assert_eq!(after.bytes_sent, before.bytes_sent);
    assert_eq!(after.segments_sent, before.segments_sent + 1, "the RST");
}
