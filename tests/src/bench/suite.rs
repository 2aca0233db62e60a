//! Issue 9's scenarios, as `netstack-bench` runs them: which systems each case measures, the
//! servers started for them (netstack and smoltcp over TAPs in namespaces of their own, Linux
//! on a veth pair between two), and the rows that come out.
//!
//! 1. TCP bulk over the TAP, both directions, netstack with offloads on and off, beside
//!    smoltcp over a TAP and Linux to Linux over veth.
//! 2. TCP bulk between two stacks in one process, 1, 2, 4 and 16 flows, beside smoltcp's loopback.
//! 3. TCP request/response and connect–request–close over the TAP and in memory, beside Linux.
//! 4. UDP request/response and the highest one-way rate with no loss, beside Linux.
//! 5. Resident bytes per idle established connection.
//! 6. Scaling: 1–3 again with several worker and TAP queue counts.
//! 7. ICMP echo (kept from the older `bench-icmp`): in memory, and `ping -f` over the TAP beside
//!    `tap-echo-floor`.
//!
//! Every TAP and veth case is driven by a client role of the same binary run inside the
//! client's namespace (see [`Role`] for the names the binary must give its roles).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::icmp::memory_icmp;
use super::inproc::{memory_bulk, memory_exchanges, Idle};
use super::report::{Case, Figure, Row, System};
use super::run::{catch, median_by, tune_client_namespace, veth_pair, Progress, SERVE_READY};
use super::smoltcp::{smoltcp_loopback, LoopbackFraming};
use super::tcp::{Mode, NetstackOptions, Outcome, ECHO_PORT};
use super::udp::{best_clean_step, memory_round_trips, OneWayStep, Summary};
use crate::netns::{run_with_deadline, Daemon, NetNs, FLOOR_READY};
use crate::peers::PingSummary;
use crate::system::find_workspace_binary;

/// The stack's address on every TAP, the kernel side being 192.0.2.1.
pub const TAP_STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const VETH_LEFT: &str = "198.51.100.1/24";
pub const VETH_RIGHT: &str = "198.51.100.2/24";
pub const VETH_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
/// Every scenario, in the order run.
pub const SCENARIOS: [u8; 7] = [1, 2, 3, 4, 5, 6, 7];

/// The names of the binary's roles, as the suite runs them.
pub struct Role;

impl Role {
    pub const CLIENT: &'static str = "client";
    pub const UDP_CLIENT: &'static str = "udp-client";
    pub const UDP_BLAST: &'static str = "udp-blast";
    pub const SERVE_NETSTACK: &'static str = "serve-netstack";
    pub const SERVE_SMOLTCP: &'static str = "serve-smoltcp";
    pub const SERVE_STD: &'static str = "serve-std";
    pub const IDLE: &'static str = "idle";
}

/// What one run measures, and how big.
#[derive(Debug, Clone)]
pub struct Plan {
    /// This program, for the roles.
    pub exe: PathBuf,
    pub quick: bool,
    /// Bytes per bulk transfer.
    pub bytes: u64,
    /// Seconds per request/response and connect–request–close run.
    pub seconds: f64,
    /// Runs of every measurement of scenarios 1–4, the systems taking turns.
    pub repeat: usize,
    /// netstack's network and transport workers outside the scaling scenario.
    pub workers: usize,
    /// smoltcp's socket buffers on its TAP.
    pub smoltcp_buffer: usize,
    /// Idle connection counts of scenario 5.
    pub connections: Vec<usize>,
    /// UDP request sizes of scenario 4.
    pub udp_sizes: Vec<usize>,
    /// Offered one-way rates, climbed until a step loses datagrams (`None`: as fast as it goes).
    pub ladder: Vec<Option<f64>>,
    /// Seconds per one-way step.
    pub step_seconds: f64,
    /// (workers, queues) of scenario 6.
    pub scaling: Vec<(usize, usize)>,
    /// Echo requests per `ping -f` of scenario 7.
    pub pings: u64,
    /// Whether the TAP and veth cases run (root, tools); else only the in-process ones.
    pub with_system: bool,
}

impl Plan {
    /// Steps the progress line counts for `scenarios`.
    pub fn steps(&self, scenarios: &[u8]) -> usize {
        let sys = usize::from(self.with_system);
        let r = self.repeat;
        scenarios
            .iter()
            .map(|s| match s {
                1 => sys * (1 + 8 * r),
                2 => 6 * r,
                3 => 2 * r * (1 + 2 * sys),
                4 => self.udp_sizes.len() * r * (1 + 2 * sys) + sys * 2 * self.ladder.len(),
                5 => self.connections.len(),
                6 => self.scaling.len() * 5 * sys + 3 * self.scaling_workers().len(),
                7 => 1 + 2 * sys,
                _ => 0,
            })
            .sum()
    }

    fn scaling_workers(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.scaling.iter().map(|&(w, _)| w).collect();
        w.sort_unstable();
        w.dedup();
        w
    }

    fn netstack(&self, offload: bool) -> NetstackOptions {
        NetstackOptions {
            workers: self.workers,
            offload,
            queues: 1,
        }
    }
}

/// A server under test: the namespace its client runs in, the server's address, what it said
/// when ready, and the guards that keep it serving (dropped, they kill it and remove its
/// namespaces).
pub struct Sut {
    client_ns: NetNs,
    target: Ipv4Addr,
    pub ready_line: String,
    _server: Daemon,
    _server_ns: Option<NetNs>,
}

/// The servers a scenario can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Netstack(NetstackOptions),
    Smoltcp,
    Linux,
    Floor,
}

fn start(plan: &Plan, server: Server) -> Result<Sut, String> {
    if let Server::Linux = server {
        let (left, right) = veth_pair(VETH_LEFT, VETH_RIGHT);
        tune_client_namespace(&left);
        let addr = VETH_SERVER.to_string();
        let d = Daemon::start(
            &right,
            &plan.exe,
            &[Role::SERVE_STD, "--addr", &addr],
            SERVE_READY,
        );
        return Ok(Sut {
            client_ns: left,
            target: VETH_SERVER,
            ready_line: d.ready_line.clone(),
            _server: d,
            _server_ns: Some(right),
        });
    }
    let ns = NetNs::new();
    tune_client_namespace(&ns);
    let (w, q, b) = match server {
        Server::Netstack(o) => (o.workers.to_string(), o.queues.to_string(), o.offload),
        _ => (String::new(), String::new(), false),
    };
    let buffer = plan.smoltcp_buffer.to_string();
    let d = match server {
        Server::Netstack(_) => {
            let offload = if b { "on" } else { "off" };
            let args = [
                Role::SERVE_NETSTACK,
                "--workers",
                &w,
                "--queues",
                &q,
                "--offload",
                offload,
            ];
            Daemon::start(&ns, &plan.exe, &args, SERVE_READY)
        }
        Server::Smoltcp => {
            let args = [Role::SERVE_SMOLTCP, "--buffer", &buffer];
            Daemon::start(&ns, &plan.exe, &args, SERVE_READY)
        }
        _ => {
            let floor = find_workspace_binary("tap-echo-floor", "TAP_ECHO_FLOOR")?;
            Daemon::start(&ns, &floor, &[], FLOOR_READY)
        }
    };
    Ok(Sut {
        client_ns: ns,
        target: TAP_STACK,
        ready_line: d.ready_line.clone(),
        _server: d,
        _server_ns: None,
    })
}

/// Servers started on first use and kept until the pool is dropped.
pub struct Pool<'a> {
    plan: &'a Plan,
    started: Vec<(Server, Result<Sut, String>)>,
}

impl<'a> Pool<'a> {
    pub fn new(plan: &'a Plan) -> Pool<'a> {
        Pool {
            plan,
            started: Vec::new(),
        }
    }

    /// `server`, started now if it has not been; why it could not start.
    pub fn get(&mut self, server: Server) -> Result<&Sut, String> {
        if !self.started.iter().any(|(s, _)| *s == server) {
            let sut = catch(|| start(self.plan, server));
            match &sut {
                Ok(s) => eprintln!("    started {server:?}: {}", s.ready_line),
                Err(e) => eprintln!("    {server:?} not started: {e}"),
            }
            self.started.push((server, sut));
        }
        let (_, sut) = self
            .started
            .iter()
            .find(|(s, _)| *s == server)
            .expect("just started");
        sut.as_ref().map_err(|e| format!("not started: {e}"))
    }
}

/// The client role in `sut`'s namespace, `args` after the role's name; its whole stdout.
fn run_client(
    sut: &Sut,
    plan: &Plan,
    role: &str,
    args: &[&str],
    deadline: Duration,
) -> Result<String, String> {
    let mut all = vec![role];
    all.extend_from_slice(args);
    let done = sut.client_ns.run(&plan.exe, &all, deadline);
    if done.status.success() {
        Ok(done.stdout)
    } else {
        let err = done.stderr.trim();
        Err(if err.is_empty() {
            format!("no result: {}", done.describe())
        } else {
            err.to_string()
        })
    }
}

/// One TCP measurement by the client role against `sut`.
fn tcp_client(sut: &Sut, plan: &Plan, mode: Mode) -> Result<Figure, String> {
    let target = format!("{}:{}", sut.target, mode.port());
    let (bytes, seconds) = (plan.bytes.to_string(), plan.seconds.to_string());
    let args = [
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
    let out = run_client(sut, plan, Role::CLIENT, &args, deadline)?;
    let o = Outcome::from_output(&out).ok_or_else(|| format!("no result line in {out:?}"))?;
    Ok(match mode {
        Mode::Discard | Mode::Chargen => Figure::Bulk(o),
        _ => Figure::Exchanges(o),
    })
}

fn udp_client(sut: &Sut, plan: &Plan, size: usize) -> Result<Figure, String> {
    let target = format!("{}:{ECHO_PORT}", sut.target);
    let (size, seconds) = (size.to_string(), plan.seconds.to_string());
    let args = ["--target", &target, "--size", &size, "--seconds", &seconds];
    let deadline = Duration::from_secs_f64(plan.seconds + 15.0);
    let out = run_client(sut, plan, Role::UDP_CLIENT, &args, deadline)?;
    Summary::from_output(&out)
        .map(Figure::Datagrams)
        .ok_or_else(|| format!("no result in {out:?}"))
}

/// Climbs the one-way ladder against `sut`'s sink until a step loses datagrams.
fn one_way(sut: &Sut, plan: &Plan, progress: &mut Progress, name: &str) -> Result<Figure, String> {
    let mut steps = Vec::new();
    for &rate in &plan.ladder {
        let shown = rate.map_or("as fast as it goes".to_string(), |r| format!("{r:.0}/s"));
        progress.step(&format!("UDP one-way, {name}: offered {shown}"));
        let count = (rate.unwrap_or(400_000.0) * plan.step_seconds) as u64;
        let (sink, echo) = (
            format!("{}:9", sut.target),
            format!("{}:{ECHO_PORT}", sut.target),
        );
        let count_s = count.to_string();
        let rate_s = rate.map(|r| r.to_string());
        let mut args = vec![
            "--target", &sink, "--warm", &echo, "--size", "64", "--count", &count_s,
        ];
        if let Some(r) = &rate_s {
            args.extend(["--rate", r]);
        }
        let step = run_client(sut, plan, Role::UDP_BLAST, &args, Duration::from_secs(60)).and_then(
            |out| {
                OneWayStep::from_output(&out, rate).ok_or_else(|| format!("no result in {out:?}"))
            },
        );
        progress.report(step.as_ref().map(|s| {
            format!(
                "sent {:.0}/s, {} of {} lost",
                s.blast.per_sec(),
                s.lost(),
                s.blast.sent
            )
        }));
        let step = step?;
        let lossy = step.lost() > 0 || step.blast.send_errors > 0;
        steps.push(step);
        if lossy {
            break;
        }
    }
    let n = steps.len();
    match best_clean_step(&steps) {
        Some(best) => Ok(Figure::OneWay(best.clone(), n)),
        None => Err(format!(
            "every step lost datagrams, the first at {:?}/s",
            steps[0].offered
        )),
    }
}

fn ping_flood(sut: &Sut, plan: &Plan) -> Result<Figure, String> {
    let ip = sut.target.to_string();
    let warm = sut
        .client_ns
        .run("ping", &["-n", "-c1", "-W2", &ip], Duration::from_secs(5));
    if !warm.status.success() {
        return Err(format!("no answer to a first ping: {}", warm.describe()));
    }
    let secs = 60 + plan.pings / 1000;
    let (c, w) = (format!("-c{}", plan.pings), format!("-w{secs}"));
    let done = sut.client_ns.run(
        "ping",
        &["-n", "-q", "-f", &c, "-s56", &w, &ip],
        Duration::from_secs(secs + 10),
    );
    let s = PingSummary::parse(&done.stdout)
        .ok_or_else(|| format!("no ping summary: {}", done.describe()))?;
    let note = s.rtt.map_or(String::new(), |r| {
        format!(
            "rtt avg {:.0} µs, max {:.0} µs",
            r.avg_ms * 1e3,
            r.max_ms * 1e3
        )
    });
    Ok(Figure::Echoes {
        per_sec: s.rate(),
        note: format!("{note}; {} of {} lost", s.lost(), s.transmitted),
    })
}

/// The runs of one case, `systems` taking turns `plan.repeat` times so that a change in the
/// machine's load falls on all of them alike; one row per system with its median run.
#[allow(clippy::too_many_arguments)]
fn interleaved(
    plan: &Plan,
    progress: &mut Progress,
    scenario: u8,
    case: Case,
    systems: &[System],
    scaled: Option<(usize, usize)>,
    mut measure: impl FnMut(System) -> Result<Figure, String>,
) -> Vec<Row> {
    let systems: Vec<System> = systems
        .iter()
        .copied()
        .filter(|s| plan.with_system || in_process(*s))
        .collect();
    let mut runs: Vec<Vec<Result<Figure, String>>> = vec![Vec::new(); systems.len()];
    for n in 1..=plan.repeat {
        for (i, &system) in systems.iter().enumerate() {
            let which = if plan.repeat > 1 {
                format!(", run {n} of {}", plan.repeat)
            } else {
                String::new()
            };
            let cfg = scaled.map_or(String::new(), |(w, q)| {
                format!(" ({w} workers, {q} queues)")
            });
            progress.step(&format!("{}: {}{cfg}{which}", case.title(), system.title()));
            let run = catch(|| measure(system));
            progress.report(
                run.as_ref()
                    .map(|f| format!("{} {}", f.value_text(f.value()), f.unit())),
            );
            runs[i].push(run);
        }
    }
    systems
        .into_iter()
        .zip(runs)
        .map(|(system, runs)| {
            let (result, samples) = median_by(runs, Figure::value);
            let (workers, queues) = match (scaled, system) {
                (Some((w, q)), System::NetstackTap { .. }) => (Some(w), Some(q)),
                (Some((w, _)), _) => (Some(w), None),
                (None, _) => (None, None),
            };
            Row {
                scenario,
                case,
                system,
                workers,
                queues,
                result,
                samples,
            }
        })
        .collect()
}

fn in_process(s: System) -> bool {
    matches!(
        s,
        System::NetstackMemory | System::SmoltcpLoopback | System::SmoltcpLoopbackBenchmark
    )
}

fn server_of(plan: &Plan, s: System) -> Server {
    match s {
        System::NetstackTap { offload } => Server::Netstack(plan.netstack(offload)),
        System::SmoltcpTap => Server::Smoltcp,
        System::TapEchoFloor => Server::Floor,
        _ => Server::Linux,
    }
}

const ON: System = System::NetstackTap { offload: true };
const OFF: System = System::NetstackTap { offload: false };

/// Runs `scenarios` in order; every row, the scenarios' own order kept.
pub fn run_scenarios(plan: &Plan, scenarios: &[u8], progress: &mut Progress) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut pool = Pool::new(plan);
    for &s in scenarios {
        let before = rows.len();
        match s {
            1 => {
                if plan.with_system {
                    progress.step("starting netstack (offloads on and off) and smoltcp on TAPs, Linux on veth");
                    for sys in [ON, OFF, System::SmoltcpTap, System::LinuxVeth] {
                        let _ = pool.get(server_of(plan, sys));
                    }
                }
                for (case, mode) in [
                    (Case::StackReceives, Mode::Discard),
                    (Case::StackSends, Mode::Chargen),
                ] {
                    let systems = [ON, OFF, System::SmoltcpTap, System::LinuxVeth];
                    rows.extend(interleaved(
                        plan,
                        progress,
                        1,
                        case,
                        &systems,
                        None,
                        |sys| tcp_client(pool.get(server_of(plan, sys))?, plan, mode),
                    ));
                }
            }
            2 => {
                for flows in [1, 2, 4, 16] {
                    let systems: &[System] = if flows == 1 {
                        &[
                            System::NetstackMemory,
                            System::SmoltcpLoopback,
                            System::SmoltcpLoopbackBenchmark,
                        ]
                    } else {
                        &[System::NetstackMemory]
                    };
                    let case = Case::MemoryBulk { flows };
                    rows.extend(interleaved(plan, progress, 2, case, systems, None, |sys| {
                        match sys {
                            System::SmoltcpLoopback => {
                                smoltcp_loopback(plan.bytes, LoopbackFraming::Ethernet)
                            }
                            System::SmoltcpLoopbackBenchmark => {
                                smoltcp_loopback(plan.bytes, LoopbackFraming::Benchmark)
                            }
                            _ => memory_bulk(plan.bytes, flows, plan.workers),
                        }
                        .map(Figure::Bulk)
                    }));
                }
            }
            3 => {
                for (case, mode) in [
                    (Case::RequestResponse, Mode::RequestResponse),
                    (Case::ConnectRequestClose, Mode::ConnectRequestClose),
                ] {
                    let systems = [ON, System::NetstackMemory, System::LinuxVeth];
                    rows.extend(interleaved(
                        plan,
                        progress,
                        3,
                        case,
                        &systems,
                        None,
                        |sys| match sys {
                            System::NetstackMemory => memory_exchanges(
                                mode,
                                Duration::from_secs_f64(plan.seconds),
                                plan.workers,
                            )
                            .map(Figure::Exchanges),
                            _ => tcp_client(pool.get(server_of(plan, sys))?, plan, mode),
                        },
                    ));
                }
            }
            4 => rows.extend(udp_rows(plan, progress, &mut pool)),
            5 => rows.extend(idle_rows(plan, progress)),
            6 => {
                // The servers of 1, 3 and 4 go first: only the scaling servers run now.
                drop(std::mem::replace(&mut pool, Pool::new(plan)));
                rows.extend(scaling_rows(plan, progress));
            }
            7 => rows.extend(icmp_rows(plan, progress, &mut pool)),
            _ => {}
        }
        eprintln!(
            "    scenario {s}: {} rows, {:.0} s into the run",
            rows.len() - before,
            progress.elapsed().as_secs_f64()
        );
    }
    rows
}

fn udp_rows(plan: &Plan, progress: &mut Progress, pool: &mut Pool) -> Vec<Row> {
    let mut rows = Vec::new();
    let seconds = Duration::from_secs_f64(plan.seconds);
    for &size in &plan.udp_sizes {
        let systems = [ON, System::NetstackMemory, System::LinuxVeth];
        let case = Case::UdpRequestResponse { size };
        rows.extend(interleaved(
            plan,
            progress,
            4,
            case,
            &systems,
            None,
            |sys| match sys {
                System::NetstackMemory => {
                    memory_round_trips(size, seconds, plan.workers).map(Figure::Datagrams)
                }
                _ => udp_client(pool.get(server_of(plan, sys))?, plan, size),
            },
        ));
    }
    if plan.with_system {
        for sys in [ON, System::LinuxVeth] {
            let result = pool
                .get(server_of(plan, sys))
                .and_then(|sut| catch(|| one_way(sut, plan, progress, sys.title())));
            let samples = result.iter().map(Figure::value).collect();
            rows.push(Row {
                scenario: 4,
                case: Case::UdpOneWay,
                system: sys,
                workers: None,
                queues: None,
                result,
                samples,
            });
        }
    }
    rows
}

fn idle_rows(plan: &Plan, progress: &mut Progress) -> Vec<Row> {
    plan.connections
        .iter()
        .map(|&count| {
            let case = Case::IdleConnections { count };
            progress.step(&case.title());
            let result =
                catch(|| idle_in_own_process(&plan.exe, count, plan.workers)).map(Figure::Idle);
            progress.report(
                result
                    .as_ref()
                    .map(|f| format!("{} {}", f.value_text(f.value()), f.unit())),
            );
            let samples = result.iter().map(Figure::value).collect();
            Row {
                scenario: 5,
                case,
                system: System::NetstackMemory,
                workers: None,
                queues: None,
                result,
                samples,
            }
        })
        .collect()
}

/// The idle role as a child process (so no earlier case's freed memory hides the cost); what it
/// printed.
fn idle_in_own_process(exe: &Path, count: usize, workers: usize) -> Result<Idle, String> {
    let mut cmd = Command::new(exe);
    cmd.args([
        Role::IDLE,
        "--connections",
        &count.to_string(),
        "--workers",
        &workers.to_string(),
    ]);
    let deadline = Duration::from_secs(60) + Duration::from_millis(20) * count as u32;
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
        ports: field("ports")?,
    })
}

/// The idle role's line, for [`idle_in_own_process`].
pub fn idle_line(i: &Idle) -> String {
    format!(
        "idle count={} rss_before={} rss_after={} elapsed_ns={} retries={} ports={}",
        i.count,
        i.rss_before,
        i.rss_after,
        i.elapsed.as_nanos(),
        i.retries,
        i.ports
    )
}

/// Scenario 6: for each (workers, queues), netstack over a TAP with them (bulk both ways,
/// request/response, connect–request–close); for each worker count, once, the in-memory
/// pair (one bulk flow, request/response, connect–request–close).
fn scaling_rows(plan: &Plan, progress: &mut Progress) -> Vec<Row> {
    let mut rows = Vec::new();
    let seconds = Duration::from_secs_f64(plan.seconds);
    let modes = [
        (Case::StackReceives, Mode::Discard),
        (Case::StackSends, Mode::Chargen),
        (Case::RequestResponse, Mode::RequestResponse),
        (Case::ConnectRequestClose, Mode::ConnectRequestClose),
    ];
    let mut memory_done = Vec::new();
    for &(workers, queues) in &plan.scaling {
        let mut pool = Pool::new(plan);
        let server = Server::Netstack(NetstackOptions {
            workers,
            offload: true,
            queues,
        });
        if plan.with_system {
            progress.step(&format!(
                "starting netstack on a TAP with {workers} workers and {queues} queues"
            ));
            let _ = pool.get(server);
            for (case, mode) in modes {
                rows.extend(interleaved(
                    &Plan {
                        repeat: 1,
                        ..plan.clone()
                    },
                    progress,
                    6,
                    case,
                    &[ON],
                    Some((workers, queues)),
                    |_| tcp_client(pool.get(server)?, plan, mode),
                ));
            }
        }
        if memory_done.contains(&workers) {
            continue;
        }
        memory_done.push(workers);
        let one = Plan {
            repeat: 1,
            ..plan.clone()
        };
        rows.extend(interleaved(
            &one,
            progress,
            6,
            Case::MemoryBulk { flows: 1 },
            &[System::NetstackMemory],
            Some((workers, queues)),
            |_| memory_bulk(plan.bytes, 1, workers).map(Figure::Bulk),
        ));
        for (case, mode) in &modes[2..] {
            rows.extend(interleaved(
                &one,
                progress,
                6,
                *case,
                &[System::NetstackMemory],
                Some((workers, queues)),
                |_| memory_exchanges(*mode, seconds, workers).map(Figure::Exchanges),
            ));
        }
    }
    rows
}

fn icmp_rows(plan: &Plan, progress: &mut Progress, pool: &mut Pool) -> Vec<Row> {
    let one = Plan {
        repeat: 1,
        ..plan.clone()
    };
    let seconds = Duration::from_secs_f64(plan.seconds);
    interleaved(
        &one,
        progress,
        7,
        Case::IcmpEcho,
        &[System::NetstackMemory, ON, System::TapEchoFloor],
        None,
        |sys| match sys {
            System::NetstackMemory => catch(|| {
                let p = memory_icmp(1, 56, seconds);
                let note = format!(
                    "p50 {:.0} µs, p99 {:.0} µs",
                    p.p50.as_secs_f64() * 1e6,
                    p.p99.as_secs_f64() * 1e6
                );
                Ok(Figure::Echoes {
                    per_sec: p.per_sec,
                    note,
                })
            }),
            _ => ping_flood(pool.get(server_of(plan, sys))?, plan),
        },
    )
}
