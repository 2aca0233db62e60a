//! curl, ab (apache2-utils) and wrk as HTTP clients inside a test's namespace, bounded in
//! time, with what they print read into numbers.
//!
//! Every runner returns `Err` with the tool's whole output when it does not finish by its
//! deadline (it is killed) or exits non-zero, so a failing test shows what the tool said.

use std::time::Duration;

use crate::netns::{run_with_deadline, Finished, NetNs};

/// Runs `program args` inside `ns`, killed after `deadline`; `Ok` only on exit status 0.
pub fn run_tool(
    ns: &NetNs,
    program: &str,
    args: &[&str],
    deadline: Duration,
) -> Result<Finished, String> {
    let mut c = ns.cmd(program);
    c.args(args);
    let done = run_with_deadline(c, deadline)?;
    if done.status.success() {
        Ok(done)
    } else {
        Err(format!(
            "`{program} {}` in {}: {}",
            args.join(" "),
            ns.name(),
            done.describe()
        ))
    }
}

/// One transfer of a curl run, from its `--write-out` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurlTransfer {
    /// The response status (0 when none arrived).
    pub status: u16,
    /// New connections this transfer opened: 0 means it reused the previous one.
    pub connects: u32,
    /// Body bytes received.
    pub size: u64,
}

/// The `--write-out` format [`curl_transfers`] passes and [`parse_curl_transfers`] reads.
pub const CURL_WRITE_OUT: &str = "curl-transfer %{http_code} %{num_connects} %{size_download}\\n";

/// Fetches `urls` with one curl (so it may reuse its connection) inside `ns`, bodies to
/// `/dev/null`, plus `extra` arguments (e.g. `--http1.1`, `-H`); one [`CurlTransfer`] per URL.
pub fn curl_transfers(
    ns: &NetNs,
    urls: &[&str],
    extra: &[&str],
    deadline: Duration,
) -> Result<Vec<CurlTransfer>, String> {
    let mut args: Vec<&str> = vec!["--silent", "--show-error", "--write-out", CURL_WRITE_OUT];
    args.extend_from_slice(extra);
    for url in urls {
        args.extend_from_slice(&["--output", "/dev/null", url]);
    }
    let done = run_tool(ns, "curl", &args, deadline)?;
    let transfers = parse_curl_transfers(&done.stdout);
    if transfers.len() != urls.len() {
        return Err(format!(
            "curl reported {} transfers for {} URLs: {}",
            transfers.len(),
            urls.len(),
            done.describe()
        ));
    }
    Ok(transfers)
}

/// The `curl-transfer STATUS CONNECTS SIZE` lines of a curl run's stdout.
pub fn parse_curl_transfers(stdout: &str) -> Vec<CurlTransfer> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("curl-transfer ")?.split_whitespace();
            Some(CurlTransfer {
                status: w.next()?.parse().ok()?,
                connects: w.next()?.parse().ok()?,
                size: w.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// What `ab` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct AbResult {
    pub complete: u64,
    /// Failed requests (connect, receive, length and exception failures together).
    pub failed: u64,
    /// Responses whose status was not 2xx (ab prints the line only when there are some).
    pub non_2xx: u64,
    pub keep_alive: u64,
    pub requests_per_second: f64,
}

/// Runs `ab -n requests -c concurrency [-k] url` inside `ns`.
pub fn run_ab(
    ns: &NetNs,
    url: &str,
    requests: u32,
    concurrency: u32,
    keep_alive: bool,
    deadline: Duration,
) -> Result<(AbResult, Finished), String> {
    let n = requests.to_string();
    let c = concurrency.to_string();
    let mut args = vec!["-n", n.as_str(), "-c", c.as_str()];
    if keep_alive {
        args.push("-k");
    }
    args.push(url);
    let done = run_tool(ns, "ab", &args, deadline)?;
    let result = parse_ab(&done.stdout)
        .ok_or_else(|| format!("unreadable ab output: {}", done.describe()))?;
    Ok((result, done))
}

/// Reads ab's report; `None` when the mandatory lines are missing.
pub fn parse_ab(stdout: &str) -> Option<AbResult> {
    let field = |name: &str| -> Option<&str> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
    };
    Some(AbResult {
        complete: field("Complete requests:")?.parse().ok()?,
        failed: field("Failed requests:")?.parse().ok()?,
        non_2xx: field("Non-2xx responses:").map_or(Some(0), |v| v.parse().ok())?,
        keep_alive: field("Keep-Alive requests:")?.parse().ok()?,
        requests_per_second: field("Requests per second:")?.parse().ok()?,
    })
}

/// What `wrk` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    pub requests: u64,
    pub requests_per_second: f64,
    /// Socket errors: connect, read, write and timeout together (0 when wrk prints none).
    pub socket_errors: u64,
    /// Responses outside 2xx and 3xx.
    pub non_2xx_3xx: u64,
}

/// Runs `wrk -c connections -t threads -d <seconds>s url` inside `ns`; the deadline is the
/// run's duration plus `slack`.
pub fn run_wrk(
    ns: &NetNs,
    url: &str,
    connections: u32,
    threads: u32,
    duration: Duration,
    slack: Duration,
) -> Result<(WrkResult, Finished), String> {
    let c = connections.to_string();
    let t = threads.min(connections).max(1).to_string();
    let d = format!("{}s", duration.as_secs().max(1));
    let done = run_tool(
        ns,
        "wrk",
        &["-c", &c, "-t", &t, "-d", &d, url],
        duration + slack,
    )?;
    let result = parse_wrk(&done.stdout)
        .ok_or_else(|| format!("unreadable wrk output: {}", done.describe()))?;
    Ok((result, done))
}

/// Reads wrk's report; `None` when the request count or rate is missing.
pub fn parse_wrk(stdout: &str) -> Option<WrkResult> {
    let mut requests = None;
    let mut rate = None;
    let mut socket_errors = 0;
    let mut non_2xx_3xx = 0;
    for line in stdout.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rate = rest.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = rest
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx_3xx = rest.trim().parse().ok()?;
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next()?.parse().ok();
        }
    }
    Some(WrkResult {
        requests: requests?,
        requests_per_second: rate?,
        socket_errors,
        non_2xx_3xx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_write_out_lines_read_into_transfers_and_other_lines_are_ignored() {
        let out = "curl-transfer 200 1 3\nnoise\ncurl-transfer 404 0 120\ncurl-transfer x 1 1\n";
        assert_eq!(
            parse_curl_transfers(out),
            [
                CurlTransfer {
                    status: 200,
                    connects: 1,
                    size: 3
                },
                CurlTransfer {
                    status: 404,
                    connects: 0,
                    size: 120
                },
            ]
        );
    }

    #[test]
    fn ab_report_reads_counts_and_rate_and_a_missing_non_2xx_line_is_zero() {
        let out = "Concurrency Level:      8\nComplete requests:      2000\n\
                   Failed requests:        3\n   (Connect: 0, Receive: 0, Length: 3, Exceptions: 0)\n\
                   Keep-Alive requests:    1990\nRequests per second:    976.53 [#/sec] (mean)\n";
        let r = parse_ab(out).unwrap();
        assert_eq!(
            (r.complete, r.failed, r.non_2xx, r.keep_alive),
            (2000, 3, 0, 1990)
        );
        assert!((r.requests_per_second - 976.53).abs() < 1e-9);
        let with = format!("{out}Non-2xx responses:      7\n");
        assert_eq!(parse_ab(&with).unwrap().non_2xx, 7);
        assert_eq!(parse_ab("Complete requests: 1\n"), None);
    }

    #[test]
    fn wrk_report_reads_requests_rate_and_errors() {
        let out = "Running 5s test @ http://192.0.2.2/\n  2 threads and 100 connections\n\
                   \x20 10068 requests in 5.10s, 1.80MB read\n\
                   \x20 Socket errors: connect 1, read 2, write 0, timeout 4\n\
                   \x20 Non-2xx or 3xx responses: 5\nRequests/sec:   1974.12\nTransfer/sec: 1KB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!((r.requests, r.socket_errors, r.non_2xx_3xx), (10068, 7, 5));
        assert!((r.requests_per_second - 1974.12).abs() < 1e-9);
        let clean = "  1068 requests in 1.10s, 196.26KB read\nRequests/sec:    970.88\n";
        assert_eq!(parse_wrk(clean).unwrap().socket_errors, 0);
        assert_eq!(parse_wrk("Requests/sec: 1\n"), None);
    }
}
