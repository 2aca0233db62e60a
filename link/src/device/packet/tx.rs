//! Batched sending: the frames a thread sends are copied into its queue's batch and written with
//! one `sendmmsg(2)` when [`TX_BATCH`] are waiting or when the runtime flushes after a burst, so
//! a burst of N frames costs one system call, not N.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// Frames a batch holds before it is written without waiting for a flush.
pub const TX_BATCH: usize = 32;

/// How many times a full socket send buffer is waited out (100 ms each) before the frames
/// still waiting are dropped.
const FULL_WAITS: u32 = 10;

/// Frames waiting to be sent on one socket: their bytes back to back and where each ends.
#[derive(Debug, Default)]
pub(super) struct TxBatch {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl TxBatch {
    /// Copies `frame` in; true when the batch is full and should be written.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        self.bytes.extend_from_slice(frame);
        self.ends.push(self.bytes.len());
        self.ends.len() >= TX_BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Writes every frame on `fd` with `sendmmsg`, waiting out a full send buffer for a while.
    /// The batch is empty afterwards, also on an error (the frames not sent are lost; the
    /// error says how many). The message headers live on the stack: a batch holds at most
    /// [`TX_BATCH`] frames, and sending allocates nothing.
    pub fn send(&mut self, fd: RawFd, name: &str) -> io::Result<()> {
        let count = self.ends.len().min(TX_BATCH);
        // SAFETY: all-zero iovecs and mmsghdrs are valid (no buffer, no name, no control).
        let mut iovs: [libc::iovec; TX_BATCH] = unsafe { std::mem::zeroed() };
        let mut msgs: [libc::mmsghdr; TX_BATCH] = unsafe { std::mem::zeroed() };
        let mut start = 0;
        for ((iov, m), &end) in iovs
            .iter_mut()
            .zip(msgs.iter_mut())
            .zip(&self.ends[..count])
        {
            iov.iov_base = self.bytes[start..end].as_ptr() as *mut libc::c_void;
            iov.iov_len = end - start;
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
            start = end;
        }
        let msgs = &mut msgs[..count];
        let mut done = 0;
        let mut waits = FULL_WAITS;
        let result = loop {
            if done == msgs.len() {
                break Ok(());
            }
            let rest = &mut msgs[done..];
            // SAFETY: `rest` points at valid mmsghdrs whose iovecs point into `self.bytes`,
            // which lives (unchanged) until after the call.
            let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
            if n > 0 {
                done += n as usize;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // The socket is non-blocking for the ring's sake; a full send buffer waits for
                // room rather than losing the frames.
                io::ErrorKind::WouldBlock if waits > 0 => {
                    waits -= 1;
                    let mut fds = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    if let Err(e) = super::super::poll_fds(&mut fds, Duration::from_millis(100)) {
                        break Err(e);
                    }
                }
                _ => {
                    break Err(io::Error::new(
                        e.kind(),
                        format!(
                            "{name}: sending {} of {} frames: {e}",
                            msgs.len() - done,
                            msgs.len()
                        ),
                    ))
                }
            }
        };
        self.bytes.clear();
        self.ends.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_batch_goes_out_in_order_as_separate_datagrams_with_one_call() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut t = TxBatch::default();
        assert!(t.is_empty());
        for i in 0..5u8 {
            assert!(!t.push(&vec![i; 10 + usize::from(i)]));
        }
        t.send(a.as_raw_fd(), "test").unwrap();
        assert!(t.is_empty());
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let n = b.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![i; 10 + usize::from(i)][..]);
        }
    }

    #[test]
    fn a_full_batch_says_so() {
        let mut t = TxBatch::default();
        let full = (0..TX_BATCH).map(|_| t.push(b"x")).last();
        assert_eq!(full, Some(true));
    }

    #[test]
    fn an_error_empties_the_batch_and_names_what_was_lost() {
        let (a, b) = UnixDatagram::pair().unwrap();
        drop(b);
        let mut t = TxBatch::default();
        t.push(b"lost");
        let e = t.send(a.as_raw_fd(), "test").unwrap_err();
        assert!(e.to_string().contains("1 of 1 frames"), "{e}");
        assert!(t.is_empty());
    }

    #[test]
    fn a_send_buffer_that_stays_full_loses_the_batch_after_the_waits_and_says_so() {
        let (a, _b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        // Nobody reads `_b`: fill the socket until the kernel refuses more.
        while a.send(&[0u8; 512]).is_ok() {}
        let mut t = TxBatch::default();
        t.push(b"stuck");
        let started = std::time::Instant::now();
        let e = t.send(a.as_raw_fd(), "test").unwrap_err();
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "waited for room first"
        );
        assert!(e.to_string().contains("1 of 1 frames"), "{e}");
        assert!(t.is_empty());
    }
}
