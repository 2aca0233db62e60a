//! `netstack-bench`: issue 9's benchmark suite, one binary. netstack beside the Linux kernel
//! and smoltcp in one run (the scenarios are listed in `netstack_tests::bench::suite`):
//! TCP bulk over a TAP with offloads on and off, TCP bulk in memory over 1–16 flows,
//! request/response and connect–request–close, UDP round trips and one-way rate, memory per
//! idle connection, scaling over workers and TAP queues, and ICMP echo.
//!
//! Reported, never asserted: a Markdown table on stdout (each row with its baseline, the ratio
//! and issue 9's target where one applies), a progress line per step on stderr, and one JSON
//! object per row plus SVG charts in the results folder.
//!
//! ```text
//! cargo build --release --workspace --bins && sudo target/release/netstack-bench
//! sudo target/release/netstack-bench --quick           # under a minute (CI's smoke run)
//! target/release/netstack-bench --memory-only          # the in-process cases, no root needed
//! target/release/netstack-bench --scenario 2 --scenario 5
//! ```
//! As root for the TAP and veth cases. Addresses: 192.0.2.1 (kernel) and 192.0.2.2 (stack) on
//! the TAPs, 198.51.100.1 and .2 on the veth pair, each in namespaces of the run's own, removed
//! when the run ends, fails, or gets SIGINT, SIGTERM or SIGHUP. `docs/bench.md` says more.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::default_workers;
use netstack_tests::bench::chart::write_charts;
use netstack_tests::bench::inproc::idle_connections;
use netstack_tests::bench::report::{json_lines, markdown, RunInfo};
use netstack_tests::bench::run::{
    begin_run, park_forever, size_text, write_jsonl, Progress, SERVE_READY,
};
use netstack_tests::bench::smoltcp::{serve_smoltcp, SMOLTCP_BUFFER};
use netstack_tests::bench::suite::{idle_line, run_scenarios, Plan, SCENARIOS};
use netstack_tests::bench::tcp::{
    serve_netstack, serve_std, std_client, Mode, NetstackOptions, TapSetup,
};
use netstack_tests::bench::udp::{blast, ping_pong, sink_count, Blast, OneWayStep};
use netstack_tests::system::missing_requirements;

const BENCH: &str = "netstack-bench";

#[derive(Parser)]
#[command(
    about = "issue 9's benchmark suite: netstack beside Linux and smoltcp over TAPs, veth and \
             in memory; a Markdown table, JSON lines and SVG charts"
)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// A short run (under a minute): small sizes, one run of each, 1,000 idle connections, a
    /// short scaling sweep; what CI runs as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Only the in-process cases (no root needed).
    #[arg(long)]
    memory_only: bool,
    /// Run only this scenario (1–7); repeat the flag for several. Default: all.
    #[arg(long = "scenario", value_parser = clap::value_parser!(u8).range(1..=7))]
    scenarios: Vec<u8>,
    /// Bytes per bulk transfer (suffixes K, M, G: binary units). Default 1G (quick: 32M).
    #[arg(long, value_parser = parse_size)]
    bytes: Option<u64>,
    /// Seconds per request/response, connect-request-close and round-trip run. Default 5
    /// (quick: 0.5).
    #[arg(long)]
    seconds: Option<f64>,
    /// Runs of every measurement of scenarios 1–4, the systems taking turns; the table shows
    /// each one's median and range. Default 3 (quick: 1).
    #[arg(long)]
    repeat: Option<usize>,
    /// netstack's network and transport workers outside scenario 6 (default: half the cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Idle connection counts of scenario 5, repeatable. Default 10000 and 100000 (quick: 1000).
    #[arg(long = "connections")]
    connections: Vec<usize>,
    /// smoltcp's socket buffers on its TAP (its examples use 65535; netstack's are 256 KiB).
    #[arg(long, default_value_t = SMOLTCP_BUFFER)]
    smoltcp_buffer: usize,
    /// Where the JSON lines and the charts go.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

/// What this binary does when the suite runs it in a namespace or a process of its own.
#[derive(Subcommand)]
enum Role {
    /// One TCP measurement against a server with std's client; prints a `result …` line.
    Client {
        #[arg(long)]
        mode: Mode,
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value_t = 0)]
        bytes: u64,
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
    /// UDP round trips to an echo server for a while; prints a `result …` line.
    UdpClient {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        seconds: f64,
    },
    /// One echo from `--warm` (so ARP is done), then `--count` datagrams to the counting sink
    /// at `--target`, paced to `--rate` a second (as fast as it goes without); prints a
    /// `blast …` line with what the sink counted.
    UdpBlast {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        warm: SocketAddr,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        rate: Option<f64>,
    },
    /// netstack over a new TAP: TCP echo (7), discard (9), chargen (19); UDP echo (7) and a
    /// counting sink (9).
    ServeNetstack {
        #[command(flatten)]
        tap: TapArgs,
        #[arg(long, default_value_t = default_workers())]
        workers: usize,
        /// The TAP's virtio-net header offloads (checksum, TSO).
        #[arg(long, value_enum, default_value_t = OnOff::On)]
        offload: OnOff,
        /// TAP queues.
        #[arg(long, default_value_t = 1)]
        queues: usize,
    },
    /// smoltcp over a new TAP in its single-threaded poll loop: discard (9), chargen (19).
    ServeSmoltcp {
        #[command(flatten)]
        tap: TapArgs,
        /// Receive and send buffer of each socket, in bytes.
        #[arg(long, default_value_t = SMOLTCP_BUFFER)]
        buffer: usize,
    },
    /// The same services on std's sockets.
    ServeStd {
        #[arg(long)]
        addr: Ipv4Addr,
    },
    /// Idle connections between two in-memory stacks; prints an `idle …` line.
    Idle {
        #[arg(long)]
        connections: usize,
        #[arg(long)]
        workers: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(clap::Args)]
struct TapArgs {
    #[arg(long, default_value = "tap0")]
    tap: String,
    #[arg(long, default_value = "192.0.2.2/24")]
    addr: Ipv4Cidr,
    /// Set on the kernel side of the TAP, which is then brought up.
    #[arg(long, default_value = "192.0.2.1/24")]
    host_addr: Ipv4Cidr,
}

impl TapArgs {
    fn setup(&self) -> TapSetup {
        TapSetup {
            tap: self.tap.clone(),
            addr: self.addr,
            host_addr: self.host_addr,
        }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.trim().char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 10),
        Some((i, 'M' | 'm')) => (&s[..i], 20),
        Some((i, 'G' | 'g')) => (&s[..i], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a byte count like 1G, 64M or 100000: {e}"))?;
    n.checked_shl(shift)
        .filter(|v| v >> shift == n && *v > 0)
        .ok_or_else(|| format!("{s:?} is out of range"))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match args.role {
        Some(role) => match run_role(role) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{BENCH}: {e}");
                ExitCode::FAILURE
            }
        },
        None => run_suite(&args),
    }
}

fn run_role(role: Role) -> Result<(), String> {
    let ephemeral = || std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"));
    match role {
        Role::Client {
            mode,
            target,
            bytes,
            seconds,
        } => std_client(mode, target, bytes, Duration::from_secs_f64(seconds))
            .map(|o| println!("{}", o.to_line())),
        Role::UdpClient {
            target,
            size,
            seconds,
        } => ping_pong(
            &ephemeral()?,
            target,
            size,
            Duration::from_secs_f64(seconds),
        )
        .map(|s| println!("{}", s.to_line())),
        Role::UdpBlast {
            target,
            warm,
            size,
            count,
            rate,
        } => {
            let sock = ephemeral()?;
            ping_pong(&sock, warm, size, Duration::ZERO)?;
            sock.connect(target)
                .map_err(|e| format!("connect {target}: {e}"))?;
            let before = sink_count(&sock)?;
            let sent: Blast = blast(&sock, size, count, rate);
            // Let the queues drain before counting.
            std::thread::sleep(Duration::from_millis(300));
            let after = sink_count(&sock)?;
            let step = OneWayStep {
                offered: rate,
                blast: sent,
                delivered: after.saturating_sub(before),
            };
            println!("{}", step.to_line());
            Ok(())
        }
        Role::ServeNetstack {
            tap,
            workers,
            offload,
            queues,
        } => {
            let opts = NetstackOptions {
                workers,
                offload: offload == OnOff::On,
                queues,
            };
            let (_stack, negotiated) = serve_netstack(&tap.setup(), &opts)?;
            println!(
                "{SERVE_READY} netstack on {} as {}: {workers} workers, {queues} queue(s), \
                 {negotiated}",
                tap.tap, tap.addr.addr
            );
            park_forever()
        }
        Role::ServeSmoltcp { tap, buffer } => serve_smoltcp(&tap.setup(), buffer, SERVE_READY),
        Role::ServeStd { addr } => serve_std(addr).map(|()| {
            println!("{SERVE_READY} std on {addr}");
            park_forever()
        }),
        Role::Idle {
            connections,
            workers,
        } => idle_connections(connections, workers, |n| {
            eprintln!("{BENCH} idle: {n} connections open")
        })
        .map(|i| println!("{}", idle_line(&i))),
    }
}

/// The plan of a run from its flags.
fn plan(args: &Args, exe: PathBuf, with_system: bool) -> Plan {
    let q = args.quick;
    let workers = args.workers.unwrap_or_else(default_workers);
    let connections = match (args.connections.is_empty(), q) {
        (false, _) => args.connections.clone(),
        (true, true) => vec![1_000],
        (true, false) => vec![10_000, 100_000],
    };
    let ladder: Vec<Option<f64>> = if q {
        vec![Some(20_000.0), Some(50_000.0), Some(100_000.0)]
    } else {
        [10e3, 25e3, 50e3, 100e3, 150e3, 200e3, 300e3]
            .into_iter()
            .map(Some)
            .chain([None])
            .collect()
    };
    let scaling = if q {
        // Workers at one queue, then queues at one worker.
        vec![(1, 1), (2, 1), (4, 1), (1, 2), (1, 4)]
    } else {
        [1, 2, 4]
            .into_iter()
            .flat_map(|w| [1, 2, 4].map(|q| (w, q)))
            .collect()
    };
    Plan {
        exe,
        quick: q,
        bytes: args.bytes.unwrap_or(if q { 32 << 20 } else { 1 << 30 }),
        seconds: args.seconds.unwrap_or(if q { 0.5 } else { 5.0 }),
        repeat: args.repeat.unwrap_or(if q { 1 } else { 3 }).max(1),
        workers,
        smoltcp_buffer: args.smoltcp_buffer,
        connections,
        udp_sizes: if q { vec![64] } else { vec![64, 1400] },
        ladder,
        step_seconds: if q { 0.3 } else { 1.0 },
        scaling,
        pings: if q { 2_000 } else { 100_000 },
        with_system,
    }
}

fn run_suite(args: &Args) -> ExitCode {
    // Before any thread starts, so every thread inherits the blocked signals and only the
    // watcher sees them.
    let (started, exe) = match begin_run(BENCH) {
        Ok(begun) => begun,
        Err(e) => {
            eprintln!("{BENCH}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let missing = missing_requirements(&["sysctl", "ping"]);
    let with_system = !args.memory_only && missing.is_empty();
    if !args.memory_only && !missing.is_empty() {
        eprintln!(
            "{BENCH}: the TAP and veth cases need {}: running only the in-process cases",
            missing.join(", ")
        );
    }
    let plan = plan(args, exe, with_system);
    let scenarios: Vec<u8> = if args.scenarios.is_empty() {
        SCENARIOS.to_vec()
    } else {
        SCENARIOS
            .into_iter()
            .filter(|s| args.scenarios.contains(s))
            .collect()
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut progress = Progress::new(BENCH, plan.steps(&scenarios));
    let rows = run_scenarios(&plan, &scenarios, &mut progress);

    println!(
        "{BENCH}: scenarios {scenarios:?}; bulk {} per transfer, {} s per request case, {} \
         run(s) of each; netstack with {} network + {} transport worker(s) outside scenario 6; \
         smoltcp buffers {} B; this machine has {cores} cores; {:.0} s in all{}",
        size_text(plan.bytes),
        plan.seconds,
        plan.repeat,
        plan.workers,
        plan.workers,
        plan.smoltcp_buffer,
        progress.elapsed().as_secs_f64(),
        if with_system {
            ""
        } else {
            " (in-process cases only)"
        }
    );
    println!();
    print!("{}", markdown(&rows));
    let run = RunInfo {
        started,
        quick: plan.quick,
        cores,
        bulk_bytes: plan.bytes,
        seconds: plan.seconds,
        repeat: plan.repeat,
    };
    match write_jsonl(&args.results, BENCH, started, &json_lines(&rows, &run)) {
        Ok(path) => eprintln!("{BENCH}: JSON lines in {}", path.display()),
        Err(e) => eprintln!(
            "{BENCH}: could not write results to {}: {e}",
            args.results.display()
        ),
    }
    match write_charts(&args.results, &format!("{BENCH}-{started}"), &rows) {
        Ok(files) => {
            for f in files {
                eprintln!("{BENCH}: chart {}", f.display());
            }
        }
        Err(e) => eprintln!("{BENCH}: charts not drawn: {e}"),
    }
    ExitCode::SUCCESS
}
