//! What the real peers print, read back: iputils `ping` and `arping` summaries, and the
//! `stat <layer>.<name> <value>` lines netstackd prints when it exits.

use std::collections::BTreeMap;

/// Round-trip times from ping's `rtt min/avg/max/mdev = …` line, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rtt {
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
    pub mdev_ms: f64,
}

/// The summary iputils ping prints at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PingSummary {
    pub transmitted: u64,
    pub received: u64,
    /// ICMP errors received instead of replies (`+N errors`).
    pub errors: u64,
    /// The `time Nms` of the summary: from the first request to the end.
    pub time_ms: u64,
    /// Absent when nothing came back.
    pub rtt: Option<Rtt>,
}

impl PingSummary {
    /// Reads the summary out of ping's whole stdout; `None` when there is none.
    pub fn parse(stdout: &str) -> Option<PingSummary> {
        let line = stdout.lines().find(|l| l.contains("packets transmitted"))?;
        // `20 packets transmitted, 18 received, +2 errors, 10% packet loss, time 19023ms`
        let mut s = PingSummary {
            transmitted: 0,
            received: 0,
            errors: 0,
            time_ms: 0,
            rtt: None,
        };
        for part in line.split(',').map(str::trim) {
            let mut words = part.split_whitespace();
            let (Some(a), Some(b)) = (words.next(), words.next()) else {
                continue;
            };
            match b {
                "packets" => s.transmitted = a.parse().ok()?,
                "received" => s.received = a.parse().ok()?,
                "errors" => s.errors = a.trim_start_matches('+').parse().ok()?,
                _ if a == "time" => s.time_ms = b.trim_end_matches("ms").parse().ok()?,
                _ => {}
            }
        }
        s.rtt = stdout.lines().find_map(parse_rtt);
        Some(s)
    }

    /// Requests that got no reply.
    pub fn lost(&self) -> u64 {
        self.transmitted.saturating_sub(self.received)
    }

    /// Replies per second over the run.
    pub fn rate(&self) -> f64 {
        if self.time_ms == 0 {
            return 0.0;
        }
        self.received as f64 * 1000.0 / self.time_ms as f64
    }
}

/// `rtt min/avg/max/mdev = 0.036/0.052/0.090/0.012 ms[, ipg/ewma …]`
fn parse_rtt(line: &str) -> Option<Rtt> {
    let rest = line.trim().strip_prefix("rtt min/avg/max/mdev = ")?;
    let numbers = rest.split_whitespace().next()?;
    let v: Vec<f64> = numbers
        .split('/')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    match v[..] {
        [min_ms, avg_ms, max_ms, mdev_ms] => Some(Rtt {
            min_ms,
            avg_ms,
            max_ms,
            mdev_ms,
        }),
        _ => None,
    }
}

/// iputils arping's `Sent N probes …` / `Received N response(s)` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpingSummary {
    pub sent: u64,
    pub received: u64,
}

impl ArpingSummary {
    pub fn parse(stdout: &str) -> Option<ArpingSummary> {
        let number_after = |prefix: &str| {
            stdout.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(prefix)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
        };
        Some(ArpingSummary {
            sent: number_after("Sent ")?,
            received: number_after("Received ")?,
        })
    }
}

/// `stat <layer>.<name> <value>` lines → `layer.name` → value. Other lines are ignored.
pub fn parse_stats<S: AsRef<str>>(lines: &[S]) -> BTreeMap<String, u64> {
    lines
        .iter()
        .filter_map(|l| {
            let mut words = l.as_ref().split_whitespace();
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("stat"), Some(name), Some(value), None) => {
                    Some((name.to_string(), value.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

/// Words that mark a counter as counting discarded input, by reason (`link.rx_bad_arp`,
/// `ipv4.rx_bad_checksum`, `ipv4.reassembly.overlaps`, `link.arp_queue_drops` …).
const DROP_WORDS: [&str; 14] = [
    "drop",
    "bad",
    "truncated",
    "not_for_us",
    "not_ours",
    "unknown",
    "unsupported",
    "overlap",
    "too_long",
    "inconsistent",
    "poison",
    "evict",
    "invalid",
    "malformed",
];

/// Whether a counter's name says it counts input dropped for a reason.
pub fn is_drop_reason(name: &str) -> bool {
    DROP_WORDS.iter().any(|w| name.contains(w))
}

/// The drop-reason counters that are nonzero in `after` but zero in `baseline` (a run without
/// the traffic under test), so the kernel's own chatter (IPv6 to multicast, …) is not taken
/// for the effect of what the test sent.
pub fn drops_caused(
    baseline: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(name, value)| {
            **value > 0 && is_drop_reason(name) && baseline.get(*name).copied().unwrap_or(0) == 0
        })
        .map(|(n, v)| (n.clone(), *v))
        .collect()
}

/// What `tshark -r FILE` made of a capture.
#[derive(Debug)]
pub struct TsharkReport {
    /// One summary line per frame.
    pub lines: Vec<String>,
    /// The lines tshark marked `[Malformed Packet]`.
    pub malformed: Vec<String>,
}

/// Reads `pcap` with tshark (which must exit 0, so a cut-short or unreadable file fails).
pub fn tshark_read(pcap: &std::path::Path) -> TsharkReport {
    let mut c = std::process::Command::new("tshark");
    c.arg("-n").arg("-r").arg(pcap);
    let done = crate::netns::run_with_deadline(c, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        done.status.success(),
        "tshark could not read {}: {}",
        pcap.display(),
        done.describe()
    );
    let lines: Vec<String> = done.stdout.lines().map(str::to_string).collect();
    let malformed = lines
        .iter()
        .filter(|l| l.contains("Malformed"))
        .cloned()
        .collect();
    TsharkReport { lines, malformed }
}

/// Writes `frames` as a classic pcap file with the Ethernet link type, each frame captured
/// whole. Used to check that the tshark check itself can fail.
pub fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    const MAGIC: u32 = 0xa1b2_c3d4;
    const LINKTYPE_ETHERNET: u32 = 1;
    let mut out = Vec::new();
    for word in [MAGIC.to_le_bytes(), [2, 0, 4, 0]] {
        out.extend_from_slice(&word); // magic; version 2.4
    }
    for word in [0u32, 0, 65535, LINKTYPE_ETHERNET] {
        out.extend_from_slice(&word.to_le_bytes()); // thiszone, sigfigs, snaplen, network
    }
    for (i, f) in frames.iter().enumerate() {
        for word in [i as u32, 0, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&word.to_le_bytes()); // ts_sec, ts_usec, incl_len, orig_len
        }
        out.extend_from_slice(f);
    }
    std::fs::write(path, out)
}

/// `ping -c count -s size` from inside `ns` to `dst`, 50 ms apart, each reply awaited up to
/// 2 s; returns the summary, panicking with ping's output when it printed none.
pub fn ping(ns: &crate::netns::NetNs, dst: &str, count: u32, size: usize) -> PingSummary {
    use std::time::Duration;
    // ping's own deadline (-w) ends the run; ours is a backstop beyond it.
    let own_deadline = 5 + count / 10;
    let args = [
        "-n".to_string(),
        format!("-c{count}"),
        format!("-s{size}"),
        "-i0.05".to_string(),
        "-W2".to_string(),
        format!("-w{own_deadline}"),
        dst.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let done = ns.run(
        "ping",
        &args,
        Duration::from_secs(u64::from(own_deadline) + 10),
    );
    PingSummary::parse(&done.stdout).unwrap_or_else(|| {
        panic!(
            "ping {} printed no summary: {}",
            args.join(" "),
            done.describe()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PING_OK: &str = "PING 192.0.2.2 (192.0.2.2) 56(84) bytes of data.
64 bytes from 192.0.2.2: icmp_seq=1 ttl=64 time=0.050 ms

--- 192.0.2.2 ping statistics ---
20 packets transmitted, 20 received, 0% packet loss, time 1012ms
rtt min/avg/max/mdev = 0.036/0.052/0.090/0.012 ms
";

    #[test]
    fn ping_summary_reads_counts_time_and_rtt() {
        let s = PingSummary::parse(PING_OK).unwrap();
        assert_eq!(
            (s.transmitted, s.received, s.errors, s.time_ms),
            (20, 20, 0, 1012)
        );
        assert_eq!(
            s.rtt,
            Some(Rtt {
                min_ms: 0.036,
                avg_ms: 0.052,
                max_ms: 0.090,
                mdev_ms: 0.012
            })
        );
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn ping_summary_reads_errors_and_loss_without_rtt() {
        let out = "--- 192.0.2.2 ping statistics ---\n\
                   3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2030ms\n";
        let s = PingSummary::parse(out).unwrap();
        assert_eq!(
            (s.transmitted, s.received, s.errors, s.time_ms),
            (3, 0, 3, 2030)
        );
        assert_eq!(s.rtt, None);
        assert_eq!(s.lost(), 3);
    }

    #[test]
    fn flood_ping_summary_reads_rtt_before_ipg() {
        let out = "100000 packets transmitted, 100000 received, 0% packet loss, time 2500ms\n\
                   rtt min/avg/max/mdev = 0.010/0.015/0.120/0.005 ms, ipg/ewma 0.025/0.014 ms\n";
        let s = PingSummary::parse(out).unwrap();
        assert_eq!(s.rtt.unwrap().max_ms, 0.120);
        assert_eq!(s.rate(), 40_000.0);
    }

    #[test]
    fn ping_output_without_a_summary_is_none() {
        assert_eq!(
            PingSummary::parse("ping: connect: Network is unreachable\n"),
            None
        );
    }

    #[test]
    fn arping_summary_reads_sent_and_received() {
        let out = "ARPING 192.0.2.2 from 192.0.2.1 tap0\n\
                   Unicast reply from 192.0.2.2 [02:00:00:00:00:02]  0.601ms\n\
                   Sent 3 probes (1 broadcast(s))\nReceived 3 response(s)\n";
        assert_eq!(
            ArpingSummary::parse(out),
            Some(ArpingSummary {
                sent: 3,
                received: 3
            })
        );
        assert_eq!(ArpingSummary::parse("arping: unknown iface tap9\n"), None);
    }

    #[test]
    fn stat_lines_parse_and_other_lines_are_ignored() {
        let lines = [
            "netstackd shutting down",
            "stat link.drop_not_for_us 12",
            "stat ipv4.drop_bad_checksum 3",
            "stat ipv4.packets_in 0",
            "stat broken",
            "stat ipv4.x notanumber",
        ];
        let stats = parse_stats(&lines);
        assert_eq!(stats.len(), 3);
        assert_eq!(stats["link.drop_not_for_us"], 12);
        assert_eq!(stats["ipv4.packets_in"], 0);
    }

    #[test]
    fn drops_caused_are_nonzero_drop_reasons_absent_from_the_baseline() {
        let stats = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
        };
        let baseline = stats(&[
            ("link.frames_in", 9),
            ("link.rx_ipv6", 2),
            ("ipv4.rx_bad_checksum", 0),
        ]);
        let after = stats(&[
            ("link.frames_in", 100_009),
            ("link.rx_ipv6", 40),
            ("ipv4.rx_bad_checksum", 6000),
            ("ipv4.reassembly.overlaps", 5000),
            ("link.arp_queue_drops", 3),
            ("ipv4.icmp_tx_echo_replies", 8),
            ("ipv4.rx_truncated", 0),
        ]);
        let caused = drops_caused(&baseline, &after);
        assert_eq!(
            caused.keys().collect::<Vec<_>>(),
            [
                "ipv4.reassembly.overlaps",
                "ipv4.rx_bad_checksum",
                "link.arp_queue_drops"
            ]
        );
    }
}
