//! The resolver's response handling: one lookup at a time, fed fuzzer-chosen responses over
//! UDP and TCP, time steps and TCP failures. The harness copies the outstanding query's ID
//! (and, when asked, its question) into each response so the fuzzer gets past the ID check to
//! the answer logic (CNAME chains, negative answers, truncation and the TCP retry, caching).
//!
//! Ops (byte mod 6): 0 start a lookup (1 byte: name and type); 1 a UDP response (1 byte of
//! patch flags, chunk; flag bit 2 sends it from another address); 2 a TCP answer (flags,
//! chunk); 3 time passes (1 byte); 4 the TCP retry fails (1 byte kind); 5 poll.
//! Invariants: the lookup always ends (Done) once time passes its deadlines, a query it sends
//! parses and asks its question, the cache stays within its capacity.
#![no_main]

use std::io;
use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use netstack_application::dns::{
    Lookup, Message, Name, RecordType, Resolver, ResolverConfig, Step,
};
use netstack_fuzz::{Clock, Script};

const NAMES: [&str; 4] = ["www.example.test", "example.test", "a.b.example.test", "."];
const TYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::TXT,
];

/// Copies `query`'s ID, and with `flags & 2` its question section, into `response`.
fn patch(response: &[u8], query: &[u8], flags: u8) -> Vec<u8> {
    let mut r = response.to_vec();
    if flags & 1 == 0 && r.len() >= 2 && query.len() >= 2 {
        r[..2].copy_from_slice(&query[..2]);
    }
    if flags & 2 != 0 && r.len() >= 12 && query.len() >= 12 {
        if let Ok(q) = Message::parse(query) {
            if let Ok(mut m) = Message::parse(&r) {
                m.questions = q.questions;
                if let Ok(b) = m.emit() {
                    r = b;
                }
            }
        }
    }
    r
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let server: SocketAddr = "192.0.2.1:53".parse().unwrap();
    let other: SocketAddr = "192.0.2.9:53".parse().unwrap();
    let mut config = ResolverConfig::new(vec![server]);
    config.cache_bytes = 4096;
    let mut resolver = Resolver::new(config, 1);
    let mut clock = Clock::new();
    let mut lookup: Option<Lookup> = None;
    let mut udp_query: Vec<u8> = Vec::new();
    let mut tcp_query: Vec<u8> = Vec::new();
    while let Some(op) = s.u8() {
        match op % 6 {
            0 if lookup.is_none() => {
                let pick = s.u8().unwrap_or(0);
                let name: Name = NAMES[usize::from(pick & 3)].parse().unwrap();
                let qtype = TYPES[usize::from(pick >> 2 & 3)];
                lookup = Some(resolver.lookup(name, qtype));
            }
            1 => {
                let flags = s.u8().unwrap_or(0);
                let Some(chunk) = s.chunk() else { break };
                if let Some(l) = lookup.as_mut() {
                    let bytes = patch(chunk, &udp_query, flags);
                    let from = if flags & 4 == 0 { server } else { other };
                    l.on_response(&mut resolver, clock.now(), from, &bytes);
                }
            }
            2 => {
                let flags = s.u8().unwrap_or(0);
                let Some(chunk) = s.chunk() else { break };
                if let Some(l) = lookup.as_mut() {
                    let bytes = patch(chunk, &tcp_query, flags);
                    l.on_tcp_response(&mut resolver, clock.now(), &bytes);
                }
            }
            3 => clock.advance(s.u8().unwrap_or(0)),
            4 => {
                let kind = match s.u8().unwrap_or(0) % 3 {
                    0 => io::ErrorKind::TimedOut,
                    1 => io::ErrorKind::ConnectionRefused,
                    _ => io::ErrorKind::UnexpectedEof,
                };
                if let Some(l) = lookup.as_mut() {
                    l.on_tcp_failure(&mut resolver, kind);
                }
            }
            _ => {}
        }
        if let Some(l) = lookup.as_mut() {
            match l.poll(&mut resolver, clock.now()) {
                Step::Send(t) => {
                    let q = Message::parse(&t.payload).expect("our query parses");
                    assert_eq!(q.questions.len(), 1);
                    udp_query = t.payload;
                }
                Step::SendTcp(t) => {
                    Message::parse(&t.payload).expect("our query parses");
                    tcp_query = t.payload;
                }
                Step::Wait(until) => assert!(until > clock.now()),
                Step::Done(_) => lookup = None,
            }
        }
        assert!(resolver.cache().len() <= 8);
    }
    // Whatever state it is in, a lookup ends once enough time passes.
    if let Some(mut l) = lookup {
        for _ in 0..64 {
            clock.advance(255);
            if let Some(kind) = match l.poll(&mut resolver, clock.now()) {
                Step::Done(_) => break,
                Step::SendTcp(_) => Some(io::ErrorKind::TimedOut),
                _ => None,
            } {
                l.on_tcp_failure(&mut resolver, kind);
            }
        }
        assert!(
            matches!(l.poll(&mut resolver, clock.now()), Step::Done(_)),
            "lookup never ended"
        );
    }
});
