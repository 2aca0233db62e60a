//! The receive buffer: a ring holding in-order bytes the application has not read, followed
//! by room for out-of-order data, which is written at its final position and tracked as ranges
//! (RFC 9293 §3.10.7.4 "segments with higher beginning sequence numbers may be held").
//! Out-of-order data never exceeds the free space, so memory is bounded by the capacity.
//! The ring is shared: the connection writes, the application reads (see `ring`).

use super::ring::{ring, Consumer, Producer};

/// A range of out-of-order bytes, as offsets from the end of the in-order data (`RCV.NXT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OooRange {
    pub start: usize,
    pub end: usize,
    /// Arrival order of the latest segment in the range (RFC 2018 §4 reports the most recent
    /// block first).
    pub stamp: u64,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOutcome {
    /// In-order bytes that became readable (RCV.NXT advances by this much).
    pub advanced: usize,
    /// The data was stored (false when the range table was full).
    pub stored: bool,
    /// Every byte of the write was already held (a duplicate, for D-SACK).
    pub duplicate: bool,
    /// The write filled (part of) a hole in front of out-of-order data.
    pub filled_hole: bool,
}

/// The receive side of a connection: the ring's producer (owned by the connection) and, until
/// the runtime takes it with [`take_reader`](RecvBuffer::take_reader), its consumer.
#[derive(Debug)]
pub struct RecvBuffer {
    ring: Producer,
    /// The application's side, while the connection still holds it (sans-IO use, tests).
    reader: Option<Consumer>,
    /// The application's side went to the runtime: reads happen there.
    detached: bool,
    ooo: Vec<OooRange>,
    max_ranges: usize,
    stamp: u64,
}

/// The receive ring's hints to its reader: where the advertised window ends (a ring position)
/// and the step worth a window update, so a reader knows when to wake the worker.
pub const HINT_WINDOW_EDGE: usize = 0;
pub const HINT_WINDOW_STEP: usize = 1;

impl RecvBuffer {
    /// `max_ranges` bounds the out-of-order bookkeeping; a segment that would need one more
    /// range is dropped (and retransmitted by the peer).
    pub fn new(capacity: usize, max_ranges: usize) -> Self {
        let (ring, reader) = ring(capacity);
        RecvBuffer {
            ring,
            reader: Some(reader),
            detached: false,
            ooo: Vec::new(),
            max_ranges,
            stamp: 0,
        }
    }

    /// Hands the reading side to the runtime: from now on the application reads from it
    /// directly and [`read`](Self::read) returns nothing.
    pub fn take_reader(&mut self) -> Option<Consumer> {
        self.detached = true;
        self.reader.take()
    }

    pub fn is_detached(&self) -> bool {
        self.detached
    }

    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
    /// Frees the ring when it holds nothing (a connection that will receive no more data);
    /// a later write would allocate it again. A ring whose reader went to the runtime is
    /// freed when the reader drops it.
    pub fn release_if_drained(&mut self) {
        if self.ring.is_empty() && self.ooo.is_empty() && self.ring.is_allocated() {
            let (ring, reader) = ring(self.ring.capacity());
            self.ring = ring;
            if !self.detached {
                self.reader = Some(reader);
            }
            self.ooo = Vec::new();
        }
    }
    /// Bytes ready for the application.
    pub fn readable(&self) -> usize {
        self.ring.len()
    }
    /// Free space from RCV.NXT on: the most the peer may send beyond RCV.NXT.
    pub fn window(&self) -> usize {
        self.ring.free()
    }
    /// Publishes the advertised window's right edge (`window` bytes past RCV.NXT) and the
    /// step worth a window update, for a reader on another thread.
    pub fn publish_window(&self, window: usize, step: usize) {
        self.ring
            .set_hint(HINT_WINDOW_EDGE, self.ring.position().wrapping_add(window));
        self.ring.set_hint(HINT_WINDOW_STEP, step);
    }
    /// Out-of-order bytes held.
    pub fn ooo_bytes(&self) -> usize {
        self.ooo.iter().map(|r| r.end - r.start).sum()
    }
    /// Number of out-of-order ranges held.
    pub fn ooo_ranges(&self) -> usize {
        self.ooo.len()
    }
    pub fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }
    /// Out-of-order ranges, most recently extended first.
    pub fn ranges_by_recency(&self) -> Vec<OooRange> {
        let mut v = self.ooo.clone();
        v.sort_by_key(|r| std::cmp::Reverse(r.stamp));
        v
    }

    /// Stores `data` at `offset` bytes past RCV.NXT. The caller has trimmed it to the window
    /// (`offset + data.len() <= window()`).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> WriteOutcome {
        let end = offset + data.len();
        debug_assert!(end <= self.window());
        if data.is_empty() || end > self.window() {
            return WriteOutcome::default();
        }
        let duplicate = self.ooo.iter().any(|r| r.start <= offset && end <= r.end);
        if duplicate {
            return WriteOutcome {
                stored: true,
                duplicate: true,
                ..WriteOutcome::default()
            };
        }
        // Ranges that overlap or touch the new one merge with it.
        let first = self.ooo.partition_point(|r| r.end < offset);
        let last = self.ooo.partition_point(|r| r.start <= end);
        if offset > 0 && first == last && self.ooo.len() >= self.max_ranges {
            return WriteOutcome::default();
        }
        let had_ooo = !self.ooo.is_empty();
        if !self.ring.write_at(offset, data) {
            return WriteOutcome::default();
        }
        self.stamp += 1;
        let mut merged = OooRange {
            start: offset,
            end,
            stamp: self.stamp,
        };
        for r in &self.ooo[first..last] {
            merged.start = merged.start.min(r.start);
            merged.end = merged.end.max(r.end);
        }
        self.ooo.splice(first..last, [merged]);
        let mut out = WriteOutcome {
            stored: true,
            ..WriteOutcome::default()
        };
        if self.ooo[0].start == 0 {
            let adv = self.ooo.remove(0).end;
            // RFC 5681 §4.2: data at RCV.NXT while out-of-order data is held fills a hole.
            out.filled_hole = had_ooo;
            self.ring.publish(adv);
            out.advanced = adv;
            for r in &mut self.ooo {
                r.start -= adv;
                r.end -= adv;
            }
        }
        out
    }

    /// Copies out up to `out.len()` in-order bytes (none once the reader went to the runtime).
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        self.reader.as_mut().map_or(0, |r| r.read(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &mut RecvBuffer) -> Vec<u8> {
        let mut out = vec![0; b.readable()];
        b.read(&mut out);
        out
    }

    #[test]
    fn in_order_data_becomes_readable() {
        let mut b = RecvBuffer::new(8, 4);
        let o = b.write(0, b"abc");
        assert_eq!(o.advanced, 3);
        assert_eq!(b.window(), 5);
        assert_eq!(read_all(&mut b), b"abc");
        assert_eq!(b.window(), 8);
    }

    #[test]
    fn out_of_order_data_waits_for_the_hole() {
        let mut b = RecvBuffer::new(16, 4);
        assert_eq!(b.write(3, b"def").advanced, 0);
        assert_eq!(b.ooo_bytes(), 3);
        let o = b.write(0, b"abc");
        assert_eq!(o.advanced, 6);
        assert!(o.filled_hole);
        assert_eq!(read_all(&mut b), b"abcdef");
        assert!(!b.has_ooo());
    }

    #[test]
    fn data_wraps_around_the_ring() {
        let mut b = RecvBuffer::new(8, 4);
        b.write(0, b"123456");
        let mut out = [0; 5];
        b.read(&mut out);
        b.write(0, b"abcdefg");
        assert_eq!(read_all(&mut b), b"6abcdefg");
    }

    #[test]
    fn duplicate_out_of_order_data_is_reported() {
        let mut b = RecvBuffer::new(16, 4);
        b.write(4, b"efgh");
        assert!(b.write(5, b"fg").duplicate);
    }

    #[test]
    fn range_table_full_drops_the_segment() {
        let mut b = RecvBuffer::new(64, 2);
        assert!(b.write(2, b"a").stored);
        assert!(b.write(4, b"b").stored);
        assert!(!b.write(6, b"c").stored);
        // Extending an existing range still works.
        assert!(b.write(5, b"x").stored);
    }

    #[test]
    fn ranges_report_most_recent_first() {
        let mut b = RecvBuffer::new(64, 4);
        b.write(10, b"a");
        b.write(20, b"b");
        b.write(11, b"c");
        let r = b.ranges_by_recency();
        assert_eq!((r[0].start, r[0].end), (10, 12));
        assert_eq!((r[1].start, r[1].end), (20, 21));
    }
}
