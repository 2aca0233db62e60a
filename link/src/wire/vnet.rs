//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.1 §5.1.6) that a TAP opened with
//! `IFF_VNET_HDR`, or an AF_PACKET socket with `PACKET_VNET_HDR`, puts in front of every frame.
//! It carries the offload metadata: whether the checksum still has to be completed (and where),
//! whether the kernel already checked it, and whether the frame is a large segment the other
//! side cuts into `gso_size` pieces (TSO/GSO on send, coalesced by GRO on receive).
//!
//! The fields are little-endian: the byte order of every host this stack runs on, and what the
//! kernel uses for a TAP whose header size was not set for a big-endian guest.

use super::{check_len, WireError};

mod field {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
    pub const END: usize = 10;
}

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` holds only the
/// pseudo-header sum; whoever puts the frame on a wire completes it.
const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the kernel has checked the checksum.
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_UDP: u8 = 3;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
const GSO_ECN: u8 = 0x80;

/// A zero-copy view of a virtio-net header whose length has been checked.
#[derive(Debug, Clone)]
pub struct VnetHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> VnetHeader<T> {
    /// The header's size without the mergeable-buffers count (`virtio_net_hdr`).
    pub const LEN: usize = field::END;

    /// Wraps `buf` after checking that it holds the 10-byte header.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        check_len(buf.as_ref(), field::END)?;
        Ok(Self { buf })
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = self.buf.as_ref();
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[field::FLAGS]
    }

    pub fn gso_type(&self) -> u8 {
        self.buf.as_ref()[field::GSO_TYPE]
    }

    /// Length of the headers in front of the payload (a hint; Linux recomputes it).
    pub fn hdr_len(&self) -> u16 {
        self.u16_at(field::HDR_LEN)
    }

    /// Payload bytes per segment when the frame is cut up.
    pub fn gso_size(&self) -> u16 {
        self.u16_at(field::GSO_SIZE)
    }

    /// Where the checksummed region starts, from the start of the frame.
    pub fn csum_start(&self) -> u16 {
        self.u16_at(field::CSUM_START)
    }

    /// Where the checksum field sits, from `csum_start`.
    pub fn csum_offset(&self) -> u16 {
        self.u16_at(field::CSUM_OFFSET)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VnetHeader<T> {
    fn set_u16(&mut self, at: usize, v: u16) {
        self.buf.as_mut()[at..at + 2].copy_from_slice(&v.to_le_bytes());
    }
}

/// What the kernel says about a frame's transport checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VnetChecksum {
    /// Nothing: the receiver verifies the checksum itself.
    #[default]
    Unknown,
    /// The checksum field holds only the pseudo-header sum; the bytes from `start` (counted
    /// from the start of the frame) are covered, and the field sits at `start + offset`. A
    /// receiver trusts such a frame: it never crossed a wire.
    Partial { start: u16, offset: u16 },
    /// The kernel (or the NIC) verified the checksum.
    Valid,
}

/// Whether the frame is one large segment standing for several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VnetGso {
    #[default]
    None,
    /// TCP over IPv4, cut into segments of `segment_size` payload bytes; `ecn` when the
    /// segments' CWR flag is to be set on the first one only.
    TcpV4 { segment_size: u16, ecn: bool },
    /// TCP over IPv6 (this stack speaks IPv4 only; such frames are dropped).
    TcpV6 { segment_size: u16 },
    /// UDP fragmentation offload (UFO) or UDP segmentation (USO).
    Udp { segment_size: u16, l4: bool },
}

/// A parsed virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetRepr {
    pub checksum: VnetChecksum,
    pub gso: VnetGso,
    /// Bytes of headers in front of the payload (Ethernet, IPv4 and TCP for TSO).
    pub header_len: u16,
}

impl VnetRepr {
    /// Reads a header; an unknown GSO type is an error (the frame cannot be interpreted).
    pub fn parse<T: AsRef<[u8]>>(h: &VnetHeader<T>) -> Result<Self, WireError> {
        let flags = h.flags();
        let checksum = if flags & F_NEEDS_CSUM != 0 {
            VnetChecksum::Partial {
                start: h.csum_start(),
                offset: h.csum_offset(),
            }
        } else if flags & F_DATA_VALID != 0 {
            VnetChecksum::Valid
        } else {
            VnetChecksum::Unknown
        };
        let size = h.gso_size();
        let ecn = h.gso_type() & GSO_ECN != 0;
        let gso = match h.gso_type() & !GSO_ECN {
            GSO_NONE => VnetGso::None,
            GSO_TCPV4 => VnetGso::TcpV4 {
                segment_size: size,
                ecn,
            },
            GSO_TCPV6 => VnetGso::TcpV6 { segment_size: size },
            GSO_UDP => VnetGso::Udp {
                segment_size: size,
                l4: false,
            },
            GSO_UDP_L4 => VnetGso::Udp {
                segment_size: size,
                l4: true,
            },
            other => return Err(WireError::VnetGsoType(other)),
        };
        Ok(VnetRepr {
            checksum,
            gso,
            header_len: h.hdr_len(),
        })
    }

    /// Writes the header into the first [`VnetHeader::LEN`] bytes of `h`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, h: &mut VnetHeader<T>) {
        let (flags, start, offset) = match self.checksum {
            VnetChecksum::Unknown => (0, 0, 0),
            VnetChecksum::Partial { start, offset } => (F_NEEDS_CSUM, start, offset),
            VnetChecksum::Valid => (F_DATA_VALID, 0, 0),
        };
        let (gso_type, size) = match self.gso {
            VnetGso::None => (GSO_NONE, 0),
            VnetGso::TcpV4 { segment_size, ecn } => {
                (GSO_TCPV4 | if ecn { GSO_ECN } else { 0 }, segment_size)
            }
            VnetGso::TcpV6 { segment_size } => (GSO_TCPV6, segment_size),
            VnetGso::Udp { segment_size, l4 } => {
                (if l4 { GSO_UDP_L4 } else { GSO_UDP }, segment_size)
            }
        };
        h.buf.as_mut()[field::FLAGS] = flags;
        h.buf.as_mut()[field::GSO_TYPE] = gso_type;
        h.set_u16(field::HDR_LEN, self.header_len);
        h.set_u16(field::GSO_SIZE, size);
        h.set_u16(field::CSUM_START, start);
        h.set_u16(field::CSUM_OFFSET, offset);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; VnetHeader::<&[u8]>::LEN] {
        let mut b = [0u8; VnetHeader::<&[u8]>::LEN];
        if let Ok(mut h) = VnetHeader::new_checked(&mut b[..]) {
            self.emit(&mut h);
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tso_header_round_trips_in_little_endian() {
        let r = VnetRepr {
            checksum: VnetChecksum::Partial {
                start: 34,
                offset: 16,
            },
            gso: VnetGso::TcpV4 {
                segment_size: 1448,
                ecn: false,
            },
            header_len: 66,
        };
        let b = r.to_bytes();
        assert_eq!(b, [1, 1, 66, 0, 0xa8, 0x05, 34, 0, 16, 0]);
        let back = VnetRepr::parse(&VnetHeader::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn data_valid_and_plain_headers_parse() {
        let valid = VnetRepr::parse(
            &VnetHeader::new_checked(&[2u8, 0, 0, 0, 0, 0, 0, 0, 0, 0][..]).unwrap(),
        )
        .unwrap();
        assert_eq!(valid.checksum, VnetChecksum::Valid);
        assert_eq!(valid.gso, VnetGso::None);
        let plain = VnetRepr::parse(&VnetHeader::new_checked(&[0u8; 10][..]).unwrap()).unwrap();
        assert_eq!(plain, VnetRepr::default());
        let ecn = VnetRepr::parse(
            &VnetHeader::new_checked(&[0u8, 0x81, 0, 0, 0x10, 0, 0, 0, 0, 0][..]).unwrap(),
        )
        .unwrap();
        assert_eq!(
            ecn.gso,
            VnetGso::TcpV4 {
                segment_size: 16,
                ecn: true
            }
        );
    }

    #[test]
    fn a_short_header_or_an_unknown_gso_type_is_an_error_not_a_panic() {
        assert!(VnetHeader::new_checked(&[0u8; 9][..]).is_err());
        let h = VnetHeader::new_checked(&[0u8, 9, 0, 0, 0, 0, 0, 0, 0, 0][..]).unwrap();
        assert_eq!(VnetRepr::parse(&h), Err(WireError::VnetGsoType(9)));
    }
}
