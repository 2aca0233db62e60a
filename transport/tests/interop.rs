//! Interop with smoltcp, a third-party TCP, in the same virtual time and over the same impaired
//! link as the simulator: our client to its server and its client to our server, 16 MiB each
//! way at once, 1% loss each way, checked byte for byte.

mod common;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::{pattern, Impairments, Pipe, Rng};
use netstack_transport::tcp::{
    ConnId, Endpoint, FourTuple, SocketOptions, State, TcpConfig, TcpError, TcpEvent,
};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const OURS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const THEIRS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
const BYTES: u64 = 16 << 20;
const SEED: u64 = 0x5eed;

// ---------------------------------------------------------------------- IPv4 framing

/// Wraps a TCP segment in a minimal IPv4 header (RFC 791) for smoltcp's IP-medium device.
fn ipv4_wrap(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> Vec<u8> {
    let total = 20 + tcp.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = netstack_network::checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20..].copy_from_slice(tcp);
    p
}

/// The addresses and TCP payload of an IPv4 packet smoltcp sent.
fn ipv4_unwrap(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, Vec<u8>)> {
    let ihl = usize::from(*p.first()? & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
    if p.len() < total || ihl < 20 || total < ihl || p[9] != 6 {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some((src, dst, p[ihl..total].to_vec()))
}

// ---------------------------------------------------------------------- smoltcp device

#[derive(Default)]
struct SimDevice {
    rx: VecDeque<Vec<u8>>,
    tx: Vec<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push(buf);
        r
    }
}

impl Device for SimDevice {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;
    fn receive(&mut self, _t: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let p = self.rx.pop_front()?;
        Some((Rx(p), Tx(&mut self.tx)))
    }
    fn transmit(&mut self, _t: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ip;
        c.max_transmission_unit = 1500;
        c
    }
}

// ---------------------------------------------------------------------- the run

/// Progress of one direction of the byte stream.
#[derive(Debug, Default, Clone, Copy)]
struct Flow {
    sent: u64,
    received: u64,
}

/// The whole byte stream `stream`, generated once.
fn stream_bytes(stream: u64) -> Vec<u8> {
    (0..BYTES).map(|i| pattern(SEED, stream, i)).collect()
}

fn check_bytes(expected: &[u8], stream: u64, from: u64, data: &[u8]) {
    let want = &expected[from as usize..from as usize + data.len()];
    if let Some(i) = data.iter().zip(want).position(|(a, b)| a != b) {
        panic!("stream {stream}: byte {} differs", from + i as u64);
    }
}

/// Runs one connection between our endpoint and smoltcp. `ours_connects` picks who opens.
/// Stream 0 flows from us to smoltcp, stream 1 back.
fn run(ours_connects: bool, loss: f64) -> (ConnIdStats, Duration) {
    let t0 = Instant::now();
    let mut now = t0;
    let smol_now = |now: Instant| {
        smoltcp::time::Instant::from_micros(now.duration_since(t0).as_micros() as i64)
    };
    let mut rng = Rng::new(SEED);
    let mut imp = Impairments::clean(Duration::from_millis(5), 100_000_000);
    imp.loss = loss;
    imp.queue_bytes = 512 * 1024;
    let mut to_them = Pipe::new(imp);
    let mut to_us = Pipe::new(imp);

    // Our side.
    let opts = SocketOptions {
        send_buffer: Some(1 << 20),
        recv_buffer: Some(1 << 20),
        ..SocketOptions::default()
    };
    let mut ep = Endpoint::new(TcpConfig::default(), [1; 16]);
    // smoltcp's side.
    let mut dev = SimDevice::default();
    let mut cfg = Config::new(HardwareAddress::Ip);
    cfg.random_seed = SEED;
    let mut iface = Interface::new(cfg, &mut dev, smol_now(now));
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(192, 0, 2, 3), 24))
            .unwrap();
    });
    let mut sockets = SocketSet::new(vec![]);
    let mut sock = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 1 << 20]),
        tcp::SocketBuffer::new(vec![0; 1 << 20]),
    );
    sock.set_congestion_control(tcp::CongestionControl::Reno);
    let mut our_id: Option<ConnId> = None;
    if ours_connects {
        sock.listen(5001).unwrap();
        let tuple = FourTuple {
            local: SocketAddrV4::new(OURS, 40000),
            remote: SocketAddrV4::new(THEIRS, 5001),
        };
        our_id = Some(ep.connect(now, tuple, opts).unwrap());
    } else {
        ep.listen(SocketAddrV4::new(OURS, 5001), 8, opts).unwrap();
        sock.connect(iface.context(), (IpAddress::v4(192, 0, 2, 2), 5001), 40000)
            .unwrap();
    }
    let handle: SocketHandle = sockets.add(sock);

    let mut ours = Flow::default(); // stream 0 sent by us, stream 1 received by us
    let mut theirs = Flow::default();
    let mut our_shut = false;
    let mut our_eof = false;
    let mut their_shut = false;
    let mut their_eof = false;
    let mut buf = vec![0u8; 256 * 1024];
    let (s0, s1) = (stream_bytes(0), stream_bytes(1));
    let mut steps = 0u64;
    loop {
        steps += 1;
        assert!(steps < 20_000_000, "step budget exhausted");
        assert!(
            now.duration_since(t0) < Duration::from_secs(3600),
            "virtual hour passed: ours {ours:?} theirs {theirs:?}"
        );
        while let Some((s, d, b)) = to_us.pop_due(now) {
            ep.on_segment(now, s, d, &b);
        }
        while let Some((s, d, b)) = to_them.pop_due(now) {
            dev.rx.push_back(ipv4_wrap(s, d, &b));
        }
        if ep.poll_deadline().is_some_and(|d| d <= now) {
            ep.on_timeout(now);
        }
        iface.poll(smol_now(now), &mut dev, &mut sockets);

        // smoltcp's application.
        let s = sockets.get_mut::<tcp::Socket>(handle);
        while s.can_send() && theirs.sent < BYTES {
            let k = s.send_slice(&s1[theirs.sent as usize..]).unwrap();
            theirs.sent += k as u64;
            if k == 0 {
                break;
            }
        }
        if theirs.sent == BYTES && !their_shut && s.may_send() {
            s.close();
            their_shut = true;
        }
        while s.can_recv() {
            let n = s.recv_slice(&mut buf).unwrap();
            check_bytes(&s0, 0, theirs.received, &buf[..n]);
            theirs.received += n as u64;
        }
        if !s.may_recv() && theirs.received == BYTES && s.state() != tcp::State::Listen {
            their_eof = true;
        }
        iface.poll(smol_now(now), &mut dev, &mut sockets);

        // Our application.
        while let Some(ev) = ep.poll_event() {
            match ev {
                TcpEvent::Accepted { id, .. } => our_id = Some(id),
                TcpEvent::Closed(_, Some(e)) => panic!("our side failed: {e}"),
                _ => {}
            }
        }
        if let Some(id) = our_id {
            while ours.sent < BYTES {
                match ep.send(id, &s0[ours.sent as usize..]) {
                    Ok(0) => break,
                    Ok(k) => ours.sent += k as u64,
                    Err(e) => panic!("send: {e}"),
                }
            }
            if ours.sent == BYTES && !our_shut {
                ep.shutdown_write(id);
                our_shut = true;
            }
            loop {
                match ep.recv(id, &mut buf) {
                    Ok(0) => {
                        our_eof = true;
                        break;
                    }
                    Ok(n) => {
                        check_bytes(&s1, 1, ours.received, &buf[..n]);
                        ours.received += n as u64;
                    }
                    Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
        let mut wire = Vec::new();
        ep.poll_transmit(now, &mut wire);
        for (s, d, b) in wire {
            to_them.send(now, &mut rng, s, d, b);
        }
        for p in dev.tx.drain(..) {
            if let Some((s, d, b)) = ipv4_unwrap(&p) {
                to_us.send(now, &mut rng, s, d, b);
            }
        }
        if our_eof && their_eof {
            break;
        }
        let smol_next = iface
            .poll_at(smol_now(now), &sockets)
            .map(|t| t0 + Duration::from_micros(t.total_micros().max(0) as u64));
        let next = [
            to_us.next_arrival(),
            to_them.next_arrival(),
            ep.poll_deadline(),
            smol_next,
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("something must be scheduled");
        // smoltcp may ask to be polled "now" again; let time move so it cannot spin.
        now = next.max(now + Duration::from_micros(10));
    }
    assert_eq!(ours.received, BYTES, "we read everything smoltcp wrote");
    assert_eq!(theirs.received, BYTES, "smoltcp read everything we wrote");
    let id = our_id.expect("a connection");
    let stats = ep.conn_stats(id).expect("stats");
    let state = ep.state(id);
    assert!(
        matches!(
            state,
            Some(
                State::TimeWait
                    | State::Closed
                    | State::FinWait2
                    | State::LastAck
                    | State::Closing
                    | State::FinWait1
                    | State::CloseWait
            )
        ),
        "state {state:?}"
    );
    (
        ConnIdStats {
            retransmissions: stats.retransmissions,
            fast_recoveries: stats.fast_recoveries,
            rto: stats.rto_expiries,
        },
        now.duration_since(t0),
    )
}

#[derive(Debug)]
#[allow(dead_code)] // printed with {:?}
struct ConnIdStats {
    retransmissions: u64,
    fast_recoveries: u64,
    rto: u64,
}

/// 1% each way; `TCP_INTEROP_LOSS` overrides it for a harsher run.
fn loss() -> f64 {
    std::env::var("TCP_INTEROP_LOSS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.01)
}

#[test]
fn our_client_to_smoltcp_server_16mib_each_way_under_loss() {
    let (stats, elapsed) = run(true, loss());
    eprintln!("our client ↔ smoltcp server: {stats:?} in {elapsed:?} virtual");
    assert!(stats.retransmissions > 0, "the loss must have been felt");
}

#[test]
fn smoltcp_client_to_our_server_16mib_each_way_under_loss() {
    let (stats, elapsed) = run(false, loss());
    eprintln!("smoltcp client ↔ our server: {stats:?} in {elapsed:?} virtual");
    assert!(stats.retransmissions > 0, "the loss must have been felt");
}
