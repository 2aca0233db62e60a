//! An incremental UTF-8 validator (RFC 3629) for text messages that arrive in pieces: it keeps
//! the bytes of a code point cut by a frame or read boundary and reports invalid input as soon
//! as the bytes seen so far can no longer begin valid UTF-8 (RFC 6455 §8.1: fail fast).

/// Validates a byte sequence fed in pieces of any size.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// The leading bytes of a code point not yet complete (at most 3).
    pending: [u8; 4],
    pending_len: usize,
}

/// The bytes seen so far are not the prefix of any valid UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

/// The length of the code point a lead byte starts, for the lead bytes valid UTF-8 allows.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 1,
    }
}

impl Utf8Validator {
    /// A validator at the start of a text.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Forgets everything fed so far (a new message starts).
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Checks the next piece of the text. Fails as soon as the text seen so far cannot be
    /// completed into valid UTF-8; a code point cut at the end of `bytes` is kept for the next
    /// piece.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            // Complete the cut code point first, with as many bytes as it still needs.
            let need = sequence_len(self.pending[0]) - self.pending_len;
            let take = need.min(bytes.len());
            let mut joined = self.pending;
            joined[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            let joined_len = self.pending_len + take;
            match std::str::from_utf8(&joined[..joined_len]) {
                Ok(_) => self.pending_len = 0,
                // `error_len() == None`: a valid prefix that the input merely cut short.
                Err(e) if e.error_len().is_none() => {
                    self.pending = joined;
                    self.pending_len = joined_len;
                    return Ok(());
                }
                Err(_) => return Err(InvalidUtf8),
            }
            bytes = &bytes[take..];
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &bytes[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }

    /// True when the text fed so far ends at a code point boundary (the text is complete and
    /// valid, given that every `feed` succeeded).
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed_all(pieces: &[&[u8]]) -> Result<bool, InvalidUtf8> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        Ok(v.is_complete())
    }

    #[test]
    fn a_code_point_split_at_every_byte_is_valid() {
        let text = "κόσμε €𝄞".as_bytes();
        for i in 0..=text.len() {
            for j in i..=text.len() {
                assert_eq!(
                    feed_all(&[&text[..i], &text[i..j], &text[j..]]),
                    Ok(true),
                    "{i} {j}"
                );
            }
        }
    }

    #[test]
    fn an_unfinished_code_point_at_the_end_is_incomplete_not_invalid() {
        assert_eq!(feed_all(&[b"a\xF0\x9D"]), Ok(false));
        assert_eq!(feed_all(&[b"a\xF0", b"\x9D\x84"]), Ok(false));
    }

    #[test]
    fn invalid_bytes_fail_as_soon_as_they_arrive() {
        // Overlong, surrogate and beyond-U+10FFFF sequences fail on the byte that rules them out,
        // even when the code point is cut across pieces.
        let mut v = Utf8Validator::new();
        v.feed(b"ok\xED").unwrap();
        assert_eq!(v.feed(b"\xA0"), Err(InvalidUtf8)); // U+D800..: a surrogate

        let mut v = Utf8Validator::new();
        v.feed(b"\xF4").unwrap();
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8)); // above U+10FFFF

        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xC0"), Err(InvalidUtf8)); // overlong lead
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xF5"), Err(InvalidUtf8));
        let mut v = Utf8Validator::new();
        v.feed(b"\xE2\x82").unwrap();
        assert_eq!(v.feed(b"a"), Err(InvalidUtf8)); // cut short by an ASCII byte
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\x80"), Err(InvalidUtf8)); // stray continuation byte
    }

    proptest! {
        #[test]
        fn pieces_agree_with_std_on_any_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..64, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort();
            let mut v = Utf8Validator::new();
            let mut start = 0;
            let mut ok = true;
            for c in cuts.into_iter().chain([bytes.len()]) {
                if v.feed(&bytes[start..c]).is_err() {
                    ok = false;
                    // Fail fast: the prefix seen so far is not a valid prefix for std either.
                    let e = std::str::from_utf8(&bytes[..c]).unwrap_err();
                    prop_assert!(e.error_len().is_some());
                    break;
                }
                start = c;
            }
            if ok {
                prop_assert_eq!(v.is_complete(), std::str::from_utf8(&bytes).is_ok());
            }
        }
    }
}
