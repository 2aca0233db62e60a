//! Frame building for the system-test tools (the flood of deliberately malformed frames, the
//! echo floor, the pcap check), on the stack's own wire views: a valid frame comes from the
//! `Repr`s of `netstack-link` and `netstack-network`, and a malformed one is a valid one with
//! a field broken through the views' setters on an unchecked view. The helpers here add only
//! what the views leave out on purpose: a checksum over the fixed header whatever the IHL
//! says, and flipped checksum bits.

use std::net::Ipv4Addr;

use netstack_link::{EtherType, EthernetRepr, MacAddr};
use netstack_network::checksum;
use netstack_network::wire::ipv4::HEADER_LEN as IPV4_HEADER_LEN;
use netstack_network::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr};

/// An Ethernet II frame: the header from `dst` and `src` followed by `payload`.
pub fn ethernet(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    EthernetRepr {
        src,
        dst,
        ethertype,
    }
    .frame_with(payload)
}

/// A valid IPv4 header for `payload_len` bytes of ICMP: TTL 64, no DSCP, no fragmentation.
pub fn ipv4_icmp(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, payload_len: usize) -> Ipv4Repr {
    Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::Icmp,
        ttl: 64,
        dscp_ecn: 0,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        payload_len,
    }
}

/// An ICMP echo request (RFC 792) with a correct checksum.
pub fn icmp_echo_request(ident: u16, seq_no: u16, data: &[u8]) -> Vec<u8> {
    Icmpv4Repr::EchoRequest {
        ident,
        seq_no,
        data,
    }
    .to_bytes()
}

/// Recomputes the checksum of the IPv4 header at the start of `packet` over the fixed
/// 20 bytes, whatever its IHL says, so a field broken on purpose is the only thing wrong
/// (`Ipv4Packet::fill_checksum` follows the IHL, which a broken IHL makes meaningless).
/// `packet` must hold at least 20 bytes.
pub fn reseal_ipv4(packet: &mut [u8]) {
    Ipv4Packet::new_unchecked(&mut *packet).set_checksum(0);
    let sum = checksum::checksum(&packet[..IPV4_HEADER_LEN]);
    Ipv4Packet::new_unchecked(packet).set_checksum(sum);
}

/// Flips bit `bit` (0 the least significant) of the IPv4 header checksum of `packet`.
pub fn flip_ipv4_checksum_bit(packet: &mut [u8], bit: u32) {
    let mut p = Ipv4Packet::new_unchecked(packet);
    let sum = p.checksum();
    p.set_checksum(sum ^ (1 << bit));
}

/// Flips bit `bit` (0 the least significant) of the checksum of the ICMP message `msg`.
pub fn flip_icmp_checksum_bit(msg: &mut [u8], bit: u32) {
    let mut m = Icmpv4Packet::new_unchecked(msg);
    let sum = m.checksum();
    m.set_checksum(sum ^ (1 << bit));
}

/// The seeded generator the floods draw from, so a flood is the same bytes for the same seed.
pub use netstack_link::prng::SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn echo_packet() -> Vec<u8> {
        let msg = icmp_echo_request(1, 2, b"abc");
        ipv4_icmp(A, B, 7, msg.len()).to_bytes(&msg)
    }

    #[test]
    fn icmp_in_ipv4_parses_with_both_checksums() {
        let bytes = echo_packet();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        let ip = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!((ip.protocol, ip.ttl, ip.ident), (IpProtocol::Icmp, 64, 7));
        assert_eq!(p.total_len(), 20 + 8 + 3);
        let m = Icmpv4Packet::new_checked(p.payload()).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&m, true),
            Ok(Icmpv4Repr::EchoRequest {
                ident: 1,
                seq_no: 2,
                data: b"abc"
            })
        );
    }

    #[test]
    fn reseal_covers_the_fixed_header_whatever_the_ihl() {
        for ihl_bytes in [0, 4, 16, 60] {
            let mut bytes = echo_packet();
            Ipv4Packet::new_unchecked(&mut bytes[..]).set_header_len(ihl_bytes);
            reseal_ipv4(&mut bytes);
            assert!(checksum::verify(checksum::accumulate(0, &bytes[..20])));
        }
    }

    #[test]
    fn flipped_checksum_bits_fail_verification_and_flip_back() {
        let mut bytes = echo_packet();
        flip_ipv4_checksum_bit(&mut bytes, 9);
        assert!(!Ipv4Packet::new_unchecked(&bytes[..]).verify_checksum());
        flip_ipv4_checksum_bit(&mut bytes, 9);
        assert!(Ipv4Packet::new_unchecked(&bytes[..]).verify_checksum());
        flip_icmp_checksum_bit(&mut bytes[20..], 14);
        assert!(!Icmpv4Packet::new_unchecked(&bytes[20..]).verify_checksum());
    }

    #[test]
    fn ethernet_frame_is_header_then_payload() {
        let (src, dst) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr::BROADCAST);
        let f = ethernet(dst, src, EtherType::Arp, &[9, 9]);
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &src.0);
        assert_eq!(&f[12..], &[0x08, 0x06, 9, 9]);
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (SplitMix64::new(9), SplitMix64::new(9));
        assert_eq!(a.bytes(32), b.bytes(32));
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }
}
