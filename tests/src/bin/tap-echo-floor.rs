//! The benchmark floor: the least a program on a TAP can do to answer ping. It answers ARP for
//! its address and turns each unfragmented ICMP echo request straight back into a reply (swap
//! MACs and addresses, type 0, fix the checksums); everything else is read and dropped. What
//! netstackd costs beyond this is what its pipeline costs.
//!
//! `tap-echo-floor [--tap tap0] [--addr 192.0.2.2] [--mac 02:00:00:00:00:02]
//! [--host-addr 192.0.2.1/24]` creates the TAP (as root), configures the kernel side like
//! netstackd does, prints `floor ready`, and on SIGINT/SIGTERM prints `stat floor.<name> N`
//! lines and exits 0.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use clap::Parser;
use netstack_link::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, MacAddr,
};
use netstack_network::wire::icmpv4::msg_type;
use netstack_network::wire::{Icmpv4Packet, IpProtocol, Ipv4Packet};
use tun_tap::{Iface, Mode};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "tap0")]
    tap: String,
    #[arg(long, default_value = "192.0.2.2")]
    addr: Ipv4Addr,
    #[arg(long, default_value = "02:00:00:00:00:02")]
    mac: MacAddr,
    /// Address set on the kernel side of the TAP, which is then brought up.
    #[arg(long, default_value = "192.0.2.1/24")]
    host_addr: String,
    /// What to announce when serving; another text lets the floor stand in for netstackd
    /// (`netstackd ready`) when checking the harness itself.
    #[arg(long, default_value = "floor ready")]
    ready_text: String,
}

static ECHO_REPLIES: AtomicU64 = AtomicU64::new(0);
static ARP_REPLIES: AtomicU64 = AtomicU64::new(0);
static IGNORED: AtomicU64 = AtomicU64::new(0);

fn main() -> ExitCode {
    let args = Args::parse();
    // Block the shutdown signals before any thread starts, so only the watcher receives them
    // and the echo loop never pays for a check.
    let signals = shutdown_signals();
    // SAFETY: the set is initialised; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &signals, std::ptr::null_mut()) };
    std::thread::spawn(move || wait_for_shutdown(signals));

    let tap = match Iface::without_packet_info(&args.tap, Mode::Tap) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "tap-echo-floor: cannot open TAP {}: {e} (needs root or CAP_NET_ADMIN)",
                args.tap
            );
            return ExitCode::FAILURE;
        }
    };
    for ip_args in [
        vec!["addr", "add", &args.host_addr, "dev", tap.name()],
        vec!["link", "set", tap.name(), "up"],
    ] {
        match Command::new("ip").args(&ip_args).status() {
            Ok(s) if s.success() => {}
            other => {
                eprintln!(
                    "tap-echo-floor: `ip {}` failed: {other:?}",
                    ip_args.join(" ")
                );
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "{} on {} as {} ({})",
        args.ready_text,
        tap.name(),
        args.addr,
        args.mac
    );
    let _ = std::io::stdout().flush();

    let mut buf = vec![0u8; 65536];
    loop {
        let n = match tap.recv(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("tap-echo-floor: read: {e}");
                return ExitCode::FAILURE;
            }
        };
        let frame = &mut buf[..n];
        let reply_len = match ethertype(frame) {
            Some(EtherType::Arp) => arp_reply(frame, args.addr, args.mac).inspect(|_| {
                ARP_REPLIES.fetch_add(1, Relaxed);
            }),
            Some(EtherType::Ipv4) => echo_reply(frame, args.addr, args.mac).inspect(|_| {
                ECHO_REPLIES.fetch_add(1, Relaxed);
            }),
            _ => None,
        };
        match reply_len {
            Some(len) => {
                if let Err(e) = tap.send(&buf[..len]) {
                    eprintln!("tap-echo-floor: write: {e}");
                }
            }
            None => {
                IGNORED.fetch_add(1, Relaxed);
            }
        }
    }
}

fn shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; the signal numbers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        set
    }
}

fn wait_for_shutdown(signals: libc::sigset_t) {
    let mut sig = 0;
    // SAFETY: both pointers are valid for the call.
    unsafe { libc::sigwait(&signals, &mut sig) };
    println!("stat floor.echo_replies {}", ECHO_REPLIES.load(Relaxed));
    println!("stat floor.arp_replies {}", ARP_REPLIES.load(Relaxed));
    println!("stat floor.ignored {}", IGNORED.load(Relaxed));
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

fn ethertype(frame: &[u8]) -> Option<EtherType> {
    EthernetFrame::new_checked(frame)
        .ok()
        .map(|f| f.ethertype())
}

/// Turns an ARP request for `addr` into the reply (RFC 826), in place; returns its length.
fn arp_reply(frame: &mut [u8], addr: Ipv4Addr, mac: MacAddr) -> Option<usize> {
    let mut eth = EthernetFrame::new_checked(&mut *frame).ok()?;
    let payload = eth.payload_mut().get_mut(..ArpRepr::BUFFER_LEN)?;
    let request = ArpRepr::parse_bytes(payload).ok()?;
    if request.operation != ArpOperation::Request || request.target_ip != addr {
        return None;
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        sender_mac: mac,
        sender_ip: addr,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    };
    reply.emit(&mut ArpPacket::new_checked(payload).ok()?);
    reply.ethernet_repr().emit(&mut eth);
    Some(EthernetRepr::buffer_len(ArpRepr::BUFFER_LEN))
}

/// Turns an unfragmented ICMP echo request to `addr` into the reply, in place; returns its
/// length.
fn echo_reply(frame: &mut [u8], addr: Ipv4Addr, mac: MacAddr) -> Option<usize> {
    let mut eth = EthernetFrame::new_checked(&mut *frame).ok()?;
    let requester = eth.src();
    let mut ip = Ipv4Packet::new_checked(eth.payload_mut()).ok()?;
    let whole = !ip.more_frags()
        && ip.frag_offset() == 0
        && ip.protocol() == IpProtocol::Icmp
        && ip.dst_addr() == addr;
    if !whole {
        return None;
    }
    let total_len = usize::from(ip.total_len());
    let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
    if icmp.msg_type() != msg_type::ECHO_REQUEST || icmp.code() != 0 {
        return None;
    }
    let src = ip.src_addr();
    ip.set_src_addr(addr);
    ip.set_dst_addr(src);
    ip.fill_checksum();
    let mut icmp = Icmpv4Packet::new_unchecked(ip.payload_mut());
    icmp.set_msg_type(msg_type::ECHO_REPLY);
    icmp.fill_checksum();
    eth.set_dst(requester);
    eth.set_src(mac);
    Some(EthernetRepr::buffer_len(total_len))
}
