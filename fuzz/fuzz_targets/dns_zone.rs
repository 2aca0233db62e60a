//! The master-file (zone) parser, RFC 1035 §5, over any text including non-ASCII: no panic;
//! a zone that loads has an SOA at its origin, every record inside the origin, and every
//! record emits and parses back in a message.
//!
//! Input: one byte (bit 0: an origin is given), then the text (invalid UTF-8 is replaced, so
//! non-ASCII characters reach the parser either way).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_application::dns::{Message, Name, Zone};
use netstack_fuzz::Script;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let flags = s.u8().unwrap_or(0);
    let text = String::from_utf8_lossy(s.rest());
    let origin: Name = "example.test".parse().unwrap();
    let origin = (flags & 1 == 1).then_some(&origin);
    let Ok(zone) = Zone::parse_master(&text, "fuzz.zone", origin) else {
        return;
    };
    assert_eq!(&zone.soa().name, zone.origin());
    let mut m = Message::default();
    for r in zone.records() {
        assert!(
            r.name.is_subdomain_of(zone.origin()),
            "{} outside {}",
            r.name,
            zone.origin()
        );
        let _ = r.to_string();
        m.answers.push(r.clone());
        if m.answers.len() == 8 {
            break;
        }
    }
    if let Ok(bytes) = m.emit() {
        assert_eq!(Message::parse(&bytes).expect("we parse what we emit"), m);
    }
});
