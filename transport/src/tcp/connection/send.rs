//! The send side: ACK processing (RFC 9293 §3.10.7.4 fifth check, RFC 5961 §5.2), new data
//! within the peer's and the congestion window with Nagle and sender SWS avoidance (RFC 9293
//! §3.7.4, §3.8.6.2.1), retransmissions from the scoreboard, and segmentation offload bursts.

use std::time::Instant;

use super::timers::Timer;
use super::{Connection, Event, State, WRITABLE_LOW_WATER};
use crate::tcp::sack::SentSegment;
use crate::tcp::segment::{Flags, TcpRepr};
use crate::tcp::send_buffer::SendBuffer;
use crate::tcp::seq::SeqNumber;

/// The send side's sequence space and buffer (RFC 9293 §3.3.1 names).
#[derive(Debug)]
pub(super) struct Sender {
    pub(super) iss: SeqNumber,
    /// SND.UNA.
    pub(super) una: SeqNumber,
    /// Highest sequence number sent plus one (SND.NXT; retransmissions come from the
    /// scoreboard, so it never moves back).
    pub(super) max: SeqNumber,
    /// SND.WND, scaled.
    pub(super) wnd: usize,
    pub(super) wl1: SeqNumber,
    pub(super) wl2: SeqNumber,
    /// The largest window the peer offered.
    pub(super) max_wnd: usize,
    /// The peer's window scale (RFC 7323 §2.3).
    pub(super) wscale: u8,
    pub(super) buf: SendBuffer,
    /// The sequence number of `buf`'s first byte (the first unacknowledged data byte).
    pub(super) data_start: SeqNumber,
    pub(super) fin_queued: bool,
    pub(super) fin_acked: bool,
    /// MSS for the path: min(peer's MSS, path MTU − 40).
    pub(super) peer_mss: usize,
    pub(super) path_mss: usize,
    /// When new data last went out, for RFC 5681 §4.1 restart after idle.
    pub(super) last_send: Option<Instant>,
    /// The payload per wire segment of the last segment `poll_transmit` returned when it was
    /// an offloaded burst of several (0 otherwise): the device cuts it at this size.
    pub(super) burst_segment: usize,
}

impl Connection {
    pub(super) fn send_end(&self) -> SeqNumber {
        self.snd.data_start + self.snd.buf.len()
    }

    pub(super) fn copy_out(&self, seq: SeqNumber, len: usize, out: &mut Vec<u8>) {
        self.snd
            .buf
            .copy_out(seq.since(self.snd.data_start), len, out);
    }

    pub(super) fn can_send(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// RFC 9293 §3.10.7.4 fifth check in the synchronized states. Returns false when the
    /// segment must be dropped.
    pub(super) fn on_ack(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        let ack = seg.ack;
        // RFC 5961 §5.2: acceptable ACKs lie in SND.UNA − MAX.SND.WND ..= SND.NXT.
        if ack > self.snd.max || ack < self.snd.una - self.snd.max_wnd.max(1) {
            self.challenge_ack(now);
            return false;
        }
        // An acceptable ACK answers any zero-window probe.
        self.timers.persist_probes = 0;
        self.timers.persist_since = None;
        let wnd = usize::from(seg.window) << self.snd.wscale;
        let window_changed = wnd != self.snd.wnd;
        // RFC 9293 §3.10.7.4: update the window from newer segments only. An ACK that moves
        // SND.UNA counts as newer (as Linux has it): its window is relative to that ACK, and
        // keeping the old SND.WND while SND.UNA moves would stretch the edge past what the
        // peer offered (a retransmitted segment, below WL1, carries such ACKs).
        if ack > self.snd.una
            || (ack == self.snd.una
                && (self.snd.wl1 < seg.seq || (self.snd.wl1 == seg.seq && self.snd.wl2 <= ack)))
        {
            if wnd > self.snd.wnd {
                self.timers.persist_backoff = 0;
            }
            self.snd.wnd = wnd;
            self.snd.wl1 = seg.seq;
            self.snd.wl2 = ack;
            self.snd.max_wnd = self.snd.max_wnd.max(wnd);
        }

        let sack_new = self.apply_sack(seg);
        if ack > self.snd.una {
            self.on_new_ack(now, seg);
        } else if ack == self.snd.una
            && !self.rec.sb.is_empty()
            && seg.payload_len == 0
            && !seg.flags.syn()
            && !seg.flags.fin()
            && (!window_changed || sack_new)
        {
            self.on_dup_ack();
        }
        self.detect_loss(now, sack_new);

        match self.state {
            State::FinWait1 if self.snd.fin_acked => {
                self.state = State::FinWait2;
                if self.user_closed {
                    self.timers[Timer::FinWait2] = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.snd.fin_acked => self.enter_time_wait(now),
            State::LastAck if self.snd.fin_acked => {
                self.state = State::Closed;
                self.clear_timers();
                self.release_buffers();
                self.push_event(Event::Closed(None));
                return false;
            }
            _ => {}
        }
        true
    }

    pub(super) fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr) {
        let ack = seg.ack;
        let acked = self.rec.sb.ack(ack);
        let data_end = self.send_end();
        let data_acked = ack.min(data_end).since(self.snd.data_start);
        self.snd.buf.consume(data_acked);
        self.snd.data_start += data_acked;
        if acked.fin_acked || (self.snd.fin_queued && ack > data_end) {
            self.snd.fin_acked = true;
        }
        let newly = ack.since(self.snd.una);
        self.snd.una = ack;
        self.stats.bytes_acked += data_acked as u64;
        self.ack_rtt_sample(now, seg, &acked);
        self.rec.rtt.reset_backoff();
        self.rec.retries = 0;
        // RFC 6298 §5.2–5.3.
        if self.rec.sb.is_empty() {
            self.timers[Timer::Rto] = None;
            self.timers.unacked_since = None;
        } else {
            self.timers[Timer::Rto] = Some(now + self.rec.rtt.rto());
            self.timers.unacked_since = Some(now);
        }
        if self.rec.active {
            if ack >= self.rec.point {
                self.rec.active = false;
                self.rec.reno_sacked = 0;
                self.rec.dupacks = 0;
                self.rec.cc.on_recovery_end(self.flight());
            } else if !self.enabled.sack {
                // RFC 6582 §3.2 step 4: a partial ACK retransmits the next hole at once.
                self.rec.reno_sacked = self.rec.reno_sacked.saturating_sub(newly);
                self.rec.sb.mark_first_lost();
                self.rec.force_rexmit = true;
            }
        } else {
            self.rec.dupacks = 0;
            self.rec.reno_sacked = 0;
            if self.is_cwnd_limited() {
                self.rec.cc.on_ack(now, newly, self.rec.rtt.srtt());
            }
        }
        if self.writable_wanted && self.snd.buf.free() > 0 {
            self.writable_wanted = false;
            self.push_event(Event::Writable);
        } else if self.snd.buf.is_detached()
            && data_acked > 0
            && self.snd.buf.free() * WRITABLE_LOW_WATER >= self.snd.buf.capacity()
        {
            // The application writes into the ring itself: tell the runtime once a third of
            // the buffer is free (as Linux wakes writers), and it wakes a writer if one waits.
            self.push_event(Event::Writable);
        }
        self.rec.tlp_out = false;
        self.arm_tlp(now);
    }

    pub(super) fn data_segment(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpRepr> {
        if !self.can_send() {
            return None;
        }
        let mss = self.seg_mss();
        let cwnd = self.rec.cc.cwnd();
        if self.rec.tlp_due {
            // RFC 8985 §7.3: the probe is new data if any may go, else the last segment.
            self.rec.tlp_due = false;
            self.rec.tlp_out = true;
            if let Some(r) = self.new_data(now, payload, mss) {
                return Some(r);
            }
            if let Some(last) = self.rec.sb.len().checked_sub(1) {
                if self.rec.sb.get(last).is_some_and(|s| !s.sacked) {
                    return self.resend(last, now, payload);
                }
            }
        }
        // First the segments deemed lost (RFC 6675 §4 NextSeg rule 1).
        if let Some(i) = self.rec.sb.next_lost() {
            if self.pipe() < cwnd || self.rec.force_rexmit {
                self.rec.force_rexmit = false;
                return self.resend(i, now, payload);
            }
            return None;
        }
        self.rec.force_rexmit = false;
        if self.pipe() >= cwnd {
            if self.send_end() > self.snd.max {
                self.note_cwnd_usage(true);
            }
            return None;
        }
        if let Some(r) = self.new_data(now, payload, mss) {
            let limited = self.pipe() >= self.rec.cc.cwnd();
            self.note_cwnd_usage(limited);
            return Some(r);
        }
        // RFC 6675 §4 NextSeg rule 3: with no new data to send, resend a hole below SACKed
        // data even before it counts as lost, rather than idle until the RTO.
        if self.rec.active && self.enabled.sack {
            if let Some(i) = self.rec.sb.next_hole() {
                return self.resend(i, now, payload);
            }
            // Rule 4, rescue retransmission: once per recovery, the segment holding the highest
            // unSACKed sequence number, so a lost last segment, with nothing SACKed above it
            // to mark it lost, is not left to the RTO. RescueRxt starts at the ACK point where
            // recovery began, so the rescue waits for a partial ACK, and it takes only a
            // segment sent before recovery: by then that one, had it arrived, would have been
            // SACKed (earlier it may just be in flight, and resending it would be spurious).
            if self.rec.rescue_rxt.is_some_and(|r| self.snd.una > r) {
                if let Some(i) = self.rec.sb.rescue(mss, self.rec.started) {
                    self.rec.rescue_rxt = Some(self.rec.point);
                    self.stats.rescue_retransmissions += 1;
                    return self.resend(i, now, payload);
                }
            }
        }
        None
    }

    /// New data (RFC 6675 NextSeg rule 2), within the peer's window, with Nagle and sender SWS
    /// avoidance.
    pub(super) fn new_data(
        &mut self,
        now: Instant,
        payload: &mut Vec<u8>,
        mss: usize,
    ) -> Option<TcpRepr> {
        if self.rec.sb.is_empty()
            && self
                .snd
                .last_send
                .is_some_and(|t| now.saturating_duration_since(t) > self.rec.rtt.rto())
        {
            // RFC 5681 §4.1: restart from the initial window after an idle RTO.
            self.rec.cc.on_idle_restart();
            self.snd.last_send = None;
            if self.pipe() >= self.rec.cc.cwnd() {
                return None;
            }
        }
        // Then new data (rule 2), within the peer's window.
        let unsent = self.send_end().since(self.snd.max.max(self.snd.data_start));
        let fin_unsent = self.snd.fin_queued && self.snd.max <= self.send_end();
        if unsent == 0 && !fin_unsent {
            return None;
        }
        let wnd_edge = self.snd.una + self.snd.wnd;
        let usable = wnd_edge.since(self.snd.max);
        let mut len = mss.min(unsent).min(usable);
        let burst = self.offload_burst(mss, unsent, usable);
        if burst > len {
            len = burst;
        }
        self.snd.burst_segment = if len > mss { mss } else { 0 };
        let forced = self.timers.persist_due;
        if len < unsent.min(mss) && !forced {
            // RFC 9293 §3.8.6.2.1 sender SWS avoidance: a short, window-limited segment only
            // when it is at least half the largest window the peer offered.
            if len == 0 || len < self.snd.max_wnd / 2 {
                return None;
            }
        }
        if len == unsent
            && len < mss
            && !self.opts.nodelay
            && !self.rec.sb.is_empty()
            && !forced
            && !fin_unsent
        {
            // RFC 9293 §3.7.4 Nagle: hold a short segment while data is unacknowledged.
            return None;
        }
        if forced {
            if len == 0 {
                return None;
            }
            self.timers.persist_due = false;
            self.stats.zero_window_probes += 1;
        }
        len = len.min(unsent);
        let seq = self.snd.max;
        let fin = fin_unsent && seq + len == self.send_end();
        if len == 0 && !fin {
            return None;
        }
        self.copy_out(seq, len, payload);
        let mut flags = Flags::ACK;
        if fin {
            flags |= Flags::FIN;
        }
        if len > 0 && seq + len == self.send_end() {
            flags |= Flags::PSH;
        }
        let mut r = self.header(now, seq, flags);
        r.payload_len = len;
        let seq_len = len + usize::from(fin);
        // One scoreboard entry per MSS, even for an offloaded burst: SACK, loss marking and
        // retransmission work on the segments the wire carries.
        let mut at = 0;
        loop {
            let data = (len - at).min(mss);
            let last = at + data == len;
            self.rec.sb.push(SentSegment {
                seq: seq + at,
                len: data + usize::from(fin && last),
                fin: fin && last,
                sacked: false,
                lost: false,
                retransmitted: false,
                ever_retransmitted: false,
                sent_at: now,
            });
            at += data;
            if last {
                break;
            }
        }
        self.snd.max = seq + seq_len;
        self.snd.last_send = Some(now);
        self.timers[Timer::Rto].get_or_insert(now + self.rec.rtt.rto());
        self.arm_tlp(now);
        self.stats.bytes_sent += len as u64;
        self.timers.unacked_since.get_or_insert(now);
        self.timers[Timer::Persist] = None;
        Some(r)
    }

    /// Resends scoreboard entry `i` (at most one MSS of it).
    pub(super) fn resend(
        &mut self,
        i: usize,
        now: Instant,
        payload: &mut Vec<u8>,
    ) -> Option<TcpRepr> {
        let mss = self.seg_mss();
        self.rec.sb.split(
            i,
            mss + usize::from(self.rec.sb.get(i).is_some_and(|s| s.fin)),
        );
        let s = *self.rec.sb.get(i)?;
        self.rec.sb.mark_retransmitted(i, now);
        self.stats.retransmissions += 1;
        self.stats.retransmitted_bytes += s.data_len() as u64;
        self.copy_out(s.seq, s.data_len(), payload);
        let mut flags = Flags::ACK;
        if s.fin {
            flags |= Flags::FIN;
        }
        if s.data_len() > 0 {
            flags |= Flags::PSH;
        }
        let mut r = self.header(now, s.seq, flags);
        r.payload_len = s.data_len();
        self.timers[Timer::Rto].get_or_insert(now + self.rec.rtt.rto());
        self.timers.unacked_since.get_or_insert(now);
        Some(r)
    }

    /// With segmentation offload: how much new data one segment may carry now, in whole
    /// MSS-sized pieces within the congestion window, the peer's window and the offload limit
    /// (a shorter tail only when it ends the data queued). 0 without offload or room for
    /// fewer than two segments.
    pub(super) fn offload_burst(&self, mss: usize, unsent: usize, usable: usize) -> usize {
        let limit = self.cfg.segment_offload;
        if limit < 2 * mss {
            return 0;
        }
        let cwnd_room = self.rec.cc.cwnd().saturating_sub(self.pipe());
        let room = limit.min(usable).min(cwnd_room.max(mss));
        if unsent <= room {
            return unsent;
        }
        room / mss * mss
    }
}
