//! ARP for IPv4 over Ethernet (RFC 826). Only hardware type Ethernet (1) with 6-byte addresses and
//! protocol type IPv4 (0x0800) with 4-byte addresses is understood; everything else is rejected
//! with its own error.

use std::net::Ipv4Addr;

use super::ethernet::{mac_at, EtherType, EthernetRepr, MacAddr};
use super::{check_len, read_u16, write_u16, WireError};

mod field {
    use std::ops::Range;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const END: usize = 28;
}

/// RFC 826 ar$hrd for Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// RFC 826 ar$pro: the EtherType of IPv4.
const PTYPE_IPV4: u16 = 0x0800;

/// ARP opcode (RFC 826 ar$op).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    Request,
    Reply,
}

impl ArpOperation {
    fn code(self) -> u16 {
        match self {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        }
    }
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet. `new_checked` proves the 28 bytes of that
/// form are present; [`ArpRepr::parse`] checks the type and length fields.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        check_len(buf.as_ref(), field::END)?;
        Ok(Self { buf })
    }

    pub fn into_inner(self) -> T {
        self.buf
    }

    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buf.as_ref(), field::HTYPE)
    }

    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buf.as_ref(), field::PTYPE)
    }

    pub fn hardware_len(&self) -> u8 {
        self.buf.as_ref()[field::HLEN]
    }

    pub fn protocol_len(&self) -> u8 {
        self.buf.as_ref()[field::PLEN]
    }

    pub fn operation(&self) -> u16 {
        read_u16(self.buf.as_ref(), field::OPER)
    }

    pub fn sender_hardware_addr(&self) -> MacAddr {
        mac_at(self.buf.as_ref(), field::SHA.start)
    }

    pub fn sender_protocol_addr(&self) -> Ipv4Addr {
        ipv4_at(self.buf.as_ref(), field::SPA.start)
    }

    pub fn target_hardware_addr(&self) -> MacAddr {
        mac_at(self.buf.as_ref(), field::THA.start)
    }

    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4_at(self.buf.as_ref(), field::TPA.start)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(self.buf.as_mut(), field::HTYPE, value);
    }

    pub fn set_protocol_type(&mut self, value: u16) {
        write_u16(self.buf.as_mut(), field::PTYPE, value);
    }

    pub fn set_hardware_len(&mut self, value: u8) {
        self.buf.as_mut()[field::HLEN] = value;
    }

    pub fn set_protocol_len(&mut self, value: u8) {
        self.buf.as_mut()[field::PLEN] = value;
    }

    pub fn set_operation(&mut self, value: u16) {
        write_u16(self.buf.as_mut(), field::OPER, value);
    }

    pub fn set_sender_hardware_addr(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::SHA].copy_from_slice(&mac.0);
    }

    pub fn set_sender_protocol_addr(&mut self, ip: Ipv4Addr) {
        self.buf.as_mut()[field::SPA].copy_from_slice(&ip.octets());
    }

    pub fn set_target_hardware_addr(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::THA].copy_from_slice(&mac.0);
    }

    pub fn set_target_protocol_addr(&mut self, ip: Ipv4Addr) {
        self.buf.as_mut()[field::TPA].copy_from_slice(&ip.octets());
    }
}

fn ipv4_at(buf: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3])
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: ArpOperation,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const BUFFER_LEN: usize = field::END;

    /// Checks the fixed fields in RFC 826 order: hardware type, protocol type, lengths, opcode.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, WireError> {
        if packet.hardware_type() != HTYPE_ETHERNET {
            return Err(WireError::ArpHardwareType(packet.hardware_type()));
        }
        if packet.protocol_type() != PTYPE_IPV4 {
            return Err(WireError::ArpProtocolType(packet.protocol_type()));
        }
        if packet.hardware_len() != 6 {
            return Err(WireError::ArpHardwareLen(packet.hardware_len()));
        }
        if packet.protocol_len() != 4 {
            return Err(WireError::ArpProtocolLen(packet.protocol_len()));
        }
        let operation = match packet.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => return Err(WireError::ArpOperation(other)),
        };
        Ok(Self {
            operation,
            sender_mac: packet.sender_hardware_addr(),
            sender_ip: packet.sender_protocol_addr(),
            target_mac: packet.target_hardware_addr(),
            target_ip: packet.target_protocol_addr(),
        })
    }

    /// Parses the bytes of an ARP payload.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        Self::parse(&ArpPacket::new_checked(bytes)?)
    }

    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(PTYPE_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation.code());
        packet.set_sender_hardware_addr(self.sender_mac);
        packet.set_sender_protocol_addr(self.sender_ip);
        packet.set_target_hardware_addr(self.target_mac);
        packet.set_target_protocol_addr(self.target_ip);
    }

    /// The 28 bytes of this packet.
    pub fn to_bytes(&self) -> [u8; Self::BUFFER_LEN] {
        let mut buf = [0u8; Self::BUFFER_LEN];
        // The array has exactly the checked length, so this cannot fail.
        if let Ok(mut packet) = ArpPacket::new_checked(&mut buf[..]) {
            self.emit(&mut packet);
        }
        buf
    }

    /// The Ethernet header this packet travels under: from the sender's MAC, requests to
    /// broadcast, replies unicast to the target (RFC 826 "Packet Generation" / "Packet Reception").
    pub fn ethernet_repr(&self) -> EthernetRepr {
        let dst = match self.operation {
            ArpOperation::Request => MacAddr::BROADCAST,
            ArpOperation::Reply => self.target_mac,
        };
        EthernetRepr {
            src: self.sender_mac,
            dst,
            ethertype: EtherType::Arp,
        }
    }

    /// The whole Ethernet frame carrying this packet.
    pub fn to_frame(&self) -> Vec<u8> {
        self.ethernet_repr().frame_with(&self.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: MacAddr([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(192, 0, 2, 2),
        }
    }

    const REQUEST_BYTES: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // hrd, pro, hln, pln, op
        0x52, 0x54, 0, 0x12, 0x34, 0x56, 192, 0, 2, 1, // sha, spa
        0, 0, 0, 0, 0, 0, 192, 0, 2, 2, // tha, tpa
    ];

    #[test]
    fn request_emits_exact_bytes_and_parses_back() {
        assert_eq!(request().to_bytes(), REQUEST_BYTES);
        assert_eq!(ArpRepr::parse_bytes(&REQUEST_BYTES), Ok(request()));
    }

    #[test]
    fn reply_round_trips() {
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            target_mac: MacAddr([2, 0, 0, 0, 0, 9]),
            ..request()
        };
        let bytes = reply.to_bytes();
        assert_eq!(&bytes[6..8], &[0, 2]);
        assert_eq!(ArpRepr::parse_bytes(&bytes), Ok(reply));
    }

    #[test]
    fn trailing_padding_is_ignored() {
        // Ethernet pads ARP to 46 payload bytes; the padding is not part of the packet.
        let mut padded = REQUEST_BYTES.to_vec();
        padded.resize(46, 0);
        assert_eq!(ArpRepr::parse_bytes(&padded), Ok(request()));
    }

    #[test]
    fn short_packet_is_truncated() {
        assert_eq!(
            ArpRepr::parse_bytes(&REQUEST_BYTES[..27]),
            Err(WireError::Truncated {
                needed: 28,
                got: 27
            })
        );
    }

    fn with(offset: usize, bytes: &[u8]) -> Result<ArpRepr, WireError> {
        let mut buf = REQUEST_BYTES;
        buf[offset..offset + bytes.len()].copy_from_slice(bytes);
        ArpRepr::parse_bytes(&buf)
    }

    #[test]
    fn non_ethernet_hardware_type_is_rejected() {
        assert_eq!(with(0, &[0, 6]), Err(WireError::ArpHardwareType(6)));
    }

    #[test]
    fn non_ipv4_protocol_type_is_rejected() {
        assert_eq!(
            with(2, &[0x86, 0xdd]),
            Err(WireError::ArpProtocolType(0x86dd))
        );
    }

    #[test]
    fn wrong_hardware_length_is_rejected() {
        assert_eq!(with(4, &[8]), Err(WireError::ArpHardwareLen(8)));
    }

    #[test]
    fn wrong_protocol_length_is_rejected() {
        assert_eq!(with(5, &[16]), Err(WireError::ArpProtocolLen(16)));
    }

    #[test]
    fn unknown_operation_is_rejected() {
        assert_eq!(with(6, &[0, 3]), Err(WireError::ArpOperation(3)));
        assert_eq!(with(6, &[0, 0]), Err(WireError::ArpOperation(0)));
    }

    #[test]
    fn request_frame_goes_to_broadcast_reply_frame_to_target() {
        let frame = request().to_frame();
        assert_eq!(&frame[0..6], &[0xff; 6]);
        assert_eq!(&frame[6..12], &request().sender_mac.0);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[14..], &REQUEST_BYTES);
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            target_mac: MacAddr([2, 0, 0, 0, 0, 9]),
            ..request()
        };
        assert_eq!(reply.ethernet_repr().dst, MacAddr([2, 0, 0, 0, 0, 9]));
    }
}
