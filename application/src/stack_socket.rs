//! Adapters from the stack's sockets (netstack-runtime) to the traits the protocol code uses.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use netstack_runtime::UdpSocket;

use crate::dns::socket::DatagramSocket;

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
