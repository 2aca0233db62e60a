//! The timer table and what each timer does when it fires: retransmission, tail loss probe,
//! delayed ACK, persist (RFC 9293 §3.8.6.1), TIME-WAIT, FIN-WAIT-2, keepalive (RFC 1122
//! §4.2.3.6) and the user timeout (RFC 5482).

use std::time::Instant;

use super::{Connection, State};
use crate::tcp::TcpError;

/// The deadlines a connection arms. Keepalive and the user timeout are not armed: their
/// deadlines follow from other state (`keepalive_deadline`, `user_timeout_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// Retransmission (RFC 6298).
    Rto,
    /// Tail loss probe (RFC 8985 §7).
    TailLossProbe,
    /// Delayed ACK (RFC 9293 §3.8.6.3).
    DelayedAck,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist,
    /// 2 × MSL in TIME-WAIT (RFC 9293 §3.4.2).
    TimeWait,
    /// An orphan's wait for the peer's FIN in FIN-WAIT-2.
    FinWait2,
}

impl Timer {
    const COUNT: usize = 6;
}

/// The timer table, indexed by `Timer`, and the state of the probes the timers send.
#[derive(Debug)]
pub(super) struct Timers {
    deadlines: [Option<Instant>; Timer::COUNT],
    pub(super) persist_backoff: u32,
    pub(super) persist_due: bool,
    /// Zero-window probes the peer has not answered, and when the first of them went out
    /// (RFC 1122 §4.2.2.17: probe only while the peer answers).
    pub(super) persist_probes: u32,
    pub(super) persist_since: Option<Instant>,
    pub(super) keepalive_probes: u32,
    /// When the last keepalive probe went out: the next waits an interval from it.
    pub(super) keepalive_probe_at: Option<Instant>,
    pub(super) keepalive_due: bool,
    /// When the last acceptable segment arrived (keepalive's idle time starts there).
    pub(super) last_rx: Instant,
    /// The endpoint's TIME-WAIT table is full: close once the last ACK is out.
    pub(super) tw_skip: bool,
    /// Since when data has been waiting for an acknowledgment (RFC 5482 user timeout).
    pub(super) unacked_since: Option<Instant>,
}

impl Timers {
    pub(super) fn new(now: Instant) -> Timers {
        Timers {
            deadlines: [None; Timer::COUNT],
            persist_backoff: 0,
            persist_due: false,
            persist_probes: 0,
            persist_since: None,
            keepalive_probes: 0,
            keepalive_probe_at: None,
            keepalive_due: false,
            last_rx: now,
            tw_skip: false,
            unacked_since: None,
        }
    }

    /// The earliest armed deadline.
    pub(super) fn earliest(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms every timer.
    pub(super) fn cancel_all(&mut self) {
        self.deadlines = [None; Timer::COUNT];
    }
}

impl std::ops::Index<Timer> for Timers {
    type Output = Option<Instant>;
    fn index(&self, t: Timer) -> &Option<Instant> {
        &self.deadlines[t as usize]
    }
}

impl std::ops::IndexMut<Timer> for Timers {
    fn index_mut(&mut self, t: Timer) -> &mut Option<Instant> {
        &mut self.deadlines[t as usize]
    }
}

impl Connection {
    pub fn poll_deadline(&self) -> Option<Instant> {
        [
            self.timers.earliest(),
            self.keepalive_deadline(),
            self.user_timeout_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn keepalive_deadline(&self) -> Option<Instant> {
        let ka = self.opts.keepalive?;
        if !matches!(self.state, State::Established | State::CloseWait) || !self.rec.sb.is_empty() {
            return None;
        }
        // RFC 1122 §4.2.3.6: the first probe after `idle` without a segment, each further one
        // an interval after the previous probe (not after `last_rx`, so a timer serviced late
        // still gives the peer a whole interval to answer each probe).
        Some(match self.timers.keepalive_probe_at {
            Some(t) if self.timers.keepalive_probes > 0 => t + ka.interval,
            _ => self.timers.last_rx + ka.idle,
        })
    }

    /// RFC 5482 / RFC 9293 §3.8.3: data unacknowledged, or zero-window probes unanswered,
    /// for this long ends the connection (as Linux applies TCP_USER_TIMEOUT to both).
    pub(super) fn user_timeout_deadline(&self) -> Option<Instant> {
        Some(self.timers.unacked_since.or(self.timers.persist_since)? + self.opts.user_timeout?)
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if self.timers[Timer::TimeWait].is_some_and(|d| d <= now) {
            self.timers[Timer::TimeWait] = None;
            self.state = State::Closed;
            return;
        }
        if self.timers[Timer::FinWait2].is_some_and(|d| d <= now) {
            // The orphan's peer never sent its FIN: tell it the connection is gone (Linux
            // resets too), so it does not wait in CLOSE-WAIT for ever.
            self.timers[Timer::FinWait2] = None;
            self.rst_pending = true;
            self.state = State::Closed;
            self.clear_timers();
            self.release_buffers();
            return;
        }
        if self.user_timeout_deadline().is_some_and(|d| d <= now) {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.timers[Timer::Rto].is_some_and(|d| d <= now) {
            self.on_rto(now);
        }
        if self.timers[Timer::TailLossProbe].is_some_and(|d| d <= now) {
            self.timers[Timer::TailLossProbe] = None;
            self.rec.tlp_due = true;
            self.stats.tail_loss_probes += 1;
        }
        if self.timers[Timer::DelayedAck].is_some_and(|d| d <= now) {
            self.timers[Timer::DelayedAck] = None;
            self.ack.now = true;
        }
        if self.timers[Timer::Persist].is_some_and(|d| d <= now) {
            self.timers[Timer::Persist] = None;
            if self.timers.persist_probes >= self.cfg.max_retries {
                // RFC 1122 §4.2.2.17 keeps probing only while the peer answers: after as many
                // unanswered probes as retransmissions allowed, give up (Linux: tcp_retries2).
                self.fail(TcpError::TimedOut);
                return;
            }
            self.timers.persist_due = true;
            self.timers.persist_backoff = self.timers.persist_backoff.saturating_add(1);
        }
        if let (Some(d), Some(ka)) = (self.keepalive_deadline(), self.opts.keepalive) {
            if d <= now {
                if self.timers.keepalive_probes >= ka.count {
                    // Giving up on a silent peer: tell it, as Linux does.
                    self.rst_pending = true;
                    self.fail(TcpError::TimedOut);
                    return;
                }
                self.timers.keepalive_probes += 1;
                self.timers.keepalive_probe_at = Some(now);
                self.timers.keepalive_due = true;
            }
        }
    }

    pub(super) fn clear_timers(&mut self) {
        self.timers.cancel_all();
        self.timers.unacked_since = None;
        self.timers.persist_since = None;
        self.ack.now = false;
    }

    /// RFC 9293 §3.8.6.1: with data waiting, nothing in flight and no usable window, the
    /// persist timer probes the window with exponential backoff.
    pub(super) fn update_persist(&mut self, now: Instant) {
        let unsent = self.send_end().since(self.snd.max.max(self.snd.data_start));
        let blocked =
            self.can_send() && unsent > 0 && self.rec.sb.is_empty() && !self.timers.persist_due;
        if !blocked {
            self.timers[Timer::Persist] = None;
            return;
        }
        if self.timers[Timer::Persist].is_none() {
            let base = self.rec.rtt.rto();
            let shift = self.timers.persist_backoff.min(16);
            let d = base.saturating_mul(1 << shift).min(self.cfg.max_rto);
            self.timers[Timer::Persist] = Some(now + d);
        }
    }
}
