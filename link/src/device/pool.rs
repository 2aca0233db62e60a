//! Receive buffers used again: a device takes a buffer per frame it reads, the frame travels
//! up the stack in it, and the actor that is done with it gives it back, so a steady stream of
//! frames allocates nothing. Bounded: past [`FramePool::new`]'s limit a returned buffer is
//! freed instead of kept.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A bounded stack of spare frame buffers, shared by the device reader and the actors that
/// finish with frames.
#[derive(Debug)]
pub struct FramePool {
    free: Mutex<Vec<Vec<u8>>>,
    max: usize,
    allocated: AtomicU64,
    reused: AtomicU64,
}

impl FramePool {
    /// A pool that keeps at most `max` spare buffers.
    pub fn new(max: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            max,
            allocated: AtomicU64::new(0),
            reused: AtomicU64::new(0),
        }
    }

    /// A buffer of exactly `len` bytes (their contents are whatever the buffer held before): a
    /// spare one when there is one, else a new allocation.
    pub fn take(&self, len: usize) -> Vec<u8> {
        let spare = self.free.lock().pop();
        match spare {
            Some(mut buf) => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf.resize(len, 0);
                buf
            }
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                vec![0; len]
            }
        }
    }

    /// An empty buffer with room for at least `capacity` bytes, for a reader that fills the
    /// spare capacity itself (no zero-filling of a 64 KiB buffer per frame).
    pub fn take_empty(&self, capacity: usize) -> Vec<u8> {
        let spare = self.free.lock().pop();
        match spare {
            Some(mut buf) => {
                self.reused.fetch_add(1, Ordering::Relaxed);
                buf.clear();
                buf.reserve(capacity);
                buf
            }
            None => {
                self.allocated.fetch_add(1, Ordering::Relaxed);
                Vec::with_capacity(capacity)
            }
        }
    }

    /// Takes `buf` back for a later frame (or frees it when the pool is full).
    pub fn give(&self, buf: Vec<u8>) {
        let mut free = self.free.lock();
        if free.len() < self.max {
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
        assert_eq!(p.free.lock().len(), 1);
    }
}
