//! Test support shared by the crate's unit tests, its integration tests (`transport/tests/`)
//! and its examples: a hand-made peer for driving one `Connection` with virtual time, and a
//! perfect wire joining two `Endpoint`s. Built for `cfg(test)` and with the `testing` feature;
//! not part of the stack.
//!
//! The single-connection helpers fix one scene: we are 192.0.2.2:40000 with ISS `ISS`, the peer
//! is 192.0.2.1:80 with ISS `PEER_ISS`, both ends use an MSS of `MSS`, and time starts at
//! `t0()` (one instant per test thread).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::{ConnParams, Connection, Event, State};
use super::segment::{Flags, SackBlock, TcpRepr, Timestamp};
use super::{Endpoint, FourTuple, SeqNumber, SocketOptions, TcpConfig};

/// The peer's initial sequence number.
pub const PEER_ISS: u32 = 5000;
/// Our initial sequence number.
pub const ISS: u32 = 100;
/// The MSS both ends announce.
pub const MSS: usize = 1000;

/// Our side of the connection (192.0.2.2:40000) and the peer's (192.0.2.1:80).
pub fn tuple() -> FourTuple {
    FourTuple {
        local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 40000),
        remote: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
    }
}

/// The start of virtual time, fixed per thread.
pub fn t0() -> Instant {
    thread_local!(static T: Instant = Instant::now());
    T.with(|t| *t)
}

/// `n` milliseconds after `t0()`.
pub fn ms(n: u64) -> Instant {
    t0() + Duration::from_millis(n)
}

/// The default configuration with an MSS of `MSS`.
pub fn config() -> TcpConfig {
    TcpConfig {
        mss: MSS as u16,
        ..TcpConfig::default()
    }
}

/// Parameters for a connection on `tuple()` with ISS `ISS` and `config()`.
pub fn params(opts: SocketOptions) -> ConnParams {
    ConnParams {
        tuple: tuple(),
        iss: SeqNumber(ISS),
        epoch: t0(),
        ts_offset: 0,
        config: Arc::new(config()),
        opts,
    }
}

/// The next segment the connection sends, with its payload.
pub fn next(c: &mut Connection, now: Instant) -> Option<(TcpRepr, Vec<u8>)> {
    let mut p = Vec::new();
    c.poll_transmit(now, &mut p).map(|r| (r, p))
}

/// The next segment's header; panics when there is none.
pub fn next_seg(c: &mut Connection, now: Instant) -> TcpRepr {
    next(c, now).expect("a segment").0
}

/// Every segment the connection sends now.
pub fn drain(c: &mut Connection, now: Instant) -> Vec<(TcpRepr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(s) = next(c, now) {
        v.push(s);
        assert!(v.len() < 10_000, "poll_transmit never stops");
    }
    v
}

/// Every event the connection has queued.
pub fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// A segment from the peer (port 80 to our 40000) with a 65,535-byte window and no options.
pub fn peer(flags: Flags, seq: u32, ack: SeqNumber) -> TcpRepr {
    TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(seq),
        ack,
        flags,
        window: 65535,
        ..TcpRepr::default()
    }
}

/// The peer's pure ACK of `ack`, at its first sequence number after the SYN.
pub fn peer_ack(ack: SeqNumber) -> TcpRepr {
    peer(Flags::ACK, PEER_ISS + 1, ack)
}

/// The peer's SYN for a passive open, offering an MSS of `MSS` and nothing else.
pub fn peer_syn() -> TcpRepr {
    TcpRepr {
        mss: Some(MSS as u16),
        ..peer(Flags::SYN, PEER_ISS, SeqNumber(0))
    }
}

/// `a` with SACK blocks `blocks` added.
pub fn with_sack(mut a: TcpRepr, blocks: &[(SeqNumber, SeqNumber)]) -> TcpRepr {
    for &(start, end) in blocks {
        a.sack.push(SackBlock { start, end });
    }
    a
}

/// What the hand-made peer offers in its SYN-ACK.
#[derive(Debug, Clone, Copy)]
pub struct PeerOpts {
    pub ts: bool,
    pub sack: bool,
    pub ws: Option<u8>,
    pub mss: Option<u16>,
}

/// A peer offering only an MSS of `MSS`.
pub const PLAIN: PeerOpts = PeerOpts {
    ts: false,
    sack: false,
    ws: None,
    mss: Some(MSS as u16),
};
/// A peer offering SACK and an MSS of `MSS`.
pub const SACK: PeerOpts = PeerOpts {
    sack: true,
    ..PLAIN
};
/// A peer offering timestamps and an MSS of `MSS`.
pub const TS: PeerOpts = PeerOpts { ts: true, ..PLAIN };

/// The peer's view: its next sequence number and the timestamp it sends.
#[derive(Debug)]
pub struct Peer {
    pub seq: SeqNumber,
    pub tsval: u32,
    pub ts: bool,
}

impl Peer {
    /// A segment from the peer acknowledging everything we sent, with its timestamp when
    /// timestamps are on.
    pub fn seg(&self, c: &Connection, flags: Flags, seq: SeqNumber, len: usize) -> TcpRepr {
        TcpRepr {
            timestamp: self.ts.then_some(Timestamp {
                tsval: self.tsval,
                tsecr: 1,
            }),
            payload_len: len,
            ..peer(flags, seq.0, c.snd_nxt())
        }
    }

    /// A pure ACK of `ack`.
    pub fn ack(&self, c: &Connection, ack: SeqNumber) -> TcpRepr {
        TcpRepr {
            ack,
            ..self.seg(c, Flags::ACK, self.seq, 0)
        }
    }
}

/// An active open with `opts` against a peer offering `peer`, its SYN-ACK 10 ms after our
/// SYN; our ACK and the `Connected` event are taken.
pub fn established_with(opts: SocketOptions, peer: PeerOpts) -> (Connection, Peer) {
    established_from(params(opts), peer)
}

/// Like `established_with`, from `params`.
pub fn established_from(params: ConnParams, peer_opts: PeerOpts) -> (Connection, Peer) {
    let mut c = Connection::connect(t0(), params);
    let syn = next_seg(&mut c, t0());
    assert_eq!(syn.flags, Flags::SYN);
    let synack = TcpRepr {
        mss: peer_opts.mss,
        window_scale: peer_opts.ws,
        sack_permitted: peer_opts.sack,
        timestamp: peer_opts.ts.then_some(Timestamp {
            tsval: 10,
            tsecr: syn.timestamp.map_or(0, |t| t.tsval),
        }),
        ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
    };
    c.on_segment(ms(10), &synack, &[]);
    assert_eq!(c.state(), State::Established);
    let ack = next_seg(&mut c, ms(10));
    assert_eq!(ack.flags, Flags::ACK);
    assert_eq!(events(&mut c), vec![Event::Connected]);
    (
        c,
        Peer {
            seq: SeqNumber(PEER_ISS + 1),
            tsval: 11,
            ts: peer_opts.ts,
        },
    )
}

/// An established connection with default options against a `PLAIN` peer.
pub fn established() -> (Connection, Peer) {
    established_with(SocketOptions::default(), PLAIN)
}

/// Sends `n` full segments of application data and returns them.
pub fn send_segments(c: &mut Connection, now: Instant, n: usize) -> Vec<(TcpRepr, Vec<u8>)> {
    let data: Vec<u8> = (0..n * MSS).map(|i| i as u8).collect();
    assert_eq!(c.send(&data).unwrap(), data.len());
    let v = drain(c, now);
    assert!(v.iter().all(|(r, _)| r.payload_len == MSS));
    v
}

/// Delivers everything between two endpoints over a perfect, instant wire until both are
/// quiet. Panics after 1,000 rounds: two endpoints that never go quiet are a bug.
pub fn pump(a: &mut Endpoint, b: &mut Endpoint, now: Instant) {
    for _ in 0..1000 {
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        a.poll_transmit(now, &mut wa);
        b.poll_transmit(now, &mut wb);
        if wa.is_empty() && wb.is_empty() {
            return;
        }
        for (s, d, seg) in wa {
            b.on_segment(now, s, d, &seg);
        }
        for (s, d, seg) in wb {
            a.on_segment(now, s, d, &seg);
        }
    }
    panic!("endpoints never went quiet");
}

/// A data segment from the peer: `len` bytes at `off` past the peer's ISS + 1.
pub fn peer_data(c: &Connection, off: u32, len: usize) -> TcpRepr {
    TcpRepr {
        payload_len: len,
        ..peer(Flags::ACK, PEER_ISS + 1 + off, c.snd_nxt())
    }
}

/// An active open whose SYN timed out once (at 1 s); the SYN-ACK arrives 10 ms after the
/// resend, without timestamps, so there is no RTT sample.
pub fn established_after_a_retransmitted_syn() -> Connection {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    let syn = next_seg(&mut c, t0());
    c.on_timeout(ms(1000));
    assert_eq!(next_seg(&mut c, ms(1000)).flags, Flags::SYN);
    let synack = TcpRepr {
        mss: Some(MSS as u16),
        ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
    };
    c.on_segment(ms(1010), &synack, &[]);
    drain(&mut c, ms(1010));
    c
}

/// The sequence numbers of `segs`.
pub fn seqs(segs: &[(TcpRepr, Vec<u8>)]) -> Vec<SeqNumber> {
    segs.iter().map(|(r, _)| r.seq).collect()
}
