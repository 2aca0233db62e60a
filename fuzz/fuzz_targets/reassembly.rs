//! IPv4 reassembly fed a sequence of fragments and time steps, under small limits so eviction,
//! poisoning and expiry are all reached.
//!
//! Script ops (byte mod 4): 0..=1 a fragment: key (1 byte: 4 sources × 4 idents), flags and
//! offset (2 bytes: bit 13 MF, low 13 bits the offset in 8-byte units), then a chunk of payload;
//! 2 time passes (1 byte); 3 expiry runs. Invariants: memory charged never exceeds the cap and
//! always equals what is held; a completed datagram is exactly as long as its header says and no
//! larger than 65,535 bytes with its header; expired first fragments start at offset 0.
#![no_main]

use std::net::Ipv4Addr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::{Clock, Script};
use netstack_network::reassembly::{Reassembler, Reassembly, ReassemblyConfig};
use netstack_network::wire::{IpProtocol, Ipv4Repr};

const MEMORY_LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let mut r = Reassembler::new(ReassemblyConfig {
        timeout: Duration::from_secs(30),
        memory_limit: MEMORY_LIMIT,
        max_datagrams: 3,
    });
    let mut clock = Clock::new();
    while let Some(op) = s.u8() {
        match op % 4 {
            0 | 1 => {
                let key = s.u8().unwrap_or(0);
                let frag = s.u16().unwrap_or(0);
                let Some(payload) = s.chunk() else { break };
                let header = Ipv4Repr {
                    src: Ipv4Addr::new(192, 0, 2, 10 + (key & 3)),
                    dst: Ipv4Addr::new(192, 0, 2, 2),
                    protocol: if key & 0x80 == 0 {
                        IpProtocol::Udp
                    } else {
                        IpProtocol::Tcp
                    },
                    ttl: 64,
                    dscp_ecn: 0,
                    ident: u16::from((key >> 2) & 3),
                    dont_frag: false,
                    more_frags: frag & 0x2000 != 0,
                    frag_offset: (frag & 0x1fff) * 8,
                    payload_len: payload.len(),
                };
                if let Reassembly::Complete { header, payload } =
                    r.push(clock.now(), &header, payload)
                {
                    assert_eq!(header.payload_len, payload.len());
                    assert!(20 + payload.len() <= 65535);
                    assert!(!header.is_fragment());
                }
            }
            2 => clock.advance(s.u8().unwrap_or(0)),
            _ => {
                for e in r.expire(clock.now()) {
                    if let Some((h, _)) = e.first_fragment {
                        assert_eq!(h.frag_offset, 0);
                    }
                }
            }
        }
        assert!(r.memory() <= MEMORY_LIMIT, "{} over the cap", r.memory());
        assert_eq!(r.memory(), r.held());
        assert!(r.len() <= 3);
    }
});
