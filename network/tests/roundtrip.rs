//! parse(emit(x)) == x for ICMPv4 over arbitrary field values (issue 10): echo request and
//! reply with any data, Destination Unreachable (every code, any next-hop MTU) and Time
//! Exceeded, each quoting an arbitrary IPv4 header and transport bytes; and the IPv4 header.

use std::net::Ipv4Addr;

use netstack_network::wire::{
    DstUnreachable, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TimeExceeded,
};
use proptest::prelude::*;

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
            0usize..=65515,
        ),
    )
        .prop_map(
            |((src, dst, protocol, ttl, dscp_ecn), (ident, dont_frag, more_frags, offset, len))| {
                Ipv4Repr {
                    src: Ipv4Addr::from(src),
                    dst: Ipv4Addr::from(dst),
                    protocol: IpProtocol::from(protocol),
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset: offset * 8,
                    payload_len: len,
                }
            },
        )
}

fn dst_unreachable() -> impl Strategy<Value = DstUnreachable> {
    prop_oneof![
        Just(DstUnreachable::NetUnreachable),
        Just(DstUnreachable::HostUnreachable),
        Just(DstUnreachable::ProtocolUnreachable),
        Just(DstUnreachable::PortUnreachable),
        any::<u16>().prop_map(|next_hop_mtu| DstUnreachable::FragRequired { next_hop_mtu }),
        Just(DstUnreachable::SourceRouteFailed),
        Just(DstUnreachable::DstNetUnknown),
        Just(DstUnreachable::DstHostUnknown),
        Just(DstUnreachable::AdminProhibited),
        // Codes without a name of their own (a named code parses as its name).
        any::<u8>()
            .prop_filter("a named code", |c| !matches!(c, 0..=7 | 9 | 10 | 13))
            .prop_map(DstUnreachable::Other),
    ]
}

fn round_trip(repr: &Icmpv4Repr<'_>) -> Result<(), TestCaseError> {
    let bytes = repr.to_bytes();
    prop_assert_eq!(bytes.len(), repr.buffer_len());
    let packet = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
    prop_assert!(packet.verify_checksum());
    prop_assert_eq!(&Icmpv4Repr::parse(&packet, true).unwrap(), repr);
    Ok(())
}

proptest! {
    #[test]
    fn echo_round_trips(
        request in any::<bool>(),
        ident in any::<u16>(),
        seq_no in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        let repr = if request {
            Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
        } else {
            Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
        };
        round_trip(&repr)?;
    }

    #[test]
    fn dst_unreachable_round_trips_with_its_quote(
        reason in dst_unreachable(),
        header in ipv4_repr(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        round_trip(&Icmpv4Repr::DstUnreachable { reason, header, data: &data })?;
    }

    #[test]
    fn time_exceeded_round_trips_with_its_quote(
        ttl in any::<bool>(),
        header in ipv4_repr(),
        data in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let reason = if ttl { TimeExceeded::TtlExceeded } else { TimeExceeded::FragReassembly };
        round_trip(&Icmpv4Repr::TimeExceeded { reason, header, data: &data })?;
    }

    #[test]
    fn ipv4_header_round_trips(header in ipv4_repr()) {
        let payload = vec![0xa5; header.payload_len.min(64)];
        let header = Ipv4Repr { payload_len: payload.len(), ..header };
        let bytes = header.to_bytes(&payload);
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&packet, true).unwrap(), header);
        prop_assert_eq!(packet.payload(), &payload[..]);
    }
}
