//! IPv4 receive as a network worker runs it: validation, options, fragments into reassembly,
//! ICMP (echo, errors with their quoted headers), delivery, and the reassembly timer.
//!
//! The first byte chooses the mode: bit 0 set verifies checksums (the harness fixes the IPv4
//! header checksum and, for whole datagrams, the ICMP/UDP/TCP one after mutation), clear trusts
//! the device (`verify_checksums = false`). Script ops (byte mod 3): 0 a received packet (chunk);
//! 1 time passes (1 byte); 2 the timer fires. Invariants: reassembly memory stays under its cap
//! and equals what is held, every answer is a well-formed IPv4 packet within the MTU, every
//! delivered payload is as long as its header says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::{fix_ipv4_packet, Clock, Script};
use netstack_network::endpoint::{Ipv4Config, Ipv4Endpoint, Outgoing, Received};
use netstack_network::ident::IdentGenerator;
use netstack_network::reassembly::ReassemblyConfig;
use netstack_network::wire::{Ipv4Packet, Ipv4Repr};

const MEMORY_LIMIT: usize = 16 * 1024;

fn check_outgoing(out: &Outgoing, mtu: usize) {
    for p in &out.packets {
        assert!(p.len() <= mtu, "{} bytes over MTU {mtu}", p.len());
        let packet = Ipv4Packet::new_checked(&p[..]).expect("we emit well-formed packets");
        Ipv4Repr::parse(&packet, true).expect("we emit valid checksums");
    }
}

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let Some(mode) = s.u8() else { return };
    let verify = mode & 1 == 1;
    let mut config = Ipv4Config::new("192.0.2.2/24".parse().unwrap());
    config.gateway = Some("192.0.2.1".parse().unwrap());
    config.verify_checksums = verify;
    config.reassembly = ReassemblyConfig {
        memory_limit: MEMORY_LIMIT,
        max_datagrams: 8,
        ..ReassemblyConfig::default()
    };
    let mtu = config.mtu;
    let mut ep = Ipv4Endpoint::new(config, IdentGenerator::with_key(1, 2));
    let mut clock = Clock::new();
    while let Some(op) = s.u8() {
        match op % 3 {
            0 => {
                let Some(chunk) = s.chunk() else { break };
                let mut packet = chunk.to_vec();
                if verify {
                    fix_ipv4_packet(&mut packet);
                }
                match ep.receive(clock.now(), &packet) {
                    Received::Deliver { header, payload } => {
                        assert_eq!(payload.bytes(&packet).len(), header.payload_len);
                    }
                    Received::Respond(out) => check_outgoing(&out, mtu),
                    _ => {}
                }
            }
            1 => clock.advance(s.u8().unwrap_or(0)),
            _ => {
                for out in ep.on_timeout(clock.now()) {
                    check_outgoing(&out, mtu);
                }
            }
        }
        let r = ep.reassembler();
        assert!(r.memory() <= MEMORY_LIMIT, "{} over the cap", r.memory());
        assert_eq!(r.memory(), r.held());
    }
});
