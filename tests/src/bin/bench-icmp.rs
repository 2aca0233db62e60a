//! ICMP echo through the whole pipeline over a TAP, against the floor: `ping -f` (flood, root)
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
    let mut results = Vec::new();
    for t in &targets {
        let result = match &t.path {
            // The harness panics with what went wrong; one target failing still reports the other.
            Ok(path) => std::panic::catch_unwind(|| flood(t, path, &args))
                .unwrap_or_else(|_| Err("the harness panicked (message above)".to_string())),
            Err(e) => Err(e.clone()),
        };
        results.push((t.name, result));
    }
    println!();
    println!(
        "{:<16} {:>9} {:>9} {:>7} {:>9} {:>11}  {:>26}",
        "target", "sent", "received", "lost", "time ms", "replies/s", "rtt min/avg/max ms"
    );
    for (name, r) in &results {
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
    if let [(_, Ok(floor)), (_, Ok(stack))] = &results[..] {
        let avg = |s: &PingSummary| s.rtt.map(|r| r.avg_ms).unwrap_or(f64::NAN);
        println!(
            "\nnetstackd / floor: {:.2}x the rate, {:.2}x the average rtt",
            stack.rate() / floor.rate(),
            avg(stack) / avg(floor)
        );
    }
    ExitCode::SUCCESS
}
