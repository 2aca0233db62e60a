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

    /// The frames, in order.
    fn frames(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(s, e)| &self.bytes[s..e])
    }

    /// Writes every frame on `fd` with `sendmmsg`, waiting out a full send buffer for a while.
    /// The batch is empty afterwards, also on an error (the frames not sent are lost; the
    /// error says how many).
    pub fn send(&mut self, fd: RawFd, name: &str) -> io::Result<()> {
        let frames: Vec<&[u8]> = self.frames().collect();
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            })
            .collect();
        // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; iovs.len()];
        for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
            m.msg_hdr.msg_iov = iov;
            m.msg_hdr.msg_iovlen = 1;
        }
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
                    super::super::poll_fds(&mut fds, Duration::from_millis(100))?;
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
}
