//! The TCP header (RFC 9293 §3.1) and its options: MSS (RFC 9293 §3.7.1), window scale and
//! timestamps (RFC 7323), SACK-permitted and SACK (RFC 2018). A zero-copy view with a checked
//! constructor, plus `TcpRepr`, the owned meaning of a header.

use std::fmt;
use std::net::Ipv4Addr;

use netstack_network::checksum::{accumulate, fold, pseudo_header, verify};
use netstack_network::wire::IpProtocol;

use super::seq::SeqNumber;

mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const DATA_OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

mod option {
    pub const END: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMP: u8 = 8;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// The largest header: data offset 15 words.
pub const MAX_HEADER_LEN: usize = 60;
/// RFC 7323 §2.3: a shift above 14 is treated as 14.
pub const MAX_WINDOW_SCALE: u8 = 14;
/// RFC 2018 §3: at most four blocks fit in the option space (three beside timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// Why a segment was rejected. Each cause has a counter in `TcpStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentError {
    /// Shorter than the fixed 20-byte header.
    TooShort,
    /// Data offset below 5 words or past the end of the segment.
    BadDataOffset,
    /// The checksum over pseudo-header, header and payload is wrong.
    BadChecksum,
    /// An option whose length byte is below 2 or runs past the header.
    BadOptionLength,
    /// Source or destination port 0, which never names a socket.
    ZeroPort,
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SegmentError::TooShort => "segment shorter than the TCP header",
            SegmentError::BadDataOffset => "bad TCP data offset",
            SegmentError::BadChecksum => "bad TCP checksum",
            SegmentError::BadOptionLength => "malformed TCP option length",
            SegmentError::ZeroPort => "TCP port 0",
        };
        f.write_str(s)
    }
}

impl std::error::Error for SegmentError {}

/// The control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    pub const FIN: Flags = Flags(0x01);
    pub const SYN: Flags = Flags(0x02);
    pub const RST: Flags = Flags(0x04);
    pub const PSH: Flags = Flags(0x08);
    pub const ACK: Flags = Flags(0x10);
    pub const URG: Flags = Flags(0x20);
    pub const ECE: Flags = Flags(0x40);
    pub const CWR: Flags = Flags(0x80);
    pub const NONE: Flags = Flags(0);

    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn fin(self) -> bool {
        self.contains(Flags::FIN)
    }
    pub fn syn(self) -> bool {
        self.contains(Flags::SYN)
    }
    pub fn rst(self) -> bool {
        self.contains(Flags::RST)
    }
    pub fn ack(self) -> bool {
        self.contains(Flags::ACK)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        let mut first = true;
        for (i, n) in names.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("-")?;
        }
        Ok(())
    }
}

/// The timestamps option (RFC 7323 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub tsval: u32,
    pub tsecr: u32,
}

/// A SACK block: the half-open range `[start, end)` (RFC 2018 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SackBlock {
    pub start: SeqNumber,
    pub end: SeqNumber,
}

/// A zero-copy view of a TCP segment whose header length has been checked.
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buf` after checking that the fixed header and the options fit.
    pub fn new_checked(buf: T) -> Result<Self, SegmentError> {
        let p = TcpPacket { buf };
        let len = p.buf.as_ref().len();
        if len < HEADER_LEN {
            return Err(SegmentError::TooShort);
        }
        let hl = p.header_len();
        if hl < HEADER_LEN || hl > len {
            return Err(SegmentError::BadDataOffset);
        }
        Ok(p)
    }

    /// Wraps `buf` without checks; only for buffers this module sized itself.
    fn new_unchecked(buf: T) -> Self {
        TcpPacket { buf }
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }
    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.b()[r];
        u16::from_be_bytes([b[0], b[1]])
    }
    fn u32_at(&self, r: std::ops::Range<usize>) -> u32 {
        let b = &self.b()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.u32_at(field::SEQ))
    }
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.u32_at(field::ACK))
    }
    pub fn header_len(&self) -> usize {
        usize::from(self.b()[field::DATA_OFFSET] >> 4) * 4
    }
    pub fn flags(&self) -> Flags {
        Flags(self.b()[field::FLAGS])
    }
    pub fn window(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }
    pub fn urgent_pointer(&self) -> u16 {
        self.u16_at(field::URGENT)
    }
    pub fn options(&self) -> &[u8] {
        &self.b()[field::OPTIONS..self.header_len()]
    }
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }

    /// RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the payload.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let data = self.b();
        let sum = pseudo_header(src, dst, IpProtocol::Tcp, data.len());
        verify(accumulate(sum, data))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }
    fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.bm()[field::CHECKSUM].fill(0);
        let data = self.b();
        let sum = accumulate(pseudo_header(src, dst, IpProtocol::Tcp, data.len()), data);
        let c = !fold(sum);
        self.bm()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Whether a parser verifies the transport checksum: `Ignore` when the device vouched for it
/// (or left it partial, for a segment that never crossed a wire), and in tests of other rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    Verify,
    Ignore,
}

/// The owned meaning of a TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    /// Meaningful only when `flags` has ACK.
    pub ack: SeqNumber,
    pub flags: Flags,
    /// The raw 16-bit window field (unscaled).
    pub window: u16,
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamp: Option<Timestamp>,
    pub sack: SackBlocks,
    pub payload_len: usize,
}

/// Up to four SACK blocks, inline (no allocation per segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    blocks: [Option<SackBlock>; MAX_SACK_BLOCKS],
}

impl SackBlocks {
    pub fn push(&mut self, b: SackBlock) -> bool {
        for slot in self.blocks.iter_mut() {
            if slot.is_none() {
                *slot = Some(b);
                return true;
            }
        }
        false
    }
    pub fn len(&self) -> usize {
        self.blocks.iter().filter(|b| b.is_some()).count()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = SackBlock> + '_ {
        self.blocks.iter().flatten().copied()
    }
    pub fn truncate(&mut self, n: usize) {
        for slot in self.blocks.iter_mut().skip(n) {
            *slot = None;
        }
    }
}

impl TcpRepr {
    /// Parses a checked view. Unknown options are skipped by their length (RFC 9293 §3.2);
    /// a window-scale shift above 14 is clamped (RFC 7323 §2.3).
    pub fn parse<T: AsRef<[u8]>>(
        p: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        checksum: Checksum,
    ) -> Result<TcpRepr, SegmentError> {
        if p.src_port() == 0 || p.dst_port() == 0 {
            return Err(SegmentError::ZeroPort);
        }
        if checksum == Checksum::Verify && !p.verify_checksum(src, dst) {
            return Err(SegmentError::BadChecksum);
        }
        let mut repr = TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: Flags(p.flags().0),
            window: p.window(),
            payload_len: p.payload().len(),
            ..TcpRepr::default()
        };
        parse_options(p.options(), &mut repr)?;
        Ok(repr)
    }

    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> usize {
        self.payload_len + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }

    /// Option bytes other than SACK blocks: MSS, SACK-permitted and timestamps, window scale.
    fn fixed_options_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamp.is_some() || self.sack_permitted {
            n += if self.timestamp.is_some() { 12 } else { 4 };
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        n
    }

    /// The SACK blocks `emit` writes: as many as fit beside the other options in the 40 bytes
    /// of option space (RFC 9293 §3.1; RFC 2018 §3: the option takes 2 + 8n bytes, here after
    /// two NOPs). A parsed header may carry more (options packed without NOPs); the rest are
    /// left out rather than overflowing the data offset.
    fn sack_blocks_to_emit(&self) -> usize {
        let room = (MAX_HEADER_LEN - HEADER_LEN).saturating_sub(self.fixed_options_len());
        self.sack.len().min(room.saturating_sub(4) / 8)
    }

    fn options_len(&self) -> usize {
        let blocks = self.sack_blocks_to_emit();
        self.fixed_options_len() + if blocks > 0 { 4 + 8 * blocks } else { 0 }
    }

    /// Header length including options, a multiple of four.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options_len()
    }

    /// Writes header and `payload` into `p` (whose buffer is exactly `header_len() +
    /// payload.len()` long) and fills in the checksum.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
    ) {
        self.emit_without_checksum(p, payload);
        p.fill_checksum(src, dst);
    }

    /// Header and payload, the checksum field left as it was.
    fn emit_without_checksum<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut TcpPacket<T>,
        payload: &[u8],
    ) {
        let hl = self.header_len();
        self.emit_header(p);
        p.bm()[hl..hl + payload.len()].copy_from_slice(payload);
    }

    /// Writes a segment's header in front of the payload `buf` already holds after it
    /// (`buf` is header room plus payload, of exactly `header_len() + payload_len` bytes),
    /// then its checksum: full, or partial for a device that completes it (checksum offload:
    /// the field holds the pseudo-header sum, not complemented, as the virtio-net `NEEDS_CSUM`
    /// convention asks, and the segment's bytes are not summed). The payload is not copied.
    pub fn emit_in_place(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, partial: bool) {
        let mut p = TcpPacket::new_unchecked(buf);
        self.emit_header(&mut p);
        if partial {
            let len = p.b().len();
            let sum = fold(pseudo_header(src, dst, IpProtocol::Tcp, len));
            p.bm()[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
        } else {
            p.fill_checksum(src, dst);
        }
    }

    /// The header fields and options; the checksum field is left as it was.
    fn emit_header<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut TcpPacket<T>) {
        let hl = self.header_len();
        let b = p.bm();
        b[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        b[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        b[field::SEQ].copy_from_slice(&self.seq.0.to_be_bytes());
        let ack = if self.flags.ack() { self.ack.0 } else { 0 };
        b[field::ACK].copy_from_slice(&ack.to_be_bytes());
        b[field::DATA_OFFSET] = ((hl / 4) as u8) << 4;
        b[field::FLAGS] = self.flags.0;
        b[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        b[field::URGENT].fill(0);
        let mut o = field::OPTIONS;
        let mut put = |bytes: &[u8]| {
            b[o..o + bytes.len()].copy_from_slice(bytes);
            o += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[option::MSS, 4, m[0], m[1]]);
        }
        match (self.sack_permitted, self.timestamp) {
            (true, Some(_)) => put(&[option::SACK_PERMITTED, 2]),
            (false, Some(_)) => put(&[option::NOP, option::NOP]),
            (true, None) => put(&[option::NOP, option::NOP, option::SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(ts) = self.timestamp {
            put(&[option::TIMESTAMP, 10]);
            put(&ts.tsval.to_be_bytes());
            put(&ts.tsecr.to_be_bytes());
        }
        if let Some(ws) = self.window_scale {
            put(&[option::NOP, option::WINDOW_SCALE, 3, ws]);
        }
        let blocks = self.sack_blocks_to_emit();
        if blocks > 0 {
            put(&[
                option::NOP,
                option::NOP,
                option::SACK,
                (2 + 8 * blocks) as u8,
            ]);
            for blk in self.sack.iter().take(blocks) {
                put(&blk.start.0.to_be_bytes());
                put(&blk.end.0.to_be_bytes());
            }
        }
        debug_assert_eq!(o, hl);
    }

    /// Emits into a new buffer: the IPv4 payload ready to send.
    pub fn to_bytes(&self, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        self.emit_into(&mut buf, src, dst, payload);
        buf
    }

    /// Appends the segment (header, `payload`, checksum filled) to `out`, after what `out`
    /// already holds (room a lower layer fills in later, for example).
    pub fn emit_into(&self, out: &mut Vec<u8>, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
        let start = out.len();
        out.resize(start + self.header_len() + payload.len(), 0);
        let mut p = TcpPacket::new_unchecked(&mut out[start..]);
        self.emit(&mut p, src, dst, payload);
    }
}

fn parse_options(mut opts: &[u8], repr: &mut TcpRepr) -> Result<(), SegmentError> {
    while let Some(&kind) = opts.first() {
        match kind {
            option::END => break,
            option::NOP => {
                opts = &opts[1..];
                continue;
            }
            _ => {}
        }
        let len = usize::from(*opts.get(1).ok_or(SegmentError::BadOptionLength)?);
        if len < 2 || len > opts.len() {
            return Err(SegmentError::BadOptionLength);
        }
        let data = &opts[2..len];
        // Known options of the wrong size are ignored, like unknown ones (RFC 1122 §4.2.2.5
        // asks only that an illegal length not crash us).
        match (kind, data.len()) {
            (option::MSS, 2) => repr.mss = Some(u16::from_be_bytes([data[0], data[1]])),
            (option::WINDOW_SCALE, 1) => repr.window_scale = Some(data[0].min(MAX_WINDOW_SCALE)),
            (option::SACK_PERMITTED, 0) => repr.sack_permitted = true,
            (option::TIMESTAMP, 8) => {
                repr.timestamp = Some(Timestamp {
                    tsval: u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                    tsecr: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                })
            }
            (option::SACK, n) if n % 8 == 0 => {
                for c in data.chunks_exact(8) {
                    let start = SeqNumber(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    let end = SeqNumber(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
                    repr.sack.push(SackBlock { start, end });
                }
            }
            _ => {}
        }
        opts = &opts[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn syn() -> TcpRepr {
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNumber(0xdead_beef),
            flags: Flags::SYN,
            window: 65535,
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some(Timestamp { tsval: 1, tsecr: 0 }),
            ..TcpRepr::default()
        }
    }

    #[test]
    fn a_partial_checksum_completed_over_the_segment_is_the_full_checksum() {
        // What a device does for NEEDS_CSUM: sum the segment as it is (the field holding the
        // pseudo-header sum) and store the complement.
        let r = TcpRepr {
            payload_len: 5,
            flags: Flags::ACK | Flags::PSH,
            ..syn()
        };
        let full = r.to_bytes(A, B, b"hello");
        let mut buf = vec![0u8; r.header_len()];
        buf.extend_from_slice(b"hello");
        r.emit_in_place(&mut buf, A, B, true);
        assert_eq!(&buf[..16], &full[..16]);
        let completed = !fold(accumulate(0, &buf));
        assert_eq!(completed.to_be_bytes(), [full[16], full[17]]);
        // And in place with the full checksum: the same bytes as `to_bytes`.
        r.emit_in_place(&mut buf, A, B, false);
        assert_eq!(buf, full);
    }

    #[test]
    fn emit_leaves_out_sack_blocks_that_do_not_fit_the_40_bytes_of_option_space() {
        // RFC 9293 §3.1, RFC 2018 §3. Found by the tcp_segment fuzz target: MSS, timestamps
        // and three SACK blocks packed without NOPs fill exactly 40 bytes, and parse; emitted
        // with NOP alignment they took 44, and the data offset wrapped to 0.
        let mut opts = vec![option::MSS, 4, 0x05, 0xb4, option::TIMESTAMP, 10];
        opts.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 9]);
        opts.extend_from_slice(&[option::SACK, 26]);
        for b in 1u32..=6 {
            opts.extend_from_slice(&(b * 100).to_be_bytes());
        }
        assert_eq!(opts.len(), 40);
        let mut seg = vec![
            0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 2, 0xf0, 0x10, 0x10, 0, 0, 0, 0, 0,
        ];
        seg.extend_from_slice(&opts);
        let p = TcpPacket::new_checked(&seg[..]).unwrap();
        let parsed = TcpRepr::parse(&p, A, B, Checksum::Ignore).unwrap();
        assert_eq!(parsed.sack.len(), 3);

        let bytes = parsed.to_bytes(A, B, b"");
        assert!(
            bytes.len() <= MAX_HEADER_LEN,
            "{} header bytes",
            bytes.len()
        );
        assert_eq!(usize::from(bytes[field::DATA_OFFSET] >> 4) * 4, bytes.len());
        let back = TcpRepr::parse(
            &TcpPacket::new_checked(&bytes[..]).unwrap(),
            A,
            B,
            Checksum::Verify,
        )
        .unwrap();
        // 40 − MSS 4 − timestamps 12 leave room for two blocks (4 + 2 × 8): the first two.
        let mut expect = parsed;
        expect.sack.truncate(2);
        assert_eq!(back, expect);
    }

    fn round_trip(r: &TcpRepr, payload: &[u8]) -> (TcpRepr, Vec<u8>) {
        let bytes = r.to_bytes(A, B, payload);
        let p = TcpPacket::new_checked(&bytes[..]).unwrap();
        let back = TcpRepr::parse(&p, A, B, Checksum::Verify).unwrap();
        (back, p.payload().to_vec())
    }

    #[test]
    fn syn_with_every_option_round_trips() {
        let r = syn();
        assert_eq!(r.header_len(), 40);
        let (back, payload) = round_trip(&r, &[]);
        assert_eq!(back, r);
        assert!(payload.is_empty());
    }

    #[test]
    fn data_segment_with_sack_blocks_round_trips() {
        let mut r = TcpRepr {
            src_port: 1,
            dst_port: 2,
            seq: SeqNumber(5),
            ack: SeqNumber(9),
            flags: Flags::ACK | Flags::PSH,
            window: 100,
            timestamp: Some(Timestamp { tsval: 7, tsecr: 8 }),
            payload_len: 3,
            ..TcpRepr::default()
        };
        for i in 0..3 {
            r.sack.push(SackBlock {
                start: SeqNumber(100 * i),
                end: SeqNumber(100 * i + 50),
            });
        }
        let (back, payload) = round_trip(&r, b"abc");
        assert_eq!(back, r);
        assert_eq!(payload, b"abc");
        assert_eq!(back.seq_len(), 3);
    }

    #[test]
    fn ack_field_is_zero_without_the_ack_flag() {
        let r = TcpRepr {
            ack: SeqNumber(77),
            ..syn()
        };
        let bytes = r.to_bytes(A, B, &[]);
        assert_eq!(&bytes[8..12], &[0, 0, 0, 0]);
    }

    #[test]
    fn short_segment_is_rejected() {
        assert_eq!(
            TcpPacket::new_checked(&[0u8; 19][..]).err(),
            Some(SegmentError::TooShort)
        );
    }

    #[test]
    fn data_offset_below_five_words_is_rejected() {
        let mut b = syn().to_bytes(A, B, &[]);
        b[12] = 4 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(SegmentError::BadDataOffset)
        );
    }

    #[test]
    fn data_offset_past_the_end_is_rejected() {
        let mut b = syn().to_bytes(A, B, &[]);
        b[12] = 15 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).err(),
            Some(SegmentError::BadDataOffset)
        );
    }

    #[test]
    fn corrupted_segment_fails_the_checksum() {
        let mut b = syn().to_bytes(A, B, b"hi");
        b[21] ^= 0x40;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, A, B, Checksum::Verify),
            Err(SegmentError::BadChecksum)
        );
        // The pseudo-header is covered too: the same bytes from another address fail.
        let b = syn().to_bytes(A, B, b"hi");
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, B, B, Checksum::Verify),
            Err(SegmentError::BadChecksum)
        );
    }

    #[test]
    fn option_length_below_two_is_rejected() {
        let mut b = syn().to_bytes(A, B, &[]);
        b[21] = 1; // MSS option with length 1
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, A, B, Checksum::Ignore),
            Err(SegmentError::BadOptionLength)
        );
    }

    #[test]
    fn option_running_past_the_header_is_rejected() {
        let mut b = syn().to_bytes(A, B, &[]);
        b[21] = 30;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, A, B, Checksum::Ignore),
            Err(SegmentError::BadOptionLength)
        );
    }

    #[test]
    fn option_kind_without_length_byte_is_rejected() {
        let mut b = TcpRepr { mss: None, ..syn() }.to_bytes(A, B, &[]);
        // Replace the last four option bytes (NOP, WS, 3, 7) with NOP NOP NOP MSS-kind.
        let n = b.len();
        b[n - 4..].copy_from_slice(&[1, 1, 1, 2]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, A, B, Checksum::Ignore),
            Err(SegmentError::BadOptionLength)
        );
    }

    #[test]
    fn zero_port_is_rejected() {
        let b = TcpRepr {
            src_port: 0,
            ..syn()
        }
        .to_bytes(A, B, &[]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            TcpRepr::parse(&p, A, B, Checksum::Verify),
            Err(SegmentError::ZeroPort)
        );
    }

    #[test]
    fn window_scale_above_fourteen_is_clamped() {
        // RFC 7323 §2.3
        let b = TcpRepr {
            window_scale: Some(15),
            ..syn()
        }
        .to_bytes(A, B, &[]);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        let r = TcpRepr::parse(&p, A, B, Checksum::Verify).unwrap();
        assert_eq!(r.window_scale, Some(14));
    }

    #[test]
    fn unknown_and_wrong_sized_options_are_skipped() {
        let mut b = TcpRepr {
            mss: None,
            window_scale: None,
            ..syn()
        }
        .to_bytes(A, B, &[]);
        // Options are SACK-perm, TS(10): overwrite SACK-perm with unknown kind 30 len 2, and
        // give the timestamps option a wrong length of 2 followed by 8 bytes of filler NOPs.
        b[20] = 30;
        b[23] = 2;
        b[24..32].fill(1);
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        let r = TcpRepr::parse(&p, A, B, Checksum::Ignore).unwrap();
        assert!(!r.sack_permitted);
        assert_eq!(r.timestamp, None);
    }

    #[test]
    fn end_of_options_stops_parsing() {
        let mut b = syn().to_bytes(A, B, &[]);
        b[20] = 0;
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        let r = TcpRepr::parse(&p, A, B, Checksum::Ignore).unwrap();
        assert_eq!(r.mss, None);
        assert_eq!(r.window_scale, None);
    }
}
