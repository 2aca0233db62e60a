//! Receive-side demultiplexing of Ethernet frames and the link layer's counters.
//!
//! Policy: a frame is accepted when it is addressed to our MAC or to broadcast. Every other
//! destination is dropped and counted: unicast for another host (a TAP sees only what the kernel
//! sends it, but a bridge or the in-memory link may deliver more), and multicast, since the stack
//! joins no multicast group (the kernel's IPv6 neighbour discovery to 33:33:… lands here). IPv4 is
//! handed up as bytes; ARP is parsed here; IPv6 and every other EtherType are dropped.
//!
//! An ARP packet whose sender hardware address differs from the frame's Ethernet source is
//! dropped ([`RxDrop::ArpSenderMismatch`]): a host answers for itself (RFC 826), so such a
//! packet speaks for someone else, which is how ARP spoofing poisons a cache.

pub use crate::stats::LinkStats;
use crate::wire::arp::ArpRepr;
use crate::wire::ethernet::{EtherType, EthernetFrame, MacAddr};
use crate::wire::WireError;

/// What a received frame carries for the layers above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// The Ethernet payload of an IPv4 frame (it may carry Ethernet padding after the IPv4
    /// datagram; IPv4's total length says where the datagram ends).
    Ipv4(&'a [u8]),
    /// A well-formed Ethernet/IPv4 ARP packet.
    Arp(ArpRepr),
}

/// Why a received frame was dropped. Each cause has a counter in [`LinkStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RxDrop {
    /// Shorter than an Ethernet header.
    #[error("frame shorter than an Ethernet header")]
    Truncated,
    /// Unicast to another MAC.
    #[error("unicast frame for another host")]
    NotForUs,
    /// Multicast to a group we did not join.
    #[error("multicast frame for a group we did not join")]
    Multicast,
    /// IPv6 is not implemented.
    #[error("IPv6 frame (not supported)")]
    Ipv6,
    /// Neither IPv4, ARP nor IPv6.
    #[error("unknown EtherType {0:#06x}")]
    UnknownEtherType(u16),
    /// ARP that is not a well-formed Ethernet/IPv4 request or reply.
    #[error("bad ARP packet: {0}")]
    BadArp(WireError),
    /// ARP whose sender hardware address is not the frame's Ethernet source.
    #[error("ARP sender hardware address differs from the Ethernet source")]
    ArpSenderMismatch,
    /// A virtio-net header (offloading devices) that is short or that names a GSO type this
    /// stack cannot take (IPv6, UDP).
    #[error("bad or unsupported virtio-net header: {0}")]
    BadVnetHeader(WireError),
}

/// Classifies one received Ethernet frame for a stack whose MAC is `our_mac`.
pub fn classify(our_mac: MacAddr, frame: &[u8]) -> Result<Inbound<'_>, RxDrop> {
    let frame = EthernetFrame::new_checked(frame).map_err(|_| RxDrop::Truncated)?;
    let dst = frame.dst();
    if dst != our_mac && !dst.is_broadcast() {
        return Err(if dst.is_multicast() {
            RxDrop::Multicast
        } else {
            RxDrop::NotForUs
        });
    }
    match frame.ethertype() {
        EtherType::Ipv4 => Ok(Inbound::Ipv4(frame.into_payload())),
        EtherType::Arp => {
            let arp = ArpRepr::parse_bytes(frame.payload()).map_err(RxDrop::BadArp)?;
            if arp.sender_mac != frame.src() {
                return Err(RxDrop::ArpSenderMismatch);
            }
            Ok(Inbound::Arp(arp))
        }
        EtherType::Ipv6 => Err(RxDrop::Ipv6),
        EtherType::Unknown(raw) => Err(RxDrop::UnknownEtherType(raw)),
    }
}

/// What an offloading device's virtio-net header says about the frame behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VnetFrame {
    /// Where the frame proper starts.
    pub offset: usize,
    /// The transport checksum needs no verifying: it is partial (`NEEDS_CSUM`, from a sender
    /// on this host; the frame never crossed a wire) or the kernel checked it (`DATA_VALID`).
    pub checksum_trusted: bool,
    /// The frame is a coalesced TCP segment standing for several.
    pub coalesced: bool,
}

/// Reads the virtio-net header in front of `frame`; a short header, an unknown GSO type or a
/// segmentation this stack does not take (TCP over IPv6, UDP) is a drop.
pub fn classify_vnet(frame: &[u8]) -> Result<VnetFrame, RxDrop> {
    use crate::wire::vnet::{VnetChecksum, VnetGso, VnetHeader, VnetRepr};
    let repr = VnetHeader::new_checked(frame)
        .and_then(|h| VnetRepr::parse(&h))
        .map_err(RxDrop::BadVnetHeader)?;
    let coalesced = match repr.gso {
        VnetGso::None => false,
        VnetGso::TcpV4 { .. } => true,
        VnetGso::TcpV6 { .. } | VnetGso::Udp { .. } => {
            return Err(RxDrop::BadVnetHeader(WireError::VnetUnsupportedGso))
        }
    };
    Ok(VnetFrame {
        offset: VnetHeader::<&[u8]>::LEN,
        checksum_trusted: repr.checksum != VnetChecksum::Unknown,
        coalesced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::ArpOperation;

    #[test]
    fn a_vnet_header_says_where_the_frame_starts_and_what_to_trust() {
        let plain = classify_vnet(&[0u8; 24]).unwrap();
        assert_eq!(
            plain,
            VnetFrame {
                offset: 10,
                checksum_trusted: false,
                coalesced: false
            }
        );
        // NEEDS_CSUM with GSO_TCPV4; DATA_VALID alone.
        let tso = classify_vnet(&[1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0]).unwrap();
        assert!(tso.checksum_trusted && tso.coalesced);
        let valid = classify_vnet(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
        assert!(valid.checksum_trusted && !valid.coalesced);
    }

    #[test]
    fn a_short_or_unsupported_vnet_header_is_a_counted_drop() {
        let short = classify_vnet(&[0u8; 9]).unwrap_err();
        // TCP over IPv6 (4), UDP (3), and an unknown type (9).
        let v6 = classify_vnet(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        let udp = classify_vnet(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        let unknown = classify_vnet(&[0, 9, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(v6, RxDrop::BadVnetHeader(WireError::VnetUnsupportedGso));
        assert_eq!(udp, v6);
        let mut s = LinkStats::default();
        for d in [short, v6, udp, unknown] {
            assert!(matches!(d, RxDrop::BadVnetHeader(_)), "{d:?}");
            s.record_drop(d);
        }
        assert_eq!((s.rx_bad_vnet_header, s.rx_drops()), (4, 4));
    }
    use crate::wire::ethernet::EthernetRepr;
    use std::net::Ipv4Addr;

    const US: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
    const PEER: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0x01]);

    fn frame(dst: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        EthernetRepr {
            src: PEER,
            dst,
            ethertype,
        }
        .frame_with(payload)
    }

    fn arp() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: PEER,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(192, 0, 2, 2),
        }
    }

    #[test]
    fn ipv4_to_our_mac_hands_up_the_payload() {
        let f = frame(US, EtherType::Ipv4, &[0x45, 1, 2, 3]);
        assert_eq!(classify(US, &f), Ok(Inbound::Ipv4(&[0x45, 1, 2, 3][..])));
    }

    #[test]
    fn broadcast_arp_is_parsed() {
        let f = frame(MacAddr::BROADCAST, EtherType::Arp, &arp().to_bytes());
        assert_eq!(classify(US, &f), Ok(Inbound::Arp(arp())));
    }

    #[test]
    fn arp_whose_sender_mac_is_not_the_ethernet_source_is_dropped_and_counted() {
        // A frame from PEER speaking for another MAC: the shape of ARP cache poisoning.
        let forged = ArpRepr {
            sender_mac: MacAddr([0x52, 0x54, 0, 0, 0, 0x66]),
            ..arp()
        };
        for dst in [MacAddr::BROADCAST, US] {
            let f = frame(dst, EtherType::Arp, &forged.to_bytes());
            assert_eq!(classify(US, &f), Err(RxDrop::ArpSenderMismatch));
        }
        let mut s = LinkStats::default();
        s.record_drop(RxDrop::ArpSenderMismatch);
        assert_eq!((s.rx_bad_arp_sender, s.rx_drops()), (1, 1));
        let mut names = Vec::new();
        s.for_each(&mut |n, v| names.push((n.to_string(), v)));
        assert!(names.contains(&("rx_bad_arp_sender".to_string(), 1)));
        assert!(names.contains(&("arp_unsolicited_reply_drops".to_string(), 0)));
    }

    #[test]
    fn short_frame_is_truncated() {
        assert_eq!(classify(US, &[0u8; 13]), Err(RxDrop::Truncated));
    }

    #[test]
    fn unicast_for_another_mac_is_not_for_us() {
        let f = frame(PEER, EtherType::Ipv4, &[0x45]);
        assert_eq!(classify(US, &f), Err(RxDrop::NotForUs));
    }

    #[test]
    fn unjoined_multicast_is_dropped() {
        let f = frame(
            MacAddr([0x33, 0x33, 0, 0, 0, 0x16]),
            EtherType::Ipv6,
            &[0x60],
        );
        assert_eq!(classify(US, &f), Err(RxDrop::Multicast));
    }

    #[test]
    fn ipv6_to_us_is_dropped() {
        let f = frame(US, EtherType::Ipv6, &[0x60]);
        assert_eq!(classify(US, &f), Err(RxDrop::Ipv6));
    }

    #[test]
    fn unknown_ethertype_is_dropped() {
        let f = frame(US, EtherType::Unknown(0x88cc), &[]);
        assert_eq!(classify(US, &f), Err(RxDrop::UnknownEtherType(0x88cc)));
    }

    #[test]
    fn malformed_arp_is_bad_arp() {
        let f = frame(MacAddr::BROADCAST, EtherType::Arp, &arp().to_bytes()[..20]);
        assert_eq!(
            classify(US, &f),
            Err(RxDrop::BadArp(WireError::Truncated {
                needed: 28,
                got: 20
            }))
        );
        let mut bytes = arp().to_bytes();
        bytes[7] = 9;
        let f = frame(MacAddr::BROADCAST, EtherType::Arp, &bytes);
        assert_eq!(
            classify(US, &f),
            Err(RxDrop::BadArp(WireError::ArpOperation(9)))
        );
    }

    #[test]
    fn random_frames_are_classified_without_panicking() {
        let mut rng = crate::prng::SplitMix64::new(1);
        let mut accepted = 0;
        for _ in 0..100_000 {
            let len = rng.below(64) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            // Steer a share of them past the address filter and into the ARP parser.
            if len >= 14 && rng.chance(0.5) {
                f[..6].copy_from_slice(&MacAddr::BROADCAST.0);
                f[12..14].copy_from_slice(&[0x08, 0x06]);
                if len >= 22 && rng.chance(0.5) {
                    let op = 1 + rng.below(2) as u8;
                    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, op]);
                    if len >= 28 {
                        // The sender hardware address must be the Ethernet source.
                        let src: [u8; 6] = f[6..12].try_into().unwrap();
                        f[22..28].copy_from_slice(&src);
                    }
                }
            }
            accepted += usize::from(classify(US, &f).is_ok());
        }
        assert!(accepted > 0, "no random frame got through");
    }

    #[test]
    fn record_drop_counts_each_cause_in_its_own_counter() {
        let mut s = LinkStats::default();
        for d in [
            RxDrop::Truncated,
            RxDrop::NotForUs,
            RxDrop::NotForUs,
            RxDrop::Multicast,
            RxDrop::Ipv6,
            RxDrop::UnknownEtherType(1),
            RxDrop::BadArp(WireError::ArpHardwareLen(1)),
        ] {
            s.record_drop(d);
        }
        assert_eq!(
            (s.rx_truncated, s.rx_not_for_us, s.rx_multicast, s.rx_ipv6),
            (1, 2, 1, 1)
        );
        assert_eq!(
            (s.rx_unknown_ethertype, s.rx_bad_arp, s.rx_drops()),
            (1, 1, 7)
        );
    }

    #[test]
    fn add_sums_every_counter() {
        let mut a = LinkStats {
            frames_in: 1,
            arp_expired: 2,
            ..Default::default()
        };
        let mut b = LinkStats {
            frames_in: 10,
            bytes_out: 5,
            arp_queue_drops: 3,
            ..Default::default()
        };
        b.record_arp_in(ArpOperation::Reply);
        b.record_in(60);
        b.record_out(42);
        b.record_arp_out(ArpOperation::Request);
        a.add(&b);
        assert_eq!(
            a,
            LinkStats {
                frames_in: 12,
                bytes_in: 60,
                frames_out: 1,
                bytes_out: 47,
                arp_expired: 2,
                arp_queue_drops: 3,
                arp_replies_in: 1,
                arp_requests_out: 1,
                ..Default::default()
            }
        );
    }
}
