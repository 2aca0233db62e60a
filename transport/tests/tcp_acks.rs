//! What one connection's ACKs carry and when they go out: rate-limited ACKs for invalid
//! segments, D-SACK blocks (RFC 2883 §4), and SACK blocks taken out of the MSS (RFC 6691). The
//! helpers are `netstack_transport::tcp::testing`.

use netstack_transport::tcp::connection::Connection;
use netstack_transport::tcp::segment::{SackBlock, Timestamp};
use netstack_transport::tcp::testing::*;
use netstack_transport::tcp::{Flags, SeqNumber, SocketOptions, TcpRepr};

/// RFC 9293 §3.10.7.4 answers an unacceptable segment with an ACK; for empty segments those
/// ACKs are rate-limited (Linux: tcp_invalid_ratelimit, 500 ms), or two peers out of step ACK
/// each other for ever. Segments with data always get their ACK.
#[test]
fn acks_for_empty_unacceptable_segments_are_rate_limited() {
    let mut c = established().0;
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

/// RFC 2883 §4: a segment only partly below RCV.NXT (it straddles it) reports its duplicate
/// part as a D-SACK block.
#[test]
fn partly_duplicate_segment_reports_its_duplicate_part_as_dsack() {
    let mut c = established_with(SocketOptions::default(), SACK).0;
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
    let mut c = established_with(SocketOptions::default(), SACK).0;
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
