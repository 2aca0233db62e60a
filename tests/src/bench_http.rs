//! HTTP measurements for `bench-http`: the std::net server that is the baseline (the same
//! `netstack_application::http::Server` and the same `/echo` route netstackd serves, over std's
//! sockets), the cases (connections, keep-alive or not), the wrk command line and its output
//! read back, and the Markdown table and JSON lines the results end up in.
//! Reported, never asserted.
//!
//! The namespaces, the veth pair, the signal watcher and the progress line are the ones every
//! benchmark shares ([`crate::bench::run`]).

use std::fmt::Write as _;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netstack_application::http::{Request, Response, Router, Server, ServerConfig};

use crate::bench::run::{json_num, json_str, median_by, thousands, write_jsonl};

/// The port both servers answer on (netstackd's default `--http`).
pub const HTTP_PORT: u16 = 80;
/// The path wrk asks for: netstackd's echo route, which answers a GET with an empty 200.
pub const ECHO_PATH: &str = "/echo";
/// How long wrk waits for one response before it counts a timeout.
pub const WRK_TIMEOUT: &str = "5s";

/// The routes of the baseline server: `/echo` as netstackd's web service has it (any method,
/// the request body back as `application/octet-stream`), behind the same router.
pub fn echo_router() -> Router {
    Router::new().route_any(ECHO_PATH, |req: Request| {
        Response::with_body(200, "application/octet-stream", req.body)
    })
}

/// The baseline: [`echo_router`] served by the HTTP server on std's sockets at
/// `addr:`[`HTTP_PORT`], with the server settings netstackd uses (the defaults).
pub fn serve_std(addr: Ipv4Addr) -> Result<Server, String> {
    Server::bind_std((addr, HTTP_PORT), echo_router(), ServerConfig::default())
        .map_err(|e| format!("binding {addr}:{HTTP_PORT}: {e}"))
}

/// The systems under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// netstackd on a TAP in its namespace, wrk on the kernel side of the TAP.
    NetstackdTap,
    /// The same server on std::net, across a veth pair from wrk's namespace: the baseline.
    StdVeth,
}

impl System {
    pub const ALL: [System; 2] = [System::NetstackdTap, System::StdVeth];

    /// For the table.
    pub fn title(self) -> &'static str {
        match self {
            System::NetstackdTap => "netstackd, TAP",
            System::StdVeth => "std::net, veth",
        }
    }

    /// For the JSON lines.
    pub fn key(self) -> &'static str {
        match self {
            System::NetstackdTap => "netstackd-tap",
            System::StdVeth => "std-veth",
        }
    }
}

/// One wrk load: how many connections, and whether they are kept alive between requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Case {
    pub connections: u32,
    /// `false`: every request says `Connection: close`, so each one is a new connection.
    pub keep_alive: bool,
}

impl Case {
    /// The full run: 1, 16 and 256 connections, each kept alive and not.
    pub fn full() -> Vec<Case> {
        Case::grid(&[1, 16, 256])
    }

    /// The quick run (CI's smoke run): 1 and 16 connections, each kept alive and not.
    pub fn quick() -> Vec<Case> {
        Case::grid(&[1, 16])
    }

    fn grid(connections: &[u32]) -> Vec<Case> {
        connections
            .iter()
            .flat_map(|&connections| {
                [true, false].map(|keep_alive| Case {
                    connections,
                    keep_alive,
                })
            })
            .collect()
    }

    /// For the table.
    pub fn title(self) -> String {
        let n = self.connections;
        let conns = if n == 1 { "connection" } else { "connections" };
        let how = if self.keep_alive {
            "keep-alive"
        } else {
            "Connection: close"
        };
        format!("{n} {conns}, {how}")
    }

    /// For the JSON lines: `c16-keep-alive`, `c16-close`.
    pub fn key(self) -> String {
        let how = if self.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        format!("c{}-{how}", self.connections)
    }

    /// wrk's threads: two (the machine's cores, for the smallest machine this runs on), or one
    /// for a single connection (wrk wants at least a connection per thread).
    pub fn threads(self) -> u32 {
        self.connections.clamp(1, 2)
    }

    /// wrk's arguments for this case against `url` for `seconds`.
    pub fn wrk_args(self, url: &str, seconds: f64) -> Vec<String> {
        let mut args = vec![
            "--latency".to_string(),
            "-t".to_string(),
            self.threads().to_string(),
            "-c".to_string(),
            self.connections.to_string(),
            "-d".to_string(),
            format!("{}s", seconds.ceil().max(1.0) as u64),
            "--timeout".to_string(),
            WRK_TIMEOUT.to_string(),
        ];
        if !self.keep_alive {
            args.extend(["-H".to_string(), "Connection: close".to_string()]);
        }
        args.push(url.to_string());
        args
    }
}

/// What one wrk run measured, read from its `--latency` output.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrk {
    /// Responses completed.
    pub requests: u64,
    /// How long the run took by wrk's clock.
    pub elapsed: Duration,
    /// wrk's `Requests/sec`.
    pub per_sec: f64,
    /// The latency distribution's 50 % and 99 % lines.
    pub p50: Duration,
    pub p99: Duration,
    /// connect, read, write and timeout errors, summed (wrk's `Socket errors`).
    pub socket_errors: u64,
    /// Responses with a status other than 2xx or 3xx.
    pub non_2xx: u64,
}

impl Wrk {
    /// Socket errors and non-2xx/3xx responses together.
    pub fn errors(&self) -> u64 {
        self.socket_errors + self.non_2xx
    }
}

/// A wrk duration (`635.91us`, `1.00ms`, `2.50s`, `1.20m`) as a [`Duration`].
fn wrk_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = s.split_at(split);
    let v: f64 = number.parse().ok()?;
    let secs = match unit {
        "ns" => v / 1e9,
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Reads a wrk `--latency` run's stdout.
pub fn parse_wrk(stdout: &str) -> Result<Wrk, String> {
    let mut requests = None;
    let mut elapsed = None;
    let mut per_sec = None;
    let (mut p50, mut p99) = (None, None);
    let mut socket_errors = 0;
    let mut non_2xx = 0;
    for line in stdout.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", d] => p50 = wrk_duration(d),
            ["99%", d] => p99 = wrk_duration(d),
            [n, "requests", "in", d, ..] => {
                requests = n.parse().ok();
                elapsed = wrk_duration(d.trim_end_matches(','));
            }
            ["Requests/sec:", v] => per_sec = v.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => non_2xx = n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // `connect 0, read 0, write 0, timeout 0`
                socket_errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    let missing = |what: &str| format!("no {what} in wrk's output:\n{stdout}");
    Ok(Wrk {
        requests: requests.ok_or_else(|| missing("`N requests in T`"))?,
        elapsed: elapsed.ok_or_else(|| missing("run time"))?,
        per_sec: per_sec.ok_or_else(|| missing("Requests/sec"))?,
        p50: p50.ok_or_else(|| missing("50% latency"))?,
        p99: p99.ok_or_else(|| missing("99% latency"))?,
        socket_errors,
        non_2xx,
    })
}

/// One row: a case on one system.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: Case,
    pub system: System,
    /// The median run by requests a second (the lower middle one of an even count), or why
    /// none was had.
    pub result: Result<Wrk, String>,
    /// Every measured run's requests a second, in the order run.
    pub samples: Vec<f64>,
}

impl Row {
    /// The row for `runs` of `case` on `system`: their median and every sample.
    pub fn from_runs(case: Case, system: System, runs: Vec<Result<Wrk, String>>) -> Row {
        let (result, samples) = median_by(runs, |w: &Wrk| w.per_sec);
        Row {
            case,
            system,
            result,
            samples,
        }
    }

    /// Requests a second over the std::net row's of the same case, when both were measured.
    pub fn ratio(&self, rows: &[Row]) -> Option<f64> {
        let base = rows
            .iter()
            .find(|r| r.case == self.case && r.system == System::StdVeth)?;
        let b = base.result.as_ref().ok()?.per_sec;
        Some(self.result.as_ref().ok()?.per_sec / b)
    }
}

/// A latency as the table writes it: `80 µs`, `2.07 ms`, `25.0 ms`, `1.03 s`.
fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    match us {
        us if us >= 1e6 => format!("{:.2} s", us / 1e6),
        us if us >= 10_000.0 => format!("{:.1} ms", us / 1e3),
        us if us >= 1_000.0 => format!("{:.2} ms", us / 1e3),
        us => format!("{us:.0} µs"),
    }
}

/// The rows as one Markdown table: the case (named once, on its first row), the system,
/// requests a second (with the range when repeated), p50 and p99 latency, errors, and the
/// ratio to the std::net row beside it.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | system | requests/s | p50 | p99 | errors | ratio to std::net |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let mut last_case = None;
    for r in rows {
        let case = if last_case == Some(r.case) {
            String::new()
        } else {
            r.case.title()
        };
        last_case = Some(r.case);
        let cells = match &r.result {
            Ok(w) => {
                let mut rate = thousands(w.per_sec);
                if r.samples.len() > 1 {
                    let lo = r.samples.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = r.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let _ = write!(
                        rate,
                        "; median of {}, {}–{}",
                        r.samples.len(),
                        thousands(lo),
                        thousands(hi)
                    );
                }
                let errors = if w.errors() == 0 {
                    "0".to_string()
                } else {
                    format!("{} socket, {} non-2xx", w.socket_errors, w.non_2xx)
                };
                format!("{rate} | {} | {} | {errors}", micros(w.p50), micros(w.p99))
            }
            Err(e) => format!(
                "not measured: {} | | | ",
                e.lines().next().unwrap_or("").replace('|', "/")
            ),
        };
        let ratio = match (r.system, r.ratio(rows)) {
            (System::StdVeth, _) => "(baseline)".to_string(),
            (_, Some(x)) => format!("{x:.2}×"),
            (_, None) => "—".to_string(),
        };
        let _ = writeln!(out, "| {case} | {} | {cells} | {ratio} |", r.system.title());
    }
    out
}

/// What the JSON lines say about the run as a whole.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Seconds since the Unix epoch when the run started.
    pub started: u64,
    pub quick: bool,
    /// netstackd's network and transport workers.
    pub workers: usize,
    pub seconds: f64,
    /// Runs of each case on each system.
    pub repeat: usize,
}

/// One JSON object per row.
pub fn json_lines(rows: &[Row], run: &RunInfo) -> String {
    let mut out = String::new();
    for r in rows {
        let _ = write!(
            out,
            "{{\"bench\":\"bench-http\",\"started_unix\":{},\"quick\":{},\"workers\":{},\
             \"seconds_per_case\":{},\"repeat\":{},\"case\":{},\"case_title\":{},\
             \"connections\":{},\"keep_alive\":{},\"system\":{}",
            run.started,
            run.quick,
            run.workers,
            json_num(run.seconds),
            run.repeat,
            json_str(&r.case.key()),
            json_str(&r.case.title()),
            r.case.connections,
            r.case.keep_alive,
            json_str(r.system.key())
        );
        match &r.result {
            Ok(w) => {
                let _ = write!(
                    out,
                    ",\"value\":{},\"unit\":\"requests per second\",\"requests\":{},\
                     \"elapsed_s\":{},\"p50_us\":{},\"p99_us\":{},\"socket_errors\":{},\
                     \"non_2xx\":{}",
                    json_num(w.per_sec),
                    w.requests,
                    json_num(w.elapsed.as_secs_f64()),
                    json_num(w.p50.as_secs_f64() * 1e6),
                    json_num(w.p99.as_secs_f64() * 1e6),
                    w.socket_errors,
                    w.non_2xx
                );
            }
            Err(e) => {
                let _ = write!(out, ",\"error\":{}", json_str(e));
            }
        }
        let samples: Vec<String> = r.samples.iter().map(|&v| json_num(v)).collect();
        let _ = write!(
            out,
            ",\"samples\":[{}],\"baseline\":{}",
            samples.join(","),
            json_str(System::StdVeth.key())
        );
        if let Some(x) = r.ratio(rows) {
            let _ = write!(out, ",\"ratio\":{}", json_num(x));
        }
        out.push_str("}\n");
    }
    out
}

/// Writes the JSON lines to `dir/bench-http-<started>.jsonl` (creating `dir`); the file's path.
pub fn write_results(dir: &Path, rows: &[Row], run: &RunInfo) -> io::Result<PathBuf> {
    write_jsonl(dir, "bench-http", run.started, &json_lines(rows, run))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRK_OUTPUT: &str = "\
Running 5s test @ http://192.0.2.2/echo
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us  100.00us   2.02ms   90.00%
    Req/Sec    12.50k     1.00k   14.00k    70.00%
  Latency Distribution
     50%  635.91us
     75%  712.19us
     90%    1.00ms
     99%    2.02ms
  125000 requests in 5.01s, 10.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:  24950.10
Transfer/sec:      2.00MB
";

    #[test]
    fn wrk_latency_output_reads_back_rate_percentiles_and_errors() {
        let w = parse_wrk(WRK_OUTPUT).unwrap();
        assert_eq!(w.requests, 125_000);
        assert_eq!(w.elapsed, Duration::from_millis(5010));
        assert_eq!(w.per_sec, 24950.10);
        assert_eq!(w.p50, Duration::from_nanos(635_910));
        assert_eq!(w.p99, Duration::from_micros(2020));
        assert_eq!((w.socket_errors, w.non_2xx, w.errors()), (5, 7, 12));
        let clean: String = WRK_OUTPUT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse_wrk(&clean).unwrap().errors(), 0);
    }

    #[test]
    fn wrk_output_without_the_latency_distribution_is_an_error_that_shows_it() {
        let cut: String = WRK_OUTPUT
            .lines()
            .filter(|l| !l.contains("99%"))
            .map(|l| format!("{l}\n"))
            .collect();
        let e = parse_wrk(&cut).unwrap_err();
        assert!(
            e.contains("99% latency") && e.contains("Requests/sec:"),
            "{e}"
        );
        assert!(parse_wrk("").is_err());
    }

    #[test]
    fn wrk_durations_read_in_every_unit() {
        assert_eq!(wrk_duration("12.00us"), Some(Duration::from_micros(12)));
        assert_eq!(wrk_duration("1.50ms"), Some(Duration::from_micros(1500)));
        assert_eq!(wrk_duration("2.00s"), Some(Duration::from_secs(2)));
        assert_eq!(wrk_duration("1.00m"), Some(Duration::from_secs(60)));
        assert_eq!(wrk_duration("5"), None);
        assert_eq!(wrk_duration("5parsecs"), None);
    }

    #[test]
    fn the_wrk_command_closes_each_connection_only_without_keep_alive() {
        let wrk = |connections, keep_alive, seconds| {
            let case = Case {
                connections,
                keep_alive,
            };
            case.wrk_args("http://198.51.100.2/echo", seconds).join(" ")
        };
        assert_eq!(
            wrk(1, true, 5.0),
            "--latency -t 1 -c 1 -d 5s --timeout 5s http://198.51.100.2/echo"
        );
        assert_eq!(
            wrk(256, false, 0.5),
            "--latency -t 2 -c 256 -d 1s --timeout 5s -H Connection: close \
             http://198.51.100.2/echo"
        );
    }

    #[test]
    fn the_full_run_has_six_cases_and_the_quick_run_fewer() {
        let full = Case::full();
        assert_eq!(full.len(), 6);
        assert_eq!(full[5].key(), "c256-close");
        assert_eq!(full[0].title(), "1 connection, keep-alive");
        assert!(Case::quick().len() < full.len());
    }

    fn wrk(per_sec: f64) -> Result<Wrk, String> {
        Ok(Wrk {
            requests: per_sec as u64,
            elapsed: Duration::from_secs(1),
            per_sec,
            p50: Duration::from_micros(80),
            p99: Duration::from_micros(25_000),
            socket_errors: 0,
            non_2xx: 0,
        })
    }

    fn rows() -> Vec<Row> {
        let [case, other] = [true, false].map(|keep_alive| Case {
            connections: 16,
            keep_alive,
        });
        vec![
            Row::from_runs(case, System::NetstackdTap, vec![wrk(5000.0)]),
            Row::from_runs(case, System::StdVeth, vec![wrk(30000.0), wrk(10000.0)]),
            Row::from_runs(other, System::NetstackdTap, vec![wrk(100.0)]),
            Row::from_runs(other, System::StdVeth, vec![Err("no veth".into())]),
        ]
    }

    #[test]
    fn ratios_divide_by_the_std_row_of_the_same_case_and_the_table_shows_them() {
        let rows = rows();
        assert_eq!(rows[0].ratio(&rows), Some(0.5));
        assert_eq!(rows[1].ratio(&rows), Some(1.0));
        assert_eq!(rows[2].ratio(&rows), None, "its baseline was not measured");
        let t = markdown(&rows);
        assert_eq!(t.lines().count(), 2 + rows.len(), "{t}");
        assert!(
            t.contains(
                "| 16 connections, keep-alive | netstackd, TAP | 5,000 | 80 µs | 25.0 ms | 0 | \
                 0.50× |"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "|  | std::net, veth | 10,000; median of 2, 10,000–30,000 | 80 µs | 25.0 ms | 0 \
                 | (baseline) |"
            ),
            "{t}"
        );
        assert!(t.contains("| not measured: no veth |"), "{t}");
    }

    #[test]
    fn latencies_are_written_in_the_unit_that_reads_best() {
        let t = |us: u64| micros(Duration::from_micros(us));
        assert_eq!(
            [t(80), t(2070), t(25_000), t(1_030_000)],
            ["80 µs", "2.07 ms", "25.0 ms", "1.03 s"]
        );
    }

    #[test]
    fn json_lines_are_one_object_per_row_with_the_ratio() {
        let rows = rows();
        let run = RunInfo {
            started: 1,
            quick: true,
            workers: 1,
            seconds: 1.0,
            repeat: 1,
        };
        let out = json_lines(&rows, &run);
        assert_eq!(out.lines().count(), rows.len());
        assert!(out.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
        let first = out.lines().next().unwrap();
        assert!(first.contains(r#""ratio":0.5"#), "{first}");
        assert!(first.contains(r#""case":"c16-keep-alive""#), "{first}");
        assert!(out.contains(r#""error":"no veth""#), "{out}");
    }

    #[test]
    fn the_std_server_answers_a_get_of_echo_with_an_empty_200() {
        use std::io::{Read, Write};
        let server = Server::bind_std(
            (Ipv4Addr::LOCALHOST, 0),
            echo_router(),
            ServerConfig::default(),
        )
        .unwrap();
        let addr = server.local_addr().unwrap();
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(answer.contains("Content-Length: 0\r\n"), "{answer}");
        server.shutdown(Duration::from_secs(2));
    }
}
