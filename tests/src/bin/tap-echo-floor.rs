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
use netstack_tests::rawframe::{
    arp, be16, eth, icmp, ipv4, put16, set_icmp_checksum, set_ipv4_checksum, Mac,
};
use tun_tap::{Iface, Mode};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "tap0")]
    tap: String,
    #[arg(long, default_value = "192.0.2.2")]
    addr: Ipv4Addr,
    #[arg(long, default_value = "02:00:00:00:00:02")]
    mac: Mac,
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
            Some(eth::TYPE_ARP) => arp_reply(frame, args.addr, args.mac).inspect(|_| {
                ARP_REPLIES.fetch_add(1, Relaxed);
            }),
            Some(eth::TYPE_IPV4) => echo_reply(frame, args.addr, args.mac).inspect(|_| {
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

fn ethertype(frame: &[u8]) -> Option<u16> {
    frame.get(eth::ETHERTYPE).map(be16)
}

/// Turns an ARP request for `addr` into the reply (RFC 826), in place; returns its length.
fn arp_reply(frame: &mut [u8], addr: Ipv4Addr, mac: Mac) -> Option<usize> {
    let p = frame.get_mut(eth::HEADER_LEN..eth::HEADER_LEN + arp::LEN)?;
    let is_request_for_us = be16(&p[arp::HTYPE]) == arp::HTYPE_ETHERNET
        && be16(&p[arp::PTYPE]) == eth::TYPE_IPV4
        && p[arp::HLEN] == 6
        && p[arp::PLEN] == 4
        && be16(&p[arp::OPER]) == arp::OP_REQUEST
        && p[arp::TPA] == addr.octets();
    if !is_request_for_us {
        return None;
    }
    put16(&mut p[arp::OPER], arp::OP_REPLY);
    p.copy_within(arp::SHA.start..arp::SPA.end, arp::THA.start);
    p[arp::SHA].copy_from_slice(&mac.0);
    p[arp::SPA].copy_from_slice(&addr.octets());
    let requester: [u8; 6] = p[arp::THA].try_into().ok()?;
    address_back(frame, requester, mac);
    Some(eth::HEADER_LEN + arp::LEN)
}

/// Turns an unfragmented ICMP echo request to `addr` into the reply, in place; returns its
/// length.
fn echo_reply(frame: &mut [u8], addr: Ipv4Addr, mac: Mac) -> Option<usize> {
    let ip = frame.get_mut(eth::HEADER_LEN..)?;
    let header_len = usize::from(*ip.first()? & 0x0f) * 4;
    let total_len = usize::from(be16(ip.get(ipv4::TOTAL_LEN)?));
    let whole = *ip.first()? >> 4 == 4
        && header_len >= ipv4::MIN_HEADER_LEN
        && total_len >= header_len + icmp::HEADER_LEN
        && total_len <= ip.len()
        && be16(&ip[ipv4::FLAGS_FRAG]) & (ipv4::MF | ipv4::OFFSET_MASK) == 0
        && ip[ipv4::PROTOCOL] == ipv4::PROTO_ICMP
        && ip[ipv4::DST] == addr.octets()
        && ip[header_len + icmp::TYPE] == icmp::ECHO_REQUEST
        && ip[header_len + icmp::CODE] == 0;
    if !whole {
        return None;
    }
    let src: [u8; 4] = ip[ipv4::SRC].try_into().ok()?;
    ip.copy_within(ipv4::DST, ipv4::SRC.start);
    ip[ipv4::DST].copy_from_slice(&src);
    set_ipv4_checksum(ip);
    ip[header_len + icmp::TYPE] = icmp::ECHO_REPLY;
    set_icmp_checksum(&mut ip[header_len..total_len]);
    let requester: [u8; 6] = frame[eth::SRC].try_into().ok()?;
    address_back(frame, requester, mac);
    Some(eth::HEADER_LEN + total_len)
}

fn address_back(frame: &mut [u8], to: [u8; 6], from: Mac) {
    frame[eth::DST].copy_from_slice(&to);
    frame[eth::SRC].copy_from_slice(&from.0);
}
