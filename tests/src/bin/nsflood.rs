//! Writes malformed frames into a TAP from the kernel side, through an AF_PACKET socket bound
//! to the interface, so the program on the other end of the TAP (netstackd) reads every one.
//!
//! `ip netns exec NS nsflood --iface tap0 --dst-mac MAC --count 100000 --seed N [--rate FPS]`
//!
//! Deterministic by seed: the same arguments write the same bytes. Frames go to `--dst-mac`
//! and to broadcast, with 192.0.2.0/24 addresses only. At the end it prints how many frames
//! of each kind it wrote, how many the kernel refused, and how many the TAP dropped because its
//! reader fell behind (the interface's tx_dropped).

use std::ffi::CString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use netstack_link::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, MacAddr,
};
use netstack_network::wire::icmpv4::HEADER_LEN as ICMP_HEADER_LEN;
use netstack_network::wire::ipv4::HEADER_LEN as IPV4_HEADER_LEN;
use netstack_network::wire::{Icmpv4Repr, Ipv4Packet, Ipv4Repr};
use netstack_tests::rawframe::{
    ethernet, flip_icmp_checksum_bit, flip_ipv4_checksum_bit, icmp_echo_request, ipv4_icmp,
    reseal_ipv4, SplitMix64,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "tap0")]
    iface: String,
    /// The stack's MAC; about half the frames go to it, the rest to broadcast.
    #[arg(long)]
    dst_mac: MacAddr,
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Frames per second at most (0: as fast as the socket takes them). The TAP holds only a
    /// few hundred frames, so an unpaced flood mostly measures its queue overflowing.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

/// The kinds of garbage, each a way a frame can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RandomBytes,
    EthTruncated,
    EthHeaderOnly,
    Ipv4Truncated,
    Ipv4BadVersion,
    Ipv4BadIhl,
    Ipv4BadTotalLength,
    Ipv4BadChecksum,
    IcmpBadChecksum,
    IcmpTruncated,
    ArpBad,
    FragOverlap,
    FragTiny,
    FragPast65535,
    FragNeverCompleted,
    FragUnaligned,
}

const KINDS: [Kind; 16] = [
    Kind::RandomBytes,
    Kind::EthTruncated,
    Kind::EthHeaderOnly,
    Kind::Ipv4Truncated,
    Kind::Ipv4BadVersion,
    Kind::Ipv4BadIhl,
    Kind::Ipv4BadTotalLength,
    Kind::Ipv4BadChecksum,
    Kind::IcmpBadChecksum,
    Kind::IcmpTruncated,
    Kind::ArpBad,
    Kind::FragOverlap,
    Kind::FragTiny,
    Kind::FragPast65535,
    Kind::FragNeverCompleted,
    Kind::FragUnaligned,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::RandomBytes => "random_bytes",
            Kind::EthTruncated => "eth_truncated",
            Kind::EthHeaderOnly => "eth_header_only",
            Kind::Ipv4Truncated => "ipv4_truncated",
            Kind::Ipv4BadVersion => "ipv4_bad_version",
            Kind::Ipv4BadIhl => "ipv4_bad_ihl",
            Kind::Ipv4BadTotalLength => "ipv4_bad_total_length",
            Kind::Ipv4BadChecksum => "ipv4_bad_checksum",
            Kind::IcmpBadChecksum => "icmp_bad_checksum",
            Kind::IcmpTruncated => "icmp_truncated",
            Kind::ArpBad => "arp_bad",
            Kind::FragOverlap => "frag_overlap",
            Kind::FragTiny => "frag_tiny",
            Kind::FragPast65535 => "frag_past_65535",
            Kind::FragNeverCompleted => "frag_never_completed",
            Kind::FragUnaligned => "frag_unaligned",
        }
    }
}

/// The stack's address and the one the kernel side has; sources are drawn from the rest.
const STACK_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// The source MAC of every frame: locally administered, owned by no interface.
const SRC_MAC: MacAddr = MacAddr([0x02, 0x5e, 0x00, 0x00, 0x00, 0x01]);

/// Builds frames of each kind from one seeded generator.
struct Forge {
    rng: SplitMix64,
    dst_mac: MacAddr,
}

impl Forge {
    fn dst(&mut self) -> MacAddr {
        if self.rng.next_u64() & 1 == 1 {
            self.dst_mac
        } else {
            MacAddr::BROADCAST
        }
    }

    fn src_ip(&mut self) -> Ipv4Addr {
        Ipv4Addr::new(192, 0, 2, self.rng.range(10, 250) as u8)
    }

    /// Mostly the stack, sometimes the subnet broadcast or an address nobody has.
    fn dst_ip(&mut self) -> Ipv4Addr {
        match self.rng.range(0, 9) {
            0 => Ipv4Addr::new(192, 0, 2, 255),
            1 => Ipv4Addr::new(192, 0, 2, 77),
            _ => STACK_IP,
        }
    }

    /// A frame from `SRC_MAC` to the stack or broadcast.
    fn eth(&mut self, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
        let dst = self.dst();
        ethernet(dst, SRC_MAC, ethertype, payload)
    }

    /// A well-formed echo request in an IPv4 packet, for the kinds that break one field.
    fn echo_packet(&mut self, data_len: usize) -> Vec<u8> {
        let data = self.rng.bytes(data_len);
        let msg = icmp_echo_request(
            self.rng.next_u64() as u16,
            self.rng.next_u64() as u16,
            &data,
        );
        let (src, dst, id) = (self.src_ip(), self.dst_ip(), self.rng.next_u64() as u16);
        ipv4_icmp(src, dst, id, msg.len()).to_bytes(&msg)
    }

    /// An IPv4 fragment of an ICMP datagram: `offset` in bytes, `more` for MF, valid checksum.
    fn fragment(
        &mut self,
        src: Ipv4Addr,
        id: u16,
        offset: usize,
        more: bool,
        data: &[u8],
    ) -> Vec<u8> {
        let h = Ipv4Repr {
            more_frags: more,
            frag_offset: offset as u16,
            ..ipv4_icmp(src, STACK_IP, id, data.len())
        };
        self.eth(EtherType::Ipv4, &h.to_bytes(data))
    }

    /// The frames of one instance of `kind` (the overlap kind needs two).
    fn frames(&mut self, kind: Kind) -> Vec<Vec<u8>> {
        match kind {
            Kind::RandomBytes => {
                let len = self.rng.range(EthernetRepr::HEADER_LEN as u64, 1514) as usize;
                let mut f = self.rng.bytes(len);
                let dst = self.dst();
                // At least a header long, so the check passes.
                if let Ok(mut frame) = EthernetFrame::new_checked(&mut f[..]) {
                    frame.set_dst(dst);
                }
                vec![f]
            }
            // Shorter than an Ethernet header: the kernel refuses these (ETH_HLEN is its
            // minimum), so they are counted as refused and never reach the TAP.
            Kind::EthTruncated => {
                let len = self.rng.range(1, EthernetRepr::HEADER_LEN as u64 - 1) as usize;
                let dst = self.dst();
                let mut f = ethernet(dst, MacAddr::ZERO, EtherType::Unknown(0), &[]);
                f.truncate(len);
                vec![f]
            }
            Kind::EthHeaderOnly => {
                let t = *self.rng.pick(&[
                    EtherType::Ipv4,
                    EtherType::Arp,
                    EtherType::Ipv6,
                    UNUSED_ETHERTYPE,
                ]);
                vec![self.eth(t, &[])]
            }
            Kind::Ipv4Truncated => {
                let p = self.echo_packet(16);
                let keep = self.rng.range(1, IPV4_HEADER_LEN as u64 - 1) as usize;
                vec![self.eth(EtherType::Ipv4, &p[..keep])]
            }
            Kind::Ipv4BadVersion => {
                let mut p = self.echo_packet(16);
                let version = *self.rng.pick(&[0u8, 1, 5, 6, 7, 15]);
                Ipv4Packet::new_unchecked(&mut p[..]).set_version(version);
                reseal_ipv4(&mut p);
                vec![self.wrap(p)]
            }
            Kind::Ipv4BadIhl => {
                let mut p = self.echo_packet(16);
                // IHL below the minimum, or a header longer than the packet.
                let ihl = *self.rng.pick(&[0usize, 1, 4, 15]);
                Ipv4Packet::new_unchecked(&mut p[..]).set_header_len(ihl * 4);
                reseal_ipv4(&mut p);
                vec![self.wrap(p)]
            }
            Kind::Ipv4BadTotalLength => {
                let mut p = self.echo_packet(16);
                let len = p.len() as u64;
                let bogus = match self.rng.range(0, 2) {
                    0 => self.rng.range(0, IPV4_HEADER_LEN as u64 - 1),
                    1 => self.rng.range(len + 1, 1600),
                    _ => self.rng.range(1601, 65535),
                };
                Ipv4Packet::new_unchecked(&mut p[..]).set_total_len(bogus as u16);
                reseal_ipv4(&mut p);
                vec![self.wrap(p)]
            }
            Kind::Ipv4BadChecksum => {
                let mut p = self.echo_packet(32);
                // A bit of the high byte.
                flip_ipv4_checksum_bit(&mut p, 8 + self.rng.range(0, 7) as u32);
                vec![self.wrap(p)]
            }
            Kind::IcmpBadChecksum => {
                let mut p = self.echo_packet(32);
                flip_icmp_checksum_bit(&mut p[IPV4_HEADER_LEN..], 14);
                vec![self.wrap(p)]
            }
            Kind::IcmpTruncated => {
                // The first bytes of an echo request with ident, sequence and data zero.
                let keep = self.rng.range(1, ICMP_HEADER_LEN as u64 - 1) as usize;
                let mut msg = Icmpv4Repr::EchoRequest {
                    ident: 0,
                    seq_no: 0,
                    data: &[],
                }
                .to_bytes();
                msg.truncate(keep);
                let (src, dst) = (self.src_ip(), self.dst_ip());
                let p = ipv4_icmp(src, dst, self.rng.next_u64() as u16, msg.len()).to_bytes(&msg);
                vec![self.wrap(p)]
            }
            Kind::ArpBad => vec![self.bad_arp()],
            Kind::FragOverlap => {
                let (src, id) = (self.src_ip(), self.rng.next_u64() as u16);
                let data = self.rng.bytes(64);
                let second = self.rng.range(1, 7) as usize * 8;
                vec![
                    self.fragment(src, id, 0, true, &data),
                    self.fragment(src, id, second, true, &data),
                ]
            }
            Kind::FragTiny => {
                let (src, id) = (self.src_ip(), self.rng.next_u64() as u16);
                let len = *self.rng.pick(&[0usize, 1, 8]);
                let data = self.rng.bytes(len);
                let offset = self.rng.range(0, 1000) as usize * 8;
                vec![self.fragment(src, id, offset, true, &data)]
            }
            Kind::FragPast65535 => {
                let (src, id) = (self.src_ip(), self.rng.next_u64() as u16);
                // The last possible offset (65528) plus more than 7 bytes ends past 65535.
                let (offset, len) =
                    *self
                        .rng
                        .pick(&[(65528usize, 16usize), (65000, 1480), (64512, 1480)]);
                let data = self.rng.bytes(len);
                let more = self.rng.next_u64() & 1 == 1;
                vec![self.fragment(src, id, offset, more, &data)]
            }
            Kind::FragNeverCompleted => {
                let (src, id) = (self.src_ip(), self.rng.next_u64() as u16);
                let data = self.rng.bytes(1480);
                vec![self.fragment(src, id, 0, true, &data)]
            }
            Kind::FragUnaligned => {
                // RFC 791 §3.2: every fragment but the last carries a multiple of 8 bytes.
                let (src, id) = (self.src_ip(), self.rng.next_u64() as u16);
                let len = self.rng.range(0, 180) as usize * 8 + self.rng.range(1, 7) as usize;
                let data = self.rng.bytes(len);
                vec![self.fragment(src, id, 0, true, &data)]
            }
        }
    }

    fn wrap(&mut self, ip_packet: Vec<u8>) -> Vec<u8> {
        self.eth(EtherType::Ipv4, &ip_packet)
    }

    fn bad_arp(&mut self) -> Vec<u8> {
        let spa = self.src_ip();
        let request = ArpRepr {
            operation: ArpOperation::Request,
            sender_mac: SRC_MAC,
            sender_ip: spa,
            target_mac: MacAddr::ZERO,
            target_ip: STACK_IP,
        };
        let mut bytes = request.to_bytes();
        let mut len = ArpRepr::BUFFER_LEN;
        // `bytes` is exactly one packet long, so the check passes.
        if let Ok(mut p) = ArpPacket::new_checked(&mut bytes[..]) {
            match self.rng.range(0, 6) {
                0 => len = self.rng.range(0, ArpRepr::BUFFER_LEN as u64 - 1) as usize,
                1 => p.set_hardware_type(6),
                2 => p.set_protocol_type(EtherType::Ipv6.into()),
                3 => {
                    p.set_hardware_len(8);
                    p.set_protocol_len(16);
                }
                4 => p.set_operation(self.rng.range(3, 65535) as u16),
                // A sender claiming the broadcast or a multicast address.
                5 => {
                    let multicast = MacAddr([0x01, 0, 0x5e, 0, 0, 1]);
                    let mac = *self.rng.pick(&[MacAddr::BROADCAST, multicast]);
                    p.set_sender_hardware_addr(mac);
                }
                // A request for an address that is not the stack's.
                _ => p.set_target_protocol_addr(Ipv4Addr::new(192, 0, 2, 77)),
            }
        }
        self.eth(EtherType::Arp, &bytes[..len])
    }
}

/// An ethertype nobody implements (IEEE 802 "local experimental 1").
const UNUSED_ETHERTYPE: EtherType = EtherType::Unknown(0x88b5);

/// An AF_PACKET socket that sends whole Ethernet frames out of one interface.
struct PacketSocket {
    fd: i32,
}

impl PacketSocket {
    fn bind(iface: &str) -> Result<PacketSocket, String> {
        let name = CString::new(iface).map_err(|_| format!("bad interface name {iface:?}"))?;
        // SAFETY: name is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(format!(
                "no interface {iface}: {}",
                std::io::Error::last_os_error()
            ));
        }
        // Protocol 0: the socket receives nothing, it only sends.
        // SAFETY: plain socket call.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(format!(
                "AF_PACKET socket: {} (needs root)",
                std::io::Error::last_os_error()
            ));
        }
        let sock = PacketSocket { fd };
        // SAFETY: sockaddr_ll is plain data; zero is a valid starting value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = index as i32;
        // SAFETY: addr is a valid sockaddr_ll and its size is passed.
        let r = unsafe {
            libc::bind(
                fd,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            return Err(format!(
                "bind to {iface}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(sock)
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        // SAFETY: the pointer and length describe `frame`.
        let n = unsafe { libc::send(self.fd, frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl Drop for PacketSocket {
    fn drop(&mut self) {
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(self.fd) };
    }
}

fn tx_dropped(iface: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/statistics/tx_dropped"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[derive(Default, Clone)]
struct Tally {
    sent: u64,
    refused: u64,
    last_error: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sock = match PacketSocket::bind(&args.iface) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nsflood: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "nsflood: {} frames into {} to {} and broadcast, seed {}, rate {}",
        args.count,
        args.iface,
        args.dst_mac,
        args.seed,
        if args.rate == 0 {
            "unpaced".to_string()
        } else {
            format!("{}/s", args.rate)
        }
    );
    let dropped_before = tx_dropped(&args.iface);
    let mut forge = Forge {
        rng: SplitMix64::new(args.seed),
        dst_mac: args.dst_mac,
    };
    let mut tally = vec![Tally::default(); KINDS.len()];
    let start = Instant::now();
    // `--count` counts frames the kernel took; refused ones (runts) are tallied beside them.
    let (mut written, mut refused) = (0u64, 0u64);
    while written < args.count {
        if refused > args.count {
            eprintln!("nsflood: the kernel refused more frames than were asked for; giving up");
            return ExitCode::FAILURE;
        }
        let k = forge.rng.range(0, KINDS.len() as u64 - 1) as usize;
        for frame in forge.frames(KINDS[k]) {
            if written == args.count {
                break;
            }
            match sock.send(&frame) {
                Ok(()) => {
                    tally[k].sent += 1;
                    written += 1;
                }
                Err(e) => {
                    tally[k].refused += 1;
                    refused += 1;
                    tally[k].last_error = Some(e.to_string());
                    continue;
                }
            }
            if args.rate > 0 && written % 64 == 0 {
                let due = Duration::from_secs_f64(written as f64 / args.rate as f64);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
        }
    }
    let elapsed = start.elapsed();
    // Let the TAP's reader catch up before reading its drop count.
    std::thread::sleep(Duration::from_millis(200));
    for (kind, t) in KINDS.iter().zip(&tally) {
        print!(
            "nsflood kind {:<22} sent {:>6} refused {:>6}",
            kind.name(),
            t.sent,
            t.refused
        );
        match &t.last_error {
            Some(e) => println!(" ({e})"),
            None => println!(),
        }
    }
    println!(
        "nsflood total sent {written} refused {refused} in {:.3}s",
        elapsed.as_secs_f64()
    );
    match (dropped_before, tx_dropped(&args.iface)) {
        (Some(a), Some(b)) => println!("nsflood tap_tx_dropped {}", b.saturating_sub(a)),
        _ => println!("nsflood tap_tx_dropped unknown"),
    }
    let _ = std::io::stdout().flush();
    ExitCode::SUCCESS
}
