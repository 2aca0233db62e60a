//! The built-in services netstackd runs on its stack: echo (RFC 862), discard (RFC 863) and
//! chargen (RFC 864), each over UDP and TCP, and DNS (authoritative for the built-in `demo.test` zone and any
//! `--zone` files, forwarding other names when an upstream is given).
//!
//! Each service is one thread over a stack socket. It polls a stop flag between receives (a
//! read timeout of [`STOP_POLL`]) and also ends when the stack shuts down under it.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use netstack_application::dns::resolver::{Resolver, ResolverConfig};
use netstack_application::dns::socket::{random_seed, serve, serve_forwarding};
use netstack_application::dns::{Catalog, ServerStats};
use netstack_runtime::{StackHandle, TcpListener, TcpStream, UdpSocket};

/// How often a service thread looks at its stop flag.
pub const STOP_POLL: Duration = Duration::from_millis(100);

/// RFC 864 §"UDP Based Character Generator Service": a reply of 0 to 512 characters.
const CHARGEN_MAX: usize = 512;

/// What to run; `None` leaves a service off.
#[derive(Default)]
pub struct ServiceConfig {
    pub echo: Option<u16>,
    pub discard: Option<u16>,
    pub chargen: Option<u16>,
    pub dns: Option<DnsService>,
}

pub struct DnsService {
    pub port: u16,
    pub catalog: Catalog,
    /// Forward names outside the catalog to these servers.
    pub upstream: Vec<SocketAddr>,
}

#[derive(Default)]
struct Counters {
    echo_datagrams: AtomicU64,
    discard_datagrams: AtomicU64,
    discard_bytes: AtomicU64,
    chargen_datagrams: AtomicU64,
    tcp_connections: AtomicU64,
    /// Connections refused because a service already had [`MAX_TCP_CONNECTIONS`] open.
    tcp_connections_refused: AtomicU64,
    tcp_echo_bytes: AtomicU64,
    tcp_discard_bytes: AtomicU64,
    tcp_chargen_bytes: AtomicU64,
    /// Connections open now, all services together.
    tcp_open: AtomicU64,
}

/// TCP connections the built-in echo/discard/chargen services serve at once, together; one
/// thread each. Past this, new connections are closed at once (and counted).
pub const MAX_TCP_CONNECTIONS: u64 = 256;

#[derive(Clone, Copy)]
enum TcpService {
    Echo,
    Discard,
    Chargen,
}

/// The running services.
pub struct Services {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<()>)>,
    counters: Arc<Counters>,
    dns: Arc<Mutex<ServerStats>>,
    /// What each service listens on, for the ready message.
    pub listening: Vec<String>,
}

impl Services {
    /// Binds every service's socket (so a port clash is an error here, naming the flag) and
    /// starts its thread.
    pub fn start(stack: &StackHandle, cfg: ServiceConfig) -> io::Result<Services> {
        let mut s = Services {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
            counters: Arc::default(),
            dns: Arc::default(),
            listening: Vec::new(),
        };
        for (port, service, flag) in [
            (cfg.echo, TcpService::Echo, "--echo"),
            (cfg.discard, TcpService::Discard, "--discard"),
            (cfg.chargen, TcpService::Chargen, "--chargen"),
        ] {
            if let Some(port) = port {
                s.start_tcp(stack, port, service, flag)?;
            }
        }
        if let Some(port) = cfg.echo {
            let sock = bind(stack, port, "--echo")?;
            let c = s.counters.clone();
            s.spawn(
                "udp-echo",
                format!("echo udp/{port}"),
                sock,
                move |sock, buf, n, from| {
                    c.echo_datagrams.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(&buf[..n], from);
                },
            )?;
        }
        if let Some(port) = cfg.discard {
            let sock = bind(stack, port, "--discard")?;
            let c = s.counters.clone();
            s.spawn(
                "udp-discard",
                format!("discard udp/{port}"),
                sock,
                move |_, _, n, _| {
                    c.discard_datagrams.fetch_add(1, Ordering::Relaxed);
                    c.discard_bytes.fetch_add(n as u64, Ordering::Relaxed);
                },
            )?;
        }
        if let Some(port) = cfg.chargen {
            let sock = bind(stack, port, "--chargen")?;
            let c = s.counters.clone();
            let mut seq = 0usize;
            s.spawn(
                "udp-chargen",
                format!("chargen udp/{port}"),
                sock,
                move |sock, _, _, from| {
                    c.chargen_datagrams.fetch_add(1, Ordering::Relaxed);
                    seq = seq.wrapping_add(1);
                    let _ = sock.send_to(&chargen_reply(seq), from);
                },
            )?;
        }
        if let Some(dns) = cfg.dns {
            s.start_dns(stack, dns)?;
        }
        Ok(s)
    }

    /// A thread that receives datagrams and hands each to `on_datagram`.
    fn spawn(
        &mut self,
        name: &str,
        what: String,
        sock: UdpSocket,
        mut on_datagram: impl FnMut(&UdpSocket, &[u8], usize, SocketAddr) + Send + 'static,
    ) -> io::Result<()> {
        let stop = self.stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) => on_datagram(&sock, &buf, n, from),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        // An ICMP error from a client that went away: not ours to act on.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
                        Err(_) => break, // the stack is shutting down
                    }
                }
            })?;
        self.listening.push(what);
        self.threads.push((name.into(), handle));
        Ok(())
    }

    /// A TCP service: one thread accepting, one per connection (bounded).
    fn start_tcp(
        &mut self,
        stack: &StackHandle,
        port: u16,
        service: TcpService,
        flag: &str,
    ) -> io::Result<()> {
        let listener = TcpListener::bind(stack, ("0.0.0.0", port)).map_err(|e| {
            io::Error::new(e.kind(), format!("{flag} {port}: {e}; pick another port"))
        })?;
        let (stop, c) = (self.stop.clone(), self.counters.clone());
        let name = match service {
            TcpService::Echo => "echo",
            TcpService::Discard => "discard",
            TcpService::Chargen => "chargen",
        };
        let handle = std::thread::Builder::new()
            .name(format!("tcp-{name}"))
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let conn =
                        match listener.accept_until(Some(std::time::Instant::now() + STOP_POLL)) {
                            Ok((conn, _)) => conn,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                            Err(_) => break, // the stack is shutting down
                        };
                    c.tcp_connections.fetch_add(1, Ordering::Relaxed);
                    if c.tcp_open.fetch_add(1, Ordering::Relaxed) >= MAX_TCP_CONNECTIONS {
                        c.tcp_open.fetch_sub(1, Ordering::Relaxed);
                        c.tcp_connections_refused.fetch_add(1, Ordering::Relaxed);
                        continue; // dropping it closes it
                    }
                    let (stop, c) = (stop.clone(), c.clone());
                    let spawned = std::thread::Builder::new()
                        .name(format!("tcp-{name}-conn"))
                        .spawn(move || {
                            serve_tcp(conn, service, &stop, &c);
                            c.tcp_open.fetch_sub(1, Ordering::Relaxed);
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

    fn start_dns(&mut self, stack: &StackHandle, dns: DnsService) -> io::Result<()> {
        let sock = bind(stack, dns.port, "--dns")?;
        let (stop, stats) = (self.stop.clone(), self.dns.clone());
        let zones: Vec<String> = dns
            .catalog
            .zones()
            .iter()
            .map(|z| z.origin().to_string())
            .collect();
        let mut what = format!("dns udp/{} (zones {})", dns.port, zones.join(", "));
        let handle = if dns.upstream.is_empty() {
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    if let Err(e) = serve(&sock, &dns.catalog, &stats, &stop) {
                        log::debug!("dns server ended: {e}");
                    }
                })?
        } else {
            what.push_str(&format!(", forwarding to {:?}", dns.upstream));
            let stack = stack.clone();
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    let mut resolver =
                        Resolver::new(ResolverConfig::new(dns.upstream), random_seed());
                    let new_socket = |_| UdpSocket::bind(&stack, "0.0.0.0:0");
                    let r = serve_forwarding(
                        &sock,
                        &dns.catalog,
                        &mut resolver,
                        new_socket,
                        &stats,
                        &stop,
                    );
                    if let Err(e) = r {
                        log::debug!("dns forwarder ended: {e}");
                    }
                })?
        };
        self.listening.push(what);
        self.threads.push(("dns".into(), handle));
        Ok(())
    }

    /// Every service counter as `(service.name, value)`.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let c = &self.counters;
        let mut out: Vec<(String, u64)> = [
            ("echo.udp_datagrams", &c.echo_datagrams),
            ("discard.udp_datagrams", &c.discard_datagrams),
            ("discard.udp_bytes", &c.discard_bytes),
            ("chargen.udp_datagrams", &c.chargen_datagrams),
            ("tcp.connections", &c.tcp_connections),
            ("tcp.connections_refused", &c.tcp_connections_refused),
            ("echo.tcp_bytes", &c.tcp_echo_bytes),
            ("discard.tcp_bytes", &c.tcp_discard_bytes),
            ("chargen.tcp_bytes", &c.tcp_chargen_bytes),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.load(Ordering::Relaxed)))
        .collect();
        let dns = *self.dns.lock().unwrap_or_else(|p| p.into_inner());
        dns.for_each(&mut |n, v| out.push((format!("dns.{n}"), v)));
        out
    }

    /// Tells every service to stop and waits for them (each notices within [`STOP_POLL`]).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for (name, t) in self.threads {
            if t.join().is_err() {
                log::warn!("service {name} panicked");
            }
        }
    }
}

/// Serves one TCP connection until the peer closes, an error, or the stop flag.
fn serve_tcp(conn: TcpStream, service: TcpService, stop: &AtomicBool, c: &Counters) {
    use std::io::{Read, Write};
    let _ = conn.set_read_timeout(Some(STOP_POLL));
    let _ = conn.set_write_timeout(Some(STOP_POLL));
    let mut conn = conn;
    let mut buf = vec![0u8; 16 * 1024];
    let mut line = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match service {
            TcpService::Echo | TcpService::Discard => match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let TcpService::Echo = service {
                        if write_all_until_stop(&mut conn, &buf[..n], stop).is_err() {
                            break;
                        }
                        c.tcp_echo_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    } else {
                        c.tcp_discard_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => break,
            },
            // RFC 864: a stream of 72-character lines until the client closes.
            TcpService::Chargen => {
                let chunk = chargen_lines(line, 64);
                line = line.wrapping_add(64);
                if write_all_until_stop(&mut conn, &chunk, stop).is_err() {
                    break;
                }
                c.tcp_chargen_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = conn.flush();
}

/// `write_all` that keeps going through write timeouts but gives up at the stop flag.
fn write_all_until_stop(
    conn: &mut TcpStream,
    mut data: &[u8],
    stop: &AtomicBool,
) -> io::Result<()> {
    use std::io::Write;
    while !data.is_empty() {
        match conn.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !stop.load(Ordering::Relaxed) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `count` chargen lines starting at line `first`: 72 printable characters and CRLF each,
/// each line starting one character further along the 95-character ring.
fn chargen_lines(first: usize, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 74);
    for line in first..first + count {
        for i in 0..72 {
            out.push(b' ' + ((line + i) % 95) as u8);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn bind(stack: &StackHandle, port: u16, flag: &str) -> io::Result<UdpSocket> {
    let sock = UdpSocket::bind(stack, ("0.0.0.0", port))
        .map_err(|e| io::Error::new(e.kind(), format!("{flag} {port}: {e}; pick another port")))?;
    sock.set_read_timeout(Some(STOP_POLL))?;
    Ok(sock)
}

/// RFC 864: lines of 72 printable characters, each starting one further along the 95-character
/// ASCII ring; a datagram's length varies (here with the sequence number) up to 512.
fn chargen_reply(seq: usize) -> Vec<u8> {
    let len = (seq * 97) % (CHARGEN_MAX + 1);
    let mut out = chargen_lines(seq, len / 74 + 1);
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargen_replies_are_printable_lines_of_at_most_512_bytes() {
        for seq in 0..600 {
            let r = chargen_reply(seq);
            assert!(r.len() <= CHARGEN_MAX);
            assert!(r
                .iter()
                .all(|&b| (b' '..=b'~').contains(&b) || b == b'\r' || b == b'\n'));
        }
        let r = chargen_reply(7);
        assert_eq!(&r[72..74], b"\r\n");
        assert_eq!(r[74], r[1], "each line starts one character further along");
    }
}
