//! Just enough Ethernet, ARP, IPv4 and ICMP byte-building for the system-test tools: the
//! flood of deliberately malformed frames and the echo floor. The stack's own wire formats live
//! in `netstack-link` and `netstack-network`; these builders exist to produce bytes those
//! reject, so they check nothing and take every field as given.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use netstack_network::checksum;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    pub const BROADCAST: Mac = Mac([0xff; 6]);
}

impl FromStr for Mac {
    type Err = String;

    /// `aa:bb:cc:dd:ee:ff`.
    fn from_str(s: &str) -> Result<Mac, String> {
        let bad =
            || format!("`{s}` is not a MAC address (want six hex bytes like 02:00:00:00:00:02)");
        let bytes: Vec<u8> = s
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        <[u8; 6]>::try_from(bytes).map(Mac).map_err(|_| bad())
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Ethernet II (IEEE 802.3 §3.2.6 type interpretation).
pub mod eth {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HEADER_LEN: usize = 14;
    pub const TYPE_IPV4: u16 = 0x0800;
    pub const TYPE_ARP: u16 = 0x0806;
    pub const TYPE_IPV6: u16 = 0x86dd;
}

/// ARP for IPv4 over Ethernet (RFC 826), offsets within the ARP packet.
pub mod arp {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const LEN: usize = 28;
    pub const HTYPE_ETHERNET: u16 = 1;
    pub const OP_REQUEST: u16 = 1;
    pub const OP_REPLY: u16 = 2;
}

/// IPv4 (RFC 791 §3.1), offsets within the IPv4 header.
pub mod ipv4 {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    pub const MIN_HEADER_LEN: usize = 20;
    /// More Fragments, in the flags/fragment-offset word.
    pub const MF: u16 = 0x2000;
    pub const DF: u16 = 0x4000;
    /// The fragment offset, in units of 8 bytes.
    pub const OFFSET_MASK: u16 = 0x1fff;
    pub const PROTO_ICMP: u8 = 1;
}

/// ICMPv4 echo (RFC 792), offsets within the ICMP message.
pub mod icmp {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const HEADER_LEN: usize = 8;
    pub const ECHO_REPLY: u8 = 0;
    pub const ECHO_REQUEST: u8 = 8;
}

pub fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub fn put16(b: &mut [u8], v: u16) {
    b.copy_from_slice(&v.to_be_bytes());
}

/// An Ethernet header.
pub fn ethernet(dst: Mac, src: Mac, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(1514);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// The fields of an IPv4 header without options; `emit` fills in a correct checksum.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Header {
    /// Version (high nibble) and IHL in 32-bit words (low nibble): 0x45 when valid.
    pub ver_ihl: u8,
    pub total_len: u16,
    pub ident: u16,
    pub flags_frag: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// A valid header for `payload_len` bytes of ICMP.
    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, payload_len: usize) -> Ipv4Header {
        Ipv4Header {
            ver_ihl: 0x45,
            total_len: (ipv4::MIN_HEADER_LEN + payload_len) as u16,
            ident,
            flags_frag: 0,
            ttl: 64,
            protocol: ipv4::PROTO_ICMP,
            src,
            dst,
        }
    }

    pub fn emit(&self) -> [u8; ipv4::MIN_HEADER_LEN] {
        let mut h = [0u8; ipv4::MIN_HEADER_LEN];
        h[ipv4::VER_IHL] = self.ver_ihl;
        put16(&mut h[ipv4::TOTAL_LEN], self.total_len);
        put16(&mut h[ipv4::IDENT], self.ident);
        put16(&mut h[ipv4::FLAGS_FRAG], self.flags_frag);
        h[ipv4::TTL] = self.ttl;
        h[ipv4::PROTOCOL] = self.protocol;
        h[ipv4::SRC].copy_from_slice(&self.src.octets());
        h[ipv4::DST].copy_from_slice(&self.dst.octets());
        set_ipv4_checksum(&mut h);
        h
    }
}

/// Recomputes the checksum of the IPv4 header at the start of `header` (20 bytes).
pub fn set_ipv4_checksum(header: &mut [u8]) {
    header[ipv4::CHECKSUM].fill(0);
    let c = checksum::checksum(&header[..ipv4::MIN_HEADER_LEN]);
    put16(&mut header[ipv4::CHECKSUM], c);
}

/// Recomputes the checksum of the ICMP message `msg` (header and data).
pub fn set_icmp_checksum(msg: &mut [u8]) {
    msg[icmp::CHECKSUM].fill(0);
    let c = checksum::checksum(msg);
    put16(&mut msg[icmp::CHECKSUM], c);
}

/// An ICMP echo request with a correct checksum.
pub fn icmp_echo_request(ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut m = vec![icmp::ECHO_REQUEST, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(data);
    set_icmp_checksum(&mut m);
    m
}

/// The 28 bytes of an ARP packet for IPv4 over Ethernet.
pub fn arp_packet(op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> [u8; arp::LEN] {
    let mut p = [0u8; arp::LEN];
    put16(&mut p[arp::HTYPE], arp::HTYPE_ETHERNET);
    put16(&mut p[arp::PTYPE], eth::TYPE_IPV4);
    p[arp::HLEN] = 6;
    p[arp::PLEN] = 4;
    put16(&mut p[arp::OPER], op);
    p[arp::SHA].copy_from_slice(&sha.0);
    p[arp::SPA].copy_from_slice(&spa.octets());
    p[arp::THA].copy_from_slice(&tha.0);
    p[arp::TPA].copy_from_slice(&tpa.octets());
    p
}

/// The seeded generator the floods draw from, so a flood is the same bytes for the same seed.
pub use netstack_link::prng::SplitMix64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parses_and_displays_round_trip() {
        let m: Mac = "02:00:5e:0a:ff:01".parse().unwrap();
        assert_eq!(m.0, [2, 0, 0x5e, 0x0a, 0xff, 1]);
        assert_eq!(m.to_string(), "02:00:5e:0a:ff:01");
    }

    #[test]
    fn mac_rejects_wrong_lengths_and_non_hex() {
        assert!("02:00:00:00:00".parse::<Mac>().is_err());
        assert!("02:00:00:00:00:00:00".parse::<Mac>().is_err());
        assert!("02:00:00:00:00:zz".parse::<Mac>().is_err());
    }

    #[test]
    fn emitted_ipv4_header_verifies() {
        let h = Ipv4Header::icmp(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            7,
            64,
        )
        .emit();
        assert!(checksum::verify(checksum::accumulate(0, &h)));
        assert_eq!(be16(&h[ipv4::TOTAL_LEN]), 84);
    }

    #[test]
    fn echo_request_checksum_verifies() {
        let m = icmp_echo_request(1, 2, b"abc");
        assert!(checksum::verify(checksum::accumulate(0, &m)));
    }

    #[test]
    fn same_seed_same_sequence() {
        let (mut a, mut b) = (SplitMix64::new(9), SplitMix64::new(9));
        assert_eq!(a.bytes(32), b.bytes(32));
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }
}
