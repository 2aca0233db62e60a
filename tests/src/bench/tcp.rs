//! TCP measurements: the client loops that drive every system under test (bulk send, bulk
//! receive, request/response, connect–request–close), the discard, chargen and echo services
//! the servers run, and the two threaded servers (netstack over a TAP, Linux's std::net).
//! smoltcp's server and loopback are in [`super::smoltcp`], the in-process cases in
//! [`super::inproc`]. Reported, never asserted.
//!
//! The client loops are written once over [`Conn`], which std's and netstack's `TcpStream`
//! both implement, so the code that measures Linux measures netstack the same way.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::host;
use netstack_link::device::tap::{TapDevice, TapOptions};
use netstack_link::device::Device;
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::{Stack, TcpListener, TcpStream};

/// RFC 862 echo.
pub const ECHO_PORT: u16 = 7;
/// RFC 863 discard.
pub const DISCARD_PORT: u16 = 9;
/// RFC 864 character generator.
pub const CHARGEN_PORT: u16 = 19;
/// How much one `read` or `write` call of a bulk transfer moves at most.
pub const CHUNK: usize = 128 * 1024;
/// A read or write that makes no progress for this long fails the measurement.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connect of the connect–request–close loop may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Request/response exchanges made before the clock starts (ARP, slow start, caches).
pub const WARMUP_EXCHANGES: u32 = 100;
/// One TCP connection as the client loops and the services use it: std's and netstack's
/// `TcpStream` behind one interface.
pub trait Conn: Read + Write + Send + 'static {
    /// Sends FIN after what is buffered (`shutdown(Shutdown::Write)`).
    fn shutdown_write(&self) -> io::Result<()>;
    /// The same read and write timeout (`None`: block).
    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_nodelay(&self, on: bool) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)?;
        self.set_write_timeout(t)
    }

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        std::net::TcpStream::set_nodelay(self, on)
    }
}

impl Conn for TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }

    fn set_timeouts(&self, t: Option<Duration>) -> io::Result<()> {
        self.set_read_timeout(t)?;
        self.set_write_timeout(t)
    }

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, on)
    }
}

/// Which loop a client runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sends `bytes` to the discard service, then FIN, and waits for the server's FIN.
    Discard,
    /// Reads `bytes` from the chargen service, then closes.
    Chargen,
    /// 1-byte request, 1-byte answer, on one connection, for a while.
    RequestResponse,
    /// Connect, 1 byte each way, close, for a while.
    ConnectRequestClose,
}

impl Mode {
    pub const ALL: [Mode; 4] = [
        Mode::Discard,
        Mode::Chargen,
        Mode::RequestResponse,
        Mode::ConnectRequestClose,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Discard => "discard",
            Mode::Chargen => "chargen",
            Mode::RequestResponse => "rr",
            Mode::ConnectRequestClose => "crr",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Mode::Discard => DISCARD_PORT,
            Mode::Chargen => CHARGEN_PORT,
            Mode::RequestResponse | Mode::ConnectRequestClose => ECHO_PORT,
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Mode, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (discard, chargen, rr, crr)"))
    }
}

/// What one client run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Payload bytes moved (bulk) or exchanged (both ways, request loops).
    pub bytes: u64,
    /// Transfers (bulk: 1) or completed exchanges.
    pub ops: u64,
    pub elapsed: Duration,
    /// Per-exchange latency; zero for bulk.
    pub p50: Duration,
    pub p99: Duration,
    /// The connect–request–close loop ran out of local ports before its time was up.
    pub cut_short: bool,
}

impl Outcome {
    pub fn gbit_per_sec(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs() / 1e9
    }

    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.secs()
    }

    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// The line a client run in a namespace prints for the benchmark process to read.
    pub fn to_line(&self) -> String {
        format!(
            "result bytes={} ops={} elapsed_ns={} p50_ns={} p99_ns={} cut_short={}",
            self.bytes,
            self.ops,
            self.elapsed.as_nanos(),
            self.p50.as_nanos(),
            self.p99.as_nanos(),
            u8::from(self.cut_short)
        )
    }

    /// Reads [`to_line`](Self::to_line)'s line back out of a client's whole stdout.
    pub fn from_output(stdout: &str) -> Option<Outcome> {
        let line = stdout.lines().find(|l| l.starts_with("result "))?;
        let field = |key: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        };
        Some(Outcome {
            bytes: field("bytes")?,
            ops: field("ops")?,
            elapsed: Duration::from_nanos(field("elapsed_ns")?),
            p50: Duration::from_nanos(field("p50_ns")?),
            p99: Duration::from_nanos(field("p99_ns")?),
            cut_short: field("cut_short")? != 0,
        })
    }

    fn from_latencies(lat: Vec<Duration>, elapsed: Duration, cut_short: bool) -> Outcome {
        let r = super::icmp::row(String::new(), lat, elapsed);
        Outcome {
            bytes: 2 * r.round_trips,
            ops: r.round_trips,
            elapsed,
            p50: r.p50,
            p99: r.p99,
            cut_short,
        }
    }
}

pub fn io_err(what: &str) -> impl Fn(io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Writes `bytes` to a discard service, sends FIN, and waits for the server's FIN, which it
/// sends once it has read everything: the time is from the first write to that FIN.
pub fn bulk_send<C: Conn>(mut c: C, bytes: u64) -> Result<Outcome, String> {
    c.set_timeouts(Some(IO_TIMEOUT))
        .map_err(io_err("timeouts"))?;
    let buf = vec![0xa5u8; CHUNK];
    let start = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        c.write_all(&buf[..n])
            .map_err(|e| format!("write after {} bytes: {e}", bytes - left))?;
        left -= n as u64;
    }
    c.shutdown_write().map_err(io_err("shutdown(Write)"))?;
    let mut sink = [0u8; 512];
    loop {
        match c.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("waiting for the server's FIN: {e}")),
        }
    }
    Ok(Outcome {
        bytes,
        ops: 1,
        elapsed: start.elapsed(),
        ..Outcome::default()
    })
}

/// Reads at least `bytes` from a chargen service, then closes (a RST, since the service keeps
/// sending): the time is from the first read call to the last byte wanted.
pub fn bulk_receive<C: Conn>(mut c: C, bytes: u64) -> Result<Outcome, String> {
    c.set_timeouts(Some(IO_TIMEOUT))
        .map_err(io_err("timeouts"))?;
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut got = 0u64;
    while got < bytes {
        match c.read(&mut buf) {
            Ok(0) => return Err(format!("the server closed after {got} bytes")),
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        }
    }
    Ok(Outcome {
        bytes: got,
        ops: 1,
        elapsed: start.elapsed(),
        ..Outcome::default()
    })
}

/// One byte to an echo service and its echo back.
fn exchange<C: Conn>(c: &mut C) -> io::Result<()> {
    let mut b = [0x2a];
    c.write_all(&b)?;
    c.read_exact(&mut b)
}

/// 1-byte requests and their echoes on one connection for `duration`, after
/// [`WARMUP_EXCHANGES`] that are not counted.
pub fn request_response<C: Conn>(mut c: C, duration: Duration) -> Result<Outcome, String> {
    c.set_timeouts(Some(IO_TIMEOUT))
        .map_err(io_err("timeouts"))?;
    c.set_nodelay(true).map_err(io_err("nodelay"))?;
    for i in 0..WARMUP_EXCHANGES {
        exchange(&mut c).map_err(|e| format!("warm-up exchange {i}: {e}"))?;
    }
    let mut lat = Vec::with_capacity(1 << 16);
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        exchange(&mut c).map_err(|e| format!("exchange {}: {e}", lat.len()))?;
        lat.push(t.elapsed());
    }
    Ok(Outcome::from_latencies(lat, start.elapsed(), false))
}

/// Connections for `duration`, each: connect, 1 byte each way, close (the client closes first,
/// so TIME-WAIT stays on the client's side). One connection before the clock starts. Running
/// out of local ports ends the run early (`cut_short`); any other failure fails it.
pub fn connect_request_close<C: Conn>(
    mut connect: impl FnMut() -> io::Result<C>,
    duration: Duration,
) -> Result<Outcome, String> {
    let mut once = || -> io::Result<()> {
        let mut c = connect()?;
        c.set_timeouts(Some(IO_TIMEOUT))?;
        c.set_nodelay(true)?;
        exchange(&mut c)
    };
    once().map_err(io_err("warm-up connection"))?;
    let mut lat = Vec::with_capacity(1 << 15);
    let mut cut_short = false;
    let start = Instant::now();
    while start.elapsed() < duration {
        let t = Instant::now();
        match once() {
            Ok(()) => lat.push(t.elapsed()),
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
                cut_short = true;
                break;
            }
            Err(e) => return Err(format!("connection {}: {e}", lat.len())),
        }
    }
    Ok(Outcome::from_latencies(lat, start.elapsed(), cut_short))
}

/// Runs `mode` against `target` with std's client: what a client role prints.
pub fn std_client(
    mode: Mode,
    target: SocketAddr,
    bytes: u64,
    duration: Duration,
) -> Result<Outcome, String> {
    let connect = || std::net::TcpStream::connect_timeout(&target, CONNECT_TIMEOUT);
    let first = || connect().map_err(|e| format!("connect {target}: {e}"));
    match mode {
        Mode::Discard => bulk_send(first()?, bytes),
        Mode::Chargen => bulk_receive(first()?, bytes),
        Mode::RequestResponse => request_response(first()?, duration),
        Mode::ConnectRequestClose => connect_request_close(connect, duration),
    }
}

// ---------------------------------------------------------------------------------------------
// Services.

/// A chargen-like pattern: 72-character lines of rotating printable ASCII (RFC 864), CRLF
/// after each, `len` bytes.
pub fn chargen_pattern(len: usize) -> Vec<u8> {
    let printable: Vec<u8> = (b' '..=b'~').collect();
    let mut out = Vec::with_capacity(len + 74);
    let mut line = 0;
    while out.len() < len {
        out.extend((0..72).map(|i| printable[(line + i) % printable.len()]));
        out.extend_from_slice(b"\r\n");
        line += 1;
    }
    out.truncate(len);
    out
}

/// RFC 863: reads and drops everything until the client's FIN, then closes.
pub fn discard<C: Conn>(mut c: C) {
    let _ = c.set_timeouts(None);
    let mut buf = vec![0u8; CHUNK];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

/// RFC 864 over TCP, as a bulk source: writes the pattern until a write fails (the client
/// closed, which for unread data is a RST). The bench client sends nothing, so there is nothing
/// to discard.
pub fn chargen<C: Conn>(mut c: C) {
    let _ = c.set_timeouts(None);
    let pattern = chargen_pattern(CHUNK);
    while c.write_all(&pattern).is_ok() {}
}

/// RFC 862: writes back what it reads until the client's FIN, then closes.
pub fn echo<C: Conn>(mut c: C) {
    let _ = c.set_timeouts(None);
    let _ = c.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

/// The service a port serves.
pub fn service_for<C: Conn>(port: u16) -> fn(C) {
    match port {
        DISCARD_PORT => discard::<C>,
        CHARGEN_PORT => chargen::<C>,
        _ => echo::<C>,
    }
}

/// Threads per port, each accepting a connection and serving it to its end before accepting
/// the next. No thread is created per connection: a new thread waits for a CPU behind every
/// runnable task, so on a busy machine thread creation, not the stack, would set the
/// connect–request–close rate.
pub const ACCEPTORS_PER_PORT: usize = 4;

/// [`ACCEPTORS_PER_PORT`] threads serving `accept`'s connections for the life of the process.
pub fn serve_forever<C: Conn>(
    what: String,
    accept: impl Fn() -> io::Result<C> + Send + Sync + 'static,
    service: fn(C),
) {
    let accept = Arc::new(accept);
    for _ in 0..ACCEPTORS_PER_PORT {
        let (accept, what) = (accept.clone(), what.clone());
        thread::spawn(move || loop {
            match accept() {
                Ok(c) => service(c),
                Err(e) => {
                    eprintln!("bench: accept on {what}: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        });
    }
}

/// Echo, discard and chargen on std's TCP sockets at `addr`, and UDP echo (7) and the counting
/// sink (9, [`super::udp::sink_loop`]); returns once all of them listen.
pub fn serve_std(addr: Ipv4Addr) -> Result<(), String> {
    for port in [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT] {
        let l = std::net::TcpListener::bind((addr, port))
            .map_err(|e| format!("bind {addr}:{port}: {e}"))?;
        let accept = move || l.accept().map(|(c, _)| c);
        serve_forever(format!("{addr}:{port}"), accept, service_for(port));
    }
    for port in [ECHO_PORT, DISCARD_PORT] {
        let sock = std::net::UdpSocket::bind((addr, port))
            .map_err(|e| format!("bind UDP {addr}:{port}: {e}"))?;
        super::udp::serve_forever(sock, port == DISCARD_PORT);
    }
    Ok(())
}

/// Where a server on a TAP lives: the device's name, the stack's address, the kernel side's.
#[derive(Debug, Clone)]
pub struct TapSetup {
    pub tap: String,
    pub addr: Ipv4Cidr,
    pub host_addr: Ipv4Cidr,
}

/// How the netstack server opens its TAP and sizes its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetstackOptions {
    /// Network and as many transport workers.
    pub workers: usize,
    /// Ask the kernel for the virtio-net header offloads (checksum, TSO).
    pub offload: bool,
    /// TAP queues, each with its own link RX/TX pair.
    pub queues: usize,
}

/// Opens the TAP as `opts` asks; the device and what the kernel granted, for the ready line.
fn open_tap(name: &str, opts: &NetstackOptions) -> Result<(TapDevice, String), String> {
    let asked = TapOptions {
        offload: opts.offload,
        queues: opts.queues,
    };
    let dev = TapDevice::open_with(name, &asked).map_err(|e| format!("TAP {name}: {e}"))?;
    let negotiated = format!(
        "offloads: {}, {} queue(s) open",
        dev.offloads(),
        dev.queues()
    );
    Ok((dev, negotiated))
}

/// A netstack [`Stack`] over a new TAP opened as `opts` says, its kernel side configured and
/// up, serving TCP echo, discard and chargen with `TcpListener` and [`ACCEPTORS_PER_PORT`]
/// threads a port, and UDP echo (7) and the counting sink (9, [`super::udp::sink_loop`]). The
/// stack lives as long as the process; the text says what the device negotiated.
pub fn serve_netstack(t: &TapSetup, opts: &NetstackOptions) -> Result<(Stack, String), String> {
    let (dev, negotiated) = open_tap(&t.tap, opts)?;
    host::set_ipv4(&t.tap, t.host_addr.addr, t.host_addr.prefix_len)
        .and_then(|()| host::set_up(&t.tap))
        .map_err(|e| format!("configuring {}: {e}", t.tap))?;
    // As netstackd runs by default.
    let stack = Stack::builder(Arc::new(dev), t.addr)
        .workers(opts.workers, opts.workers)
        .spin(netstack_runtime::SERVER_SPIN)
        .build()
        .map_err(|e| format!("building the stack: {e}"))?;
    for port in [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT] {
        let l = TcpListener::bind(&stack, ("0.0.0.0", port))
            .map_err(|e| format!("bind port {port}: {e}"))?;
        let accept = move || l.accept().map(|(c, _)| c);
        serve_forever(format!("port {port}"), accept, service_for(port));
    }
    for port in [ECHO_PORT, DISCARD_PORT] {
        let sock = netstack_runtime::UdpSocket::bind(&stack, ("0.0.0.0", port))
            .map_err(|e| format!("bind UDP port {port}: {e}"))?;
        super::udp::serve_forever(sock, port == DISCARD_PORT);
    }
    Ok((stack, negotiated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_server(port_service: fn(std::net::TcpStream)) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        serve_forever(
            "test".into(),
            move || l.accept().map(|(c, _)| c),
            port_service,
        );
        addr
    }

    #[test]
    fn outcome_line_reads_back_what_was_written() {
        let o = Outcome {
            bytes: 1 << 30,
            ops: 17,
            elapsed: Duration::from_millis(2500),
            p50: Duration::from_nanos(41_000),
            p99: Duration::from_nanos(97_500),
            cut_short: true,
        };
        let out = format!("warming up\n{}\n", o.to_line());
        assert_eq!(Outcome::from_output(&out), Some(o));
        assert_eq!(Outcome::from_output("result bytes=1\n"), None);
    }

    #[test]
    fn every_client_loop_completes_against_std_services_on_loopback() {
        let d = Duration::from_millis(100);
        let discard_at = loopback_server(discard);
        let o = std_client(Mode::Discard, discard_at, 3 << 20, d).unwrap();
        assert_eq!((o.bytes, o.ops), (3 << 20, 1));
        let chargen_at = loopback_server(chargen);
        let o = std_client(Mode::Chargen, chargen_at, 3 << 20, d).unwrap();
        assert!(o.bytes >= 3 << 20, "{o:?}");
        let echo_at = loopback_server(echo);
        for mode in [Mode::RequestResponse, Mode::ConnectRequestClose] {
            let o = std_client(mode, echo_at, 0, d).unwrap();
            assert!(o.ops > 0 && o.bytes == 2 * o.ops, "{mode:?}: {o:?}");
            assert!(o.p50 <= o.p99, "{mode:?}: {o:?}");
        }
    }

    #[test]
    fn chargen_pattern_is_72_printable_characters_then_crlf() {
        let p = chargen_pattern(200);
        assert_eq!(p.len(), 200);
        assert_eq!(&p[72..74], b"\r\n");
        assert!(p[..72].iter().all(|b| (b' '..=b'~').contains(b)));
        assert_eq!(p[74], p[1], "each line starts one character later");
    }
}
