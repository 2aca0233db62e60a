//! Hostile input: arbitrary bytes and arbitrary well-formed segments thrown at an endpoint
//! never panic, never make it loop, and never let buffers grow past their limits.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netstack_transport::tcp::segment::{SackBlock, Timestamp};
use netstack_transport::tcp::testing::pump;
use netstack_transport::tcp::{
    ConnId, Endpoint, Flags, FourTuple, SeqNumber, SocketOptions, TcpConfig, TcpEvent, TcpRepr,
};
use proptest::prelude::*;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// A client endpoint and a server endpoint with one established connection carrying some
/// data each way.
fn established(t0: Instant) -> (Endpoint, Endpoint, ConnId, ConnId) {
    let cfg = TcpConfig {
        recv_buffer: 8192,
        send_buffer: 8192,
        ..TcpConfig::default()
    };
    let mut a = Endpoint::new(cfg.clone(), [1; 16]);
    let mut b = Endpoint::new(cfg, [2; 16]);
    b.listen(SocketAddrV4::new(B, 80), 4, SocketOptions::default())
        .unwrap();
    let tuple = FourTuple {
        local: SocketAddrV4::new(A, 4000),
        remote: SocketAddrV4::new(B, 80),
    };
    let id = a.connect(t0, tuple, SocketOptions::default()).unwrap();
    pump(&mut a, &mut b, t0);
    let sid = std::iter::from_fn(|| b.poll_event())
        .find_map(|e| match e {
            TcpEvent::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    a.send(id, &[7; 3000]).unwrap();
    b.send(sid, &[8; 3000]).unwrap();
    pump(&mut a, &mut b, t0);
    (a, b, id, sid)
}

fn check_bounds(ep: &Endpoint, id: ConnId) {
    if let Some(c) = ep.connection(id) {
        assert!(c.send_queued() <= c.send_capacity());
        assert!(c.recv_queued() <= c.recv_capacity());
    }
}

#[derive(Debug, Clone)]
struct Junk {
    flags: u8,
    seq_off: i32,
    ack_off: i32,
    window: u16,
    payload: usize,
    ts: Option<(u32, u32)>,
    sack: Vec<(i32, i32)>,
    mss: Option<u16>,
    ws: Option<u8>,
    advance_ms: u64,
}

fn junk() -> impl Strategy<Value = Junk> {
    (
        any::<u8>(),
        prop_oneof![-70_000i32..70_000, any::<i32>()],
        prop_oneof![-70_000i32..70_000, any::<i32>()],
        any::<u16>(),
        0usize..3000,
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec((-5000i32..70_000, -5000i32..70_000), 0..4),
        proptest::option::of(any::<u16>()),
        proptest::option::of(any::<u8>()),
        0u64..3000,
    )
        .prop_map(
            |(flags, seq_off, ack_off, window, payload, ts, sack, mss, ws, advance_ms)| Junk {
                flags,
                seq_off,
                ack_off,
                window,
                payload,
                ts,
                sack,
                mss,
                ws,
                advance_ms,
            },
        )
}

proptest! {
    // 256 cases by default (proptest's own default); PROPTEST_CASES runs more.

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let t0 = Instant::now();
        let (mut a, mut b, id, _) = established(t0);
        a.on_segment(t0, B, A, &bytes);
        b.on_segment(t0, A, B, &bytes);
        let mut out = Vec::new();
        a.poll_transmit(t0, &mut out);
        b.poll_transmit(t0, &mut out);
        check_bounds(&a, id);
    }

    #[test]
    fn arbitrary_segments_into_a_live_connection_never_panic(segs in proptest::collection::vec(junk(), 1..12)) {
        let t0 = Instant::now();
        let (mut a, mut b, id, sid) = established(t0);
        let (snd, rcv) = {
            let c = b.connection(sid).unwrap();
            (c.snd_nxt(), c.rcv_nxt())
        };
        let mut now = t0;
        for j in &segs {
            now += Duration::from_millis(j.advance_ms);
            let mut r = TcpRepr {
                src_port: 4000,
                dst_port: 80,
                seq: SeqNumber(rcv.0.wrapping_add(j.seq_off as u32)),
                ack: SeqNumber(snd.0.wrapping_add(j.ack_off as u32)),
                flags: Flags(j.flags),
                window: j.window,
                mss: j.mss,
                window_scale: j.ws.map(|w| w.min(14)),
                timestamp: j.ts.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
                payload_len: j.payload,
                ..TcpRepr::default()
            };
            for &(s, e) in j.sack.iter().take(3) {
                r.sack.push(SackBlock {
                    start: SeqNumber(snd.0.wrapping_add(s as u32)),
                    end: SeqNumber(snd.0.wrapping_add(e as u32)),
                });
            }
            let payload = vec![0x55u8; j.payload];
            b.on_segment(now, A, B, &r.to_bytes(A, B, &payload));
            b.on_timeout(now);
            let mut out = Vec::new();
            b.poll_transmit(now, &mut out);
            prop_assert!(out.len() < 10_000);
            check_bounds(&b, sid);
            while b.poll_event().is_some() {}
        }
        // Whatever happened, the endpoint still winds down: time passes until nothing is left.
        let mut buf = [0u8; 4096];
        while b.recv(sid, &mut buf).unwrap_or(0) > 0 {}
        b.close(sid);
        for _ in 0..200 {
            let Some(d) = b.poll_deadline() else { break };
            now = now.max(d);
            b.on_timeout(now);
            let mut out = Vec::new();
            b.poll_transmit(now, &mut out);
        }
        prop_assert_eq!(b.connection_count(), 0, "a connection outlived every timer");
        prop_assert!(b.poll_deadline().is_none());
        let _ = (&mut a, id);
    }
}
