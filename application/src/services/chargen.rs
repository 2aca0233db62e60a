//! Chargen (RFC 864): lines of 72 printable characters, each starting one character further
//! along the 95-character ASCII ring. Over UDP one reply of 0 to 512 characters per datagram;
//! over TCP a stream until the client closes, while whatever the client sends is read and
//! thrown away.

use std::io::Read;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use netstack_runtime::TcpStream;

use super::{is_timeout, write_all_until, STOP_POLL};

/// RFC 864 §"UDP Based Character Generator Service": a reply of 0 to 512 characters.
pub const CHARGEN_MAX: usize = 512;

/// Lines written per write call over TCP.
const LINES_PER_WRITE: usize = 64;

/// `count` chargen lines starting at line `first`: 72 printable characters and CRLF each,
/// each line starting one character further along the 95-character ring.
pub fn chargen_lines(first: usize, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 74);
    for line in first..first + count {
        for i in 0..72 {
            out.push(b' ' + ((line + i) % 95) as u8);
        }
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The reply to the `seq`th datagram: chargen lines cut to a length that varies with `seq`,
/// at most [`CHARGEN_MAX`].
pub fn chargen_reply(seq: usize) -> Vec<u8> {
    let len = (seq * 97) % (CHARGEN_MAX + 1);
    let mut out = chargen_lines(seq, len / 74 + 1);
    out.truncate(len);
    out
}

/// Serves one TCP connection (RFC 864 §"TCP Based Character Generator Service"): sends lines
/// until the client closes its side, while a second thread reads and discards what the client
/// sends, so the receive window never fills and the close is an orderly FIN both ways (a
/// connection closed with unread data would end in RST). Also ends on an error or the stop
/// flag. Counts the bytes sent and the bytes discarded.
pub(super) fn serve_tcp(
    conn: TcpStream,
    stop: &AtomicBool,
    sent: &AtomicU64,
    discarded: &AtomicU64,
) {
    let _ = conn.set_read_timeout(Some(STOP_POLL));
    let _ = conn.set_write_timeout(Some(STOP_POLL));
    // Set by the reader when the client has closed its side (or the connection failed).
    let client_done = AtomicBool::new(false);
    // Set by the writer when it stops, so the reader stops too.
    let writer_done = AtomicBool::new(false);
    let over = || stop.load(Ordering::Relaxed) || client_done.load(Ordering::Relaxed);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("tcp-chargen-rx".into())
            .spawn_scoped(scope, || {
                discard_input(&conn, stop, &writer_done, discarded);
                client_done.store(true, Ordering::Relaxed);
            });
        if reader.is_err() {
            log::warn!("tcp chargen: no thread to read a connection; closed");
            return;
        }
        let mut line = 0usize;
        while !over() {
            let chunk = chargen_lines(line, LINES_PER_WRITE);
            line = (line + LINES_PER_WRITE) % 95;
            let written = write_all_until(&conn, &chunk, over, |n| {
                sent.fetch_add(n as u64, Ordering::Relaxed);
            });
            if written.is_err() {
                break;
            }
        }
        writer_done.store(true, Ordering::Relaxed);
    });
    // The client has closed its side and nothing it sent is left unread: FIN.
    let _ = conn.shutdown(Shutdown::Write);
}

/// Reads and throws away what the client sends until it closes its side, an error, the stop
/// flag or the writer's end.
fn discard_input(conn: &TcpStream, stop: &AtomicBool, writer_done: &AtomicBool, count: &AtomicU64) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut r = conn;
    while !stop.load(Ordering::Relaxed) && !writer_done.load(Ordering::Relaxed) {
        match r.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                count.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    }
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

    #[test]
    fn tcp_lines_continue_the_ring_from_one_write_to_the_next() {
        let a = chargen_lines(0, LINES_PER_WRITE);
        let b = chargen_lines(LINES_PER_WRITE % 95, 1);
        let whole = chargen_lines(0, LINES_PER_WRITE + 1);
        assert_eq!([a, b].concat(), whole);
    }
}
