//! Percent-encoding of URIs (RFC 3986 §2.1) as the router and the static-file handler need it:
//! decoding path segments strictly, normalizing a path for comparison (RFC 3986 §6.2.2), and
//! parsing a query string as `application/x-www-form-urlencoded` pairs (WHATWG URL §5.1: `&`
//! separates pairs, the first `=` separates name and value, `+` is a space).
//!
//! Decoding is strict: a `%` not followed by two hex digits is an error (the router answers
//! 400), never passed through.

use std::fmt;

/// Why a path or query could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentError {
    /// A `%` not followed by two hexadecimal digits (RFC 3986 §2.1), at this byte offset.
    BadEscape(usize),
    /// The decoded bytes of a query name or value are not UTF-8.
    NotUtf8,
}

impl fmt::Display for PercentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PercentError::BadEscape(at) => write!(f, "invalid percent-encoding at byte {at}"),
            PercentError::NotUtf8 => f.write_str("percent-decoded text is not UTF-8"),
        }
    }
}

impl std::error::Error for PercentError {}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by the `%XX` at `at` in `s`, if `s[at]` is `%` followed by two hex digits.
fn escape_at(s: &[u8], at: usize) -> Result<u8, PercentError> {
    match (
        s.get(at + 1).copied().and_then(hex_value),
        s.get(at + 2).copied().and_then(hex_value),
    ) {
        (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
        _ => Err(PercentError::BadEscape(at)),
    }
}

/// RFC 3986 §2.3: the characters that never need encoding.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes every `%XX` in `s` (one path segment, or any text where `+` is literal).
pub(crate) fn decode(s: &str) -> Result<Vec<u8>, PercentError> {
    decode_with(s, false)
}

fn decode_with(s: &str, plus_is_space: bool) -> Result<Vec<u8>, PercentError> {
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                out.push(escape_at(s, i)?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Decodes one name or value of a form-encoded query: `+` is a space, then `%XX` escapes; the
/// result must be UTF-8.
pub(crate) fn decode_form_component(s: &str) -> Result<String, PercentError> {
    String::from_utf8(decode_with(s, true)?).map_err(|_| PercentError::NotUtf8)
}

/// Parses a query string (without the `?`) into (name, value) pairs in order. Empty pairs
/// (`a=1&&b=2`) are skipped; a pair without `=` has an empty value.
pub(crate) fn parse_query(query: &str) -> Result<Vec<(String, String)>, PercentError> {
    let mut pairs = Vec::new();
    let mut offset = 0;
    for part in query.split('&') {
        let base = offset;
        offset += part.len() + 1;
        if part.is_empty() {
            continue;
        }
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        // Errors name the offset in the whole query, not in the pair.
        let shift = |e: PercentError| match e {
            PercentError::BadEscape(at) => PercentError::BadEscape(base + at),
            other => other,
        };
        let name = decode_form_component(name).map_err(shift)?;
        let value = decode_form_component(value).map_err(|e| match e {
            PercentError::BadEscape(at) => PercentError::BadEscape(base + name_len(part) + at),
            other => other,
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// How many bytes of `part` precede its value (the name and the `=`).
fn name_len(part: &str) -> usize {
    part.find('=').map_or(part.len(), |i| i + 1)
}

/// Normalizes a percent-encoded path for comparison (RFC 3986 §6.2.2.1 and §6.2.2.2): escapes
/// of unreserved characters are decoded (`/st%61tic` is `/static`), every other escape is kept
/// with upper-case hex digits (`%2f` becomes `%2F`, still not a separator). Fails on a bad
/// escape.
pub(crate) fn normalize_path(path: &str) -> Result<String, PercentError> {
    let s = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let b = escape_at(s, i)?;
            if is_unreserved(b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
            i += 3;
        } else {
            // Copy the run up to the next escape as it is (it may hold UTF-8 sequences).
            let end = s[i..]
                .iter()
                .position(|&b| b == b'%')
                .map_or(s.len(), |p| i + p);
            out.push_str(&path[i..end]);
            i = end;
        }
    }
    Ok(out)
}

/// Percent-encodes `bytes` for use as one path segment: everything but unreserved characters
/// is escaped, so the result holds no `/`, `?`, `#` or `%` of its own.
pub(crate) fn encode_segment(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_in_either_case_and_plus_stays_literal_in_paths() {
        assert_eq!(decode("a%20b%2fc%2F+").unwrap(), b"a b/c/+");
        assert_eq!(decode("%e2%82%AC").unwrap(), "€".as_bytes());
        assert_eq!(decode("").unwrap(), b"");
    }

    #[test]
    fn a_percent_without_two_hex_digits_is_an_error_with_its_offset() {
        assert_eq!(decode("ab%"), Err(PercentError::BadEscape(2)));
        assert_eq!(decode("ab%4"), Err(PercentError::BadEscape(2)));
        assert_eq!(decode("%zz"), Err(PercentError::BadEscape(0)));
        assert_eq!(decode("%4g"), Err(PercentError::BadEscape(0)));
        // A multi-byte character after `%` is not a hex digit and must not split a char.
        assert_eq!(decode("%é"), Err(PercentError::BadEscape(0)));
    }

    #[test]
    fn query_pairs_are_form_decoded_in_order() {
        let pairs = parse_query("q=a+b%2Bc&empty=&flag&&x=1=2&%C3%A9=%E2%82%AC").unwrap();
        let expect = [
            ("q", "a b+c"),
            ("empty", ""),
            ("flag", ""),
            ("x", "1=2"),
            ("é", "€"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, expect);
        assert_eq!(parse_query("").unwrap(), vec![]);
    }

    #[test]
    fn a_bad_query_escape_names_its_offset_in_the_whole_query() {
        assert_eq!(parse_query("a=1&b%=2"), Err(PercentError::BadEscape(5)));
        assert_eq!(parse_query("a=1&b=%G0"), Err(PercentError::BadEscape(6)));
        assert_eq!(parse_query("a=%ff"), Err(PercentError::NotUtf8));
    }

    #[test]
    fn normalization_decodes_only_unreserved_escapes() {
        // RFC 3986 §6.2.2.2: %61 is `a`; %2e is `.`; %2f stays encoded, in upper case.
        assert_eq!(
            normalize_path("/st%61tic/%2e%2e/a%2fb%5c").unwrap(),
            "/static/../a%2Fb%5C"
        );
        assert_eq!(normalize_path("/caf\u{e9}%20x").unwrap(), "/caf\u{e9}%20x");
        assert_eq!(normalize_path("/a%2"), Err(PercentError::BadEscape(2)));
    }

    #[test]
    fn encoded_segments_hold_no_separator() {
        assert_eq!(
            encode_segment(b"a b/c?d#e%f~g.h"),
            "a%20b%2Fc%3Fd%23e%25f~g.h"
        );
        assert_eq!(
            decode(&encode_segment("été&<>".as_bytes())).unwrap(),
            "été&<>".as_bytes()
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_any_text_never_panics_and_normalizing_is_idempotent(s in ".{0,40}") {
            let _ = decode(&s);
            let _ = parse_query(&s);
            if let Ok(n) = normalize_path(&s) {
                proptest::prop_assert_eq!(normalize_path(&n).unwrap(), n.clone());
                // Normalizing never changes what the path decodes to.
                proptest::prop_assert_eq!(decode(&n).unwrap(), decode(&s).unwrap());
            }
        }

        #[test]
        fn an_encoded_segment_decodes_to_its_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let enc = encode_segment(&bytes);
            proptest::prop_assert!(!enc.contains('/'));
            proptest::prop_assert_eq!(decode(&enc).unwrap(), bytes);
        }
    }
}
