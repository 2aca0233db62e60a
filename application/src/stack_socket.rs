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
