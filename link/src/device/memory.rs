//! An in-memory pair of connected devices for tests and benchmarks, with seeded, reproducible
//! impairments per direction.
//!
//! Each direction is a FIFO queue with its own PRNG. Every `send` draws the same six numbers in
//! the same order (loss, duplicate, reorder, corrupt, bit position, jitter), so the same seed and
//! the same sequence of sends give the same decisions whatever the probabilities or the timing.
//! Delay, jitter and rate use real time; jitter never reorders (a frame is never delivered before
//! the one sent before it), reordering is its own impairment: a frame is held back and released
//! right after the next one (or after `reorder_hold` if no next frame comes).

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::FramePool;
use super::{max_frame_len, Device, Medium};
use crate::prng::SplitMix64;

/// What one direction of the link does to the frames crossing it. Probabilities are per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairments {
    /// Probability a frame is lost.
    pub loss: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back and delivered after the next one.
    pub reorder: f64,
    /// Probability one random bit of the frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in [0, jitter].
    pub jitter: Duration,
    /// Serialisation rate in bits per second; None is unlimited.
    pub rate_bps: Option<u64>,
    /// Frames waiting in this direction (in flight or undelivered) beyond which new frames are
    /// dropped and counted in `queue_drops`.
    pub queue_limit: usize,
    /// Longest a reordered frame waits for a next frame before it is delivered anyway.
    pub reorder_hold: Duration,
}

impl Default for Impairments {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            corrupt: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            queue_limit: 4096,
            reorder_hold: Duration::from_millis(10),
        }
    }
}

/// How to build a [`MemoryLink`] pair.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLinkConfig {
    pub medium: Medium,
    /// IP MTU of both ends; a longer frame is refused by `send`.
    pub mtu: usize,
    /// Seeds both directions' PRNGs (each direction derives its own).
    pub seed: u64,
    /// Frames sent by the first device.
    pub a_to_b: Impairments,
    /// Frames sent by the second device.
    pub b_to_a: Impairments,
    pub names: [String; 2],
}

impl Default for MemoryLinkConfig {
    fn default() -> Self {
        Self {
            medium: Medium::Ethernet,
            mtu: 1500,
            seed: 0,
            a_to_b: Impairments::default(),
            b_to_a: Impairments::default(),
            names: ["mem0".into(), "mem1".into()],
        }
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Frames handed to `send`.
    pub sent: u64,
    /// Frames handed to the receiver (duplicates included).
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Frames (or duplicates) dropped because `queue_limit` frames were waiting.
    pub queue_drops: u64,
}

impl MemoryStats {
    pub fn add(&mut self, other: &MemoryStats) {
        let MemoryStats {
            sent,
            delivered,
            lost,
            duplicated,
            reordered,
            corrupted,
            queue_drops,
        } = other;
        self.sent += sent;
        self.delivered += delivered;
        self.lost += lost;
        self.duplicated += duplicated;
        self.reordered += reordered;
        self.corrupted += corrupted;
        self.queue_drops += queue_drops;
    }
}

/// Builds connected pairs of [`MemoryDevice`]s.
#[derive(Debug)]
pub struct MemoryLink;

impl MemoryLink {
    /// Two devices joined back to back: what the first sends the second receives, and back.
    pub fn pair(config: MemoryLinkConfig) -> (MemoryDevice, MemoryDevice) {
        let mut seeds = SplitMix64::new(config.seed);
        let ab = Arc::new(Direction::new(config.a_to_b.clone(), seeds.next_u64()));
        let ba = Arc::new(Direction::new(config.b_to_a.clone(), seeds.next_u64()));
        let [name_a, name_b] = config.names;
        let end = |name: String, tx: &Arc<Direction>, rx: &Arc<Direction>| MemoryDevice {
            name,
            medium: config.medium,
            mtu: config.mtu,
            tx: Arc::clone(tx),
            rx: Arc::clone(rx),
        };
        (end(name_a, &ab, &ba), end(name_b, &ba, &ab))
    }
}

/// One end of a [`MemoryLink`].
#[derive(Debug)]
pub struct MemoryDevice {
    name: String,
    medium: Medium,
    mtu: usize,
    tx: Arc<Direction>,
    rx: Arc<Direction>,
}

impl MemoryDevice {
    /// Counters of the direction this device sends into.
    pub fn stats(&self) -> MemoryStats {
        self.tx.state.lock().stats.clone()
    }

    /// Counters of the direction this device receives from.
    pub fn incoming_stats(&self) -> MemoryStats {
        self.rx.state.lock().stats.clone()
    }
}

impl Device for MemoryDevice {
    fn medium(&self) -> Medium {
        self.medium
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        Ok(self.rx.recv_batch(out, max, timeout))
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let limit = max_frame_len(self.medium, self.mtu);
        if frame.len() > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: frame of {} bytes exceeds {limit} (MTU {})",
                    self.name,
                    frame.len(),
                    self.mtu
                ),
            ));
        }
        self.tx.send(frame, Instant::now());
        Ok(())
    }

    fn set_frame_pool(&self, pool: Arc<FramePool>) {
        let _ = self.rx.pool.set(pool);
    }
}

#[derive(Debug)]
struct Direction {
    impairments: Impairments,
    /// The receiving device's buffer pool, once the runtime gives it one: frames are copied
    /// into its buffers instead of new allocations.
    pool: std::sync::OnceLock<Arc<FramePool>>,
    state: Mutex<State>,
    /// Signalled when a frame is queued; the receiver re-computes when it can next deliver.
    ready: Condvar,
}

#[derive(Debug)]
struct State {
    rng: SplitMix64,
    /// Frames in delivery order; `due` never decreases along the queue.
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// A reordered frame waiting for the next one: (frame, deliver no later than).
    held: Option<(Vec<u8>, Instant)>,
    /// When the serialiser finishes the last frame accepted (rate limiting).
    link_free_at: Option<Instant>,
    stats: MemoryStats,
}

impl State {
    fn waiting(&self) -> usize {
        self.queue.len() + usize::from(self.held.is_some())
    }

    /// Appends a frame unless the queue is full. `due` is raised to keep the queue FIFO.
    fn enqueue(&mut self, limit: usize, due: Instant, frame: Vec<u8>) {
        if self.waiting() >= limit {
            self.stats.queue_drops += 1;
            return;
        }
        let due = self.queue.back().map_or(due, |(last, _)| due.max(*last));
        self.queue.push_back((due, frame));
    }

    /// Moves a held frame whose hold has run out into the queue.
    fn release_overdue(&mut self, now: Instant) {
        if self.held.as_ref().is_some_and(|(_, until)| *until <= now) {
            if let Some((frame, until)) = self.held.take() {
                let due = self
                    .queue
                    .back()
                    .map_or(until, |(last, _)| until.max(*last));
                self.queue.push_back((due, frame));
            }
        }
    }

    /// Earliest moment something may become deliverable.
    fn next_event(&self) -> Option<Instant> {
        let queued = self.queue.front().map(|(due, _)| *due);
        let held = self.held.as_ref().map(|(_, until)| *until);
        queued.into_iter().chain(held).min()
    }
}

impl Direction {
    fn new(impairments: Impairments, seed: u64) -> Self {
        let state = State {
            rng: SplitMix64::new(seed),
            queue: VecDeque::new(),
            held: None,
            link_free_at: None,
            stats: MemoryStats::default(),
        };
        Self {
            impairments,
            pool: std::sync::OnceLock::new(),
            state: Mutex::new(state),
            ready: Condvar::new(),
        }
    }

    /// `frame` in a buffer of its own, from the receiver's pool when it has one.
    fn copy_of(&self, frame: &[u8]) -> Vec<u8> {
        match self.pool.get() {
            Some(p) => {
                let mut b = p.take(frame.len());
                b.copy_from_slice(frame);
                b
            }
            None => frame.to_vec(),
        }
    }

    fn send(&self, frame: &[u8], now: Instant) {
        let imp = &self.impairments;
        let mut st = self.state.lock();
        st.stats.sent += 1;
        // Always the same draws in the same order: decisions depend only on seed and send count.
        let lose = st.rng.chance(imp.loss);
        let duplicate = st.rng.chance(imp.duplicate);
        let reorder = st.rng.chance(imp.reorder);
        let corrupt = st.rng.chance(imp.corrupt);
        let bit = st.rng.below(frame.len() as u64 * 8);
        let jitter_nanos = st.rng.below(
            u64::try_from(imp.jitter.as_nanos())
                .unwrap_or(u64::MAX)
                .saturating_add(1),
        );
        if lose {
            st.stats.lost += 1;
            return;
        }
        let limit = imp.queue_limit;
        // A frame refused at a full queue never occupies the link (like a router's tail drop).
        if st.waiting() >= limit {
            st.stats.queue_drops += 1;
            return;
        }
        let mut copy = self.copy_of(frame);
        if corrupt && !copy.is_empty() {
            copy[(bit / 8) as usize] ^= 1 << (bit % 8);
            st.stats.corrupted += 1;
        }
        // Rate: the frame leaves once the serialiser has finished the previous one.
        let start = st.link_free_at.map_or(now, |free| free.max(now));
        let serialise = imp
            .rate_bps
            .filter(|r| *r > 0)
            .map_or(Duration::ZERO, |rate| {
                let nanos = (frame.len() as u128 * 8 * 1_000_000_000) / u128::from(rate);
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            });
        let sent_at = start + serialise;
        st.link_free_at = Some(sent_at);
        let due = sent_at + imp.delay + Duration::from_nanos(jitter_nanos);

        if reorder && st.held.is_none() {
            st.stats.reordered += 1;
            st.held = Some((copy, due + imp.reorder_hold));
        } else {
            st.enqueue(limit, due, copy);
            // The held frame goes right after the frame that overtook it.
            if let Some((held, _)) = st.held.take() {
                st.enqueue(limit, due, held);
            }
        }
        if duplicate {
            st.stats.duplicated += 1;
            let dup = self.copy_of(frame);
            st.enqueue(limit, due, dup);
        }
        drop(st);
        self.ready.notify_all();
    }

    fn recv_batch(&self, out: &mut Vec<Vec<u8>>, max: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        loop {
            let now = Instant::now();
            st.release_overdue(now);
            let mut appended = 0;
            while appended < max && st.queue.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, frame)) = st.queue.pop_front() {
                    out.push(frame);
                    appended += 1;
                }
            }
            st.stats.delivered += appended as u64;
            if appended > 0 || max == 0 || now >= deadline {
                return appended;
            }
            let wake = st.next_event().map_or(deadline, |t| t.min(deadline));
            // Woken early by a send, we loop and re-check; a timeout also loops and re-checks.
            self.ready.wait_until(&mut st, wake);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    const N: usize = 10_000;

    fn frame(i: usize) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..8].copy_from_slice(&(i as u64).to_be_bytes());
        f
    }

    fn pair_with(seed: u64, imp: Impairments) -> (MemoryDevice, MemoryDevice) {
        MemoryLink::pair(MemoryLinkConfig {
            seed,
            a_to_b: imp,
            ..Default::default()
        })
    }

    fn drain(dev: &MemoryDevice) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while dev
            .recv_batch(&mut out, usize::MAX, Duration::ZERO)
            .unwrap()
            > 0
        {}
        out
    }

    /// Sends N frames a→b and returns what b received.
    fn run(seed: u64, imp: Impairments) -> (Vec<Vec<u8>>, MemoryStats) {
        let imp = Impairments {
            queue_limit: 2 * N,
            reorder_hold: Duration::ZERO,
            ..imp
        };
        let (a, b) = pair_with(seed, imp);
        for i in 0..N {
            a.send(&frame(i)).unwrap();
        }
        let got = drain(&b);
        (got, a.stats())
    }

    /// Asserts that `start.elapsed()` lies in [`min`, `max`); `what` names the event.
    fn assert_took(start: Instant, min: Duration, max: Duration, what: &str) {
        let took = start.elapsed();
        assert!(took >= min, "{what} after {took:?}, before {min:?}");
        assert!(took < max, "{what} only after {took:?}, deadline {max:?}");
    }

    fn assert_rate(count: u64, p: f64) {
        let expected = p * N as f64;
        // Within 15 % (about 5 standard deviations at p = 0.1).
        assert!(
            (count as f64 - expected).abs() <= expected * 0.15,
            "observed {count} of {N}, expected about {expected}"
        );
    }

    fn lossy() -> Impairments {
        Impairments {
            loss: 0.1,
            duplicate: 0.1,
            reorder: 0.1,
            corrupt: 0.1,
            ..Default::default()
        }
    }

    #[test]
    fn clean_link_delivers_everything_in_order_both_ways() {
        let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        for i in 0..5 {
            a.send(&frame(i)).unwrap();
            b.send(&frame(100 + i)).unwrap();
        }
        assert_eq!(drain(&b), (0..5).map(frame).collect::<Vec<_>>());
        assert_eq!(drain(&a), (100..105).map(frame).collect::<Vec<_>>());
        assert_eq!(
            a.stats(),
            MemoryStats {
                sent: 5,
                delivered: 5,
                ..Default::default()
            }
        );
        assert_eq!(a.incoming_stats(), b.stats());
    }

    #[test]
    fn same_seed_gives_the_same_delivered_sequence() {
        let (first, s1) = run(7, lossy());
        let (second, s2) = run(7, lossy());
        assert_eq!(first, second);
        assert_eq!(s1, s2);
    }

    #[test]
    fn different_seed_gives_a_different_sequence() {
        assert_ne!(run(7, lossy()).0, run(8, lossy()).0);
    }

    #[test]
    fn loss_rate_matches_probability() {
        let (got, s) = run(
            1,
            Impairments {
                loss: 0.1,
                ..Default::default()
            },
        );
        assert_rate(s.lost, 0.1);
        assert_eq!(got.len() as u64, N as u64 - s.lost);
        assert_eq!(s.delivered, got.len() as u64);
    }

    #[test]
    fn duplicate_rate_matches_probability() {
        let (got, s) = run(
            2,
            Impairments {
                duplicate: 0.1,
                ..Default::default()
            },
        );
        assert_rate(s.duplicated, 0.1);
        assert_eq!(got.len() as u64, N as u64 + s.duplicated);
        // A duplicate follows its original.
        let dups = got.windows(2).filter(|w| w[0] == w[1]).count() as u64;
        assert_eq!(dups, s.duplicated);
    }

    #[test]
    fn reorder_rate_matches_probability_and_swaps_with_the_next_frame() {
        let (got, s) = run(
            3,
            Impairments {
                reorder: 0.1,
                ..Default::default()
            },
        );
        assert_rate(s.reordered, 0.1);
        assert_eq!(got.len(), N);
        let ids: Vec<u64> = got
            .iter()
            .map(|f| u64::from_be_bytes(f[..8].try_into().unwrap()))
            .collect();
        let inversions = ids.windows(2).filter(|w| w[0] > w[1]).count() as u64;
        // Each reordered frame lands right after the frame sent after it, except a last frame
        // held with nothing behind it: the hold releases it, in order.
        assert!(
            inversions == s.reordered || inversions + 1 == s.reordered,
            "{inversions} inversions for {} reordered",
            s.reordered
        );
        for w in ids.windows(2).filter(|w| w[0] > w[1]) {
            assert_eq!(
                w[0],
                w[1] + 1,
                "a held frame comes right after its successor"
            );
        }
    }

    #[test]
    fn corrupt_rate_matches_probability_and_flips_exactly_one_bit() {
        let (got, s) = run(
            4,
            Impairments {
                corrupt: 0.1,
                ..Default::default()
            },
        );
        assert_rate(s.corrupted, 0.1);
        let mut flipped = 0;
        for (i, f) in got.iter().enumerate() {
            let bits: u32 = f
                .iter()
                .zip(frame(i).iter())
                .map(|(x, y)| (x ^ y).count_ones())
                .sum();
            assert!(bits <= 1, "frame {i} has {bits} bits flipped");
            flipped += bits as u64;
        }
        assert_eq!(flipped, s.corrupted);
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let (a, b) = pair_with(
            0,
            Impairments {
                queue_limit: 3,
                ..Default::default()
            },
        );
        for i in 0..5 {
            a.send(&frame(i)).unwrap();
        }
        assert_eq!(drain(&b), (0..3).map(frame).collect::<Vec<_>>());
        assert_eq!(a.stats().queue_drops, 2);
    }

    #[test]
    fn frames_dropped_at_a_full_queue_take_no_link_time() {
        // 1250 bytes at 1 Mbit/s is 10 ms; only the two queued frames may occupy the link.
        let imp = Impairments {
            rate_bps: Some(1_000_000),
            queue_limit: 2,
            ..Default::default()
        };
        let (a, _b) = pair_with(0, imp);
        let start = Instant::now();
        for _ in 0..5 {
            a.send(&[0u8; 1250]).unwrap();
        }
        let end = Instant::now();
        assert_eq!(a.stats().queue_drops, 3);
        let free_at = a.tx.state.lock().link_free_at.unwrap();
        let busy = Duration::from_millis(20);
        assert!(free_at >= start + busy && free_at <= end + busy);
    }

    #[test]
    fn oversized_frame_is_refused() {
        let (a, _b) = MemoryLink::pair(MemoryLinkConfig {
            mtu: 100,
            ..Default::default()
        });
        assert!(a.send(&[0u8; 114]).is_ok());
        assert_eq!(
            a.send(&[0u8; 115]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        let (c, _d) = MemoryLink::pair(MemoryLinkConfig {
            medium: Medium::Ip,
            mtu: 100,
            ..Default::default()
        });
        assert_eq!(c.medium(), Medium::Ip);
        assert_eq!(
            c.send(&[0u8; 101]).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn recv_batch_times_out_promptly_with_zero() {
        let (_a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        let mut out = Vec::new();
        let start = Instant::now();
        assert_eq!(
            b.recv_batch(&mut out, 8, Duration::from_millis(30))
                .unwrap(),
            0
        );
        let (min, max) = (Duration::from_millis(30), Duration::from_millis(500));
        assert_took(start, min, max, "timeout returned");
        assert!(out.is_empty());
    }

    #[test]
    fn recv_batch_respects_max() {
        let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        for i in 0..5 {
            a.send(&frame(i)).unwrap();
        }
        let mut out = Vec::new();
        assert_eq!(b.recv_batch(&mut out, 2, Duration::ZERO).unwrap(), 2);
        assert_eq!(b.recv_batch(&mut out, 0, Duration::ZERO).unwrap(), 0);
        assert_eq!(b.recv_batch(&mut out, 10, Duration::ZERO).unwrap(), 3);
        assert_eq!(out, (0..5).map(frame).collect::<Vec<_>>());
    }

    #[test]
    fn recv_batch_wakes_promptly_when_a_frame_is_sent() {
        let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        let start = Instant::now();
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            a.send(&frame(1)).unwrap();
            a
        });
        let mut out = Vec::new();
        let n = b.recv_batch(&mut out, 8, Duration::from_secs(10)).unwrap();
        let (min, max) = (Duration::from_millis(30), Duration::from_secs(2));
        assert_took(start, min, max, "woke");
        sender.join().unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn delay_is_honoured() {
        let delay = Duration::from_millis(50);
        let (a, b) = pair_with(
            0,
            Impairments {
                delay,
                ..Default::default()
            },
        );
        let start = Instant::now();
        a.send(&frame(1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            b.recv_batch(&mut out, 8, Duration::ZERO).unwrap(),
            0,
            "arrived early"
        );
        assert_eq!(
            b.recv_batch(&mut out, 8, Duration::from_secs(5)).unwrap(),
            1
        );
        assert_took(start, delay, Duration::from_secs(2), "delivered");
    }

    #[test]
    fn jitter_delays_within_bound_without_reordering() {
        let imp = Impairments {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(20),
            ..Default::default()
        };
        let (a, b) = pair_with(9, imp);
        let start = Instant::now();
        for i in 0..50 {
            a.send(&frame(i)).unwrap();
        }
        let mut out = Vec::new();
        let deadline = start + Duration::from_secs(5);
        while out.len() < 50 && Instant::now() < deadline {
            b.recv_batch(&mut out, 64, Duration::from_millis(100))
                .unwrap();
        }
        assert!(start.elapsed() >= Duration::from_millis(5));
        assert_eq!(out, (0..50).map(frame).collect::<Vec<_>>());
    }

    #[test]
    fn rate_limit_is_honoured() {
        // 10 frames of 1250 bytes at 1 Mbit/s: 10 ms each, the last arrives after 100 ms.
        let (a, b) = pair_with(
            0,
            Impairments {
                rate_bps: Some(1_000_000),
                ..Default::default()
            },
        );
        let start = Instant::now();
        for _ in 0..10 {
            a.send(&[0u8; 1250]).unwrap();
        }
        let mut out = Vec::new();
        let mut first = None;
        let deadline = start + Duration::from_secs(5);
        while out.len() < 10 && Instant::now() < deadline {
            b.recv_batch(&mut out, 64, Duration::from_millis(200))
                .unwrap();
            first.get_or_insert_with(|| start.elapsed());
        }
        assert_eq!(out.len(), 10);
        assert!(
            first.unwrap() >= Duration::from_millis(10),
            "first after {first:?}"
        );
        let (min, max) = (Duration::from_millis(100), Duration::from_secs(3));
        assert_took(start, min, max, "all ten delivered");
    }

    #[test]
    fn held_frame_is_released_after_the_hold_when_nothing_follows() {
        let imp = Impairments {
            reorder: 1.0,
            reorder_hold: Duration::from_millis(20),
            ..Default::default()
        };
        let (a, b) = pair_with(0, imp);
        let start = Instant::now();
        a.send(&frame(1)).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            b.recv_batch(&mut out, 8, Duration::from_secs(5)).unwrap(),
            1
        );
        let (min, max) = (Duration::from_millis(20), Duration::from_secs(2));
        assert_took(start, min, max, "released");
    }

    #[test]
    fn stats_add_sums_every_counter() {
        let mut s = MemoryStats {
            sent: 1,
            lost: 2,
            ..Default::default()
        };
        s.add(&MemoryStats {
            sent: 1,
            delivered: 3,
            lost: 1,
            duplicated: 4,
            reordered: 5,
            corrupted: 6,
            queue_drops: 7,
        });
        assert_eq!(
            s,
            MemoryStats {
                sent: 2,
                delivered: 3,
                lost: 3,
                duplicated: 4,
                reordered: 5,
                corrupted: 6,
                queue_drops: 7
            }
        );
    }
}
