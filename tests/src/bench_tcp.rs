//! TCP measurements for `bench-tcp`: the client loops that drive every system under test (bulk
//! send, bulk receive, request/response, connect–request–close), the discard, chargen and echo
//! services the servers run, the servers themselves (netstack over a TAP, smoltcp's
//! single-threaded poll loop over a TAP, Linux's std::net on a veth), the in-process cases (two
//! netstack stacks over the in-memory link, smoltcp's loopback, resident bytes per idle
//! connection), and the Markdown table and JSON lines the results end up in.
//! Reported, never asserted.
//!
//! The client loops are written once over [`Conn`], which std's and netstack's `TcpStream`
//! both implement, so the code that measures Linux measures netstack the same way.

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netstack_link::device::host;
use netstack_link::device::memory::MemoryLinkConfig;
use netstack_link::device::tap::TapDevice;
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::{Stack, TcpListener, TcpStream};

use crate::inprocess::{pair_with, B};
use crate::netns::{list_namespaces, NetNs, NS_PREFIX};

/// RFC 862 echo.
pub const ECHO_PORT: u16 = 7;
/// RFC 863 discard.
pub const DISCARD_PORT: u16 = 9;
/// RFC 864 character generator.
pub const CHARGEN_PORT: u16 = 19;
/// What every server role prints once it serves.
pub const SERVE_READY: &str = "serve ready";
/// How much one `read` or `write` call of a bulk transfer moves at most.
pub const CHUNK: usize = 128 * 1024;
/// A read or write that makes no progress for this long fails the measurement.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connect of the connect–request–close loop may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Request/response exchanges made before the clock starts (ARP, slow start, caches).
pub const WARMUP_EXCHANGES: u32 = 100;
/// smoltcp's socket buffers, as its own `benchmark` and `loopback_benchmark` examples size them.
pub const SMOLTCP_BUFFER: usize = 65_535;
/// Listening smoltcp sockets per port: one can serve while the last one finishes closing.
pub const SMOLTCP_SOCKETS_PER_PORT: usize = 4;
/// The longest the smoltcp poll loop sleeps when nothing is due.
const SMOLTCP_IDLE_WAIT: Duration = Duration::from_millis(100);

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

    fn from_latencies(mut lat: Vec<Duration>, elapsed: Duration, cut_short: bool) -> Outcome {
        lat.sort_unstable();
        let pick = |q: f64| {
            lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Outcome {
            bytes: 2 * lat.len() as u64,
            ops: lat.len() as u64,
            elapsed,
            p50: pick(0.50),
            p99: pick(0.99),
            cut_short,
        }
    }
}

fn io_err(what: &str) -> impl Fn(io::Error) -> String + '_ {
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
fn serve_forever<C: Conn>(
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
                    eprintln!("bench-tcp: accept on {what}: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
        });
    }
}

/// Echo, discard and chargen on std's sockets at `addr`; returns once all three listen.
pub fn serve_std(addr: Ipv4Addr) -> Result<(), String> {
    for port in [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT] {
        let l = std::net::TcpListener::bind((addr, port))
            .map_err(|e| format!("bind {addr}:{port}: {e}"))?;
        let accept = move || l.accept().map(|(c, _)| c);
        serve_forever(format!("{addr}:{port}"), accept, service_for(port));
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

/// A netstack [`Stack`] over a new TAP, its kernel side configured and up, serving echo,
/// discard and chargen with `TcpListener` and [`ACCEPTORS_PER_PORT`] threads a port; `workers` network and
/// as many transport workers. The stack lives as long as the process.
pub fn serve_netstack(t: &TapSetup, workers: usize) -> Result<Stack, String> {
    let dev = TapDevice::open(&t.tap).map_err(|e| format!("TAP {}: {e}", t.tap))?;
    host::set_ipv4(&t.tap, t.host_addr.addr, t.host_addr.prefix_len)
        .and_then(|()| host::set_up(&t.tap))
        .map_err(|e| format!("configuring {}: {e}", t.tap))?;
    let stack = Stack::builder(Arc::new(dev), t.addr)
        .workers(workers, workers)
        .build()
        .map_err(|e| format!("building the stack: {e}"))?;
    for port in [ECHO_PORT, DISCARD_PORT, CHARGEN_PORT] {
        let l = TcpListener::bind(&stack, ("0.0.0.0", port))
            .map_err(|e| format!("bind port {port}: {e}"))?;
        let accept = move || l.accept().map(|(c, _)| c);
        serve_forever(format!("port {port}"), accept, service_for(port));
    }
    Ok(stack)
}

/// smoltcp over a new TAP in its usual single-threaded poll loop (the shape of its `benchmark`
/// example): discard and chargen, [`SMOLTCP_SOCKETS_PER_PORT`] listening sockets each with
/// `buffer`-byte receive and send buffers ([`SMOLTCP_BUFFER`] in its examples), a closed socket
/// listening again. Prints `ready` when it serves; never returns unless the device fails.
pub fn serve_smoltcp(t: &TapSetup, buffer: usize, ready: &str) -> Result<(), String> {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{wait, Medium, TunTapInterface};
    use smoltcp::socket::tcp;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
    use std::os::fd::AsRawFd;

    let mut dev = TunTapInterface::new(&t.tap, Medium::Ethernet)
        .map_err(|e| format!("TAP {}: {e}", t.tap))?;
    host::set_ipv4(&t.tap, t.host_addr.addr, t.host_addr.prefix_len)
        .and_then(|()| host::set_up(&t.tap))
        .map_err(|e| format!("configuring {}: {e}", t.tap))?;
    let fd = dev.as_raw_fd();
    let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x02]).into());
    config.random_seed = seed();
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    let a = t.addr.addr.octets();
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(
            IpAddress::v4(a[0], a[1], a[2], a[3]),
            t.addr.prefix_len,
        ));
    });
    let mut sockets = SocketSet::new(vec![]);
    let mut served = Vec::new();
    for port in [DISCARD_PORT, CHARGEN_PORT] {
        for _ in 0..SMOLTCP_SOCKETS_PER_PORT {
            let s = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; buffer]),
                tcp::SocketBuffer::new(vec![0; buffer]),
            );
            served.push((sockets.add(s), port));
        }
    }
    let pattern = chargen_pattern(buffer);
    println!("{ready} smoltcp on {} as {}", t.tap, t.addr.addr);
    loop {
        let now = smoltcp::time::Instant::now();
        iface.poll(now, &mut dev, &mut sockets);
        for &(h, port) in &served {
            let s = sockets.get_mut::<tcp::Socket>(h);
            if !s.is_open() {
                s.listen(port).map_err(|e| format!("listen {port}: {e}"))?;
                continue;
            }
            if port == DISCARD_PORT {
                while s.can_recv() {
                    let _ = s.recv(|b| (b.len(), ()));
                }
            } else {
                while s.can_send() {
                    let _ = s.send(|b| {
                        let n = b.len().min(pattern.len());
                        b[..n].copy_from_slice(&pattern[..n]);
                        (n, ())
                    });
                }
            }
            // The client's FIN: everything it sent has been read, so close our side.
            if s.state() == tcp::State::CloseWait && !s.can_recv() {
                s.close();
            }
        }
        let wait_for =
            iface
                .poll_delay(now, &sockets)
                .unwrap_or(smoltcp::time::Duration::from_millis(
                    SMOLTCP_IDLE_WAIT.as_millis() as u64,
                ));
        if wait_for > smoltcp::time::Duration::ZERO {
            wait(fd, Some(wait_for)).map_err(|e| format!("waiting on {}: {e}", t.tap))?;
        }
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------------
// In-process cases.

/// One bulk flow between two netstack stacks over the in-memory link: stack A sends `bytes` to
/// a discard reader on stack B with the same [`bulk_send`] the TAP clients use. `workers`
/// network and transport workers per stack.
pub fn memory_bulk(bytes: u64, workers: usize) -> Result<Outcome, String> {
    let (a, b) = pair_with(MemoryLinkConfig::default(), Some((workers, workers)))?;
    let listener =
        TcpListener::bind(&b, ("0.0.0.0", DISCARD_PORT)).map_err(io_err("bind on stack B"))?;
    let target = SocketAddr::V4(SocketAddrV4::new(B, DISCARD_PORT));
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    thread::scope(|s| {
        let server = s.spawn(|| {
            listener
                .accept_until(Some(deadline))
                .map(|(c, _)| discard(c))
        });
        let sent = TcpStream::connect_timeout(&a, &target, CONNECT_TIMEOUT)
            .map_err(|e| format!("connect {target}: {e}"))
            .and_then(|c| bulk_send(c, bytes));
        let served = server
            .join()
            .map_err(|_| "the reader panicked".to_string())?;
        served.map_err(io_err("accept on stack B"))?;
        sent
    })
}

/// How smoltcp's in-process loopback is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackFraming {
    /// As its `loopback_benchmark` runs: the `Loopback` device's 65,535-byte MTU, checksums
    /// neither computed nor checked.
    Benchmark,
    /// Like the in-memory link netstack runs over: Ethernet frames of at most 1,514 bytes (IP
    /// MTU 1,500), checksums computed and checked.
    Ethernet,
}

/// A device that passes frames through and says other capabilities than the one it wraps.
struct Framed<D> {
    inner: D,
    caps: smoltcp::phy::DeviceCapabilities,
}

impl<D: smoltcp::phy::Device> smoltcp::phy::Device for Framed<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        now: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(now)
    }

    fn transmit(&mut self, now: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(now)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.caps.clone()
    }
}

/// smoltcp to smoltcp in one thread over its `Loopback` device, framed as `framing` says, the
/// way its `loopback_benchmark` drives it: a client socket sends `bytes` to a server socket,
/// both with [`SMOLTCP_BUFFER`]-byte buffers, the data neither written nor read by an
/// application (only buffer space is claimed), so this is smoltcp's protocol cost alone.
pub fn smoltcp_loopback(bytes: u64, framing: LoopbackFraming) -> Result<Outcome, String> {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{ChecksumCapabilities, Device, Loopback, Medium};
    use smoltcp::socket::tcp;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    let inner = Loopback::new(Medium::Ethernet);
    let mut caps = inner.capabilities();
    if framing == LoopbackFraming::Ethernet {
        // For an Ethernet medium smoltcp counts the 14-byte header in the MTU.
        caps.max_transmission_unit = 1514;
        caps.checksum = ChecksumCapabilities::default();
    }
    let mut dev = Framed { inner, caps };
    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x02]).into());
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24));
    });
    let socket = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SMOLTCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SMOLTCP_BUFFER]),
        )
    };
    let mut sockets = SocketSet::new(vec![]);
    let server = sockets.add(socket());
    let client = sockets.add(socket());
    sockets
        .get_mut::<tcp::Socket>(server)
        .listen(DISCARD_PORT)
        .map_err(|e| format!("smoltcp listen: {e}"))?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(
            iface.context(),
            (IpAddress::v4(192, 0, 2, 2), DISCARD_PORT),
            49_152,
        )
        .map_err(|e| format!("smoltcp connect: {e}"))?;
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let give_up = start + Duration::from_secs(60) + Duration::from_nanos(bytes);
    while received < bytes {
        if Instant::now() > give_up {
            return Err(format!("smoltcp loopback stalled after {received} bytes"));
        }
        iface.poll(smoltcp::time::Instant::now(), &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            received += s.recv(|b| (b.len(), b.len())).unwrap_or(0) as u64;
        }
        let c = sockets.get_mut::<tcp::Socket>(client);
        while c.can_send() && sent < bytes {
            sent += c
                .send(|b| {
                    let n = b.len().min((bytes - sent) as usize);
                    (n, n)
                })
                .unwrap_or(0) as u64;
        }
    }
    Ok(Outcome {
        bytes: received,
        ops: 1,
        elapsed: start.elapsed(),
        ..Outcome::default()
    })
}

/// What the idle-connection case measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Idle {
    /// Established connections held (each with an end on both stacks).
    pub count: u64,
    /// Resident bytes of the process before the first and after the last connection.
    pub rss_before: u64,
    pub rss_after: u64,
    /// How long opening them all took.
    pub elapsed: Duration,
    /// Connects that failed with `AddrNotAvailable` and were tried again (see
    /// [`CONNECT_RETRIES`]).
    pub retries: u64,
}

impl Idle {
    /// Resident bytes per connection, both of its ends (both stacks are in this process).
    pub fn per_connection(&self) -> f64 {
        self.rss_after.saturating_sub(self.rss_before) as f64 / self.count.max(1) as f64
    }
}

/// The process's resident set, from `/proc/self/statm` (its second field, in pages).
pub fn resident_bytes() -> Result<u64, String> {
    let statm =
        std::fs::read_to_string("/proc/self/statm").map_err(io_err("reading /proc/self/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("/proc/self/statm unreadable: {statm:?}"))?;
    // SAFETY: sysconf has no memory preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(pages * u64::try_from(page).unwrap_or(4096))
}

/// How often one of the idle connections is tried again after `AddrNotAvailable`. The runtime
/// picks a local port by probing 64 consecutive ports from a random start, so once thousands of
/// connections go to one remote address a probe can meet a run of 64 taken ports while most of
/// the range is free; a new attempt starts somewhere else. The retries are counted and shown.
pub const CONNECT_RETRIES: u32 = 16;

/// `count` idle established connections between two netstack stacks over the in-memory link:
/// the resident set before and after (one warm-up connection first, the vectors that hold the
/// streams reserved before). `progress` is called every 1,000 connections.
pub fn idle_connections(
    count: usize,
    workers: usize,
    mut progress: impl FnMut(usize),
) -> Result<Idle, String> {
    let (a, b) = pair_with(MemoryLinkConfig::default(), Some((workers, workers)))?;
    let listener =
        TcpListener::bind(&b, ("0.0.0.0", DISCARD_PORT)).map_err(io_err("bind on stack B"))?;
    let target = SocketAddr::V4(SocketAddrV4::new(B, DISCARD_PORT));
    let connect = || {
        TcpStream::connect_timeout(&a, &target, CONNECT_TIMEOUT)
            .map_err(|e| format!("connect {target}: {e}"))
    };
    let accept = |until| {
        listener
            .accept_until(Some(until))
            .map(|(c, _)| c)
            .map_err(io_err("accept on stack B"))
    };
    // Warm-up: ARP on both sides, the first connection's lazy allocations.
    let warm = connect()?;
    let warm_peer = accept(Instant::now() + CONNECT_TIMEOUT)?;
    let mut clients = Vec::with_capacity(count);
    let mut servers: Vec<TcpStream> = Vec::with_capacity(count);
    thread::sleep(Duration::from_millis(100));
    let rss_before = resident_bytes()?;
    let start = Instant::now();
    let until = start + CONNECT_TIMEOUT + Duration::from_millis(20) * count as u32;
    let mut retries = 0u64;
    let accepted = thread::scope(|s| {
        let acceptor = s.spawn(|| -> Result<Vec<TcpStream>, String> {
            while servers.len() < count {
                servers.push(accept(until).map_err(|e| format!("{e} ({})", servers.len()))?);
            }
            Ok(std::mem::take(&mut servers))
        });
        let mut opened = || -> Result<(), String> {
            for i in 0..count {
                let mut tries = 0;
                let c = loop {
                    match TcpStream::connect_timeout(&a, &target, CONNECT_TIMEOUT) {
                        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
                            tries += 1;
                            retries += 1;
                            if tries > CONNECT_RETRIES {
                                break Err(e);
                            }
                        }
                        other => break other,
                    }
                };
                clients.push(c.map_err(|e| format!("connect {target}: {e} (after {i})"))?);
                if (i + 1) % 1000 == 0 {
                    progress(i + 1);
                }
            }
            Ok(())
        };
        let opened = opened();
        let accepted = acceptor
            .join()
            .map_err(|_| "the acceptor panicked".to_string())?;
        opened.and(accepted)
    })?;
    let elapsed = start.elapsed();
    // Let the last handshakes' ACKs land and the workers go idle.
    thread::sleep(Duration::from_millis(500));
    let rss_after = resident_bytes()?;
    drop((clients, accepted, warm, warm_peer));
    Ok(Idle {
        count: count as u64,
        rss_before,
        rss_after,
        elapsed,
        retries,
    })
}

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

// ---------------------------------------------------------------------------------------------
// The table and the JSON lines.

/// The systems under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    NetstackTap,
    SmoltcpTap,
    LinuxVeth,
    NetstackMemory,
    /// [`LoopbackFraming::Ethernet`].
    SmoltcpLoopback,
    /// [`LoopbackFraming::Benchmark`].
    SmoltcpLoopbackBenchmark,
}

impl System {
    /// For the table.
    pub fn title(self) -> &'static str {
        match self {
            System::NetstackTap => "netstack, TAP",
            System::SmoltcpTap => "smoltcp, TAP",
            System::LinuxVeth => "Linux, veth",
            System::NetstackMemory => "netstack ↔ netstack, in-memory link",
            System::SmoltcpLoopback => "smoltcp ↔ smoltcp, loopback, MTU 1500, checksums",
            System::SmoltcpLoopbackBenchmark => {
                "smoltcp ↔ smoltcp, loopback as its loopback_benchmark (MTU 65535, no checksums)"
            }
        }
    }

    /// For the JSON lines.
    pub fn key(self) -> &'static str {
        match self {
            System::NetstackTap => "netstack-tap",
            System::SmoltcpTap => "smoltcp-tap",
            System::LinuxVeth => "linux-veth",
            System::NetstackMemory => "netstack-memory",
            System::SmoltcpLoopback => "smoltcp-loopback",
            System::SmoltcpLoopbackBenchmark => "smoltcp-loopback-benchmark",
        }
    }
}

/// The cases, each with the system it is divided by and the issue's target for netstack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Linux sends, the stack receives.
    Discard,
    /// The stack sends, Linux receives.
    Chargen,
    RequestResponse,
    ConnectRequestClose,
    MemoryBulk,
    IdleConnections,
}

impl Case {
    pub fn key(self) -> &'static str {
        match self {
            Case::Discard => "discard",
            Case::Chargen => "chargen",
            Case::RequestResponse => "request-response",
            Case::ConnectRequestClose => "connect-request-close",
            Case::MemoryBulk => "memory-bulk",
            Case::IdleConnections => "idle-connections",
        }
    }

    /// The row its figures are divided by.
    pub fn baseline(self) -> Option<System> {
        match self {
            Case::Discard | Case::Chargen => Some(System::SmoltcpTap),
            Case::RequestResponse | Case::ConnectRequestClose => Some(System::LinuxVeth),
            Case::MemoryBulk => Some(System::SmoltcpLoopback),
            Case::IdleConnections => None,
        }
    }

    /// Issue 7's target for netstack's row: a least ratio, or (idle) a most bytes.
    pub fn target(self) -> f64 {
        match self {
            Case::Discard | Case::Chargen => 1.0,
            Case::RequestResponse | Case::ConnectRequestClose => 0.8,
            Case::MemoryBulk => 0.5,
            Case::IdleConnections => 4096.0,
        }
    }
}

/// A measured figure.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    Bulk(Outcome),
    Exchanges(Outcome),
    Idle(Idle),
}

impl Figure {
    /// The number compared: Gbit/s, exchanges a second, or resident bytes per connection.
    pub fn value(&self) -> f64 {
        match self {
            Figure::Bulk(o) => o.gbit_per_sec(),
            Figure::Exchanges(o) => o.per_sec(),
            Figure::Idle(i) => i.per_connection(),
        }
    }

    pub fn unit(&self) -> &'static str {
        match self {
            Figure::Bulk(_) => "Gbit/s",
            Figure::Exchanges(_) => "per second",
            Figure::Idle(_) => "bytes per connection",
        }
    }

    /// A value of this figure's kind, as the table writes it.
    fn value_text(&self, v: f64) -> String {
        match self {
            Figure::Bulk(_) => format!("{v:.2}"),
            _ => thousands(v),
        }
    }

    fn text(&self) -> String {
        match self {
            Figure::Bulk(o) => format!("{:.2} Gbit/s", o.gbit_per_sec()),
            Figure::Exchanges(o) => format!(
                "{}/s (p50 {:.0} µs, p99 {:.0} µs{})",
                thousands(o.per_sec()),
                o.p50.as_secs_f64() * 1e6,
                o.p99.as_secs_f64() * 1e6,
                if o.cut_short {
                    ", ran out of ports"
                } else {
                    ""
                }
            ),
            Figure::Idle(i) => format!(
                "{} B per connection ({} B per end; RSS +{:.1} MiB{})",
                thousands(i.per_connection()),
                thousands(i.per_connection() / 2.0),
                i.rss_after.saturating_sub(i.rss_before) as f64 / (1 << 20) as f64,
                if i.retries > 0 {
                    format!("; {} connects retried after AddrNotAvailable", i.retries)
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// One row: a case on one system.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: Case,
    /// How the case is described in the table (with its size).
    pub case_title: String,
    pub system: System,
    /// The median run's figure (the lower middle one of an even count), or why none was had.
    pub result: Result<Figure, String>,
    /// Every measured run's value, in the order run (one when nothing was repeated).
    pub samples: Vec<f64>,
}

/// The median of `runs` by [`Figure::value`] (the lower middle one of an even count; failed runs
/// left out, the first failure when none succeeded) and every successful run's value in order.
pub fn median_run(runs: Vec<Result<Figure, String>>) -> (Result<Figure, String>, Vec<f64>) {
    median_by(runs, Figure::value)
}

/// The median of `runs` by `value`, as [`median_run`] picks it, and every successful run's
/// value in the order run.
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

impl Row {
    fn value(&self) -> Option<f64> {
        self.result.as_ref().ok().map(Figure::value)
    }

    /// This row's figure over its case's baseline row's figure, when both were measured.
    pub fn ratio(&self, rows: &[Row]) -> Option<f64> {
        let base = self.case.baseline()?;
        let b = rows
            .iter()
            .find(|r| r.case == self.case && r.system == base)?
            .value()?;
        Some(self.value()? / b)
    }

    fn is_netstack(&self) -> bool {
        matches!(self.system, System::NetstackTap | System::NetstackMemory)
    }

    /// Whether netstack's row meets the issue's target; `None` for other rows or no figure.
    pub fn target_met(&self, rows: &[Row]) -> Option<bool> {
        if !self.is_netstack() {
            return None;
        }
        match self.case {
            Case::IdleConnections => Some(self.value()? < self.case.target()),
            _ => Some(self.ratio(rows)? >= self.case.target()),
        }
    }
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

/// The rows as one Markdown table: the case (named once, on its first row), the system, the
/// figure, the baseline named and this row's ratio to it, and netstack's target.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| case | system | result | baseline | ratio | target (netstack) |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut last_case = None;
    for r in rows {
        let case = if last_case == Some(r.case) {
            ""
        } else {
            r.case_title.as_str()
        };
        last_case = Some(r.case);
        let result = match &r.result {
            Ok(f) if r.samples.len() > 1 => {
                let lo = r.samples.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = r.samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                format!(
                    "{}; median of {}, {}–{}",
                    f.text(),
                    r.samples.len(),
                    f.value_text(lo),
                    f.value_text(hi)
                )
            }
            Ok(f) => f.text(),
            Err(e) => format!("not measured: {}", e.lines().next().unwrap_or("")),
        };
        let baseline = match r.case.baseline() {
            Some(b) if b == r.system => "(this row)".to_string(),
            Some(b) => b.title().to_string(),
            None => "—".to_string(),
        };
        let ratio = r
            .ratio(rows)
            .map_or("—".to_string(), |x| format!("{x:.2}×"));
        let target = match (r.is_netstack(), r.case, r.target_met(rows)) {
            (false, ..) => String::new(),
            (true, Case::IdleConnections, met) => format!("< 4 KiB{}", verdict(met)),
            (true, c, met) => format!("≥ {:.1}×{}", c.target(), verdict(met)),
        };
        let _ = writeln!(
            out,
            "| {case} | {} | {result} | {baseline} | {ratio} | {target} |",
            r.system.title()
        );
    }
    out
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => ": met",
        Some(false) => ": missed",
        None => "",
    }
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

/// What the JSON lines say about the run as a whole.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Seconds since the Unix epoch when the run started.
    pub started: u64,
    pub quick: bool,
    pub workers: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Runs of each TAP, veth and in-memory bulk measurement.
    pub repeat: usize,
    /// smoltcp's socket buffers on its TAP.
    pub smoltcp_buffer: usize,
}

/// One JSON object per row.
pub fn json_lines(rows: &[Row], run: &RunInfo) -> String {
    let mut out = String::new();
    for r in rows {
        let mut o = format!(
            "{{\"bench\":\"bench-tcp\",\"started_unix\":{},\"quick\":{},\"workers\":{},\
             \"bulk_bytes\":{},\"seconds_per_case\":{},\"repeat\":{},\"smoltcp_buffer\":{},\
             \"case\":{},\"case_title\":{},\"system\":{}",
            run.started,
            run.quick,
            run.workers,
            run.bytes,
            json_num(run.seconds),
            run.repeat,
            run.smoltcp_buffer,
            json_str(r.case.key()),
            json_str(&r.case_title),
            json_str(r.system.key())
        );
        match &r.result {
            Ok(f) => {
                let _ = write!(
                    o,
                    ",\"value\":{},\"unit\":{}",
                    json_num(f.value()),
                    json_str(f.unit())
                );
                match f {
                    Figure::Bulk(x) | Figure::Exchanges(x) => {
                        let _ = write!(
                            o,
                            ",\"bytes\":{},\"ops\":{},\"elapsed_s\":{},\"p50_us\":{},\
                             \"p99_us\":{},\"cut_short\":{}",
                            x.bytes,
                            x.ops,
                            json_num(x.elapsed.as_secs_f64()),
                            json_num(x.p50.as_secs_f64() * 1e6),
                            json_num(x.p99.as_secs_f64() * 1e6),
                            x.cut_short
                        );
                    }
                    Figure::Idle(i) => {
                        let _ = write!(
                            o,
                            ",\"connections\":{},\"rss_before\":{},\"rss_after\":{},\
                             \"elapsed_s\":{},\"connect_retries\":{}",
                            i.count,
                            i.rss_before,
                            i.rss_after,
                            json_num(i.elapsed.as_secs_f64()),
                            i.retries
                        );
                    }
                }
            }
            Err(e) => {
                let _ = write!(o, ",\"error\":{}", json_str(e));
            }
        }
        let samples: Vec<String> = r.samples.iter().map(|&v| json_num(v)).collect();
        let _ = write!(o, ",\"samples\":[{}]", samples.join(","));
        if let Some(b) = r.case.baseline() {
            let _ = write!(o, ",\"baseline\":{}", json_str(b.key()));
        }
        if let Some(x) = r.ratio(rows) {
            let _ = write!(o, ",\"ratio\":{}", json_num(x));
        }
        if let Some(met) = r.target_met(rows) {
            let _ = write!(
                o,
                ",\"target\":{},\"target_met\":{met}",
                json_num(r.case.target())
            );
        }
        o.push_str("}\n");
        out.push_str(&o);
    }
    out
}

/// Writes the JSON lines to `dir/bench-tcp-<started>.jsonl` (creating `dir`); the file's path.
pub fn write_results(dir: &Path, rows: &[Row], run: &RunInfo) -> io::Result<PathBuf> {
    write_jsonl(dir, "bench-tcp", run.started, &json_lines(rows, run))
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

    #[test]
    fn one_bulk_flow_between_two_stacks_over_the_memory_link_arrives_whole() {
        let o = memory_bulk(1 << 20, 1).unwrap();
        assert_eq!(o.bytes, 1 << 20);
        assert!(o.gbit_per_sec() > 0.0);
    }

    #[test]
    fn smoltcp_loopback_moves_every_byte_in_either_framing() {
        for framing in [LoopbackFraming::Ethernet, LoopbackFraming::Benchmark] {
            let o = smoltcp_loopback(4 << 20, framing).unwrap();
            assert!(o.bytes >= 4 << 20, "{framing:?}: {o:?}");
        }
    }

    #[test]
    fn idle_connections_are_all_established_and_grow_the_resident_set() {
        let i = idle_connections(50, 1, |_| {}).unwrap();
        assert_eq!(i.count, 50);
        assert!(i.rss_before > 0 && i.rss_after > 0, "{i:?}");
    }

    fn rows() -> Vec<Row> {
        let bulk = |gbit: f64| {
            Ok(Figure::Bulk(Outcome {
                bytes: (gbit * 1e9 / 8.0) as u64,
                ops: 1,
                elapsed: Duration::from_secs(1),
                ..Outcome::default()
            }))
        };
        vec![
            Row {
                case: Case::Discard,
                case_title: "discard".into(),
                system: System::NetstackTap,
                result: bulk(2.0),
                samples: vec![2.0],
            },
            Row {
                case: Case::Discard,
                case_title: "discard".into(),
                system: System::SmoltcpTap,
                result: bulk(4.0),
                samples: vec![4.0],
            },
            Row {
                case: Case::Chargen,
                case_title: "chargen".into(),
                system: System::NetstackTap,
                result: bulk(3.0),
                samples: vec![3.0],
            },
            Row {
                case: Case::Chargen,
                case_title: "chargen".into(),
                system: System::SmoltcpTap,
                result: Err("no TAP".into()),
                samples: vec![],
            },
            Row {
                case: Case::IdleConnections,
                case_title: "idle".into(),
                system: System::NetstackMemory,
                result: Ok(Figure::Idle(Idle {
                    count: 10,
                    rss_before: 1000,
                    rss_after: 31_000,
                    elapsed: Duration::from_secs(1),
                    retries: 0,
                })),
                samples: vec![3000.0],
            },
        ]
    }

    #[test]
    fn ratios_divide_by_the_baseline_row_of_the_same_case() {
        let rows = rows();
        assert_eq!(rows[0].ratio(&rows), Some(0.5));
        assert_eq!(rows[1].ratio(&rows), Some(1.0));
        assert_eq!(rows[2].ratio(&rows), None, "its baseline was not measured");
        assert_eq!(rows[0].target_met(&rows), Some(false));
        assert_eq!(rows[1].target_met(&rows), None, "targets are netstack's");
        assert_eq!(rows[4].target_met(&rows), Some(true), "3,000 B < 4 KiB");
    }

    #[test]
    fn the_table_names_each_case_once_and_every_baseline() {
        let rows = rows();
        let t = markdown(&rows);
        assert_eq!(t.lines().count(), 2 + rows.len(), "{t}");
        assert!(
            t.contains(
                "| discard | netstack, TAP | 2.00 Gbit/s | smoltcp, TAP | 0.50× | ≥ 1.0×: missed |"
            ),
            "{t}"
        );
        assert!(
            t.contains("|  | smoltcp, TAP | 4.00 Gbit/s | (this row) | 1.00× |  |"),
            "{t}"
        );
        assert!(t.contains("not measured: no TAP"), "{t}");
        assert!(t.contains("3,000 B per connection (1,500 B per end"), "{t}");
    }

    #[test]
    fn json_lines_are_one_object_per_row_with_escaped_strings() {
        let mut rows = rows();
        rows[3].result = Err("said \"no\"\nthen left".into());
        let run = RunInfo {
            started: 1,
            quick: true,
            workers: 1,
            bytes: 1,
            seconds: 1.0,
            repeat: 1,
            smoltcp_buffer: 65_535,
        };
        let out = json_lines(&rows, &run);
        assert_eq!(out.lines().count(), rows.len());
        assert!(out.contains(r#""error":"said \"no\"\nthen left""#), "{out}");
        assert!(
            out.lines().next().unwrap().contains(r#""ratio":0.5"#),
            "{out}"
        );
        assert!(out.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
    }

    #[test]
    fn the_median_run_is_the_middle_success_and_failures_only_count_when_all_fail() {
        let gbit = |g: f64| -> Result<Figure, String> {
            Ok(Figure::Bulk(Outcome {
                bytes: (g * 1e9 / 8.0) as u64,
                ops: 1,
                elapsed: Duration::from_secs(1),
                ..Outcome::default()
            }))
        };
        let (m, samples) = median_run(vec![gbit(3.0), Err("x".into()), gbit(1.0), gbit(2.0)]);
        assert_eq!(m.unwrap().value(), 2.0);
        assert_eq!(samples, [3.0, 1.0, 2.0]);
        let (m, _) = median_run(vec![gbit(4.0), gbit(1.0)]);
        assert_eq!(m.unwrap().value(), 1.0, "the lower middle of an even count");
        let (m, samples) = median_run(vec![Err("first".into()), Err("second".into())]);
        assert_eq!(m.unwrap_err(), "first");
        assert!(samples.is_empty());
        let mut rows = rows();
        rows[0].samples = vec![2.0, 1.5, 2.5];
        assert!(
            markdown(&rows).contains("2.00 Gbit/s; median of 3, 1.50–2.50 |"),
            "{}",
            markdown(&rows)
        );
    }

    #[test]
    fn sizes_read_as_binary_units() {
        assert_eq!(size_text(1 << 30), "1 GiB");
        assert_eq!(size_text(64 << 20), "64 MiB");
        assert_eq!(size_text(1500), "1500 B");
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
