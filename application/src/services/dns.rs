//! DNS on the stack: the UDP server ([`serve`] or [`serve_forwarding_with_tcp`]) on one thread, and DNS
//! over TCP on the same port (RFC 7766) through [`serve_pipelined`], one thread per connection.
//!
//! The UDP and TCP sides answer from the same catalog and count into the same `dns.*`
//! counters. When forwarding, each side has its own resolver and cache (the UDP loop owns its
//! resolver for as long as it runs), so a name cached by one is asked again by the other.
//!
//! Exposure: the UDP side offers recursion only to [`DnsService::allow`], rate-limits its
//! responses per client /24 ([`DnsService::rate`]) and keeps at most
//! [`DnsService::max_in_flight`] forwarded lookups waiting (see `dns::socket` and
//! `dns::policy`). Upstream queries leave from sockets connected to the upstream, bound to a
//! port drawn from the OS random source, with query IDs from it too.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use netstack_runtime::{StackHandle, TcpStream, UdpSocket};

use super::{bind_udp, Services};
use crate::dns::policy::{recursion_allowed, ClientNet, RateLimit};
use crate::dns::resolver::{Resolver, ResolverConfig};
use crate::dns::socket::{
    serve_forwarding_with_policy, serve_limited, ForwardPolicy, DEFAULT_MAX_IN_FLIGHT,
};
use crate::dns::tcp::{serve_pipelined, TcpForwarder, TcpServer, DEFAULT_IDLE_TIMEOUT};
use crate::dns::Catalog;

/// DNS-over-TCP connections served at once unless told otherwise (RFC 7766 §6.2.2 asks
/// servers to bound them).
pub const DEFAULT_DNS_TCP_CONNECTIONS: usize = 64;

/// The DNS service's settings.
pub struct DnsService {
    /// UDP and TCP port.
    pub port: u16,
    /// The zones answered authoritatively.
    pub catalog: Catalog,
    /// Forward names outside the catalog to these servers; empty: REFUSED.
    pub upstream: Vec<SocketAddr>,
    /// RFC 7766 §6.2.3: a TCP connection with no query outstanding for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// TCP connections served at once; more are closed at once and counted.
    pub tcp_max_connections: usize,
    /// The client networks offered recursion over UDP; others get REFUSED for names outside
    /// the zones. `None`: every client (netstackd always sets it, by default to its subnet).
    pub allow: Option<Vec<ClientNet>>,
    /// The UDP response rate limit per client /24 (default
    /// [`crate::dns::policy::DEFAULT_DNS_RATE`] per second, slip 2).
    pub rate: RateLimit,
    /// Forwarded UDP lookups waiting for an upstream at once; more are dropped and counted.
    pub max_in_flight: usize,
}

impl DnsService {
    /// `catalog` on `port`, forwarding to `upstream`, with the default TCP limits.
    pub fn new(port: u16, catalog: Catalog, upstream: Vec<SocketAddr>) -> DnsService {
        DnsService {
            port,
            catalog,
            upstream,
            tcp_idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tcp_max_connections: DEFAULT_DNS_TCP_CONNECTIONS,
            allow: None,
            rate: RateLimit::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Tries at a port drawn from the OS before leaving the choice to the stack.
const RANDOM_PORT_TRIES: usize = 8;

/// A socket on `stack` for asking `server`: bound to an ephemeral port drawn from the OS random
/// source (RFC 5452 §9.2, RFC 6335 §6's range), connected to `server`, so only its datagrams
/// are delivered and a datagram from anyone else is treated as for a closed port.
fn upstream_socket(stack: &StackHandle, server: SocketAddr) -> io::Result<UdpSocket> {
    let mut sock = None;
    for _ in 0..RANDOM_PORT_TRIES {
        let mut b = [0u8; 2];
        if getrandom::fill(&mut b).is_err() {
            break;
        }
        let port = 49152 + u16::from_ne_bytes(b) % 16384;
        match UdpSocket::bind(stack, (Ipv4Addr::UNSPECIFIED, port)) {
            Ok(s) => {
                sock = Some(s);
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    let sock = match sock {
        Some(s) => s,
        None => UdpSocket::bind(stack, "0.0.0.0:0")?,
    };
    sock.connect(server)?;
    Ok(sock)
}

impl Services {
    pub(super) fn start_dns(&mut self, stack: &StackHandle, dns: DnsService) -> io::Result<()> {
        let sock = bind_udp(stack, dns.port, "--dns")?;
        let catalog = Arc::new(dns.catalog);
        let zones: Vec<String> = catalog
            .zones()
            .iter()
            .map(|z| z.origin().to_string())
            .collect();
        let mut what = format!("dns udp/{} (zones {})", dns.port, zones.join(", "));
        let new_socket = {
            let stack = stack.clone();
            move |server| upstream_socket(&stack, server)
        };
        let connect_tcp = {
            let stack = stack.clone();
            move |server: SocketAddr, timeout| TcpStream::connect_timeout(&stack, &server, timeout)
        };
        let policy = ForwardPolicy {
            allow: dns.allow.clone(),
            rate: dns.rate,
            max_in_flight: dns.max_in_flight,
        };
        let (stop, stats) = (self.stop.clone(), self.dns.clone());
        let udp_catalog = catalog.clone();
        let handle = if dns.upstream.is_empty() {
            let rate = dns.rate;
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    if let Err(e) = serve_limited(&sock, &udp_catalog, rate, &stats, &stop) {
                        log::debug!("dns server ended: {e}");
                    }
                })?
        } else {
            what.push_str(&format!(", forwarding to {:?}", dns.upstream));
            let upstream = dns.upstream.clone();
            let new_socket = new_socket.clone();
            let connect_tcp = connect_tcp.clone();
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    let mut resolver = Resolver::with_os_ids(ResolverConfig::new(upstream));
                    let r = serve_forwarding_with_policy(
                        &sock,
                        &udp_catalog,
                        &mut resolver,
                        new_socket,
                        connect_tcp,
                        &policy,
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

        let mut server = TcpServer {
            catalog,
            stats: self.dns.clone(),
            tcp_stats: self.dns_tcp_stats.clone(),
            forwarder: None,
            idle_timeout: dns.tcp_idle_timeout,
            stop: self.stop.clone(),
        };
        if !dns.upstream.is_empty() {
            let resolver = Resolver::with_os_ids(ResolverConfig::new(dns.upstream));
            let (forwarder, handle) = TcpForwarder::spawn(
                resolver,
                new_socket,
                connect_tcp,
                self.dns.clone(),
                self.stop.clone(),
            )?;
            server.forwarder = Some(forwarder);
            self.threads.push(("dns-tcp-forward".into(), handle));
        }
        // Over TCP too, recursion only for the allowed networks: others get the zones only.
        let authoritative_only = TcpServer {
            forwarder: None,
            ..server.clone()
        };
        let allow = dns.allow;
        self.start_tcp(
            stack,
            dns.port,
            "dns",
            "--dns",
            self.dns_tcp.clone(),
            move |conn, _stop| {
                let recursion = allow.as_ref().is_none_or(|allow| {
                    conn.peer_addr()
                        .is_ok_and(|peer| recursion_allowed(allow, peer.ip()))
                });
                let server = if recursion {
                    &server
                } else {
                    &authoritative_only
                };
                if let Err(e) = serve_pipelined(&conn, server) {
                    log::debug!("dns tcp connection ended: {e}");
                }
            },
        )
    }
}
