//! UDP request/response through the whole pipeline and back (device, link, network, transport,
//! socket API): round trips per second and latency p50/p99 for 64- and 1400-byte datagrams,
//! (a) between two stacks over the in-memory link (no root needed), (b) a Linux client to
//! netstackd's UDP echo over a TAP, (c) in the same run, Linux to Linux over a veth pair
//! between two namespaces (198.51.100.1 ↔ .2), the baseline (b) and (a) are divided by. Then
//! the one-way rate a Linux sender can push into netstackd's discard socket before drops start:
//! datagrams at increasing offered rates, each step against a fresh netstackd, compared with
//! what the discard service read and with the drop counters on both sides.
//! Reported, never asserted.
//!
//! ```text
//! cargo build --release --workspace --bins && target/release/bench-udp [--quick]
//! target/release/bench-udp --memory-only          # (a) alone, no root needed
//! ```
//! As root for (b), (c) and the one-way ladder. netstackd is found as the tests find it
//! (`$NETSTACKD`, else beside this binary). The Linux clients are this same binary run inside
//! the namespaces (`bench-udp client …`, `echo-server …`, `blast …`).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, Subcommand};
use netstack_tests::bench_udp::{
    blast, echo_loop, memory_round_trips, ping_pong, print_one_way, print_round_trips, Blast,
    OneWayRow, RoundTripRow, Summary,
};
use netstack_tests::netns::{Daemon, NetNs, Netstackd};
use netstack_tests::peers::is_drop_reason;
use netstack_tests::system::missing_requirements;

#[derive(Parser)]
#[command(
    about = "UDP round trips and one-way rate: two stacks in memory, Linux to netstackd \
                   over a TAP, Linux to Linux over veth"
)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// A short run: 1 s per round-trip case and a shorter one-way ladder.
    #[arg(long)]
    quick: bool,
    /// Only the in-memory cases (no root needed).
    #[arg(long)]
    memory_only: bool,
}

/// What this binary does when the benchmark runs it inside a namespace.
#[derive(Subcommand)]
enum Role {
    /// Round trips to an echo server for a while; prints a `result …` line.
    Client {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        seconds: f64,
    },
    /// A UDP echo server (RFC 862) on std's socket; prints `echo ready` when bound.
    EchoServer {
        #[arg(long)]
        bind: SocketAddr,
    },
    /// One echo to `--warm` (so ARP is done), then `--count` datagrams to `--target`, paced to
    /// `--rate` per second (as fast as possible without it); prints a `blast …` line.
    Blast {
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
}

const SIZES: [usize; 2] = [64, 1400];
const STACK_ECHO: &str = "192.0.2.2:7";
const STACK_DISCARD: &str = "192.0.2.2:9";
const VETH_LEFT: &str = "198.51.100.1/24";
const VETH_RIGHT: &str = "198.51.100.2/24";
const VETH_ECHO: &str = "198.51.100.2:7";
const ECHO_READY: &str = "echo ready";
/// The one-way datagram size.
const ONE_WAY_SIZE: usize = 64;

fn main() -> ExitCode {
    let args = Args::parse();
    match args.role {
        Some(role) => run_role(role),
        None => run_benchmark(&args),
    }
}

/// Runs one of the roles the benchmark starts inside a namespace; its result line goes to
/// stdout, where the benchmark reads it.
fn run_role(role: Role) -> ExitCode {
    match role_result(role) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn role_result(role: Role) -> Result<String, String> {
    let ephemeral = || std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"));
    match role {
        Role::Client {
            target,
            size,
            seconds,
        } => {
            let sock = ephemeral()?;
            ping_pong(&sock, target, size, Duration::from_secs_f64(seconds)).map(|s| s.to_line())
        }
        Role::EchoServer { bind } => {
            let sock = std::net::UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
            println!("{ECHO_READY} on {bind}");
            echo_loop(&sock, &AtomicBool::new(false));
            Ok("echo server stopped".to_string())
        }
        Role::Blast {
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
            Ok(blast(&sock, size, count, rate).to_line())
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("bench-udp: {msg}");
    ExitCode::FAILURE
}

fn run_benchmark(args: &Args) -> ExitCode {
    let seconds = if args.quick { 1.0 } else { 5.0 };
    let per_case = Duration::from_secs_f64(seconds);
    println!("UDP request/response, one request in flight, {per_case:?} per case");
    let mut rows: Vec<RoundTripRow> = SIZES
        .iter()
        .map(|&size| RoundTripRow {
            case: "two stacks, in-memory link".to_string(),
            size,
            result: memory_round_trips(size, per_case),
            baseline: false,
        })
        .collect();
    if args.memory_only {
        print_round_trips(&rows);
        return ExitCode::SUCCESS;
    }
    let missing = missing_requirements(&[]);
    if !missing.is_empty() {
        print_round_trips(&rows);
        eprintln!(
            "bench-udp: the Linux cases need {}; run with --memory-only to skip them",
            missing.join(", ")
        );
        return ExitCode::FAILURE;
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return fail(&format!("current_exe: {e}")),
    };
    rows.extend(linux_rows(&exe, seconds));
    print_round_trips(&rows);
    println!();

    let (rates, seconds_per_step): (&[f64], f64) = if args.quick {
        (&[25_000.0, 50_000.0, 100_000.0, 200_000.0], 0.5)
    } else {
        (
            &[
                10_000.0, 25_000.0, 50_000.0, 100_000.0, 150_000.0, 200_000.0, 300_000.0,
            ],
            1.0,
        )
    };
    println!(
        "one-way: {ONE_WAY_SIZE}-byte datagrams from Linux to netstackd's discard service \
         ({STACK_DISCARD}), {seconds_per_step} s per offered rate, a fresh netstackd each"
    );
    let offered = rates.iter().map(|&r| Some(r)).chain([None]);
    let ladder: Vec<OneWayRow> = offered
        .filter_map(|rate| {
            let count = (rate.unwrap_or(400_000.0) * seconds_per_step) as u64;
            match catch(|| one_way_step(&exe, rate, count)) {
                Ok(row) => Some(row),
                Err(e) => {
                    eprintln!("bench-udp: one-way at {rate:?}/s not measured: {e}");
                    None
                }
            }
        })
        .collect();
    print_one_way(&ladder);
    let clean = ladder
        .iter()
        .filter(|r| r.delivered >= r.blast.sent)
        .map(|r| r.blast.per_sec())
        .fold(None, |best: Option<f64>, r| {
            Some(best.map_or(r, |b| b.max(r)))
        });
    match clean {
        Some(r) => println!("highest sending rate with nothing lost: {r:.0} datagrams/s"),
        None => println!("every step lost datagrams"),
    }
    ExitCode::SUCCESS
}

/// Runs `f`, turning a harness panic (which says what went wrong) into an error, so one failed
/// case still lets the others report.
fn catch<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the harness panicked (message above)".to_string()))
}

/// (b) and (c): netstackd in one namespace, a veth pair between two others with an echo server
/// on the right; the client runs in the namespace of its path, the two targets alternate.
fn linux_rows(exe: &std::path::Path, seconds: f64) -> Vec<RoundTripRow> {
    let setup = catch(|| {
        let stack_ns = NetNs::new();
        let stack = Netstackd::start(&stack_ns, &[]);
        let (left, right) = veth_pair()?;
        let server = Daemon::start(
            &right,
            exe,
            &["echo-server", "--bind", VETH_ECHO],
            ECHO_READY,
        );
        Ok((stack_ns, stack, left, right, server))
    });
    let (stack_ns, _stack, left, _right, _server) = match setup {
        Ok(s) => s,
        Err(e) => {
            return SIZES
                .iter()
                .map(|&size| RoundTripRow {
                    case: "Linux cases".to_string(),
                    size,
                    result: Err(e.clone()),
                    baseline: false,
                })
                .collect()
        }
    };
    let mut rows = Vec::new();
    for size in SIZES {
        rows.push(RoundTripRow {
            case: "Linux client -> netstackd, TAP".to_string(),
            size,
            result: catch(|| client(&stack_ns, exe, STACK_ECHO, size, seconds)),
            baseline: false,
        });
        rows.push(RoundTripRow {
            case: "Linux -> Linux, veth (baseline)".to_string(),
            size,
            result: catch(|| client(&left, exe, VETH_ECHO, size, seconds)),
            baseline: true,
        });
    }
    rows
}

/// Two namespaces joined by a veth pair created inside them (the root namespace is never
/// touched): 198.51.100.1/24 on the left, .2 on the right.
fn veth_pair() -> Result<(NetNs, NetNs), String> {
    let (left, right) = (NetNs::new(), NetNs::new());
    let d = Duration::from_secs(5);
    left.run_ok(
        "ip",
        &[
            "link",
            "add",
            "veth0",
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "netns",
            right.name(),
        ],
        d,
    );
    for (ns, dev, cidr) in [(&left, "veth0", VETH_LEFT), (&right, "veth1", VETH_RIGHT)] {
        ns.run_ok("ip", &["addr", "add", cidr, "dev", dev], d);
        ns.run_ok("ip", &["link", "set", dev, "up"], d);
    }
    Ok((left, right))
}

/// `bench-udp client` in `ns` against `target`; its summary.
fn client(
    ns: &NetNs,
    exe: &std::path::Path,
    target: &str,
    size: usize,
    seconds: f64,
) -> Result<Summary, String> {
    let (size, secs) = (size.to_string(), seconds.to_string());
    let args = [
        "client",
        "--target",
        target,
        "--size",
        &size,
        "--seconds",
        &secs,
    ];
    let deadline = Duration::from_secs_f64(seconds + 15.0);
    let done = ns.run(exe, &args, deadline);
    Summary::from_output(&done.stdout).ok_or_else(|| format!("no result: {}", done.describe()))
}

/// One step of the ladder: a fresh netstackd, `count` datagrams at `rate`, then what arrived.
fn one_way_step(exe: &std::path::Path, rate: Option<f64>, count: u64) -> Result<OneWayRow, String> {
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, &[]);
    let tap_dropped = || -> Result<u64, String> {
        let out = ns.run_ok(
            "cat",
            &["/sys/class/net/tap0/statistics/tx_dropped"],
            Duration::from_secs(5),
        );
        out.stdout
            .trim()
            .parse()
            .map_err(|e| format!("tap0 tx_dropped {:?}: {e}", out.stdout))
    };
    let dropped_before = tap_dropped()?;
    let (size, count_s) = (ONE_WAY_SIZE.to_string(), count.to_string());
    let rate_s = rate.map(|r| r.to_string());
    let mut args = vec![
        "blast",
        "--target",
        STACK_DISCARD,
        "--warm",
        STACK_ECHO,
        "--size",
        &size,
        "--count",
        &count_s,
    ];
    if let Some(r) = &rate_s {
        args.extend(["--rate", r]);
    }
    let done = ns.run(exe, &args, Duration::from_secs(60));
    let blast = Blast::from_output(&done.stdout)
        .ok_or_else(|| format!("the sender printed no result: {}", done.describe()))?;
    // Let the queues drain before counting.
    std::thread::sleep(Duration::from_millis(300));
    let tap_dropped = tap_dropped()? - dropped_before;
    let end = stack.interrupt();
    let delivered = *end
        .stats
        .get("service.discard.udp_datagrams")
        .ok_or_else(|| format!("netstackd printed no discard counter: {:?}", end.exit))?;
    let stack_drops = end
        .stats
        .iter()
        .filter(|(n, v)| **v > 0 && (is_drop_reason(n) || n.contains("queue_full")))
        .map(|(n, v)| (n.clone(), *v))
        .collect();
    Ok(OneWayRow {
        offered: rate,
        blast,
        delivered,
        tap_dropped,
        stack_drops,
    })
}
