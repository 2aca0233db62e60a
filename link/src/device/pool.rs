//! Receive buffers used again: a device takes a buffer per frame it reads, the frame travels
//! up the stack in it, and the actor that is done with it gives it back, so a steady stream of
//! frames allocates nothing. Bounded: past [`FramePool::new`]'s limit a returned buffer is
//! freed instead of kept.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Buffers of at most this capacity hold one frame of a standard MTU; larger ones (for the
/// coalesced segments of up to 64 KiB an offloading device hands up) are kept apart, so a
/// small frame never ties up a 64 KiB buffer.
pub const SMALL_FRAME: usize = 2048;

/// Spare large buffers kept at most, whatever the pool's limit (16 MiB of 64 KiB buffers).
const MAX_LARGE: usize = 256;

/// A bounded stack of spare frame buffers in two sizes, shared by the device reader and the
/// actors that finish with frames.
#[derive(Debug)]
pub struct FramePool {
    small: Mutex<Vec<Vec<u8>>>,
    large: Mutex<Vec<Vec<u8>>>,
    max: usize,
    allocated: AtomicU64,
    reused: AtomicU64,
}

impl FramePool {
    /// A pool that keeps at most `max` spare small buffers (and at most 256 large ones).
    pub fn new(max: usize) -> Self {
        Self {
            small: Mutex::new(Vec::new()),
            large: Mutex::new(Vec::new()),
            max,
            allocated: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    fn class(&self, capacity: usize) -> &Mutex<Vec<Vec<u8>>> {
        if capacity <= SMALL_FRAME {
            &self.small
        } else {
            &self.large
        }
    }

    /// A buffer of exactly `len` bytes (their contents are whatever the buffer held before): a
    /// spare one when there is one, else a new allocation.
    pub fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.take_empty(len);
        buf.resize(len, 0);
        buf
    }

    /// An empty buffer with room for at least `capacity` bytes, for a reader that fills the
    /// spare capacity itself (no zero-filling of a 64 KiB buffer per frame). Small buffers are
    /// all made [`SMALL_FRAME`] bytes, so any spare one fits any small frame.
    pub fn take_empty(&self, capacity: usize) -> Vec<u8> {
        let spare = self.class(capacity).lock().pop();
        match spare {
            Some(mut buf) => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(capacity.max(SMALL_FRAME))
            }
        }
    }

    /// Takes `buf` back for a later frame (or frees it when its class is full).
    pub fn give(&self, buf: Vec<u8>) {
        let (free, max) = if buf.capacity() <= SMALL_FRAME {
            (&self.small, self.max)
        } else {
            (&self.large, MAX_LARGE.min(self.max))
        };
        let mut free = free.lock();
        if free.len() < max {
            free.push(buf);
        }
    }

    /// Buffers allocated because none was spare.
    pub fn allocated(&self) -> u64 {
        self.allocated.load(Ordering::Relaxed)
    }

    /// Buffers handed out again.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_large_spare_large_buffers_are_kept() {
        let p = FramePool::new(4096);
        for _ in 0..MAX_LARGE + 10 {
            p.give(Vec::with_capacity(65_600));
        }
        assert_eq!(p.large.lock().len(), MAX_LARGE);
        assert!(p.small.lock().is_empty());
    }

    #[test]
    fn small_and_large_buffers_are_kept_apart() {
        let p = FramePool::new(8);
        p.give(Vec::with_capacity(SMALL_FRAME));
        p.give(Vec::with_capacity(65_600));
        // A small frame gets the small buffer, never the 64 KiB one.
        assert_eq!(p.take_empty(60).capacity(), SMALL_FRAME);
        assert!(p.take_empty(65_549).capacity() >= 65_549);
        assert_eq!((p.allocated(), p.reused()), (0, 2));
        // With none spare, a small frame gets a new buffer of the small size.
        assert_eq!(p.take_empty(100).capacity(), SMALL_FRAME);
    }

    #[test]
    fn a_returned_buffer_is_handed_out_again_at_the_asked_length() {
        let p = FramePool::new(2);
        let mut a = p.take(1500);
        assert_eq!(a.len(), 1500);
        a.truncate(60);
        p.give(a);
        let b = p.take(1514);
        assert_eq!(b.len(), 1514);
        assert_eq!((p.allocated(), p.reused()), (1, 1));
    }

    #[test]
    fn the_pool_keeps_at_most_its_limit() {
        let p = FramePool::new(1);
        p.give(vec![0; 10]);
        p.give(vec![0; 10]);
        assert_eq!(p.small.lock().len(), 1);
    }
}
