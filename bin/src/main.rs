//! `netstackd`: the stack as a server process on a TAP or TUN device.

mod cli;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use netstack_link::device::host;
use netstack_link::device::tap::{TapDevice, TunDevice};
use netstack_link::device::Device;
use netstack_link::pcap::{CaptureDevice, LinkType, PcapWriter};
use netstack_network::wire::ipv4::Ipv4Cidr;
use netstack_runtime::Stack;

use cli::Args;

/// How long shutdown may take before netstackd gives up on stragglers.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1500);

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(msg) = args.check() {
        eprintln!("netstackd: error: {msg}");
        return ExitCode::from(2);
    }
    let _ = simplelog::TermLogger::init(
        args.log_level,
        simplelog::Config::default(),
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Auto,
    );
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netstackd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let (name, tun) = args.device();
    let (device, created): (Arc<dyn Device>, bool) = if tun {
        let d = TunDevice::open(name)?;
        let c = d.created();
        (Arc::new(d), c)
    } else {
        let d = TapDevice::open(name)?;
        let c = d.created();
        (Arc::new(d), c)
    };
    if let Some(mtu) = args.mtu {
        host::set_mtu(name, mtu)?;
    }
    // The kernel side is ours to configure only when we made the device or were asked to.
    let host_addr = args
        .host_addr
        .or_else(|| created.then(|| default_host_addr(args.addr)));
    if let Some(h) = host_addr {
        host::set_ipv4(name, h.addr, h.prefix_len)?;
        host::set_up(name)?;
    }
    let device: Arc<dyn Device> = match &args.pcap {
        Some(path) => {
            let link = if tun {
                LinkType::RawIpv4
            } else {
                LinkType::Ethernet
            };
            let writer = PcapWriter::create(path, link).map_err(|e| {
                std::io::Error::new(e.kind(), format!("--pcap {}: {e}", path.display()))
            })?;
            Arc::new(CaptureDevice::new(device, writer))
        }
        None => device,
    };

    let mut builder = Stack::builder(device, args.addr).workers(args.workers, args.workers);
    if let Some(gw) = args.gateway {
        builder = builder.gateway(gw);
    }
    if let Some(mac) = args.mac {
        builder = builder.mac(mac);
    }
    if let Some(mtu) = args.mtu {
        builder = builder.mtu(mtu);
    }
    let stack = builder.build()?;

    let (sig_tx, sig_rx) = crossbeam_channel::bounded::<()>(1);
    let signals = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        // A second signal means "now": skip the graceful path.
        if signals.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(130);
        }
        let _ = sig_tx.try_send(());
    })
    .map_err(|e| std::io::Error::other(format!("installing the signal handler: {e}")))?;

    print_ready(&stack, name, tun, host_addr);
    let _ = sig_rx.recv();
    log::info!("shutting down");
    let stats = stack.stats();
    let result = stack.shutdown(SHUTDOWN_DEADLINE);
    print_stats(&stats);
    result
}

fn default_host_addr(stack: Ipv4Cidr) -> Ipv4Cidr {
    // The first host address of the stack's subnet, or the second when the stack has the first.
    let net = u32::from(stack.network());
    let first = std::net::Ipv4Addr::from(net + 1);
    let addr = if first == stack.addr {
        std::net::Ipv4Addr::from(net + 2)
    } else {
        first
    };
    Ipv4Cidr {
        addr,
        prefix_len: stack.prefix_len,
    }
}

fn print_ready(stack: &Stack, name: &str, tun: bool, host: Option<Ipv4Cidr>) {
    let c = stack.config();
    let mut out = std::io::stdout().lock();
    let kind = if tun { "tun" } else { "tap" };
    let kernel = host.map_or("left as it was".to_string(), |h| h.to_string());
    let _ = writeln!(
        out,
        "netstackd ready on {kind} {name}: stack {} (mac {}, mtu {}), kernel side {kernel}",
        c.addr,
        c.mac,
        stack.mtu()
    );
    let _ = writeln!(out, "try:\n  ping {}", c.addr.addr);
    if !tun {
        let _ = writeln!(out, "  arping -I {name} {}", c.addr.addr);
    }
    let _ = writeln!(
        out,
        "stop with Ctrl-C (twice to skip the graceful shutdown)"
    );
    let _ = out.flush();
}

fn print_stats(stats: &netstack_runtime::StackStats) {
    let mut out = std::io::stdout().lock();
    for (name, v) in stats.counters() {
        let _ = writeln!(out, "stat {name} {v}");
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_host_address_is_the_first_free_host_of_the_subnet() {
        let c = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        assert_eq!(default_host_addr(c("192.0.2.2/24")), c("192.0.2.1/24"));
        assert_eq!(default_host_addr(c("192.0.2.1/24")), c("192.0.2.2/24"));
    }
}
