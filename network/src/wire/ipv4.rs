//! IPv4 header (RFC 791 §3.1): a zero-copy view, its `Repr`, and `Ipv4Cidr`.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::{IpProtocol, WireError};
use crate::checksum;

/// Field offsets of the IPv4 header (RFC 791 §3.1).
mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header: IHL 15 words.
pub const MAX_HEADER_LEN: usize = 60;
/// Largest datagram the 16-bit total length field can describe.
pub const MAX_PACKET_LEN: usize = 65535;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet. After `new_checked`, every accessor stays in bounds.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it; accessors may panic on a short buffer.
    /// Use only on buffers this crate sized itself (emitting).
    pub fn new_unchecked(buf: T) -> Self {
        Ipv4Packet { buf }
    }

    /// Wraps a received buffer after checking version, IHL and total length. The buffer may
    /// be longer than the total length (link-layer padding); the extra bytes are ignored.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let p = Ipv4Packet { buf };
        p.check_len()?;
        Ok(p)
    }

    fn check_len(&self) -> Result<(), WireError> {
        let b = self.buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::BadVersion);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN || hl > b.len() {
            return Err(WireError::BadHeaderLength);
        }
        let tl = usize::from(self.total_len());
        if tl < hl || tl > b.len() {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    fn word(&self, r: std::ops::Range<usize>) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }

    pub fn version(&self) -> u8 {
        self.buf.as_ref()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buf.as_ref()[field::DSCP_ECN]
    }
    pub fn total_len(&self) -> u16 {
        self.word(field::TOTAL_LEN)
    }
    pub fn ident(&self) -> u16 {
        self.word(field::IDENT)
    }
    pub fn dont_frag(&self) -> bool {
        self.word(field::FLAGS_FRAG) & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.word(field::FLAGS_FRAG) & FLAG_MF != 0
    }
    /// Fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.word(field::FLAGS_FRAG) & OFFSET_MASK) << 3
    }
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[field::TTL]
    }
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buf.as_ref()[field::PROTOCOL])
    }
    pub fn checksum(&self) -> u16 {
        self.word(field::CHECKSUM)
    }
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// The whole header, options included.
    pub fn header(&self) -> &[u8] {
        &self.buf.as_ref()[..self.header_len()]
    }
    /// The options (skipped, never interpreted).
    pub fn options(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.header_len()]
    }
    /// RFC 791 §3.1: the one's-complement sum over the header, options included.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(checksum::accumulate(0, self.header()))
    }
    /// header_len..total_len: trailing link padding excluded.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn set_word(&mut self, r: std::ops::Range<usize>, v: u16) {
        self.buf.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    /// Sets version 4 and the header length in bytes (a multiple of 4).
    pub fn set_header_len(&mut self, len: usize) {
        self.buf.as_mut()[field::VER_IHL] = 0x40 | ((len / 4) as u8 & 0x0f);
    }
    /// Sets the version nibble (its low four bits) and keeps the IHL: for test tools that
    /// write headers of another version on purpose; `set_header_len` writes version 4.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buf.as_mut()[field::VER_IHL];
        *b = (version << 4) | (*b & 0x0f);
    }
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buf.as_mut()[field::DSCP_ECN] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        self.set_word(field::TOTAL_LEN, v);
    }
    pub fn set_ident(&mut self, v: u16) {
        self.set_word(field::IDENT, v);
    }
    /// Sets DF, MF and the offset (in bytes; must be a multiple of 8).
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut w = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            w |= FLAG_DF;
        }
        if more_frags {
            w |= FLAG_MF;
        }
        self.set_word(field::FLAGS_FRAG, w);
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buf.as_mut()[field::TTL] = v;
    }
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buf.as_mut()[field::PROTOCOL] = p.into();
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_word(field::CHECKSUM, v);
    }
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buf.as_mut()[field::SRC].copy_from_slice(&a.octets());
    }
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buf.as_mut()[field::DST].copy_from_slice(&a.octets());
    }
    /// Computes and stores the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buf.as_mut()[h..t]
    }
}

/// The meaning of an IPv4 header. Options are not represented: they are skipped on parse
/// and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    /// In bytes (a multiple of 8), not in the field's 8-byte units.
    pub frag_offset: u16,
    pub payload_len: usize,
}

impl Ipv4Repr {
    /// Reads a checked packet; verifies the header checksum when asked.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        verify_checksum: bool,
    ) -> Result<Self, WireError> {
        // new_checked already proved the lengths; re-check so an unchecked view cannot panic.
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        Ok(Self::read(
            packet,
            usize::from(packet.total_len()) - packet.header_len(),
        ))
    }

    fn read<T: AsRef<[u8]>>(p: &Ipv4Packet<T>, payload_len: usize) -> Self {
        Ipv4Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.protocol(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            payload_len,
        }
    }

    /// Parses the header quoted inside an ICMP error (RFC 792): the quote is cut short, so
    /// the total length describes the original datagram, not `bytes`. Returns the header
    /// and the quoted payload bytes that follow it. The quoted checksum is not verified
    /// (routers quote what they received; RFC 5927 §4.1 checks addresses and ports instead).
    pub fn parse_quoted(bytes: &[u8]) -> Result<(Self, &[u8]), WireError> {
        if bytes.len() < HEADER_LEN {
            return Err(WireError::BadQuotedHeader);
        }
        let p = Ipv4Packet::new_unchecked(bytes);
        let hl = p.header_len();
        if p.version() != 4 || hl < HEADER_LEN || hl > bytes.len() {
            return Err(WireError::BadQuotedHeader);
        }
        let payload_len = usize::from(p.total_len()).saturating_sub(hl);
        Ok((Self::read(&p, payload_len), &bytes[hl..]))
    }

    /// Always 20: options are never emitted.
    pub fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// header_len() + payload_len.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// True when this header describes a fragment (MF set or a non-zero offset).
    pub fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Writes the header (with its checksum) into the first 20 bytes of the packet. The
    /// buffer must hold at least `header_len()` bytes; the payload is the caller's.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(self.total_len().min(MAX_PACKET_LEN) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src);
        packet.set_dst_addr(self.dst);
        packet.fill_checksum();
    }

    /// A complete datagram: this header (with `payload_len` set from `payload`) + payload.
    pub fn to_bytes(&self, payload: &[u8]) -> Vec<u8> {
        let repr = Ipv4Repr {
            payload_len: payload.len(),
            ..*self
        };
        let mut buf = vec![0u8; repr.total_len()];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        buf[HEADER_LEN..].copy_from_slice(payload);
        buf
    }
}

/// An IPv4 address with its prefix length, e.g. `192.0.2.2/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
}

/// Why a CIDR string or prefix length was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// No `/` separating address and prefix length.
    MissingPrefixLength,
    /// The part before `/` is not a dotted-quad IPv4 address.
    BadAddress(String),
    /// The prefix length is not a number from 0 to 32.
    BadPrefixLength(String),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::MissingPrefixLength => {
                f.write_str("missing prefix length: write ADDRESS/LEN, e.g. 192.0.2.2/24")
            }
            CidrError::BadAddress(s) => {
                write!(f, "`{s}` is not an IPv4 address (expected e.g. 192.0.2.2)")
            }
            CidrError::BadPrefixLength(s) => {
                write!(f, "`{s}` is not a prefix length (expected 0 to 32)")
            }
        }
    }
}

impl std::error::Error for CidrError {}

impl Ipv4Cidr {
    pub fn new(addr: Ipv4Addr, prefix_len: u8) -> Result<Self, CidrError> {
        if prefix_len > 32 {
            return Err(CidrError::BadPrefixLength(prefix_len.to_string()));
        }
        Ok(Ipv4Cidr { addr, prefix_len })
    }

    fn mask_bits(&self) -> u32 {
        match self.prefix_len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n.min(32))),
        }
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    /// The address with the host bits cleared.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask_bits())
    }

    /// The directed broadcast address; None for /31 (RFC 3021) and /32, which have none.
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        if self.prefix_len >= 31 {
            return None;
        }
        Some(Ipv4Addr::from(u32::from(self.addr) | !self.mask_bits()))
    }

    pub fn contains(&self, addr: Ipv4Addr) -> bool {
        (u32::from(addr) ^ u32::from(self.addr)) & self.mask_bits() == 0
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let (a, l) = s.split_once('/').ok_or(CidrError::MissingPrefixLength)?;
        let addr = a
            .parse()
            .map_err(|_| CidrError::BadAddress(a.to_string()))?;
        let len: u8 = l
            .parse()
            .map_err(|_| CidrError::BadPrefixLength(l.to_string()))?;
        Ipv4Cidr::new(addr, len).map_err(|_| CidrError::BadPrefixLength(l.to_string()))
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            protocol: IpProtocol::Udp,
            ttl: 64,
            dscp_ecn: 0x2e,
            ident: 0x1234,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            payload_len: 4,
        }
    }

    fn packet() -> Vec<u8> {
        repr().to_bytes(&[1, 2, 3, 4])
    }

    #[test]
    fn repr_round_trips() {
        let bytes = packet();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), repr());
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
    }

    #[test]
    fn fragment_fields_round_trip() {
        let r = Ipv4Repr {
            dont_frag: false,
            more_frags: true,
            frag_offset: 1480,
            ..repr()
        };
        let bytes = r.to_bytes(&[0; 4]);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap(), r);
        assert_eq!(&bytes[6..8], &[0x20, 185]);
    }

    #[test]
    fn short_buffer_is_truncated() {
        let bytes = packet();
        assert_eq!(
            Ipv4Packet::new_checked(&bytes[..19]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Ipv4Packet::new_checked(&[][..]).unwrap_err(),
            WireError::Truncated
        );
    }

    /// Mutates a good packet and asserts the exact rejection.
    fn rejected(mutate: impl FnOnce(&mut Vec<u8>)) -> WireError {
        let mut bytes = packet();
        mutate(&mut bytes);
        Ipv4Packet::new_checked(&bytes[..]).unwrap_err()
    }

    fn set_total_len(b: &mut [u8], len: u16) {
        b[2..4].copy_from_slice(&len.to_be_bytes());
    }

    #[test]
    fn version_other_than_4_is_rejected() {
        assert_eq!(rejected(|b| b[0] = 0x65), WireError::BadVersion);
    }

    #[test]
    fn set_version_keeps_the_header_length() {
        let mut bytes = packet();
        let mut p = Ipv4Packet::new_unchecked(&mut bytes[..]);
        p.set_header_len(24);
        p.set_version(6);
        assert_eq!((p.version(), p.header_len()), (6, 24));
        assert_eq!(bytes[0], 0x66);
    }

    #[test]
    fn ihl_below_5_is_rejected() {
        assert_eq!(rejected(|b| b[0] = 0x44), WireError::BadHeaderLength);
    }

    #[test]
    fn ihl_past_the_buffer_is_rejected() {
        // 24 bytes of header in a 24-byte buffer is fine, 28 is not.
        let mut bytes = packet();
        bytes[0] = 0x46;
        set_total_len(&mut bytes, 24);
        assert!(Ipv4Packet::new_checked(&bytes[..]).is_ok());
        let past = |b: &mut Vec<u8>| {
            b[0] = 0x47;
            set_total_len(b, 24);
        };
        assert_eq!(rejected(past), WireError::BadHeaderLength);
    }

    #[test]
    fn total_length_below_header_is_rejected() {
        assert_eq!(
            rejected(|b| set_total_len(b, 19)),
            WireError::BadTotalLength
        );
    }

    #[test]
    fn total_length_past_the_buffer_is_rejected() {
        assert_eq!(
            rejected(|b| set_total_len(b, 25)),
            WireError::BadTotalLength
        );
    }

    #[test]
    fn trailing_link_padding_is_excluded_from_payload() {
        let mut bytes = packet();
        bytes.extend_from_slice(&[0xee; 22]);
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.payload(), &[1, 2, 3, 4]);
        assert_eq!(Ipv4Repr::parse(&p, true).unwrap().payload_len, 4);
    }

    #[test]
    fn bad_checksum_is_rejected_only_when_verifying() {
        let mut bytes = packet();
        bytes[8] ^= 0xff;
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&p, true).unwrap_err(),
            WireError::BadChecksum
        );
        assert!(Ipv4Repr::parse(&p, false).is_ok());
    }

    #[test]
    fn options_are_skipped() {
        let mut bytes = [0u8; 28];
        bytes[0] = 0x46;
        bytes[2..4].copy_from_slice(&28u16.to_be_bytes());
        bytes[8] = 64;
        bytes[9] = 6;
        bytes[12..16].copy_from_slice(&[192, 0, 2, 1]);
        bytes[16..20].copy_from_slice(&[192, 0, 2, 2]);
        bytes[20..24].copy_from_slice(&[0x94, 0x04, 0, 0]); // Router Alert (RFC 2113)
        bytes[24..28].copy_from_slice(&[9, 8, 7, 6]);
        Ipv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let p = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(p.options(), &[0x94, 0x04, 0, 0]);
        assert_eq!(p.payload(), &[9, 8, 7, 6]);
        let r = Ipv4Repr::parse(&p, true).unwrap();
        assert_eq!((r.protocol, r.payload_len), (IpProtocol::Tcp, 4));
    }

    #[test]
    fn quoted_header_may_be_cut_short() {
        let r = Ipv4Repr {
            payload_len: 1000,
            ..repr()
        };
        let mut bytes = r.to_bytes(&[7; 1000]);
        bytes.truncate(28);
        let (q, data) = Ipv4Repr::parse_quoted(&bytes).unwrap();
        assert_eq!(q, r);
        assert_eq!(data, &[7; 8]);
        assert_eq!(
            Ipv4Repr::parse_quoted(&bytes[..19]),
            Err(WireError::BadQuotedHeader)
        );
    }

    #[test]
    fn cidr_parses_and_displays() {
        let c: Ipv4Cidr = "192.0.2.2/24".parse().unwrap();
        assert_eq!(
            c,
            Ipv4Cidr {
                addr: Ipv4Addr::new(192, 0, 2, 2),
                prefix_len: 24
            }
        );
        assert_eq!(c.to_string(), "192.0.2.2/24");
        assert_eq!(c.network(), Ipv4Addr::new(192, 0, 2, 0));
        assert_eq!(c.broadcast(), Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert_eq!(c.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert!(c.contains(Ipv4Addr::new(192, 0, 2, 200)));
        assert!(!c.contains(Ipv4Addr::new(198, 51, 100, 1)));
    }

    #[test]
    fn cidr_edge_prefixes() {
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(198, 51, 100, 7)));
        assert_eq!(all.netmask(), Ipv4Addr::UNSPECIFIED);
        let host: Ipv4Cidr = "192.0.2.2/32".parse().unwrap();
        assert!(host.contains(Ipv4Addr::new(192, 0, 2, 2)));
        assert!(!host.contains(Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(host.broadcast(), None);
        assert_eq!(
            "198.51.100.0/31".parse::<Ipv4Cidr>().unwrap().broadcast(),
            None
        );
    }

    #[test]
    fn cidr_rejections_name_the_cause() {
        assert_eq!(
            "192.0.2.2".parse::<Ipv4Cidr>(),
            Err(CidrError::MissingPrefixLength)
        );
        assert_eq!(
            "192.0.2/24".parse::<Ipv4Cidr>(),
            Err(CidrError::BadAddress("192.0.2".into()))
        );
        assert_eq!(
            "192.0.2.2/33".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength("33".into()))
        );
        assert_eq!(
            "192.0.2.2/x".parse::<Ipv4Cidr>(),
            Err(CidrError::BadPrefixLength("x".into()))
        );
        assert!(Ipv4Cidr::new(Ipv4Addr::LOCALHOST, 40).is_err());
    }
}
