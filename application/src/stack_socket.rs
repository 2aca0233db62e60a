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
