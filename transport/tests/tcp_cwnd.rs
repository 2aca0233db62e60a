//! The congestion window of one connection: the initial window (RFC 6928 §2, RFC 5681 §3.1),
//! restart after idle (RFC 5681 §4.1), no growth while the application limits the sender
//! (RFC 7661), and SACK recovery of a lost last segment (RFC 6675 §4). The helpers are
//! `netstack_transport::tcp::testing`.

use netstack_transport::tcp::connection::{Connection, State};
use netstack_transport::tcp::testing::*;
use netstack_transport::tcp::{CongestionAlgorithm, SeqNumber, SocketOptions};

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
        let c = established_with(
            opts,
            PeerOpts {
                mss: Some(536),
                ..PLAIN
            },
        )
        .0;
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

/// RFC 6675 §4 NextSeg() rule 4 (rescue retransmission, SHOULD): when nothing is deemed lost,
/// there is no new data and no hole below SACKed data (rule 3), the segment holding the highest
/// unSACKed sequence number is resent once per recovery. A lost last segment has nothing SACKed
/// above it, so it is never deemed lost: without the rescue it waits for the RTO.
#[test]
fn sack_recovery_resends_a_lost_last_segment_without_waiting_for_the_rto() {
    let mut c = established_with(SocketOptions::default(), SACK).0;
    let seq = seqs(&send_segments(&mut c, ms(20), 10));
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

/// RFC 5681 §4.1: after an idle period longer than the RTO the sender SHOULD restart from
/// RW = min(IW, cwnd) (Linux: tcp_slow_start_after_idle = 1). Nothing in the connection or the
/// controllers looks at idle time, so a window grown earlier is sent as one line-rate burst
/// after any pause.
#[test]
fn cwnd_restarts_from_the_initial_window_after_idle() {
    let mut c = established().0;
    // Grow cwnd from 10 to 20 segments: 10 segments each acknowledged separately.
    let seq = seqs(&send_segments(&mut c, ms(20), 10));
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
    let mut c = established().0;
    let iw = c.cwnd();
    for k in 0..50 {
        let t = 20 + 20 * k;
        let seq = seqs(&send_segments(&mut c, ms(t), 1));
        c.on_segment(ms(t + 10), &peer_ack(seq[0] + MSS), &[]);
        drain(&mut c, ms(t + 10));
    }
    assert_eq!(c.cwnd(), iw);
    // A sender that fills the window grows it.
    let seq = seqs(&send_segments(&mut c, ms(1100), 10));
    for (k, s) in seq.iter().enumerate() {
        c.on_segment(ms(1110 + k as u64), &peer_ack(*s + MSS), &[]);
    }
    assert_eq!(c.cwnd(), iw + 10 * MSS);
}
