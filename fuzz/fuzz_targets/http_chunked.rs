//! The chunked transfer-coding decoder (RFC 9112 §7.1): the same body, the same consumed count
//! and the same verdict whether the input comes whole or in fuzzer-chosen pieces; a decoder
//! that is not done consumed everything it was given; the body never exceeds the limit; what
//! `encode_chunked` writes decodes back.
//!
//! Input: a byte n, n piece lengths, then the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::http::body::{encode_chunked, ChunkedDecoder};
use netstack_application::http::request::{Limits, ParseError};
use netstack_fuzz::Script;

fn decode_in_pieces(
    input: &[u8],
    cuts: &[usize],
    limits: &Limits,
) -> Result<(Vec<u8>, usize, bool), ParseError> {
    let mut d = ChunkedDecoder::new(limits);
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    loop {
        let step = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(input.len())
            .max(1);
        let end = (at + step).min(input.len());
        let (used, done) = d.decode(&input[at..end], &mut out)?;
        assert!(used <= end - at);
        assert!(out.len() as u64 <= limits.max_body);
        if !done {
            assert_eq!(used, end - at, "a decoder not done left input unconsumed");
        }
        at += used;
        i += 1;
        if done {
            assert!(d.is_done());
            return Ok((out, at, true));
        }
        if end == input.len() {
            return Ok((out, at, false));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let n = usize::from(s.u8().unwrap_or(0) % 8);
    let cuts: Vec<usize> = s.bytes(n).iter().map(|&b| usize::from(b)).collect();
    let input = s.rest();
    let limits = Limits {
        max_body: 4096,
        ..Limits::default()
    };
    let whole = decode_in_pieces(input, &[], &limits);
    let pieces = decode_in_pieces(input, &cuts, &limits);
    match (&whole, &pieces) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} but in pieces {pieces:?}"),
    }
    let body = &input[..input.len().min(4096)];
    let mut enc = Vec::new();
    encode_chunked(body, &mut enc);
    let (out, used, done) = decode_in_pieces(&enc, &cuts, &limits).expect("what we encode decodes");
    assert!(done);
    assert_eq!(used, enc.len());
    assert_eq!(out, body);
});
