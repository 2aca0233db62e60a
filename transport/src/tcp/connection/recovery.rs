//! Loss detection and recovery: RTT samples (RFC 6298, RFC 7323 §4.1), duplicate ACKs and SACK
//! (RFC 5681, RFC 6675), NewReno without SACK (RFC 6582), the tail loss probe (RFC 8985 §7),
//! the retransmission timeout, and when congestion control may grow cwnd (RFC 7661).

use std::time::{Duration, Instant};

use super::timers::Timer;
use super::{Connection, State};
use crate::tcp::congestion::CongestionControl;
use crate::tcp::rtt::RttEstimator;
use crate::tcp::sack::{Acked, Scoreboard, DUP_THRESH};
use crate::tcp::segment::TcpRepr;
use crate::tcp::seq::SeqNumber;
use crate::tcp::TcpError;

/// Loss recovery (RFC 6298, 6675, 6582, 8985) and congestion control (RFC 5681, 7661).
#[derive(Debug)]
pub(super) struct Recovery {
    pub(super) rtt: RttEstimator,
    /// Consecutive RTO expiries.
    pub(super) retries: u32,
    /// Every segment sent and not yet acknowledged (SYN aside).
    pub(super) sb: Scoreboard,
    pub(super) dupacks: usize,
    /// In fast recovery.
    pub(super) active: bool,
    /// SND.NXT when recovery began: an ACK at or past it ends recovery.
    pub(super) point: SeqNumber,
    /// RFC 6582 §3.2 "recover": no new recovery for dup ACKs of data sent before it.
    pub(super) recover: SeqNumber,
    pub(super) started: Instant,
    /// Bytes that duplicate ACKs say left the network, for peers without SACK.
    pub(super) reno_sacked: usize,
    /// Send the first lost segment even if pipe ≥ cwnd (RFC 6675 §5 step 4.2).
    pub(super) force_rexmit: bool,
    /// RFC 6675 §4 RescueRxt: the recovery point of the last rescue retransmission.
    pub(super) rescue_rxt: Option<SeqNumber>,
    pub(super) cc: Box<dyn CongestionControl>,
    /// RFC 8985 §7 tail loss probe: a probe due, and one probe per episode.
    pub(super) tlp_due: bool,
    pub(super) tlp_out: bool,
    /// How fully the current window used cwnd (RFC 7661 §4.4, as Linux tracks it): whether a
    /// send was held back by cwnd, and the largest flight, since `cwnd_usage_seq` was sent.
    pub(super) cwnd_limited: bool,
    pub(super) max_flight: usize,
    pub(super) cwnd_usage_seq: SeqNumber,
}

impl Connection {
    /// The SACK blocks of an acceptable ACK (RFC 2018 §3) go into the scoreboard; returns
    /// whether any covered data not SACKed before. D-SACK blocks are only counted.
    pub(super) fn apply_sack(&mut self, seg: &TcpRepr) -> bool {
        let ack = seg.ack;
        let mut sack_new = false;
        if self.enabled.sack {
            for (i, b) in seg.sack.iter().enumerate() {
                self.stats.sack_blocks_received += 1;
                // RFC 2883 §4: a first block below the ACK, or inside the second, is a D-SACK.
                if i == 0
                    && (b.end <= ack
                        || seg
                            .sack
                            .iter()
                            .nth(1)
                            .is_some_and(|o| b.start >= o.start && b.end <= o.end))
                {
                    self.stats.dsack_blocks_received += 1;
                    continue;
                }
                if b.start < b.end && b.start >= ack && b.end <= self.snd.max {
                    sack_new |= self.rec.sb.apply_sack(b);
                }
            }
        }
        sack_new
    }

    /// RFC 5681 §2: a duplicate acknowledgment.
    pub(super) fn on_dup_ack(&mut self) {
        self.rec.dupacks += 1;
        self.stats.dup_acks += 1;
        if !self.enabled.sack {
            // Each duplicate ACK says a segment left the network (RFC 3042 / RFC 6582
            // cwnd inflation, expressed as pipe).
            let cap = self.flight().saturating_sub(self.data_mss());
            self.rec.reno_sacked = (self.rec.reno_sacked + self.data_mss()).min(cap);
        }
    }

    /// After an ACK: mark what SACK shows lost (RFC 6675 §5), and enter recovery on the
    /// third duplicate ACK or a lost first segment, unless the ACK is for data sent before
    /// the last recovery ended (RFC 6582 §3.2).
    pub(super) fn detect_loss(&mut self, now: Instant, sack_new: bool) {
        if self.enabled.sack && sack_new {
            self.rec.sb.mark_lost(self.data_mss());
        }
        if !self.rec.active
            && !self.rec.sb.is_empty()
            && (self.rec.dupacks >= DUP_THRESH
                || (self.enabled.sack && self.rec.sb.first_is_lost()))
            && self.snd.una > self.rec.recover
        {
            self.enter_recovery(now);
        }
    }

    pub(super) fn pipe(&self) -> usize {
        self.rec.sb.pipe().saturating_sub(self.rec.reno_sacked)
    }

    /// One RTT sample per ACK of new data, never one that measures a recovery instead of the
    /// path:
    /// - timestamps (RFC 7323 §4.1) unless the echo predates a resend of the acknowledged data
    ///   (the ACK answered the resend but echoes the first copy, whose ACK was lost);
    /// - else the newest acknowledged segment never resent (Karn, RFC 6298 §3), unless the ACK
    ///   also covers a resent one or it was sent before the current recovery began (either way
    ///   it waited behind a hole).
    pub(super) fn ack_rtt_sample(&mut self, now: Instant, seg: &TcpRepr, acked: &Acked) {
        if let (Some(ts), true) = (seg.timestamp, self.enabled.timestamps) {
            let fresh = acked
                .last_resend
                .is_none_or(|t| (ts.tsecr.wrapping_sub(self.ts_now(t)) as i32) >= 0);
            if fresh && self.ts_rtt_sample(now, seg) {
                return;
            }
        }
        // An ACK that also covers a resent segment was held back by that hole: the newer
        // segments it covers waited for the repair, so their send times say nothing of the path.
        let since_recovery = |t: Instant| !self.rec.active || t >= self.rec.started;
        let unblocked = acked.last_resend.is_none();
        if let Some(t) = acked
            .rtt_sample_from
            .filter(|t| unblocked && since_recovery(*t))
        {
            self.rec.rtt.sample(now.saturating_duration_since(t));
        }
    }

    pub(super) fn ts_rtt_sample(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        // RFC 7323 §4.1: RTTM from the echoed timestamp of an ACK of new data.
        match seg.timestamp {
            Some(ts) if self.enabled.timestamps && ts.tsecr != 0 => {
                let ms = self.ts_now(now).wrapping_sub(ts.tsecr);
                if ms < 60_000 {
                    self.rec.rtt.sample(Duration::from_millis(u64::from(ms)));
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// RFC 8985 §7.2: after sending new data or an ACK of new data, with SACK, outside
    /// recovery and timeouts, probe the tail after PTO = 2 SRTT (+ a worst-case delayed ACK
    /// when one segment is in flight), if that comes before the RTO.
    pub(super) fn arm_tlp(&mut self, now: Instant) {
        self.timers[Timer::TailLossProbe] = None;
        if !self.enabled.sack
            || self.rec.active
            || self.rec.tlp_out
            || self.rec.retries > 0
            || self.rec.sb.is_empty()
        {
            return;
        }
        let Some(srtt) = self.rec.rtt.srtt() else {
            return;
        };
        let mut pto = srtt * 2;
        if self.flight() <= self.data_mss() + 1 {
            pto += Duration::from_millis(200);
        }
        let at = now + pto.max(Duration::from_millis(10));
        if self.timers[Timer::Rto].is_none_or(|rto| at < rto) {
            self.timers[Timer::TailLossProbe] = Some(at);
        }
    }

    /// RFC 7661 §4.4 (in the simpler form Linux uses): cwnd grows only while the sender uses
    /// it. An application-limited (or receive-window-limited) sender has not shown the path
    /// takes a larger window, and a cwnd grown on such ACKs would later go out as a burst. In
    /// slow start the window may reach twice the largest recent flight; in congestion
    /// avoidance a send must have been held back by cwnd during the last window.
    pub(super) fn is_cwnd_limited(&self) -> bool {
        let cwnd = self.rec.cc.cwnd();
        if cwnd < self.rec.cc.ssthresh() {
            cwnd < 2 * self.rec.max_flight
        } else {
            self.rec.cwnd_limited
        }
    }

    /// Records how fully this window used cwnd (`limited`: a send was held back by it, or
    /// the flight reached it). A new window (SND.UNA past the mark) starts a new record.
    pub(super) fn note_cwnd_usage(&mut self, limited: bool) {
        let flight = self.flight();
        if self.snd.una >= self.rec.cwnd_usage_seq
            || limited
            || (!self.rec.cwnd_limited && flight > self.rec.max_flight)
        {
            self.rec.cwnd_limited = limited;
            self.rec.max_flight = flight;
            self.rec.cwnd_usage_seq = self.snd.max;
        }
    }

    /// RFC 6675 §5 (with SACK) or RFC 6582 §3.2 (without): fast retransmit and recovery.
    pub(super) fn enter_recovery(&mut self, now: Instant) {
        self.rec.active = true;
        self.timers[Timer::TailLossProbe] = None;
        self.rec.started = now;
        self.rec.point = self.snd.max;
        self.rec.recover = self.snd.max;
        self.rec.rescue_rxt = Some(self.snd.una);
        self.stats.fast_recoveries += 1;
        self.rec.cc.on_congestion_event(now, self.flight());
        self.rec.sb.mark_first_lost();
        self.rec.force_rexmit = true;
    }

    /// RFC 6298 §5.4–5.6 plus RFC 5681 §3.1 on expiry of the retransmission timer.
    pub(super) fn on_rto(&mut self, now: Instant) {
        self.timers[Timer::Rto] = None;
        self.timers[Timer::TailLossProbe] = None;
        self.rec.retries += 1;
        self.stats.rto_expiries += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.rec.retries > self.cfg.syn_retries {
                    self.fail(TcpError::TimedOut);
                    return;
                }
                self.syn.pending = true;
                self.syn.retransmitted = true;
            }
            _ => {
                if self.rec.sb.is_empty() {
                    return;
                }
                if self.rec.retries > self.cfg.max_retries {
                    self.fail(TcpError::TimedOut);
                    return;
                }
                if self.rec.retries == 1 {
                    self.rec.cc.on_rto(now, self.flight());
                } else {
                    // A second expiry in a row: the receiver may have reneged on its SACKs
                    // (RFC 2018 §8), so resend everything.
                    self.rec.sb.clear_sacked();
                }
                self.rec.sb.mark_all_lost();
                self.rec.active = false;
                self.rec.dupacks = 0;
                self.rec.reno_sacked = 0;
                self.rec.recover = self.snd.max;
                self.rec.force_rexmit = true;
            }
        }
        self.rec.rtt.back_off();
    }
}
