//! HTTP requests a second and latency, netstackd beside the same server on std::net, in one
//! run: wrk asks for `/echo` (an empty 200) at 1, 16 and 256 connections, each kept alive and
//! not (`-H 'Connection: close'`), against
//!
//! 1. netstackd on a TAP in a namespace of its own (stack 192.0.2.2, kernel side 192.0.2.1),
//!    wrk on the kernel side in the same namespace;
//! 2. `netstack_application::http::Server` with the same `/echo` route on std::net
//!    (`bench-http serve-std`), in a namespace of its own at 198.51.100.2, wrk in another at
//!    198.51.100.1 across a veth pair: the baseline.
//!
//! Each case runs on both systems in turn, `--repeat` times. Reported, never asserted: one
//! Markdown table on stdout with each netstackd figure's ratio to the std::net one beside it, a
//! progress line per step on stderr, and one JSON object per row in
//! `results/bench-http-<unix time>.jsonl`.
//!
//! ```text
//! cargo build --release -p netstack-bin --bin netstackd
//! cargo build --release -p netstack-tests --bin bench-http && target/release/bench-http
//! target/release/bench-http --quick     # under a minute: 1 and 16 connections, 1 s, one run
//! ```
//! As root, with wrk and netstackd (found beside this binary, or `$NETSTACKD`). The namespaces
//! go when the run ends, fails, or gets SIGINT, SIGTERM or SIGHUP.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use netstack_runtime::default_workers;
use netstack_tests::bench::run::{
    begin_run, catch, park_forever, tune_client_namespace, veth_pair, Progress, SERVE_READY,
};
use netstack_tests::bench_http::{
    markdown, parse_wrk, serve_std, write_results, Case, Row, RunInfo, System, Wrk, ECHO_PATH,
    HTTP_PORT,
};
use netstack_tests::netns::{Daemon, NetNs, Netstackd};
use netstack_tests::system::{missing_requirements, REQUIRE_VAR};

#[derive(Parser)]
#[command(
    about = "HTTP requests a second and latency under wrk: netstackd over a TAP beside the same \
             server on std::net over a veth pair"
)]
struct Args {
    #[command(subcommand)]
    role: Option<Role>,
    /// A short run (under a minute): 1 and 16 connections, 1 s per run, one run of each;
    /// what CI runs as a smoke test.
    #[arg(long)]
    quick: bool,
    /// Seconds per wrk run (whole seconds). Default 5 (quick: 1).
    #[arg(long)]
    seconds: Option<f64>,
    /// Runs of every case on every system, the systems taking turns; the table shows each
    /// one's median and range. Default 3 (quick: 1).
    #[arg(long)]
    repeat: Option<usize>,
    /// netstackd's network and transport workers (default: half the cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Where the JSON lines go.
    #[arg(long, default_value = "results")]
    results: PathBuf,
}

/// What this binary does when the benchmark runs it in a namespace.
#[derive(Subcommand)]
enum Role {
    /// The HTTP server with netstackd's `/echo` route on std::net at ADDR:80.
    ServeStd {
        #[arg(long)]
        addr: Ipv4Addr,
    },
}

const TAP_STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const VETH_LEFT: &str = "198.51.100.1/24";
const VETH_RIGHT: &str = "198.51.100.2/24";
const VETH_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn main() -> ExitCode {
    let args = Args::parse();
    match args.role {
        Some(Role::ServeStd { addr }) => match serve_std(addr) {
            Ok(_server) => {
                println!("{SERVE_READY} std HTTP on {addr}:{HTTP_PORT}");
                park_forever()
            }
            Err(e) => {
                eprintln!("bench-http: {e}");
                ExitCode::FAILURE
            }
        },
        None => run_benchmark(&args),
    }
}

/// A system under test: the namespace wrk runs in, the URL it asks for, and the guards that
/// keep the server serving (dropped, they kill it and remove the namespaces).
struct Sut {
    client_ns: NetNs,
    url: String,
    _netstackd: Option<Netstackd>,
    _server: Option<Daemon>,
    _server_ns: Option<NetNs>,
}

fn url(addr: Ipv4Addr) -> String {
    format!("http://{addr}:{HTTP_PORT}{ECHO_PATH}")
}

/// netstackd on a TAP in a new namespace (its defaults: tap0, 192.0.2.2, kernel side
/// 192.0.2.1, HTTP on port 80); wrk runs in the same namespace.
fn netstackd_sut(workers: usize) -> Result<Sut, String> {
    let ns = NetNs::new();
    tune_client_namespace(&ns);
    let workers = workers.to_string();
    let stack = Netstackd::start(&ns, &["--workers", &workers, "--log-level", "warn"]);
    Ok(Sut {
        client_ns: ns,
        url: url(TAP_STACK),
        _netstackd: Some(stack),
        _server: None,
        _server_ns: None,
    })
}

/// The std::net server on the right end of a veth pair, wrk on the left.
fn std_sut(exe: &std::path::Path) -> Result<Sut, String> {
    let (left, right) = veth_pair(VETH_LEFT, VETH_RIGHT);
    tune_client_namespace(&left);
    let addr = VETH_SERVER.to_string();
    let server = Daemon::start(&right, exe, &["serve-std", "--addr", &addr], SERVE_READY);
    Ok(Sut {
        client_ns: left,
        url: url(VETH_SERVER),
        _netstackd: None,
        _server: Some(server),
        _server_ns: Some(right),
    })
}

/// One wrk run of `case` against `sut`.
fn run_wrk(sut: &Sut, case: Case, seconds: f64) -> Result<Wrk, String> {
    let args = case.wrk_args(&sut.url, seconds);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let deadline = Duration::from_secs_f64(30.0 + seconds);
    let done = sut.client_ns.run("wrk", &args, deadline);
    if !done.status.success() {
        return Err(format!("wrk failed: {}", done.describe()));
    }
    parse_wrk(&done.stdout)
}

fn run_benchmark(args: &Args) -> ExitCode {
    // Before any thread starts, so every thread inherits the blocked signals and only the
    // watcher sees them.
    let (started, exe) = match begin_run("bench-http") {
        Ok(begun) => begun,
        Err(e) => {
            eprintln!("bench-http: {e}");
            return ExitCode::FAILURE;
        }
    };
    let missing = missing_requirements(&["wrk", "sysctl"]);
    if !missing.is_empty() {
        eprintln!("bench-http: needs {}: not run", missing.join(", "));
        let required = std::env::var(REQUIRE_VAR).as_deref() == Ok("1");
        return if required {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let q = args.quick;
    let seconds = args.seconds.unwrap_or(if q { 1.0 } else { 5.0 }).max(1.0);
    let repeat = args.repeat.unwrap_or(if q { 1 } else { 3 }).max(1);
    let workers = args.workers.unwrap_or_else(default_workers);
    let cases = if q { Case::quick() } else { Case::full() };
    let mut progress = Progress::new("bench-http", 1 + cases.len() * repeat * System::ALL.len());

    progress.step("starting netstackd on a TAP and the std::net server on a veth pair");
    let suts: Vec<(System, Result<Sut, String>)> = vec![
        (System::NetstackdTap, catch(|| netstackd_sut(workers))),
        (System::StdVeth, catch(|| std_sut(&exe))),
    ];
    for (system, sut) in &suts {
        if let Err(e) = sut {
            eprintln!("    {} not started: {e}", system.title());
        }
    }

    let mut rows = Vec::new();
    for &case in &cases {
        let mut runs: Vec<Vec<Result<Wrk, String>>> = vec![Vec::new(); suts.len()];
        for n in 1..=repeat {
            for (i, (system, sut)) in suts.iter().enumerate() {
                let which = if repeat > 1 {
                    format!(", run {n} of {repeat}")
                } else {
                    String::new()
                };
                progress.step(&format!("{}: {}{which}", case.title(), system.title()));
                let run = match sut {
                    Ok(sut) => catch(|| run_wrk(sut, case, seconds)),
                    Err(e) => Err(format!("not started: {e}")),
                };
                progress.report(run.as_ref().map(|w| {
                    format!(
                        "{:.0} requests/s, p50 {:?}, p99 {:?}, {} errors",
                        w.per_sec,
                        w.p50,
                        w.p99,
                        w.errors()
                    )
                }));
                runs[i].push(run);
            }
        }
        for ((system, _), runs) in suts.iter().zip(runs) {
            rows.push(Row::from_runs(case, *system, runs));
        }
    }
    let elapsed = progress.elapsed();
    drop(suts);

    println!(
        "bench-http: wrk against GET {ECHO_PATH}, {seconds} s per run, {repeat} run(s) of each, \
         {workers} network + {workers} transport worker(s) in netstackd, {} CPUs, {:.0} s in all",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        elapsed.as_secs_f64(),
    );
    println!();
    print!("{}", markdown(&rows));
    let run = RunInfo {
        started,
        quick: q,
        workers,
        seconds,
        repeat,
    };
    match write_results(&args.results, &rows, &run) {
        Ok(path) => eprintln!("bench-http: JSON lines in {}", path.display()),
        Err(e) => eprintln!(
            "bench-http: could not write results to {}: {e}",
            args.results.display()
        ),
    }
    // A row not measured is a failure to run (what a smoke run is there to catch); the
    // figures themselves are never judged.
    let failed = rows.iter().filter(|r| r.result.is_err()).count();
    if failed > 0 {
        eprintln!("bench-http: {failed} of {} rows not measured", rows.len());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
