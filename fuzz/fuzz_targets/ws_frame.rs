//! The WebSocket frame reader (RFC 6455 §5): the incremental `FrameReader` fed in
//! fuzzer-chosen pieces agrees with the whole-frame parser on every frame, header and unmasked
//! payload; what parses emits and parses back the same; nothing over the size limit is read.
//!
//! Input: one byte (bit 0: server side, frames must be masked; bits 1..: piece length), then the
//! byte stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::ws::frame::{Frame, FrameEvent, FrameReader, Masking};
use netstack_fuzz::Script;

const MAX_FRAME: u64 = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let flags = s.u8().unwrap_or(0);
    let masking = if flags & 1 == 1 {
        Masking::Required
    } else {
        Masking::Forbidden
    };
    let piece = usize::from(flags >> 1).max(1);
    let stream = s.rest();

    // Whole-frame parsing, frame after frame.
    let mut frames = Vec::new();
    let mut at = 0;
    let whole_err = loop {
        match Frame::parse(&stream[at..], masking, MAX_FRAME) {
            Ok(Some((f, used))) => {
                assert!(used > 0 && f.payload.len() as u64 <= MAX_FRAME);
                let mut out = Vec::new();
                f.emit(&mut out);
                assert_eq!(
                    Frame::parse(&out, masking, MAX_FRAME),
                    Ok(Some((f.clone(), out.len())))
                );
                frames.push(f);
                at += used;
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };

    // The incremental reader over pieces of the same stream.
    let mut r = FrameReader::new(masking, MAX_FRAME);
    let mut got = Vec::new();
    let mut current: Option<Frame> = None;
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut reader_err = None;
    'outer: while pos < stream.len() {
        let end = (pos + piece).min(stream.len());
        buf.extend_from_slice(&stream[pos..end]);
        pos = end;
        loop {
            let mut payload = current
                .as_ref()
                .map(|f| f.payload.clone())
                .unwrap_or_default();
            match r.feed(&buf, &mut payload) {
                Ok((used, event)) => {
                    buf.drain(..used);
                    if let Some(f) = current.as_mut() {
                        f.payload = payload;
                    }
                    match event {
                        Some(FrameEvent::Header(h)) => {
                            current = Some(Frame {
                                fin: h.fin,
                                opcode: h.opcode,
                                mask: h.mask,
                                payload: Vec::new(),
                            });
                        }
                        Some(FrameEvent::End) => {
                            got.push(current.take().expect("a header came first"))
                        }
                        None if used == 0 => break,
                        None => {}
                    }
                }
                Err(e) => {
                    reader_err = Some(e);
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(got, frames[..got.len()]);
    if let Some(e) = reader_err {
        assert_eq!(Some(e), whole_err);
        assert_eq!(got.len(), frames.len());
    } else {
        assert_eq!(got.len(), frames.len());
    }
});
