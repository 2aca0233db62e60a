//! Typed RDATA (RFC 1035 §3.3, RFC 3596 §2.2, RFC 2782) and raw RDATA for every other type
//! (RFC 3597).

use super::name::{Name, NameCompressor};
use super::{read_u16, read_u32, RecordType, WireError};
use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The SOA fields (RFC 1035 §3.3.13).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Soa {
    /// The primary name server.
    pub mname: Name,
    /// The mailbox of the person responsible, as a name.
    pub rname: Name,
    pub serial: u32,
    pub refresh: u32,
    pub retry: u32,
    pub expire: u32,
    /// RFC 2308 §4: the TTL of negative answers.
    pub minimum: u32,
}

/// A record's data, typed for the types this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(Name),
    Ns(Name),
    Ptr(Name),
    Mx {
        preference: u16,
        exchange: Name,
    },
    /// One or more character-strings of at most 255 octets each.
    Txt(Vec<Vec<u8>>),
    Soa(Soa),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    /// Any other type, kept as opaque bytes (RFC 3597 §3). Never a type listed above or OPT.
    Unknown {
        rtype: RecordType,
        data: Vec<u8>,
    },
}

impl RData {
    pub fn rtype(&self) -> RecordType {
        match self {
            RData::A(_) => RecordType::A,
            RData::Aaaa(_) => RecordType::AAAA,
            RData::Cname(_) => RecordType::CNAME,
            RData::Ns(_) => RecordType::NS,
            RData::Ptr(_) => RecordType::PTR,
            RData::Mx { .. } => RecordType::MX,
            RData::Txt(_) => RecordType::TXT,
            RData::Soa(_) => RecordType::SOA,
            RData::Srv { .. } => RecordType::SRV,
            RData::Unknown { rtype, .. } => *rtype,
        }
    }

    /// Parses the RDATA of type `rtype` that occupies `msg[start..start + len]`; names inside
    /// may point back into the rest of the message.
    pub fn parse(
        rtype: RecordType,
        msg: &[u8],
        start: usize,
        len: usize,
    ) -> Result<RData, WireError> {
        let end = start.checked_add(len).ok_or(WireError::RdataTruncated)?;
        let data = msg.get(start..end).ok_or(WireError::RdataTruncated)?;
        // A name (and what follows it) must end exactly at RDLENGTH.
        let name_at = |at: usize| -> Result<(Name, usize), WireError> {
            if at >= end {
                return Err(WireError::RdataLengthMismatch);
            }
            Name::parse(msg, at)
        };
        let exact = |at: usize| {
            if at == end {
                Ok(())
            } else {
                Err(WireError::RdataLengthMismatch)
            }
        };
        let fixed = |n: usize| {
            if len == n {
                Ok(())
            } else {
                Err(WireError::RdataLengthMismatch)
            }
        };
        Ok(match rtype {
            RecordType::A => {
                fixed(4)?;
                RData::A(Ipv4Addr::new(data[0], data[1], data[2], data[3]))
            }
            RecordType::AAAA => {
                fixed(16)?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                RData::Aaaa(Ipv6Addr::from(octets))
            }
            RecordType::CNAME | RecordType::NS | RecordType::PTR => {
                let (name, after) = name_at(start)?;
                exact(after)?;
                match rtype {
                    RecordType::CNAME => RData::Cname(name),
                    RecordType::NS => RData::Ns(name),
                    _ => RData::Ptr(name),
                }
            }
            RecordType::MX => {
                let preference = read_u16(data, 0).ok_or(WireError::RdataLengthMismatch)?;
                let (exchange, after) = name_at(start + 2)?;
                exact(after)?;
                RData::Mx {
                    preference,
                    exchange,
                }
            }
            RecordType::SRV => {
                let field = |at| read_u16(data, at).ok_or(WireError::RdataLengthMismatch);
                let (priority, weight, port) = (field(0)?, field(2)?, field(4)?);
                let (target, after) = name_at(start + 6)?;
                exact(after)?;
                RData::Srv {
                    priority,
                    weight,
                    port,
                    target,
                }
            }
            RecordType::SOA => {
                let (mname, after) = name_at(start)?;
                let (rname, after) = name_at(after)?;
                let field = |i: usize| {
                    read_u32(msg, after + 4 * i)
                        .filter(|_| after + 4 * i + 4 <= end)
                        .ok_or(WireError::RdataLengthMismatch)
                };
                let soa = Soa {
                    mname,
                    rname,
                    serial: field(0)?,
                    refresh: field(1)?,
                    retry: field(2)?,
                    expire: field(3)?,
                    minimum: field(4)?,
                };
                exact(after + 20)?;
                RData::Soa(soa)
            }
            RecordType::TXT => {
                let mut strings = Vec::new();
                let mut at = 0;
                while at < data.len() {
                    let n = data[at] as usize;
                    let s = data
                        .get(at + 1..at + 1 + n)
                        .ok_or(WireError::TxtStringTruncated)?;
                    strings.push(s.to_vec());
                    at += 1 + n;
                }
                RData::Txt(strings)
            }
            _ => RData::Unknown {
                rtype,
                data: data.to_vec(),
            },
        })
    }

    /// Appends the RDATA (without RDLENGTH). Names are compressed only in the RFC 1035 types
    /// (RFC 3597 §4); SRV targets are written in full (RFC 2782).
    pub(crate) fn emit(
        &self,
        buf: &mut Vec<u8>,
        names: &mut NameCompressor,
    ) -> Result<(), super::EmitError> {
        match self {
            RData::A(a) => buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => buf.extend_from_slice(&a.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => names.emit(buf, n, true),
            RData::Mx {
                preference,
                exchange,
            } => {
                buf.extend_from_slice(&preference.to_be_bytes());
                names.emit(buf, exchange, true);
            }
            RData::Txt(strings) => {
                for s in strings {
                    let n =
                        u8::try_from(s.len()).map_err(|_| super::EmitError::TxtStringTooLong)?;
                    buf.push(n);
                    buf.extend_from_slice(s);
                }
            }
            RData::Soa(soa) => {
                names.emit(buf, &soa.mname, true);
                names.emit(buf, &soa.rname, true);
                for v in [soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum] {
                    buf.extend_from_slice(&v.to_be_bytes());
                }
            }
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                for v in [priority, weight, port] {
                    buf.extend_from_slice(&v.to_be_bytes());
                }
                names.emit(buf, target, false);
            }
            RData::Unknown { data, .. } => buf.extend_from_slice(data),
        }
        Ok(())
    }

    /// The domain name this data points at, for additional-section processing and CNAME
    /// chasing.
    pub fn target(&self) -> Option<&Name> {
        match self {
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => Some(n),
            RData::Mx { exchange, .. } => Some(exchange),
            RData::Srv { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// Presentation form, as in a master file or dig's output.
impl fmt::Display for RData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RData::A(a) => write!(f, "{a}"),
            RData::Aaaa(a) => write!(f, "{a}"),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => write!(f, "{n}"),
            RData::Mx {
                preference,
                exchange,
            } => write!(f, "{preference} {exchange}"),
            RData::Txt(strings) => {
                for (i, s) in strings.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    f.write_str("\"")?;
                    for &b in s {
                        match b {
                            b'"' | b'\\' => write!(f, "\\{}", b as char)?,
                            0x20..=0x7E => write!(f, "{}", b as char)?,
                            _ => write!(f, "\\{b:03}")?,
                        }
                    }
                    f.write_str("\"")?;
                }
                Ok(())
            }
            RData::Soa(s) => write!(
                f,
                "{} {} {} {} {} {} {}",
                s.mname, s.rname, s.serial, s.refresh, s.retry, s.expire, s.minimum
            ),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                write!(f, "{priority} {weight} {port} {target}")
            }
            // RFC 3597 §5.
            RData::Unknown { data, .. } => {
                write!(f, "\\# {}", data.len())?;
                if !data.is_empty() {
                    f.write_str(" ")?;
                    for b in data {
                        write!(f, "{b:02x}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(rtype: RecordType, rdata: &[u8]) -> Result<RData, WireError> {
        let mut msg = vec![0u8; 12];
        msg.extend_from_slice(rdata);
        RData::parse(rtype, &msg, 12, rdata.len())
    }

    #[test]
    fn fixed_size_types_need_their_exact_length() {
        assert_eq!(
            parse(RecordType::A, &[192, 0, 2, 1]),
            Ok(RData::A(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            parse(RecordType::A, &[192, 0, 2]),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::A, &[192, 0, 2, 1, 0]),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::AAAA, &[0; 15]),
            Err(WireError::RdataLengthMismatch)
        );
        assert!(parse(RecordType::AAAA, &[0; 16]).is_ok());
    }

    #[test]
    fn name_rdata_must_end_at_rdlength() {
        assert_eq!(
            parse(RecordType::CNAME, b"\x01a\x00"),
            Ok(RData::Cname("a".parse().unwrap()))
        );
        assert_eq!(
            parse(RecordType::CNAME, b"\x01a\x00\x00"),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::NS, b""),
            Err(WireError::RdataLengthMismatch)
        );
        // The name runs on past RDLENGTH into the next bytes of the message.
        let msg = b"\0\0\0\0\0\0\0\0\0\0\0\0\x01a\x00";
        assert_eq!(
            RData::parse(RecordType::PTR, msg, 12, 2),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::MX, b"\x00"),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::MX, b"\x00\x0a"),
            Err(WireError::RdataLengthMismatch)
        );
        assert_eq!(
            parse(RecordType::SRV, b"\x00\x01\x00\x02\x00"),
            Err(WireError::RdataLengthMismatch)
        );
    }

    #[test]
    fn soa_needs_two_names_and_twenty_octets() {
        let mut rdata = b"\x02ns\x00\x04host\x00".to_vec();
        rdata.extend_from_slice(&[0; 19]);
        assert_eq!(
            parse(RecordType::SOA, &rdata),
            Err(WireError::RdataLengthMismatch)
        );
        rdata.push(7);
        let RData::Soa(soa) = parse(RecordType::SOA, &rdata).unwrap() else {
            panic!()
        };
        assert_eq!(soa.minimum, 7);
        rdata.push(0);
        assert_eq!(
            parse(RecordType::SOA, &rdata),
            Err(WireError::RdataLengthMismatch)
        );
    }

    #[test]
    fn txt_string_past_rdlength_is_rejected() {
        assert_eq!(
            parse(RecordType::TXT, b"\x03ab"),
            Err(WireError::TxtStringTruncated)
        );
        assert_eq!(
            parse(RecordType::TXT, b"\x02ab\x00"),
            Ok(RData::Txt(vec![b"ab".to_vec(), vec![]]))
        );
    }

    #[test]
    fn rdata_past_the_message_is_truncated() {
        let msg = [0u8; 14];
        assert_eq!(
            RData::parse(RecordType::A, &msg, 12, 4),
            Err(WireError::RdataTruncated)
        );
    }

    #[test]
    fn unknown_types_are_kept_raw() {
        assert_eq!(
            parse(RecordType(65280), b"\x01\x02"),
            Ok(RData::Unknown {
                rtype: RecordType(65280),
                data: vec![1, 2]
            })
        );
        let data = RData::Unknown {
            rtype: RecordType(65280),
            data: vec![1, 0xab],
        };
        assert_eq!(data.to_string(), "\\# 2 01ab");
    }
}
