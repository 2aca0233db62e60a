//! Helpers for the flood and shutdown system tests (`tests/tests/system_flood.rs`,
//! `tests/tests/system_shutdown.rs`): netstackd's resident memory sampled while a flood runs,
//! its live counters read from the status page's `/stats`, and hping3's report.
//!
//! Every flood runs inside the test's own namespace, from the kernel side of netstackd's TAP
//! (192.0.2.1) to the stack (192.0.2.2); nothing here picks another address.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::netns::{Finished, NetNs};

/// How often [`RssSampler`] reads `/proc/<pid>/status`.
const RSS_PERIOD: Duration = Duration::from_millis(50);

/// `CLOCK_MONOTONIC` in seconds: the clock Python's `time.monotonic()` reads, so times a
/// peer script prints can be set against the moment a test acted.
pub fn monotonic_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write to; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// `VmRSS` and `VmHWM` of a process, in kB, from `/proc/<pid>/status`; `None` once it is gone.
pub fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// What [`RssSampler::finish`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RssReport {
    /// Resident memory when sampling began, kB.
    pub start_kb: u64,
    /// The largest `VmRSS` sampled, kB.
    pub max_rss_kb: u64,
    /// The kernel's high-water mark (`VmHWM`) at the end: the most the process ever held, kB.
    pub hwm_kb: u64,
    /// Samples taken.
    pub samples: u64,
}

impl RssReport {
    /// Prints `<label>: netstackd VmHWM N kB (VmRSS start N kB, max sampled N kB, N samples)`
    /// and panics if the high-water mark is above `bound_kb`.
    pub fn report_and_check(&self, label: &str, bound_kb: u64) {
        println!(
            "{label}: netstackd VmHWM {} kB (VmRSS at start {} kB, largest sampled {} kB, {} \
             samples; bound {bound_kb} kB)",
            self.hwm_kb, self.start_kb, self.max_rss_kb, self.samples
        );
        assert!(
            self.hwm_kb <= bound_kb,
            "{label}: netstackd's resident memory peaked at {} kB, above the bound of {bound_kb} \
             kB",
            self.hwm_kb
        );
    }
}

/// Samples a process's resident memory on a thread of its own until [`finish`](Self::finish).
pub struct RssSampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    start_kb: u64,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling `pid` every 50 ms. Panics if the process has no `/proc` entry.
    pub fn start(pid: u32) -> RssSampler {
        let (start_kb, _) =
            memory_kb(pid).unwrap_or_else(|| panic!("no /proc/{pid}/status: is it running?"));
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(start_kb));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, m, n) = (stop.clone(), max.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, _)) = memory_kb(pid) {
                    m.fetch_max(rss, Ordering::Relaxed);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(RSS_PERIOD);
            }
        });
        RssSampler {
            pid,
            stop,
            max,
            samples,
            start_kb,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns what was seen (the process must still be running).
    pub fn finish(mut self) -> RssReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let (rss, hwm) = memory_kb(self.pid)
            .unwrap_or_else(|| panic!("netstackd (pid {}) exited during the flood", self.pid));
        RssReport {
            start_kb: self.start_kb,
            max_rss_kb: self.max.load(Ordering::Relaxed).max(rss),
            hwm_kb: hwm,
            samples: self.samples.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The `"counters"` object of netstackd's `/stats` JSON: a flat map of names to integers.
pub fn parse_counters_json(json: &str) -> Result<BTreeMap<String, u64>, String> {
    let start = json
        .find("\"counters\":{")
        .ok_or_else(|| format!("no \"counters\" object in {json:.200}"))?
        + "\"counters\":{".len();
    let end = json[start..]
        .find('}')
        .ok_or_else(|| "the counters object does not end".to_string())?
        + start;
    json[start..end]
        .split(',')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            let (k, v) = kv
                .split_once(':')
                .ok_or_else(|| format!("not name:value: {kv}"))?;
            let k = k.trim().trim_matches('"').to_string();
            let v = v
                .trim()
                .parse::<u64>()
                .map_err(|e| format!("{k}: {v}: {e}"))?;
            Ok((k, v))
        })
        .collect()
}

/// netstackd's counters as they stand, read from `http://<ip>/stats` with curl inside `ns`.
/// Panics with curl's output when the page does not answer within 10 s.
pub fn live_counters(ns: &NetNs, ip: &str) -> BTreeMap<String, u64> {
    let url = format!("http://{ip}/stats");
    let done = ns.run(
        "curl",
        &["-sS", "--max-time", "10", &url],
        Duration::from_secs(20),
    );
    assert!(
        done.status.success(),
        "GET {url} failed: {}",
        done.describe()
    );
    parse_counters_json(&done.stdout).unwrap_or_else(|e| panic!("{e}\n{}", done.describe()))
}

/// `after[name] - before[name]`, a missing counter being a failure.
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    let a = *after
        .get(name)
        .unwrap_or_else(|| panic!("no counter {name} in {after:?}"));
    a.saturating_sub(before.get(name).copied().unwrap_or(0))
}

/// The `N packets transmitted` of hping3's closing statistics (on either stream).
pub fn hping3_sent(done: &Finished) -> Option<u64> {
    done.stdout
        .lines()
        .chain(done.stderr.lines())
        .find_map(|l| {
            l.split(" packets transmitted")
                .next()
                .filter(|_| l.contains(" packets transmitted"))
        })
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_read_from_the_stats_json() {
        let json =
            r#"{"counters":{"link.frames_in":10,"udp.rx_queue_full":0},"connections":[{"a":1}]}"#;
        let c = parse_counters_json(json).unwrap();
        assert_eq!(c.get("link.frames_in"), Some(&10));
        assert_eq!(c.get("udp.rx_queue_full"), Some(&0));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_page_without_counters_is_an_error() {
        assert!(parse_counters_json("<html>").is_err());
    }

    #[test]
    fn this_process_has_a_resident_size_and_a_high_water_mark() {
        let (rss, hwm) = memory_kb(std::process::id()).unwrap();
        assert!(rss > 0 && hwm >= rss, "rss {rss} hwm {hwm}");
    }
}
