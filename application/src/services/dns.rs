//! DNS on the stack: the UDP server ([`serve`] or [`serve_forwarding_with_tcp`]) on one thread, and DNS
//! over TCP on the same port (RFC 7766) through [`serve_pipelined`], one thread per connection.
//!
//! The UDP and TCP sides answer from the same catalog and count into the same `dns.*`
//! counters. When forwarding, each side has its own resolver and cache (the UDP loop owns its
//! resolver for as long as it runs), so a name cached by one is asked again by the other.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use netstack_runtime::{StackHandle, UdpSocket};

use super::{bind_udp, Services};
use crate::dns::resolver::{Resolver, ResolverConfig};
use crate::dns::socket::{random_seed, serve, serve_forwarding_with_tcp};
use crate::dns::tcp::{serve_pipelined, TcpForwarder, TcpServer, DEFAULT_IDLE_TIMEOUT};
use crate::dns::Catalog;
use crate::stack_socket::tcp_connector;

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
        }
    }
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
            move |_| UdpSocket::bind(&stack, "0.0.0.0:0")
        };
        let (stop, stats) = (self.stop.clone(), self.dns.clone());
        let udp_catalog = catalog.clone();
        let handle = if dns.upstream.is_empty() {
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    if let Err(e) = serve(&sock, &udp_catalog, &stats, &stop) {
                        log::debug!("dns server ended: {e}");
                    }
                })?
        } else {
            what.push_str(&format!(", forwarding to {:?}", dns.upstream));
            let upstream = dns.upstream.clone();
            let new_socket = new_socket.clone();
            let connect_tcp = tcp_connector(stack);
            std::thread::Builder::new()
                .name("dns".into())
                .spawn(move || {
                    let mut resolver = Resolver::new(ResolverConfig::new(upstream), random_seed());
                    let r = serve_forwarding_with_tcp(
                        &sock,
                        &udp_catalog,
                        &mut resolver,
                        new_socket,
                        connect_tcp,
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
            let resolver = Resolver::new(ResolverConfig::new(dns.upstream), random_seed());
            let (forwarder, handle) = TcpForwarder::spawn(
                resolver,
                new_socket,
                tcp_connector(stack),
                self.dns.clone(),
                self.stop.clone(),
            )?;
            server.forwarder = Some(forwarder);
            self.threads.push(("dns-tcp-forward".into(), handle));
        }
        self.start_tcp(
            stack,
            dns.port,
            "dns",
            "--dns",
            self.dns_tcp.clone(),
            move |conn, _stop| {
                if let Err(e) = serve_pipelined(&conn, &server) {
                    log::debug!("dns tcp connection ended: {e}");
                }
            },
        )
    }
}
