//! ICMPv4 messages, quoted headers included: the parser (checksum fixed up after mutation),
//! parse(emit(parse(x))) == parse(x), and what UDP and TCP make of a quoted transport header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netstack_fuzz::fix_icmp;
use netstack_network::endpoint::IcmpErrorKind;
use netstack_network::wire::{Icmpv4Packet, Icmpv4Repr};
use netstack_transport::tcp::IcmpErrorInfo;

fuzz_target!(|data: &[u8]| {
    let mut msg = data.to_vec();
    fix_icmp(&mut msg);
    let Ok(packet) = Icmpv4Packet::new_checked(&msg[..]) else {
        return;
    };
    let Ok(repr) = Icmpv4Repr::parse(&packet, true) else {
        return;
    };
    let bytes = repr.to_bytes();
    assert_eq!(bytes.len(), repr.buffer_len());
    let again = Icmpv4Packet::new_checked(&bytes[..]).expect("we emit what we parse");
    let back = Icmpv4Repr::parse(&again, true).expect("we emit valid checksums");
    assert_eq!(back, repr);
    let (kind, header, quoted) = match repr {
        Icmpv4Repr::DstUnreachable {
            reason,
            header,
            data,
        } => (IcmpErrorKind::DstUnreachable(reason), header, data),
        Icmpv4Repr::TimeExceeded {
            reason,
            header,
            data,
        } => (IcmpErrorKind::TimeExceeded(reason), header, data),
        _ => return,
    };
    let _ = kind.socket_error();
    if let Some(info) = IcmpErrorInfo::new(kind, header.src, header.dst, quoted) {
        assert_eq!(&info.quoted[..], &quoted[..8]);
    }
});
