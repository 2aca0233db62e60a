//! Whole DNS messages (RFC 1035 §4.1) with EDNS0 (RFC 6891).

use super::header::{Header, HeaderRepr, HEADER_LEN};
use super::name::{Name, NameCompressor};
use super::rdata::RData;
use super::{read_u16, read_u32, Class, Rcode, RecordType, WireError};
use core::fmt;

/// A question (RFC 1035 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub name: Name,
    pub qtype: RecordType,
    pub qclass: Class,
}

impl Question {
    pub fn new(name: Name, qtype: RecordType) -> Question {
        Question {
            name,
            qtype,
            qclass: Class::IN,
        }
    }
}

/// A resource record (RFC 1035 §4.1.3). The type comes from the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    pub name: Name,
    pub class: Class,
    pub ttl: u32,
    pub data: RData,
}

impl Record {
    pub fn new(name: Name, ttl: u32, data: RData) -> Record {
        Record {
            name,
            class: Class::IN,
            ttl,
            data,
        }
    }
    pub fn rtype(&self) -> RecordType {
        self.data.rtype()
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\t{}\t{}\t{}\t{}",
            self.name,
            self.ttl,
            self.class,
            self.rtype(),
            self.data
        )
    }
}

/// One EDNS option (RFC 6891 §6.1.2), kept raw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EdnsOption {
    pub code: u16,
    pub data: Vec<u8>,
}

/// The OPT pseudo-record's meaning (RFC 6891 §6.1.2–6.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Edns {
    /// The largest UDP payload the sender can reassemble (the OPT CLASS field).
    pub udp_payload_size: u16,
    /// The upper 8 bits of the 12-bit response code.
    pub ext_rcode: u8,
    pub version: u8,
    /// DNSSEC OK (RFC 3225).
    pub dnssec_ok: bool,
    /// The other 15 flag bits; must be zero, kept so a round trip is exact.
    pub z: u16,
    pub options: Vec<EdnsOption>,
}

impl Edns {
    pub fn new(udp_payload_size: u16) -> Edns {
        Edns {
            udp_payload_size,
            ext_rcode: 0,
            version: 0,
            dnssec_ok: false,
            z: 0,
            options: vec![],
        }
    }
}

/// Why a message could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// A TXT character-string over 255 octets.
    TxtStringTooLong,
    /// RDATA over 65,535 octets.
    RdataTooLong,
    /// An EDNS option over 65,535 octets.
    EdnsOptionTooLong,
    /// More than 65,535 entries in one section.
    TooManyRecords,
    /// An extended response code (above 15) without EDNS to carry it.
    ExtendedRcodeWithoutEdns,
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for EmitError {}

/// A parsed or to-be-sent DNS message. The OPT record, if any, lives in `edns` rather than in
/// `additionals`, and is written last.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub header: HeaderRepr,
    pub questions: Vec<Question>,
    pub answers: Vec<Record>,
    pub authorities: Vec<Record>,
    pub additionals: Vec<Record>,
    pub edns: Option<Edns>,
}

impl Message {
    /// A recursion-desired query for one question.
    pub fn query(id: u16, question: Question) -> Message {
        Message {
            header: HeaderRepr {
                id,
                rd: true,
                ..HeaderRepr::default()
            },
            questions: vec![question],
            ..Message::default()
        }
    }

    /// The full 12-bit response code (RFC 6891 §6.1.3).
    pub fn rcode(&self) -> Rcode {
        let high = self.edns.as_ref().map_or(0, |e| u16::from(e.ext_rcode));
        Rcode((high << 4) | self.header.rcode.0)
    }

    /// Sets the response code, splitting it between the header and EDNS.
    pub fn set_rcode(&mut self, rcode: Rcode) {
        self.header.rcode = Rcode(rcode.0 & 0xF);
        if let Some(e) = &mut self.edns {
            e.ext_rcode = (rcode.0 >> 4) as u8;
        }
    }

    /// Parses a whole message, checking every count, length and pointer.
    pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
        let view = Header::new_checked(bytes)?;
        let mut msg = Message {
            header: HeaderRepr::parse(&view),
            ..Message::default()
        };
        let mut pos = HEADER_LEN;
        // Counts are untrusted: nothing is preallocated from them.
        for _ in 0..view.qdcount() {
            if pos >= bytes.len() {
                return Err(WireError::CountsPastEnd);
            }
            let (name, after) = Name::parse(bytes, pos)?;
            let qtype = read_u16(bytes, after).ok_or(WireError::QuestionTruncated)?;
            let qclass = read_u16(bytes, after + 2).ok_or(WireError::QuestionTruncated)?;
            msg.questions.push(Question {
                name,
                qtype: RecordType(qtype),
                qclass: Class(qclass),
            });
            pos = after + 4;
        }
        let sections = [
            (view.ancount(), 0),
            (view.nscount(), 1),
            (view.arcount(), 2),
        ];
        for (count, section) in sections {
            for _ in 0..count {
                if pos >= bytes.len() {
                    return Err(WireError::CountsPastEnd);
                }
                let (entry, after) = parse_record(bytes, pos)?;
                pos = after;
                match (entry, section) {
                    (Entry::Record(r), 0) => msg.answers.push(r),
                    (Entry::Record(r), 1) => msg.authorities.push(r),
                    (Entry::Record(r), _) => msg.additionals.push(r),
                    (Entry::Opt(e), 2) => {
                        if msg.edns.is_some() {
                            return Err(WireError::MultipleOpt);
                        }
                        msg.edns = Some(e);
                    }
                    (Entry::Opt(_), _) => return Err(WireError::OptOutsideAdditional),
                }
            }
        }
        if pos != bytes.len() {
            return Err(WireError::TrailingBytes);
        }
        Ok(msg)
    }

    /// Writes the message with name compression.
    pub fn emit(&self) -> Result<Vec<u8>, EmitError> {
        if self.header.rcode.0 > 0xF && self.edns.is_none() {
            return Err(EmitError::ExtendedRcodeWithoutEdns);
        }
        let count = |n: usize| u16::try_from(n).map_err(|_| EmitError::TooManyRecords);
        let arcount = count(self.additionals.len() + usize::from(self.edns.is_some()))?;
        let mut buf = vec![0u8; HEADER_LEN];
        // The buffer is a header long, so the view always exists.
        if let Ok(mut h) = Header::new_checked(&mut buf[..]) {
            self.header.emit(&mut h);
            h.set_counts(
                count(self.questions.len())?,
                count(self.answers.len())?,
                count(self.authorities.len())?,
                arcount,
            );
        }
        let mut names = NameCompressor::default();
        for q in &self.questions {
            names.emit(&mut buf, &q.name, true);
            buf.extend_from_slice(&q.qtype.0.to_be_bytes());
            buf.extend_from_slice(&q.qclass.0.to_be_bytes());
        }
        for r in self
            .answers
            .iter()
            .chain(&self.authorities)
            .chain(&self.additionals)
        {
            names.emit(&mut buf, &r.name, true);
            buf.extend_from_slice(&r.rtype().0.to_be_bytes());
            buf.extend_from_slice(&r.class.0.to_be_bytes());
            buf.extend_from_slice(&r.ttl.to_be_bytes());
            with_rdlength(&mut buf, EmitError::RdataTooLong, |buf| {
                r.data.emit(buf, &mut names)
            })?;
        }
        if let Some(e) = &self.edns {
            emit_opt(&mut buf, e)?;
        }
        Ok(buf)
    }

    /// Writes the message so that it fits in `limit` octets. RFC 2181 §9: additional records
    /// that do not fit are dropped without setting TC; when the answer and authority sections
    /// do not fit, they are dropped too and TC is set, so the client retries over TCP. The
    /// question and the OPT record always stay.
    pub fn emit_limited(&self, limit: usize) -> Result<Vec<u8>, EmitError> {
        let full = self.emit()?;
        if full.len() <= limit {
            return Ok(full);
        }
        let mut smaller = self.clone();
        smaller.additionals.clear();
        let without_additional = smaller.emit()?;
        if without_additional.len() <= limit {
            return Ok(without_additional);
        }
        smaller.answers.clear();
        smaller.authorities.clear();
        smaller.header.tc = true;
        smaller.emit()
    }
}

/// dig's layout: a header line, the flags and counts, then each section, records in
/// master-file form (what `nsdig` prints).
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.header;
        writeln!(
            f,
            ";; ->>HEADER<<- opcode: {}, status: {}, id: {}",
            h.opcode,
            self.rcode(),
            h.id
        )?;
        let flags: Vec<&str> = [
            (h.qr, "qr"),
            (h.aa, "aa"),
            (h.tc, "tc"),
            (h.rd, "rd"),
            (h.ra, "ra"),
            (h.ad, "ad"),
            (h.cd, "cd"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect();
        writeln!(
            f,
            ";; flags: {}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
            flags.join(" "),
            self.questions.len(),
            self.answers.len(),
            self.authorities.len(),
            self.additionals.len() + usize::from(self.edns.is_some())
        )?;
        if let Some(e) = &self.edns {
            writeln!(
                f,
                "\n;; OPT PSEUDOSECTION:\n; EDNS: version: {}, udp: {}",
                e.version, e.udp_payload_size
            )?;
        }
        writeln!(f, "\n;; QUESTION SECTION:")?;
        for q in &self.questions {
            writeln!(f, ";{}\t\t{}\t{}", q.name, q.qclass, q.qtype)?;
        }
        for (title, records) in [
            ("ANSWER", &self.answers),
            ("AUTHORITY", &self.authorities),
            ("ADDITIONAL", &self.additionals),
        ] {
            if !records.is_empty() {
                writeln!(f, "\n;; {title} SECTION:")?;
                for r in records {
                    writeln!(f, "{r}")?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a 2-byte length, runs `body`, then patches the length in.
fn with_rdlength(
    buf: &mut Vec<u8>,
    too_long: EmitError,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EmitError>,
) -> Result<(), EmitError> {
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    body(buf)?;
    let len = u16::try_from(buf.len() - at - 2).map_err(|_| too_long)?;
    buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn emit_opt(buf: &mut Vec<u8>, e: &Edns) -> Result<(), EmitError> {
    // RFC 6891 §6.1.2: root owner, CLASS = payload size, TTL = ext-rcode, version, DO, Z.
    buf.push(0);
    buf.extend_from_slice(&RecordType::OPT.0.to_be_bytes());
    buf.extend_from_slice(&e.udp_payload_size.to_be_bytes());
    let flags = (u16::from(e.dnssec_ok) << 15) | (e.z & 0x7FFF);
    buf.extend_from_slice(&[e.ext_rcode, e.version]);
    buf.extend_from_slice(&flags.to_be_bytes());
    with_rdlength(buf, EmitError::RdataTooLong, |buf| {
        for o in &e.options {
            buf.extend_from_slice(&o.code.to_be_bytes());
            let len = u16::try_from(o.data.len()).map_err(|_| EmitError::EdnsOptionTooLong)?;
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&o.data);
        }
        Ok(())
    })
}

enum Entry {
    Record(Record),
    Opt(Edns),
}

fn parse_record(bytes: &[u8], pos: usize) -> Result<(Entry, usize), WireError> {
    let (name, at) = Name::parse(bytes, pos)?;
    let fixed = |off: usize| read_u16(bytes, at + off).ok_or(WireError::RecordTruncated);
    let rtype = RecordType(fixed(0)?);
    let class = fixed(2)?;
    let ttl = read_u32(bytes, at + 4).ok_or(WireError::RecordTruncated)?;
    let rdlength = usize::from(fixed(8)?);
    let start = at + 10;
    let end = start + rdlength;
    if end > bytes.len() {
        return Err(WireError::RdataTruncated);
    }
    if rtype == RecordType::OPT {
        if !name.is_root() {
            return Err(WireError::OptNameNotRoot);
        }
        let [ext_rcode, version, f0, f1] = ttl.to_be_bytes();
        let flags = u16::from_be_bytes([f0, f1]);
        let mut options = Vec::new();
        let mut at = start;
        while at < end {
            let code = read_u16(bytes, at).filter(|_| at + 4 <= end);
            let len = read_u16(bytes, at + 2).filter(|_| at + 4 <= end);
            let (Some(code), Some(len)) = (code, len) else {
                return Err(WireError::EdnsOptionTruncated);
            };
            let data_end = at + 4 + usize::from(len);
            if data_end > end {
                return Err(WireError::EdnsOptionTruncated);
            }
            options.push(EdnsOption {
                code,
                data: bytes[at + 4..data_end].to_vec(),
            });
            at = data_end;
        }
        let edns = Edns {
            udp_payload_size: class,
            ext_rcode,
            version,
            dnssec_ok: flags & 0x8000 != 0,
            z: flags & 0x7FFF,
            options,
        };
        return Ok((Entry::Opt(edns), end));
    }
    let data = RData::parse(rtype, bytes, start, rdlength)?;
    Ok((
        Entry::Record(Record {
            name,
            class: Class(class),
            ttl,
            data,
        }),
        end,
    ))
}

#[cfg(test)]
mod tests;
