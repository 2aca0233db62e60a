//! Domain names (RFC 1035 §3.1, §4.1.4): an owned, uncompressed wire form; compression on emit;
//! checked decompression on parse.

use super::WireError;
use core::fmt;
use core::hash::{Hash, Hasher};
use std::collections::HashMap;

/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;
/// RFC 1035 §2.3.4: a name is at most 255 octets in wire form (length octets and the root
/// included).
pub const MAX_NAME_LEN: usize = 255;
/// Compression pointers must point strictly backwards, so a chain ends anyway; this bound only
/// caps the work one hostile name can cause. 127 one-octet labels is the most a valid name has.
const MAX_POINTER_JUMPS: usize = 127;

/// Why a name could not be built from labels or from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// An empty label inside a name (`a..b`).
    EmptyLabel,
    /// A label over 63 octets.
    LabelTooLong,
    /// A name over 255 octets in wire form.
    NameTooLong,
    /// A `\` escape that is not `\X` or `\DDD` with DDD ≤ 255.
    BadEscape,
    /// A relative name where no origin is known.
    RelativeWithoutOrigin,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameError::EmptyLabel => "empty label",
            NameError::LabelTooLong => "label longer than 63 octets",
            NameError::NameTooLong => "name longer than 255 octets",
            NameError::BadEscape => "bad \\ escape",
            NameError::RelativeWithoutOrigin => "relative name and no $ORIGIN",
        })
    }
}

impl std::error::Error for NameError {}

/// A fully qualified domain name. Comparison and hashing ignore ASCII case (RFC 4343); the
/// original case is kept for emitting.
#[derive(Clone)]
pub struct Name {
    /// Invariant: a valid uncompressed label sequence ending in the root label, ≤ 255 octets.
    wire: Vec<u8>,
}

impl Name {
    /// The root name `.`.
    pub fn root() -> Name {
        Name { wire: vec![0] }
    }

    /// Builds a name from its labels, most specific first.
    pub fn from_labels<'a, I: IntoIterator<Item = &'a [u8]>>(labels: I) -> Result<Name, NameError> {
        let mut wire = Vec::new();
        for label in labels {
            push_label(&mut wire, label)?;
        }
        wire.push(0);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// Parses an absolute name in presentation form (`www.example.com`, trailing dot optional,
    /// `.` for the root, RFC 1035 §5.1 escapes).
    pub fn from_ascii(text: &str) -> Result<Name, NameError> {
        Name::from_presentation(text, Some(&Name::root()))
    }

    /// Parses a name in master-file form: `@` is `origin`; a name without a trailing dot is
    /// relative to `origin`.
    pub fn from_presentation(text: &str, origin: Option<&Name>) -> Result<Name, NameError> {
        if text == "@" {
            return origin.cloned().ok_or(NameError::RelativeWithoutOrigin);
        }
        if text == "." {
            return Ok(Name::root());
        }
        let bytes = text.as_bytes();
        let mut labels: Vec<Vec<u8>> = Vec::new();
        let mut label = Vec::new();
        let mut absolute = false;
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => {
                    if label.is_empty() {
                        return Err(NameError::EmptyLabel);
                    }
                    labels.push(core::mem::take(&mut label));
                    absolute = i + 1 == bytes.len();
                    i += 1;
                }
                b'\\' => {
                    let (byte, used) = unescape(&bytes[i + 1..])?;
                    label.push(byte);
                    i += 1 + used;
                }
                b => {
                    label.push(b);
                    i += 1;
                }
            }
        }
        if !label.is_empty() {
            labels.push(label);
        }
        if labels.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        let own = Name::from_labels(labels.iter().map(Vec::as_slice))?;
        if absolute {
            Ok(own)
        } else {
            own.append(origin.ok_or(NameError::RelativeWithoutOrigin)?)
        }
    }

    /// The labels, most specific first, without the root.
    pub fn labels(&self) -> Labels<'_> {
        Labels { wire: &self.wire }
    }

    /// The number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The length in uncompressed wire form.
    pub fn wire_len(&self) -> usize {
        self.wire.len()
    }

    /// The uncompressed wire form.
    pub fn as_wire(&self) -> &[u8] {
        &self.wire
    }

    pub fn is_root(&self) -> bool {
        self.wire.len() == 1
    }

    /// True when `self` equals `zone` or lies below it.
    pub fn is_subdomain_of(&self, zone: &Name) -> bool {
        self.wire.len() >= zone.wire.len()
            && self.suffixes().any(|s| s.eq_ignore_ascii_case(&zone.wire))
    }

    /// The name one label up; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        let first = *self.wire.first()? as usize;
        if first == 0 {
            return None;
        }
        Some(Name {
            wire: self.wire[1 + first..].to_vec(),
        })
    }

    /// `self`'s labels followed by `suffix`'s.
    pub fn append(&self, suffix: &Name) -> Result<Name, NameError> {
        let mut wire = self.wire[..self.wire.len() - 1].to_vec();
        wire.extend_from_slice(&suffix.wire);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// `label` prepended to `self`.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, NameError> {
        let mut wire = Vec::with_capacity(self.wire.len() + 1 + label.len());
        push_label(&mut wire, label)?;
        wire.extend_from_slice(&self.wire);
        if wire.len() > MAX_NAME_LEN {
            return Err(NameError::NameTooLong);
        }
        Ok(Name { wire })
    }

    /// Every suffix of the wire form that starts at a label, from the whole name to the root.
    fn suffixes(&self) -> impl Iterator<Item = &[u8]> {
        let wire = &self.wire[..];
        let mut at = Some(0usize);
        core::iter::from_fn(move || {
            let here = at?;
            let len = wire[here] as usize;
            at = if len == 0 { None } else { Some(here + 1 + len) };
            Some(&wire[here..])
        })
    }

    /// Parses a possibly compressed name starting at `start` in the whole message `msg`.
    /// Returns the name and the offset just after it where it was written (after the first
    /// pointer, if any).
    pub fn parse(msg: &[u8], start: usize) -> Result<(Name, usize), WireError> {
        let mut wire = Vec::with_capacity(32);
        let mut pos = start;
        // The first byte of the run of labels being read: a pointer into [run_start, pos]
        // would read the same bytes again.
        let mut run_start = start;
        let mut end = None;
        let mut jumps = 0;
        loop {
            let len = *msg.get(pos).ok_or(WireError::NameTruncated)?;
            match len & 0xC0 {
                0x00 => {
                    let len = len as usize;
                    if len == 0 {
                        wire.push(0);
                        if wire.len() > MAX_NAME_LEN {
                            return Err(WireError::NameTooLong);
                        }
                        return Ok((Name { wire }, end.unwrap_or(pos + 1)));
                    }
                    let label = msg
                        .get(pos + 1..pos + 1 + len)
                        .ok_or(WireError::NameTruncated)?;
                    // The root octet still has to fit after this label.
                    if wire.len() + 1 + len + 1 > MAX_NAME_LEN {
                        return Err(WireError::NameTooLong);
                    }
                    wire.push(len as u8);
                    wire.extend_from_slice(label);
                    pos += 1 + len;
                }
                0xC0 => {
                    let low = *msg.get(pos + 1).ok_or(WireError::NameTruncated)?;
                    let target = (usize::from(len & 0x3F) << 8) | usize::from(low);
                    // RFC 1035 §4.1.4: a pointer names a prior occurrence of the name.
                    if target >= msg.len() {
                        return Err(WireError::PointerOutsideMessage);
                    }
                    if target >= pos {
                        return Err(WireError::PointerForward);
                    }
                    if target >= run_start {
                        return Err(WireError::PointerLoop);
                    }
                    jumps += 1;
                    if jumps > MAX_POINTER_JUMPS {
                        return Err(WireError::TooManyPointers);
                    }
                    end.get_or_insert(pos + 2);
                    pos = target;
                    run_start = target;
                }
                _ => return Err(WireError::LabelTypeReserved),
            }
        }
    }
}

fn push_label(wire: &mut Vec<u8>, label: &[u8]) -> Result<(), NameError> {
    if label.is_empty() {
        return Err(NameError::EmptyLabel);
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(NameError::LabelTooLong);
    }
    wire.push(label.len() as u8);
    wire.extend_from_slice(label);
    Ok(())
}

/// Decodes the escape after a `\`: `\DDD` (decimal) or `\X`. Returns the byte and how many
/// bytes after the backslash were used.
pub(crate) fn unescape(rest: &[u8]) -> Result<(u8, usize), NameError> {
    match rest {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let value = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
            u8::try_from(value)
                .map(|v| (v, 3))
                .map_err(|_| NameError::BadEscape)
        }
        [d, ..] if d.is_ascii_digit() => Err(NameError::BadEscape),
        [x, ..] => Ok((*x, 1)),
        [] => Err(NameError::BadEscape),
    }
}

/// Iterator over a name's labels.
pub struct Labels<'a> {
    wire: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.first()? as usize;
        if len == 0 {
            return None;
        }
        let label = self.wire.get(1..1 + len)?;
        self.wire = self.wire.get(1 + len..)?;
        Some(label)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        // Length octets are < 64, so ASCII case folding leaves them alone.
        self.wire.eq_ignore_ascii_case(&other.wire)
    }
}

impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in &self.wire {
            state.write_u8(b.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                        write!(f, "\\{}", b as char)?
                    }
                    0x21..=0x7E => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl core::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Name, NameError> {
        Name::from_ascii(s)
    }
}

/// Writes names into a message, compressing against the names already written (RFC 1035
/// §4.1.4). Suffixes are matched byte for byte, so a name keeps its case through a round trip.
#[derive(Default)]
pub(crate) struct NameCompressor {
    offsets: HashMap<Vec<u8>, u16>,
}

impl NameCompressor {
    /// Appends `name` to `buf`. With `compress` false the name is written in full and not
    /// offered as a target (RFC 3597 §4: names in RDATA of types a peer may not know).
    pub(crate) fn emit(&mut self, buf: &mut Vec<u8>, name: &Name, compress: bool) {
        let wire = &name.wire;
        let mut at = 0;
        while wire[at] != 0 {
            let suffix = &wire[at..];
            if compress {
                if let Some(&offset) = self.offsets.get(suffix) {
                    buf.extend_from_slice(&(0xC000 | offset).to_be_bytes());
                    return;
                }
                // Pointers hold 14 bits of offset.
                if let Ok(offset) = u16::try_from(buf.len()) {
                    if offset <= 0x3FFF {
                        self.offsets.insert(suffix.to_vec(), offset);
                    }
                }
            }
            let len = wire[at] as usize;
            buf.extend_from_slice(&wire[at..at + 1 + len]);
            at += 1 + len;
        }
        buf.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn presentation_round_trips_with_escapes() {
        let n = Name::from_labels([&b"a.b"[..], b"c\\d", b"\x00\xff", b"com"]).unwrap();
        let text = n.to_string();
        assert_eq!(text, "a\\.b.c\\\\d.\\000\\255.com.");
        assert_eq!(Name::from_ascii(&text).unwrap().as_wire(), n.as_wire());
    }

    #[test]
    fn comparison_ignores_ascii_case() {
        assert_eq!(name("WWW.Example.COM"), name("www.example.com."));
        assert_ne!(name("www.example.com"), name("ww.example.com"));
        assert_eq!(name("WWW.Example.COM").to_string(), "WWW.Example.COM.");
    }

    #[test]
    fn relative_names_take_the_origin() {
        let origin = name("demo.test");
        assert_eq!(
            Name::from_presentation("www", Some(&origin)).unwrap(),
            name("www.demo.test")
        );
        assert_eq!(Name::from_presentation("@", Some(&origin)).unwrap(), origin);
        assert_eq!(
            Name::from_presentation("x.", Some(&origin)).unwrap(),
            name("x")
        );
        assert_eq!(
            Name::from_presentation("www", None),
            Err(NameError::RelativeWithoutOrigin)
        );
    }

    #[test]
    fn label_of_64_is_rejected_when_building() {
        let long = "a".repeat(64);
        assert_eq!(Name::from_ascii(&long), Err(NameError::LabelTooLong));
        assert!(Name::from_ascii(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn name_over_255_octets_is_rejected_when_building() {
        // 4 labels of 63 plus lengths and root: 4 * 64 + 1 = 257.
        let label = "a".repeat(63);
        let text = [label.as_str(); 4].join(".");
        assert_eq!(Name::from_ascii(&text), Err(NameError::NameTooLong));
        // 3 * 64 + 62 + 1 = 255 fits exactly.
        let text = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        assert_eq!(Name::from_ascii(&text).unwrap().wire_len(), 255);
    }

    #[test]
    fn empty_labels_and_bad_escapes_are_rejected() {
        assert_eq!(Name::from_ascii("a..b"), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_ascii(""), Err(NameError::EmptyLabel));
        assert_eq!(Name::from_ascii("a\\256"), Err(NameError::BadEscape));
        assert_eq!(Name::from_ascii("a\\25"), Err(NameError::BadEscape));
        assert_eq!(Name::from_ascii("a\\"), Err(NameError::BadEscape));
    }

    #[test]
    fn subdomain_and_parent() {
        let n = name("www.demo.test");
        assert!(n.is_subdomain_of(&name("demo.test")));
        assert!(n.is_subdomain_of(&name("DEMO.test")));
        assert!(n.is_subdomain_of(&Name::root()));
        assert!(!n.is_subdomain_of(&name("emo.test")));
        assert!(!name("demo.test").is_subdomain_of(&n));
        assert_eq!(n.parent().unwrap(), name("demo.test"));
        assert_eq!(Name::root().parent(), None);
    }

    /// A 12-byte zero header followed by `body`.
    fn msg(body: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 12];
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn compressed_name_decompresses() {
        // 12: "demo.test."  23: "www" + pointer to 12
        let m = msg(b"\x04demo\x04test\x00\x03www\xc0\x0c");
        let (n, end) = Name::parse(&m, 23).unwrap();
        assert_eq!(n, name("www.demo.test"));
        assert_eq!(end, 29);
    }

    #[test]
    fn pointer_to_itself_is_a_loop() {
        let m = msg(b"\x03www\xc0\x0c");
        assert_eq!(Name::parse(&m, 12), Err(WireError::PointerLoop));
        let m = msg(b"\xc0\x0c");
        assert_eq!(Name::parse(&m, 12), Err(WireError::PointerForward));
    }

    #[test]
    fn two_pointer_cycle_is_rejected() {
        // 12: "a" ptr->17 ; 17: "b" ptr->12: a cycle of two pointers, one of which must point
        // forwards, which the strictly-backwards rule rejects.
        let m = msg(b"\x01a\xc0\x11\x00\x01b\xc0\x0c");
        assert_eq!(Name::parse(&m, 12), Err(WireError::PointerForward));
        assert_eq!(Name::parse(&m, 17), Err(WireError::PointerForward));
    }

    #[test]
    fn forward_pointer_is_rejected() {
        let m = msg(b"\xc0\x0e\x00\x00");
        assert_eq!(Name::parse(&m, 12), Err(WireError::PointerForward));
    }

    #[test]
    fn pointer_outside_message_is_rejected() {
        let m = msg(b"\xc0\xff");
        assert_eq!(Name::parse(&m, 12), Err(WireError::PointerOutsideMessage));
    }

    #[test]
    fn label_prefixes_01_and_10_are_rejected() {
        assert_eq!(
            Name::parse(&msg(b"\x41abc\x00"), 12),
            Err(WireError::LabelTypeReserved)
        );
        assert_eq!(
            Name::parse(&msg(b"\x81abc\x00"), 12),
            Err(WireError::LabelTypeReserved)
        );
    }

    #[test]
    fn label_length_64_on_the_wire_is_rejected() {
        let mut body = vec![64u8];
        body.extend_from_slice(&[b'a'; 64]);
        body.push(0);
        assert_eq!(
            Name::parse(&msg(&body), 12),
            Err(WireError::LabelTypeReserved)
        );
    }

    #[test]
    fn truncated_name_is_rejected() {
        assert_eq!(
            Name::parse(&msg(b"\x03ww"), 12),
            Err(WireError::NameTruncated)
        );
        assert_eq!(
            Name::parse(&msg(b"\x03www"), 12),
            Err(WireError::NameTruncated)
        );
        assert_eq!(
            Name::parse(&msg(b"\xc0"), 12),
            Err(WireError::NameTruncated)
        );
    }

    #[test]
    fn name_over_255_after_decompression_is_rejected() {
        // Five 50-octet labels, each written once and chained with backward pointers: every
        // piece is legal, the whole is 5 * 51 + 1 = 256 octets.
        let mut m = msg(b"");
        let label = [b'x'; 50];
        let mut starts: Vec<usize> = Vec::new();
        for _ in 0..5 {
            let at = m.len();
            m.push(50);
            m.extend_from_slice(&label);
            match starts.last() {
                None => m.push(0),
                Some(&p) => m.extend_from_slice(&(0xC000u16 | p as u16).to_be_bytes()),
            }
            starts.push(at);
        }
        assert_eq!(Name::parse(&m, starts[4]), Err(WireError::NameTooLong));
        // Four pieces (4 * 51 + 1 = 205 octets) are fine.
        assert_eq!(Name::parse(&m, starts[3]).unwrap().0.wire_len(), 205);
    }

    #[test]
    fn compressor_points_at_earlier_suffixes_and_keeps_case() {
        let mut c = NameCompressor::default();
        let mut buf = vec![0u8; 12];
        c.emit(&mut buf, &name("www.Demo.test"), true);
        c.emit(&mut buf, &name("mail.Demo.test"), true);
        c.emit(&mut buf, &name("mail.demo.test"), true);
        assert_eq!(
            &buf[12..],
            b"\x03www\x04Demo\x04test\x00\x04mail\xc0\x10\x04mail\x04demo\xc0\x15"
        );
        let (n, _) = Name::parse(&buf, 27).unwrap();
        assert_eq!(n.to_string(), "mail.Demo.test.");
    }
}
