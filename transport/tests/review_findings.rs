//! Regression tests for the findings of the RFC review of the TCP core (branch `tcp`, d175653):
//! each test states the rule it checks and failed on the code as reviewed. They use only the
//! crate's public API; the helpers (`established`, `peer`, `drain`) mirror those of
//! `src/tcp/connection/tests.rs`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use netstack_transport::tcp::connection::{ConnParams, Connection, State};
use netstack_transport::tcp::segment::{SackBlock, Timestamp};
use netstack_transport::tcp::{
    CongestionAlgorithm, Endpoint, Flags, FourTuple, SeqNumber, SocketOptions, TcpConfig, TcpError,
    TcpRepr,
};

const PEER_ISS: u32 = 5000;
const ISS: u32 = 100;
const MSS: usize = 1000;

fn tuple() -> FourTuple {
    FourTuple {
        local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 40000),
        remote: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
    }
}

fn t0() -> Instant {
    thread_local!(static T: Instant = Instant::now());
    T.with(|t| *t)
}

fn ms(n: u64) -> Instant {
    t0() + Duration::from_millis(n)
}

fn config() -> TcpConfig {
    TcpConfig {
        mss: MSS as u16,
        ..TcpConfig::default()
    }
}

fn params(opts: SocketOptions) -> ConnParams {
    ConnParams {
        tuple: tuple(),
        iss: SeqNumber(ISS),
        epoch: t0(),
        ts_offset: 0,
        config: std::sync::Arc::new(config()),
        opts,
    }
}

fn next(c: &mut Connection, now: Instant) -> Option<(TcpRepr, Vec<u8>)> {
    let mut p = Vec::new();
    c.poll_transmit(now, &mut p).map(|r| (r, p))
}

fn drain(c: &mut Connection, now: Instant) -> Vec<(TcpRepr, Vec<u8>)> {
    let mut v = Vec::new();
    while let Some(s) = next(c, now) {
        v.push(s);
        assert!(v.len() < 10_000, "poll_transmit never stops");
    }
    v
}

/// A segment from the peer (port 80 to our 40000).
fn peer(flags: Flags, seq: u32, ack: SeqNumber) -> TcpRepr {
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

fn peer_ack(ack: SeqNumber) -> TcpRepr {
    peer(Flags::ACK, PEER_ISS + 1, ack)
}

/// Active open against a peer offering `sack` and `mss`, SYN-ACK 10 ms after the SYN.
fn established(opts: SocketOptions, sack: bool, mss: u16) -> Connection {
    let mut c = Connection::connect(t0(), params(opts));
    let syn = next(&mut c, t0()).unwrap().0;
    let synack = TcpRepr {
        mss: Some(mss),
        sack_permitted: sack,
        ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
    };
    c.on_segment(ms(10), &synack, &[]);
    assert_eq!(c.state(), State::Established);
    drain(&mut c, ms(10));
    c
}

/// The peer's SYN for a passive open.
fn peer_syn() -> TcpRepr {
    TcpRepr {
        mss: Some(MSS as u16),
        ..peer(Flags::SYN, PEER_ISS, SeqNumber(0))
    }
}

fn send_segments(c: &mut Connection, now: Instant, n: usize) -> Vec<SeqNumber> {
    let data: Vec<u8> = (0..n * MSS).map(|i| i as u8).collect();
    assert_eq!(c.send(&data).unwrap(), data.len());
    let v = drain(c, now);
    assert!(v.iter().all(|(r, _)| r.payload_len == MSS));
    v.into_iter().map(|(r, _)| r.seq).collect()
}

fn with_sack(mut a: TcpRepr, blocks: &[(SeqNumber, SeqNumber)]) -> TcpRepr {
    for &(start, end) in blocks {
        a.sack.push(SackBlock { start, end });
    }
    a
}

// ------------------------------------------------------------------ RTT / Karn

/// RFC 6298 §3 (Karn): a SYN-ACK resent because the peer's SYN came again is a
/// retransmission like one resent by the timer. The ACK that completes the handshake may
/// answer the second copy, so measuring from the first send would inflate SRTT by the peer's
/// SYN timeout (1 s for Linux). The resend is counted as a retransmission too.
#[test]
fn syn_ack_resent_for_a_duplicate_syn_gives_no_rtt_sample() {
    let syn = peer_syn();
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &syn);
    let first = next(&mut c, t0()).unwrap().0;
    assert_eq!(first.flags, Flags::SYN | Flags::ACK);
    // The SYN-ACK was lost; the peer's SYN timer (1 s) resends the SYN.
    c.on_segment(ms(1000), &syn, &[]);
    let again = next(&mut c, ms(1000)).unwrap().0;
    assert_eq!(again.flags, Flags::SYN | Flags::ACK);
    // The second SYN-ACK is answered 10 ms later.
    c.on_segment(ms(1010), &peer_ack(SeqNumber(ISS + 1)), &[]);
    assert_eq!(c.state(), State::Established);
    let srtt = c.srtt();
    assert!(
        srtt.is_none_or(|s| s <= Duration::from_millis(10)),
        "SRTT {srtt:?} measured across a retransmitted SYN-ACK (Karn)"
    );
    assert_eq!(c.stats().retransmissions, 1);
}

/// RFC 6298 §3 / RFC 2018: an RTT sample is taken from the segment whose arrival produced the
/// ACK. Segments SACKed long ago and covered only now (the hole before them was filled after an
/// RTO) did not cause this ACK, so they give no sample (once this inflated SRTT from 10 ms to
/// seconds; the sim's srtt invariant caught it).
#[test]
fn segments_sacked_before_an_rto_give_no_rtt_sample_when_the_hole_fills() {
    let mut c = established(SocketOptions::default(), true, MSS as u16);
    let seq = send_segments(&mut c, ms(20), 10);
    let end = c.snd_nxt();
    // Segment 0 is lost; 1..10 arrive and are SACKed at 30 ms.
    for k in 1..10 {
        c.on_segment(
            ms(29 + k as u64),
            &with_sack(peer_ack(seq[0]), &[(seq[1], seq[k] + MSS)]),
            &[],
        );
        drain(&mut c, ms(29 + k as u64));
    }
    assert!(c.in_recovery());
    let srtt_before = c.srtt().unwrap();
    // The fast retransmission of segment 0 is lost too: the RTO fires, 0 is resent.
    let d = c.poll_deadline().unwrap();
    c.on_timeout(d);
    let r = drain(&mut c, d);
    assert_eq!(r[0].0.seq, seq[0]);
    // Its ACK (10 ms later) covers everything.
    c.on_segment(d + Duration::from_millis(10), &peer_ack(end), &[]);
    let srtt = c.srtt().unwrap();
    assert!(
        srtt <= srtt_before * 2,
        "SRTT {srtt:?} (was {srtt_before:?}): sample taken from segments SACKed before the RTO"
    );
}

/// Active open whose SYN timed out once (at 1 s); the SYN-ACK arrives 10 ms after the resend,
/// without timestamps, so there is no RTT sample.
fn established_after_a_retransmitted_syn() -> Connection {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    let syn = next(&mut c, t0()).unwrap().0;
    c.on_timeout(ms(1000));
    assert_eq!(next(&mut c, ms(1000)).unwrap().0.flags, Flags::SYN);
    let synack = TcpRepr {
        mss: Some(MSS as u16),
        ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
    };
    c.on_segment(ms(1010), &synack, &[]);
    drain(&mut c, ms(1010));
    c
}

/// RFC 6298 §5.7: when the SYN had to be retransmitted and no RTT sample exists, the RTO MUST
/// be re-initialised to 3 s once data transmission begins (not left at the 1 s initial RTO).
#[test]
fn rto_is_three_seconds_after_a_retransmitted_syn_without_a_sample() {
    let c = established_after_a_retransmitted_syn();
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.srtt(), None, "no sample: the SYN was retransmitted");
    assert_eq!(c.rto(), Duration::from_secs(3));
}

/// RFC 6298 §5.7 on the passive side: after the SYN-ACK timed out, data starts with a 3 s RTO,
/// not with the SYN-ACK's backed-off timeout nor the 1 s initial one.
#[test]
fn rto_is_three_seconds_after_a_retransmitted_syn_ack_without_a_sample() {
    let syn = peer_syn();
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &syn);
    drain(&mut c, t0());
    for t in [1000, 3000] {
        c.on_timeout(ms(t));
        assert_eq!(drain(&mut c, ms(t)).len(), 1, "SYN-ACK resent at {t} ms");
    }
    c.on_segment(ms(3010), &peer_ack(SeqNumber(ISS + 1)), &[]);
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.rto(), Duration::from_secs(3));
}

// ------------------------------------------------------------------ initial window

/// RFC 6928 §2: IW = min(10·MSS, max(2·MSS, 14600)) with the MSS the connection actually
/// uses, not the configured one: a peer announcing MSS 536 gets 10 × 536 bytes, not the
/// 10,000 (18.7 of its segments) the configured MSS gives.
#[test]
fn initial_window_follows_the_negotiated_mss() {
    for alg in [CongestionAlgorithm::NewReno, CongestionAlgorithm::Cubic] {
        let opts = SocketOptions {
            congestion: alg,
            timestamps: false,
            ..SocketOptions::default()
        };
        let c = established(opts, false, 536);
        assert_eq!(c.cwnd(), 10 * 536, "{alg:?}: IW must be 10 segments of 536");
    }
}

/// RFC 5681 §3.1: "If the SYN or SYN/ACK is lost, the initial window used by a sender after
/// a correctly transmitted SYN MUST be one segment."
#[test]
fn initial_window_is_one_segment_after_a_retransmitted_syn() {
    let mut c = established_after_a_retransmitted_syn();
    assert_eq!(c.cwnd(), MSS);
    c.send(&vec![0; 5 * MSS]).unwrap();
    assert_eq!(drain(&mut c, ms(1010)).len(), 1);
}

/// RFC 5681 §3.1 on the passive side: a SYN-ACK resent (here for the peer's repeated SYN)
/// means one was lost, so the server too starts from one segment.
#[test]
fn initial_window_is_one_segment_after_a_resent_syn_ack() {
    let syn = peer_syn();
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &syn);
    drain(&mut c, t0());
    c.on_segment(ms(1000), &syn, &[]);
    drain(&mut c, ms(1000));
    c.on_segment(ms(1010), &peer_ack(SeqNumber(ISS + 1)), &[]);
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.cwnd(), MSS);
}

// ------------------------------------------------------------------ SACK recovery

/// RFC 6675 §4 NextSeg() rule 4 (rescue retransmission, SHOULD): when nothing is deemed lost,
/// there is no new data and no hole below SACKed data (rule 3), the segment holding the highest
/// unSACKed sequence number is resent once per recovery. A lost last segment has nothing SACKed
/// above it, so it is never deemed lost: without the rescue it waits for the RTO.
#[test]
fn sack_recovery_resends_a_lost_last_segment_without_waiting_for_the_rto() {
    let mut c = established(SocketOptions::default(), true, MSS as u16);
    let seq = send_segments(&mut c, ms(20), 10);
    // Segments 0 and 9 are lost; 1..9 are SACKed.
    for k in 1..9 {
        c.on_segment(
            ms(29 + k as u64),
            &with_sack(peer_ack(seq[0]), &[(seq[1], seq[k] + MSS)]),
            &[],
        );
        drain(&mut c, ms(29 + k as u64));
    }
    assert!(c.in_recovery());
    // The retransmission of 0 arrives: a partial ACK up to segment 9.
    c.on_segment(ms(50), &peer_ack(seq[9]), &[]);
    let sent: Vec<SeqNumber> = drain(&mut c, ms(50))
        .into_iter()
        .map(|(r, _)| r.seq)
        .collect();
    assert_eq!(
        sent,
        vec![seq[9]],
        "the last segment should be resent in recovery (RFC 6675 rescue), not after an RTO"
    );
}

// ------------------------------------------------------------------ persist

/// RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17 allow probing a zero window forever only while the
/// peer answers; the issue asks that no timer rearm forever. With the peer gone, the user
/// timeout (RFC 5482) runs from the first unanswered probe, as it does for unacknowledged data.
#[test]
fn unanswered_zero_window_probes_end_the_connection() {
    let opts = SocketOptions {
        user_timeout: Some(Duration::from_secs(60)),
        ..SocketOptions::default()
    };
    let (end, probes) = probe_a_vanished_peer(blocked_by_a_zero_window(opts));
    assert!(probes > 0);
    assert!(end <= ms(61_000), "the user timeout ran out at {end:?}");
}

/// A connection with data waiting behind a zero window from 30 ms on.
fn blocked_by_a_zero_window(opts: SocketOptions) -> Connection {
    let mut c = established(opts, false, MSS as u16);
    c.send(&[1; 100]).unwrap();
    drain(&mut c, ms(20));
    let mut zero = peer_ack(c.snd_nxt());
    zero.window = 0;
    c.on_segment(ms(30), &zero, &[]);
    c.send(&[2; 100]).unwrap();
    drain(&mut c, ms(30));
    c
}

/// Runs the timers of a connection whose peer has vanished, for at most a virtual day; asserts
/// it timed out and returns when, and how many segments it sent.
fn probe_a_vanished_peer(mut c: Connection) -> (Instant, usize) {
    let mut now = ms(30);
    let mut probes = 0;
    while c.state() != State::Closed && now < ms(86_400_000) {
        let Some(d) = c.poll_deadline() else { break };
        now = d;
        c.on_timeout(now);
        probes += drain(&mut c, now).len();
    }
    assert_eq!(
        c.error(),
        Some(TcpError::TimedOut),
        "still {:?} after {probes} unanswered probes",
        c.state()
    );
    (now, probes)
}

// ------------------------------------------------------------------ LISTEN

/// RFC 9293 §3.10.7.2 (LISTEN, "fourth, other text or control"): a segment with neither SYN
/// nor ACK (nor RST) is dropped and counted. (Linux drops it too; answering with a RST would let
/// FIN/NULL scans see a closed port where Linux shows an open one.) A SYN-ACK still draws a RST.
#[test]
fn listener_drops_a_segment_without_syn_or_ack() {
    let mut ep = Endpoint::new(config(), [9; 16]);
    let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
    ep.listen(local, 8, SocketOptions::default()).unwrap();
    let fin = TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq: SeqNumber(1),
        flags: Flags::FIN,
        window: 1000,
        ..TcpRepr::default()
    };
    let src = Ipv4Addr::new(192, 0, 2, 1);
    let bytes = fin.to_bytes(src, *local.ip(), &[]);
    ep.on_segment(t0(), src, *local.ip(), &bytes);
    let mut out = Vec::new();
    ep.poll_transmit(t0(), &mut out);
    assert!(
        out.is_empty(),
        "LISTEN answered a FIN-only segment: {} segment(s)",
        out.len()
    );
    assert_eq!(ep.stats().endpoint.dropped_listen_no_syn_or_ack, 1);
    // RFC 9293 §3.10.7.2 second: an ACK-bearing segment, even with SYN, draws <SEQ=SEG.ACK><RST>.
    let synack = TcpRepr {
        flags: Flags::SYN | Flags::ACK,
        ack: SeqNumber(777),
        ..fin
    };
    ep.on_segment(
        t0(),
        src,
        *local.ip(),
        &synack.to_bytes(src, *local.ip(), &[]),
    );
    ep.poll_transmit(t0(), &mut out);
    assert_eq!(out.len(), 1, "a SYN-ACK to a listener draws a RST");
}

// ------------------------------------------------------------------ timestamps

/// RFC 7323 §4.1: with timestamps, the same loss pattern as
/// `segments_sacked_before_an_rto_give_no_rtt_sample_when_the_hole_fills` keeps SRTT right,
/// because the ACK echoes the retransmission's TSval.
#[test]
fn echoed_timestamps_keep_srtt_right_when_a_hole_fills_after_an_rto() {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    let syn = next(&mut c, t0()).unwrap().0;
    let ts = |tsval: u32, tsecr: u32| Some(Timestamp { tsval, tsecr });
    let synack = TcpRepr {
        mss: Some(MSS as u16),
        sack_permitted: true,
        timestamp: ts(1, syn.timestamp.unwrap().tsval),
        ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
    };
    c.on_segment(ms(10), &synack, &[]);
    drain(&mut c, ms(10));
    let data = vec![0u8; 10 * MSS];
    c.send(&data).unwrap();
    let sent = drain(&mut c, ms(20));
    let seq: Vec<SeqNumber> = sent.iter().map(|(r, _)| r.seq).collect();
    let mss = sent[0].0.payload_len;
    for k in 1..10 {
        let mut a = with_sack(peer_ack(seq[0]), &[(seq[1], seq[k] + mss)]);
        a.timestamp = ts(2, sent[0].0.timestamp.unwrap().tsval);
        c.on_segment(ms(29 + k as u64), &a, &[]);
        drain(&mut c, ms(29 + k as u64));
    }
    let before = c.srtt().unwrap();
    let d = c.poll_deadline().unwrap();
    c.on_timeout(d);
    let r = drain(&mut c, d);
    let mut a = peer_ack(c.snd_nxt());
    a.timestamp = ts(3, r[0].0.timestamp.unwrap().tsval);
    c.on_segment(d + Duration::from_millis(10), &a, &[]);
    assert!(c.srtt().unwrap() <= before * 2);
}

// ------------------------------------------------------------------ ACK storms

/// RFC 9293 §3.10.7.4 answers an unacceptable segment with an ACK; for empty segments those
/// ACKs are rate-limited (Linux: tcp_invalid_ratelimit, 500 ms), or two peers out of step ACK
/// each other for ever. Segments with data always get their ACK.
#[test]
fn acks_for_empty_unacceptable_segments_are_rate_limited() {
    let mut c = established(SocketOptions::default(), false, MSS as u16);
    let stale = peer(Flags::ACK, PEER_ISS.wrapping_sub(100_000), c.snd_nxt());
    let mut answered = Vec::new();
    for t in [20, 120, 400, 530] {
        c.on_segment(ms(t), &stale, &[]);
        answered.push(drain(&mut c, ms(t)).len());
    }
    assert_eq!(answered, vec![1, 0, 0, 1]);
    assert_eq!(c.stats().invalid_acks_suppressed, 2);
    let stale_data = TcpRepr {
        payload_len: 10,
        ..stale
    };
    c.on_segment(ms(540), &stale_data, &[0; 10]);
    assert_eq!(drain(&mut c, ms(540)).len(), 1, "data always gets its ACK");
}

// ------------------------------------------------------------------ D-SACK

/// A data segment from the peer: `len` bytes at `off` past the peer's ISS + 1.
fn peer_data(c: &Connection, off: u32, len: usize) -> TcpRepr {
    TcpRepr {
        payload_len: len,
        ..peer(Flags::ACK, PEER_ISS + 1 + off, c.snd_nxt())
    }
}

/// RFC 2883 §4: a segment only partly below RCV.NXT (it straddles it) reports its duplicate
/// part as a D-SACK block.
#[test]
fn partly_duplicate_segment_reports_its_duplicate_part_as_dsack() {
    let mut c = established(SocketOptions::default(), true, MSS as u16);
    c.on_segment(ms(20), &peer_data(&c, 0, 100), &[1; 100]);
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &peer_data(&c, 50, 100), &[1; 100]);
    let out = drain(&mut c, ms(30));
    let block = out.last().and_then(|(r, _)| r.sack.iter().next());
    let start = SeqNumber(PEER_ISS + 51);
    assert_eq!(
        block,
        Some(SackBlock {
            start,
            end: start + 50
        })
    );
}

/// RFC 2883 §4: when the duplicate lies in out-of-order data held above RCV.NXT, the second
/// block is the one holding it, even if another block is more recent.
#[test]
fn dsack_above_rcv_nxt_is_followed_by_the_block_holding_it() {
    let mut c = established(SocketOptions::default(), true, MSS as u16);
    c.on_segment(ms(20), &peer_data(&c, 100, 100), &[1; 100]);
    c.on_segment(ms(21), &peer_data(&c, 300, 100), &[1; 100]);
    drain(&mut c, ms(21));
    c.on_segment(ms(30), &peer_data(&c, 100, 100), &[1; 100]);
    let out = drain(&mut c, ms(30));
    let blocks: Vec<(u32, u32)> = out
        .last()
        .unwrap()
        .0
        .sack
        .iter()
        .map(|b| (b.start.0 - PEER_ISS - 1, b.end.0 - PEER_ISS - 1))
        .collect();
    assert_eq!(blocks, vec![(100, 200), (100, 200), (300, 400)]);
}

// ------------------------------------------------------------------ close

/// RFC 2525 §2.17 as Linux applies it: close with unread data resets, but only in-order data
/// was ever readable. With nothing but out-of-order bytes held, close sends a FIN.
#[test]
fn close_with_only_out_of_order_data_sends_a_fin() {
    let mut c = established(SocketOptions::default(), true, MSS as u16);
    let ooo = TcpRepr {
        payload_len: 100,
        ..peer(Flags::ACK, PEER_ISS + 101, c.snd_nxt())
    };
    c.on_segment(ms(20), &ooo, &[0; 100]);
    drain(&mut c, ms(20));
    assert_eq!((c.readable(), c.recv_queued()), (0, 100));
    c.close(Some(ms(30)));
    let out = drain(&mut c, ms(30));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.flags, Flags::FIN | Flags::ACK);
    assert_eq!(c.state(), State::FinWait1);
}

// ------------------------------------------------------------------ restart after idle

/// RFC 5681 §4.1: after an idle period longer than the RTO the sender SHOULD restart from
/// RW = min(IW, cwnd) (Linux: tcp_slow_start_after_idle = 1). Nothing in connection.rs or the
/// controllers looks at idle time, so a window grown earlier is sent as one line-rate burst
/// after any pause.
#[test]
fn cwnd_restarts_from_the_initial_window_after_idle() {
    let mut c = established(SocketOptions::default(), false, MSS as u16);
    // Grow cwnd from 10 to 20 segments: 10 segments each acknowledged separately.
    let seq = send_segments(&mut c, ms(20), 10);
    for (k, s) in seq.iter().enumerate() {
        c.on_segment(ms(30 + k as u64), &peer_ack(*s + MSS), &[]);
        drain(&mut c, ms(30 + k as u64));
    }
    assert_eq!(c.snd_una(), c.snd_nxt());
    assert!(c.cwnd() >= 20 * MSS);
    // Ten seconds idle (RTO is 200 ms), then a large write.
    let now = ms(10_000);
    c.send(&vec![7u8; 40 * MSS]).unwrap();
    let burst = drain(&mut c, now).len();
    assert!(
        burst <= 10,
        "{burst} segments sent back to back after 10 s idle"
    );
}

/// RFC 7661 §4.4 in the form Linux uses (tcp_is_cwnd_limited): cwnd grows only while the
/// sender uses it. An application sending one segment per round trip for fifty round trips has
/// not shown that the path takes more than the initial window; a cwnd grown on its ACKs would
/// later leave as one burst.
#[test]
fn cwnd_does_not_grow_while_the_application_limits_the_sender() {
    let mut c = established(SocketOptions::default(), false, MSS as u16);
    let iw = c.cwnd();
    for k in 0..50 {
        let t = 20 + 20 * k;
        let seq = send_segments(&mut c, ms(t), 1);
        c.on_segment(ms(t + 10), &peer_ack(seq[0] + MSS), &[]);
        drain(&mut c, ms(t + 10));
    }
    assert_eq!(c.cwnd(), iw);
    // A sender that fills the window grows it.
    let seq = send_segments(&mut c, ms(1100), 10);
    for (k, s) in seq.iter().enumerate() {
        c.on_segment(ms(1110 + k as u64), &peer_ack(*s + MSS), &[]);
    }
    assert_eq!(c.cwnd(), iw + 10 * MSS);
}

// ------------------------------------------------------------------ TIME-WAIT memory

mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local!(static NET: Cell<isize> = const { Cell::new(0) });

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let _ = NET.try_with(|n| n.set(n.get() + l.size() as isize));
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            let _ = NET.try_with(|n| n.set(n.get() - l.size() as isize));
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            let _ = NET.try_with(|n| n.set(n.get() + new as isize - l.size() as isize));
            unsafe { System.realloc(p, l, new) }
        }
    }

    /// Net bytes allocated by this thread so far.
    pub fn net() -> isize {
        NET.with(|n| n.get())
    }
}

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

/// Bounded memory (issue 4, house rules): a connection in TIME-WAIT needs only its 4-tuple,
/// sequence numbers, timestamps and a deadline, and lives 2×MSL = 60 s. It must not keep its
/// receive ring (256 KiB by default) or send buffer, or every recently closed connection pins
/// about 0.5 MiB for a minute. (The number of TIME-WAIT connections is bounded as well:
/// `TcpConfig::max_time_wait`, tested in the endpoint's unit tests.)
#[test]
fn time_wait_connection_keeps_no_buffers() {
    use netstack_transport::tcp::testing::pump;
    use netstack_transport::tcp::TcpEvent;
    let a_ip = Ipv4Addr::new(192, 0, 2, 1);
    let b_ip = Ipv4Addr::new(192, 0, 2, 2);
    let mut a = Endpoint::new(TcpConfig::default(), [1; 16]);
    let mut b = Endpoint::new(TcpConfig::default(), [2; 16]);
    b.listen(SocketAddrV4::new(b_ip, 80), 8, SocketOptions::default())
        .unwrap();
    let t = t0();
    let mut buf = vec![0u8; 300_000];
    let baseline = alloc_count::net();
    let tuple = FourTuple {
        local: SocketAddrV4::new(a_ip, 4000),
        remote: SocketAddrV4::new(b_ip, 80),
    };
    let id = a.connect(t, tuple, SocketOptions::default()).unwrap();
    pump(&mut a, &mut b, t);
    let sid = std::iter::from_fn(|| b.poll_event())
        .find_map(|e| match e {
            TcpEvent::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    // 64 KiB each way, all read.
    a.send(id, &[1; 65536]).unwrap();
    b.send(sid, &[2; 65536]).unwrap();
    pump(&mut a, &mut b, t);
    while b.recv(sid, &mut buf).is_ok_and(|n| n > 0) {}
    while a.recv(id, &mut buf).is_ok_and(|n| n > 0) {}
    pump(&mut a, &mut b, t);
    // a closes first, b follows: a ends in TIME-WAIT, b's connection is gone.
    a.close(id);
    pump(&mut a, &mut b, t);
    let _ = b.recv(sid, &mut buf);
    b.close(sid);
    pump(&mut a, &mut b, t);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert_eq!(a.connection_count(), 1, "a's connection is in TIME-WAIT");
    assert_eq!(b.connection_count(), 0);
    let held = alloc_count::net() - baseline;
    drop(buf);
    assert!(
        held < 32 * 1024,
        "{held} bytes still allocated with one connection in TIME-WAIT"
    );
}

/// The same bound for a connection that ended with a reset but whose handle the application
/// still holds: CLOSED keeps neither its unsent data nor its (read) receive ring.
#[test]
fn reset_connection_keeps_no_buffers() {
    let mut c = established(SocketOptions::default(), false, MSS as u16);
    let before = alloc_count::net();
    c.send(&vec![1; 100_000]).unwrap();
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &peer_data(&c, 0, 1000), &[2; 1000]);
    let mut buf = [0u8; 1000];
    assert_eq!(c.recv(&mut buf), Ok(1000));
    assert!(alloc_count::net() - before > 200_000, "buffers in use");
    let rst = peer(Flags::RST, PEER_ISS + 1001, SeqNumber(0));
    c.on_segment(ms(40), &rst, &[]);
    assert_eq!(c.error(), Some(TcpError::ConnectionReset));
    let held = alloc_count::net() - before;
    assert!(held < 8 * 1024, "{held} bytes still held after the reset");
    assert_eq!(c.send_queued(), 0);
}

// ------------------------------------------------------------------ segment size vs options

/// RFC 9293 §3.7.1 / RFC 6691: the MSS limits the data plus TCP options beyond the fixed
/// 20-byte header, so a segment may be at most 20 + MSS bytes of TCP. SACK blocks (12–36 bytes,
/// D-SACK included) ride on every segment while out-of-order data is held, so a data segment
/// carrying them holds less data. Otherwise it exceeds the path MTU: with DF set it is dropped,
/// the ICMP "fragmentation needed" names the same MTU, and every retransmission (carrying the
/// blocks again) is lost too. (Linux shrinks the segment by the option's size: tcp_current_mss.)
#[test]
fn data_segments_carrying_sack_blocks_stay_within_the_mss() {
    for ts in [false, true] {
        let mut c = Connection::connect(t0(), params(SocketOptions::default()));
        let syn = next(&mut c, t0()).unwrap().0;
        let stamp = |v: u32| ts.then_some(Timestamp { tsval: v, tsecr: 1 });
        let synack = TcpRepr {
            mss: Some(MSS as u16),
            sack_permitted: true,
            timestamp: stamp(1),
            ..peer(Flags::SYN | Flags::ACK, PEER_ISS, syn.seq + 1)
        };
        c.on_segment(ms(10), &synack, &[]);
        drain(&mut c, ms(10));
        // The peer's first 100 bytes are lost; the next 100 arrive out of order.
        let ooo = TcpRepr {
            timestamp: stamp(2),
            payload_len: 100,
            ..peer(Flags::ACK, PEER_ISS + 101, c.snd_nxt())
        };
        c.on_segment(ms(20), &ooo, &[0; 100]);
        // Meanwhile our application writes.
        c.send(&vec![1u8; 4 * MSS]).unwrap();
        for (r, p) in drain(&mut c, ms(20)) {
            let tcp_len = r.header_len() + p.len();
            assert!(
                tcp_len <= 20 + MSS,
                "ts={ts}: {tcp_len}-byte TCP segment ({} header, {} data, {} SACK blocks) \
                 for MSS {MSS}",
                r.header_len(),
                p.len(),
                r.sack.len()
            );
        }
    }
}

// ------------------------------------------------------------------ keepalive after a stall

/// RFC 1122 §4.2.3.6 / RFC 9293 §3.8.4: keepalive probes are spaced by the interval so the
/// peer can answer. When the timer is serviced late (a stalled worker, a suspended host, or
/// keepalive switched on with `set_options` on a connection already idle), the connection sends
/// a probe and waits, rather than ending at once with TimedOut (deadlines anchored at the last
/// segment received were all already past). Linux sends one probe and waits the interval.
#[test]
fn keepalive_gives_the_peer_an_interval_to_answer_after_a_late_timer() {
    use netstack_transport::tcp::testing::pump;
    use netstack_transport::tcp::{Keepalive, TcpEvent};
    let a_ip = Ipv4Addr::new(192, 0, 2, 1);
    let b_ip = Ipv4Addr::new(192, 0, 2, 2);
    let mut a = Endpoint::new(TcpConfig::default(), [1; 16]);
    let mut b = Endpoint::new(TcpConfig::default(), [2; 16]);
    b.listen(SocketAddrV4::new(b_ip, 80), 8, SocketOptions::default())
        .unwrap();
    let ka = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let tuple = FourTuple {
        local: SocketAddrV4::new(a_ip, 4000),
        remote: SocketAddrV4::new(b_ip, 80),
    };
    let id = a.connect(t0(), tuple, ka).unwrap();
    pump(&mut a, &mut b, t0());
    assert!(std::iter::from_fn(|| b.poll_event()).any(|e| matches!(e, TcpEvent::Accepted { .. })));
    // The worker is serviced again only after a minute (host suspended, worker stalled).
    let late = t0() + Duration::from_secs(60);
    a.on_timeout(late);
    let mut out = Vec::new();
    a.poll_transmit(late, &mut out);
    assert_eq!(
        a.state(id),
        Some(State::Established),
        "keepalive gave up at one instant after sending {} segment(s)",
        out.len()
    );
}

/// RFC 1122 §4.2.3.6, at the level of one connection: after a late timer the worker services
/// every deadline that is due, yet only one probe goes out and the next waits a whole interval;
/// after `count` unanswered probes, each an interval apart, the connection ends with a RST.
#[test]
fn keepalive_probes_are_an_interval_apart_even_after_a_late_timer() {
    use netstack_transport::tcp::Keepalive;
    let interval = Duration::from_secs(2);
    let opts = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval,
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let mut c = established(opts, false, MSS as u16);
    let late = ms(60_000);
    let mut probes = 0;
    while c.poll_deadline().is_some_and(|d| d <= late) {
        c.on_timeout(late);
        probes += drain(&mut c, late).len();
        assert!(probes < 10, "the keepalive timer re-arms at once");
    }
    assert_eq!((c.state(), probes), (State::Established, 1));
    for k in 1..3 {
        let d = c.poll_deadline().unwrap();
        assert_eq!(d, late + interval * k);
        c.on_timeout(d);
        let out = drain(&mut c, d);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.seq, c.snd_una() - 1, "a probe below SND.UNA");
    }
    let d = c.poll_deadline().unwrap();
    assert_eq!(d, late + interval * 3);
    c.on_timeout(d);
    assert_eq!(c.error(), Some(TcpError::TimedOut));
    let out = drain(&mut c, d);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].0.flags,
        Flags::RST | Flags::ACK,
        "a RST tells the peer"
    );
}

/// RFC 1122 §4.2.3.6 with RFC 9293 §3.10.7.4: only an acceptable segment shows the peer is
/// alive. An old segment outside the window draws an ACK but does not restart the idle time.
#[test]
fn unacceptable_segment_does_not_restart_the_keepalive_idle_time() {
    use netstack_transport::tcp::Keepalive;
    let opts = SocketOptions {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(2),
            count: 3,
        }),
        ..SocketOptions::default()
    };
    let mut c = established(opts, false, MSS as u16);
    let first = c.poll_deadline().unwrap();
    assert_eq!(first, ms(10) + Duration::from_secs(10));
    let old = TcpRepr {
        payload_len: 10,
        ..peer(Flags::ACK, PEER_ISS.wrapping_sub(100_000), c.snd_nxt())
    };
    c.on_segment(ms(5_000), &old, &[0; 10]);
    assert_eq!(
        drain(&mut c, ms(5_000)).len(),
        1,
        "an unacceptable segment draws an ACK"
    );
    assert_eq!(c.poll_deadline(), Some(first));
    // An acceptable one does restart it.
    c.on_segment(ms(6_000), &peer_ack(c.snd_nxt()), &[]);
    assert_eq!(c.poll_deadline(), Some(ms(16_000)));
}

/// RFC 1122 §4.2.2.17: without a user timeout, unanswered zero-window probes are bounded by the
/// retry limit (`max_retries`, Linux's tcp_retries2), after which the connection times out.
#[test]
fn zero_window_probes_give_up_after_the_retry_limit() {
    let c = blocked_by_a_zero_window(SocketOptions::default());
    let (end, probes) = probe_a_vanished_peer(c);
    assert_eq!(probes, config().max_retries as usize);
    assert!(end < ms(3_600_000), "gave up only after {end:?}");
}
