//! TCP throughput, request rates and memory, netstack beside Linux and smoltcp, in one run:
//!
//! 1. Over a TAP in a namespace, the Linux kernel as the peer: bulk where Linux sends and the
//!    stack receives (discard), bulk where the stack sends and Linux receives (chargen), 1-byte
//!    request/response on one connection (echo), and connect, 1 byte each way, close. The stack
//!    is a netstack `Stack` over a `TapDevice` serving with `TcpListener`, four threads a port
//!    each serving one connection at a time (`bench-tcp serve-netstack`).
//! 2. In the same run: Linux to Linux over a veth pair between two namespaces (a std::net
//!    server, `serve-std`), the baseline for the two request cases; smoltcp over the same kind
//!    of TAP in its single-threaded poll loop (`serve-smoltcp`), the baseline for both bulk
//!    directions.
//! 3. Two netstack stacks over the in-memory link, one bulk flow, beside smoltcp to smoltcp over
//!    its loopback device in one thread.
//! 4. Resident bytes per idle established connection, 10,000 of them between two in-memory
//!    stacks, in a process of their own (`bench-tcp idle`).
//!
//! Every system under test is driven by the same client, this binary's `client` role, run
//! inside the client's namespace. Reported, never asserted: one Markdown table on stdout with
//! each figure's ratio to its case's baseline, a progress line per step on stderr, and one
//! JSON object per row in `results/bench-tcp-<unix time>.jsonl`.
//!
//! ```text
//! cargo build --release -p netstack-tests --bin bench-tcp && target/release/bench-tcp
//! target/release/bench-tcp --quick            # under a minute, small sizes (CI's smoke run)
//! target/release/bench-tcp --bytes 256M --seconds 3 --workers 2 --connections 10000
//! ```
//! As root for the TAP and veth cases (without root only the in-memory cases run). Addresses:
//! 192.0.2.1 (kernel) and 192.0.2.2 (stack) on the TAPs, 198.51.100.1 and .2 on the veth pair.
//! The namespaces go when the run ends, fails, or gets SIGINT, SIGTERM or SIGHUP.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::{Parser, Subcommand};
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::default_workers;
use netstack_tests::bench_tcp::{
    begin_run, catch, idle_connections, markdown, median_run, memory_bulk, park_forever,
    serve_netstack, serve_smoltcp, serve_std, size_text, smoltcp_loopback, std_client,
    tune_client_namespace, veth_pair, write_results, Case, Figure, Idle, LoopbackFraming, Mode,
    Outcome, Progress, Row, RunInfo, System, TapSetup, SERVE_READY, SMOLTCP_BUFFER,
};
use netstack_tests::netns::{run_with_deadline, Daemon, NetNs};
use netstack_tests::system::missing_requirements;

#[derive(Parser)]
#[command(
    about = "TCP bulk, request/response, connect-request-close and memory: netstack over a TAP \
             beside smoltcp over a TAP and Linux over veth, and two stacks in memory"
)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// A short run (all cases under a minute): 64 MiB bulk, 1 s per request case, one run of
    /// each, 1,000 idle connections; what CI runs as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Bytes per bulk transfer (suffixes K, M, G: binary units). Default 1G (quick: 64M).
    #[arg(long, value_parser = parse_size)]
    bytes: Option<u64>,
    /// Seconds per request/response and connect-request-close run. Default 5 (quick: 1).
    #[arg(long)]
    seconds: Option<f64>,
    /// Network and transport workers of each netstack stack (default: half the cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Idle connections for the memory figure. Default 10000 (quick: 1000).
    #[arg(long)]
    connections: Option<usize>,
    /// Runs of every TAP, veth and in-memory bulk measurement, the systems taking turns; the
    /// table shows each one's median and range. Default 3 (quick: 1).
    #[arg(long)]
    repeat: Option<usize>,
    /// smoltcp's socket buffers on its TAP (its examples use 65535; netstack's are 256 KiB).
    #[arg(long, default_value_t = SMOLTCP_BUFFER)]
    smoltcp_buffer: usize,
    /// Where the JSON lines go.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Only the in-memory cases (no root needed).
    #[arg(long)]
    memory_only: bool,
}

/// What this binary does when the benchmark runs it in a namespace or a process of its own.
#[derive(Subcommand)]
enum Role {
    /// Runs one measurement against a server with std's client; prints a `result …` line.
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
    /// A netstack stack over a new TAP serving echo (7), discard (9) and chargen (19).
    ServeNetstack {
        #[command(flatten)]
        tap: TapArgs,
        #[arg(long, default_value_t = default_workers())]
        workers: usize,
    },
    /// smoltcp over a new TAP in its single-threaded poll loop: discard (9), chargen (19).
    ServeSmoltcp {
        #[command(flatten)]
        tap: TapArgs,
        /// Receive and send buffer of each socket, in bytes.
        #[arg(long, default_value_t = SMOLTCP_BUFFER)]
        buffer: usize,
    },
    /// Echo, discard and chargen on std's sockets.
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

const TAP_STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VETH_LEFT: &str = "198.51.100.1/24";
const VETH_RIGHT: &str = "198.51.100.2/24";
const VETH_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

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
        Some(role) => run_role(role),
        None => run_benchmark(&args),
    }
}

fn run_role(role: Role) -> ExitCode {
    let result = match role {
        Role::Client {
            mode,
            target,
            bytes,
            seconds,
        } => std_client(mode, target, bytes, Duration::from_secs_f64(seconds))
            .map(|o| println!("{}", o.to_line())),
        Role::ServeNetstack { tap, workers } => {
            serve_netstack(&tap.setup(), workers).map(|_stack| {
                println!("{SERVE_READY} netstack on {} as {}", tap.tap, tap.addr.addr);
                park_forever()
            })
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
            eprintln!("bench-tcp idle: {n} connections open")
        })
        .map(|i| {
            println!(
                "idle count={} rss_before={} rss_after={} elapsed_ns={} retries={}",
                i.count,
                i.rss_before,
                i.rss_after,
                i.elapsed.as_nanos(),
                i.retries
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-tcp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What one run measures, and how big.
struct Plan {
    exe: PathBuf,
    bytes: u64,
    seconds: f64,
    workers: usize,
    connections: usize,
    smoltcp_buffer: usize,
    repeat: usize,
}

/// What a measurement prints under its progress line.
fn report(progress: &Progress, run: &Result<Figure, String>) {
    progress.report(
        run.as_ref()
            .map(|f| format!("{:.3} {}", f.value(), f.unit())),
    );
}

fn run_benchmark(args: &Args) -> ExitCode {
    // Before any thread starts, so every thread inherits the blocked signals and only the
    // watcher sees them.
    let (started, exe) = match begin_run("bench-tcp") {
        Ok(begun) => begun,
        Err(e) => {
            eprintln!("bench-tcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let q = args.quick;
    let plan = Plan {
        exe,
        bytes: args.bytes.unwrap_or(if q { 64 << 20 } else { 1 << 30 }),
        seconds: args.seconds.unwrap_or(if q { 1.0 } else { 5.0 }),
        workers: args.workers.unwrap_or_else(default_workers),
        connections: args.connections.unwrap_or(if q { 1_000 } else { 10_000 }),
        smoltcp_buffer: args.smoltcp_buffer,
        repeat: args.repeat.unwrap_or(if q { 1 } else { 3 }).max(1),
    };
    let missing = missing_requirements(&["sysctl"]);
    let with_system = !args.memory_only && missing.is_empty();
    if !args.memory_only && !missing.is_empty() {
        eprintln!(
            "bench-tcp: the TAP and veth cases need {}: running only the in-memory cases",
            missing.join(", ")
        );
    }
    let mut progress = Progress::new(
        "bench-tcp",
        1 + 3 * plan.repeat + if with_system { 1 + 10 * plan.repeat } else { 0 },
    );
    let mut rows = Vec::new();
    if with_system {
        rows.extend(system_rows(&plan, &mut progress));
    }
    rows.extend(memory_rows(&plan, &mut progress));

    println!(
        "bench-tcp: bulk {} per transfer, {} s per request case, {} run(s) of each, {} network \
         + {} transport worker(s) per netstack stack, smoltcp buffers {} B, {} CPUs, {:.0} s in \
         all{}",
        size_text(plan.bytes),
        plan.seconds,
        plan.repeat,
        plan.workers,
        plan.workers,
        plan.smoltcp_buffer,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        progress.elapsed().as_secs_f64(),
        if with_system {
            ""
        } else {
            " (in-memory cases only)"
        }
    );
    println!();
    print!("{}", markdown(&rows));
    let run = RunInfo {
        started,
        quick: q,
        workers: plan.workers,
        bytes: plan.bytes,
        seconds: plan.seconds,
        repeat: plan.repeat,
        smoltcp_buffer: plan.smoltcp_buffer,
    };
    match write_results(&args.results, &rows, &run) {
        Ok(path) => eprintln!("bench-tcp: JSON lines in {}", path.display()),
        Err(e) => eprintln!(
            "bench-tcp: could not write results to {}: {e}",
            args.results.display()
        ),
    }
    ExitCode::SUCCESS
}

/// A system under test: the namespace its client runs in, the server's address, and the
/// guards that keep it serving (dropped, they kill it and remove its namespaces).
struct Sut {
    client_ns: NetNs,
    target: Ipv4Addr,
    _server: Daemon,
    _server_ns: Option<NetNs>,
}

/// netstack or smoltcp over a TAP in a new namespace; the client runs in the same one.
fn tap_sut(plan: &Plan, role: &str) -> Result<Sut, String> {
    let ns = NetNs::new();
    tune_client_namespace(&ns);
    let workers = plan.workers.to_string();
    let buffer = plan.smoltcp_buffer.to_string();
    let mut args = vec![role];
    if role == "serve-netstack" {
        args.extend(["--workers", &workers]);
    } else {
        args.extend(["--buffer", &buffer]);
    }
    let server = Daemon::start(&ns, &plan.exe, &args, SERVE_READY);
    Ok(Sut {
        client_ns: ns,
        target: TAP_STACK,
        _server: server,
        _server_ns: None,
    })
}

/// Linux to Linux: a std server on the right end of a veth pair, the client on the left.
fn veth_sut(plan: &Plan) -> Result<Sut, String> {
    let (left, right) = veth_pair(VETH_LEFT, VETH_RIGHT);
    tune_client_namespace(&left);
    let addr = VETH_SERVER.to_string();
    let server = Daemon::start(
        &right,
        &plan.exe,
        &["serve-std", "--addr", &addr],
        SERVE_READY,
    );
    Ok(Sut {
        client_ns: left,
        target: VETH_SERVER,
        _server: server,
        _server_ns: Some(right),
    })
}

/// The client role in `sut`'s namespace against its server.
fn client(sut: &Sut, plan: &Plan, mode: Mode) -> Result<Outcome, String> {
    let target = format!("{}:{}", sut.target, mode.port());
    let (bytes, seconds) = (plan.bytes.to_string(), plan.seconds.to_string());
    let args = [
        "client",
        "--mode",
        mode.name(),
        "--target",
        &target,
        "--bytes",
        &bytes,
        "--seconds",
        &seconds,
    ];
    // Whatever the client's own timeouts, a run slower than 100 Mbit/s is killed.
    let deadline = Duration::from_secs_f64(30.0 + plan.seconds + plan.bytes as f64 / 12.5e6);
    let done = sut.client_ns.run(&plan.exe, &args, deadline);
    Outcome::from_output(&done.stdout).ok_or_else(|| {
        let err = done.stderr.trim();
        if err.is_empty() {
            format!("no result: {}", done.describe())
        } else {
            err.to_string()
        }
    })
}

/// The TAP and veth cases: every server up at once, then each case on each system in turn.
fn system_rows(plan: &Plan, progress: &mut Progress) -> Vec<Row> {
    progress.step("starting netstack and smoltcp on TAPs, Linux on a veth pair");
    let suts: Vec<(System, Result<Sut, String>)> = vec![
        (
            System::NetstackTap,
            catch(|| tap_sut(plan, "serve-netstack")),
        ),
        (System::SmoltcpTap, catch(|| tap_sut(plan, "serve-smoltcp"))),
        (System::LinuxVeth, catch(|| veth_sut(plan))),
    ];
    for (system, sut) in &suts {
        if let Err(e) = sut {
            eprintln!("    {} not started: {e}", system.title());
        }
    }
    let size = size_text(plan.bytes);
    let cases = [
        (
            Case::Discard,
            Mode::Discard,
            format!("Linux sends, the stack receives (discard, {size})"),
            &[System::NetstackTap, System::SmoltcpTap, System::LinuxVeth][..],
        ),
        (
            Case::Chargen,
            Mode::Chargen,
            format!("Linux receives, the stack sends (chargen, {size})"),
            &[System::NetstackTap, System::SmoltcpTap, System::LinuxVeth][..],
        ),
        (
            Case::RequestResponse,
            Mode::RequestResponse,
            "1-byte request/response on one connection".to_string(),
            &[System::NetstackTap, System::LinuxVeth][..],
        ),
        (
            Case::ConnectRequestClose,
            Mode::ConnectRequestClose,
            "connect, 1 byte each way, close".to_string(),
            &[System::NetstackTap, System::LinuxVeth][..],
        ),
    ];
    let mut rows = Vec::new();
    for (case, mode, title, systems) in cases {
        rows.extend(interleaved(
            plan,
            progress,
            case,
            &title,
            systems,
            |system| {
                let sut = suts
                    .iter()
                    .find(|(s, _)| *s == system)
                    .map(|(_, sut)| sut.as_ref().map_err(|e| format!("not started: {e}")));
                match sut {
                    Some(Ok(sut)) => client(sut, plan, mode).map(|o| match case {
                        Case::Discard | Case::Chargen => Figure::Bulk(o),
                        _ => Figure::Exchanges(o),
                    }),
                    Some(Err(e)) => Err(e),
                    None => Err("no such system".to_string()),
                }
            },
        ));
    }
    rows
}

/// Measures each of `systems` `plan.repeat` times, the systems taking turns so that a change in
/// the machine's load falls on all of them alike; one row per system with its median run.
fn interleaved(
    plan: &Plan,
    progress: &mut Progress,
    case: Case,
    title: &str,
    systems: &[System],
    mut measure: impl FnMut(System) -> Result<Figure, String>,
) -> Vec<Row> {
    let mut runs: Vec<Vec<Result<Figure, String>>> = vec![Vec::new(); systems.len()];
    for n in 1..=plan.repeat {
        for (i, &system) in systems.iter().enumerate() {
            let which = if plan.repeat > 1 {
                format!(", run {n} of {}", plan.repeat)
            } else {
                String::new()
            };
            progress.step(&format!("{title}: {}{which}", system.title()));
            let run = catch(|| measure(system));
            report(progress, &run);
            runs[i].push(run);
        }
    }
    systems
        .iter()
        .zip(runs)
        .map(|(&system, runs)| {
            let (result, samples) = median_run(runs);
            Row {
                case,
                case_title: title.to_string(),
                system,
                result,
                samples,
            }
        })
        .collect()
}

/// The in-process cases: one bulk flow between two stacks, smoltcp's loopback, and the idle
/// connections (in a process of their own, so no earlier case's freed memory hides their cost).
fn memory_rows(plan: &Plan, progress: &mut Progress) -> Vec<Row> {
    let title = format!(
        "two stacks in one process, one bulk flow ({})",
        size_text(plan.bytes)
    );
    let systems = [
        System::NetstackMemory,
        System::SmoltcpLoopback,
        System::SmoltcpLoopbackBenchmark,
    ];
    let mut rows = interleaved(
        plan,
        progress,
        Case::MemoryBulk,
        &title,
        &systems,
        |system| {
            match system {
                System::NetstackMemory => memory_bulk(plan.bytes, plan.workers),
                System::SmoltcpLoopbackBenchmark => {
                    smoltcp_loopback(plan.bytes, LoopbackFraming::Benchmark)
                }
                _ => smoltcp_loopback(plan.bytes, LoopbackFraming::Ethernet),
            }
            .map(Figure::Bulk)
        },
    );
    let title = format!(
        "resident memory per idle established connection ({} connections)",
        plan.connections
    );
    progress.step(&title);
    let result = catch(|| idle_in_own_process(&plan.exe, plan)).map(Figure::Idle);
    report(progress, &result);
    let (result, samples) = median_run(vec![result]);
    rows.push(Row {
        case: Case::IdleConnections,
        case_title: title,
        system: System::NetstackMemory,
        result,
        samples,
    });
    rows
}

/// `bench-tcp idle` as a child process; what it printed.
fn idle_in_own_process(exe: &Path, plan: &Plan) -> Result<Idle, String> {
    let mut cmd = Command::new(exe);
    cmd.args([
        "idle",
        "--connections",
        &plan.connections.to_string(),
        "--workers",
        &plan.workers.to_string(),
    ]);
    let deadline = Duration::from_secs(60) + Duration::from_millis(20) * plan.connections as u32;
    let done = run_with_deadline(cmd, deadline)?;
    let line = done
        .stdout
        .lines()
        .find(|l| l.starts_with("idle "))
        .ok_or_else(|| format!("no result: {}", done.describe()))?;
    let field = |key: &str| -> Result<u64, String> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            .ok_or_else(|| format!("no {key} in {line:?}"))
    };
    Ok(Idle {
        count: field("count")?,
        rss_before: field("rss_before")?,
        rss_after: field("rss_after")?,
        elapsed: Duration::from_nanos(field("elapsed_ns")?),
        retries: field("retries")?,
    })
}
