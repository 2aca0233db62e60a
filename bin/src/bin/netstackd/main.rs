//! `netstackd`: the stack as a server process on a TAP or TUN device, or on an existing
//! interface through AF_PACKET sockets (`--packet`).

mod cli;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use netstack_application::dns::policy::{ClientNet, RateLimit};
use netstack_application::dns::zone::{demo_zone, Zone};
use netstack_application::dns::Catalog;
use netstack_application::http::ServerConfig;
use netstack_application::services::{DnsService, ServiceConfig, Services, WebService};
use netstack_bin::device::{self, DeviceOptions};
use netstack_runtime::config::device::tap::TapOptions;
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::Stack;

use cli::{Args, DeviceKind};

/// How long the stack's shutdown may take before netstackd gives up on stragglers.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1500);
/// How long the services may take to stop (each notices within `STOP_POLL`; a forwarded DNS
/// lookup in progress may not, and is left behind with a warning).
const SERVICES_DEADLINE: Duration = Duration::from_millis(400);

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(msg) = args.check() {
        eprintln!("netstackd: error: {msg}");
        return ExitCode::from(2);
    }
    netstack_bin::tool::init_logging(args.log_level);
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netstackd: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> std::io::Result<()> {
    let (name, kind) = args.device();
    let tun = kind == DeviceKind::Tun;
    let options = DeviceOptions {
        name: name.to_string(),
        tun,
        stack_addr: args.addr,
        host_addr: args.host_addr,
        mtu: args.mtu,
        pcap: args.pcap.clone(),
        tap: TapOptions {
            offload: args.offload,
            queues: args.queues,
        },
    };
    let opened = if kind == DeviceKind::Packet {
        device::open_packet(&options)?
    } else {
        device::open(&options)?
    };
    // Zones are read before anything starts, so a bad file stops netstackd at once.
    let dns = if args.no_dns {
        None
    } else {
        Some(dns_service(args)?)
    };

    let workers = args
        .workers
        .unwrap_or_else(netstack_runtime::default_workers);
    let mut builder = Stack::builder(opened.device, args.addr)
        .workers(workers, workers)
        .spin(std::time::Duration::from_micros(args.spin_us));
    if let Some(gw) = args.gateway {
        builder = builder.gateway(gw);
    }
    if let Some(mac) = args.mac {
        builder = builder.mac(mac);
    }
    if let Some(mtu) = args.mtu {
        builder = builder.mtu(mtu);
    }
    for &(ip, mac) in &args.arp {
        builder = builder.static_arp(ip, mac);
    }
    let stack = builder.build()?;
    let services = Services::start(
        &stack,
        ServiceConfig {
            echo: (!args.no_echo).then_some(args.echo),
            discard: (!args.no_discard).then_some(args.discard),
            chargen: (!args.no_chargen).then_some(args.chargen),
            dns,
            http: (!args.no_http).then(|| WebService {
                port: args.http,
                root: args.root.clone(),
                observer: stack.observer(),
                server: ServerConfig::default(),
            }),
        },
    )?;

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

    // SIGUSR1 prints the TCP connection table (one line per connection, like `ss -ti`).
    let usr1 = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, usr1.clone())
        .map_err(|e| std::io::Error::other(format!("installing the SIGUSR1 handler: {e}")))?;

    print_ready(&stack, name, kind, opened.host_addr, &services);
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        sig_rx.recv_timeout(Duration::from_millis(100))
    {
        if usr1.swap(false, Ordering::SeqCst) {
            print_connections(&stack);
        }
    }
    log::info!("shutting down");
    // Every service thread ends before any counter is read, and the stack's counters are read
    // after it stopped (the closing connections' last segments included): they are final.
    let service_stats = services.stop(Instant::now() + SERVICES_DEADLINE).counters;
    let (result, stats) = stack.shutdown_with_stats(SHUTDOWN_DEADLINE);
    let mut out = std::io::stdout().lock();
    for (name, v) in stats.counters().into_iter().chain(
        service_stats
            .into_iter()
            .map(|(n, v)| (format!("service.{n}"), v)),
    ) {
        let _ = writeln!(out, "stat {name} {v}");
    }
    let _ = out.flush();
    result
}

/// The connection table on stdout: a header, then one line per TCP connection.
fn print_connections(stack: &Stack) {
    let conns = stack.connections();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tcp connections: {} ({:<12} {:>8} {:>8} {:<21} {:<21} details)",
        conns.len(),
        "state",
        "recv-q",
        "send-q",
        "local",
        "peer"
    );
    for c in conns {
        let _ = writeln!(out, "tcp {c}");
    }
    let _ = out.flush();
}

/// The DNS service: the built-in demo.test zone for the stack's address, then every --zone.
fn dns_service(args: &Args) -> std::io::Result<DnsService> {
    let mut catalog = Catalog::new();
    catalog.insert(demo_zone(args.addr.addr));
    for path in &args.zone {
        let zone = Zone::load(path, None).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("--zone {e}"))
        })?;
        if let Some(old) = catalog.insert(zone) {
            log::warn!(
                "--zone {}: replaces the zone {} loaded before",
                path.display(),
                old.origin()
            );
        }
    }
    let upstream = args
        .dns_upstream
        .map(|ip| SocketAddr::from((ip, 53)))
        .into_iter()
        .collect();
    let mut dns = DnsService::new(args.dns, catalog, upstream);
    // Recursion for --dns-allow, by default the stack's own subnet only.
    let allow = if args.dns_allow.is_empty() {
        vec![args.addr]
    } else {
        args.dns_allow.clone()
    };
    dns.allow = Some(
        allow
            .iter()
            .map(|c| ClientNet::new(c.addr, c.prefix_len))
            .collect(),
    );
    dns.rate = RateLimit::per_second(args.dns_rate);
    Ok(dns)
}

fn print_ready(
    stack: &Stack,
    name: &str,
    kind: DeviceKind,
    host: Option<Ipv4Cidr>,
    services: &Services,
) {
    let c = stack.config();
    let mut out = std::io::stdout().lock();
    let tun = kind == DeviceKind::Tun;
    let kind = match kind {
        DeviceKind::Tap => "tap",
        DeviceKind::Tun => "tun",
        DeviceKind::Packet => "packet",
    };
    let kernel = host.map_or("left as it was".to_string(), |h| h.to_string());
    let mac = if tun {
        String::new()
    } else {
        format!("mac {}, ", c.mac)
    };
    let _ = writeln!(
        out,
        "netstackd ready on {kind} {name}: stack {} ({mac}mtu {}), kernel side {kernel}",
        c.addr,
        stack.mtu()
    );
    for s in &services.listening {
        let _ = writeln!(out, "serving {s}");
    }
    let ip = c.addr.addr;
    let _ = writeln!(out, "try:\n  ping {ip}");
    if !tun {
        let _ = writeln!(out, "  arping -I {name} {ip}");
    }
    for s in &services.listening {
        if let Some(port) = s.strip_prefix("dns udp/").and_then(|r| r.split(' ').next()) {
            let _ = writeln!(out, "  dig @{ip} -p {port} www.demo.test");
        }
        if let Some(port) = s.strip_prefix("dns tcp/") {
            let _ = writeln!(out, "  dig +tcp @{ip} -p {port} www.demo.test");
        }
        if let Some(port) = s.strip_prefix("echo udp/") {
            let _ = writeln!(out, "  echo hello | nc -u -w1 {ip} {port}");
        }
        if let Some(port) = s.strip_prefix("echo tcp/") {
            let _ = writeln!(out, "  echo hello | nc -N {ip} {port}");
        }
        if let Some(port) = s.strip_prefix("http tcp/") {
            let base = if port == "80" {
                format!("http://{ip}")
            } else {
                format!("http://{ip}:{port}")
            };
            let _ = writeln!(
                out,
                "  curl {base}/          (the status page; /stats as JSON)"
            );
            let _ = writeln!(out, "  curl --data-binary hello {base}/echo");
        }
    }
    let _ = writeln!(
        out,
        "stop with Ctrl-C (twice to skip the graceful shutdown)"
    );
    let _ = out.flush();
}
