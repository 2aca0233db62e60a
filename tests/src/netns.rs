//! Network namespaces for the system tests, and the processes that run inside them.
//!
//! [`NetNs`] creates a uniquely named namespace and removes it on drop, also while a test
//! panics: every process still inside is killed first. [`NsChild`] is a long-lived process in a
//! namespace whose stdout can be waited on line by line; [`Daemon`] is one that announces
//! itself with a ready line (netstackd, the TAP echo floor). Everything that waits has a
//! deadline, and a hang panics saying what never arrived.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use crate::peers::parse_stats;

/// Prefix of every namespace this harness creates: `nst-<pid>-<n>`.
pub const NS_PREFIX: &str = "nst-";
/// How many lines of a child's output are kept for failure messages.
const KEPT_LINES: usize = 200;
/// How long the `ip` calls made while cleaning up may take.
const CLEANUP_DEADLINE: Duration = Duration::from_secs(5);
/// How often a wait polls a child that has not exited yet.
const POLL: Duration = Duration::from_millis(5);

static NEXT_NS: AtomicUsize = AtomicUsize::new(0);
static REMOVE_STALE: Once = Once::new();

/// A network namespace owned by this process; dropped, it kills what runs inside and goes.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

/// A command that ran to completion.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Both streams, labelled, for failure messages.
    pub fn describe(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl NetNs {
    /// Creates `nst-<pid>-<n>` with its loopback up. Panics saying why when it cannot.
    pub fn new() -> NetNs {
        REMOVE_STALE.call_once(remove_stale_namespaces);
        let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NS_PREFIX}{}-{n}", std::process::id());
        let mut add = Command::new("ip");
        add.args(["netns", "add", &name]);
        let added = run_with_deadline(add, CLEANUP_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            added.status.success(),
            "ip netns add {name} failed: {}",
            added.describe()
        );
        // From here on Drop removes the namespace whatever fails next.
        let ns = NetNs { name };
        ns.run_ok("ip", &["link", "set", "lo", "up"], CLEANUP_DEADLINE);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` to be run inside the namespace (`ip netns exec NAME program`). `ip` execs the
    /// program itself, so the child's pid is the program's.
    ///
    /// The program gets SIGKILL if the thread that started it dies first (PR_SET_PDEATHSIG), so
    /// a test process killed from outside (a runner's timeout) leaves no daemon serving; the
    /// empty namespace it leaves is removed by the next run.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        c
    }

    /// Runs `program args` inside the namespace to completion, whatever its exit status; panics
    /// if it is still running after `deadline` (it is killed first).
    pub fn run(&self, program: impl AsRef<OsStr>, args: &[&str], deadline: Duration) -> Finished {
        let mut c = self.cmd(program);
        c.args(args);
        run_with_deadline(c, deadline).unwrap_or_else(|e| panic!("in {}: {e}", self.name))
    }

    /// Like [`run`](Self::run) but also panics, with the output, unless the exit status is 0.
    pub fn run_ok(
        &self,
        program: impl AsRef<OsStr>,
        args: &[&str],
        deadline: Duration,
    ) -> Finished {
        let program = program.as_ref();
        let done = self.run(program, args, deadline);
        assert!(
            done.status.success(),
            "in {}: `{} {}` failed: {}",
            self.name,
            program.to_string_lossy(),
            args.join(" "),
            done.describe()
        );
        done
    }

    /// Starts a long-lived `program args` inside the namespace; dropping the guard kills it.
    pub fn spawn(&self, program: impl AsRef<OsStr>, args: &[&str]) -> NsChild {
        let program = program.as_ref();
        let what = format!("{} {}", program.to_string_lossy(), args.join(" "));
        let mut c = self.cmd(program);
        c.args(args);
        NsChild::spawn(c, what)
    }

    /// The MAC address the kernel side has learned for `ip` on `dev` (after some traffic).
    pub fn neighbor_mac(&self, ip: &str, dev: &str) -> Option<String> {
        let out = self.run_ok("ip", &["neigh", "show", ip, "dev", dev], CLEANUP_DEADLINE);
        let words: Vec<&str> = out.stdout.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "lladdr")?;
        words.get(at + 1).map(|m| m.to_string())
    }

    /// A veth pair: `name` here, `peer_name` in `peer`, both down and without addresses. Made
    /// inside this namespace and moved, so it never exists in the root namespace; it goes when
    /// either namespace does.
    pub fn add_veth(&self, name: &str, peer: &NetNs, peer_name: &str) {
        self.run_ok(
            "ip",
            &[
                "link", "add", name, "type", "veth", "peer", "name", peer_name, "netns", &peer.name,
            ],
            CLEANUP_DEADLINE,
        );
    }

    /// The pids of every process whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        ns_pids(&self.name)
    }
}

impl Default for NetNs {
    fn default() -> Self {
        NetNs::new()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Never panic here: a panic while a failed test unwinds would abort the whole run.
        if let Err(e) = remove_namespace(&self.name) {
            eprintln!("netns: could not remove {}: {e}", self.name);
        }
    }
}

/// Every namespace whose name starts with [`NS_PREFIX`].
pub fn list_namespaces() -> Vec<String> {
    let mut c = Command::new("ip");
    c.args(["netns", "list"]);
    let out = run_with_deadline(c, CLEANUP_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
    // Lines read `NAME` or `NAME (id: 3)`.
    out.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(str::to_string)
        .collect()
}

fn ns_pids(name: &str) -> Vec<i32> {
    let mut c = Command::new("ip");
    c.args(["netns", "pids", name]);
    match run_with_deadline(c, CLEANUP_DEADLINE) {
        Ok(out) => out
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Kills everything inside `name`, then deletes it.
fn remove_namespace(name: &str) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let pids = ns_pids(name);
        if pids.is_empty() {
            break;
        }
        if start.elapsed() > CLEANUP_DEADLINE {
            return Err(format!("processes {pids:?} still inside after SIGKILL"));
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions; a pid that has gone yields ESRCH.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        thread::sleep(Duration::from_millis(20));
    }
    let mut del = Command::new("ip");
    del.args(["netns", "del", name]);
    let done = run_with_deadline(del, CLEANUP_DEADLINE)?;
    if done.status.success() {
        Ok(())
    } else {
        Err(done.describe())
    }
}

/// Removes namespaces left by earlier runs of this harness that were killed before their
/// guards could drop (`nst-<pid>-<n>` whose pid no longer exists).
fn remove_stale_namespaces() {
    for name in list_namespaces() {
        let pid = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("netns: removing {name}, left behind by a run that died");
            if let Err(e) = remove_namespace(&name) {
                eprintln!("netns: could not remove {name}: {e}");
            }
        }
    }
}

/// Runs `cmd` with captured output; kills it and errs if it has not exited by `deadline`.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Result<Finished, String> {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start {what}: {e}"))?;
    let stdout = collect_all(child.stdout.take());
    let stderr = collect_all(child.stderr.take());
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < deadline => thread::sleep(POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let out = stdout
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_default();
                let err = stderr
                    .recv_timeout(Duration::from_secs(1))
                    .unwrap_or_default();
                return Err(format!(
                    "{what} did not finish within {deadline:?} (killed)\n--- stdout\n{out}--- \
                     stderr\n{err}"
                ));
            }
            Err(e) => return Err(format!("waiting for {what}: {e}")),
        }
    };
    // A grandchild that inherited the pipes could hold them open: bound that wait too.
    let pipe_deadline = Duration::from_secs(2);
    let stdout = stdout.recv_timeout(pipe_deadline).unwrap_or_default();
    let stderr = stderr.recv_timeout(pipe_deadline).unwrap_or_default();
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}

fn collect_all<R: Read + Send + 'static>(pipe: Option<R>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
        });
    }
    rx
}

/// The last [`KEPT_LINES`] lines of a stream, shared with the thread that reads it.
type Tail = Arc<Mutex<Vec<String>>>;

fn keep(tail: &Tail, line: String) {
    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
    if t.len() == KEPT_LINES {
        t.remove(0);
    }
    t.push(line);
}

fn show(tail: &Tail) -> String {
    tail.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
}

/// A long-lived process; dropping the guard kills it (SIGKILL) and reaps it.
pub struct NsChild {
    child: Child,
    what: String,
    lines: Receiver<String>,
    stdout_seen: Tail,
    stderr: Tail,
}

/// How a child ended after [`NsChild::interrupt`].
#[derive(Debug)]
pub struct Interrupted {
    /// `None` when it had not exited by the deadline and was killed.
    pub status: Option<ExitStatus>,
    /// From the signal to the exit (or to the deadline).
    pub elapsed: Duration,
    /// Stdout lines not yet consumed by a wait, up to the end of the stream.
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl NsChild {
    fn spawn(mut cmd: Command, what: String) -> NsChild {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {what}: {e}"));
        let (tx, lines) = mpsc::channel();
        let stdout_seen = Tail::default();
        let stderr = Tail::default();
        if let Some(out) = child.stdout.take() {
            let seen = stdout_seen.clone();
            thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    keep(&seen, line.clone());
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let tail = stderr.clone();
            thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    keep(&tail, line);
                }
            });
        }
        NsChild {
            child,
            what,
            lines,
            stdout_seen,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stdout line for which `wanted` holds (skipping others) and returns
    /// it; panics naming `what` if it has not arrived by `deadline` or the stream ended.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        deadline: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        let until = Instant::now() + deadline;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("{what} never arrived within {deadline:?}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_briefly();
                    self.fail(&format!("{what} never arrived: stdout closed ({status})"))
                }
            }
        }
    }

    /// Waits for a stdout line starting with `prefix`.
    pub fn wait_for_prefix(&mut self, prefix: &str, deadline: Duration) -> String {
        self.wait_for_line(&format!("a line starting with `{prefix}`"), deadline, |l| {
            l.starts_with(prefix)
        })
    }

    fn wait_briefly(&mut self) -> String {
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            if let Ok(Some(s)) = self.child.try_wait() {
                return format!("exited with {s}");
            }
            thread::sleep(POLL);
        }
        "still running".to_string()
    }

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{}: {msg}\n--- stdout (last lines)\n{}\n--- stderr (last lines)\n{}",
            self.what,
            show(&self.stdout_seen),
            show(&self.stderr)
        )
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory preconditions. The pid is our unreaped child, so it cannot
        // have been reused by another process.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// Sends SIGINT and waits up to `deadline` for the exit (then SIGKILL), returning the
    /// status, how long the exit took and what it printed.
    pub fn interrupt(&mut self, deadline: Duration) -> Interrupted {
        self.signal_and_wait(libc::SIGINT, deadline)
    }

    /// Sends `signal` and waits up to `deadline` for the exit (then SIGKILL), returning the
    /// status, how long the exit took and what it printed.
    pub fn signal_and_wait(&mut self, signal: i32, deadline: Duration) -> Interrupted {
        let sent = Instant::now();
        self.signal(signal);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if sent.elapsed() < deadline => thread::sleep(POLL),
                _ => break None,
            }
        };
        let elapsed = sent.elapsed();
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The stream ends when the process (and whatever inherited its stdout) is gone.
        let mut stdout = Vec::new();
        let until = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            stdout.push(line);
        }
        Interrupted {
            status,
            elapsed,
            stdout,
            stderr: show(&self.stderr),
        }
    }

    /// What the process wrote to stderr so far (its last lines).
    pub fn stderr(&self) -> String {
        show(&self.stderr)
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A server that prints a ready line when it serves (netstackd, tap-echo-floor).
pub struct Daemon {
    pub child: NsChild,
    pub ready_line: String,
}

/// A daemon's end after SIGINT, with the `stat` lines it printed.
#[derive(Debug)]
pub struct Shutdown {
    pub exit: Interrupted,
    /// `layer.name` → value, from the `stat <layer>.<name> <value>` lines.
    pub stats: BTreeMap<String, u64>,
}

impl Shutdown {
    /// Every counter, one per line, for the test log.
    pub fn print_stats(&self) {
        for (name, value) in &self.stats {
            println!("stat {name} {value}");
        }
    }
}

/// How long a daemon may take to print its ready line.
pub const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long netstackd may take to exit after SIGINT (issue 2: "exits 0 within 2 s").
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(2);
/// What netstackd prints when it serves.
pub const NETSTACKD_READY: &str = "netstackd ready";
/// What tap-echo-floor prints when it serves.
pub const FLOOR_READY: &str = "floor ready";

impl Daemon {
    /// Starts `program args` in `ns` and waits up to [`READY_DEADLINE`] for `ready`.
    pub fn start(ns: &NetNs, program: &Path, args: &[&str], ready: &str) -> Daemon {
        let mut child = ns.spawn(program, args);
        let ready_line = child.wait_for_prefix(ready, READY_DEADLINE);
        Daemon { child, ready_line }
    }

    /// SIGINT, then the exit within [`SHUTDOWN_DEADLINE`] (else SIGKILL) and the counters.
    pub fn interrupt(mut self) -> Shutdown {
        let exit = self.child.interrupt(SHUTDOWN_DEADLINE);
        let stats = parse_stats(&exit.stdout);
        Shutdown { exit, stats }
    }
}

/// netstackd serving in a namespace; dropped, it is killed (SIGKILL).
pub struct Netstackd {
    daemon: Daemon,
}

impl Netstackd {
    /// Passes the system gate for `tools`, then starts netstackd with `args` in a new
    /// namespace; `None` when the gate skipped the test.
    pub fn start_gated(tools: &[&str], args: &[&str]) -> Option<(NetNs, Netstackd)> {
        if !crate::system::require_system(tools) {
            return None;
        }
        let ns = NetNs::new();
        let stack = Netstackd::start(&ns, args);
        Some((ns, stack))
    }

    /// SIGINT; asserts netstackd exited 0 (within the interrupt deadline) and returns its
    /// counters.
    pub fn stop_ok(self) -> Shutdown {
        let end = self.interrupt();
        assert_eq!(
            end.exit.status.and_then(|s| s.code()),
            Some(0),
            "netstackd did not exit 0 after SIGINT (None: killed at the deadline): {:?}",
            end.exit
        );
        end
    }

    /// Starts netstackd (found by [`netstackd_path`]) with `args` in `ns` and waits up to
    /// [`READY_DEADLINE`] for `netstackd ready`.
    ///
    /// With `NETSTACK_OFFLOAD=on|off` in the environment and no `--offload` in `args`, netstackd
    /// gets `--offload` with that value: CI runs the system tests once with netstackd's default
    /// (offloads on) and once more with them off.
    pub fn start(ns: &NetNs, args: &[&str]) -> Netstackd {
        let path = netstackd_path();
        let offload = std::env::var("NETSTACK_OFFLOAD").ok();
        let mut args = args.to_vec();
        if let Some(v) = offload.as_deref() {
            assert!(
                v == "on" || v == "off",
                "NETSTACK_OFFLOAD={v}: use on or off"
            );
            if !args.contains(&"--offload") {
                args.extend(["--offload", v]);
            }
        }
        Netstackd {
            daemon: Daemon::start(ns, &path, &args, NETSTACKD_READY),
        }
    }

    /// The process, to wait for more of its output or signal it.
    pub fn child(&mut self) -> &mut NsChild {
        &mut self.daemon.child
    }

    /// SIGINT; the exit status (`None`: still running after [`SHUTDOWN_DEADLINE`], so
    /// killed), how long the exit took, and the `stat` counters it printed.
    pub fn interrupt(self) -> Shutdown {
        self.daemon.interrupt()
    }
}

/// netstackd's path: `$NETSTACKD`, else `netstackd` beside the test executable's target dir.
/// Panics with the command that builds it.
pub fn netstackd_path() -> std::path::PathBuf {
    crate::system::find_workspace_binary("netstackd", "NETSTACKD").unwrap_or_else(|e| panic!("{e}"))
}
