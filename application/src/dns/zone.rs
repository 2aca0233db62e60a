//! Zones and the master-file format (RFC 1035 §5.1): `$ORIGIN`, `$TTL` (RFC 2308 §4), `@`,
//! relative names, a blank owner repeating the previous one, parentheses, comments, quoted
//! strings, `\X` and `\DDD` escapes, and the RFC 3597 §5 generic `\# len hex` RDATA.

use super::name::{unescape, Name, NameError};
use super::rdata::{RData, Soa};
use super::{Class, Record, RecordType};
use core::fmt;
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// What is wrong with a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneErrorKind {
    /// The file could not be read.
    Io(String),
    /// A `"` without its closing `"` on the same line.
    UnterminatedQuote,
    /// A `)` without `(`, or a `(` still open at the end of the file.
    UnbalancedParenthesis,
    BadName(NameError),
    UnknownDirective(String),
    /// `$INCLUDE` is not supported: a zone is one file.
    IncludeNotSupported,
    UnknownType(String),
    /// Only class IN is served.
    ClassNotSupported(String),
    /// Not a TTL: digits with optional s/m/h/d/w units, at most 2^31 - 1 (RFC 2181 §8).
    BadTtl(String),
    /// A record without a TTL before any `$TTL` or explicit TTL.
    MissingTtl,
    /// A record line starts with blanks but there is no previous owner to repeat.
    MissingOwner,
    /// A record without a type.
    MissingType,
    /// RDATA that does not fit its type.
    BadRdata {
        rtype: RecordType,
        reason: String,
    },
    /// No SOA record at all.
    NoSoa,
    /// A second SOA record.
    MultipleSoa,
    /// A record whose owner is outside the zone's origin.
    OutOfZone(Name),
    /// RFC 1034 §3.6.2: a name with a CNAME has no other data.
    CnameAndOtherData(Name),
}

impl fmt::Display for ZoneErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZoneErrorKind::Io(e) => write!(f, "cannot read: {e}"),
            ZoneErrorKind::UnterminatedQuote => f.write_str("unterminated quoted string"),
            ZoneErrorKind::UnbalancedParenthesis => f.write_str("unbalanced parenthesis"),
            ZoneErrorKind::BadName(e) => write!(f, "bad name: {e}"),
            ZoneErrorKind::UnknownDirective(d) => write!(f, "unknown directive {d}"),
            ZoneErrorKind::IncludeNotSupported => f.write_str("$INCLUDE is not supported"),
            ZoneErrorKind::UnknownType(t) => write!(f, "unknown record type {t:?}"),
            ZoneErrorKind::ClassNotSupported(c) => write!(f, "class {c} not supported, only IN"),
            ZoneErrorKind::BadTtl(t) => write!(f, "bad TTL {t:?}"),
            ZoneErrorKind::MissingTtl => f.write_str("no TTL given and no $TTL before"),
            ZoneErrorKind::MissingOwner => f.write_str("no owner name to repeat"),
            ZoneErrorKind::MissingType => f.write_str("record has no type"),
            ZoneErrorKind::BadRdata { rtype, reason } => write!(f, "bad {rtype} data: {reason}"),
            ZoneErrorKind::NoSoa => f.write_str("zone has no SOA record"),
            ZoneErrorKind::MultipleSoa => f.write_str("second SOA record"),
            ZoneErrorKind::OutOfZone(n) => write!(f, "{n} is outside the zone"),
            ZoneErrorKind::CnameAndOtherData(n) => {
                write!(f, "{n} has a CNAME and other data (RFC 1034 §3.6.2)")
            }
        }
    }
}

/// A zone error with the file and line it comes from (line 0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError {
    pub file: String,
    pub line: usize,
    pub kind: ZoneErrorKind,
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.kind)
    }
}

impl std::error::Error for ZoneError {}

/// An authoritative zone: the records at and below its origin.
#[derive(Debug, Clone)]
pub struct Zone {
    origin: Name,
    soa: Record,
    nodes: HashMap<Name, Vec<Record>>,
    /// Every owner and every name between an owner and the origin: a name here exists (RFC
    /// 8020: an empty non-terminal is NODATA, not NXDOMAIN).
    existing: HashSet<Name>,
}

impl Zone {
    /// Builds a zone from records, each with the line it came from (for errors; 0 if none).
    /// The origin is the owner of the one SOA record.
    fn build(records: Vec<(Record, usize)>) -> Result<Zone, (usize, ZoneErrorKind)> {
        let mut soas = records.iter().filter(|(r, _)| r.rtype() == RecordType::SOA);
        let (soa, _) = soas.next().ok_or((0, ZoneErrorKind::NoSoa))?.clone();
        if let Some((_, line)) = soas.next() {
            return Err((*line, ZoneErrorKind::MultipleSoa));
        }
        let origin = soa.name.clone();
        let mut nodes: HashMap<Name, Vec<Record>> = HashMap::new();
        let mut existing = HashSet::new();
        for (record, line) in records {
            if !record.name.is_subdomain_of(&origin) {
                return Err((line, ZoneErrorKind::OutOfZone(record.name)));
            }
            let node = nodes.entry(record.name.clone()).or_default();
            // Master files often repeat a record; an RRset is a set (RFC 2181 §5).
            if node.iter().any(|r| r.data == record.data) {
                continue;
            }
            let is_cname = record.rtype() == RecordType::CNAME;
            if node
                .iter()
                .any(|r| r.rtype() == RecordType::CNAME || is_cname)
            {
                return Err((line, ZoneErrorKind::CnameAndOtherData(record.name)));
            }
            node.push(record.clone());
            let mut name = Some(record.name);
            while let Some(n) = name.filter(|n| n.is_subdomain_of(&origin)) {
                name = n.parent();
                if !existing.insert(n) {
                    break;
                }
            }
        }
        Ok(Zone {
            origin,
            soa,
            nodes,
            existing,
        })
    }

    /// Builds a zone from records; the origin is the owner of the one SOA record.
    pub fn from_records(records: Vec<Record>) -> Result<Zone, ZoneErrorKind> {
        Zone::build(records.into_iter().map(|r| (r, 0)).collect()).map_err(|(_, kind)| kind)
    }

    /// Reads a master file. `origin` is the initial `$ORIGIN` (BIND's zone name), if any.
    pub fn load(path: &Path, origin: Option<&Name>) -> Result<Zone, ZoneError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ZoneError {
            file: file.clone(),
            line: 0,
            kind: ZoneErrorKind::Io(e.to_string()),
        })?;
        Zone::parse_master(&text, &file, origin)
    }

    /// Parses master-file text; `file` names it in errors.
    pub fn parse_master(text: &str, file: &str, origin: Option<&Name>) -> Result<Zone, ZoneError> {
        let error = |line, kind| ZoneError {
            file: file.to_string(),
            line,
            kind,
        };
        let records = parse_records(text, origin.cloned()).map_err(|(l, k)| error(l, k))?;
        let last_line = text.lines().count();
        Zone::build(records)
            .map_err(|(line, kind)| error(if line == 0 { last_line } else { line }, kind))
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The SOA record at the apex.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The records owned by `name` (empty if none).
    pub fn records_at(&self, name: &Name) -> &[Record] {
        self.nodes.get(name).map_or(&[], Vec::as_slice)
    }

    /// True when `name` owns records or has descendants in the zone.
    pub fn name_exists(&self, name: &Name) -> bool {
        self.existing.contains(name)
    }

    /// Every record, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.nodes.values().flatten()
    }
}

/// The built-in `demo.test` zone: the apex and `ns` answer with the stack's own address,
/// `www` is a CNAME to the apex, plus MX, TXT, SOA, NS, and an AAAA from the documentation
/// prefix (RFC 3849) so AAAA queries have something to find.
pub fn demo_zone(addr: Ipv4Addr) -> Zone {
    let text = format!(
        "$ORIGIN demo.test.\n\
         $TTL 300\n\
         @       IN SOA ns hostmaster ( 2026112501 3600 600 86400 60 )\n\
         @       IN NS   ns\n\
         @       IN A    {addr}\n\
         @       IN AAAA 2001:db8::2\n\
         @       IN MX   10 mail\n\
         @       IN TXT  \"netstack demo zone\"\n\
         ns      IN A    {addr}\n\
         mail    IN A    {addr}\n\
         www     IN CNAME @\n"
    );
    match Zone::parse_master(&text, "<demo.test>", None) {
        Ok(zone) => zone,
        // The text above is fixed apart from an address; a test parses it.
        Err(e) => unreachable!("built-in zone: {e}"),
    }
}

// ---- tokenizer --------------------------------------------------------------------------

#[derive(Debug)]
struct Token {
    /// The raw text, escapes kept (quoted: without the quotes).
    text: String,
    quoted: bool,
    line: usize,
}

/// One logical entry: a line, or several joined by parentheses.
struct Entry {
    line: usize,
    /// Starts with a blank: the owner is the previous one (RFC 1035 §5.1).
    blank_owner: bool,
    tokens: Vec<Token>,
}

fn tokenize(text: &str) -> Result<Vec<Entry>, (usize, ZoneErrorKind)> {
    let mut entries = Vec::new();
    let mut depth = 0usize;
    let mut open_line = 0;
    let mut current: Option<Entry> = None;
    for (index, line_text) in text.lines().enumerate() {
        let line = index + 1;
        let chars: Vec<char> = line_text.chars().collect();
        if depth == 0 {
            let blank_owner = chars.first().is_some_and(|c| *c == ' ' || *c == '\t');
            current = Some(Entry {
                line,
                blank_owner,
                tokens: Vec::new(),
            });
        }
        let entry = current.get_or_insert_with(|| Entry {
            line,
            blank_owner: false,
            tokens: Vec::new(),
        });
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                ' ' | '\t' | '\r' => i += 1,
                ';' => break,
                '(' => {
                    if depth == 0 {
                        open_line = line;
                    }
                    depth += 1;
                    i += 1;
                }
                ')' => {
                    depth = depth
                        .checked_sub(1)
                        .ok_or((line, ZoneErrorKind::UnbalancedParenthesis))?;
                    i += 1;
                }
                '"' => {
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err((line, ZoneErrorKind::UnterminatedQuote)),
                            Some('"') => break,
                            // Escapes stay as written; TXT unescapes them later.
                            Some(&c) => i = push_escaped(&mut s, &chars, i, c),
                        }
                    }
                    i += 1;
                    entry.tokens.push(Token {
                        text: s,
                        quoted: true,
                        line,
                    });
                }
                _ => {
                    let mut s = String::new();
                    while let Some(&c) = chars.get(i) {
                        if matches!(c, ' ' | '\t' | '\r' | ';' | '(' | ')' | '"') {
                            break;
                        }
                        i = push_escaped(&mut s, &chars, i, c);
                    }
                    entry.tokens.push(Token {
                        text: s,
                        quoted: false,
                        line,
                    });
                }
            }
        }
        if depth == 0 {
            if let Some(e) = current.take().filter(|e| !e.tokens.is_empty()) {
                entries.push(e);
            }
        }
    }
    if depth != 0 {
        return Err((open_line, ZoneErrorKind::UnbalancedParenthesis));
    }
    Ok(entries)
}

/// Appends `c` (at `chars[i]`) and, when it is a backslash, the character it escapes, so a
/// quote, blank or `;` after a backslash stays part of the token. Returns the next index.
fn push_escaped(s: &mut String, chars: &[char], i: usize, c: char) -> usize {
    s.push(c);
    match (c, chars.get(i + 1)) {
        ('\\', Some(&next)) => {
            s.push(next);
            i + 2
        }
        _ => i + 1,
    }
}

// ---- records ----------------------------------------------------------------------------

/// TTLs with BIND's units (`1h30m`); RFC 2181 §8 caps them at 2^31 - 1.
fn parse_ttl(text: &str) -> Option<u32> {
    if text.is_empty() || !text.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(
                number
                    .unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total = total.checked_add(number.take()?.checked_mul(unit)?)?;
    }
    total = total.checked_add(number.unwrap_or(0))?;
    u32::try_from(total).ok().filter(|t| *t <= i32::MAX as u32)
}

fn parse_records(
    text: &str,
    mut origin: Option<Name>,
) -> Result<Vec<(Record, usize)>, (usize, ZoneErrorKind)> {
    let mut records = Vec::new();
    let mut default_ttl: Option<u32> = None;
    let mut last_ttl: Option<u32> = None;
    let mut last_owner: Option<Name> = None;
    for entry in tokenize(text)? {
        let line = entry.line;
        let name = |t: &Token, origin: &Option<Name>| {
            Name::from_presentation(&t.text, origin.as_ref())
                .map_err(|e| (t.line, ZoneErrorKind::BadName(e)))
        };
        let first = &entry.tokens[0];
        if !entry.blank_owner && first.text.starts_with('$') && !first.quoted {
            let arg = entry.tokens.get(1);
            match first.text.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let arg = arg.ok_or((line, ZoneErrorKind::BadName(NameError::EmptyLabel)))?;
                    origin = Some(name(arg, &origin)?);
                }
                "$TTL" => {
                    let arg = arg.ok_or((line, ZoneErrorKind::BadTtl(String::new())))?;
                    default_ttl = Some(
                        parse_ttl(&arg.text)
                            .ok_or((arg.line, ZoneErrorKind::BadTtl(arg.text.clone())))?,
                    );
                }
                "$INCLUDE" => return Err((line, ZoneErrorKind::IncludeNotSupported)),
                other => return Err((line, ZoneErrorKind::UnknownDirective(other.to_string()))),
            }
            if let Some(extra) = entry.tokens.get(2) {
                return Err((
                    extra.line,
                    ZoneErrorKind::UnknownDirective(extra.text.clone()),
                ));
            }
            continue;
        }
        let mut tokens = entry.tokens.iter().peekable();
        let owner = if entry.blank_owner {
            last_owner
                .clone()
                .ok_or((line, ZoneErrorKind::MissingOwner))?
        } else {
            let t = tokens.next().ok_or((line, ZoneErrorKind::MissingType))?;
            name(t, &origin)?
        };
        // RFC 1035 §5.1: [<TTL>] [<class>] or [<class>] [<TTL>] before the type.
        let mut ttl = None;
        let mut class = None;
        let rtype = loop {
            let t = tokens.next().ok_or((line, ZoneErrorKind::MissingType))?;
            if ttl.is_none() && t.text.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                ttl = Some(
                    parse_ttl(&t.text).ok_or((t.line, ZoneErrorKind::BadTtl(t.text.clone())))?,
                );
            } else if let (None, Some(c)) = (class, Class::from_mnemonic(&t.text)) {
                if c != Class::IN {
                    return Err((t.line, ZoneErrorKind::ClassNotSupported(t.text.clone())));
                }
                class = Some(c);
            } else {
                break RecordType::from_mnemonic(&t.text)
                    .ok_or((t.line, ZoneErrorKind::UnknownType(t.text.clone())))?;
            }
        };
        // RFC 2308 §4: $TTL is the default; before it, the last explicit TTL (RFC 1035 §5.1).
        let ttl = ttl
            .or(default_ttl)
            .or(last_ttl)
            .ok_or((line, ZoneErrorKind::MissingTtl))?;
        if default_ttl.is_none() {
            last_ttl = Some(ttl);
        }
        let rdata_tokens: Vec<&Token> = tokens.collect();
        let data = parse_rdata(rtype, &rdata_tokens, &origin).map_err(|(l, reason)| {
            (l.unwrap_or(line), ZoneErrorKind::BadRdata { rtype, reason })
        })?;
        last_owner = Some(owner.clone());
        records.push((Record::new(owner, ttl, data), line));
    }
    Ok(records)
}

type RdataError = (Option<usize>, String);

fn parse_rdata(
    rtype: RecordType,
    tokens: &[&Token],
    origin: &Option<Name>,
) -> Result<RData, RdataError> {
    let mut at = 0;
    let mut next = |what: &str| -> Result<&Token, RdataError> {
        let t = tokens.get(at).ok_or((None, format!("missing {what}")))?;
        at += 1;
        Ok(t)
    };
    let data = match rtype {
        RecordType::A => RData::A(parse_with(
            next("address")?,
            |s| s.parse::<Ipv4Addr>().ok(),
            "IPv4 address",
        )?),
        RecordType::AAAA => RData::Aaaa(parse_with(
            next("address")?,
            |s| s.parse::<Ipv6Addr>().ok(),
            "IPv6 address",
        )?),
        RecordType::CNAME => RData::Cname(rdata_name(next("name")?, origin)?),
        RecordType::NS => RData::Ns(rdata_name(next("name")?, origin)?),
        RecordType::PTR => RData::Ptr(rdata_name(next("name")?, origin)?),
        RecordType::MX => RData::Mx {
            preference: parse_with(next("preference")?, |s| s.parse().ok(), "16-bit preference")?,
            exchange: rdata_name(next("exchange")?, origin)?,
        },
        RecordType::SRV => {
            let mut number = |what| parse_with(next(what)?, |s| s.parse().ok(), "16-bit number");
            let (priority, weight, port) =
                (number("priority")?, number("weight")?, number("port")?);
            RData::Srv {
                priority,
                weight,
                port,
                target: rdata_name(next("target")?, origin)?,
            }
        }
        RecordType::SOA => {
            let mname = rdata_name(next("MNAME")?, origin)?;
            let rname = rdata_name(next("RNAME")?, origin)?;
            let serial = parse_with(next("serial")?, |s| s.parse().ok(), "32-bit serial")?;
            let mut time = |what| parse_with(next(what)?, parse_ttl, "time value");
            let (refresh, retry, expire, minimum) = (
                time("refresh")?,
                time("retry")?,
                time("expire")?,
                time("minimum")?,
            );
            RData::Soa(Soa {
                mname,
                rname,
                serial,
                refresh,
                retry,
                expire,
                minimum,
            })
        }
        RecordType::TXT => {
            if tokens.is_empty() {
                return Err((None, "missing character-string".into()));
            }
            at = tokens.len();
            let strings = tokens
                .iter()
                .map(|t| {
                    let bytes = unescape_text(&t.text)
                        .ok_or((Some(t.line), "bad \\ escape".to_string()))?;
                    if bytes.len() > 255 {
                        return Err((Some(t.line), "character-string over 255 octets".to_string()));
                    }
                    Ok(bytes)
                })
                .collect::<Result<_, _>>()?;
            RData::Txt(strings)
        }
        RecordType::OPT | RecordType::ANY | RecordType::AXFR | RecordType::IXFR => {
            return Err((None, "not a type a zone holds".into()));
        }
        _ => {
            // RFC 3597 §5: \# <length> <hex>...
            if next("\\#")?.text != "\\#" {
                return Err((None, "unknown type needs \\# generic data".into()));
            }
            let len: usize = parse_with(next("length")?, |s| s.parse().ok(), "length")?;
            let hex: String = tokens[at..].iter().map(|t| t.text.as_str()).collect();
            at = tokens.len();
            let data = decode_hex(&hex).ok_or((None, "bad hex".to_string()))?;
            if data.len() != len {
                return Err((
                    None,
                    format!("{} octets of data, length says {len}", data.len()),
                ));
            }
            RData::Unknown { rtype, data }
        }
    };
    if let Some(extra) = tokens.get(at) {
        return Err((Some(extra.line), format!("unexpected {:?}", extra.text)));
    }
    Ok(data)
}

fn parse_with<T>(
    t: &Token,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<T, RdataError> {
    parse(&t.text).ok_or((Some(t.line), format!("{:?} is not a {what}", t.text)))
}

fn rdata_name(t: &Token, origin: &Option<Name>) -> Result<Name, RdataError> {
    Name::from_presentation(&t.text, origin.as_ref())
        .map_err(|e| (Some(t.line), format!("{:?}: {e}", t.text)))
}

fn unescape_text(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let (b, used) = unescape(&bytes[i + 1..]).ok()?;
            out.push(b);
            i += 1 + used;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
