//! UDP: the header parser with the checksum fixed up after mutation (or zero, as sent),
//! parse(emit(parse(x))) == parse(x) with the same payload, and the endpoint's demultiplexing
//! and ICMP-error handling over a table with a bound and a connected socket.
//!
//! Input: one byte of flags (bit 0: the datagram is also an ICMP error's quote), then the UDP
//! datagram.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::{fix_udp, Script};
use netstack_network::endpoint::IcmpErrorKind;
use netstack_network::wire::{DstUnreachable, IpProtocol, Ipv4Repr};
use netstack_transport::udp::{self, Input, SocketTable, UdpPacket, UdpRepr, UdpStats};
use netstack_transport::Checksum;

const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fuzz_target!(|data: &[u8]| {
    let mut s = Script::new(data);
    let Some(flags) = s.u8() else { return };
    let mut datagram = s.rest().to_vec();
    fix_udp(&mut datagram, SRC, DST);

    if let Ok(p) = UdpPacket::new_checked(&datagram[..]) {
        if let Ok(repr) = UdpRepr::parse(&p, SRC, DST) {
            let mut again = Vec::new();
            repr.emit(SRC, DST, p.payload(), &mut again);
            let q = UdpPacket::new_checked(&again[..]).expect("we emit what we parse");
            assert_eq!(UdpRepr::parse(&q, SRC, DST), Ok(repr));
            assert_eq!(q.payload(), p.payload());
        }
    }

    let mut table: SocketTable<u8> = SocketTable::new();
    table
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53), [], |_, _| 1)
        .unwrap();
    let (id, _) = table
        .bind(SocketAddrV4::new(DST, 5353), [], |_, _| 2)
        .unwrap();
    table.connect(5353, id, Some(SocketAddrV4::new(SRC, 53)));
    let mut stats = UdpStats::default();
    let header = Ipv4Repr {
        src: SRC,
        dst: DST,
        protocol: IpProtocol::Udp,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
        payload_len: datagram.len(),
    };
    let checksum = if flags & 2 == 0 {
        Checksum::Verify
    } else {
        Checksum::Ignore
    };
    if let Input::Deliver { payload, .. } =
        udp::receive(&table, &header, &datagram, checksum, &mut stats)
    {
        assert!(payload.start <= payload.end && payload.end <= datagram.len());
    }
    if flags & 1 == 1 {
        // Our datagram, quoted back: we sent from DST to SRC.
        let ours = Ipv4Repr {
            src: DST,
            dst: SRC,
            ..header
        };
        let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
        let _ = udp::icmp_error(&table, kind, &ours, &datagram, &mut stats);
    }
});
