//! ICMPv4 messages (RFC 792): a zero-copy view and the `Repr` of the types this stack uses.
//!
//! Parsed: Echo Request/Reply, Destination Unreachable, Time Exceeded. Every other type is
//! rejected with `WireError::UnknownIcmpType`, which the endpoint counts and drops.

use super::ipv4::{Ipv4Packet, Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN};
use super::WireError;
use crate::checksum;

mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    /// RFC 1191 §4: Next-Hop MTU in the low half of the unused word (Fragmentation Needed).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    pub const UNUSED: Range<usize> = 4..8;
}

/// Length of the fixed ICMP header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = 8;

/// Message type numbers (RFC 792).
pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DST_UNREACHABLE: u8 = 3;
    pub const SOURCE_QUENCH: u8 = 4;
    pub const REDIRECT: u8 = 5;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
    pub const PARAMETER_PROBLEM: u8 = 12;

    /// RFC 1122 §3.2.2: the error messages, about which no error may be sent.
    /// Unknown types count as errors too, so we never answer what we cannot classify.
    pub fn is_query(t: u8) -> bool {
        // Echo, Router Advertisement/Solicitation, Timestamp, Information, Address Mask.
        matches!(t, 0 | 8 | 9 | 10 | 13..=18)
    }
}

/// A view of an ICMPv4 message (the IPv4 payload).
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_unchecked(buf: T) -> Self {
        Icmpv4Packet { buf }
    }

    /// Checks that the fixed 8-byte header is present.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv4Packet { buf })
    }

    fn word(&self, r: std::ops::Range<usize>) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[r.start], b[r.start + 1]])
    }
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[field::TYPE]
    }
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[field::CODE]
    }
    pub fn checksum(&self) -> u16 {
        self.word(field::CHECKSUM)
    }
    pub fn echo_ident(&self) -> u16 {
        self.word(field::ECHO_IDENT)
    }
    pub fn echo_seq_no(&self) -> u16 {
        self.word(field::ECHO_SEQ)
    }
    pub fn next_hop_mtu(&self) -> u16 {
        self.word(field::NEXT_HOP_MTU)
    }
    /// Everything after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..]
    }
    /// RFC 792: the checksum covers the whole message.
    pub fn verify_checksum(&self) -> bool {
        checksum::verify(checksum::accumulate(0, self.buf.as_ref()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn set_word(&mut self, r: std::ops::Range<usize>, v: u16) {
        self.buf.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }
    pub fn set_msg_type(&mut self, v: u8) {
        self.buf.as_mut()[field::TYPE] = v;
    }
    pub fn set_code(&mut self, v: u8) {
        self.buf.as_mut()[field::CODE] = v;
    }
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_word(field::ECHO_IDENT, v);
    }
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_word(field::ECHO_SEQ, v);
    }
    pub fn clear_unused(&mut self) {
        self.buf.as_mut()[field::UNUSED].fill(0);
    }
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.set_word(field::NEXT_HOP_MTU, v);
    }
    /// Stores `v` as the checksum as it is; `fill_checksum` computes the right one.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_word(field::CHECKSUM, v);
    }
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[HEADER_LEN..]
    }
    pub fn fill_checksum(&mut self) {
        self.set_word(field::CHECKSUM, 0);
        let c = checksum::checksum(self.buf.as_ref());
        self.set_word(field::CHECKSUM, c);
    }
}

/// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// RFC 1191 §4: DF set and the datagram is too big; the MTU of the next hop (0 when an
    /// old router did not say).
    FragRequired {
        next_hop_mtu: u16,
    },
    SourceRouteFailed,
    DstNetUnknown,
    DstHostUnknown,
    /// Codes 9, 10 and 13: administratively prohibited.
    AdminProhibited,
    /// Any other code, kept so the transport can still see the error.
    Other(u8),
}

impl DstUnreachable {
    fn code(self) -> u8 {
        match self {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtocolUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired { .. } => 4,
            DstUnreachable::SourceRouteFailed => 5,
            DstUnreachable::DstNetUnknown => 6,
            DstUnreachable::DstHostUnknown => 7,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(c) => c,
        }
    }

    fn from_code(code: u8, next_hop_mtu: u16) -> Self {
        match code {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtocolUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired { next_hop_mtu },
            5 => DstUnreachable::SourceRouteFailed,
            6 => DstUnreachable::DstNetUnknown,
            7 => DstUnreachable::DstHostUnknown,
            9 | 10 | 13 => DstUnreachable::AdminProhibited,
            c => DstUnreachable::Other(c),
        }
    }
}

/// Time Exceeded codes (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// Code 0: TTL reached zero in transit.
    TtlExceeded,
    /// Code 1: fragment reassembly time exceeded (RFC 1122 §3.3.2).
    FragReassembly,
}

/// The meaning of an ICMPv4 message. `data` borrows from the parsed buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    EchoRequest {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    EchoReply {
        ident: u16,
        seq_no: u16,
        data: &'a [u8],
    },
    /// `header` is the quoted IPv4 header of the offending datagram, `data` the quoted
    /// bytes after it (the start of the transport header).
    DstUnreachable {
        reason: DstUnreachable,
        header: Ipv4Repr,
        data: &'a [u8],
    },
    TimeExceeded {
        reason: TimeExceeded,
        header: Ipv4Repr,
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message, verifying its checksum when asked.
    pub fn parse(
        packet: &Icmpv4Packet<&'a [u8]>,
        verify_checksum: bool,
    ) -> Result<Self, WireError> {
        let bytes: &'a [u8] = packet.buf;
        if bytes.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if verify_checksum && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let data: &'a [u8] = &bytes[HEADER_LEN..];
        match (packet.msg_type(), packet.code()) {
            (msg_type::ECHO_REQUEST, 0) => Ok(Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (msg_type::ECHO_REPLY, 0) => Ok(Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            }),
            (msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY, _) => Err(WireError::BadIcmpCode),
            (msg_type::DST_UNREACHABLE, code) => {
                let (header, data) = Ipv4Repr::parse_quoted(data)?;
                let reason = DstUnreachable::from_code(code, packet.next_hop_mtu());
                Ok(Icmpv4Repr::DstUnreachable {
                    reason,
                    header,
                    data,
                })
            }
            (msg_type::TIME_EXCEEDED, code) => {
                let reason = match code {
                    0 => TimeExceeded::TtlExceeded,
                    1 => TimeExceeded::FragReassembly,
                    _ => return Err(WireError::BadIcmpCode),
                };
                let (header, data) = Ipv4Repr::parse_quoted(data)?;
                Ok(Icmpv4Repr::TimeExceeded {
                    reason,
                    header,
                    data,
                })
            }
            _ => Err(WireError::UnknownIcmpType),
        }
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                    data.len()
                }
                Icmpv4Repr::DstUnreachable { header, data, .. }
                | Icmpv4Repr::TimeExceeded { header, data, .. } => header.header_len() + data.len(),
            }
    }

    /// Writes the message with its checksum into `buf`, which must be exactly
    /// `buffer_len()` long. An error message re-emits the quoted header from its `Repr`
    /// (without options, with a fresh checksum) followed by `data`.
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Icmpv4Packet::new_unchecked(&mut *buf);
        p.clear_unused();
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let t = match self {
                    Icmpv4Repr::EchoRequest { .. } => msg_type::ECHO_REQUEST,
                    _ => msg_type::ECHO_REPLY,
                };
                p.set_msg_type(t);
                p.set_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.data_mut().copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
            } => {
                p.set_msg_type(msg_type::DST_UNREACHABLE);
                p.set_code(reason.code());
                if let DstUnreachable::FragRequired { next_hop_mtu } = reason {
                    p.set_next_hop_mtu(next_hop_mtu);
                }
                emit_quote(p.data_mut(), &header, data);
            }
            Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            } => {
                p.set_msg_type(msg_type::TIME_EXCEEDED);
                p.set_code(match reason {
                    TimeExceeded::TtlExceeded => 0,
                    TimeExceeded::FragReassembly => 1,
                });
                emit_quote(p.data_mut(), &header, data);
            }
        }
        p.fill_checksum();
    }

    /// The whole message as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.buffer_len()];
        self.emit(&mut buf);
        buf
    }
}

fn emit_quote(out: &mut [u8], header: &Ipv4Repr, data: &[u8]) {
    let (h, rest) = out.split_at_mut(IPV4_HEADER_LEN);
    header.emit(&mut Ipv4Packet::new_unchecked(h));
    rest.copy_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IpProtocol;
    use std::net::Ipv4Addr;

    fn quoted() -> Ipv4Repr {
        Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: Ipv4Addr::new(198, 51, 100, 9),
            protocol: IpProtocol::Udp,
            ttl: 63,
            dscp_ecn: 0,
            ident: 77,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            payload_len: 1400,
        }
    }

    fn round_trip(r: Icmpv4Repr<'_>) {
        let bytes = r.to_bytes();
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&p, true).unwrap(), r);
    }

    #[test]
    fn echo_round_trips() {
        round_trip(Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 7,
            data: b"abcdefgh",
        });
        round_trip(Icmpv4Repr::EchoReply {
            ident: 1,
            seq_no: 65535,
            data: b"",
        });
    }

    #[test]
    fn dst_unreachable_round_trips() {
        for reason in [
            DstUnreachable::NetUnreachable,
            DstUnreachable::HostUnreachable,
            DstUnreachable::ProtocolUnreachable,
            DstUnreachable::PortUnreachable,
            DstUnreachable::FragRequired { next_hop_mtu: 1280 },
            DstUnreachable::SourceRouteFailed,
            DstUnreachable::DstNetUnknown,
            DstUnreachable::DstHostUnknown,
            DstUnreachable::AdminProhibited,
            DstUnreachable::Other(15),
        ] {
            round_trip(Icmpv4Repr::DstUnreachable {
                reason,
                header: quoted(),
                data: &[1; 8],
            });
        }
    }

    #[test]
    fn frag_required_carries_next_hop_mtu() {
        let r = Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired { next_hop_mtu: 1400 },
            header: quoted(),
            data: &[0; 8],
        };
        let bytes = r.to_bytes();
        assert_eq!(&bytes[..2], &[3, 4]);
        assert_eq!(&bytes[6..8], &1400u16.to_be_bytes());
    }

    #[test]
    fn time_exceeded_round_trips() {
        for reason in [TimeExceeded::TtlExceeded, TimeExceeded::FragReassembly] {
            round_trip(Icmpv4Repr::TimeExceeded {
                reason,
                header: quoted(),
                data: &[2; 8],
            });
        }
    }

    #[test]
    fn short_message_is_truncated() {
        assert_eq!(
            Icmpv4Packet::new_checked(&[8u8, 0, 0][..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn bad_checksum_is_rejected() {
        let mut bytes = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        }
        .to_bytes();
        bytes[8] ^= 1;
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true), Err(WireError::BadChecksum));
        assert!(Icmpv4Repr::parse(&p, false).is_ok());
    }

    #[test]
    fn set_checksum_stores_the_value_as_given() {
        let mut bytes = Icmpv4Repr::EchoRequest {
            ident: 1,
            seq_no: 2,
            data: b"xyz",
        }
        .to_bytes();
        let mut p = Icmpv4Packet::new_unchecked(&mut bytes[..]);
        let good = p.checksum();
        p.set_checksum(good ^ 0x4000);
        assert_eq!(p.checksum(), good ^ 0x4000);
        assert!(!p.verify_checksum());
        p.fill_checksum();
        assert_eq!(p.checksum(), good);
    }

    #[test]
    fn unknown_type_is_rejected() {
        let mut bytes = [msg_type::REDIRECT, 0, 0, 0, 0, 0, 0, 0];
        Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true), Err(WireError::UnknownIcmpType));
    }

    #[test]
    fn undefined_codes_are_rejected() {
        for (t, c) in [(msg_type::ECHO_REQUEST, 1), (msg_type::TIME_EXCEEDED, 2)] {
            let mut bytes = vec![t, c, 0, 0, 0, 0, 0, 0];
            bytes.extend(quoted().to_bytes(&[]));
            Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
            let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p, true), Err(WireError::BadIcmpCode));
        }
    }

    #[test]
    fn error_without_a_quoted_header_is_rejected() {
        let mut bytes = vec![msg_type::DST_UNREACHABLE, 3, 0, 0, 0, 0, 0, 0, 0x45, 0];
        Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p, true), Err(WireError::BadQuotedHeader));
    }

    #[test]
    fn error_types_are_not_queries() {
        for t in [3, 4, 5, 11, 12, 200] {
            assert!(!msg_type::is_query(t), "type {t}");
        }
        for t in [0, 8, 13, 14] {
            assert!(msg_type::is_query(t), "type {t}");
        }
    }
}
