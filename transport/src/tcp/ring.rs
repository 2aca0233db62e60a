//! A single-producer, single-consumer byte ring: the memory a connection's worker and its
//! application threads share, so a `read` or `write` copies once, straight between the
//! caller's slice and the ring, without asking the worker.
//!
//! One side produces (appends at `tail`), the other consumes (advances `head`); each side is a
//! value that is `Send` but not `Clone`, so the type system keeps it to one of each. Positions
//! are byte counts that wrap (`usize`), so `tail - head` is always the number of bytes held.
//! The memory is allocated on the first write, so an idle connection costs no ring.
//!
//! Ordering: `head` and `tail` are published and read with `SeqCst`. A producer that stores
//! `tail` and then loads `head`, and a consumer that stores `head` and then loads `tail`, can
//! therefore never both miss the other's store: that is what lets the runtime notify the worker
//! only on the edge "the ring was empty" (see [`Producer::write`]) without losing a wake-up.
//!
//! The producer may also write *beyond* `tail` into free space without publishing it (the
//! receive side stores out-of-order segments at their final position); the consumer never
//! reads past `tail`, so those bytes are invisible until [`Producer::publish`] covers them.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// The ring's memory: a heap block freed when the last side is dropped.
struct Memory {
    ptr: NonNull<u8>,
    len: usize,
}

impl Memory {
    fn new(len: usize) -> Memory {
        let boxed: Box<[u8]> = vec![0u8; len].into_boxed_slice();
        let ptr = NonNull::new(Box::into_raw(boxed).cast::<u8>()).expect("Box is non-null");
        Memory { ptr, len }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: `ptr` and `len` came from `Box<[u8]>::into_raw` in `new`, freed only here.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr(),
                self.len,
            )))
        };
    }
}

// SAFETY: `Memory` is a plain heap block; who may touch which bytes is governed by the ring's
// head/tail protocol below.
unsafe impl Send for Memory {}
unsafe impl Sync for Memory {}

struct Shared {
    cap: usize,
    mem: OnceLock<Memory>,
    /// Bytes consumed so far (wrapping). Written only by the consumer.
    head: AtomicUsize,
    /// Bytes published so far (wrapping). Written only by the producer.
    tail: AtomicUsize,
    /// Free-form hints the two sides publish for each other (the receive window's edge and
    /// step; see `recv_buffer`). Not part of the ring's correctness.
    hints: [AtomicUsize; 2],
}

impl Shared {
    fn len(&self) -> usize {
        self.tail
            .load(Ordering::SeqCst)
            .wrapping_sub(self.head.load(Ordering::SeqCst))
    }

    fn mem(&self) -> &Memory {
        self.mem.get_or_init(|| Memory::new(self.cap))
    }

    /// Copies `data` into the ring at absolute position `pos` (wrapping).
    ///
    /// SAFETY: the caller owns bytes `pos..pos + data.len()` (the producer, in free space).
    unsafe fn copy_in(&self, pos: usize, data: &[u8]) {
        let mem = self.mem();
        let start = pos % self.cap;
        let first = data.len().min(self.cap - start);
        let base = mem.ptr.as_ptr();
        std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(start), first);
        std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
    }

    /// Copies `out.len()` bytes from absolute position `pos` (wrapping).
    ///
    /// SAFETY: the caller may read bytes `pos..pos + out.len()` (published, not yet consumed).
    unsafe fn copy_out(&self, pos: usize, out: &mut [u8]) {
        let Some(mem) = self.mem.get() else {
            debug_assert!(out.is_empty());
            return;
        };
        let start = pos % self.cap;
        let first = out.len().min(self.cap - start);
        let base = mem.ptr.as_ptr();
        std::ptr::copy_nonoverlapping(base.add(start), out.as_mut_ptr(), first);
        std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), out.len() - first);
    }
}

/// Creates a ring of `capacity` bytes (at least 1) and returns its two sides.
pub fn ring(capacity: usize) -> (Producer, Consumer) {
    let shared = Arc::new(Shared {
        cap: capacity.max(1),
        mem: OnceLock::new(),
        head: AtomicUsize::new(0),
        tail: AtomicUsize::new(0),
        hints: [AtomicUsize::new(0), AtomicUsize::new(0)],
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Consumer { shared },
    )
}

/// The side that appends bytes.
pub struct Producer {
    shared: Arc<Shared>,
}

/// The side that takes bytes out.
pub struct Consumer {
    shared: Arc<Shared>,
}

impl Producer {
    pub fn capacity(&self) -> usize {
        self.shared.cap
    }
    /// Bytes published and not yet consumed.
    pub fn len(&self) -> usize {
        self.shared.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Space the producer may fill (published or not).
    pub fn free(&self) -> usize {
        self.shared.cap - self.len()
    }
    /// The ring's memory is allocated (it has held data).
    pub fn is_allocated(&self) -> bool {
        self.shared.mem.get().is_some()
    }

    /// Appends as much of `data` as fits and publishes it; returns how much it took.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let tail = self.shared.tail.load(Ordering::Relaxed);
        // SAFETY: `tail..tail + n` is free space, which only the producer touches.
        unsafe { self.shared.copy_in(tail, &data[..n]) };
        self.shared
            .tail
            .store(tail.wrapping_add(n), Ordering::SeqCst);
        n
    }

    /// Stores `data` at `offset` bytes past the published end without publishing it.
    /// Returns false (storing nothing) when it does not fit in the free space.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> bool {
        if offset + data.len() > self.free() {
            return false;
        }
        let tail = self.shared.tail.load(Ordering::Relaxed);
        // SAFETY: the range lies in free space, which only the producer touches.
        unsafe { self.shared.copy_in(tail.wrapping_add(offset), data) };
        true
    }

    /// Publishes `n` bytes already stored past the end with [`write_at`](Self::write_at).
    pub fn publish(&mut self, n: usize) {
        debug_assert!(n <= self.free());
        let tail = self.shared.tail.load(Ordering::Relaxed);
        self.shared
            .tail
            .store(tail.wrapping_add(n), Ordering::SeqCst);
    }

    /// The absolute position of the published end (wrapping byte count).
    pub fn position(&self) -> usize {
        self.shared.tail.load(Ordering::Relaxed)
    }

    pub fn set_hint(&self, i: usize, v: usize) {
        self.shared.hints[i].store(v, Ordering::Relaxed);
    }
    pub fn hint(&self, i: usize) -> usize {
        self.shared.hints[i].load(Ordering::Relaxed)
    }
}

impl Consumer {
    pub fn capacity(&self) -> usize {
        self.shared.cap
    }
    /// Bytes published and not yet consumed.
    pub fn len(&self) -> usize {
        self.shared.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The absolute position of the first unconsumed byte (wrapping byte count).
    pub fn position(&self) -> usize {
        self.shared.head.load(Ordering::Relaxed)
    }
    /// The absolute position of the published end, as the consumer last sees it.
    pub fn end_position(&self) -> usize {
        self.shared.tail.load(Ordering::SeqCst)
    }

    /// Copies bytes from `offset` past the first unconsumed one into `out`, without consuming;
    /// returns how many (at most what is published past `offset`).
    pub fn peek_at(&self, offset: usize, out: &mut [u8]) -> usize {
        let len = self.len();
        if offset >= len {
            return 0;
        }
        let n = out.len().min(len - offset);
        let head = self.shared.head.load(Ordering::Relaxed);
        // SAFETY: `head + offset .. + n` is published and unconsumed: the producer no longer
        // writes it and only this consumer may free it.
        unsafe {
            self.shared
                .copy_out(head.wrapping_add(offset), &mut out[..n])
        };
        n
    }

    /// Appends `len` bytes from `offset` past the first unconsumed one to `out` (less if fewer
    /// are published).
    pub fn extend_vec(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        let n = self.len().saturating_sub(offset).min(len);
        if n == 0 {
            return;
        }
        let Some(mem) = self.shared.mem.get() else {
            return;
        };
        let cap = self.shared.cap;
        let start = self
            .shared
            .head
            .load(Ordering::Relaxed)
            .wrapping_add(offset)
            % cap;
        let first = n.min(cap - start);
        // SAFETY: these `n` bytes are published and unconsumed: the producer no longer writes
        // them and only this consumer may free them, so shared slices of them are sound while
        // they are copied out (no zero-filling of `out` first).
        unsafe {
            let base = mem.ptr.as_ptr();
            out.extend_from_slice(std::slice::from_raw_parts(base.add(start), first));
            out.extend_from_slice(std::slice::from_raw_parts(base, n - first));
        }
    }

    /// Frees the first `n` bytes (at most what is published).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len());
        let head = self.shared.head.load(Ordering::Relaxed);
        self.shared
            .head
            .store(head.wrapping_add(n), Ordering::SeqCst);
    }

    /// Copies out and consumes up to `out.len()` bytes.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_at(0, out);
        self.consume(n);
        n
    }

    pub fn hint(&self, i: usize) -> usize {
        self.shared.hints[i].load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Producer({}/{})", self.len(), self.capacity())
    }
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Consumer({}/{})", self.len(), self.capacity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_across_the_wrap() {
        let (mut p, mut c) = ring(8);
        assert_eq!(p.write(b"123456"), 6);
        let mut out = [0; 5];
        assert_eq!(c.read(&mut out), 5);
        assert_eq!(p.write(b"abcdefgh"), 7, "only the free space is taken");
        let mut all = [0; 8];
        assert_eq!(c.read(&mut all), 8);
        assert_eq!(&all, b"6abcdefg");
        assert!(c.is_empty());
    }

    #[test]
    fn unpublished_bytes_stay_invisible_until_published() {
        let (mut p, mut c) = ring(16);
        assert!(p.write_at(3, b"def"));
        assert_eq!(c.len(), 0);
        assert!(p.write_at(0, b"abc"));
        p.publish(6);
        let mut out = [0; 6];
        assert_eq!(c.read(&mut out), 6);
        assert_eq!(&out, b"abcdef");
        assert!(!p.write_at(10, b"1234567"), "past the free space");
    }

    #[test]
    fn peek_reads_at_an_offset_without_consuming() {
        let (mut p, c) = ring(8);
        p.write(b"abcdef");
        let mut v = Vec::new();
        c.extend_vec(2, 3, &mut v);
        assert_eq!(v, b"cde");
        c.extend_vec(5, 10, &mut v);
        assert_eq!(v, b"cdef");
        assert_eq!(c.len(), 6);
    }

    #[test]
    fn memory_is_allocated_on_the_first_write_only() {
        let (mut p, _c) = ring(1 << 20);
        assert!(!p.is_allocated());
        p.write(b"x");
        assert!(p.is_allocated());
    }

    #[test]
    fn a_producer_and_a_consumer_thread_move_every_byte() {
        let (mut p, mut c) = ring(1000);
        let total = 3_000_000usize;
        let writer = std::thread::spawn(move || {
            let mut i = 0usize;
            while i < total {
                let chunk: Vec<u8> = (i..(i + 777).min(total)).map(|x| x as u8).collect();
                i += p.write(&chunk);
            }
        });
        let mut got = 0usize;
        let mut buf = [0u8; 313];
        while got < total {
            let n = c.read(&mut buf);
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, (got + k) as u8, "byte {}", got + k);
            }
            got += n;
        }
        writer.join().unwrap();
    }
}
