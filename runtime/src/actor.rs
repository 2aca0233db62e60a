//! The one loop every channel-driven actor runs: wait for a message until the next timer (at
//! most [`POLL_INTERVAL`], so shutdown is noticed), handle it and up to `drain` more already
//! queued (one wake-up, many messages), then let the actor run its timers and flush.
//!
//! An actor that has just handled messages may spin for a moment before it parks (see
//! [`spin_for_work`]): the next message often comes within microseconds, and a wake-up from a
//! futex costs more than that.
//!
//! An actor stops when its stop flag is set, its queue has stayed empty for one wait and it
//! has nothing left in hand (`may_stop`), so everything queued before shutdown is still
//! handled; or when every sender is gone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::POLL_INTERVAL;

pub(crate) trait Actor {
    type Msg;

    fn handle(&mut self, msg: Self::Msg);

    /// After each wake-up (message or timer): fire due timers, flush outputs, publish counters.
    fn after_wake(&mut self);

    /// The actor's next timer, if any.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Asked once the stop flag is set and the queue is empty: false keeps the actor running
    /// (timers included) to finish work still in hand; it is asked again after each wait.
    fn may_stop(&mut self) -> bool {
        true
    }
}

/// Spins for at most `spin` while `ready` says nothing has arrived; true when something has.
/// Only a thread that has just had work spins (an idle one parks at once), so an idle stack
/// burns no CPU.
pub(crate) fn spin_for_work(spin: Duration, ready: impl Fn() -> bool) -> bool {
    if spin.is_zero() {
        return false;
    }
    let until = Instant::now() + spin;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

pub(crate) fn run<A: Actor>(
    actor: &mut A,
    rx: &Receiver<A::Msg>,
    stop: &AtomicBool,
    drain: usize,
    spin: Duration,
) {
    let mut busy = false;
    loop {
        if busy {
            spin_for_work(spin, || !rx.is_empty());
        }
        let now = Instant::now();
        let deadline = actor
            .next_deadline()
            .map_or(now + POLL_INTERVAL, |d| d.min(now + POLL_INTERVAL));
        match rx.recv_deadline(deadline) {
            Ok(msg) => {
                busy = true;
                actor.handle(msg);
                for _ in 0..drain {
                    match rx.try_recv() {
                        Ok(msg) => actor.handle(msg),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                busy = false;
                if stop.load(Ordering::Relaxed) && actor.may_stop() {
                    break;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        actor.after_wake();
    }
    actor.after_wake();
}
