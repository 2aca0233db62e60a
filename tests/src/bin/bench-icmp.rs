//! ICMP echo through the whole pipeline. First between two stacks over the in-memory link (one
//! pinger, then several in parallel; no root needed). Then over a TAP, against the floor: `ping -f` (flood, root)
//! from a network namespace to netstackd and to tap-echo-floor, one after the other in the same
//! run, then a table of replies per second and round-trip times for each, and their ratio.
//! Reported, never asserted.
//!
//! `cargo build --release --workspace --bins && target/release/bench-icmp [--count 100000]
//! [--size 56]` (as root). netstackd is found as the tests find it (`$NETSTACKD`, else beside
//! this binary); if it is missing the floor is measured alone and the table says so.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netstack_tests::bench_mem;
use netstack_tests::netns::{Daemon, NetNs, FLOOR_READY, NETSTACKD_READY};
use netstack_tests::peers::PingSummary;
use netstack_tests::system::{find_workspace_binary, missing_requirements};

#[derive(Parser)]
struct Args {
    /// Echo requests per target.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// ICMP payload bytes.
    #[arg(long, default_value_t = 56)]
    size: usize,
    /// Runs per target, alternating targets, so the noise of a shared machine shows; the ratio
    /// uses each target's median run.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds per in-memory case.
    #[arg(long, default_value_t = 2.0)]
    memory_seconds: f64,
    /// Only the in-memory part (no root needed).
    #[arg(long)]
    memory_only: bool,
}

const STACK_IP: &str = "192.0.2.2";

struct Target {
    name: &'static str,
    path: Result<PathBuf, String>,
    ready: &'static str,
}

/// One target's flood: the daemon is started in its own namespace, warmed up with one ping
/// (so ARP is resolved before timing starts), flooded, and stopped.
fn flood(target: &Target, path: &Path, args: &Args) -> Result<PingSummary, String> {
    let ns = NetNs::new();
    let daemon = Daemon::start(&ns, path, &[], target.ready);
    let warm = ns.run(
        "ping",
        &["-n", "-c1", "-W2", STACK_IP],
        Duration::from_secs(5),
    );
    if !warm.status.success() {
        return Err(format!(
            "{} did not answer a first ping: {}",
            target.name,
            warm.describe()
        ));
    }
    // At ~4 µs a frame either way even a slow stack finishes 100,000 within the deadline.
    let ping_deadline = 60 + args.count / 1000;
    let (c, s, w) = (
        format!("-c{}", args.count),
        format!("-s{}", args.size),
        format!("-w{ping_deadline}"),
    );
    let done = ns.run(
        "ping",
        &["-n", "-q", "-f", &c, &s, &w, STACK_IP],
        Duration::from_secs(ping_deadline + 10),
    );
    let end = daemon.interrupt();
    if end.exit.status.and_then(|s| s.code()) != Some(0) {
        eprintln!(
            "bench-icmp: {} did not exit 0 after SIGINT: {:?}",
            target.name, end.exit
        );
    }
    PingSummary::parse(&done.stdout).ok_or_else(|| {
        format!(
            "ping -f against {} printed no summary: {}",
            target.name,
            done.describe()
        )
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let secs = Duration::from_secs_f64(args.memory_seconds);
    println!("ICMP echo between two stacks over the in-memory link, {secs:?} per case");
    let rows: Vec<_> = [(1, 56), (4, 56), (16, 56), (1, 1472), (4, 1472)]
        .into_iter()
        .map(|(pingers, size)| bench_mem::memory_icmp(pingers, size, secs))
        .collect();
    bench_mem::print_table(&rows, Some(rows[0].name.as_str()));
    println!();
    if args.memory_only {
        return ExitCode::SUCCESS;
    }
    let missing = missing_requirements(&["ping"]);
    if !missing.is_empty() {
        eprintln!("bench-icmp: needs {}", missing.join(", "));
        return ExitCode::FAILURE;
    }
    let targets = [
        Target {
            name: "tap-echo-floor",
            path: find_workspace_binary("tap-echo-floor", "TAP_ECHO_FLOOR"),
            ready: FLOOR_READY,
        },
        Target {
            name: "netstackd",
            path: find_workspace_binary("netstackd", "NETSTACKD"),
            ready: NETSTACKD_READY,
        },
    ];
    println!(
        "ping -f -c {} -s {} {STACK_IP}, each target in its own namespace over a TAP",
        args.count, args.size
    );
    let mut runs: Vec<(&str, Result<PingSummary, String>)> = Vec::new();
    for _ in 0..args.rounds {
        for t in &targets {
            let result = match &t.path {
                // The harness panics saying what went wrong; one failed run still lets the
                // others report.
                Ok(path) => std::panic::catch_unwind(|| flood(t, path, &args))
                    .unwrap_or_else(|_| Err("the harness panicked (message above)".to_string())),
                Err(e) => Err(e.clone()),
            };
            runs.push((t.name, result));
        }
    }
    println!();
    println!(
        "{:<16} {:>9} {:>9} {:>7} {:>9} {:>11}  {:>26}",
        "target", "sent", "received", "lost", "time ms", "replies/s", "rtt min/avg/max ms"
    );
    for (name, r) in &runs {
        match r {
            Ok(s) => {
                let rtt = s
                    .rtt
                    .map(|r| format!("{:.3}/{:.3}/{:.3}", r.min_ms, r.avg_ms, r.max_ms))
                    .unwrap_or_else(|| "-".to_string());
                println!(
                    "{:<16} {:>9} {:>9} {:>7} {:>9} {:>11.0}  {:>26}",
                    name,
                    s.transmitted,
                    s.received,
                    s.lost(),
                    s.time_ms,
                    s.rate(),
                    rtt
                );
            }
            Err(e) => println!("{name:<16} not measured: {e}"),
        }
    }
    let median = |name: &str| -> Option<(f64, f64)> {
        let ok: Vec<&PingSummary> = runs
            .iter()
            .filter(|(n, _)| *n == name)
            .filter_map(|(_, r)| r.as_ref().ok())
            .collect();
        let mid = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied()
        };
        let rate = mid(ok.iter().map(|s| s.rate()).collect())?;
        let avg_rtt = mid(ok.iter().filter_map(|s| s.rtt).map(|r| r.avg_ms).collect())?;
        Some((rate, avg_rtt))
    };
    println!();
    for t in &targets {
        match median(t.name) {
            Some((rate, rtt)) => {
                println!(
                    "{:<16} median {rate:>9.0} replies/s, avg rtt {rtt:.3} ms",
                    t.name
                )
            }
            None => println!("{:<16} no successful run", t.name),
        }
    }
    if let (Some((floor_rate, floor_rtt)), Some((stack_rate, stack_rtt))) =
        (median(targets[0].name), median(targets[1].name))
    {
        println!(
            "netstackd / floor: {:.2}x the rate, {:.2}x the average rtt",
            stack_rate / floor_rate,
            stack_rtt / floor_rtt
        );
    }
    ExitCode::SUCCESS
}
