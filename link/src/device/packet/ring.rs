//! The TPACKET_V3 ring's layout and a checked walk over one block (sans-IO: the blocks are
//! byte slices), and the software completion of a partial checksum.

use crate::wire::vnet::VnetHeader;

/// The ring layout the kernel writes (`linux/if_packet.h`): a block descriptor
/// (`tpacket_block_desc` with `tpacket_hdr_v1`), then frames, each a `tpacket3_hdr`, a
/// `sockaddr_ll` at the next 16-byte boundary and the frame at `tp_mac`.
pub(super) mod field {
    pub const BLOCK_STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const OFFSET_TO_FIRST_PKT: usize = 16;
    pub const BLK_LEN: usize = 20;
    /// `sizeof(struct tpacket_block_desc)`.
    pub const BLOCK_HEADER_LEN: usize = 48;

    pub const TP_NEXT_OFFSET: usize = 0;
    pub const TP_SNAPLEN: usize = 12;
    pub const TP_LEN: usize = 16;
    pub const TP_STATUS: usize = 20;
    pub const TP_MAC: usize = 24;
    /// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where `sockaddr_ll` starts.
    pub const SOCKADDR_LL: usize = 48;
    /// `sll_pkttype` inside `sockaddr_ll`.
    pub const SLL_PKTTYPE: usize = 10;
    /// `sizeof(struct sockaddr_ll)`.
    pub const SOCKADDR_LL_LEN: usize = 20;
    /// Headers in front of the earliest a frame can start.
    pub const FRAME_HEADERS: usize = SOCKADDR_LL + SOCKADDR_LL_LEN;
}

/// Why a ring block or a frame in it was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The block descriptor's lengths or first offset point outside the block.
    BadBlockHeader,
    /// A frame header, or the frame it describes, does not fit in the block.
    BadFrameHeader,
}

/// One frame of a ring block, as offsets into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFrame {
    /// `tp_status`: `TP_STATUS_CSUMNOTREADY`, `TP_STATUS_CSUM_VALID`, …
    pub status: u32,
    /// `sll_pkttype`: `PACKET_HOST`, `PACKET_OUTGOING`, …
    pub pkttype: u8,
    /// Where the Ethernet header starts (the virtio-net header, if any, is just before it).
    pub mac: usize,
    /// Bytes of the frame in the block.
    pub snaplen: usize,
    /// Bytes of the frame on the wire (more than `snaplen` when the ring cut it short).
    pub len: usize,
}

/// Where a reader stands inside a block: the next frame's offset and how many remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCursor {
    next: usize,
    pub(super) remaining: u32,
}

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

/// A walk over the frames of one block the kernel has handed over. Every offset read from the
/// block is checked against it, so a bogus block ends the walk with an error, never a panic or
/// an endless loop (each step moves forward and the count is bounded by the block size).
#[derive(Debug)]
pub struct BlockWalk<'a> {
    block: &'a [u8],
    cursor: BlockCursor,
    /// The frame room needed in front of `tp_mac` (the virtio-net header, if any).
    reserve: usize,
}

impl<'a> BlockWalk<'a> {
    /// Starts at the block's first frame. `vnet` says whether frames carry a virtio-net
    /// header in front of the Ethernet header.
    pub fn new(block: &'a [u8], vnet: bool) -> Result<Self, RingError> {
        let num = u32_at(block, field::NUM_PKTS).ok_or(RingError::BadBlockHeader)?;
        let first = u32_at(block, field::OFFSET_TO_FIRST_PKT).ok_or(RingError::BadBlockHeader)?;
        let len = u32_at(block, field::BLK_LEN).ok_or(RingError::BadBlockHeader)?;
        let (first, len) = (first as usize, len as usize);
        if len > block.len() || (num > 0 && (first < field::BLOCK_HEADER_LEN || first >= len)) {
            return Err(RingError::BadBlockHeader);
        }
        Ok(Self::resume(
            &block[..len],
            BlockCursor {
                next: first,
                remaining: num,
            },
            vnet,
        ))
    }

    /// Continues a walk where `cursor` left it (the block is the same, still held).
    pub fn resume(block: &'a [u8], cursor: BlockCursor, vnet: bool) -> Self {
        let reserve = if vnet { VnetHeader::<&[u8]>::LEN } else { 0 };
        Self {
            block,
            cursor,
            reserve,
        }
    }

    /// Where the walk stands, to resume it later.
    pub fn cursor(&self) -> BlockCursor {
        self.cursor
    }

    fn frame_at(&self, at: usize) -> Option<(RingFrame, u32)> {
        let h = self.block.get(at..)?;
        let next = u32_at(h, field::TP_NEXT_OFFSET)?;
        let snaplen = u32_at(h, field::TP_SNAPLEN)? as usize;
        let len = u32_at(h, field::TP_LEN)? as usize;
        let status = u32_at(h, field::TP_STATUS)?;
        let mac = u16_at(h, field::TP_MAC)? as usize;
        let pkttype = *h.get(field::SOCKADDR_LL + field::SLL_PKTTYPE)?;
        if mac < field::FRAME_HEADERS + self.reserve || mac.checked_add(snaplen)? > h.len() {
            return None;
        }
        Some((
            RingFrame {
                status,
                pkttype,
                mac: at + mac,
                snaplen,
                len,
            },
            next,
        ))
    }
}

impl Iterator for BlockWalk<'_> {
    type Item = Result<RingFrame, RingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor.remaining == 0 {
            return None;
        }
        let at = self.cursor.next;
        let Some((frame, next)) = self.frame_at(at) else {
            self.cursor.remaining = 0;
            return Some(Err(RingError::BadFrameHeader));
        };
        self.cursor.remaining -= 1;
        if self.cursor.remaining > 0 {
            // The next frame must lie further on, past this one's headers.
            let next = next as usize;
            if next < field::FRAME_HEADERS || at + next >= self.block.len() {
                self.cursor.remaining = 0;
                return Some(Err(RingError::BadFrameHeader));
            }
            self.cursor.next = at + next;
        }
        Some(Ok(frame))
    }
}

/// Completes a partial TCP or UDP checksum over IPv4 in an Ethernet frame: the checksum field
/// holds the pseudo-header sum (RFC 1071 arithmetic), the sum over the transport header and
/// payload is folded in and the complement stored. Returns false (frame untouched) for
/// anything else or anything that does not add up.
pub fn complete_partial_checksum(frame: &mut [u8]) -> bool {
    const ETH: usize = 14;
    let mut l3 = ETH;
    let mut ethertype = u16_at_be(frame, 12);
    if ethertype == Some(0x8100) {
        ethertype = u16_at_be(frame, 16);
        l3 += 4;
    }
    if ethertype != Some(0x0800) {
        return false;
    }
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let Some(total) = u16_at_be(frame, l3 + 2).map(usize::from) else {
        return false;
    };
    let Some(&proto) = frame.get(l3 + 9) else {
        return false;
    };
    if vihl >> 4 != 4 || ihl < 20 || total < ihl || l3 + total > frame.len() {
        return false;
    }
    let start = l3 + ihl;
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    let end = l3 + total;
    if start + field + 2 > end {
        return false;
    }
    let mut sum: u64 = 0;
    for pair in frame[start..end].chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u64::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut csum = !(sum as u16);
    if proto == 17 && csum == 0 {
        // RFC 768: a computed zero is sent as all ones.
        csum = 0xffff;
    }
    frame[start + field..start + field + 2].copy_from_slice(&csum.to_be_bytes());
    true
}

fn u16_at_be(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}
