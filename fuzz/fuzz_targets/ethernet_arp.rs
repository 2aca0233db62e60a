//! Ethernet classification and ARP together with the neighbor cache.
//!
//! Script ops (first byte mod 4): 0 a received frame (chunk); 1 a packet to resolve for the
//! address in the next 4 bytes; 2 time passes (1 byte, see `Clock::advance`); 3 the cache's
//! timer fires. Invariants: what `classify` accepts re-emits to the same bytes, the cache stays
//! within its entry and pending limits, each address holds at most its queue's worth of
//! packets, and every packet handed in comes out once at most (released, failed or dropped).
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::{Clock, Script};
use netstack_link::{
    classify, ArpRepr, EthernetFrame, EthernetRepr, Inbound, MacAddr, NeighborCache,
    NeighborConfig, Resolve,
};

const OUR_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);
const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let mut clock = Clock::new();
    let config = NeighborConfig {
        max_entries: 4,
        max_pending: 3,
        queue_per_address: 2,
        ..NeighborConfig::default()
    };
    let mut cache: NeighborCache<u32> = NeighborCache::new(config.clone(), OUR_MAC, OUR_IP);
    let mut next_packet = 0u32;
    let mut out = 0u32;
    while let Some(op) = s.u8() {
        match op % 4 {
            0 => {
                let Some(frame) = s.chunk() else { break };
                if let Ok(inbound) = classify(OUR_MAC, frame) {
                    let f = EthernetFrame::new_checked(frame).expect("classified");
                    let eth = EthernetRepr::parse(&f).expect("classified");
                    let mut again = eth.frame_with(f.payload());
                    assert_eq!(&again[..], &frame[..again.len()]);
                    EthernetRepr::parse(&EthernetFrame::new_checked(&mut again[..]).unwrap())
                        .map(|r| assert_eq!(r, eth))
                        .unwrap();
                    if let Inbound::Arp(arp) = inbound {
                        let bytes = arp.to_bytes();
                        assert_eq!(ArpRepr::parse_bytes(&bytes), Ok(arp));
                        let outcome = cache.on_arp(clock.now(), &arp);
                        out += outcome.released.len() as u32;
                        if let Some(reply) = outcome.reply {
                            assert_eq!(reply.sender_ip, OUR_IP);
                            assert_eq!(reply.target_ip, arp.sender_ip);
                        }
                    }
                }
            }
            1 => {
                let ip = Ipv4Addr::from(s.u32().unwrap_or(0));
                next_packet += 1;
                match cache.resolve(clock.now(), ip, next_packet) {
                    Resolve::Ready(_, p) | Resolve::Dropped(p, _) => {
                        assert_eq!(p, next_packet);
                        out += 1;
                    }
                    Resolve::Queued { .. } => {}
                }
            }
            2 => clock.advance(s.u8().unwrap_or(0)),
            _ => {
                let outcome = cache.on_timeout(clock.now());
                out += outcome.failed.len() as u32;
            }
        }
        assert!(cache.len() <= config.max_entries, "{} entries", cache.len());
        assert!(cache.pending_len() <= config.max_pending);
        assert!(out <= next_packet);
    }
});
