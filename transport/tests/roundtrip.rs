//! parse(emit(x)) == x for the transport wire formats over arbitrary field values (issue 10):
//! UDP datagrams, and TCP headers with every combination of options (MSS, window scale,
//! SACK-permitted, timestamps, up to four SACK blocks; blocks that do not fit the 40 bytes of
//! option space are left out).

use std::net::Ipv4Addr;

use netstack_transport::tcp::segment::{SackBlock, SackBlocks, Timestamp};
use netstack_transport::tcp::{Flags, SeqNumber, TcpPacket, TcpRepr};
use netstack_transport::udp::{UdpPacket, UdpRepr};
use netstack_transport::Checksum;
use proptest::prelude::*;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn sack_blocks() -> impl Strategy<Value = SackBlocks> {
    proptest::collection::vec((any::<u32>(), any::<u32>()), 0..=4).prop_map(|v| {
        let mut blocks = SackBlocks::default();
        for (start, end) in v {
            blocks.push(SackBlock {
                start: SeqNumber(start),
                end: SeqNumber(end),
            });
        }
        blocks
    })
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    (
        (
            1u16..,
            1u16..,
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u16>(),
        ),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
            sack_blocks(),
        ),
    )
        .prop_map(
            |((src_port, dst_port, seq, ack, flags, window), (mss, ws, sack_ok, ts, sack))| {
                TcpRepr {
                    src_port,
                    dst_port,
                    seq: SeqNumber(seq),
                    // The ACK field means something only with the ACK flag (emit writes 0).
                    ack: SeqNumber(if flags & Flags::ACK.0 != 0 { ack } else { 0 }),
                    flags: Flags(flags),
                    window,
                    mss,
                    window_scale: ws,
                    sack_permitted: sack_ok,
                    timestamp: ts.map(|(tsval, tsecr)| Timestamp { tsval, tsecr }),
                    sack,
                    payload_len: 0,
                }
            },
        )
}

/// SACK blocks that fit beside the other options in 40 bytes (after two NOPs and the
/// option's kind and length).
fn sack_room(r: &TcpRepr) -> usize {
    let ts_or_permitted = match (r.timestamp, r.sack_permitted) {
        (Some(_), _) => 12,
        (None, true) => 4,
        (None, false) => 0,
    };
    let fixed = 4 * usize::from(r.mss.is_some())
        + ts_or_permitted
        + 4 * usize::from(r.window_scale.is_some());
    (40 - fixed).saturating_sub(4) / 8
}

proptest! {
    #[test]
    fn udp_datagram_round_trips(
        src_port in any::<u16>(),
        dst_port in 1u16..,
        payload in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let repr = UdpRepr { src_port, dst_port };
        let mut bytes = Vec::new();
        repr.emit(SRC, DST, &payload, &mut bytes);
        let p = UdpPacket::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&p, SRC, DST), Ok(repr));
        prop_assert_eq!(p.payload(), &payload[..]);
        prop_assert_eq!(p.len(), bytes.len());
    }

    #[test]
    fn tcp_header_and_options_round_trip(
        repr in tcp_repr(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let repr = TcpRepr { payload_len: payload.len(), ..repr };
        let bytes = repr.to_bytes(SRC, DST, &payload);
        prop_assert_eq!(bytes.len(), repr.header_len() + payload.len());
        prop_assert!(repr.header_len() <= 60);
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        // TCP has 40 bytes for options (RFC 9293 §3.1): SACK blocks beyond them are left out.
        let mut expect = repr;
        expect.sack.truncate(sack_room(&repr));
        prop_assert_eq!(TcpRepr::parse(&p, SRC, DST, Checksum::Verify).unwrap(), expect);
        prop_assert_eq!(p.payload(), &payload[..]);
    }
}
