//! The built-in services netstackd runs on its stack: echo (RFC 862), discard (RFC 863) and
//! chargen (RFC 864), each over UDP and TCP, and DNS over UDP and TCP (authoritative for the
//! catalog's zones, forwarding other names when an upstream is given).
//!
//! Threads, in one place:
//! - One thread per UDP service and one accepting thread per TCP service. Each polls the stop
//!   flag between receives (a timeout of [`STOP_POLL`]) and also ends when the stack shuts down
//!   under it.
//! - One thread per TCP connection (chargen: two, a writer and a reader that discards), at most
//!   [`MAX_TCP_CONNECTIONS`] connections for echo, discard and chargen together and
//!   [`DnsService::tcp_max_connections`] for DNS; a connection past the limit is closed at once
//!   and counted (`tcp.connections_refused`, `dns.tcp_connections_refused`).
//! - UDP echo and chargen answer whatever arrives, so they refuse what would make them a
//!   reflector ([`reflection_refusal`]): a datagram from a source port below
//!   [`LOWEST_ANSWERED_PORT`] (0, and every well-known service: echo 7, discard 9, daytime 13,
//!   chargen 19, time 37, DNS 53, NTP 123 …), so two such services cannot bounce one datagram
//!   between them forever, and a datagram sent to a broadcast address (every host on the link
//!   answering one spoofed request multiplies it, the smurf and fraggle attacks). Each refusal
//!   is counted (`echo.udp_refused_source_port`,
//!   `echo.udp_refused_broadcast`, and the same for chargen). TCP chargen is unchanged: a
//!   connection cannot be spoofed.
//! - [`Services::stop`] sets the stop flag, joins every thread (connection threads included)
//!   up to a deadline, and only then reads the counters, so they include everything the
//!   services did.
//! - Stopping loses nothing a client sent or a service wrote: an echo, discard or chargen
//!   connection that sees the stop flag sends FIN after what it wrote, then keeps reading (and
//!   counting what it reads) until the client's FIN, for at most [`FINISH_LIMIT`] and up to
//!   shortly before the stop deadline ([`DRAIN_MARGIN`]). Only then is it closed, so a client that stops when it sees the FIN
//!   gets every byte the service wrote and the service reads every byte the stack
//!   acknowledged; a client still sending at that point is reset, as closing with unread data
//!   does (RFC 1122 §4.2.2.13).

mod chargen;
mod discard;
mod dns;
mod echo;
pub mod status;
mod web;

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netstack_runtime::{StackHandle, TcpListener, TcpStream, UdpSocket};

use crate::dns::tcp::{StreamSocket, TcpServerStats};
use crate::dns::ServerStats;

pub use chargen::{chargen_lines, chargen_reply, CHARGEN_MAX};
pub use dns::{DnsService, DEFAULT_DNS_TCP_CONNECTIONS};
pub use web::WebService;

/// How often a service thread looks at its stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// How long before the stop deadline a connection still reading the client's last bytes gives
/// up (and is reset by its close), so its thread is joined in time.
pub const DRAIN_MARGIN: Duration = Duration::from_millis(50);

/// The longest a stopped connection waits for the client's FIN: a client that reacts to the
/// service's FIN answers within a round trip, and one that does not must not hold up the stop.
pub const FINISH_LIMIT: Duration = Duration::from_millis(500);

/// TCP connections the echo, discard and chargen services serve at once, together; one thread
/// each (two for chargen). Past this, new connections are closed at once (and counted).
pub const MAX_TCP_CONNECTIONS: u64 = 256;

/// UDP echo and chargen answer only datagrams from this source port or above: 0 and the
/// well-known ports (IANA's System Ports, RFC 6335 §6) are where other services that answer
/// whatever they receive live.
pub const LOWEST_ANSWERED_PORT: u16 = 1024;

/// Why UDP echo or chargen left a datagram unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The source port is below [`LOWEST_ANSWERED_PORT`].
    SourcePort,
    /// The datagram was sent to 255.255.255.255 or to the subnet's broadcast address.
    Broadcast,
}

/// May UDP echo or chargen answer a datagram from `from` sent to `to`, on a stack whose
/// subnet broadcast address is `subnet_broadcast`? `None` when it may.
pub fn reflection_refusal(
    from: SocketAddr,
    to: Ipv4Addr,
    subnet_broadcast: Option<Ipv4Addr>,
) -> Option<Refusal> {
    if to.is_broadcast() || Some(to) == subnet_broadcast {
        Some(Refusal::Broadcast)
    } else if from.port() < LOWEST_ANSWERED_PORT {
        Some(Refusal::SourcePort)
    } else {
        None
    }
}

/// What to run; `None` leaves a service off.
#[derive(Default)]
pub struct ServiceConfig {
    /// Echo (RFC 862) on this port, TCP and UDP.
    pub echo: Option<u16>,
    /// Discard (RFC 863) on this port, TCP and UDP.
    pub discard: Option<u16>,
    /// Chargen (RFC 864) on this port, TCP and UDP.
    pub chargen: Option<u16>,
    /// DNS on its port, UDP and TCP.
    pub dns: Option<DnsService>,
    /// HTTP (status page or static files, `/stats`, `/ws`, `/echo`) on its port.
    pub http: Option<WebService>,
}

/// The echo, discard and chargen counters.
#[derive(Default)]
struct Counters {
    /// Datagrams answered.
    echo_datagrams: AtomicU64,
    echo_refused: RefusalCounters,
    discard_datagrams: AtomicU64,
    discard_bytes: AtomicU64,
    /// Datagrams answered.
    chargen_datagrams: AtomicU64,
    chargen_refused: RefusalCounters,
    tcp_echo_bytes: AtomicU64,
    tcp_discard_bytes: AtomicU64,
    tcp_chargen_bytes: AtomicU64,
    /// What TCP chargen clients sent, read and thrown away (RFC 864).
    tcp_chargen_discarded_bytes: AtomicU64,
    /// What TCP echo clients sent after the service stopped echoing (their FIN was due), read
    /// and thrown away while the connection finished.
    tcp_echo_drained_bytes: AtomicU64,
}

/// Datagrams one UDP service refused, by [`Refusal`].
#[derive(Default)]
struct RefusalCounters {
    source_port: AtomicU64,
    broadcast: AtomicU64,
}

impl RefusalCounters {
    /// True (and nothing counted) when the datagram may be answered.
    fn admit(&self, from: SocketAddr, to: Ipv4Addr, subnet_broadcast: Option<Ipv4Addr>) -> bool {
        match reflection_refusal(from, to, subnet_broadcast) {
            None => true,
            Some(why) => {
                let c = match why {
                    Refusal::SourcePort => &self.source_port,
                    Refusal::Broadcast => &self.broadcast,
                };
                c.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// Admission of the TCP connections of a group of services, under one limit.
struct Admission {
    limit: u64,
    /// Connections accepted, refused ones included.
    accepted: AtomicU64,
    /// Closed at once because `limit` connections were open.
    refused: AtomicU64,
    /// Open now (their threads running).
    open: AtomicU64,
}

impl Admission {
    fn new(limit: u64) -> Arc<Admission> {
        Arc::new(Admission {
            limit,
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            open: AtomicU64::new(0),
        })
    }

    /// Counts a new connection; `None` when it is over the limit (and counted as refused).
    /// The slot counts the connection as open until it is dropped.
    fn admit(this: &Arc<Admission>) -> Option<OpenSlot> {
        this.accepted.fetch_add(1, Ordering::Relaxed);
        if this.open.fetch_add(1, Ordering::Relaxed) >= this.limit {
            this.open.fetch_sub(1, Ordering::Relaxed);
            this.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(OpenSlot(this.clone()))
    }

    fn counters(&self, prefix: &str, out: &mut Vec<(String, u64)>) {
        for (name, v) in [
            ("connections", &self.accepted),
            ("connections_refused", &self.refused),
            ("connections_open", &self.open),
        ] {
            out.push((format!("{prefix}{name}"), v.load(Ordering::Relaxed)));
        }
    }
}

/// One open connection of an [`Admission`]; dropping it (the thread ended, or never started)
/// frees its place.
struct OpenSlot(Arc<Admission>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The per-connection threads, so that [`Services::stop`] can join them. Finished ones are
/// joined whenever a new one starts, so the list holds about as many as are open.
#[derive(Default)]
struct ConnectionThreads {
    threads: Mutex<Vec<(String, JoinHandle<()>)>>,
}

impl ConnectionThreads {
    fn spawn(&self, name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
        let handle = std::thread::Builder::new().name(name.clone()).spawn(f)?;
        let mut threads = self.threads.lock().unwrap_or_else(|p| p.into_inner());
        let (done, running): (Vec<_>, Vec<_>) =
            threads.drain(..).partition(|(_, t)| t.is_finished());
        *threads = running;
        threads.push((name, handle));
        drop(threads);
        join_finished(done);
        Ok(())
    }

    fn take(&self) -> Vec<(String, JoinHandle<()>)> {
        std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn join_finished(threads: Vec<(String, JoinHandle<()>)>) {
    for (name, t) in threads {
        if t.join().is_err() {
            log::warn!("service thread {name} panicked");
        }
    }
}

/// Joins `threads` as they finish, up to `deadline`; returns the names of those still running
/// then (they are left to end on their own).
fn join_until(threads: Vec<(String, JoinHandle<()>)>, deadline: Instant) -> Vec<String> {
    let mut left = threads;
    loop {
        let (done, running): (Vec<_>, Vec<_>) =
            left.into_iter().partition(|(_, t)| t.is_finished());
        join_finished(done);
        left = running;
        if left.is_empty() || Instant::now() >= deadline {
            return left.into_iter().map(|(name, _)| name).collect();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How [`Services::stop`] went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    /// Every counter as `(service.name, value)`, read after the threads ended.
    pub counters: Vec<(String, u64)>,
    /// Threads still running at the deadline, by name (none when all went in time).
    pub unfinished: Vec<String>,
}

/// The running services.
pub struct Services {
    stop: Arc<AtomicBool>,
    /// Set by [`Services::stop`] before the flag: when connections must have finished.
    drain_until: Arc<Mutex<Option<Instant>>>,
    /// UDP services, acceptors, DNS and its forwarder.
    threads: Vec<(String, JoinHandle<()>)>,
    connections: Arc<ConnectionThreads>,
    counters: Arc<Counters>,
    /// Echo, discard and chargen over TCP, together.
    tcp: Arc<Admission>,
    dns_tcp: Arc<Admission>,
    dns: Arc<Mutex<ServerStats>>,
    dns_tcp_stats: Arc<Mutex<TcpServerStats>>,
    /// The HTTP service, when on.
    web: Option<web::Web>,
    /// What each service listens on, for the ready message: `echo tcp/7`, `dns udp/53 (…)`.
    pub listening: Vec<String>,
}

impl Services {
    /// Binds every service's socket (so a port clash is an error here, naming the flag) and
    /// starts its threads.
    pub fn start(stack: &StackHandle, cfg: ServiceConfig) -> io::Result<Services> {
        let dns_limit = cfg
            .dns
            .as_ref()
            .map_or(DEFAULT_DNS_TCP_CONNECTIONS, |d| d.tcp_max_connections);
        let mut s = Services {
            stop: Arc::new(AtomicBool::new(false)),
            drain_until: Arc::default(),
            threads: Vec::new(),
            connections: Arc::default(),
            counters: Arc::default(),
            tcp: Admission::new(MAX_TCP_CONNECTIONS),
            dns_tcp: Admission::new(dns_limit as u64),
            dns: Arc::default(),
            dns_tcp_stats: Arc::default(),
            web: None,
            listening: Vec::new(),
        };
        if let Some(port) = cfg.echo {
            let c = s.counters.clone();
            s.start_tcp_finishing(
                stack,
                port,
                "echo",
                "--echo",
                s.tcp.clone(),
                Some(drained(&s.counters, |c| &c.tcp_echo_drained_bytes)),
                move |conn, stop| echo::serve_tcp(conn, stop, &c.tcp_echo_bytes),
            )?;
        }
        if let Some(port) = cfg.discard {
            let c = s.counters.clone();
            s.start_tcp_finishing(
                stack,
                port,
                "discard",
                "--discard",
                s.tcp.clone(),
                Some(drained(&s.counters, |c| &c.tcp_discard_bytes)),
                move |conn, stop| discard::serve_tcp(conn, stop, &c.tcp_discard_bytes),
            )?;
        }
        if let Some(port) = cfg.chargen {
            let c = s.counters.clone();
            s.start_tcp_finishing(
                stack,
                port,
                "chargen",
                "--chargen",
                s.tcp.clone(),
                Some(drained(&s.counters, |c| &c.tcp_chargen_discarded_bytes)),
                move |conn, stop| {
                    chargen::serve_tcp(
                        conn,
                        stop,
                        &c.tcp_chargen_bytes,
                        &c.tcp_chargen_discarded_bytes,
                    )
                },
            )?;
        }
        let subnet_broadcast = stack.config().addr.broadcast();
        if let Some(port) = cfg.echo {
            let c = s.counters.clone();
            s.start_udp(
                stack,
                port,
                "echo",
                "--echo",
                move |sock, data, from, to| {
                    if c.echo_refused.admit(from, to, subnet_broadcast) {
                        echo::on_datagram(sock, data, from, &c.echo_datagrams)
                    }
                },
            )?;
        }
        if let Some(port) = cfg.discard {
            let c = s.counters.clone();
            s.start_udp(stack, port, "discard", "--discard", move |_, data, _, _| {
                c.discard_datagrams.fetch_add(1, Ordering::Relaxed);
                c.discard_bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            })?;
        }
        if let Some(port) = cfg.chargen {
            let c = s.counters.clone();
            let mut seq = 0usize;
            s.start_udp(
                stack,
                port,
                "chargen",
                "--chargen",
                move |sock, _, from, to| {
                    if !c.chargen_refused.admit(from, to, subnet_broadcast) {
                        return;
                    }
                    c.chargen_datagrams.fetch_add(1, Ordering::Relaxed);
                    seq = seq.wrapping_add(1);
                    let _ = sock.send_to(&chargen_reply(seq), from);
                },
            )?;
        }
        if let Some(dns) = cfg.dns {
            s.start_dns(stack, dns)?;
        }
        if let Some(http) = cfg.http {
            let port = http.port;
            let counters = s.counter_source();
            s.web = Some(web::Web::start(stack, http, s.stop.clone(), counters)?);
            s.listening.push(format!("http tcp/{port}"));
        }
        Ok(s)
    }

    /// A UDP service: one thread receiving datagrams and handing each to `on_datagram` with
    /// its source and the address it was sent to.
    fn start_udp(
        &mut self,
        stack: &StackHandle,
        port: u16,
        name: &str,
        flag: &str,
        mut on_datagram: impl FnMut(&UdpSocket, &[u8], SocketAddr, Ipv4Addr) + Send + 'static,
    ) -> io::Result<()> {
        let sock = bind_udp(stack, port, flag)?;
        let stop = self.stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("udp-{name}"))
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match sock.recv_from_to(&mut buf) {
                        Ok((n, from, to)) => on_datagram(&sock, &buf[..n], from, to),
                        Err(e) if is_timeout(&e) => continue,
                        // An ICMP error from a client that went away: not ours to act on.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                        Err(_) => break, // the stack is shutting down
                    }
                }
            })?;
        self.listening.push(format!("{name} udp/{port}"));
        self.threads.push((format!("udp-{name}"), handle));
        Ok(())
    }

    /// A TCP service: one thread accepting, one per connection (`serve` runs there), admitted
    /// under `admission`'s limit.
    fn start_tcp(
        &mut self,
        stack: &StackHandle,
        port: u16,
        name: &'static str,
        flag: &str,
        admission: Arc<Admission>,
        serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> io::Result<()> {
        self.start_tcp_finishing(stack, port, name, flag, admission, None, serve)
    }

    /// [`start_tcp`](Self::start_tcp), and when `drained` is given, a connection still open
    /// when the service stops finishes as the module documentation says (the bytes read
    /// meanwhile counted by `drained`).
    #[allow(clippy::too_many_arguments)]
    fn start_tcp_finishing(
        &mut self,
        stack: &StackHandle,
        port: u16,
        name: &'static str,
        flag: &str,
        admission: Arc<Admission>,
        drained: Option<Drained>,
        serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> io::Result<()> {
        let listener = TcpListener::bind(stack, ("0.0.0.0", port)).map_err(|e| {
            io::Error::new(e.kind(), format!("{flag} {port}: {e}; pick another port"))
        })?;
        let (stop, connections) = (self.stop.clone(), self.connections.clone());
        let drain_until = self.drain_until.clone();
        let serve = Arc::new(serve);
        let drained = Arc::new(drained);
        let handle = std::thread::Builder::new()
            .name(format!("tcp-{name}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let conn = match listener.accept_until(Some(Instant::now() + STOP_POLL)) {
                        Ok((conn, _)) => conn,
                        Err(e) if is_timeout(&e) => continue,
                        Err(_) => break, // the stack is shutting down
                    };
                    let Some(slot) = Admission::admit(&admission) else {
                        continue; // dropping it closes it
                    };
                    let (stop, serve) = (stop.clone(), serve.clone());
                    let (drain_until, drained) = (drain_until.clone(), drained.clone());
                    let spawned = connections.spawn(format!("tcp-{name}-conn"), move || {
                        // A second handle keeps the connection open after `serve` returns,
                        // so a stopped service can let it finish.
                        let keep = drained.is_some().then(|| conn.try_clone().ok()).flatten();
                        serve(conn, &stop);
                        if let (Some(keep), Some(drained), true) =
                            (keep, drained.as_deref(), stop.load(Ordering::Relaxed))
                        {
                            let until = drain_until
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .unwrap_or_else(|| Instant::now() + STOP_POLL)
                                .min(Instant::now() + FINISH_LIMIT);
                            finish_reading(&keep, until, drained);
                        }
                        drop(slot);
                    });
                    if spawned.is_err() {
                        log::warn!("tcp {name}: no thread for a connection; closed");
                    }
                }
            })?;
        self.listening.push(format!("{name} tcp/{port}"));
        self.threads.push((format!("tcp-{name}"), handle));
        Ok(())
    }

    /// Every counter as `(service.name, value)`, as they stand now.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut out = (self.counter_source())();
        if let Some(w) = &self.web {
            out.extend(w.counters());
        }
        out
    }

    /// A function reading the echo, discard, chargen and DNS counters, for the status page.
    fn counter_source(&self) -> Arc<dyn Fn() -> Vec<(String, u64)> + Send + Sync> {
        let (c, tcp, dns, dns_tcp, dns_tcp_stats) = (
            self.counters.clone(),
            self.tcp.clone(),
            self.dns.clone(),
            self.dns_tcp.clone(),
            self.dns_tcp_stats.clone(),
        );
        Arc::new(move || service_counters(&c, &tcp, &dns, &dns_tcp, &dns_tcp_stats))
    }
}

fn service_counters(
    c: &Counters,
    tcp: &Admission,
    dns: &Mutex<ServerStats>,
    dns_tcp: &Admission,
    dns_tcp_stats: &Mutex<TcpServerStats>,
) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = [
        ("echo.udp_datagrams", &c.echo_datagrams),
        ("echo.udp_refused_source_port", &c.echo_refused.source_port),
        ("echo.udp_refused_broadcast", &c.echo_refused.broadcast),
        ("discard.udp_datagrams", &c.discard_datagrams),
        ("discard.udp_bytes", &c.discard_bytes),
        ("chargen.udp_datagrams", &c.chargen_datagrams),
        (
            "chargen.udp_refused_source_port",
            &c.chargen_refused.source_port,
        ),
        (
            "chargen.udp_refused_broadcast",
            &c.chargen_refused.broadcast,
        ),
        ("echo.tcp_bytes", &c.tcp_echo_bytes),
        ("discard.tcp_bytes", &c.tcp_discard_bytes),
        ("chargen.tcp_bytes", &c.tcp_chargen_bytes),
        (
            "chargen.tcp_discarded_bytes",
            &c.tcp_chargen_discarded_bytes,
        ),
        ("echo.tcp_drained_bytes", &c.tcp_echo_drained_bytes),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.load(Ordering::Relaxed)))
    .collect();
    tcp.counters("tcp.", &mut out);
    let dns = *dns.lock().unwrap_or_else(|p| p.into_inner());
    dns.for_each(&mut |n, v| out.push((format!("dns.{n}"), v)));
    dns_tcp.counters("dns.tcp_", &mut out);
    let tcp = *dns_tcp_stats.lock().unwrap_or_else(|p| p.into_inner());
    tcp.for_each(&mut |n, v| out.push((format!("dns.tcp_{n}"), v)));
    out
}

impl Services {
    /// Tells every service to stop and joins every thread, the per-connection ones included,
    /// waiting at most until `deadline` (each notices the flag within [`STOP_POLL`]; a forwarded
    /// DNS lookup may take longer). Then reads the counters.
    pub fn stop(mut self, deadline: Instant) -> Stopped {
        *self.drain_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline - DRAIN_MARGIN);
        self.stop.store(true, Ordering::Relaxed);
        let web = self
            .web
            .take()
            .map(|w| w.stop(deadline.saturating_duration_since(Instant::now())));
        // The acceptors first, so no connection thread starts after the list is taken.
        let mut unfinished = join_until(std::mem::take(&mut self.threads), deadline);
        unfinished.extend(join_until(self.connections.take(), deadline));
        for name in &unfinished {
            log::warn!("service thread {name} still running at the stop deadline");
        }
        let mut counters = self.counters();
        counters.extend(web.unwrap_or_default());
        Stopped {
            counters,
            unfinished,
        }
    }
}

impl Drop for Services {
    fn drop(&mut self) {
        // Dropped without `stop`: the threads still end (without being waited for).
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl StreamSocket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

/// Counts bytes a stopped connection read while finishing, in its service's counter.
type Drained = Box<dyn Fn(usize) + Send + Sync>;

fn drained(counters: &Arc<Counters>, counter: fn(&Counters) -> &AtomicU64) -> Drained {
    let c = counters.clone();
    Box::new(move |n| {
        counter(&c).fetch_add(n as u64, Ordering::Relaxed);
    })
}

/// A stopped service's connection finishes: FIN after what was written (if not sent yet),
/// then every byte the client still sends is read (and counted by `read`) until its FIN, an
/// error or `until`. Closing it afterwards resets it only if the client is still sending.
fn finish_reading(conn: &TcpStream, until: Instant, mut read: impl FnMut(usize)) {
    use std::io::Read;
    let _ = conn.shutdown(Shutdown::Write);
    let mut buf = vec![0u8; 16 * 1024];
    let mut r = conn;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left.min(STOP_POLL))).is_err() {
            return;
        }
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => read(n),
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return,
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn bind_udp(stack: &StackHandle, port: u16, flag: &str) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(stack, ("0.0.0.0", port))
        .map_err(|e| io::Error::new(e.kind(), format!("{flag} {port}: {e}; pick another port")))?;
    sock.set_read_timeout(Some(STOP_POLL))?;
    Ok(sock)
}

/// `write_all` that keeps going through write timeouts until `give_up` says otherwise; calls
/// `wrote` with each piece's length as it goes.
fn write_all_until(
    conn: &TcpStream,
    mut data: &[u8],
    give_up: impl Fn() -> bool,
    mut wrote: impl FnMut(usize),
) -> io::Result<()> {
    use std::io::Write;
    let mut w = conn;
    while !data.is_empty() {
        match w.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                wrote(n);
                data = &data[n..];
            }
            Err(e) if is_timeout(&e) => {
                if give_up() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
