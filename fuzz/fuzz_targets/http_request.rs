//! The HTTP/1.1 request parser (RFC 9112) with default limits: no panic; a request that parses
//! took no more bytes than it was given; one without Transfer-Encoding emits and parses back to
//! the same request, and parsing is the same whether the bytes come whole or cut at a
//! fuzzer-chosen point (a prefix never parses as complete with a different result).
//!
//! Input: one byte (where to cut, as a fraction of the length), then the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::http::request::{emit_request, parse_request, Limits};
use netstack_fuzz::Script;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let cut = usize::from(s.u8().unwrap_or(0));
    let buf = s.rest();
    let limits = Limits::default();
    let whole = parse_request(buf, &limits);
    let at = buf.len() * cut / 256;
    if let Ok(Some((ref req, used))) = whole {
        assert!(used <= buf.len());
        // A prefix that already holds the whole request parses to the same request.
        if at >= used {
            assert_eq!(parse_request(&buf[..at], &limits), whole);
        }
        if !req.headers.contains("transfer-encoding") {
            let mut out = Vec::new();
            emit_request(req, &mut out);
            match parse_request(&out, &limits) {
                Ok(Some((again, n))) => {
                    assert_eq!(n, out.len());
                    assert_eq!(&again, req);
                }
                other => panic!("re-emitted request does not parse: {other:?}"),
            }
        }
    }
});
