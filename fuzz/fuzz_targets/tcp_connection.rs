//! A TCP endpoint fed a fuzzer-chosen script of segments, time steps and application calls, so
//! its connections pass through every state (LISTEN → SYN-RECEIVED → … and SYN-SENT → … after
//! an active open) with hostile segments at each step.
//!
//! Two flows: 0 is a peer at 192.0.2.1:40000 opening to our listener on 192.0.2.2:80; 1 is a
//! peer at 192.0.2.1:8080 that our active open (op 5) reaches. A segment's sequence and
//! acknowledgment numbers are offsets from what the endpoint last told that flow (its last
//! ACK and its highest sequence sent), so the fuzzer follows a handshake easily and strays
//! from it by small amounts. Its checksum is filled in, so every segment reaches TCP.
//!
//! Ops (byte mod 8), flow in bit 7:
//! 0 segment: flags, seq offset (i16), ack offset (i16), window (u16), options (1 byte n,
//!   then n bytes, padded to four, at most 40), payload length (1 byte);
//! 1 time passes (1 byte) and the timers fire; 2 send (1 byte length); 3 recv (1 byte length);
//! 4 close, shutdown or abort (1 byte); 5 active open of flow 1; 6 an ICMP error quoting the
//! flow's last segment (1 byte kind); 7 the endpoint's timers fire now.
//! Invariants: every segment the endpoint sends has a valid checksum and a header it can parse
//! back, ports of the flow it belongs to, and no more payload than our MSS (536); the
//! connection count stays bounded.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::{fix_tcp, Clock, Script};
use netstack_network::endpoint::IcmpErrorKind;
use netstack_network::wire::{DstUnreachable, TimeExceeded};
use netstack_transport::tcp::{
    ConnId, Endpoint, FourTuple, IcmpErrorInfo, SocketOptions, TcpConfig, TcpEvent, TcpPacket,
    TcpRepr,
};
use netstack_transport::Checksum;

const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const LISTEN_PORT: u16 = 80;
const ACTIVE_PORT: u16 = 50000;
const PEER_PORTS: [u16; 2] = [40000, 8080];
const MSS: u16 = 536;

#[derive(Default, Clone, Copy)]
struct Flow {
    /// The endpoint's last ACK to this flow: the sequence number it expects next.
    expect: u32,
    /// The endpoint's highest sequence number sent (end of its last segment).
    sent: u32,
    /// The first eight bytes of its last segment, for an ICMP quote.
    last_header: [u8; 8],
    id: Option<ConnId>,
}

fn tuple(flow: usize) -> FourTuple {
    let local = if flow == 0 { LISTEN_PORT } else { ACTIVE_PORT };
    FourTuple {
        local: SocketAddrV4::new(US, local),
        remote: SocketAddrV4::new(PEER, PEER_PORTS[flow]),
    }
}

fn drain(ep: &mut Endpoint, clock: &Clock, flows: &mut [Flow; 2], mss: u16) {
    let mut out = Vec::new();
    ep.poll_transmit(clock.now(), &mut out);
    for (src, dst, bytes) in out {
        assert_eq!((src, dst), (US, PEER));
        let p = TcpPacket::new_checked(&bytes[..]).expect("we emit well-formed segments");
        let r = TcpRepr::parse(&p, src, dst, Checksum::Verify).expect("valid checksum");
        let Some(f) = PEER_PORTS.iter().position(|&port| port == r.dst_port) else {
            panic!("segment to a port no flow uses: {r:?}");
        };
        assert!(
            r.payload_len <= usize::from(mss),
            "{} bytes over MSS {mss}",
            r.payload_len
        );
        let flow = &mut flows[f];
        if r.flags.ack() {
            flow.expect = r.ack.0;
        }
        flow.sent = r.seq.0.wrapping_add(r.seq_len() as u32);
        flow.last_header.copy_from_slice(&bytes[..8]);
    }
    while let Some(ev) = ep.poll_event() {
        if let TcpEvent::Accepted { id, .. } = ev {
            ep.accepted(id);
            flows[0].id = Some(id);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let config = TcpConfig {
        mss: MSS,
        send_buffer: 4096,
        recv_buffer: 4096,
        max_time_wait: 4,
        max_ooo_ranges: 4,
        max_stateless_queue: 8,
        ..TcpConfig::default()
    };
    let mut ep = Endpoint::new(config, [7; 16]);
    ep.listen(
        SocketAddrV4::new(US, LISTEN_PORT),
        2,
        SocketOptions::default(),
    )
    .unwrap();
    let mut clock = Clock::new();
    let mut flows = [Flow {
        expect: 1000,
        sent: 0,
        ..Flow::default()
    }; 2];
    let scratch = [0x5a_u8; 256];
    let mut buf = [0u8; 256];
    while let Some(op) = s.u8() {
        let f = usize::from(op >> 7);
        match op % 8 {
            0 => {
                let flags = s.u8().unwrap_or(0);
                let dseq = s.u16().unwrap_or(0) as i16;
                let dack = s.u16().unwrap_or(0) as i16;
                let window = s.u16().unwrap_or(0);
                let n = usize::from(s.u8().unwrap_or(0)).min(40);
                let mut options = s.bytes(n).to_vec();
                options.resize(options.len().div_ceil(4) * 4, 0);
                let len = usize::from(s.u8().unwrap_or(0));
                let t = tuple(f);
                let mut seg = Vec::with_capacity(20 + options.len() + len);
                seg.extend_from_slice(&t.remote.port().to_be_bytes());
                seg.extend_from_slice(&t.local.port().to_be_bytes());
                let seq = flows[f].expect.wrapping_add(dseq as i32 as u32);
                let ack = flows[f].sent.wrapping_add(dack as i32 as u32);
                seg.extend_from_slice(&seq.to_be_bytes());
                seg.extend_from_slice(&ack.to_be_bytes());
                seg.push((((20 + options.len()) / 4) as u8) << 4);
                seg.push(flags);
                seg.extend_from_slice(&window.to_be_bytes());
                seg.extend_from_slice(&[0, 0, 0, 0]);
                seg.extend_from_slice(&options);
                seg.extend_from_slice(&scratch[..len]);
                fix_tcp(&mut seg, PEER, US);
                ep.on_segment(clock.now(), PEER, US, &seg);
            }
            1 => {
                clock.advance(s.u8().unwrap_or(0));
                ep.on_timeout(clock.now());
            }
            2 => {
                let n = usize::from(s.u8().unwrap_or(0));
                if let Some(id) = flows[f].id {
                    if let Ok(sent) = ep.send(id, &scratch[..n]) {
                        assert!(sent <= n);
                    }
                }
            }
            3 => {
                let n = usize::from(s.u8().unwrap_or(0));
                if let Some(id) = flows[f].id {
                    if let Ok(got) = ep.recv(id, &mut buf[..n]) {
                        assert!(got <= n);
                    }
                }
            }
            4 => {
                let how = s.u8().unwrap_or(0);
                if let Some(id) = flows[f].id {
                    match how % 3 {
                        0 => ep.close(id),
                        1 => ep.shutdown_write(id),
                        _ => ep.abort(id),
                    }
                    if how % 3 != 1 {
                        flows[f].id = None;
                    }
                }
            }
            5 => {
                if flows[1].id.is_none() {
                    if let Ok(id) = ep.connect(clock.now(), tuple(1), SocketOptions::default()) {
                        flows[1].id = Some(id);
                    }
                }
            }
            6 => {
                let kind = match s.u8().unwrap_or(0) % 4 {
                    0 => IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
                    1 => IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
                    2 => IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired {
                        next_hop_mtu: s.u16().unwrap_or(0),
                    }),
                    _ => IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded),
                };
                if let Some(info) = IcmpErrorInfo::new(kind, US, PEER, &flows[f].last_header) {
                    ep.on_icmp_error(clock.now(), info);
                }
            }
            _ => ep.on_timeout(clock.now()),
        }
        drain(&mut ep, &clock, &mut flows, MSS);
        assert!(
            ep.connection_count() <= 16,
            "{} connections",
            ep.connection_count()
        );
    }
});
