//! Adapters from the stack's sockets (netstack-runtime) to the traits the protocol code uses.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use netstack_runtime::{StackHandle, TcpStream, UdpSocket};

use crate::dns::socket::{DatagramSocket, StreamSocket};

impl DatagramSocket for UdpSocket {
    fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        UdpSocket::send_to(self, buf, addr)
    }

    fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        UdpSocket::recv_from(self, buf)
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UdpSocket::set_read_timeout(self, timeout)
    }
}

impl StreamSocket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

/// Opens TCP connections on `stack` for the DNS resolver's retries over TCP: pass it as
/// `connect_tcp` to `dns::socket::resolve_with_tcp` or `serve_forwarding_with_tcp`.
pub fn tcp_connector(
    stack: &StackHandle,
) -> impl FnMut(SocketAddr, Duration) -> io::Result<TcpStream> + Send + 'static {
    let stack = stack.clone();
    move |server, timeout| TcpStream::connect_timeout(&stack, &server, timeout)
}

impl crate::http::UpgradeStream for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        TcpStream::shutdown(self, std::net::Shutdown::Write)
    }
}

impl crate::http::Connection for TcpStream {
    fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        TcpStream::peer_addr(self)
    }

    fn set_nodelay(&self, on: bool) -> io::Result<()> {
        TcpStream::set_nodelay(self, on)
    }
}

/// How long the HTTP server's accept waits on the stack's listener before it looks at its
/// shutdown flag again.
const HTTP_ACCEPT_POLL: Duration = Duration::from_millis(250);

impl crate::http::Listen for netstack_runtime::TcpListener {
    type Conn = TcpStream;

    /// Waits up to a quarter second (then `WouldBlock`), so a shutting-down server notices its
    /// flag without a wake-up connection.
    fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.accept_until(Some(std::time::Instant::now() + HTTP_ACCEPT_POLL))
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        netstack_runtime::TcpListener::local_addr(self)
    }

    fn wake_accept(&self) {
        // `accept` returns within HTTP_ACCEPT_POLL by itself.
    }
}

/// Opens the HTTP client's connections on `stack` (pass it to `http::Client::new`): an IPv4
/// literal is connected to as it is; a name is resolved to its A records by the stack's own
/// DNS resolver asking `dns_server` (over UDP, retried over TCP when the answer comes back
/// truncated), and the addresses are tried in order until one connects. Answers are cached
/// for the connector's lifetime, as the resolver's TTLs allow. Without `dns_server` a name
/// fails with `NotFound`, as does a name with no A record; a resolver that gets no answer
/// gives `TimedOut`.
pub fn http_connector(
    stack: &StackHandle,
    dns_server: Option<SocketAddr>,
) -> impl crate::http::Connector<Stream = TcpStream> {
    use crate::dns::{random_seed, Name, RecordType, ResolveError, Resolver, ResolverConfig};

    let stack = stack.clone();
    let mut resolver =
        dns_server.map(|server| Resolver::new(ResolverConfig::new(vec![server]), random_seed()));
    let mut connect_tcp = tcp_connector(&stack);
    move |host: &str, port: u16, timeout: Duration| -> io::Result<TcpStream> {
        let addrs: Vec<SocketAddr> = if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            vec![SocketAddr::from((ip, port))]
        } else {
            let Some(resolver) = resolver.as_mut() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host}: a name needs a DNS server to resolve it; none was given"),
                ));
            };
            let name: Name = host.parse().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{host}: not a DNS name: {e}"),
                )
            })?;
            let mut new_socket = |_server: SocketAddr| UdpSocket::bind(&stack, "0.0.0.0:0");
            let answer = crate::dns::socket::resolve_with_tcp(
                resolver,
                &mut new_socket,
                &mut connect_tcp,
                name,
                RecordType::A,
            )
            .map_err(|e| {
                let kind = match &e {
                    ResolveError::Timeout { .. } => io::ErrorKind::TimedOut,
                    ResolveError::Io(kind) => *kind,
                    _ => io::ErrorKind::NotFound,
                };
                io::Error::new(kind, format!("resolving {host}: {e}"))
            })?;
            let addrs: Vec<SocketAddr> = answer
                .addresses()
                .into_iter()
                .filter(|a| a.is_ipv4())
                .map(|a| SocketAddr::new(a, port))
                .collect();
            if addrs.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{host}: the DNS server knows no IPv4 address for it"),
                ));
            }
            addrs
        };
        let mut last = None;
        for addr in addrs {
            log::debug!("http: connecting to {host} at {addr}");
            match TcpStream::connect_timeout(&stack, &addr, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, host.to_string())))
    }
}

#[cfg(test)]
mod http_connector_tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use netstack_runtime::TcpListener;

    use super::*;
    use crate::dns::{demo_zone, Catalog, ServerStats};
    use crate::http::{Client, ClientConfig, Request, Response, Server, ServerConfig};

    /// Two stacks over the in-memory link: 192.0.2.2 serves DNS (demo.test, whose apex is
    /// 192.0.2.2) and HTTP; 192.0.2.3 is the client.
    #[test]
    fn http_connector_resolves_a_name_through_the_stacks_resolver_and_reuses_the_connection() {
        let (server_stack, client_stack) = crate::two_stacks();

        let dns_socket = UdpSocket::bind(&server_stack.handle(), "192.0.2.2:53").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let dns = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut catalog = Catalog::new();
                catalog.insert(demo_zone("192.0.2.2".parse().unwrap()));
                let stats = Mutex::new(ServerStats::default());
                let _ = crate::dns::serve(&dns_socket, &catalog, &stats, &stop);
            })
        };
        let listener = TcpListener::bind(&server_stack, "192.0.2.2:80").unwrap();
        let server = Server::start(
            listener,
            |req: Request| Response::with_body(200, "text/plain", req.path.into_bytes()),
            ServerConfig::default(),
        )
        .unwrap();

        let connector = http_connector(
            &client_stack.handle(),
            Some("192.0.2.2:53".parse().unwrap()),
        );
        let mut client = Client::new(connector, ClientConfig::default());
        let first = client.get("http://www.demo.test/one").unwrap();
        assert_eq!((first.status, &first.body[..]), (200, &b"/one"[..]));
        assert!(!first.reused_connection);
        let second = client.get("http://www.demo.test/two").unwrap();
        assert_eq!(&second.body[..], b"/two");
        assert!(second.reused_connection);
        let literal = client.get("http://192.0.2.2/three").unwrap();
        assert_eq!(&literal.body[..], b"/three");
        let missing = client.get("http://nothere.demo.test/").unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");

        let mut no_dns = Client::new(
            http_connector(&client_stack.handle(), None),
            ClientConfig::default(),
        );
        let e = no_dns.get("http://www.demo.test/").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("needs a DNS server"), "{e}");

        stop.store(true, Ordering::SeqCst);
        server.shutdown(Duration::from_secs(5));
        dns.join().unwrap();
    }
}
