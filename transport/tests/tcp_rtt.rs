//! RTT samples and the retransmission timeout of one connection: Karn's rule for resent SYNs,
//! SYN-ACKs and segments (RFC 6298 §3), the 3 s RTO after a lost SYN without a sample (RFC 6298
//! §5.7), and timestamps that must not measure a recovery (RFC 7323 §4.1). Each test states the
//! rule it checks; the helpers are `netstack_transport::tcp::testing`.

use std::time::Duration;

use netstack_transport::tcp::connection::{Connection, State};
use netstack_transport::tcp::segment::Timestamp;
use netstack_transport::tcp::testing::*;
use netstack_transport::tcp::{Flags, SeqNumber, SocketOptions, TcpRepr};

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
    let mut c = established_with(SocketOptions::default(), SACK).0;
    let seq = seqs(&send_segments(&mut c, ms(20), 10));
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
