//! The DNS header (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD): a checked view over the
//! first 12 bytes and a plain repr of the flags.

use super::{Opcode, Rcode, WireError};

/// The fixed header length.
pub const HEADER_LEN: usize = 12;

mod field {
    pub const ID: usize = 0;
    pub const FLAGS: usize = 2;
    pub const QDCOUNT: usize = 4;
    pub const ANCOUNT: usize = 6;
    pub const NSCOUNT: usize = 8;
    pub const ARCOUNT: usize = 10;

    // Bits of the 16-bit flags word.
    pub const QR: u16 = 0x8000;
    pub const OPCODE_SHIFT: u16 = 11;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const Z: u16 = 0x0040;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
    pub const RCODE_MASK: u16 = 0x000F;
}

/// A view over a DNS header. `new_checked` proves there are 12 bytes, so the accessors cannot
/// go out of bounds.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::HeaderTruncated);
        }
        Ok(Header { buf })
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    pub fn id(&self) -> u16 {
        self.u16_at(field::ID)
    }
    pub fn flags(&self) -> u16 {
        self.u16_at(field::FLAGS)
    }
    pub fn qr(&self) -> bool {
        self.flags() & field::QR != 0
    }
    pub fn opcode(&self) -> Opcode {
        Opcode(((self.flags() >> field::OPCODE_SHIFT) & 0xF) as u8)
    }
    pub fn rd(&self) -> bool {
        self.flags() & field::RD != 0
    }
    pub fn tc(&self) -> bool {
        self.flags() & field::TC != 0
    }
    pub fn rcode(&self) -> Rcode {
        Rcode(self.flags() & field::RCODE_MASK)
    }
    pub fn qdcount(&self) -> u16 {
        self.u16_at(field::QDCOUNT)
    }
    pub fn ancount(&self) -> u16 {
        self.u16_at(field::ANCOUNT)
    }
    pub fn nscount(&self) -> u16 {
        self.u16_at(field::NSCOUNT)
    }
    pub fn arcount(&self) -> u16 {
        self.u16_at(field::ARCOUNT)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    fn set_u16(&mut self, at: usize, value: u16) {
        self.buf.as_mut()[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }
    pub fn set_id(&mut self, id: u16) {
        self.set_u16(field::ID, id)
    }
    pub fn set_flags(&mut self, flags: u16) {
        self.set_u16(field::FLAGS, flags)
    }
    pub fn set_counts(&mut self, qd: u16, an: u16, ns: u16, ar: u16) {
        self.set_u16(field::QDCOUNT, qd);
        self.set_u16(field::ANCOUNT, an);
        self.set_u16(field::NSCOUNT, ns);
        self.set_u16(field::ARCOUNT, ar);
    }
}

/// The meaning of a header, without the section counts (those follow from the sections).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderRepr {
    pub id: u16,
    /// A response (true) or a query.
    pub qr: bool,
    pub opcode: Opcode,
    /// Authoritative answer.
    pub aa: bool,
    /// Truncated.
    pub tc: bool,
    /// Recursion desired.
    pub rd: bool,
    /// Recursion available.
    pub ra: bool,
    /// The reserved Z bit; must be zero (RFC 1035 §4.1.1), kept so a round trip is exact.
    pub z: bool,
    /// Authentic data (RFC 4035 §3.2.3).
    pub ad: bool,
    /// Checking disabled (RFC 4035 §3.2.2).
    pub cd: bool,
    /// The low 4 bits of the response code; EDNS0 carries the upper 8.
    pub rcode: Rcode,
}

impl Default for Opcode {
    fn default() -> Self {
        Opcode::QUERY
    }
}

impl Default for Rcode {
    fn default() -> Self {
        Rcode::NOERROR
    }
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(h: &Header<T>) -> HeaderRepr {
        let f = h.flags();
        HeaderRepr {
            id: h.id(),
            qr: f & field::QR != 0,
            opcode: h.opcode(),
            aa: f & field::AA != 0,
            tc: f & field::TC != 0,
            rd: f & field::RD != 0,
            ra: f & field::RA != 0,
            z: f & field::Z != 0,
            ad: f & field::AD != 0,
            cd: f & field::CD != 0,
            rcode: h.rcode(),
        }
    }

    /// The flags word. Opcode and rcode are masked to their 4 bits.
    pub fn flags(&self) -> u16 {
        let bit = |on: bool, b: u16| if on { b } else { 0 };
        bit(self.qr, field::QR)
            | (u16::from(self.opcode.0 & 0xF) << field::OPCODE_SHIFT)
            | bit(self.aa, field::AA)
            | bit(self.tc, field::TC)
            | bit(self.rd, field::RD)
            | bit(self.ra, field::RA)
            | bit(self.z, field::Z)
            | bit(self.ad, field::AD)
            | bit(self.cd, field::CD)
            | (self.rcode.0 & field::RCODE_MASK)
    }

    /// Writes id and flags; the counts are the message emitter's business.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut Header<T>) {
        h.set_id(self.id);
        h.set_flags(self.flags());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffer_is_header_truncated() {
        assert_eq!(
            Header::new_checked(&[0u8; 11][..]).unwrap_err(),
            WireError::HeaderTruncated
        );
    }

    #[test]
    fn every_flag_bit_round_trips() {
        for bit in 0..16 {
            let mut b = [0u8; 12];
            b[2..4].copy_from_slice(&(1u16 << bit).to_be_bytes());
            let repr = HeaderRepr::parse(&Header::new_checked(&b[..]).unwrap());
            let mut out = [0u8; 12];
            repr.emit(&mut Header::new_checked(&mut out[..]).unwrap());
            assert_eq!(out, b, "bit {bit}");
        }
    }

    #[test]
    fn fields_come_from_their_offsets() {
        let b = [0x12, 0x34, 0x81, 0x83, 0, 1, 0, 2, 0, 3, 0, 4];
        let h = Header::new_checked(&b[..]).unwrap();
        let r = HeaderRepr::parse(&h);
        assert_eq!(
            (r.id, r.qr, r.rd, r.ra, r.rcode),
            (0x1234, true, true, true, Rcode::NXDOMAIN)
        );
        assert_eq!(r.opcode, Opcode::QUERY);
        assert_eq!(
            (h.qdcount(), h.ancount(), h.nscount(), h.arcount()),
            (1, 2, 3, 4)
        );
    }
}
