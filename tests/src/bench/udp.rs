//! UDP measurements: the round-trip loop (over any [`DatagramSocket`], the stack's or std's),
//! the echo server, the counting sink, the paced one-way sender and the one-line summaries a
//! client run in a namespace prints for the benchmark process. Reported, never asserted.

use std::io::{self, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use netstack_application::dns::DatagramSocket;
use netstack_link::device::memory::MemoryLinkConfig;
use netstack_runtime::UdpSocket;

use crate::inprocess::pair_with;

/// How long one request waits for its echo before it counts as lost.
pub const REPLY_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the first echo (ARP on both sides) may take before the run gives up.
pub const WARMUP_DEADLINE: Duration = Duration::from_secs(3);
/// How often an echo server looks at its stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Room for the largest UDP payload.
const RECV_BUFFER: usize = 65_536;
/// Every request starts with its sequence number, so a late echo is never taken for the
/// current one.
const SEQ_LEN: usize = 8;

/// What a round-trip run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub round_trips: u64,
    /// Requests whose echo did not come within [`REPLY_TIMEOUT`].
    pub lost: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl Summary {
    fn from_rtts(rtts: Vec<Duration>, lost: u64, elapsed: Duration) -> Summary {
        let r = super::icmp::row(String::new(), rtts, elapsed);
        Summary {
            round_trips: r.round_trips,
            lost,
            elapsed,
            p50: r.p50,
            p99: r.p99,
            max: r.max,
        }
    }

    pub fn per_sec(&self) -> f64 {
        self.round_trips as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The line a client run in a namespace prints for the benchmark process to read.
    pub fn to_line(&self) -> String {
        format!(
            "result round_trips={} lost={} elapsed_ns={} p50_ns={} p99_ns={} max_ns={}",
            self.round_trips,
            self.lost,
            self.elapsed.as_nanos(),
            self.p50.as_nanos(),
            self.p99.as_nanos(),
            self.max.as_nanos()
        )
    }

    /// Reads [`to_line`](Self::to_line)'s line back out of a client's whole stdout.
    pub fn from_output(stdout: &str) -> Option<Summary> {
        let field = fields_of(stdout, "result ")?;
        let ns = |key: &str| field(key).map(Duration::from_nanos);
        Some(Summary {
            round_trips: field("round_trips")?,
            lost: field("lost")?,
            elapsed: ns("elapsed_ns")?,
            p50: ns("p50_ns")?,
            p99: ns("p99_ns")?,
            max: ns("max_ns")?,
        })
    }
}

/// The first line of `stdout` starting with `prefix`, as a lookup of its `key=number` words.
fn fields_of<'a>(stdout: &'a str, prefix: &str) -> Option<impl Fn(&str) -> Option<u64> + 'a> {
    let line = stdout.lines().find(|l| l.starts_with(prefix))?;
    Some(move |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
    })
}

/// Sends `size`-byte requests to the echo server at `to`, one at a time, for `duration`, after
/// a warm-up exchange that is not counted (it waits for ARP on both sides).
pub fn ping_pong<S: DatagramSocket>(
    sock: &S,
    to: SocketAddr,
    size: usize,
    duration: Duration,
) -> Result<Summary, String> {
    let io_err = |e: io::Error| format!("udp to {to}: {e}");
    sock.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io_err)?;
    let mut msg = vec![0x5a; size.max(SEQ_LEN)];
    let mut buf = vec![0; RECV_BUFFER];
    let mut seq = 0u64;
    let warm_until = Instant::now() + WARMUP_DEADLINE;
    loop {
        seq += 1;
        if exchange(sock, to, &mut msg, seq, &mut buf)
            .map_err(io_err)?
            .is_some()
        {
            break;
        }
        if Instant::now() > warm_until {
            return Err(format!(
                "no echo from {to} within {WARMUP_DEADLINE:?} of warm-up"
            ));
        }
    }
    let (mut rtts, mut lost) = (Vec::new(), 0);
    let start = Instant::now();
    while start.elapsed() < duration {
        seq += 1;
        match exchange(sock, to, &mut msg, seq, &mut buf).map_err(io_err)? {
            Some(rtt) => rtts.push(rtt),
            None => lost += 1,
        }
    }
    Ok(Summary::from_rtts(rtts, lost, start.elapsed()))
}

/// One request and its echo: the round-trip time, or `None` when it did not come back whole
/// within [`REPLY_TIMEOUT`].
fn exchange<S: DatagramSocket>(
    sock: &S,
    to: SocketAddr,
    msg: &mut [u8],
    seq: u64,
    buf: &mut [u8],
) -> io::Result<Option<Duration>> {
    msg[..SEQ_LEN].copy_from_slice(&seq.to_be_bytes());
    let sent = Instant::now();
    sock.send_to(msg, to)?;
    while sent.elapsed() < REPLY_TIMEOUT {
        match sock.recv_from(buf) {
            Ok((n, from)) if from == to && buf.get(..n) == Some(&*msg) => {
                return Ok(Some(sent.elapsed()))
            }
            // A late echo of an earlier request, or a stranger.
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// RFC 862 on `sock` until `stop` is set (checked every 50 ms) or the socket fails.
pub fn echo_loop<S: DatagramSocket>(sock: &S, stop: &AtomicBool) {
    if sock.set_read_timeout(Some(STOP_POLL)).is_err() {
        return;
    }
    let mut buf = vec![0; RECV_BUFFER];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let _ = sock.send_to(&buf[..n], from);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Round trips between two stacks over the in-memory link: a client on 192.0.2.2, an echo
/// server on 192.0.2.3:7, each stack with its own device, link and `workers` network and
/// transport workers.
pub fn memory_round_trips(
    size: usize,
    duration: Duration,
    workers: usize,
) -> Result<Summary, String> {
    let (a, b) = pair_with(MemoryLinkConfig::default(), Some((workers, workers)))?;
    let server = UdpSocket::bind(&b, ("0.0.0.0", 7)).map_err(|e| e.to_string())?;
    let client = UdpSocket::bind(&a, "0.0.0.0:0").map_err(|e| e.to_string())?;
    let stop = AtomicBool::new(false);
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 3), 7));
    std::thread::scope(|s| {
        s.spawn(|| echo_loop(&server, &stop));
        let result = ping_pong(&client, to, size, duration);
        stop.store(true, Ordering::Relaxed);
        result
    })
}

/// What a paced one-way sender did.
#[derive(Debug, Clone, PartialEq)]
pub struct Blast {
    pub sent: u64,
    /// `send` calls that failed (ENOBUFS, …): datagrams Linux dropped before the wire.
    pub send_errors: u64,
    pub elapsed: Duration,
}

impl Blast {
    pub fn to_line(&self) -> String {
        format!(
            "blast sent={} send_errors={} elapsed_ns={}",
            self.sent,
            self.send_errors,
            self.elapsed.as_nanos()
        )
    }

    pub fn from_output(stdout: &str) -> Option<Blast> {
        let field = fields_of(stdout, "blast ")?;
        Some(Blast {
            sent: field("sent")?,
            send_errors: field("send_errors")?,
            elapsed: Duration::from_nanos(field("elapsed_ns")?),
        })
    }

    pub fn per_sec(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// Sends `count` datagrams of `size` bytes on a connected socket, paced to `rate` a second
/// (spinning, since a sleep is far coarser than the gaps), or as fast as `send` goes if `None`.
pub fn blast(sock: &std::net::UdpSocket, size: usize, count: u64, rate: Option<f64>) -> Blast {
    let msg = vec![0xa5; size];
    let gap = rate.map(|r| Duration::from_secs_f64(1.0 / r));
    let (mut sent, mut send_errors) = (0, 0);
    let start = Instant::now();
    for i in 0..count {
        if let Some(gap) = gap {
            let due = start + gap.mul_f64(i as f64);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        match sock.send(&msg) {
            Ok(_) => sent += 1,
            Err(_) => send_errors += 1,
        }
    }
    Blast {
        sent,
        send_errors,
        elapsed: start.elapsed(),
    }
}

/// What a sink answers its count query with: `count=N`.
pub const COUNT_QUERY: &[u8] = b"count?";

/// A discard service that counts (RFC 863 over UDP, plus a query): every datagram is counted
/// and dropped, except [`COUNT_QUERY`], which is answered with `count=N`, the datagrams counted
/// so far. Runs until `stop` is set (checked every 50 ms) or the socket fails.
pub fn sink_loop<S: DatagramSocket>(sock: &S, stop: &AtomicBool) {
    if sock.set_read_timeout(Some(STOP_POLL)).is_err() {
        return;
    }
    let mut buf = vec![0; RECV_BUFFER];
    let mut count = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) if &buf[..n] == COUNT_QUERY => {
                let _ = sock.send_to(format!("count={count}").as_bytes(), from);
            }
            Ok(_) => count += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

/// Serves `sock` for the life of the process from a thread of its own: [`sink_loop`] when
/// `sink`, else [`echo_loop`].
pub fn serve_forever<S: DatagramSocket + Send + 'static>(sock: S, sink: bool) {
    static NEVER: AtomicBool = AtomicBool::new(false);
    std::thread::spawn(move || {
        if sink {
            sink_loop(&sock, &NEVER)
        } else {
            echo_loop(&sock, &NEVER)
        }
    });
}

/// Asks the sink `sock` is connected to how many datagrams it has counted (three tries, 500 ms
/// each).
pub fn sink_count(sock: &std::net::UdpSocket) -> Result<u64, String> {
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| format!("timeout: {e}"))?;
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        sock.send(COUNT_QUERY)
            .map_err(|e| format!("count query: {e}"))?;
        while let Ok(n) = sock.recv(&mut buf) {
            let answer = std::str::from_utf8(&buf[..n]).unwrap_or("");
            if let Some(v) = answer.strip_prefix("count=").and_then(|v| v.parse().ok()) {
                return Ok(v);
            }
        }
    }
    Err("the sink never answered its count query".to_string())
}

/// One step of the one-way ladder: what was offered and sent, and what the sink counted.
#[derive(Debug, Clone, PartialEq)]
pub struct OneWayStep {
    /// `None`: as fast as the sender goes.
    pub offered: Option<f64>,
    pub blast: Blast,
    /// Datagrams the sink counted during the step.
    pub delivered: u64,
}

impl OneWayStep {
    pub fn lost(&self) -> u64 {
        self.blast.sent.saturating_sub(self.delivered)
    }

    /// The line the blasting role prints.
    pub fn to_line(&self) -> String {
        format!("{} delivered={}", self.blast.to_line(), self.delivered)
    }

    pub fn from_output(stdout: &str, offered: Option<f64>) -> Option<OneWayStep> {
        let delivered = fields_of(stdout, "blast ")?("delivered")?;
        Some(OneWayStep {
            offered,
            blast: Blast::from_output(stdout)?,
            delivered,
        })
    }
}

/// The highest rate a step was sent at with nothing lost, with that step; `None` when every
/// step lost datagrams.
pub fn best_clean_step(steps: &[OneWayStep]) -> Option<&OneWayStep> {
    steps
        .iter()
        .filter(|s| s.lost() == 0 && s.blast.send_errors == 0)
        .max_by(|a, b| a.blast.per_sec().total_cmp(&b.blast.per_sec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_reads_back_what_was_written() {
        let s = Summary {
            round_trips: 12_345,
            lost: 2,
            elapsed: Duration::from_millis(1500),
            p50: Duration::from_nanos(41_000),
            p99: Duration::from_nanos(97_500),
            max: Duration::from_millis(3),
        };
        let out = format!("warming up\n{}\n", s.to_line());
        assert_eq!(Summary::from_output(&out), Some(s));
        assert_eq!(Summary::from_output("no result here\n"), None);
    }

    #[test]
    fn blast_line_reads_back_what_was_written() {
        let b = Blast {
            sent: 100_000,
            send_errors: 3,
            elapsed: Duration::from_millis(700),
        };
        assert_eq!(Blast::from_output(&b.to_line()), Some(b));
        assert_eq!(Blast::from_output("blast sent=1\n"), None);
    }

    #[test]
    fn the_sink_counts_datagrams_and_answers_its_query() {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let at = sink.local_addr().unwrap();
        serve_forever(sink, true);
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(at).unwrap();
        let b = blast(&client, 64, 20, None);
        assert_eq!(b.sent, 20);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sink_count(&client), Ok(20));
        let step = OneWayStep {
            offered: Some(1e4),
            blast: b,
            delivered: 20,
        };
        assert_eq!(
            OneWayStep::from_output(&step.to_line(), Some(1e4)),
            Some(step.clone())
        );
        assert_eq!(best_clean_step(std::slice::from_ref(&step)), Some(&step));
    }

    #[test]
    fn round_trips_between_two_stacks_over_the_memory_link_are_all_echoed() {
        let s = memory_round_trips(64, Duration::from_millis(200), 1).unwrap();
        assert!(s.round_trips > 0, "{s:?}");
        assert_eq!(s.lost, 0, "{s:?}");
        assert!(s.p50 <= s.p99 && s.p99 <= s.max, "{s:?}");
    }

    #[test]
    fn ping_pong_over_loopback_counts_silence_as_loss() {
        // A bound socket that never answers: the warm-up gives up with a message.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = silent.local_addr().unwrap();
        let err = ping_pong(&client, to, 64, Duration::from_millis(10)).unwrap_err();
        assert!(err.contains("no echo"), "{err}");
    }
}
