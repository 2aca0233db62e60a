//! Shutdown without loss (issue 10): SIGTERM to netstackd while 50 TCP transfers run through
//! it, 25 to its echo service and 25 to its discard service, plus 3 chargen readers that have
//! stopped reading.
//!
//! The peers are Linux's own TCP (one Python process, a thread per direction per connection).
//! Each echo and discard client streams a pattern of its own without pause; when it reads the
//! stack's FIN it stops sending and closes its side, as a well-behaved client does. What must
//! hold afterwards:
//! - echo: what came back is a prefix of what was sent (nothing lost, reordered or invented in
//!   the middle), it ended with FIN, and all of it together is what the echo service counts as
//!   written: every byte the application wrote reached the peer, then FIN;
//! - discard: every byte the stack acknowledged (the client's `tcpi_bytes_acked`) is a byte
//!   the discard service read and counted, and the stream ended with FIN;
//! - chargen readers that never read: their connections cannot finish (the window is shut), so
//!   they are reset at the deadline, not before the stack's grace period;
//! - netstackd joins every thread and exits 0 within the deadline.
//!
//! Gated by `require_system`; needs `cargo build --workspace --bins`.

use std::collections::BTreeMap;
use std::time::Duration;

use netstack_tests::flood::monotonic_secs;
use netstack_tests::netns::Netstackd;
use netstack_tests::peers::parse_stats;

/// How long netstackd may take from SIGTERM to its exit (its own deadlines: 0.4 s for the
/// services, 1.5 s for the stack), with room for a loaded machine.
const EXIT_DEADLINE: Duration = Duration::from_secs(4);
/// The longest the clients may run in all.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// The clients. Arguments: the stack's address and the number of echo, discard and stuck
/// chargen connections. Prints `started` once every connection has moved data, then, when all
/// have ended, one line per connection:
/// `conn KIND N end=fin|rst|timeout t_end=MONOTONIC sent=N acked=N recv=N prefix=1|0`.
const CLIENTS: &str = r#"
import os, socket, struct, sys, threading, time
ip, n_echo, n_discard, n_stuck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
B = 1048573  # the pattern's period: odd, so chunk edges wander over it
CHUNK = 16384
TCP_INFO_LEN = 136

def info(s):
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    state = raw[0]
    bytes_acked = struct.unpack_from("Q", raw, 120)[0]
    return state, bytes_acked

class Conn:
    def __init__(self, kind, i, port):
        self.kind, self.i = kind, i
        self.block = os.urandom(B)
        self.dbl = self.block + self.block
        self.s = socket.create_connection((ip, port), timeout=10)
        self.s.settimeout(1.0)
        self.sent = self.recv = 0
        self.prefix = True
        self.end = None
        self.t_end = None
        self.stop_writing = threading.Event()
        self.done = threading.Event()
        self.acked = 0

    def finish(self, end):
        if self.end is None:
            self.end, self.t_end = end, time.monotonic()
        self.stop_writing.set()

    def writer(self):
        try:
            while not self.stop_writing.is_set():
                o = self.sent % B
                try:
                    n = self.s.send(self.dbl[o:o + CHUNK])
                except socket.timeout:
                    continue
                self.sent += n
            self.s.shutdown(socket.SHUT_WR)
        except OSError as e:
            if self.end is None and not self.stop_writing.is_set():
                self.finish("rst" if isinstance(e, (ConnectionResetError, BrokenPipeError)) else "error:%r" % e)

    def reader(self):
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            try:
                b = self.s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                self.finish("rst")
                break
            except OSError as e:
                self.finish("error:%r" % e)
                break
            if not b:
                self.finish("fin")
                break
            o = self.recv % B
            if self.dbl[o:o + len(b)] != b:
                self.prefix = False
            self.recv += len(b)
        else:
            self.finish("timeout")

    def stuck(self):
        # Reads nothing: the stack's send window to us closes. The end is seen in TCP_INFO:
        # CLOSE (7) after a RST, CLOSE_WAIT (8) after a FIN.
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            state, _ = info(self.s)
            if state == 7:
                self.finish("rst")
                return
            if state == 8:
                self.finish("fin")
                return
            time.sleep(0.01)
        self.finish("timeout")

    def run(self):
        if self.kind == "stuck":
            self.stuck()
        else:
            w = threading.Thread(target=self.writer)
            w.start()
            self.reader()
            w.join(20)
        # Give the last ACK of our FIN a moment, then read what the stack acknowledged.
        time.sleep(0.3)
        try:
            _, acked = info(self.s)
            # One for the SYN, one for the FIN once acknowledged: count data only.
            self.acked = min(max(acked - 1, 0), self.sent)
        except OSError:
            pass
        self.done.set()

conns = [Conn("echo", i, 7) for i in range(n_echo)]
conns += [Conn("discard", i, 9) for i in range(n_discard)]
conns += [Conn("stuck", i, 19) for i in range(n_stuck)]
threads = [threading.Thread(target=c.run) for c in conns]
for t in threads:
    t.start()
t0 = time.monotonic()
while time.monotonic() - t0 < 20:
    if all(c.sent > 0 for c in conns if c.kind != "stuck") and all(c.recv > 0 for c in conns if c.kind == "echo"):
        break
    time.sleep(0.05)
print("started", flush=True)
for t in threads:
    t.join(55)
for c in conns:
    print("conn %s %d end=%s t_end=%.6f sent=%d acked=%d recv=%d prefix=%d" % (
        c.kind, c.i, c.end, c.t_end or 0.0, c.sent, c.acked, c.recv, 1 if c.prefix else 0), flush=True)
print("clients done", flush=True)
"#;

/// One `conn …` line of [`CLIENTS`].
#[derive(Debug)]
struct ConnEnd {
    kind: String,
    end: String,
    t_end: f64,
    sent: u64,
    acked: u64,
    recv: u64,
    prefix: bool,
}

fn parse_conn(line: &str) -> Option<ConnEnd> {
    let mut words = line.split_whitespace();
    if words.next()? != "conn" {
        return None;
    }
    let kind = words.next()?.to_string();
    let _index = words.next()?;
    let fields: BTreeMap<&str, &str> = words.filter_map(|w| w.split_once('=')).collect();
    Some(ConnEnd {
        kind,
        end: fields.get("end")?.to_string(),
        t_end: fields.get("t_end")?.parse().ok()?,
        sent: fields.get("sent")?.parse().ok()?,
        acked: fields.get("acked")?.parse().ok()?,
        recv: fields.get("recv")?.parse().ok()?,
        prefix: *fields.get("prefix")? == "1",
    })
}

#[test]
fn sigterm_during_50_transfers_loses_no_acknowledged_or_written_byte() {
    let Some((ns, mut stack)) = Netstackd::start_gated(&["python3"], &[]) else {
        return;
    };
    let (n_echo, n_discard, n_stuck) = (25, 25, 3);
    let args = [
        "192.0.2.2".to_string(),
        n_echo.to_string(),
        n_discard.to_string(),
        n_stuck.to_string(),
    ];
    let mut clients = ns.spawn(
        "python3",
        &["-c", CLIENTS, &args[0], &args[1], &args[2], &args[3]],
    );
    clients.wait_for_prefix("started", CLIENT_DEADLINE);
    // Let the transfers run at full speed for a moment.
    std::thread::sleep(Duration::from_millis(1000));
    let t_signal = monotonic_secs();
    let exit = stack.child().signal_and_wait(libc::SIGTERM, EXIT_DEADLINE);
    let stats = parse_stats(&exit.stdout);
    let mut ends = Vec::new();
    loop {
        let line = clients.wait_for_line("the clients' report", CLIENT_DEADLINE, |l| {
            l.starts_with("conn ") || l == "clients done"
        });
        if line == "clients done" {
            break;
        }
        ends.push(parse_conn(&line).unwrap_or_else(|| panic!("bad line: {line}")));
    }
    let stat = |name: &str| {
        *stats
            .get(name)
            .unwrap_or_else(|| panic!("no `stat {name}`: {exit:?}"))
    };
    let of = |kind: &'static str| ends.iter().filter(move |c| c.kind == kind);
    let echo_recv: u64 = of("echo").map(|c| c.recv).sum();
    let echo_sent: u64 = of("echo").map(|c| c.sent).sum();
    let discard_acked: u64 = of("discard").map(|c| c.acked).sum();
    let discard_sent: u64 = of("discard").map(|c| c.sent).sum();
    let count_ends = |kind: &'static str| {
        let mut m = BTreeMap::new();
        for c in of(kind) {
            *m.entry(c.end.clone()).or_insert(0) += 1;
        }
        m
    };
    let latest = |kind: &'static str| {
        of(kind)
            .map(|c| c.t_end - t_signal)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let earliest = |kind: &'static str| {
        of(kind)
            .map(|c| c.t_end - t_signal)
            .fold(f64::INFINITY, f64::min)
    };
    println!(
        "shutdown: netstackd exited {:?} {:.2} s after SIGTERM",
        exit.status,
        exit.elapsed.as_secs_f64()
    );
    println!(
        "shutdown: echo: {n_echo} connections sent {echo_sent} bytes, got {echo_recv} back; the \
         service wrote {}; ends {:?}, the last {:.2} s after the signal",
        stat("service.echo.tcp_bytes"),
        count_ends("echo"),
        latest("echo")
    );
    println!(
        "shutdown: discard: {n_discard} connections sent {discard_sent} bytes, the stack \
         acknowledged {discard_acked}; the service read {}; ends {:?}, the last {:.2} s after \
         the signal",
        stat("service.discard.tcp_bytes"),
        count_ends("discard"),
        latest("discard")
    );
    println!(
        "shutdown: stuck chargen readers: ends {:?} between {:.2} and {:.2} s after the signal",
        count_ends("stuck"),
        earliest("stuck"),
        latest("stuck")
    );
    assert_eq!(ends.len(), n_echo + n_discard + n_stuck, "{ends:?}");
    assert_eq!(
        exit.status.and_then(|s| s.code()),
        Some(0),
        "netstackd did not exit 0 within {EXIT_DEADLINE:?} of SIGTERM: {exit:?}"
    );
    assert!(
        !exit.stderr.contains("still running"),
        "a thread was not joined: {}",
        exit.stderr
    );
    for c in of("echo") {
        assert!(c.prefix, "echo returned bytes that were not sent: {c:?}");
        assert!(c.recv <= c.sent, "{c:?}");
        assert_eq!(
            c.end, "fin",
            "an echo connection did not end with FIN: {c:?}"
        );
    }
    assert_eq!(
        echo_recv,
        stat("service.echo.tcp_bytes"),
        "what the echo service wrote did not all reach the peers"
    );
    for c in of("discard") {
        assert_eq!(
            c.end, "fin",
            "a discard connection did not end with FIN: {c:?}"
        );
    }
    assert_eq!(
        discard_acked,
        stat("service.discard.tcp_bytes"),
        "the stack acknowledged bytes the discard service never read"
    );
    for c in of("stuck") {
        assert_eq!(c.end, "rst", "a stuck connection was not reset: {c:?}");
    }
    // Reset at the deadline, not at the signal: the services' stop (0.4 s) came first.
    assert!(
        earliest("stuck") > 0.3,
        "the stuck connections were reset before the services' stop deadline"
    );
    assert!(
        latest("stuck") < EXIT_DEADLINE.as_secs_f64(),
        "the stuck connections were reset only after the deadline"
    );
}
