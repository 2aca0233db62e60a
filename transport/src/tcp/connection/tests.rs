//! Unit tests, one per rule, driving a single connection with virtual time and hand-made
//! peer segments.

use std::time::Duration;

use super::*;
use crate::tcp::segment::{SackBlock, TcpRepr, Timestamp};
use crate::tcp::testing::*;
use crate::tcp::CongestionAlgorithm;
use netstack_network::wire::DstUnreachable;
use std::sync::Arc;

// ------------------------------------------------------------------ handshake

#[test]
fn active_open_sends_syn_with_every_enabled_option() {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    assert_eq!(c.state(), State::SynSent);
    let syn = next_seg(&mut c, t0());
    assert_eq!(syn.flags, Flags::SYN);
    assert_eq!(syn.seq, SeqNumber(100));
    assert_eq!(syn.mss, Some(MSS as u16));
    assert!(syn.sack_permitted);
    assert!(syn.timestamp.is_some());
    // 256 KiB needs a shift of 3 to fit 16 bits (RFC 7323 §2.3).
    assert_eq!(syn.window_scale, Some(3));
    assert_eq!(c.snd_nxt(), SeqNumber(101));
}

#[test]
fn options_are_enabled_only_when_both_sides_offer_them() {
    // RFC 7323 §1.3, RFC 2018 §2
    let (c, _) = established_with(SocketOptions::default(), PLAIN);
    assert_eq!(
        c.options_enabled(),
        EnabledOptions {
            window_scaling: false,
            timestamps: false,
            sack: false
        }
    );
    let (c, _) = established_with(
        SocketOptions::default(),
        PeerOpts {
            ts: true,
            sack: true,
            ws: Some(2),
            mss: None,
        },
    );
    assert_eq!(
        c.options_enabled(),
        EnabledOptions {
            window_scaling: true,
            timestamps: true,
            sack: true
        }
    );
}

#[test]
fn peer_without_mss_option_gets_536_byte_segments() {
    // RFC 9293 §3.7.1: the default send MSS is 536.
    let (mut c, _) = established_with(SocketOptions::default(), PeerOpts { mss: None, ..PLAIN });
    c.send(&[0u8; 2000]).unwrap();
    let (r, _) = next(&mut c, ms(20)).unwrap();
    assert_eq!(r.payload_len, 536);
}

#[test]
fn mss_is_clamped_to_the_peers() {
    let (mut c, _) = established_with(
        SocketOptions::default(),
        PeerOpts {
            mss: Some(700),
            ..PLAIN
        },
    );
    c.send(&[0u8; 2000]).unwrap();
    assert_eq!(next_seg(&mut c, ms(20)).payload_len, 700);
}

#[test]
fn timestamps_take_their_bytes_out_of_the_mss() {
    // RFC 6691 §2: options reduce the data a segment carries.
    let (mut c, _) = established_with(SocketOptions::default(), TS);
    c.send(&[0u8; 2000]).unwrap();
    assert_eq!(next_seg(&mut c, ms(20)).payload_len, MSS - 12);
}

#[test]
fn window_scale_shifts_the_window_field_after_the_handshake() {
    // RFC 7323 §2.2: SYN windows are unscaled, later ones are shifted.
    let (mut c, mut p) = established_with(
        SocketOptions::default(),
        PeerOpts {
            ws: Some(4),
            ..PLAIN
        },
    );
    let mut seg = p.ack(&c, c.snd_nxt());
    seg.seq = p.seq;
    seg.window = 1000;
    p.seq += 0;
    c.on_segment(ms(20), &seg, &[]);
    assert_eq!(c.snd_wnd(), 16_000);
    c.send(b"x").unwrap();
    let r = next_seg(&mut c, ms(20));
    assert_eq!(usize::from(r.window) << 3, 256 * 1024);
}

#[test]
fn syn_sent_rst_with_acceptable_ack_refuses_the_connection() {
    // RFC 9293 §3.10.7.3
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let rst = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(0),
        ack: SeqNumber(101),
        flags: Flags::RST | Flags::ACK,
        ..TcpRepr::default()
    };
    c.on_segment(ms(1), &rst, &[]);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(TcpError::ConnectionRefused))]
    );
}

#[test]
fn syn_sent_rst_with_unacceptable_ack_is_ignored() {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let rst = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        ack: SeqNumber(5),
        flags: Flags::RST | Flags::ACK,
        ..TcpRepr::default()
    };
    c.on_segment(ms(1), &rst, &[]);
    assert_eq!(c.state(), State::SynSent);
    assert!(next(&mut c, ms(1)).is_none());
}

#[test]
fn syn_sent_ack_of_unsent_data_draws_rst() {
    // RFC 9293 §3.10.7.3: <SEQ=SEG.ACK><CTL=RST>
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let bad = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(9),
        ack: SeqNumber(500),
        flags: Flags::SYN | Flags::ACK,
        ..TcpRepr::default()
    };
    c.on_segment(ms(1), &bad, &[]);
    let r = next_seg(&mut c, ms(1));
    assert_eq!(r.flags, Flags::RST);
    assert_eq!(r.seq, SeqNumber(500));
    assert_eq!(c.state(), State::SynSent);
}

#[test]
fn simultaneous_open_reaches_established() {
    // RFC 9293 §3.5 figure 7
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let syn = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(PEER_ISS),
        flags: Flags::SYN,
        window: 65535,
        ..TcpRepr::default()
    };
    c.on_segment(ms(1), &syn, &[]);
    assert_eq!(c.state(), State::SynReceived);
    let synack = next_seg(&mut c, ms(1));
    assert_eq!(synack.flags, Flags::SYN | Flags::ACK);
    assert_eq!(synack.seq, SeqNumber(100));
    assert_eq!(synack.ack, SeqNumber(PEER_ISS + 1));
    let peer_synack = TcpRepr {
        ack: SeqNumber(101),
        flags: Flags::SYN | Flags::ACK,
        ..syn
    };
    c.on_segment(ms(2), &peer_synack, &[]);
    assert_eq!(c.state(), State::Established);
}

#[test]
fn syn_is_retransmitted_with_backoff_and_gives_up_after_syn_retries() {
    // RFC 6298 §5.5 and §5.7; RFC 9293 §3.8.3 R2 for SYNs.
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let mut now = t0();
    let mut gaps = Vec::new();
    loop {
        let d = c.poll_deadline().expect("a SYN timer");
        gaps.push(d.duration_since(now).as_secs());
        now = d;
        c.on_timeout(now);
        if c.state() == State::Closed {
            break;
        }
        assert_eq!(next_seg(&mut c, now).flags, Flags::SYN);
    }
    assert_eq!(gaps, vec![1, 2, 4, 8, 16, 32, 64]);
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(TcpError::TimedOut))]
    );
}

// ------------------------------------------------------------------ data and close

#[test]
fn data_flows_and_is_acknowledged() {
    let (mut c, mut p) = established();
    assert_eq!(c.send(b"hello").unwrap(), 5);
    let (r, payload) = next(&mut c, ms(20)).unwrap();
    assert_eq!(payload, b"hello");
    assert_eq!(r.seq, SeqNumber(101));
    assert!(r.flags.contains(Flags::PSH | Flags::ACK));
    c.on_segment(ms(30), &p.ack(&c, SeqNumber(106)), &[]);
    assert_eq!(c.send_queued(), 0);
    assert_eq!(c.poll_deadline(), None);
    // And the other way.
    let seg = p.seg(&c, Flags::ACK | Flags::PSH, p.seq, 3);
    p.seq += 3;
    c.on_segment(ms(40), &seg, b"abc");
    assert_eq!(events(&mut c), vec![Event::Readable]);
    let mut buf = [0u8; 10];
    assert_eq!(c.recv(&mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(c.recv(&mut buf), Err(TcpError::WouldBlock));
}

#[test]
fn orderly_close_passes_fin_wait_states_into_time_wait() {
    // RFC 9293 §3.6 figure 12 (active close)
    let (mut c, mut p) = established();
    c.shutdown_write();
    assert_eq!(c.state(), State::FinWait1);
    let fin = next_seg(&mut c, ms(20));
    assert_eq!(fin.flags, Flags::FIN | Flags::ACK);
    c.on_segment(ms(30), &p.ack(&c, fin.seq + 1), &[]);
    assert_eq!(c.state(), State::FinWait2);
    let pfin = p.seg(&c, Flags::FIN | Flags::ACK, p.seq, 0);
    p.seq += 1;
    c.on_segment(ms(40), &pfin, &[]);
    assert_eq!(c.state(), State::TimeWait);
    let ack = next_seg(&mut c, ms(40));
    assert_eq!(ack.ack, p.seq);
    let mut buf = [0u8; 4];
    assert_eq!(c.recv(&mut buf), Ok(0));
}

#[test]
fn passive_close_goes_through_close_wait_and_last_ack() {
    let (mut c, mut p) = established();
    let pfin = p.seg(&c, Flags::FIN | Flags::ACK, p.seq, 0);
    p.seq += 1;
    c.on_segment(ms(20), &pfin, &[]);
    assert_eq!(c.state(), State::CloseWait);
    assert_eq!(next_seg(&mut c, ms(20)).ack, p.seq);
    let mut buf = [0u8; 4];
    assert_eq!(c.recv(&mut buf), Ok(0));
    // Half-close: we may still send.
    assert_eq!(c.send(b"late").unwrap(), 4);
    c.shutdown_write();
    assert_eq!(c.state(), State::LastAck);
    let (r, payload) = next(&mut c, ms(21)).unwrap();
    assert_eq!(payload, b"late");
    assert!(r.flags.fin());
    c.on_segment(ms(30), &p.ack(&c, r.seq + 5), &[]);
    assert_eq!(c.state(), State::Closed);
    assert!(events(&mut c).contains(&Event::Closed(None)));
}

#[test]
fn simultaneous_close_goes_through_closing() {
    // RFC 9293 §3.6 figure 13
    let (mut c, mut p) = established();
    c.shutdown_write();
    let fin = next_seg(&mut c, ms(20));
    let pfin = p.seg(&c, Flags::FIN | Flags::ACK, p.seq, 0);
    let pfin = TcpRepr {
        ack: fin.seq,
        ..pfin
    };
    p.seq += 1;
    c.on_segment(ms(21), &pfin, &[]);
    assert_eq!(c.state(), State::Closing);
    c.on_segment(ms(22), &p.ack(&c, fin.seq + 1), &[]);
    assert_eq!(c.state(), State::TimeWait);
}

#[test]
fn time_wait_lasts_2msl_and_reacks_a_retransmitted_fin() {
    // RFC 9293 §3.10.7.4 eighth: TIME-WAIT acknowledges a retransmitted FIN and restarts.
    let (mut c, mut p) = established();
    c.shutdown_write();
    let fin = next_seg(&mut c, ms(20));
    c.on_segment(ms(30), &p.ack(&c, fin.seq + 1), &[]);
    let pfin = p.seg(&c, Flags::FIN | Flags::ACK, p.seq, 0);
    c.on_segment(ms(40), &pfin, &[]);
    p.seq += 1;
    drain(&mut c, ms(40));
    assert_eq!(c.poll_deadline(), Some(ms(40) + Duration::from_secs(60)));
    // The peer lost our ACK and retransmits its FIN 1 s later.
    c.on_segment(ms(1040), &pfin, &[]);
    let ack = next_seg(&mut c, ms(1040));
    assert_eq!(ack.flags, Flags::ACK);
    assert_eq!(ack.ack, p.seq);
    assert_eq!(c.poll_deadline(), Some(ms(1040) + Duration::from_secs(60)));
    c.on_timeout(ms(1040) + Duration::from_secs(59));
    assert_eq!(c.state(), State::TimeWait);
    c.on_timeout(ms(1040) + Duration::from_secs(60));
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn rst_in_time_wait_is_ignored() {
    // RFC 1337: TIME-WAIT assassination.
    let (mut c, mut p) = established();
    c.shutdown_write();
    let fin = next_seg(&mut c, ms(20));
    c.on_segment(ms(30), &p.ack(&c, fin.seq + 1), &[]);
    c.on_segment(ms(40), &p.seg(&c, Flags::FIN | Flags::ACK, p.seq, 0), &[]);
    p.seq += 1;
    c.on_segment(ms(50), &p.seg(&c, Flags::RST, p.seq, 0), &[]);
    assert_eq!(c.state(), State::TimeWait);
}

#[test]
fn close_with_unread_data_sends_rst() {
    // RFC 2525 §2.17, as Linux does.
    let (mut c, mut p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 3), b"abc");
    p.seq += 3;
    drain(&mut c, ms(20));
    c.close(Some(ms(21)));
    let r = next_seg(&mut c, ms(21));
    assert!(r.flags.rst());
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn linger_zero_close_sends_rst() {
    let (mut c, _) = established_with(
        SocketOptions {
            linger_zero: true,
            ..SocketOptions::default()
        },
        PLAIN,
    );
    c.close(Some(ms(21)));
    assert!(next_seg(&mut c, ms(21)).flags.rst());
    assert!(c.is_closed());
}

#[test]
fn data_after_close_draws_rst() {
    let (mut c, mut p) = established();
    c.close(Some(ms(20)));
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &p.seg(&c, Flags::ACK, p.seq, 3), b"abc");
    p.seq += 3;
    assert!(next_seg(&mut c, ms(30)).flags.rst());
    assert_eq!(c.state(), State::Closed);
}

#[test]
fn send_after_shutdown_is_a_broken_pipe() {
    let (mut c, _) = established();
    c.shutdown_write();
    assert_eq!(c.send(b"x"), Err(TcpError::BrokenPipe));
}

#[test]
fn fin_wait2_of_an_orphan_times_out() {
    let (mut c, p) = established();
    c.close(Some(ms(20)));
    let fin = next_seg(&mut c, ms(20));
    c.on_segment(ms(30), &p.ack(&c, fin.seq + 1), &[]);
    assert_eq!(c.state(), State::FinWait2);
    assert_eq!(c.poll_deadline(), Some(ms(30) + Duration::from_secs(60)));
    c.on_timeout(ms(30) + Duration::from_secs(60));
    assert_eq!(c.state(), State::Closed);
    // Like Linux, a RST tells the peer (which may sit in CLOSE-WAIT) that it is gone.
    let r = next_seg(&mut c, ms(30) + Duration::from_secs(60));
    assert_eq!((r.flags, r.seq), (Flags::RST | Flags::ACK, fin.seq + 1));
    assert!(c.is_closed());
}

// ------------------------------------------------------------------ acceptability, RST, RFC 5961

#[test]
fn unacceptable_segment_draws_an_ack() {
    // RFC 9293 §3.10.7.4: outside the window, send <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
    let (mut c, p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq + 1_000_000, 3), b"abc");
    let r = next_seg(&mut c, ms(20));
    assert_eq!((r.flags, r.seq, r.ack), (Flags::ACK, c.snd_nxt(), p.seq));
    assert_eq!(c.recv_queued(), 0);
}

#[test]
fn rst_in_window_but_not_exact_draws_a_challenge_ack() {
    // RFC 5961 §3.2
    let (mut c, p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::RST, p.seq + 1, 0), &[]);
    assert_eq!(c.state(), State::Established);
    let r = next_seg(&mut c, ms(20));
    assert_eq!(r.flags, Flags::ACK);
    assert_eq!(r.ack, p.seq);
    assert_eq!(c.stats().challenge_acks, 1);
}

#[test]
fn rst_exactly_at_rcv_nxt_resets_the_connection() {
    // RFC 5961 §3.2
    let (mut c, p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::RST, p.seq, 0), &[]);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(
        events(&mut c),
        vec![Event::Closed(Some(TcpError::ConnectionReset))]
    );
    let mut buf = [0u8; 1];
    assert_eq!(c.recv(&mut buf), Err(TcpError::ConnectionReset));
    assert!(next(&mut c, ms(20)).is_none(), "never answer a RST");
}

#[test]
fn rst_outside_the_window_is_dropped_silently() {
    let (mut c, p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::RST, p.seq + 10_000_000, 0), &[]);
    assert_eq!(c.state(), State::Established);
    assert!(next(&mut c, ms(20)).is_none());
}

#[test]
fn syn_in_established_draws_a_challenge_ack() {
    // RFC 5961 §4.2
    let (mut c, p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::SYN, p.seq + 5, 0), &[]);
    assert_eq!(c.state(), State::Established);
    let r = next_seg(&mut c, ms(20));
    assert_eq!(r.flags, Flags::ACK);
    assert_eq!(c.stats().challenge_acks, 1);
}

#[test]
fn ack_of_unsent_data_draws_a_challenge_ack_and_is_dropped() {
    // RFC 5961 §5.2
    let (mut c, mut p) = established();
    let mut seg = p.seg(&c, Flags::ACK, p.seq, 3);
    seg.ack = c.snd_nxt() + 100;
    c.on_segment(ms(20), &seg, b"abc");
    p.seq += 0;
    assert_eq!(c.recv_queued(), 0, "the segment's data is dropped too");
    assert_eq!(next_seg(&mut c, ms(20)).flags, Flags::ACK);
    assert_eq!(c.stats().challenge_acks, 1);
}

#[test]
fn ack_too_old_draws_a_challenge_ack() {
    // RFC 5961 §5.2: SEG.ACK < SND.UNA − MAX.SND.WND
    let (mut c, p) = established();
    let mut seg = p.seg(&c, Flags::ACK, p.seq, 0);
    seg.ack = c.snd_una() - 200_000;
    c.on_segment(ms(20), &seg, &[]);
    assert_eq!(c.stats().challenge_acks, 1);
}

#[test]
fn challenge_acks_are_rate_limited() {
    // RFC 5961 §7
    let (mut c, p) = established();
    for i in 0..25 {
        c.on_segment(ms(20 + i), &p.seg(&c, Flags::RST, p.seq + 1, 0), &[]);
        drain(&mut c, ms(20 + i));
    }
    assert_eq!(c.stats().challenge_acks, 10);
    assert_eq!(c.stats().challenge_acks_suppressed, 15);
    // A new second allows more.
    c.on_segment(ms(1100), &p.seg(&c, Flags::RST, p.seq + 1, 0), &[]);
    assert_eq!(c.stats().challenge_acks, 11);
}

#[test]
fn paws_drops_an_old_timestamp() {
    // RFC 7323 §5.3
    let (mut c, mut p) = established_with(SocketOptions::default(), TS);
    p.tsval = 100;
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 2), b"ab");
    p.seq += 2;
    drain(&mut c, ms(20));
    p.tsval = 50;
    c.on_segment(ms(30), &p.seg(&c, Flags::ACK, p.seq, 2), b"cd");
    assert_eq!(c.stats().paws_drops, 1);
    assert_eq!(c.recv_queued(), 2);
    assert_eq!(
        next_seg(&mut c, ms(30)).ack,
        p.seq,
        "PAWS drop is acknowledged"
    );
}

#[test]
fn timestamps_are_echoed_and_measure_rtt() {
    // RFC 7323 §3.2 and §4.1
    let (mut c, mut p) = established_with(SocketOptions::default(), TS);
    p.tsval = 77;
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 1), b"a");
    p.seq += 1;
    c.send(b"x").unwrap();
    let r = next_seg(&mut c, ms(100));
    let ts = r.timestamp.unwrap();
    assert_eq!(ts.tsecr, 77);
    assert_eq!(ts.tsval, 100);
    let mut ack = p.ack(&c, c.snd_nxt());
    ack.timestamp = Some(Timestamp {
        tsval: 78,
        tsecr: ts.tsval,
    });
    c.on_segment(ms(350), &ack, &[]);
    // 250 ms since tsval 100 (the SYN-ACK gave a 10 ms sample first).
    let srtt = c.srtt().unwrap();
    assert!(
        srtt > Duration::from_millis(30) && srtt < Duration::from_millis(250),
        "{srtt:?}"
    );
}

// ------------------------------------------------------------------ ACK generation

#[test]
fn delayed_ack_fires_by_its_deadline() {
    // RFC 9293 §3.8.6.3 / RFC 5681 §4.2: delay at most 40 ms here.
    let (mut c, mut p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 10), &[7; 10]);
    p.seq += 10;
    assert!(next(&mut c, ms(20)).is_none());
    assert_eq!(c.poll_deadline(), Some(ms(60)));
    c.on_timeout(ms(60));
    let r = next_seg(&mut c, ms(60));
    assert_eq!(r.ack, p.seq);
}

#[test]
fn every_second_segment_is_acked_at_once() {
    // RFC 5681 §4.2: an ACK at least every second full-sized segment.
    let (mut c, mut p) = established();
    for _ in 0..2 {
        c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, MSS), &vec![1; MSS]);
        p.seq += MSS;
    }
    assert_eq!(next_seg(&mut c, ms(20)).ack, p.seq);
}

#[test]
fn out_of_order_segment_is_acked_at_once_with_a_sack_block() {
    // RFC 5681 §4.2 and RFC 2018 §4
    let (mut c, p) = established_with(SocketOptions::default(), SACK);
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq + 100, 50), &[1; 50]);
    let r = next_seg(&mut c, ms(20));
    assert_eq!(r.ack, p.seq);
    let blocks: Vec<_> = r.sack.iter().collect();
    assert_eq!(
        blocks,
        vec![SackBlock {
            start: p.seq + 100,
            end: p.seq + 150
        }]
    );
    assert_eq!(c.stats().ooo_segments, 1);
}

#[test]
fn filling_a_hole_is_acked_at_once() {
    let (mut c, mut p) = established();
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq + 10, 10), &[2; 10]);
    drain(&mut c, ms(20));
    c.on_segment(ms(21), &p.seg(&c, Flags::ACK, p.seq, 10), &[1; 10]);
    p.seq += 20;
    assert_eq!(next_seg(&mut c, ms(21)).ack, p.seq);
}

#[test]
fn duplicate_segment_is_reported_as_dsack() {
    // RFC 2883 §4
    let (mut c, mut p) = established_with(SocketOptions::default(), SACK);
    let seg = p.seg(&c, Flags::ACK, p.seq, 10);
    c.on_segment(ms(20), &seg, &[1; 10]);
    p.seq += 10;
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &seg, &[1; 10]);
    let r = next_seg(&mut c, ms(30));
    let blocks: Vec<_> = r.sack.iter().collect();
    assert_eq!(
        blocks,
        vec![SackBlock {
            start: p.seq - 10,
            end: p.seq
        }]
    );
    assert_eq!(c.stats().dsack_blocks_sent, 1);
}

#[test]
fn data_beyond_the_receive_window_is_trimmed() {
    // RFC 9293 §3.10.7.4: only data inside the window is kept (out-of-order data too).
    let opts = SocketOptions {
        recv_buffer: Some(100),
        ..SocketOptions::default()
    };
    let (mut c, p) = established_with(opts, PLAIN);
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq + 50, 100), &[1; 100]);
    assert_eq!(c.recv_queued(), 50);
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 100), &[1; 100]);
    assert_eq!(c.recv_queued(), 100);
    let r = next_seg(&mut c, ms(20));
    assert_eq!(r.ack, p.seq + 100);
    assert_eq!(r.window, 0);
}

#[test]
fn receiver_does_not_advertise_small_window_increases() {
    // RFC 9293 §3.8.6.2.2 receiver SWS avoidance.
    let opts = SocketOptions {
        recv_buffer: Some(4000),
        window_scaling: false,
        ..SocketOptions::default()
    };
    let (mut c, mut p) = established_with(opts, PLAIN);
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 1000), &[1; 1000]);
    p.seq += 1000;
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 1000), &[1; 1000]);
    p.seq += 1000;
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 1000), &[1; 1000]);
    p.seq += 1000;
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq, 1000), &[1; 1000]);
    p.seq += 1000;
    assert_eq!(drain(&mut c, ms(20)).last().unwrap().0.window, 0);
    let mut buf = [0u8; 10];
    c.recv(&mut buf).unwrap();
    // 10 bytes freed: no window update, and the next ACK still says 0.
    assert!(next(&mut c, ms(21)).is_none());
    let mut buf = [0u8; 1500];
    c.recv(&mut buf).unwrap();
    // 1510 freed ≥ min(4000/2, MSS): the window update goes out.
    let r = next_seg(&mut c, ms(22));
    assert_eq!(r.window, 1510);
}

// ------------------------------------------------------------------ sending rules

#[test]
fn initial_window_is_ten_segments() {
    // RFC 6928
    let (mut c, _) = established();
    let v = send_segments(&mut c, ms(20), 12);
    assert_eq!(v.len(), 10);
}

#[test]
fn nagle_holds_a_small_segment_while_data_is_unacknowledged() {
    // RFC 9293 §3.7.4
    let (mut c, p) = established();
    c.send(b"a").unwrap();
    assert_eq!(drain(&mut c, ms(20)).len(), 1);
    c.send(b"b").unwrap();
    assert!(next(&mut c, ms(21)).is_none());
    c.on_segment(ms(30), &p.ack(&c, c.snd_nxt()), &[]);
    let (_, payload) = next(&mut c, ms(30)).unwrap();
    assert_eq!(payload, b"b");
}

#[test]
fn nodelay_sends_small_segments_at_once() {
    let (mut c, _) = established_with(
        SocketOptions {
            nodelay: true,
            ..SocketOptions::default()
        },
        PLAIN,
    );
    c.send(b"a").unwrap();
    drain(&mut c, ms(20));
    c.send(b"b").unwrap();
    assert_eq!(next(&mut c, ms(21)).unwrap().1, b"b");
}

#[test]
fn sender_does_not_send_a_tiny_window_limited_segment() {
    // RFC 9293 §3.8.6.2.1 sender SWS avoidance
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 1);
    let mut ack = p.ack(&c, c.snd_nxt());
    ack.window = 100;
    c.on_segment(ms(30), &ack, &[]);
    c.send(&[0; 3000]).unwrap();
    assert!(next(&mut c, ms(30)).is_none());
}

#[test]
fn an_ack_carried_by_an_older_segment_does_not_stretch_the_window_past_its_edge() {
    // RFC 9293 §3.10.7.4 updates SND.WND only from segments newer than SND.WL1/WL2, yet moves
    // SND.UNA on any acceptable ACK; the edge SND.UNA + SND.WND must not move with it. A
    // retransmitted segment (sequence number below WL1) acknowledging new data is how a
    // lossy path delivers such an ACK; sending past the edge the peer offered made a zero
    // window peer ignore every later ACK (its sequence number lay beyond that window).
    let (mut c, p) = established();
    let start = c.snd_nxt();
    send_segments(&mut c, ms(20), 4);
    // The peer's second data segment arrives first: nothing acknowledged, the edge at four
    // segments past `start`.
    let mut later = p.seg(&c, Flags::ACK, p.seq + 100, 100);
    later.ack = start;
    later.window = (4 * MSS) as u16;
    c.on_segment(ms(30), &later, &[7; 100]);
    // Then the peer's first segment, sent again: two segments acknowledged, the same edge.
    let mut again = p.seg(&c, Flags::ACK, p.seq, 100);
    again.ack = start + 2 * MSS;
    again.window = (2 * MSS) as u16;
    c.on_segment(ms(40), &again, &[7; 100]);
    c.send(&[1; 4 * MSS]).unwrap();
    let edge = start + 4 * MSS;
    for (r, payload) in drain(&mut c, ms(40)) {
        assert!(
            r.seq + payload.len() <= edge,
            "sent {}..{} past the offered edge {edge:?}",
            r.seq.0,
            (r.seq + payload.len()).0
        );
    }
}

#[test]
fn send_buffer_is_bounded() {
    let opts = SocketOptions {
        send_buffer: Some(1000),
        ..SocketOptions::default()
    };
    let (mut c, p) = established_with(opts, PLAIN);
    assert_eq!(c.send(&[0; 1500]).unwrap(), 1000);
    assert_eq!(c.send(&[0; 10]).unwrap(), 0);
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &p.ack(&c, c.snd_nxt()), &[]);
    assert_eq!(events(&mut c), vec![Event::Writable]);
    assert_eq!(c.send(&[0; 10]).unwrap(), 10);
}

// ------------------------------------------------------------------ retransmission

#[test]
fn rto_doubles_and_the_connection_ends_after_the_retry_limit() {
    // RFC 6298 §5.5, RFC 9293 §3.8.3 R2
    let (mut c, _) = established();
    c.send(b"data").unwrap();
    drain(&mut c, ms(20));
    let mut now = ms(20);
    let mut gaps = Vec::new();
    while c.state() != State::Closed {
        let d = c.poll_deadline().unwrap();
        gaps.push(d.duration_since(now));
        now = d;
        c.on_timeout(now);
        if c.state() == State::Closed {
            break;
        }
        let (r, payload) = next(&mut c, now).unwrap();
        assert_eq!(payload, b"data");
        assert_eq!(r.seq, SeqNumber(101));
        assert!(next(&mut c, now).is_none());
    }
    // The handshake measured 10 ms, so the RTO starts at the 200 ms floor.
    assert_eq!(gaps[0], Duration::from_millis(200));
    assert_eq!(gaps[1], Duration::from_millis(400));
    assert_eq!(gaps[2], Duration::from_millis(800));
    assert_eq!(*gaps.last().unwrap(), Duration::from_secs(120));
    assert_eq!(gaps.len(), 16, "15 retransmissions then failure");
    assert_eq!(c.error(), Some(TcpError::TimedOut));
    assert_eq!(c.stats().rto_expiries, 16);
}

#[test]
fn rto_collapses_cwnd_to_one_segment_and_resends_the_first() {
    // RFC 5681 §3.1, RFC 6298 §5.4
    let (mut c, _) = established();
    send_segments(&mut c, ms(20), 4);
    let d = c.poll_deadline().unwrap();
    c.on_timeout(d);
    let v = drain(&mut c, d);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0.seq, SeqNumber(101));
    assert_eq!(c.cwnd(), MSS);
}

#[test]
fn karn_takes_no_rtt_sample_from_a_retransmission() {
    // RFC 6298 §3
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 1);
    let before = c.srtt();
    let d = c.poll_deadline().unwrap();
    c.on_timeout(d);
    drain(&mut c, d);
    c.on_segment(d + Duration::from_millis(5), &p.ack(&c, c.snd_nxt()), &[]);
    assert_eq!(c.srtt(), before);
}

#[test]
fn three_dup_acks_trigger_fast_retransmit() {
    // RFC 5681 §3.2
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 6);
    for i in 0..2 {
        c.on_segment(ms(30 + i), &p.ack(&c, SeqNumber(101)), &[]);
    }
    assert!(!c.in_recovery());
    c.on_segment(ms(33), &p.ack(&c, SeqNumber(101)), &[]);
    assert!(c.in_recovery());
    let (r, _) = next(&mut c, ms(33)).unwrap();
    assert_eq!(r.seq, SeqNumber(101));
    assert_eq!(c.stats().fast_recoveries, 1);
    assert_eq!(c.stats().dup_acks, 3);
}

#[test]
fn limited_transmit_sends_new_data_on_the_first_two_dup_acks() {
    // RFC 3042
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 10);
    c.send(&[9; 3 * MSS]).unwrap();
    assert!(next(&mut c, ms(20)).is_none(), "cwnd is full");
    c.on_segment(ms(30), &p.ack(&c, SeqNumber(101)), &[]);
    let v = drain(&mut c, ms(30));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0.seq, SeqNumber(101 + 10 * MSS as u32));
    c.on_segment(ms(31), &p.ack(&c, SeqNumber(101)), &[]);
    assert_eq!(drain(&mut c, ms(31)).len(), 1);
}

#[test]
fn newreno_recovers_two_losses_in_one_window_without_rto() {
    // RFC 6582 §3.2: a partial ACK retransmits the next hole at once.
    let (mut c, p) = established();
    let v = send_segments(&mut c, ms(20), 10);
    let seq = |i: usize| v[i].0.seq;
    // Segments 0 and 3 are lost; the others trigger dup ACKs.
    for i in 0..3 {
        c.on_segment(ms(30 + i), &p.ack(&c, seq(0)), &[]);
    }
    let r = drain(&mut c, ms(33));
    assert_eq!(r[0].0.seq, seq(0));
    for i in 0..5 {
        c.on_segment(ms(34 + i), &p.ack(&c, seq(0)), &[]);
    }
    drain(&mut c, ms(40));
    // Retransmission of 0 arrives: the ACK covers 0..3 (partial).
    c.on_segment(ms(50), &p.ack(&c, seq(3)), &[]);
    let r = drain(&mut c, ms(50));
    assert_eq!(r[0].0.seq, seq(3), "partial ACK resends the next hole");
    c.on_segment(ms(60), &p.ack(&c, c.snd_nxt()), &[]);
    assert!(!c.in_recovery());
    assert_eq!(c.stats().rto_expiries, 0);
    assert_eq!(c.stats().fast_recoveries, 1);
    assert_eq!(c.stats().retransmissions, 2);
}

#[test]
fn sack_recovery_resends_only_the_holes() {
    // RFC 6675: with SACK, only unSACKed, lost segments are retransmitted.
    let (mut c, p) = established_with(SocketOptions::default(), SACK);
    let v = send_segments(&mut c, ms(20), 10);
    let seq = |i: usize| v[i].0.seq;
    // Segments 1 and 4 are lost.
    let sacks: Vec<Vec<(usize, usize)>> = vec![
        vec![(2, 3)],
        vec![(2, 4)],
        vec![(5, 6), (2, 4)],
        vec![(5, 7), (2, 4)],
        vec![(5, 8), (2, 4)],
    ];
    let mut sent = Vec::new();
    for (k, blocks) in sacks.iter().enumerate() {
        let mut a = p.ack(&c, seq(1));
        for &(s, e) in blocks {
            a.sack.push(SackBlock {
                start: seq(s),
                end: seq(e),
            });
        }
        c.on_segment(ms(30 + k as u64), &a, &[]);
        sent.extend(
            drain(&mut c, ms(30 + k as u64))
                .into_iter()
                .map(|(r, _)| r.seq),
        );
    }
    assert!(c.in_recovery());
    let rexmit: Vec<_> = sent
        .iter()
        .filter(|s| **s < c.snd_nxt() - 0 && **s <= seq(9))
        .copied()
        .collect();
    assert_eq!(rexmit, vec![seq(1), seq(4)]);
    assert_eq!(c.stats().retransmissions, 2);
}

#[test]
fn zero_window_is_probed_with_backoff_and_reopens() {
    // RFC 9293 §3.8.6.1
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 1);
    let mut ack = p.ack(&c, c.snd_nxt());
    ack.window = 0;
    c.on_segment(ms(30), &ack, &[]);
    c.send(&[5; 500]).unwrap();
    assert!(next(&mut c, ms(30)).is_none());
    let mut now = ms(30);
    let mut gaps = Vec::new();
    for _ in 0..4 {
        let d = c.poll_deadline().unwrap();
        gaps.push(d.duration_since(now).as_millis());
        now = d;
        c.on_timeout(now);
        let r = next_seg(&mut c, now);
        assert_eq!(r.payload_len, 0);
        assert_eq!(r.seq, c.snd_una() - 1, "probe below SND.UNA");
        // The peer answers, window still zero.
        c.on_segment(now, &ack, &[]);
        assert!(next(&mut c, now).is_none());
    }
    assert_eq!(gaps, vec![200, 400, 800, 1600]);
    assert_eq!(c.stats().zero_window_probes, 4);
    assert_eq!(
        c.state(),
        State::Established,
        "probes never time out while answered"
    );
    let mut open = ack;
    open.window = 65535;
    open.seq = p.seq;
    c.on_segment(now, &open, &[]);
    let (r, payload) = next(&mut c, now).unwrap();
    assert_eq!(payload.len(), 500);
    assert_eq!(r.seq, c.snd_una());
}

// ------------------------------------------------------------------ keepalive, user timeout

#[test]
fn keepalive_probes_after_idle_and_gives_up_after_count() {
    // RFC 1122 §4.2.3.6
    let ka = crate::tcp::Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(2),
        count: 3,
    };
    let (mut c, p) = established_with(
        SocketOptions {
            keepalive: Some(ka),
            ..SocketOptions::default()
        },
        PLAIN,
    );
    assert_eq!(c.poll_deadline(), Some(ms(10) + Duration::from_secs(10)));
    c.on_timeout(ms(10_010));
    let r = next_seg(&mut c, ms(10_010));
    assert_eq!((r.seq, r.payload_len), (c.snd_una() - 1, 0));
    // An answer resets the count.
    c.on_segment(ms(10_020), &p.ack(&c, c.snd_nxt()), &[]);
    assert_eq!(c.poll_deadline(), Some(ms(20_020)));
    let mut now = ms(20_020);
    for _ in 0..3 {
        c.on_timeout(now);
        assert_eq!(next_seg(&mut c, now).seq, c.snd_una() - 1);
        now = c.poll_deadline().unwrap();
    }
    c.on_timeout(now);
    assert_eq!(c.error(), Some(TcpError::TimedOut));
    assert_eq!(c.stats().keepalive_probes, 4);
}

#[test]
fn user_timeout_ends_a_connection_whose_data_stays_unacknowledged() {
    // RFC 9293 §3.8.3 / RFC 5482
    let opts = SocketOptions {
        user_timeout: Some(Duration::from_secs(3)),
        ..SocketOptions::default()
    };
    let (mut c, _) = established_with(opts, PLAIN);
    c.send(b"x").unwrap();
    drain(&mut c, ms(20));
    let mut now = ms(20);
    while c.state() != State::Closed {
        now = c.poll_deadline().unwrap();
        c.on_timeout(now);
        drain(&mut c, now);
    }
    assert_eq!(now, ms(3020));
    assert_eq!(c.error(), Some(TcpError::TimedOut));
}

// ------------------------------------------------------------------ ICMP

#[test]
fn icmp_port_unreachable_in_syn_sent_refuses_the_connection() {
    // RFC 1122 §4.2.3.9
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    assert!(c.on_icmp(
        ms(1),
        IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
        SeqNumber(100)
    ));
    assert_eq!(c.error(), Some(TcpError::ConnectionRefused));
}

#[test]
fn icmp_quoting_a_sequence_number_outside_the_flight_is_ignored() {
    // RFC 5927 §4.1
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    assert!(!c.on_icmp(
        ms(1),
        IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable),
        SeqNumber(7)
    ));
    assert_eq!(c.state(), State::SynSent);
    let (mut c, _) = established();
    send_segments(&mut c, ms(20), 1);
    assert!(!c.on_icmp(
        ms(21),
        IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 600 }),
        SeqNumber(99)
    ));
}

#[test]
fn icmp_host_unreachable_ends_a_connect_in_syn_sent_as_linux_does() {
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    assert!(c.on_icmp(
        ms(1),
        IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
        SeqNumber(100)
    ));
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(TcpError::HostUnreachable));
}

#[test]
fn icmp_host_unreachable_is_a_soft_error_once_established() {
    // RFC 1122 §4.2.3.9: keep going; a later timeout reports it (Linux's sk_err_soft).
    let (mut c, _) = established();
    let v = send_segments(&mut c, ms(20), 1);
    assert!(c.on_icmp(
        ms(21),
        IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
        v[0].0.seq
    ));
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.error(), None);
}

#[test]
fn icmp_ttl_exceeded_is_soft_and_a_reassembly_timeout_is_ignored() {
    use netstack_network::wire::TimeExceeded;
    let mut c = Connection::connect(t0(), params(SocketOptions::default()));
    next_seg(&mut c, t0());
    let ttl = IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded);
    assert!(c.on_icmp(ms(1), ttl, SeqNumber(100)));
    let reassembly = IcmpErrorKind::TimeExceeded(TimeExceeded::FragReassembly);
    assert!(!c.on_icmp(ms(1), reassembly, SeqNumber(100)));
    assert_eq!(c.state(), State::SynSent);
}

#[test]
fn fragmentation_needed_lowers_the_mss_and_resends_smaller() {
    // RFC 1191 §6.3–6.5
    let (mut c, _) = established();
    let v = send_segments(&mut c, ms(20), 2);
    assert!(c.on_icmp(
        ms(21),
        IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 600 }),
        v[0].0.seq
    ));
    let r = drain(&mut c, ms(21));
    assert_eq!(r[0].0.seq, v[0].0.seq);
    assert_eq!(r[0].0.payload_len, 560);
    assert!(r.iter().all(|(s, _)| s.payload_len <= 560));
}

#[test]
fn fragmentation_needed_never_goes_below_the_minimum_mtu() {
    let (mut c, _) = established();
    let v = send_segments(&mut c, ms(20), 1);
    c.on_icmp(
        ms(21),
        IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 100 }),
        v[0].0.seq,
    );
    assert_eq!(drain(&mut c, ms(21))[0].0.payload_len, MIN_PATH_MTU - 40);
}

// ------------------------------------------------------------------ passive open

fn peer_syn(opts: PeerOpts) -> TcpRepr {
    TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(PEER_ISS),
        flags: Flags::SYN,
        window: 65535,
        mss: opts.mss,
        window_scale: opts.ws,
        sack_permitted: opts.sack,
        timestamp: opts.ts.then_some(Timestamp {
            tsval: 10,
            tsecr: 0,
        }),
        ..TcpRepr::default()
    }
}

#[test]
fn syn_ack_echoes_only_the_options_the_syn_offered() {
    // RFC 7323 §2.2 and §3.2, RFC 2018 §2: never offer in a SYN-ACK what the SYN did not.
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    let r = next_seg(&mut c, t0());
    assert_eq!(r.flags, Flags::SYN | Flags::ACK);
    assert_eq!(r.ack, SeqNumber(PEER_ISS + 1));
    assert_eq!(
        (r.window_scale, r.timestamp, r.sack_permitted),
        (None, None, false)
    );
    let offer = PeerOpts {
        ts: true,
        sack: true,
        ws: Some(5),
        mss: Some(1200),
    };
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(offer));
    let r = next_seg(&mut c, t0());
    assert_eq!(r.window_scale, Some(3));
    assert!(r.sack_permitted);
    assert_eq!(r.timestamp.unwrap().tsecr, 10);
}

#[test]
fn retransmitted_syn_in_syn_received_resends_the_syn_ack() {
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    let first = next_seg(&mut c, t0());
    c.on_segment(ms(500), &peer_syn(PLAIN), &[]);
    let again = next_seg(&mut c, ms(500));
    assert_eq!(again.flags, Flags::SYN | Flags::ACK);
    assert_eq!(again.seq, first.seq);
}

#[test]
fn syn_ack_is_retransmitted_on_timeout() {
    // RFC 6298 §5: the SYN-ACK is timed like any segment.
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    next_seg(&mut c, t0());
    assert_eq!(c.poll_deadline(), Some(ms(1000)));
    c.on_timeout(ms(1000));
    assert_eq!(next_seg(&mut c, ms(1000)).flags, Flags::SYN | Flags::ACK);
    assert_eq!(c.stats().retransmissions, 1);
}

#[test]
fn syn_received_with_bad_ack_draws_rst() {
    // RFC 9293 §3.10.7.4 fifth, SYN-RECEIVED: an unacceptable ACK gets <SEQ=SEG.ACK><CTL=RST>.
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    next_seg(&mut c, t0());
    let bad = TcpRepr {
        seq: SeqNumber(PEER_ISS + 1),
        ack: SeqNumber(7777),
        flags: Flags::ACK,
        ..peer_syn(PLAIN)
    };
    c.on_segment(ms(10), &bad, &[]);
    let r = next_seg(&mut c, ms(10));
    assert_eq!((r.flags, r.seq), (Flags::RST, SeqNumber(7777)));
    assert_eq!(c.state(), State::SynReceived);
}

#[test]
fn rst_in_syn_received_ends_the_half_open_connection() {
    // RFC 9293 §3.10.7.4 second (a passive open returns to LISTEN: the listener is untouched).
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    next_seg(&mut c, t0());
    let rst = TcpRepr {
        seq: SeqNumber(PEER_ISS + 1),
        flags: Flags::RST,
        ..peer_syn(PLAIN)
    };
    c.on_segment(ms(10), &rst, &[]);
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(TcpError::ConnectionRefused));
}

#[test]
fn handshake_ack_establishes_and_may_carry_data() {
    let mut c = Connection::accept(t0(), params(SocketOptions::default()), &peer_syn(PLAIN));
    let synack = next_seg(&mut c, t0());
    let ack = TcpRepr {
        seq: SeqNumber(PEER_ISS + 1),
        ack: synack.seq + 1,
        flags: Flags::ACK | Flags::PSH,
        payload_len: 2,
        ..peer_syn(PLAIN)
    };
    c.on_segment(ms(10), &ack, b"hi");
    assert_eq!(c.state(), State::Established);
    assert_eq!(events(&mut c), vec![Event::Connected, Event::Readable]);
    assert_eq!(c.recv_queued(), 2);
}

#[test]
fn out_of_order_fin_waits_for_the_missing_data() {
    // RFC 9293 §3.10.7.4 eighth: a FIN counts only once everything before it arrived.
    let (mut c, p) = established();
    let fin = p.seg(&c, Flags::FIN | Flags::ACK, p.seq + 3, 2);
    c.on_segment(ms(20), &fin, b"de");
    assert_eq!(c.state(), State::Established);
    c.on_segment(ms(21), &p.seg(&c, Flags::ACK, p.seq, 3), b"abc");
    assert_eq!(c.state(), State::CloseWait);
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"abcde");
    assert_eq!(c.recv(&mut buf), Ok(0));
}

#[test]
fn congestion_control_is_chosen_per_connection() {
    // RFC 5681 for NewReno, RFC 9438 for CUBIC: both start from IW10, differ after a loss.
    let reno = SocketOptions {
        congestion: CongestionAlgorithm::NewReno,
        ..SocketOptions::default()
    };
    let (mut r, rp) = established_with(reno, PLAIN);
    let (mut cu, cp) = established();
    for (c, p) in [(&mut r, &rp), (&mut cu, &cp)] {
        send_segments(c, ms(20), 10);
        for i in 0..3 {
            c.on_segment(ms(30 + i), &p.ack(c, SeqNumber(101)), &[]);
        }
    }
    assert_eq!(r.ssthresh(), 5 * MSS, "NewReno halves");
    assert_eq!(cu.ssthresh(), 7 * MSS, "CUBIC keeps 0.7");
}

#[test]
fn segments_sent_before_a_timeout_give_no_rtt_sample() {
    // Karn's rule (RFC 6298 §3, §5): after an RTO, an ACK of data sent before it measures the
    // recovery, not the path.
    let (mut c, p) = established();
    send_segments(&mut c, ms(20), 3);
    let before = c.srtt();
    let d = c.poll_deadline().unwrap();
    c.on_timeout(d);
    drain(&mut c, d);
    // Much later, the first retransmission and everything after it is acknowledged at once.
    c.on_segment(d + Duration::from_secs(5), &p.ack(&c, c.snd_nxt()), &[]);
    assert_eq!(c.srtt(), before);
}

#[test]
fn ack_ending_recovery_gives_no_rtt_sample_from_data_behind_the_hole() {
    // Karn (RFC 6298 §3) extended: the segments above a resent one waited for the repair.
    let (mut c, p) = established_with(SocketOptions::default(), SACK);
    let v = send_segments(&mut c, ms(20), 6);
    let seq = |i: usize| v[i].0.seq;
    for k in 0..3u64 {
        let mut a = p.ack(&c, seq(0));
        a.sack.push(SackBlock {
            start: seq(1),
            end: seq(2 + k as usize),
        });
        c.on_segment(ms(30 + k), &a, &[]);
    }
    let r = drain(&mut c, ms(33));
    assert_eq!(r[0].0.seq, seq(0), "fast retransmit");
    let before = c.srtt();
    // The repair arrives 2 s later and the ACK covers everything.
    c.on_segment(ms(2033), &p.ack(&c, c.snd_nxt()), &[]);
    assert_eq!(c.srtt(), before);
}

#[test]
fn sack_recovery_without_new_data_resends_a_hole_before_it_counts_as_lost() {
    // RFC 6675 §4 NextSeg rule 3.
    let (mut c, p) = established_with(SocketOptions::default(), SACK);
    let v = send_segments(&mut c, ms(20), 5);
    let blk = |i: usize| SackBlock {
        start: v[i].0.seq,
        end: v[i].0.seq + MSS,
    };
    // Segments 1 and 3 are lost; 0 is acknowledged, then 2, 4 and a duplicate of 2 arrive:
    // three duplicate ACKs of segment 1.
    let mut sent = Vec::new();
    let acks = [vec![], vec![blk(2)], vec![blk(2)], vec![blk(4), blk(2)]];
    for (k, blocks) in acks.into_iter().enumerate() {
        let mut a = p.ack(&c, v[1].0.seq);
        for b in blocks {
            a.sack.push(b);
        }
        let now = ms(30 + k as u64);
        c.on_segment(now, &a, &[]);
        sent.extend(drain(&mut c, now).into_iter().map(|(r, _)| r.seq));
    }
    assert!(c.in_recovery());
    // Segment 3 has only one SACKed segment above it, so it is not yet lost: rule 3 sends it.
    assert_eq!(sent, vec![v[1].0.seq, v[3].0.seq]);
}

#[test]
fn idle_connection_restarts_from_the_initial_window() {
    // RFC 5681 §4.1: after an idle period longer than the RTO, cwnd = min(cwnd, IW).
    let (mut c, p) = established();
    // Grow cwnd past IW: 10 segments acknowledged in slow start.
    send_segments(&mut c, ms(20), 10);
    c.on_segment(ms(30), &p.ack(&c, c.snd_nxt()), &[]);
    assert!(c.cwnd() > 10 * MSS);
    // Idle for 10 s, then a burst: only IW goes out.
    let v = send_segments(&mut c, ms(10_030), 30);
    assert_eq!(v.len(), 10);
    assert_eq!(c.cwnd(), 10 * MSS);
}

#[test]
fn data_segments_leave_room_for_their_sack_blocks() {
    // RFC 6691 §2: every option comes out of the MSS, so the packet still fits the path.
    let both = PeerOpts {
        ts: true,
        sack: true,
        ws: None,
        mss: Some(MSS as u16),
    };
    let (mut c, p) = established_with(SocketOptions::default(), both);
    c.on_segment(ms(20), &p.seg(&c, Flags::ACK, p.seq + 100, 10), &[1; 10]);
    drain(&mut c, ms(20));
    c.send(&[0; 3000]).unwrap();
    let r = next_seg(&mut c, ms(21));
    assert_eq!(r.sack.len(), 1);
    assert_eq!(r.payload_len, MSS - 12 - 12);
    assert_eq!(r.header_len() - 20 + r.payload_len, MSS);
}

#[test]
fn tail_loss_probe_resends_the_last_segment_after_two_srtt() {
    // RFC 8985 §7: with SACK, a silent tail is probed after PTO = 2 SRTT, before the RTO.
    let (mut c, _) = established_with(SocketOptions::default(), SACK);
    let v = send_segments(&mut c, ms(20), 3);
    // The handshake measured SRTT = 10 ms: PTO fires at 20 + 20 ms.
    assert_eq!(c.poll_deadline(), Some(ms(40)));
    c.on_timeout(ms(40));
    let (r, payload) = next(&mut c, ms(40)).unwrap();
    assert_eq!(r.seq, v[2].0.seq, "the probe is the last segment");
    assert_eq!(payload.len(), MSS);
    assert!(next(&mut c, ms(40)).is_none(), "one probe per tail");
    assert_eq!(c.stats().tail_loss_probes, 1);
    // Only the RTO is left.
    assert_eq!(c.poll_deadline(), Some(ms(220)));
}

#[test]
fn tail_loss_probe_sends_new_data_when_it_may() {
    // RFC 8985 §7.3: new data is the better probe when the window allows it.
    let (mut c, _) = established_with(SocketOptions::default(), SACK);
    send_segments(&mut c, ms(20), 10);
    c.send(&[1; MSS]).unwrap();
    assert!(next(&mut c, ms(20)).is_none(), "cwnd is full");
    c.on_timeout(ms(40));
    let (r, _) = next(&mut c, ms(40)).unwrap();
    assert_eq!(r.seq, SeqNumber(101 + 10 * MSS as u32));
}

// ------------------------------------------------------------------ segmentation offload

/// A connection whose device cuts large segments (TSO), up to 64,000 bytes of payload each.
fn established_offloaded(peer: PeerOpts) -> (Connection, Peer) {
    let mut p = params(SocketOptions::default());
    Arc::make_mut(&mut p.config).segment_offload = 64_000;
    established_from(p, peer)
}

#[test]
fn offload_sends_large_segments_of_whole_mss_pieces_within_cwnd_and_the_peer_window() {
    let (mut c, p) = established_offloaded(SACK);
    let data = vec![7u8; 200 * MSS];
    let queued = c.send(&data).unwrap();
    let first = drain(&mut c, ms(20));
    // One segment holds the whole initial window, cut by the device at the MSS.
    let cwnd = c.stats().cwnd as usize;
    assert_eq!(
        first.len(),
        1,
        "{:?}",
        first.iter().map(|(r, _)| r.payload_len).collect::<Vec<_>>()
    );
    let (r, payload) = &first[0];
    assert_eq!(r.payload_len, cwnd / MSS * MSS);
    assert_eq!(payload.len(), r.payload_len);
    assert_eq!(c.burst_segment(r.payload_len), Some(MSS));
    // The ACK opens cwnd; the next burst stops at the peer's window (65,535), in whole MSS
    // pieces.
    c.on_segment(ms(30), &p.ack(&c, c.snd_nxt()), &[]);
    let next = drain(&mut c, ms(30));
    let total: usize = next.iter().map(|(r, _)| r.payload_len).sum();
    assert!(total <= 65_535, "{total}");
    for (r, _) in &next {
        assert_eq!(r.payload_len % MSS, 0, "{}", r.payload_len);
        assert!(r.payload_len <= 64_000);
    }
    assert!(queued > total + first[0].0.payload_len);
}

#[test]
fn without_offload_segments_are_one_mss_and_with_it_a_short_tail_rides_along() {
    let (mut c, _) = established_with(SocketOptions::default(), SACK);
    c.send(&vec![1u8; 20 * MSS]).unwrap();
    for (r, _) in drain(&mut c, ms(20)) {
        assert_eq!(r.payload_len, MSS);
        assert_eq!(c.burst_segment(r.payload_len), None);
    }
    // Offloaded, but less than two segments queued: one ordinary segment.
    let (mut c, _) = established_offloaded(SACK);
    c.send(&vec![1u8; MSS + 10]).unwrap();
    let v = drain(&mut c, ms(20));
    assert_eq!(v.len(), 1);
    assert_eq!(
        v[0].0.payload_len,
        MSS + 10,
        "the tail that ends the data rides along"
    );
    assert_eq!(c.burst_segment(v[0].0.payload_len), Some(MSS));
}

#[test]
fn a_loss_inside_an_offloaded_segment_resends_only_the_lost_mss() {
    // The scoreboard keeps one entry per MSS of a large segment, so SACK recovery resends
    // the hole, not the whole 10-segment burst.
    let (mut c, p) = established_offloaded(SACK);
    c.send(&vec![3u8; 10 * MSS]).unwrap();
    let burst = drain(&mut c, ms(20));
    assert_eq!(burst.len(), 1);
    let base = burst[0].0.seq;
    let seq = |i: usize| base + i * MSS;
    let mut sent = Vec::new();
    for (k, end) in [3usize, 4, 5, 6].iter().enumerate() {
        let mut a = p.ack(&c, seq(1));
        a.sack.push(SackBlock {
            start: seq(2),
            end: seq(*end),
        });
        let now = ms(30 + k as u64);
        c.on_segment(now, &a, &[]);
        sent.extend(
            drain(&mut c, now)
                .into_iter()
                .map(|(r, _)| (r.seq, r.payload_len)),
        );
    }
    assert!(c.in_recovery());
    assert_eq!(sent, vec![(seq(1), MSS)]);
    assert_eq!(c.stats().retransmissions, 1);
}

#[test]
fn a_coalesced_segment_is_acked_as_the_segments_it_stands_for() {
    // Two or more MSS of data in one (coalesced) segment: acknowledged at once, as two
    // segments would be (RFC 5681 §4.2), not after the delayed-ACK timer.
    let (mut c, p) = established();
    let data = vec![9u8; 3 * MSS];
    let seg = p.seg(&c, Flags::ACK, p.seq, data.len());
    c.on_segment(ms(20), &seg, &data);
    let out = drain(&mut c, ms(20));
    assert_eq!(out.len(), 1, "an immediate ACK");
    assert_eq!(out[0].0.ack, p.seq + data.len());
}

#[test]
fn an_offloaded_segment_is_cut_for_a_smaller_path_mtu_once_one_is_learned() {
    // RFC 1191: after Fragmentation Needed for MTU 600 every piece the device cuts, and every
    // resent segment, fits 560 bytes of payload.
    let (mut c, _) = established_offloaded(PLAIN);
    c.send(&vec![4u8; 40 * MSS]).unwrap();
    let burst = drain(&mut c, ms(20));
    assert_eq!(c.burst_segment(burst[0].0.payload_len), Some(MSS));
    assert!(c.on_icmp(
        ms(21),
        IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { next_hop_mtu: 600 }),
        burst[0].0.seq
    ));
    let mut sent = 0;
    while let Some((r, _)) = next(&mut c, ms(21)) {
        let piece = c.burst_segment(r.payload_len).unwrap_or(r.payload_len);
        assert!(piece <= 560, "a piece of {piece} bytes");
        sent += 1;
    }
    assert!(sent > 0);
}
