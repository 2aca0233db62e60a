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
mod tests;
