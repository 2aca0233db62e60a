//! The WebSocket frame (RFC 6455 §5.2): a sans-IO incremental reader that parses headers and
//! unmasks payloads as bytes arrive, and a writer.
//!
//! The reader checks every rule that needs only the frame itself: reserved bits (no extension
//! is ever negotiated), reserved opcodes, control frames of at most 125 bytes and never
//! fragmented (§5.5), a 64-bit length with its most significant bit clear (§5.2), the masking
//! rule of the side it reads for (§5.1), and the frame size limit. Rules across frames
//! (continuations, message size, UTF-8) belong to the connection in `socket.rs`.

use std::fmt;

/// Frame header field layout (RFC 6455 §5.2).
mod field {
    pub const FIN: u8 = 0x80;
    pub const RSV: u8 = 0x70;
    pub const OPCODE: u8 = 0x0F;
    pub const MASK: u8 = 0x80;
    pub const LEN7: u8 = 0x7F;
    /// 7-bit length values that announce a 16-bit or a 64-bit extended length.
    pub const LEN_16: u8 = 126;
    pub const LEN_64: u8 = 127;
}

/// The longest frame header: 2 bytes, a 64-bit length and a masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A frame opcode (RFC 6455 §5.2, §11.8). Reserved opcodes are rejected when parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a further fragment of a message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: close (§5.5.1).
    Close,
    /// 0x9: ping (§5.5.2).
    Ping,
    /// 0xA: pong (§5.5.3).
    Pong,
}

impl OpCode {
    /// The opcode for the 4-bit value `v`, unless it is reserved.
    pub fn from_bits(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The opcode's 4-bit value.
    pub fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// True for close, ping and pong (opcodes with the high bit set, §5.5).
    pub fn is_control(self) -> bool {
        self.bits() & 0x8 != 0
    }
}

/// The meaning of a frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The final fragment of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, for masked frames.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// The header's length on the wire (lengths are always emitted in their minimal form).
    pub fn header_len(&self) -> usize {
        let ext = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + ext + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Appends the header to `out`, with the length in its minimal encoding.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let b0 = if self.fin { field::FIN } else { 0 } | self.opcode.bits();
        let m = if self.mask.is_some() { field::MASK } else { 0 };
        out.push(b0);
        match self.payload_len {
            n @ 0..=125 => out.push(m | n as u8),
            n @ 126..=0xFFFF => {
                out.push(m | field::LEN_16);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(m | field::LEN_64);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
    }
}

/// Which masking rule the reader enforces (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Masking {
    /// A server reads client frames: every frame must be masked.
    Required,
    /// A client reads server frames: no frame may be masked.
    Forbidden,
}

/// Why a frame is rejected; each maps to the close code the connection fails with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// RSV1-3 set while no extension was negotiated (§5.2).
    ReservedBits,
    /// An opcode reserved for future use (§5.2).
    ReservedOpcode(u8),
    /// A control frame without FIN (§5.5).
    FragmentedControl,
    /// A control frame with more than 125 payload bytes (§5.5).
    ControlTooLong,
    /// A 64-bit length with its most significant bit set (§5.2).
    LengthMsbSet,
    /// An unmasked frame from a client (§5.1).
    Unmasked,
    /// A masked frame from a server (§5.1).
    Masked,
    /// A payload above the reader's frame size limit.
    TooBig,
}

impl FrameError {
    /// The close status code (RFC 6455 §7.4.1): 1009 for size, 1002 for the rest.
    pub fn close_code(self) -> u16 {
        match self {
            FrameError::TooBig => 1009,
            _ => 1002,
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::ReservedBits => f.write_str("reserved bits set without an extension"),
            FrameError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            FrameError::FragmentedControl => f.write_str("fragmented control frame"),
            FrameError::ControlTooLong => f.write_str("control frame longer than 125 bytes"),
            FrameError::LengthMsbSet => f.write_str("64-bit length with the high bit set"),
            FrameError::Unmasked => f.write_str("unmasked frame from a client"),
            FrameError::Masked => f.write_str("masked frame from a server"),
            FrameError::TooBig => f.write_str("frame above the size limit"),
        }
    }
}

impl std::error::Error for FrameError {}

/// What one call to [`FrameReader::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameEvent {
    /// A header was parsed; its payload follows.
    Header(FrameHeader),
    /// The current frame's payload is complete.
    End,
}

#[derive(Debug, Clone, Copy)]
enum ReadState {
    Header,
    Payload {
        remaining: u64,
        mask: Option<[u8; 4]>,
        /// Position in the masking key of the next payload byte.
        offset: usize,
    },
}

/// An incremental frame reader: feed it bytes as they arrive; it consumes a header once it is
/// whole and then streams the unmasked payload into a buffer of the caller's choice, so a large
/// frame is checked (e.g. for UTF-8) as it arrives and never held twice.
#[derive(Debug, Clone)]
pub struct FrameReader {
    masking: Masking,
    max_frame: u64,
    state: ReadState,
}

impl FrameReader {
    /// A reader enforcing `masking` that rejects payloads above `max_frame` bytes.
    pub fn new(masking: Masking, max_frame: u64) -> FrameReader {
        FrameReader {
            masking,
            max_frame,
            state: ReadState::Header,
        }
    }

    /// True between frames (no header or payload half read).
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, ReadState::Header)
    }

    /// Consumes bytes from the front of `input`. Returns how many were consumed and what
    /// happened: a parsed header (`Header`), the end of the current payload (`End`), or `None`
    /// when all it could use was consumed (payload bytes, unmasked, are appended to `payload`)
    /// and more input is needed. After `Header` the caller may pick a different `payload`
    /// buffer for that frame. A frame with an empty payload yields `End` at once, even for
    /// empty input. Never panics; an error leaves the reader unusable.
    pub fn feed(
        &mut self,
        input: &[u8],
        payload: &mut Vec<u8>,
    ) -> Result<(usize, Option<FrameEvent>), FrameError> {
        match self.state {
            ReadState::Header => match parse_header(input, self.masking, self.max_frame)? {
                None => Ok((0, None)),
                Some((header, len)) => {
                    self.state = ReadState::Payload {
                        remaining: header.payload_len,
                        mask: header.mask,
                        offset: 0,
                    };
                    Ok((len, Some(FrameEvent::Header(header))))
                }
            },
            ReadState::Payload {
                remaining,
                mask,
                offset,
            } => {
                let take = remaining.min(input.len() as u64) as usize;
                let start = payload.len();
                payload.extend_from_slice(&input[..take]);
                if let Some(key) = mask {
                    apply_mask(&mut payload[start..], key, offset);
                }
                let remaining = remaining - take as u64;
                if remaining == 0 {
                    self.state = ReadState::Header;
                    Ok((take, Some(FrameEvent::End)))
                } else {
                    self.state = ReadState::Payload {
                        remaining,
                        mask,
                        offset: (offset + take) % 4,
                    };
                    Ok((take, None))
                }
            }
        }
    }
}

/// Parses a header from the front of `buf`: `None` until the header is whole.
fn parse_header(
    buf: &[u8],
    masking: Masking,
    max_frame: u64,
) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & field::RSV != 0 {
        return Err(FrameError::ReservedBits);
    }
    let opcode = OpCode::from_bits(b0 & field::OPCODE)
        .ok_or(FrameError::ReservedOpcode(b0 & field::OPCODE))?;
    let fin = b0 & field::FIN != 0;
    let masked = b1 & field::MASK != 0;
    if opcode.is_control() && !fin {
        return Err(FrameError::FragmentedControl);
    }
    match (masking, masked) {
        (Masking::Required, false) => return Err(FrameError::Unmasked),
        (Masking::Forbidden, true) => return Err(FrameError::Masked),
        _ => {}
    }
    let len7 = b1 & field::LEN7;
    if opcode.is_control() && len7 > MAX_CONTROL_PAYLOAD as u8 {
        return Err(FrameError::ControlTooLong);
    }
    let mut pos = 2;
    // RFC 6455 §5.2 asks for the minimal length encoding but receivers accept any.
    let payload_len = match len7 {
        field::LEN_16 => {
            let Some(b) = buf.get(2..4) else {
                return Ok(None);
            };
            pos = 4;
            u16::from_be_bytes([b[0], b[1]]) as u64
        }
        field::LEN_64 => {
            let Some(b) = buf.get(2..10) else {
                return Ok(None);
            };
            pos = 10;
            let n = u64::from_be_bytes(b.try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err(FrameError::LengthMsbSet);
            }
            n
        }
        n => n as u64,
    };
    if payload_len > max_frame {
        return Err(FrameError::TooBig);
    }
    let mask = if masked {
        let Some(k) = buf.get(pos..pos + 4) else {
            return Ok(None);
        };
        pos += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    Ok(Some((
        FrameHeader {
            fin,
            opcode,
            mask,
            payload_len,
        },
        pos,
    )))
}

/// XORs `data` with `key` (RFC 6455 §5.3), starting at key position `offset`.
pub fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    // Rotate the key so that data[0] meets key[offset], then work 8 bytes at a time.
    let k = [
        key[offset % 4],
        key[(offset + 1) % 4],
        key[(offset + 2) % 4],
        key[(offset + 3) % 4],
    ];
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes((&*c).try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

/// Appends a whole frame to `out`: the header, then the payload, masked with `mask` if given.
pub fn write_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    FrameHeader {
        fin,
        opcode,
        mask,
        payload_len: payload.len() as u64,
    }
    .emit(out);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
}

/// A whole frame with its payload unmasked (the `Repr` of a frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The final fragment of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key it is (or was) sent with.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// Appends the frame to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        write_frame(out, self.fin, self.opcode, self.mask, &self.payload);
    }

    /// Parses one whole frame from the front of `buf`: `None` until it is all there, else the
    /// frame and the bytes it took.
    pub fn parse(
        buf: &[u8],
        masking: Masking,
        max_frame: u64,
    ) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some((header, hlen)) = parse_header(buf, masking, max_frame)? else {
            return Ok(None);
        };
        let end = hlen as u64 + header.payload_len;
        if (buf.len() as u64) < end {
            return Ok(None);
        }
        let mut payload = buf[hlen..end as usize].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        Ok(Some((
            Frame {
                fin: header.fin,
                opcode: header.opcode,
                mask: header.mask,
                payload,
            },
            end as usize,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NO_LIMIT: u64 = u64::MAX >> 1;

    fn server_read(bytes: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        Frame::parse(bytes, Masking::Required, NO_LIMIT)
    }

    fn client_read(bytes: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        Frame::parse(bytes, Masking::Forbidden, NO_LIMIT)
    }

    #[test]
    fn rfc_6455_section_5_7_examples_parse() {
        // A single-frame unmasked text message "Hello".
        let (f, n) = client_read(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.fin, f.opcode, &f.payload[..], n),
            (true, OpCode::Text, &b"Hello"[..], 7)
        );
        // The same, masked.
        let masked = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (f, _) = server_read(&masked).unwrap().unwrap();
        assert_eq!(f.payload, b"Hello");
        let mut out = Vec::new();
        f.emit(&mut out);
        assert_eq!(out, masked);
        // A 256-byte binary message uses the 16-bit length; 64 KiB the 64-bit one.
        let mut out = Vec::new();
        write_frame(&mut out, true, OpCode::Binary, None, &[0; 256]);
        assert_eq!(&out[..4], &[0x82, 0x7E, 0x01, 0x00]);
        let mut out = Vec::new();
        write_frame(&mut out, true, OpCode::Binary, None, &vec![0; 65536]);
        assert_eq!(&out[..10], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn non_minimal_lengths_are_accepted() {
        // "Hi" with a 16-bit and with a 64-bit length.
        let (f, n) = client_read(&[0x81, 126, 0, 2, b'H', b'i'])
            .unwrap()
            .unwrap();
        assert_eq!((&f.payload[..], n), (&b"Hi"[..], 6));
        let (f, n) = client_read(&[0x81, 127, 0, 0, 0, 0, 0, 0, 0, 2, b'H', b'i'])
            .unwrap()
            .unwrap();
        assert_eq!((&f.payload[..], n), (&b"Hi"[..], 12));
    }

    #[test]
    fn a_64_bit_length_with_the_high_bit_set_is_rejected() {
        let bytes = [0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(client_read(&bytes), Err(FrameError::LengthMsbSet));
        assert_eq!(FrameError::LengthMsbSet.close_code(), 1002);
    }

    #[test]
    fn reserved_bits_and_opcodes_are_rejected_with_1002() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(client_read(&[0x81 | rsv, 0]), Err(FrameError::ReservedBits));
        }
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            let e = client_read(&[0x80 | op, 0]).unwrap_err();
            assert_eq!((e, e.close_code()), (FrameError::ReservedOpcode(op), 1002));
        }
    }

    #[test]
    fn control_frames_must_be_short_and_unfragmented() {
        assert_eq!(client_read(&[0x09, 0]), Err(FrameError::FragmentedControl));
        assert_eq!(
            client_read(&[0x89, 126, 0, 126]),
            Err(FrameError::ControlTooLong)
        );
        assert_eq!(
            client_read(&[0x88, 126, 0, 125]),
            Err(FrameError::ControlTooLong)
        );
        let mut ping = vec![0x89, 125];
        ping.extend([0; 125]);
        assert!(client_read(&ping).unwrap().is_some());
    }

    #[test]
    fn masking_follows_the_side_the_frame_comes_from() {
        assert_eq!(server_read(&[0x81, 0x00]), Err(FrameError::Unmasked));
        assert_eq!(
            client_read(&[0x81, 0x80, 1, 2, 3, 4]),
            Err(FrameError::Masked)
        );
    }

    #[test]
    fn frames_above_the_limit_are_rejected_with_1009_before_the_payload() {
        let e = Frame::parse(&[0x82, 126, 0x10, 0], Masking::Forbidden, 4095).unwrap_err();
        assert_eq!((e, e.close_code()), (FrameError::TooBig, 1009));
    }

    #[test]
    fn the_reader_streams_payload_across_any_split() {
        let mut bytes = Vec::new();
        let key = [9, 8, 7, 6];
        write_frame(&mut bytes, false, OpCode::Text, Some(key), b"hello, world");
        write_frame(&mut bytes, true, OpCode::Continuation, Some(key), b"");
        for step in 1..bytes.len() {
            let mut r = FrameReader::new(Masking::Required, NO_LIMIT);
            let mut out = Vec::new();
            let mut events = Vec::new();
            let mut buf: Vec<u8> = Vec::new();
            for chunk in bytes.chunks(step) {
                buf.extend_from_slice(chunk);
                loop {
                    let (n, ev) = r.feed(&buf, &mut out).unwrap();
                    buf.drain(..n);
                    match ev {
                        Some(e) => events.push(e),
                        None => break,
                    }
                }
            }
            assert_eq!(out, b"hello, world", "step {step}");
            assert_eq!(events.len(), 4);
            assert!(r.at_frame_boundary());
        }
    }

    fn any_opcode() -> impl Strategy<Value = OpCode> {
        prop_oneof![
            Just(OpCode::Continuation),
            Just(OpCode::Text),
            Just(OpCode::Binary),
            Just(OpCode::Close),
            Just(OpCode::Ping),
            Just(OpCode::Pong),
        ]
    }

    fn any_frame() -> impl Strategy<Value = Frame> {
        (
            any_opcode(),
            any::<bool>(),
            proptest::option::of(any::<[u8; 4]>()),
            prop_oneof![0usize..=125, 126usize..70_000],
        )
            .prop_flat_map(|(opcode, fin, mask, len)| {
                let len = if opcode.is_control() {
                    len.min(125)
                } else {
                    len
                };
                let fin = fin || opcode.is_control();
                proptest::collection::vec(any::<u8>(), len).prop_map(move |payload| Frame {
                    fin,
                    opcode,
                    mask,
                    payload,
                })
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn parse_of_emit_is_the_frame(frame in any_frame(), trailing in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut bytes = Vec::new();
            frame.emit(&mut bytes);
            let len = bytes.len();
            bytes.extend(trailing);
            let masking = if frame.mask.is_some() { Masking::Required } else { Masking::Forbidden };
            let (parsed, n) = Frame::parse(&bytes, masking, NO_LIMIT).unwrap().unwrap();
            prop_assert_eq!(n, len);
            prop_assert_eq!(parsed, frame.clone());
            // Any shorter prefix is incomplete, never an error.
            prop_assert_eq!(Frame::parse(&bytes[..len - 1], masking, NO_LIMIT), Ok(None));
        }

        #[test]
        fn the_reader_never_panics_on_arbitrary_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            step in 1usize..20,
            required in any::<bool>(),
        ) {
            let masking = if required { Masking::Required } else { Masking::Forbidden };
            let mut r = FrameReader::new(masking, 1000);
            let mut out = Vec::new();
            let mut buf: Vec<u8> = Vec::new();
            'outer: for chunk in bytes.chunks(step) {
                buf.extend_from_slice(chunk);
                loop {
                    match r.feed(&buf, &mut out) {
                        Err(_) => break 'outer,
                        Ok((n, ev)) => {
                            prop_assert!(n <= buf.len());
                            buf.drain(..n);
                            if ev.is_none() { break; }
                        }
                    }
                }
            }
        }
    }
}
