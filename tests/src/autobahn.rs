//! The Autobahn|Testsuite (`wstest`) and the Python `websockets` client as WebSocket peers.
//!
//! `tests/autobahn/install.sh` installs `wstest` (Python 2.7, pinned in
//! `tests/autobahn/requirements.txt`) into `$NETSTACK_AUTOBAHN_PREFIX` (default
//! `/opt/netstack-autobahn`); `.ci/run` runs it and installs the pinned `websockets` into
//! `<prefix>/py3`. This module runs them inside a test's own namespace:
//!
//! - [`run_fuzzingclient`]: `wstest -m fuzzingclient` against a server's `ws://` URL, bounded in
//!   time, and the parsed [`Report`];
//! - [`start_fuzzingserver`] / [`start_echoserver`]: `wstest` as a server, behind a guard that
//!   kills it ([`WstestServer`]);
//! - [`run_ws_echo_check`]: `tests/autobahn/ws_echo_check.py` (text and binary messages up to
//!   1 MiB through the `websockets` client) against an echo endpoint;
//! - [`Report`]: `index.json` read into per-group behavior counts, a printable table, and
//!   [`Report::assert_nothing_failed`].
//!
//! Which cases: [`CONFORMANCE_CASES`] (1–7, 9, 10, 12.1, 13.1). Cases 12.1.* and 13.1.* test
//! permessage-deflate (RFC 7692); a peer that does not offer it declines the extension and
//! Autobahn reports those cases UNIMPLEMENTED, which is not a failure. Only FAILED is (in the
//! case's `behavior` or its `behaviorClose`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::netns::{run_with_deadline, Finished, NetNs, NsChild};
use crate::system::{gate, missing_requirements, Gate, REQUIRE_VAR};

/// The case groups issue 8 asks for, as `wstest` case patterns.
pub const CONFORMANCE_CASES: &[&str] = &[
    "1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*", "12.1.*", "13.1.*",
];

/// The behaviors Autobahn reports, in the order of the summary's columns.
pub const BEHAVIORS: [&str; 5] = [
    "OK",
    "NON-STRICT",
    "INFORMATIONAL",
    "UNIMPLEMENTED",
    "FAILED",
];

/// The variable naming the install folder, read by `tests/autobahn/wstest` too.
pub const PREFIX_VAR: &str = "NETSTACK_AUTOBAHN_PREFIX";
const DEFAULT_PREFIX: &str = "/opt/netstack-autobahn";
/// How long `wstest --help` and the import checks may take.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// `tests/autobahn`: the install script, launcher, spec templates and client script.
pub fn autobahn_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("autobahn")
}

/// The `wstest` launcher (`tests/autobahn/wstest`).
pub fn wstest_path() -> PathBuf {
    autobahn_dir().join("wstest")
}

/// The install folder: `$NETSTACK_AUTOBAHN_PREFIX`, else `/opt/netstack-autobahn`.
pub fn prefix() -> PathBuf {
    std::env::var_os(PREFIX_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PREFIX))
}

/// Where the pinned Python `websockets` lives (`<prefix>/py3`, `$NETSTACK_PYWS_DIR` overrides).
pub fn pyws_dir() -> PathBuf {
    std::env::var_os("NETSTACK_PYWS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| prefix().join("py3"))
}

/// `None` when `wstest --help` runs, else what to put in a skip or failure message.
pub fn missing_wstest() -> Option<String> {
    let mut c = Command::new(wstest_path());
    c.arg("--help");
    match run_with_deadline(c, PROBE_DEADLINE) {
        Ok(done) if done.status.success() => None,
        Ok(_) | Err(_) => Some(format!(
            "the Autobahn testsuite in {} (run tests/autobahn/install.sh)",
            prefix().display()
        )),
    }
}

/// `None` when `python3` imports `websockets` (from [`pyws_dir`] or its own path), else what
/// is missing.
pub fn missing_python_websockets() -> Option<String> {
    let mut c = Command::new("python3");
    c.args([
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]); import websockets.sync.client",
    ])
    .arg(pyws_dir());
    match run_with_deadline(c, PROBE_DEADLINE) {
        Ok(done) if done.status.success() => None,
        Ok(_) | Err(_) => Some(format!(
            "Python `websockets` for python3 in {} (see .ci/run)",
            pyws_dir().display()
        )),
    }
}

/// The gate of a WebSocket system test: like [`crate::system::require_system`] (root, TUN,
/// `ip` and `tools`), plus `wstest` when `need_wstest` and the Python `websockets` client when
/// `need_pyws`. Returns true when the test may run; otherwise prints `SKIPPED: …` to stderr and
/// returns false, or panics naming what is missing under `NETSTACK_REQUIRE_SYSTEM_TESTS=1`.
pub fn require_websocket_peers(tools: &[&str], need_wstest: bool, need_pyws: bool) -> bool {
    let mut missing = missing_requirements(tools);
    if need_wstest {
        missing.extend(missing_wstest());
    }
    if need_pyws {
        missing.extend(missing_python_websockets());
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("system test");
    let required = std::env::var(REQUIRE_VAR).as_deref() == Ok("1");
    match gate(test, &missing, required) {
        Gate::Run => true,
        Gate::Skip(line) => {
            use std::io::Write;
            // One write to the process's stderr, past libtest's capture (as require_system).
            let _ = std::io::stderr().write_all(line.as_bytes());
            false
        }
        Gate::Fail(message) => panic!("{message}"),
    }
}

/// The `fuzzingclient.json` template filled in: `agent` is the name the report files use.
pub fn fuzzingclient_spec(agent: &str, url: &str, outdir: &Path, cases: &[&str]) -> String {
    fill_template("fuzzingclient.json", url, Some(agent), outdir, cases)
}

/// The `fuzzingserver.json` template filled in; `url` is where the server listens.
pub fn fuzzingserver_spec(url: &str, outdir: &Path, cases: &[&str]) -> String {
    fill_template("fuzzingserver.json", url, None, outdir, cases)
}

fn fill_template(
    file: &str,
    url: &str,
    agent: Option<&str>,
    outdir: &Path,
    cases: &[&str],
) -> String {
    let path = autobahn_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let list = cases
        .iter()
        .map(|c| json_string(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("\"cases\":") {
            out.push_str(&format!("   \"cases\": [{list}],"));
        } else {
            out.push_str(
                &line
                    .replace("\"@URL@\"", &json_string(url))
                    .replace("\"@AGENT@\"", &json_string(agent.unwrap_or("")))
                    .replace("\"@OUTDIR@\"", &json_string(&outdir.to_string_lossy())),
            );
        }
        out.push('\n');
    }
    out
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `wstest -m fuzzingclient` inside `ns` against `url` on `cases`, with its spec and
/// report in `workdir` (`spec.json`, `report/`), killed after `deadline`. Returns the parsed
/// report, or an error with `wstest`'s output when it did not finish, failed, or left no
/// report. A report with FAILED cases is still `Ok`: see [`Report::assert_nothing_failed`].
pub fn run_fuzzingclient(
    ns: &NetNs,
    agent: &str,
    url: &str,
    cases: &[&str],
    workdir: &Path,
    deadline: Duration,
) -> Result<Report, String> {
    let outdir = workdir.join("report");
    let spec = workdir.join("fuzzingclient.json");
    std::fs::write(&spec, fuzzingclient_spec(agent, url, &outdir, cases))
        .map_err(|e| format!("cannot write {}: {e}", spec.display()))?;
    let mut c = ns.cmd(wstest_path());
    c.args(["-m", "fuzzingclient", "-s"])
        .arg(&spec)
        .current_dir(workdir);
    let done = run_with_deadline(c, deadline)?;
    if !done.status.success() {
        return Err(format!(
            "wstest -m fuzzingclient failed: {}",
            done.describe()
        ));
    }
    Report::read(&outdir, agent).map_err(|e| format!("{e}\n{}", done.describe()))
}

/// `wstest` serving inside a namespace; dropping the guard kills it.
pub struct WstestServer {
    child: NsChild,
    url: String,
    outdir: Option<PathBuf>,
}

impl WstestServer {
    /// The `ws://addr:port` it listens on.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The fuzzing server's report for `agent`, as of the client's last `/updateReports`.
    pub fn report(&self, agent: &str) -> Result<Report, String> {
        let outdir = self
            .outdir
            .as_ref()
            .ok_or("an echo server writes no report")?;
        Report::read(outdir, agent)
    }

    /// Waits until the fuzzing server has written its report after a client's
    /// `/updateReports` (it prints `Report generation complete.`), then reads it for `agent`.
    pub fn wait_for_report(&mut self, agent: &str, deadline: Duration) -> Result<Report, String> {
        self.child
            .wait_for_prefix("Report generation complete", deadline);
        self.report(agent)
    }

    /// What the server printed to stderr so far (its last lines).
    pub fn stderr(&self) -> String {
        self.child.stderr()
    }

    /// The process, to wait on its output or signal it.
    pub fn child(&mut self) -> &mut NsChild {
        &mut self.child
    }
}

/// Starts `wstest -m fuzzingserver` inside `ns` on `ws://addr:port` with `cases`, spec and
/// reports in `workdir` (`fuzzingserver.json`, `report/`); returns once the port accepts
/// connections (panics, with the server's output, if it does not within `deadline`).
pub fn start_fuzzingserver(
    ns: &NetNs,
    addr: &str,
    port: u16,
    cases: &[&str],
    workdir: &Path,
    deadline: Duration,
) -> WstestServer {
    let url = format!("ws://{addr}:{port}");
    let outdir = workdir.join("report");
    let spec = workdir.join("fuzzingserver.json");
    std::fs::write(&spec, fuzzingserver_spec(&url, &outdir, cases))
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", spec.display()));
    let spec = spec.to_string_lossy().into_owned();
    // `--webport 0`: no embedded web server on 8080 beside it (wstest's default).
    let child = ns.spawn(
        wstest_path(),
        &["-m", "fuzzingserver", "--webport", "0", "-s", &spec],
    );
    let server = WstestServer {
        child,
        url,
        outdir: Some(outdir),
    };
    wait_until_listening(ns, &server, addr, port, deadline);
    server
}

/// Starts Autobahn's own `wstest -m echoserver` (a conforming WebSocket echo server, with
/// permessage-deflate) inside `ns` on `ws://addr:port`; returns once the port accepts.
pub fn start_echoserver(ns: &NetNs, addr: &str, port: u16, deadline: Duration) -> WstestServer {
    let url = format!("ws://{addr}:{port}");
    let child = ns.spawn(
        wstest_path(),
        &["-m", "echoserver", "--webport", "0", "-w", &url],
    );
    let server = WstestServer {
        child,
        url,
        outdir: None,
    };
    wait_until_listening(ns, &server, addr, port, deadline);
    server
}

fn wait_until_listening(ns: &NetNs, server: &WstestServer, addr: &str, port: u16, d: Duration) {
    if let Err(e) = wait_for_port(ns, addr, port, d) {
        panic!("wstest server: {e}\n--- stderr\n{}", server.stderr());
    }
}

/// Runs Autobahn's own client, `wstest -m testeeclient`, inside `ns` against a fuzzing server
/// at `url`: it asks for the case count, runs every case as agent [`TESTEE_CLIENT_AGENT`] and
/// asks for the report. A stand-in for our client, to prove the fuzzing-server side.
pub fn run_testeeclient(ns: &NetNs, url: &str, deadline: Duration) -> Result<Finished, String> {
    let mut c = ns.cmd(wstest_path());
    c.args(["-m", "testeeclient", "-w", url]);
    let done = run_with_deadline(c, deadline)?;
    if done.status.success() {
        Ok(done)
    } else {
        Err(format!(
            "wstest -m testeeclient failed: {}",
            done.describe()
        ))
    }
}

/// The agent name `wstest -m testeeclient` reports under.
pub const TESTEE_CLIENT_AGENT: &str = "AutobahnPython/0.10.9";

/// Polls until a TCP connection to `addr:port` from inside `ns` succeeds, or errs at
/// `deadline`. The probe is bash's `/dev/tcp`, so it needs no other tool.
pub fn wait_for_port(ns: &NetNs, addr: &str, port: u16, deadline: Duration) -> Result<(), String> {
    let started = Instant::now();
    let probe = format!("exec 3<>/dev/tcp/{addr}/{port}");
    loop {
        let mut c = ns.cmd("bash");
        c.args(["-c", &probe]);
        if let Ok(done) = run_with_deadline(c, Duration::from_secs(5)) {
            if done.status.success() {
                return Ok(());
            }
        }
        if started.elapsed() > deadline {
            return Err(format!(
                "{addr}:{port} accepted no connection within {deadline:?}"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `tests/autobahn/ws_echo_check.py url --max-size max_size` inside `ns` with the
/// pinned `websockets`, killed after `deadline`. `Ok` with its output when every echo
/// matched, else `Err` with the output.
pub fn run_ws_echo_check(
    ns: &NetNs,
    url: &str,
    max_size: usize,
    deadline: Duration,
) -> Result<Finished, String> {
    let mut c = ns.cmd("python3");
    c.arg(autobahn_dir().join("ws_echo_check.py"))
        .args([url, "--max-size", &max_size.to_string()])
        .env("NETSTACK_PYWS_DIR", pyws_dir());
    let done = run_with_deadline(c, deadline)?;
    if done.status.success() {
        Ok(done)
    } else {
        Err(format!("ws_echo_check.py {url}: {}", done.describe()))
    }
}

/// One case of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// `1.1.1`, `12.1.3`, …
    pub id: String,
    /// One of [`BEHAVIORS`].
    pub behavior: String,
    /// How the closing handshake went, also one of [`BEHAVIORS`].
    pub behavior_close: String,
    /// The close code the peer sent, if any.
    pub remote_close_code: Option<i64>,
    /// Milliseconds the case took.
    pub duration_ms: u64,
}

impl CaseResult {
    /// FAILED in the case itself or in its closing handshake.
    pub fn failed(&self) -> bool {
        self.behavior == "FAILED" || self.behavior_close == "FAILED"
    }
}

/// The results for one agent from an Autobahn `index.json`, in case order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub agent: String,
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// Reads `outdir/index.json`.
    pub fn read(outdir: &Path, agent: &str) -> Result<Report, String> {
        let path = outdir.join("index.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("no Autobahn report at {}: {e}", path.display()))?;
        Report::parse(&text, agent).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses an `index.json` (`{agent: {case id: {"behavior": …, …}}}`) for `agent`.
    pub fn parse(index_json: &str, agent: &str) -> Result<Report, String> {
        let root = json::parse(index_json)?;
        let agents = root.as_object().ok_or("index.json: not an object")?;
        let (_, cases) = agents.iter().find(|(k, _)| k == agent).ok_or_else(|| {
            let names: Vec<&str> = agents.iter().map(|(k, _)| k.as_str()).collect();
            format!("index.json has no agent {agent:?} (it has {names:?})")
        })?;
        let cases = cases
            .as_object()
            .ok_or("index.json: agent entry not an object")?;
        let mut out = Vec::with_capacity(cases.len());
        for (id, case) in cases {
            let field = |name: &str| case.get(name);
            let text = |name: &str| -> Result<String, String> {
                field(name)
                    .and_then(json::Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| format!("case {id}: no string {name:?}"))
            };
            out.push(CaseResult {
                id: id.clone(),
                behavior: text("behavior")?,
                behavior_close: text("behaviorClose")?,
                remote_close_code: field("remoteCloseCode")
                    .and_then(json::Value::as_f64)
                    .map(|n| n as i64),
                duration_ms: field("duration")
                    .and_then(json::Value::as_f64)
                    .map_or(0, |n| n as u64),
            });
        }
        out.sort_by_key(|c| case_key(&c.id));
        Ok(Report {
            agent: agent.to_string(),
            cases: out,
        })
    }

    /// The ids of the failed cases (see [`CaseResult::failed`]).
    pub fn failed(&self) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.id.as_str())
            .collect()
    }

    /// Per case group (`1`, `2`, …, `12.1`, `13.1`: the first component, two for 12 and 13
    /// whose second one is the compression parameter set): how many cases had each of
    /// [`BEHAVIORS`], in that order. A behavior outside the list counts as FAILED.
    pub fn counts_by_group(&self) -> Vec<(String, [usize; 5])> {
        let mut groups: BTreeMap<Vec<u64>, (String, [usize; 5])> = BTreeMap::new();
        for case in &self.cases {
            let parts: Vec<&str> = case.id.split('.').collect();
            let depth = if matches!(parts[0], "12" | "13") {
                2
            } else {
                1
            };
            let group = parts[..depth.min(parts.len())].join(".");
            let column = BEHAVIORS
                .iter()
                .position(|b| *b == case.behavior)
                .unwrap_or(4);
            let column = if case.failed() { 4 } else { column };
            groups
                .entry(case_key(&group))
                .or_insert_with(|| (group, [0; 5]))
                .1[column] += 1;
        }
        groups.into_values().collect()
    }

    /// How many cases had each of [`BEHAVIORS`], over all groups.
    pub fn totals(&self) -> [usize; 5] {
        let mut total = [0; 5];
        for (_, counts) in self.counts_by_group() {
            for (t, c) in total.iter_mut().zip(counts) {
                *t += c;
            }
        }
        total
    }

    /// A table: one row per case group, one column per behavior, a total row, and the failed
    /// case ids if any.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "Autobahn report for {} ({} cases)\n{:<8}{:>6}{:>12}{:>15}{:>15}{:>8}\n",
            self.agent,
            self.cases.len(),
            "group",
            BEHAVIORS[0],
            BEHAVIORS[1],
            BEHAVIORS[2],
            BEHAVIORS[3],
            BEHAVIORS[4]
        );
        let row = |name: &str, c: [usize; 5]| {
            format!(
                "{name:<8}{:>6}{:>12}{:>15}{:>15}{:>8}\n",
                c[0], c[1], c[2], c[3], c[4]
            )
        };
        for (group, counts) in self.counts_by_group() {
            out.push_str(&row(&group, counts));
        }
        out.push_str(&row("total", self.totals()));
        let failed = self.failed();
        if !failed.is_empty() {
            out.push_str(&format!("FAILED cases: {}\n", failed.join(" ")));
        }
        out
    }

    /// Panics with the summary and the failed case ids if any case FAILED.
    pub fn assert_nothing_failed(&self) {
        let failed = self.failed();
        assert!(
            failed.is_empty(),
            "Autobahn: {} case(s) FAILED for {}: {}\n{}",
            failed.len(),
            self.agent,
            failed.join(" "),
            self.summary()
        );
    }
}

/// `1.10.2` sorts after `1.9.1`: compare numerically, component by component.
fn case_key(id: &str) -> Vec<u64> {
    id.split('.')
        .map(|p| p.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Just enough JSON to read Autobahn's `index.json`: every value kind, objects as ordered
/// pairs. Errors, never panics, on malformed input; nesting is bounded.
pub mod json {
    /// A JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        pub fn as_object(&self) -> Option<&Vec<(String, Value)>> {
            match self {
                Value::Object(o) => Some(o),
                _ => None,
            }
        }

        pub fn as_str(&self) -> Option<&str> {
            match self {
                Value::String(s) => Some(s),
                _ => None,
            }
        }

        pub fn as_f64(&self) -> Option<f64> {
            match self {
                Value::Number(n) => Some(*n),
                _ => None,
            }
        }

        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            self.as_object()?
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v)
        }
    }

    /// Deepest nesting of arrays and objects accepted.
    pub const MAX_DEPTH: usize = 64;

    /// Parses one JSON document (RFC 8259), surrounded by optional whitespace.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("trailing characters"));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn err(&self, what: &str) -> String {
            format!("JSON: {what} at byte {}", self.i)
        }

        fn ws(&mut self) {
            while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }

        fn eat(&mut self, b: u8) -> Result<(), String> {
            self.ws();
            if self.s.get(self.i) == Some(&b) {
                self.i += 1;
                Ok(())
            } else {
                Err(self.err(&format!("expected `{}`", b as char)))
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value, String> {
            if depth > MAX_DEPTH {
                return Err(self.err("nested too deep"));
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut members = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Object(members));
                    }
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.eat(b':')?;
                        members.push((key, self.value(depth + 1)?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(members));
                            }
                            _ => return Err(self.err("expected `,` or `}`")),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Array(items));
                    }
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(items));
                            }
                            _ => return Err(self.err("expected `,` or `]`")),
                        }
                    }
                }
                Some(b'"') => self.string().map(Value::String),
                Some(b't') => self.word("true", Value::Bool(true)),
                Some(b'f') => self.word("false", Value::Bool(false)),
                Some(b'n') => self.word("null", Value::Null),
                Some(b'-' | b'0'..=b'9') => self.number(),
                _ => Err(self.err("expected a value")),
            }
        }

        fn word(&mut self, w: &str, v: Value) -> Result<Value, String> {
            if self.s[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Ok(v)
            } else {
                Err(self.err("bad literal"))
            }
        }

        fn number(&mut self) -> Result<Value, String> {
            let start = self.i;
            while matches!(
                self.s.get(self.i),
                Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            ) {
                self.i += 1;
            }
            std::str::from_utf8(&self.s[start..self.i])
                .ok()
                .and_then(|t| t.parse().ok())
                .map(Value::Number)
                .ok_or_else(|| self.err("bad number"))
        }

        fn hex4(&mut self) -> Result<u32, String> {
            let digits = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                .ok_or_else(|| self.err("bad \\u escape"))?;
            self.i += 4;
            Ok(digits)
        }

        fn string(&mut self) -> Result<String, String> {
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string"));
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let Some(&b) = self.s.get(self.i) else {
                    return Err(self.err("unterminated string"));
                };
                self.i += 1;
                match b {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = self.s.get(self.i) else {
                            return Err(self.err("unterminated escape"));
                        };
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xD800..0xDC00).contains(&hi)
                                    && self.s[self.i..].starts_with(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    0x10000
                                        + ((hi - 0xD800) << 10)
                                        + (lo.wrapping_sub(0xDC00) & 0x3FF)
                                } else {
                                    hi
                                };
                                char::from_u32(code).unwrap_or('\u{FFFD}')
                            }
                            _ => return Err(self.err("bad escape")),
                        };
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => out.push(b),
                }
            }
            String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{
   "netstack": {
      "1.1.2": {"behavior": "OK", "behaviorClose": "OK", "duration": 2,
                "remoteCloseCode": 1000, "reportfile": "netstack_case_1_1_2.json"},
      "1.1.10": {"behavior": "OK", "behaviorClose": "OK", "duration": 1,
                 "remoteCloseCode": 1000, "reportfile": "x.json"},
      "6.4.1": {"behavior": "NON-STRICT", "behaviorClose": "OK", "duration": 2002,
                "remoteCloseCode": 1007, "reportfile": "x.json"},
      "7.1.6": {"behavior": "INFORMATIONAL", "behaviorClose": "INFORMATIONAL",
                "duration": 5, "remoteCloseCode": null, "reportfile": "x.json"},
      "12.1.1": {"behavior": "UNIMPLEMENTED", "behaviorClose": "UNIMPLEMENTED",
                 "duration": 0, "remoteCloseCode": null, "reportfile": "x.json"},
      "5.19": {"behavior": "FAILED", "behaviorClose": "OK", "duration": 3,
               "remoteCloseCode": 1000, "reportfile": "x.json"},
      "7.9.1": {"behavior": "OK", "behaviorClose": "FAILED", "duration": 3,
                "remoteCloseCode": 1000, "reportfile": "x.json"}
   }
}"#;

    #[test]
    fn a_report_reads_into_cases_in_numeric_order() {
        let r = Report::parse(INDEX, "netstack").unwrap();
        let ids: Vec<&str> = r.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["1.1.2", "1.1.10", "5.19", "6.4.1", "7.1.6", "7.9.1", "12.1.1"]
        );
        assert_eq!(r.cases[0].remote_close_code, Some(1000));
        assert_eq!(r.cases[4].remote_close_code, None);
        assert_eq!(r.cases[3].duration_ms, 2002);
    }

    #[test]
    fn failed_in_the_case_or_its_close_fails_and_unimplemented_does_not() {
        let r = Report::parse(INDEX, "netstack").unwrap();
        assert_eq!(r.failed(), ["5.19", "7.9.1"]);
        assert_eq!(r.totals(), [2, 1, 1, 1, 2]);
        let groups: Vec<String> = r.counts_by_group().into_iter().map(|g| g.0).collect();
        assert_eq!(groups, ["1", "5", "6", "7", "12.1"]);
        let summary = r.summary();
        assert!(summary.contains("FAILED cases: 5.19 7.9.1"), "{summary}");
        assert!(summary.contains("total"), "{summary}");
    }

    #[test]
    #[should_panic(expected = "2 case(s) FAILED for netstack: 5.19 7.9.1")]
    fn assert_nothing_failed_names_the_failed_cases() {
        Report::parse(INDEX, "netstack")
            .unwrap()
            .assert_nothing_failed();
    }

    #[test]
    fn an_unknown_agent_names_the_agents_the_report_has() {
        let err = Report::parse(INDEX, "other").unwrap_err();
        assert!(err.contains("\"netstack\""), "{err}");
    }

    #[test]
    fn malformed_json_is_an_error_never_a_panic() {
        for bad in [
            "",
            "{",
            "{\"a\"",
            "{\"a\":}",
            "[1,]",
            "\"\\u12\"",
            "\"abc",
            "nul",
            "{} x",
            "[[[[",
            "\"\\ud800\\u\"",
            "-",
        ] {
            assert!(json::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(json::MAX_DEPTH + 2);
        assert!(json::parse(&deep).is_err());
    }

    #[test]
    fn json_strings_unescape_including_surrogate_pairs() {
        let v = json::parse(r#"["a\"b\\c\n", "\u00e9\ud834\udd1e"]"#).unwrap();
        assert_eq!(
            v,
            json::Value::Array(vec![
                json::Value::String("a\"b\\c\n".into()),
                json::Value::String("é𝄞".into())
            ])
        );
    }

    #[test]
    fn the_spec_templates_fill_in_url_agent_outdir_and_cases() {
        let spec = fuzzingclient_spec(
            "netstack",
            "ws://192.0.2.2:8080/ws",
            Path::new("/tmp/r"),
            &["1.*", "2.*"],
        );
        let v = json::parse(&spec).unwrap();
        assert_eq!(
            v.get("outdir").and_then(json::Value::as_str),
            Some("/tmp/r")
        );
        let cases = match v.get("cases") {
            Some(json::Value::Array(a)) => a.len(),
            other => panic!("{other:?}"),
        };
        assert_eq!(cases, 2);
        assert!(
            spec.contains(r#""url": "ws://192.0.2.2:8080/ws""#),
            "{spec}"
        );
        assert!(spec.contains(r#""agent": "netstack""#), "{spec}");

        let spec = fuzzingserver_spec("ws://198.51.100.1:9001", Path::new("/o"), CONFORMANCE_CASES);
        let v = json::parse(&spec).unwrap();
        assert_eq!(
            v.get("url").and_then(json::Value::as_str),
            Some("ws://198.51.100.1:9001")
        );
        assert!(spec.contains(r#""13.1.*""#), "{spec}");
    }
}
