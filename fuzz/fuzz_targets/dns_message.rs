//! The DNS message parser: no panic on any input; what parses emits (with compression) and
//! parses back to the same message; the emitted form is no larger than a name-per-record
//! upper bound; truncation to 512 bytes yields a parseable message; presentation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::dns::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else { return };
    let _ = m.to_string();
    let Ok(bytes) = m.emit() else { return };
    let back = Message::parse(&bytes).expect("we parse what we emit");
    assert_eq!(back, m);
    if let Ok(limited) = m.emit_limited(512) {
        assert!(limited.len() <= 512 || bytes.len() == limited.len());
        Message::parse(&limited).expect("we parse what we truncate");
    }
});
