//! Message bodies on the wire (RFC 9112 §6, §7): how a body is delimited, a sans-IO decoder for
//! the chunked transfer coding (extensions and trailer fields read and dropped), and a chunked
//! encoder.

use std::io::{self, Write};

use super::request::{is_tchar, parse_field_line, Limits, ParseError};
use super::Headers;

/// How a message body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// The chunked transfer coding (RFC 9112 §7.1).
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}

/// The longest chunk-size line (size, extensions) this decoder accepts.
pub const MAX_CHUNK_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of the chunk size; `digits` so far.
    Size { digits: usize },
    /// Past the size: optional BWS and extensions until CR.
    Ext,
    /// Saw the CR ending the size line; LF next.
    SizeLf,
    /// Reading chunk data; this many bytes left.
    Data(u64),
    /// After the data: CR next.
    DataCr,
    /// After the data's CR: LF next.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// Saw the CR ending a trailer line; LF next.
    TrailerLf,
    /// Saw the CR of the final empty line; LF next.
    FinalLf,
    /// The body is complete.
    Done,
}

/// Decodes a chunked body (RFC 9112 §7.1) fed in pieces of any size. Chunk extensions are
/// checked for their characters and dropped (§7.1.1); trailer fields are checked with the
/// field-line grammar and dropped (§7.1.2). Bounded: the size line by [`MAX_CHUNK_LINE`], the
/// body by [`Limits::max_body`], the trailer section by [`Limits::max_head`] and
/// [`Limits::max_fields`].
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    trailer_line: Vec<u8>,
    trailer_bytes: usize,
    trailer_fields: usize,
    body_len: u64,
    limits: Limits,
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body, bounded by `limits`.
    pub fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_line: Vec::new(),
            trailer_bytes: 0,
            trailer_fields: 0,
            body_len: 0,
            limits: *limits,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, appending the data to `out`. Returns how many bytes of `input`
    /// it consumed and whether the body is complete (then the bytes past it belong to the next
    /// message and are not consumed).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(usize, bool), ParseError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            match self.state {
                State::Size { digits } => {
                    if let Some(d) = hex(b) {
                        // RFC 9112 §7.1: chunk-size is 1*HEXDIG; reject what overflows.
                        self.size = self
                            .size
                            .checked_mul(16)
                            .and_then(|s| s.checked_add(u64::from(d)))
                            .ok_or(ParseError::InvalidChunk)?;
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ParseError::InvalidChunk);
                    } else if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if b == b';' || b == b' ' || b == b'\t' {
                        self.state = State::Ext;
                    } else {
                        return Err(ParseError::InvalidChunk);
                    }
                    self.count_line()?;
                    i += 1;
                }
                State::Ext => {
                    // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ),
                    // value a token or quoted-string. Checked loosely for its characters (no
                    // controls, so no bare CR or LF), then dropped.
                    if b == b'\r' {
                        self.state = State::SizeLf;
                    } else if !(is_tchar(b) || b"; \t=\"\\".contains(&b) || is_qdtext(b)) {
                        return Err(ParseError::InvalidChunk);
                    }
                    self.count_line()?;
                    i += 1;
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ParseError::InvalidChunk);
                    }
                    i += 1;
                    self.line_len = 0;
                    if self.size == 0 {
                        self.state = State::TrailerStart;
                    } else {
                        self.body_len = self
                            .body_len
                            .checked_add(self.size)
                            .ok_or(ParseError::BodyTooLarge)?;
                        if self.body_len > self.limits.max_body {
                            return Err(ParseError::BodyTooLarge);
                        }
                        self.state = State::Data(self.size);
                        self.size = 0;
                    }
                }
                State::Data(left) => {
                    let n = (left.min((input.len() - i) as u64)) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.state = if left - n as u64 == 0 {
                        State::DataCr
                    } else {
                        State::Data(left - n as u64)
                    };
                }
                State::DataCr => {
                    // RFC 9112 §7.1: chunk-data is followed by CRLF.
                    if b != b'\r' {
                        return Err(ParseError::InvalidChunk);
                    }
                    self.state = State::DataLf;
                    i += 1;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ParseError::InvalidChunk);
                    }
                    self.state = State::Size { digits: 0 };
                    i += 1;
                }
                State::TrailerStart => {
                    if b == b'\r' {
                        self.state = State::FinalLf;
                    } else {
                        self.trailer_line.clear();
                        self.trailer_line.push(b);
                        self.state = State::Trailer;
                    }
                    self.count_trailer()?;
                    i += 1;
                }
                State::Trailer => {
                    if b == b'\r' {
                        self.state = State::TrailerLf;
                    } else if b == b'\n' {
                        return Err(ParseError::InvalidChunk);
                    } else {
                        self.trailer_line.push(b);
                    }
                    self.count_trailer()?;
                    i += 1;
                }
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ParseError::InvalidChunk);
                    }
                    // RFC 9112 §7.1.2: trailer fields have the field-line grammar; we check and
                    // drop them (none of them may frame or route the message).
                    let mut dropped = Headers::new();
                    parse_field_line(&self.trailer_line, &mut dropped)
                        .map_err(|_| ParseError::InvalidChunk)?;
                    self.trailer_fields += 1;
                    if self.trailer_fields > self.limits.max_fields {
                        return Err(ParseError::TooManyFields);
                    }
                    self.state = State::TrailerStart;
                    i += 1;
                }
                State::FinalLf => {
                    if b != b'\n' {
                        return Err(ParseError::InvalidChunk);
                    }
                    self.state = State::Done;
                    i += 1;
                }
                State::Done => unreachable!("the loop stops at Done"),
            }
        }
        Ok((i, self.state == State::Done))
    }

    fn count_line(&mut self) -> Result<(), ParseError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(ParseError::InvalidChunk);
        }
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), ParseError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.limits.max_head {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// qdtext and obs-text of a quoted-string (RFC 9110 §5.6.4), minus what tchar covers.
fn is_qdtext(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b) || b >= 0x80
}

/// Writes a body in the chunked transfer coding (RFC 9112 §7.1): each `write` is one chunk,
/// `finish` writes the last chunk and an empty trailer section.
pub struct ChunkedEncoder<W: Write> {
    inner: W,
}

impl<W: Write> ChunkedEncoder<W> {
    /// An encoder writing to `inner`.
    pub fn new(inner: W) -> ChunkedEncoder<W> {
        ChunkedEncoder { inner }
    }

    /// Writes the last chunk (`0\r\n\r\n`) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(b"0\r\n\r\n")?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkedEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            // An empty chunk would be the last chunk: write nothing.
            return Ok(0);
        }
        let mut chunk = Vec::with_capacity(buf.len() + 20);
        chunk.extend_from_slice(format!("{:x}\r\n", buf.len()).as_bytes());
        chunk.extend_from_slice(buf);
        chunk.extend_from_slice(b"\r\n");
        self.inner.write_all(&chunk)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encodes `data` as one chunk followed by the last chunk (for tests and small bodies).
pub fn encode_chunked(data: &[u8], out: &mut Vec<u8>) {
    if !data.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
}
