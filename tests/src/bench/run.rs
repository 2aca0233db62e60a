//! What every benchmark program shares: the namespaces of a run (a veth pair, a client
//! namespace tuned for back-to-back connects, removal on a signal), the start of a run, a
//! failed case that still lets the others report, the progress line on stderr, medians, and
//! the small formatting and JSON helpers the tables and result files use.

use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::netns::{list_namespaces, NetNs, NS_PREFIX};

/// What every server role prints once it serves.
pub const SERVE_READY: &str = "serve ready";

// ---------------------------------------------------------------------------------------------
// Namespaces.

/// Two namespaces joined by a veth pair created inside them (the root namespace is never
/// touched): `left` on the first, `right` on the second.
pub fn veth_pair(left: &str, right: &str) -> (NetNs, NetNs) {
    let (l, r) = (NetNs::new(), NetNs::new());
    let d = Duration::from_secs(5);
    l.run_ok(
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
            r.name(),
        ],
        d,
    );
    for (ns, dev, cidr) in [(&l, "veth0", left), (&r, "veth1", right)] {
        ns.run_ok("ip", &["addr", "add", cidr, "dev", dev], d);
        ns.run_ok("ip", &["link", "set", dev, "up"], d);
    }
    (l, r)
}

/// Lets a client namespace open connections back to back: the whole port range, and (with
/// timestamps, which Linux and netstack both speak) ports in TIME-WAIT reused for new
/// connections. Both are settings of this namespace only.
pub fn tune_client_namespace(ns: &NetNs) {
    let d = Duration::from_secs(5);
    ns.run_ok(
        "sysctl",
        &["-q", "-w", "net.ipv4.ip_local_port_range=1024 65535"],
        d,
    );
    ns.run_ok("sysctl", &["-q", "-w", "net.ipv4.tcp_tw_reuse=1"], d);
}

/// Kills everything inside the namespaces this process made and deletes them: what a signal
/// handler does before the process exits, since the [`NetNs`] guards will not drop then.
pub fn remove_own_namespaces() {
    let mine = format!("{NS_PREFIX}{}-", std::process::id());
    let names = std::panic::catch_unwind(list_namespaces).unwrap_or_default();
    for name in names.iter().filter(|n| n.starts_with(&mine)) {
        for _ in 0..50 {
            let pids = std::process::Command::new("ip")
                .args(["netns", "pids", name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            let pids: Vec<i32> = pids
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: kill has no memory preconditions; a pid that has gone yields ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", name])
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// Running a benchmark: signals, progress, failed cases, server roles.

/// Blocks SIGINT, SIGTERM and SIGHUP and starts a thread that waits for them: on one it
/// removes this run's namespaces (killing what runs inside) and exits 130. Call it before any
/// other thread starts, so every thread inherits the blocked signals and only the watcher sees
/// them; `bench` names the program in the message.
pub fn watch_signals(bench: &'static str) {
    // SAFETY: the set is a plain value initialised by sigemptyset before use; a null old-set
    // pointer is allowed.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: both pointers are to live locals.
        unsafe { libc::sigwait(&set, &mut sig) };
        eprintln!("{bench}: signal {sig}: removing this run's namespaces");
        remove_own_namespaces();
        std::process::exit(130);
    });
}

/// The start of a benchmark run: [`watch_signals`] (call it before any thread starts), then the
/// start time in seconds since the Unix epoch and this program's path, for the roles it runs.
pub fn begin_run(bench: &'static str) -> Result<(u64, PathBuf), String> {
    watch_signals(bench);
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    Ok((started, exe))
}

/// Runs `f`, turning a harness panic (which says what went wrong) into an error, so one failed
/// case still lets the others report.
pub fn catch<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the harness panicked (message above)".to_string()))
}

/// A server role serves from its own threads until it is killed.
pub fn park_forever() -> ! {
    loop {
        thread::park();
    }
}

/// One progress line on stderr per step: which, of how many, how long the run has taken.
pub struct Progress {
    bench: &'static str,
    done: usize,
    total: usize,
    start: Instant,
}

impl Progress {
    /// `total` steps of the program `bench`, starting now.
    pub fn new(bench: &'static str, total: usize) -> Progress {
        Progress {
            bench,
            done: 0,
            total,
            start: Instant::now(),
        }
    }

    /// Announces the next step.
    pub fn step(&mut self, what: &str) {
        self.done += 1;
        eprintln!(
            "{} [{}/{}, {:.0} s] {what} …",
            self.bench,
            self.done,
            self.total,
            self.start.elapsed().as_secs_f64()
        );
    }

    /// What the step measured (already written out), or why it measured nothing.
    pub fn report(&self, run: Result<String, &String>) {
        match run {
            Ok(text) => eprintln!("    {text}"),
            Err(e) => eprintln!("    not measured: {e}"),
        }
    }

    /// Since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// The median of `runs` by `value` (the lower middle one of an even count; failed runs left
/// out, the first failure when none succeeded) and every successful run's value in the order run.
pub fn median_by<T: Clone>(
    runs: Vec<Result<T, String>>,
    value: impl Fn(&T) -> f64,
) -> (Result<T, String>, Vec<f64>) {
    let samples: Vec<f64> = runs.iter().flatten().map(&value).collect();
    let mut ok: Vec<T> = runs.iter().flatten().cloned().collect();
    ok.sort_by(|a, b| value(a).total_cmp(&value(b)));
    let result = if ok.is_empty() {
        Err(runs
            .into_iter()
            .find_map(Result::err)
            .unwrap_or_else(|| "not run".to_string()))
    } else {
        Ok(ok.swap_remove((ok.len() - 1) / 2))
    };
    (result, samples)
}

/// A count with thousands separators: `1,234,567`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    netstack_application::services::status::json_string(s)
}

/// `v` as a JSON number (`null` when not finite).
pub fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".to_string()
    }
}

/// Writes `lines` to `dir/<bench>-<started>.jsonl` (creating `dir`); the file's path.
pub fn write_jsonl(dir: &Path, bench: &str, started: u64, lines: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{bench}-{started}.jsonl"));
    std::fs::write(&path, lines)?;
    Ok(path)
}

/// A byte count as the table says it: `1 GiB`, `64 MiB`, `1500 B`.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_binary_units() {
        assert_eq!(size_text(1 << 30), "1 GiB");
        assert_eq!(size_text(64 << 20), "64 MiB");
        assert_eq!(size_text(1500), "1500 B");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }

    #[test]
    fn the_median_is_the_lower_middle_success_and_failures_count_only_when_all_fail() {
        let v = |x: &f64| *x;
        let (m, samples) = median_by(vec![Ok(3.0), Err("x".into()), Ok(1.0), Ok(2.0)], v);
        assert_eq!(m, Ok(2.0));
        assert_eq!(samples, [3.0, 1.0, 2.0]);
        assert_eq!(median_by(vec![Ok(4.0), Ok(1.0)], v).0, Ok(1.0));
        let (m, samples) = median_by::<f64>(vec![Err("first".into()), Err("second".into())], v);
        assert_eq!(m, Err("first".to_string()));
        assert!(samples.is_empty());
    }
}
