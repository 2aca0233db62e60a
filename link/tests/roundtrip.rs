//! parse(emit(x)) == x for the link layer's wire formats, over arbitrary field values
//! (issue 10): Ethernet II headers with any EtherType, and Ethernet/IPv4 ARP packets.

use std::net::Ipv4Addr;

use netstack_link::{
    classify, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Inbound,
    MacAddr,
};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (
        prop_oneof![Just(ArpOperation::Request), Just(ArpOperation::Reply)],
        mac(),
        any::<u32>(),
        mac(),
        any::<u32>(),
    )
        .prop_map(|(operation, sender_mac, s, target_mac, t)| ArpRepr {
            operation,
            sender_mac,
            sender_ip: Ipv4Addr::from(s),
            target_mac,
            target_ip: Ipv4Addr::from(t),
        })
}

proptest! {
    #[test]
    fn ethernet_header_round_trips_with_its_payload(
        src in mac(),
        dst in mac(),
        ethertype in any::<u16>().prop_map(EtherType::from),
        payload in proptest::collection::vec(any::<u8>(), 0..1600),
    ) {
        let repr = EthernetRepr { src, dst, ethertype };
        let bytes = repr.frame_with(&payload);
        prop_assert_eq!(bytes.len(), EthernetRepr::buffer_len(payload.len()));
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        prop_assert_eq!(frame.payload(), &payload[..]);
    }

    #[test]
    fn ethertype_numbers_round_trip(value in any::<u16>()) {
        prop_assert_eq!(u16::from(EtherType::from(value)), value);
    }

    #[test]
    fn arp_packet_round_trips(repr in arp_repr()) {
        let bytes = repr.to_bytes();
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&bytes[..]).unwrap()), Ok(repr));
        prop_assert_eq!(ArpRepr::parse_bytes(&bytes), Ok(repr));
    }

    #[test]
    fn arp_frame_round_trips_through_classify(repr in arp_repr()) {
        // to_frame sends a request to broadcast and a reply to its target's MAC, so the
        // target's own classifier accepts it.
        let frame = repr.to_frame();
        let ours = match repr.operation {
            ArpOperation::Request => MacAddr([0x02, 0, 0, 0, 0, 2]),
            ArpOperation::Reply => repr.target_mac,
        };
        match classify(ours, &frame) {
            Ok(Inbound::Arp(back)) => prop_assert_eq!(back, repr),
            // A reply to a multicast MAC is dropped as multicast before ARP is parsed.
            Err(_) if repr.operation == ArpOperation::Reply && repr.target_mac.is_multicast() => {}
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
