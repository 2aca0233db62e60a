//! What `netstack-bench` reports: one row per case and system, each with the row it is divided
//! by and issue 9's target where one applies, as a Markdown table and as JSON lines.

use std::fmt::Write as _;
use std::time::Duration;

use super::inproc::Idle;
use super::run::{json_num, json_str, thousands};
use super::tcp::Outcome;
use super::udp::{OneWayStep, Summary};

/// The systems under test and the references beside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// netstack over a TAP, the Linux kernel as the peer, with or without the offloads.
    NetstackTap {
        offload: bool,
    },
    SmoltcpTap,
    LinuxVeth,
    NetstackMemory,
    /// smoltcp's loopback framed like the in-memory link (MTU 1500, checksums).
    SmoltcpLoopback,
    /// smoltcp's loopback as its `loopback_benchmark` runs it (MTU 65535, no checksums).
    SmoltcpLoopbackBenchmark,
    /// `tap-echo-floor`: the least a program must do to answer a ping over a TAP.
    TapEchoFloor,
}

impl System {
    pub fn title(self) -> &'static str {
        match self {
            System::NetstackTap { offload: true } => "netstack, TAP, offloads on",
            System::NetstackTap { offload: false } => "netstack, TAP, offloads off",
            System::SmoltcpTap => "smoltcp, TAP",
            System::LinuxVeth => "Linux, veth",
            System::NetstackMemory => "netstack ↔ netstack, in-memory link",
            System::SmoltcpLoopback => "smoltcp loopback, MTU 1500, checksums",
            System::SmoltcpLoopbackBenchmark => {
                "smoltcp loopback_benchmark (MTU 65535, no checksums)"
            }
            System::TapEchoFloor => "tap-echo-floor, TAP",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            System::NetstackTap { offload: true } => "netstack-tap",
            System::NetstackTap { offload: false } => "netstack-tap-no-offload",
            System::SmoltcpTap => "smoltcp-tap",
            System::LinuxVeth => "linux-veth",
            System::NetstackMemory => "netstack-memory",
            System::SmoltcpLoopback => "smoltcp-loopback",
            System::SmoltcpLoopbackBenchmark => "smoltcp-loopback-benchmark",
            System::TapEchoFloor => "tap-echo-floor",
        }
    }

    pub fn is_netstack(self) -> bool {
        matches!(self, System::NetstackTap { .. } | System::NetstackMemory)
    }
}

/// The cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// TCP bulk, Linux sends and the stack receives (discard).
    StackReceives,
    /// TCP bulk, the stack sends and Linux receives (chargen).
    StackSends,
    /// TCP bulk between two stacks in one process.
    MemoryBulk {
        flows: usize,
    },
    /// 1-byte TCP request/response on one connection.
    RequestResponse,
    /// TCP connect, 1 byte each way, close.
    ConnectRequestClose,
    UdpRequestResponse {
        size: usize,
    },
    /// The highest one-way UDP rate with nothing lost.
    UdpOneWay,
    IdleConnections {
        count: usize,
    },
    IcmpEcho,
}

impl Case {
    pub fn title(self) -> String {
        match self {
            Case::StackReceives => "TCP bulk, Linux sends, the stack receives".into(),
            Case::StackSends => "TCP bulk, the stack sends, Linux receives".into(),
            Case::MemoryBulk { flows: 1 } => "TCP bulk in one process, 1 flow".into(),
            Case::MemoryBulk { flows } => format!("TCP bulk in one process, {flows} flows"),
            Case::RequestResponse => "TCP 1-byte request/response".into(),
            Case::ConnectRequestClose => "TCP connect, 1 byte each way, close".into(),
            Case::UdpRequestResponse { size } => format!("UDP {size}-byte request/response"),
            Case::UdpOneWay => "UDP one-way, highest rate with no loss".into(),
            Case::IdleConnections { count } => {
                format!(
                    "memory per idle connection, {} open",
                    thousands(count as f64)
                )
            }
            Case::IcmpEcho => "ICMP echo".into(),
        }
    }

    /// A short name for chart labels.
    pub fn label(self) -> String {
        match self {
            Case::StackReceives => "TAP: stack receives".into(),
            Case::StackSends => "TAP: stack sends".into(),
            Case::MemoryBulk { flows } => format!("in memory: {flows} flow(s)"),
            Case::RequestResponse => "TCP request/response".into(),
            Case::ConnectRequestClose => "TCP connect-request-close".into(),
            Case::UdpRequestResponse { size } => format!("UDP {size} B request/response"),
            Case::UdpOneWay => "UDP one-way, no loss".into(),
            Case::IdleConnections { .. } => "idle connection".into(),
            Case::IcmpEcho => "ICMP echo".into(),
        }
    }

    pub fn key(self) -> String {
        match self {
            Case::StackReceives => "tcp-bulk-stack-receives".into(),
            Case::StackSends => "tcp-bulk-stack-sends".into(),
            Case::MemoryBulk { flows } => format!("tcp-bulk-memory-{flows}"),
            Case::RequestResponse => "tcp-request-response".into(),
            Case::ConnectRequestClose => "tcp-connect-request-close".into(),
            Case::UdpRequestResponse { size } => format!("udp-request-response-{size}"),
            Case::UdpOneWay => "udp-one-way".into(),
            Case::IdleConnections { count } => format!("idle-connections-{count}"),
            Case::IcmpEcho => "icmp-echo".into(),
        }
    }
}

/// A measured figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    Bulk(Outcome),
    Exchanges(Outcome),
    Datagrams(Summary),
    /// The best clean step of a ladder, and how many steps were run.
    OneWay(OneWayStep, usize),
    Idle(Idle),
    /// Echo replies a second and a note on their round-trip times.
    Echoes {
        per_sec: f64,
        note: String,
    },
}

impl Figure {
    /// The number compared: Gbit/s, a rate a second, or resident bytes per connection end.
    pub fn value(&self) -> f64 {
        match self {
            Figure::Bulk(o) => o.gbit_per_sec(),
            Figure::Exchanges(o) => o.per_sec(),
            Figure::Datagrams(s) => s.per_sec(),
            Figure::OneWay(step, _) => step.blast.per_sec(),
            Figure::Idle(i) => i.per_end(),
            Figure::Echoes { per_sec, .. } => *per_sec,
        }
    }

    pub fn unit(&self) -> &'static str {
        match self {
            Figure::Bulk(_) => "Gbit/s",
            Figure::Exchanges(_) => "exchanges/s",
            Figure::Datagrams(_) => "round trips/s",
            Figure::OneWay(..) => "datagrams/s",
            Figure::Idle(_) => "bytes per connection end",
            Figure::Echoes { .. } => "replies/s",
        }
    }

    /// A value of this figure's kind, as the table writes it.
    pub fn value_text(&self, v: f64) -> String {
        match self {
            Figure::Bulk(_) => format!("{v:.2}"),
            _ => thousands(v),
        }
    }

    /// What the table says beside the figure.
    fn note(&self) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        match self {
            Figure::Bulk(o) if o.ops > 1 => format!("{} flows", o.ops),
            Figure::Bulk(_) => String::new(),
            Figure::Exchanges(o) => format!(
                "p50 {:.0} µs, p99 {:.0} µs{}",
                us(o.p50),
                us(o.p99),
                if o.cut_short {
                    ", ran out of ports"
                } else {
                    ""
                }
            ),
            Figure::Datagrams(s) => format!(
                "p50 {:.0} µs, p99 {:.0} µs, {} lost",
                us(s.p50),
                us(s.p99),
                s.lost
            ),
            Figure::OneWay(step, steps) => format!(
                "offered {}/s, best clean of {steps} steps",
                step.offered.map_or("max".to_string(), thousands)
            ),
            Figure::Idle(i) => format!(
                "{} B per connection (both ends); RSS +{:.1} MiB; {} port(s){}",
                thousands(2.0 * i.per_end()),
                i.rss_after.saturating_sub(i.rss_before) as f64 / (1 << 20) as f64,
                i.ports,
                if i.retries > 0 {
                    format!("; {} connects retried", i.retries)
                } else {
                    String::new()
                }
            ),
            Figure::Echoes { note, .. } => note.clone(),
        }
    }
}

/// A target from issue 9 for a netstack row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio to the baseline is at least this.
    AtLeast(f64),
    /// The figure is below this.
    Below(f64),
}

/// One row: a case on one system, in one scenario.
#[derive(Debug, Clone)]
pub struct Row {
    /// Issue 9's scenario (1–6; 7 is ICMP, kept from the older benchmarks).
    pub scenario: u8,
    pub case: Case,
    pub system: System,
    /// netstack's workers and TAP queues where the scenario varies them.
    pub workers: Option<usize>,
    pub queues: Option<usize>,
    /// The median run's figure, or why none was had.
    pub result: Result<Figure, String>,
    /// Every measured run's value, in the order run.
    pub samples: Vec<f64>,
}

impl Row {
    pub fn value(&self) -> Option<f64> {
        self.result.as_ref().ok().map(Figure::value)
    }

    /// The system and, in the scaling scenario, the workers and queues.
    pub fn system_text(&self) -> String {
        let mut s = self.system.title().to_string();
        if let Some(w) = self.workers {
            let _ = write!(s, ", {w} worker{}", if w == 1 { "" } else { "s" });
        }
        if let Some(q) = self.queues {
            let _ = write!(s, ", {q} queue{}", if q == 1 { "" } else { "s" });
        }
        s
    }

    /// The system this row is divided by.
    pub fn baseline(&self) -> Option<System> {
        use System::*;
        match (self.case, self.system) {
            (_, LinuxVeth) | (Case::IdleConnections { .. }, _) => None,
            (Case::StackReceives | Case::StackSends, NetstackTap { offload: false }) => {
                Some(SmoltcpTap)
            }
            (Case::StackReceives | Case::StackSends, _) => Some(LinuxVeth),
            (Case::MemoryBulk { .. }, NetstackMemory) => Some(SmoltcpLoopback),
            (Case::MemoryBulk { .. }, _) => None,
            (Case::IcmpEcho, NetstackTap { .. }) => Some(TapEchoFloor),
            (Case::IcmpEcho, _) => None,
            _ => Some(LinuxVeth),
        }
    }

    /// The baseline's row: the same case (one flow for in-memory bulk) on the baseline system,
    /// in this scenario when it has one, else in any.
    fn baseline_row<'a>(&self, rows: &'a [Row]) -> Option<&'a Row> {
        let system = self.baseline()?;
        let case = match self.case {
            Case::MemoryBulk { .. } => Case::MemoryBulk { flows: 1 },
            c => c,
        };
        let mut candidates = rows.iter().filter(|r| r.case == case && r.system == system);
        let all: Vec<&Row> = candidates.by_ref().collect();
        all.iter()
            .find(|r| r.scenario == self.scenario)
            .or(all.first())
            .copied()
    }

    /// This row's figure over its baseline row's, when both were measured.
    pub fn ratio(&self, rows: &[Row]) -> Option<f64> {
        Some(self.value()? / self.baseline_row(rows)?.value()?)
    }

    /// Issue 9's target for this row, if it has one (netstack's rows of scenarios 1–5).
    pub fn target(&self) -> Option<Target> {
        if self.scenario > 5 || !self.system.is_netstack() {
            return None;
        }
        let offload = matches!(self.system, System::NetstackTap { offload: true });
        match self.case {
            Case::StackReceives | Case::StackSends if offload => Some(Target::AtLeast(0.5)),
            Case::StackReceives => Some(Target::AtLeast(1.0)),
            Case::StackSends => Some(Target::AtLeast(1.5)),
            Case::MemoryBulk { flows: 1 } => Some(Target::AtLeast(1.0)),
            Case::RequestResponse if self.system != System::NetstackMemory => {
                Some(Target::AtLeast(0.8))
            }
            Case::ConnectRequestClose if self.system != System::NetstackMemory => {
                Some(Target::AtLeast(1.0))
            }
            Case::IdleConnections { .. } => Some(Target::Below(2048.0)),
            _ => None,
        }
    }

    /// Whether the target is met; `None` without a target or a figure to judge.
    pub fn target_met(&self, rows: &[Row]) -> Option<bool> {
        match self.target()? {
            Target::AtLeast(x) => Some(self.ratio(rows)? >= x),
            Target::Below(x) => Some(self.value()? < x),
        }
    }
}

/// The rows as one Markdown table: scenario, case (named once per run of rows), system, figure,
/// unit, the baseline named and this row's ratio to it, issue 9's target with met or missed,
/// and a note (latencies, the range of repeated runs, why a row was not measured).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| # | case | system | figure | unit | baseline | ratio | target | notes |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let mut last = None;
    for r in rows {
        let (scenario, case) = if last == Some((r.scenario, r.case)) {
            (String::new(), String::new())
        } else {
            (r.scenario.to_string(), r.case.title())
        };
        last = Some((r.scenario, r.case));
        let (figure, unit, mut note) = match &r.result {
            Ok(f) => (f.value_text(f.value()), f.unit().to_string(), f.note()),
            Err(e) => (
                "—".to_string(),
                String::new(),
                format!("not measured: {}", e.lines().next().unwrap_or("")),
            ),
        };
        if let (Ok(f), true) = (&r.result, r.samples.len() > 1) {
            let lo = r.samples.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = r.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let range = format!(
                "median of {}, {}–{}",
                r.samples.len(),
                f.value_text(lo),
                f.value_text(hi)
            );
            note = if note.is_empty() {
                range
            } else {
                format!("{range}; {note}")
            };
        }
        let baseline = r.baseline().map_or("—", System::title);
        let ratio = r
            .ratio(rows)
            .map_or("—".to_string(), |x| format!("{x:.2}×"));
        let target = match r.target() {
            None => String::new(),
            Some(t) => {
                let verdict = match r.target_met(rows) {
                    Some(true) => ": met",
                    Some(false) => ": missed",
                    None => "",
                };
                match t {
                    Target::AtLeast(x) => format!("≥ {x:.1}×{verdict}"),
                    Target::Below(x) => format!("< {} B{verdict}", thousands(x)),
                }
            }
        };
        let _ = writeln!(
            out,
            "| {scenario} | {case} | {} | {figure} | {unit} | {baseline} | {ratio} | {target} | {note} |",
            r.system_text()
        );
    }
    out
}

/// What the JSON lines say about the run as a whole.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Seconds since the Unix epoch when the run started.
    pub started: u64,
    pub quick: bool,
    pub cores: usize,
    pub bulk_bytes: u64,
    pub seconds: f64,
    pub repeat: usize,
}

/// One JSON object per row.
pub fn json_lines(rows: &[Row], run: &RunInfo) -> String {
    let mut out = String::new();
    for r in rows {
        let mut o = format!(
            "{{\"bench\":\"netstack-bench\",\"started_unix\":{},\"quick\":{},\"cores\":{},\
             \"bulk_bytes\":{},\"seconds_per_case\":{},\"repeat\":{},\"scenario\":{},\
             \"case\":{},\"case_title\":{},\"system\":{}",
            run.started,
            run.quick,
            run.cores,
            run.bulk_bytes,
            json_num(run.seconds),
            run.repeat,
            r.scenario,
            json_str(&r.case.key()),
            json_str(&r.case.title()),
            json_str(r.system.key())
        );
        for (key, v) in [("workers", r.workers), ("queues", r.queues)] {
            if let Some(v) = v {
                let _ = write!(o, ",\"{key}\":{v}");
            }
        }
        match &r.result {
            Ok(f) => {
                let _ = write!(
                    o,
                    ",\"value\":{},\"unit\":{},\"note\":{}",
                    json_num(f.value()),
                    json_str(f.unit()),
                    json_str(&f.note())
                );
                raw_fields(&mut o, f);
            }
            Err(e) => {
                let _ = write!(o, ",\"error\":{}", json_str(e));
            }
        }
        let samples: Vec<String> = r.samples.iter().map(|&v| json_num(v)).collect();
        let _ = write!(o, ",\"samples\":[{}]", samples.join(","));
        if let Some(b) = r.baseline() {
            let _ = write!(o, ",\"baseline\":{}", json_str(b.key()));
        }
        if let Some(x) = r.ratio(rows) {
            let _ = write!(o, ",\"ratio\":{}", json_num(x));
        }
        if let Some(t) = r.target() {
            let (kind, x) = match t {
                Target::AtLeast(x) => ("ratio_at_least", x),
                Target::Below(x) => ("value_below", x),
            };
            let _ = write!(o, ",\"target\":{{\"{kind}\":{}}}", json_num(x));
            if let Some(met) = r.target_met(rows) {
                let _ = write!(o, ",\"target_met\":{met}");
            }
        }
        o.push_str("}\n");
        out.push_str(&o);
    }
    out
}

/// The raw counts behind a figure.
fn raw_fields(o: &mut String, f: &Figure) {
    let _ = match f {
        Figure::Bulk(x) | Figure::Exchanges(x) => write!(
            o,
            ",\"bytes\":{},\"ops\":{},\"elapsed_s\":{},\"p50_us\":{},\"p99_us\":{},\"cut_short\":{}",
            x.bytes,
            x.ops,
            json_num(x.elapsed.as_secs_f64()),
            json_num(x.p50.as_secs_f64() * 1e6),
            json_num(x.p99.as_secs_f64() * 1e6),
            x.cut_short
        ),
        Figure::Datagrams(s) => write!(
            o,
            ",\"round_trips\":{},\"lost\":{},\"elapsed_s\":{},\"p50_us\":{},\"p99_us\":{}",
            s.round_trips,
            s.lost,
            json_num(s.elapsed.as_secs_f64()),
            json_num(s.p50.as_secs_f64() * 1e6),
            json_num(s.p99.as_secs_f64() * 1e6)
        ),
        Figure::OneWay(step, steps) => write!(
            o,
            ",\"offered\":{},\"sent\":{},\"delivered\":{},\"send_errors\":{},\"elapsed_s\":{},\
             \"steps\":{steps}",
            step.offered.map_or("null".to_string(), json_num),
            step.blast.sent,
            step.delivered,
            step.blast.send_errors,
            json_num(step.blast.elapsed.as_secs_f64())
        ),
        Figure::Idle(i) => write!(
            o,
            ",\"connections\":{},\"rss_before\":{},\"rss_after\":{},\"elapsed_s\":{},\
             \"connect_retries\":{},\"ports\":{}",
            i.count,
            i.rss_before,
            i.rss_after,
            json_num(i.elapsed.as_secs_f64()),
            i.retries,
            i.ports
        ),
        Figure::Echoes { .. } => Ok(()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(gbit: f64) -> Result<Figure, String> {
        Ok(Figure::Bulk(Outcome {
            bytes: (gbit * 1e9 / 8.0) as u64,
            ops: 1,
            elapsed: Duration::from_secs(1),
            ..Outcome::default()
        }))
    }

    fn row(scenario: u8, case: Case, system: System, result: Result<Figure, String>) -> Row {
        let samples = result.iter().map(Figure::value).collect();
        Row {
            scenario,
            case,
            system,
            workers: None,
            queues: None,
            result,
            samples,
        }
    }

    fn rows() -> Vec<Row> {
        let on = System::NetstackTap { offload: true };
        let off = System::NetstackTap { offload: false };
        vec![
            row(1, Case::StackReceives, on, bulk(6.0)),
            row(1, Case::StackReceives, off, bulk(3.0)),
            row(1, Case::StackReceives, System::SmoltcpTap, bulk(4.0)),
            row(1, Case::StackReceives, System::LinuxVeth, bulk(24.0)),
            row(1, Case::StackSends, off, bulk(3.0)),
            row(
                1,
                Case::StackSends,
                System::SmoltcpTap,
                Err("no TAP".into()),
            ),
            row(
                2,
                Case::MemoryBulk { flows: 4 },
                System::NetstackMemory,
                bulk(9.0),
            ),
            row(
                2,
                Case::MemoryBulk { flows: 1 },
                System::SmoltcpLoopback,
                bulk(6.0),
            ),
            row(
                5,
                Case::IdleConnections { count: 10 },
                System::NetstackMemory,
                Ok(Figure::Idle(Idle {
                    count: 10,
                    rss_before: 1000,
                    rss_after: 31_000,
                    elapsed: Duration::from_secs(1),
                    retries: 0,
                    ports: 1,
                })),
            ),
        ]
    }

    #[test]
    fn each_row_is_divided_by_its_own_reference_and_judged_by_issue_9s_target() {
        let rows = rows();
        assert_eq!(
            rows[0].ratio(&rows),
            Some(0.25),
            "offloads on: against Linux"
        );
        assert_eq!(rows[0].target_met(&rows), Some(false), "0.25 < 0.5");
        assert_eq!(
            rows[1].ratio(&rows),
            Some(0.75),
            "offloads off: against smoltcp"
        );
        assert_eq!(rows[1].target(), Some(Target::AtLeast(1.0)));
        assert_eq!(
            rows[2].ratio(&rows),
            Some(4.0 / 24.0),
            "smoltcp against Linux"
        );
        assert_eq!(rows[2].target(), None, "targets are netstack's");
        assert_eq!(rows[3].baseline(), None, "Linux is the reference");
        assert_eq!(rows[4].target(), Some(Target::AtLeast(1.5)));
        assert_eq!(rows[4].ratio(&rows), None, "its baseline was not measured");
        assert_eq!(
            rows[6].ratio(&rows),
            Some(1.5),
            "many flows against smoltcp's one"
        );
        assert_eq!(rows[6].target(), None, "the target is for one flow");
        assert_eq!(
            rows[8].value(),
            Some(1500.0),
            "30,000 B over 10 connections × 2 ends"
        );
        assert_eq!(rows[8].target_met(&rows), Some(true), "1,500 B < 2 KiB");
        let mut scaled = rows[0].clone();
        (scaled.scenario, scaled.workers, scaled.queues) = (6, Some(2), Some(1));
        assert_eq!(
            scaled.ratio(&rows),
            Some(0.25),
            "the reference from scenario 1"
        );
        assert_eq!(scaled.target(), None, "scaling rows have no target");
        assert_eq!(
            scaled.system_text(),
            "netstack, TAP, offloads on, 2 workers, 1 queue"
        );
    }

    #[test]
    fn the_table_names_each_case_once_and_says_why_a_row_was_not_measured() {
        let rows = rows();
        let t = markdown(&rows);
        assert_eq!(t.lines().count(), 2 + rows.len(), "{t}");
        assert!(
            t.contains(
                "| 1 | TCP bulk, Linux sends, the stack receives | netstack, TAP, offloads on | \
                 6.00 | Gbit/s | Linux, veth | 0.25× | ≥ 0.5×: missed |  |"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "|  |  | netstack, TAP, offloads off | 3.00 | Gbit/s | smoltcp, TAP | 0.75×"
            ),
            "{t}"
        );
        assert!(
            t.contains("| — |  | Linux, veth | — |  | not measured: no TAP |"),
            "{t}"
        );
        assert!(t.contains("| 1,500 | bytes per connection end | — | — | < 2,048 B: met |"));
    }

    #[test]
    fn json_lines_are_one_object_per_row_with_escaped_strings() {
        let mut rows = rows();
        rows[5].result = Err("said \"no\"\nthen left".into());
        let run = RunInfo {
            started: 1,
            quick: true,
            cores: 2,
            bulk_bytes: 1,
            seconds: 1.0,
            repeat: 1,
        };
        let out = json_lines(&rows, &run);
        assert_eq!(out.lines().count(), rows.len());
        assert!(out.contains(r#""error":"said \"no\"\nthen left""#), "{out}");
        let first = out.lines().next().unwrap();
        assert!(first.contains(r#""ratio":0.25"#), "{first}");
        assert!(
            first.contains(r#""target":{"ratio_at_least":0.5},"target_met":false"#),
            "{first}"
        );
        assert!(out.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
    }
}
