//! DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): a byte stream cut into fuzzer-chosen
//! pieces goes through the incremental `Deframer` and, whole, through `read_message`; both must
//! yield the same messages, and the deframer holds no more than one partial message after each
//! message has been taken out.
//!
//! Input: a byte n, then the stream; the stream is pushed in pieces whose lengths cycle through
//! the following n bytes (0 meaning 1).
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use netstack_application::dns::tcp::{read_message, write_message, Deframer};
use netstack_fuzz::Script;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let n = usize::from(s.u8().unwrap_or(0) % 16);
    let cuts: Vec<usize> = s.bytes(n).iter().map(|&b| usize::from(b).max(1)).collect();
    let stream = s.rest();

    let mut d = Deframer::default();
    let mut got = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < stream.len() {
        let step = cuts
            .get(i % cuts.len().max(1))
            .copied()
            .unwrap_or(stream.len());
        let end = (at + step).min(stream.len());
        d.push(&stream[at..end]);
        at = end;
        i += 1;
        while let Some(m) = d.next_message() {
            got.push(m);
        }
        assert!(d.pending() < 2 + 65535, "{} bytes held", d.pending());
    }

    let mut r = Cursor::new(stream);
    let mut want = Vec::new();
    let clean_end = loop {
        match read_message(&mut r) {
            Ok(Some(m)) => want.push(m),
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert_eq!(got, want);
    assert_eq!(clean_end, d.pending() == 0);

    // Framing what came out gives back the stream up to the last whole message.
    let mut again = Vec::new();
    for m in &got {
        write_message(&mut again, m).unwrap();
    }
    assert_eq!(&again[..], &stream[..again.len()]);
});
