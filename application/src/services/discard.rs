//! Discard (RFC 863): whatever arrives is thrown away (and counted); nothing is sent back.

use std::io::Read;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netstack_runtime::TcpStream;

use super::{is_timeout, STOP_POLL};

/// Reads one TCP connection until the client closes it, an error, or the stop flag; counts the
/// bytes read.
pub(super) fn serve_tcp(conn: TcpStream, stop: &AtomicBool, discarded: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(STOP_POLL));
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match (&conn).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                discarded.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if is_timeout(&e) => continue,
            Err(_) => break,
        }
    }
    let _ = conn.shutdown(Shutdown::Write);
}
