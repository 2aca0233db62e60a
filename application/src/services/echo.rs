//! Echo (RFC 862): every datagram goes back to its sender; every byte of a TCP connection goes
//! back on it, until the client closes.

use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netstack_runtime::{TcpStream, UdpSocket};

use super::{is_timeout, write_all_until, STOP_POLL};

/// RFC 862 §"UDP Based Echo Service": the datagram's data goes back in a reply.
pub(super) fn on_datagram(sock: &UdpSocket, data: &[u8], from: SocketAddr, count: &AtomicU64) {
    count.fetch_add(1, Ordering::Relaxed);
    let _ = sock.send_to(data, from);
}

/// Serves one TCP connection until the client closes it, an error, or the stop flag; counts the
/// bytes echoed.
pub(super) fn serve_tcp(conn: TcpStream, stop: &AtomicBool, echoed: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(STOP_POLL));
    let _ = conn.set_write_timeout(Some(STOP_POLL));
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match (&conn).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let sent = write_all_until(
                    &conn,
                    &buf[..n],
                    || stop.load(Ordering::Relaxed),
                    |k| {
                        echoed.fetch_add(k as u64, Ordering::Relaxed);
                    },
                );
                if sent.is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        }
    }
    // What was echoed, then FIN.
    let _ = conn.shutdown(Shutdown::Write);
}
