//! The UDP header: a checked view plus `UdpRepr`.

use std::net::Ipv4Addr;

use netstack_network::checksum;

use crate::Checksum;
use netstack_network::wire::IpProtocol;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

pub const HEADER_LEN: usize = 8;
/// The largest UDP payload an IPv4 datagram can carry: 65535 - 20 (IPv4) - 8 (UDP).
pub const MAX_PAYLOAD: usize = 65_507;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpError {
    /// Shorter than the 8-byte header.
    Truncated,
    /// The length field is below 8 or past the end of the IP payload.
    BadLength,
    /// The checksum over the pseudo-header does not verify.
    BadChecksum,
    /// Source or destination port 0 where a port is required.
    BadPort,
}

impl std::fmt::Display for UdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UdpError::Truncated => "UDP datagram shorter than its header",
            UdpError::BadLength => "UDP length field disagrees with the IP payload",
            UdpError::BadChecksum => "UDP checksum does not verify",
            UdpError::BadPort => "UDP destination port 0",
        })
    }
}

impl std::error::Error for UdpError {}

fn be16(b: &[u8], r: std::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

/// A UDP datagram over a byte buffer (the IP payload).
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks that the header fits and the length field lies within the buffer, so every
    /// accessor below is in bounds.
    pub fn new_checked(buf: T) -> Result<Self, UdpError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(UdpError::Truncated);
        }
        let len = usize::from(be16(b, field::LENGTH));
        // RFC 768: the length counts header and data. A buffer longer than it (IP padding) is
        // fine; one shorter is not.
        if len < HEADER_LEN || len > b.len() {
            return Err(UdpError::BadLength);
        }
        Ok(Self { buf })
    }

    pub fn src_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::SRC_PORT)
    }

    pub fn dst_port(&self) -> u16 {
        be16(self.buf.as_ref(), field::DST_PORT)
    }

    pub fn len(&self) -> usize {
        usize::from(be16(self.buf.as_ref(), field::LENGTH))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buf.as_ref(), field::CHECKSUM)
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.len()]
    }

    /// RFC 768: a zero checksum means the sender computed none, which IPv4 allows.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let data = &self.buf.as_ref()[..self.len()];
        let sum = checksum::pseudo_header(src, dst, IpProtocol::Udp, data.len());
        checksum::verify(checksum::accumulate(sum, data))
    }
}

/// The meaning of a UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    pub src_port: u16,
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a checked packet, verifying its checksum against the IPv4 addresses.
    pub fn parse<T: AsRef<[u8]>>(
        p: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Result<Self, UdpError> {
        Self::parse_with(p, src, dst, Checksum::Verify)
    }

    /// Like `parse`; with `Checksum::Ignore` (the device vouched for the checksum, or left it
    /// partial because the datagram never crossed a wire) the checksum is not looked at.
    pub fn parse_with<T: AsRef<[u8]>>(
        p: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: Checksum,
    ) -> Result<Self, UdpError> {
        if p.dst_port() == 0 {
            return Err(UdpError::BadPort);
        }
        if checksum == Checksum::Verify && !p.verify_checksum(src, dst) {
            return Err(UdpError::BadChecksum);
        }
        Ok(Self {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
        })
    }

    /// Appends header and payload to `out`, with the checksum filled in.
    pub fn emit(&self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let len = HEADER_LEN + payload.len();
        debug_assert!(payload.len() <= MAX_PAYLOAD);
        out.extend_from_slice(&self.src_port.to_be_bytes());
        out.extend_from_slice(&self.dst_port.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(payload);
        let sum = checksum::pseudo_header(src, dst, IpProtocol::Udp, len);
        let mut c = !checksum::fold(checksum::accumulate(sum, &out[start..]));
        // RFC 768: a computed zero is sent as all ones, since zero means "no checksum".
        if c == 0 {
            c = 0xffff;
        }
        out[start + field::CHECKSUM.start..start + field::CHECKSUM.end]
            .copy_from_slice(&c.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn datagram(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        UdpRepr {
            src_port: 5353,
            dst_port: 53,
        }
        .emit(SRC, DST, payload, &mut out);
        out
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let d = datagram(b"hello");
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, SRC, DST).unwrap(),
            UdpRepr {
                src_port: 5353,
                dst_port: 53
            }
        );
        assert_eq!(p.payload(), b"hello");
        assert_eq!(p.len(), 13);
    }

    #[test]
    fn checksum_matches_a_known_datagram() {
        // A datagram built by hand: the checksum is over pseudo-header, header and data.
        let d = datagram(&[0x12, 0x34]);
        let mut sum = checksum::pseudo_header(SRC, DST, IpProtocol::Udp, d.len());
        sum = checksum::accumulate(sum, &d);
        assert_eq!(checksum::fold(sum), 0xffff);
    }

    #[test]
    fn zero_checksum_is_accepted_on_ipv4() {
        let mut d = datagram(b"x");
        d[6] = 0;
        d[7] = 0;
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert!(UdpRepr::parse(&p, SRC, DST).is_ok());
    }

    #[test]
    fn corrupted_payload_fails_the_checksum() {
        let mut d = datagram(b"hello");
        d[9] ^= 0x40;
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC, DST), Err(UdpError::BadChecksum));
    }

    #[test]
    fn the_wrong_addresses_fail_the_checksum() {
        let d = datagram(b"hello");
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&p, SRC, Ipv4Addr::new(192, 0, 2, 3)),
            Err(UdpError::BadChecksum)
        );
    }

    #[test]
    fn short_buffers_and_bad_lengths_are_rejected() {
        assert_eq!(
            UdpPacket::new_checked(&[0u8; 7][..]).unwrap_err(),
            UdpError::Truncated
        );
        let mut d = datagram(b"abc");
        d[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&d[..]).unwrap_err(),
            UdpError::BadLength
        );
        d[4..6].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&d[..]).unwrap_err(),
            UdpError::BadLength
        );
    }

    #[test]
    fn trailing_ip_padding_is_ignored() {
        let mut d = datagram(b"abc");
        d.extend_from_slice(&[0, 0, 0]);
        let p = UdpPacket::new_checked(&d[..]).unwrap();
        assert_eq!(p.payload(), b"abc");
        assert!(UdpRepr::parse(&p, SRC, DST).is_ok());
    }

    #[test]
    fn destination_port_zero_is_rejected() {
        let mut out = Vec::new();
        UdpRepr {
            src_port: 1,
            dst_port: 0,
        }
        .emit(SRC, DST, b"", &mut out);
        let p = UdpPacket::new_checked(&out[..]).unwrap();
        assert_eq!(UdpRepr::parse(&p, SRC, DST), Err(UdpError::BadPort));
    }

    #[test]
    fn a_computed_zero_checksum_is_sent_as_all_ones() {
        // Search a payload whose checksum computes to zero; it must go out as 0xffff.
        for v in 0..=u16::MAX {
            let d = datagram(&v.to_be_bytes());
            let p = UdpPacket::new_checked(&d[..]).unwrap();
            assert_ne!(p.checksum(), 0);
            if p.checksum() == 0xffff {
                assert!(UdpRepr::parse(&p, SRC, DST).is_ok());
                return;
            }
        }
        panic!("no payload produced a zero checksum");
    }
}
