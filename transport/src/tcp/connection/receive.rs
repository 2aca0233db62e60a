//! The receive side: the acceptability test and RST/SYN handling of RFC 9293 §3.10.7.4 with
//! RFC 5961's challenge ACKs, segment text into the receive buffer, the peer's FIN and
//! TIME-WAIT, and what our ACKs say: window (RFC 9293 §3.8.6.2.2), SACK and D-SACK blocks
//! (RFC 2018, RFC 2883), and when they go out (RFC 5681 §4.2).

use std::time::{Duration, Instant};

use super::timers::Timer;
use super::{Connection, Event, State};
use crate::tcp::recv_buffer::RecvBuffer;
use crate::tcp::segment::{Flags, SackBlock, SackBlocks, TcpRepr};
use crate::tcp::seq::SeqNumber;
use crate::tcp::TcpError;

/// Minimum spacing of the ACKs answering empty invalid segments (Linux: tcp_invalid_ratelimit).
const INVALID_ACK_INTERVAL: Duration = Duration::from_millis(500);
/// Pending control replies (RSTs) a connection queues; more are dropped.
const MAX_CTL_REPLIES: usize = 4;

/// The receive side's sequence space and buffer, with the peer's timestamp (RFC 7323 §4.3).
#[derive(Debug)]
pub(super) struct Receiver {
    pub(super) irs: SeqNumber,
    /// RCV.NXT.
    pub(super) nxt: SeqNumber,
    /// Our window scale (RFC 7323 §2.3).
    pub(super) wscale: u8,
    /// Right edge of the window last advertised; it never moves left (RFC 9293 §3.8.6).
    pub(super) adv: SeqNumber,
    pub(super) buf: RecvBuffer,
    pub(super) fin_received: bool,
    /// Where the peer's FIN sits when it arrived ahead of data still missing.
    pub(super) ooo_fin: Option<SeqNumber>,
    /// TS.Recent and when it was taken (RFC 7323 §4.3, §5.5).
    pub(super) ts_recent: u32,
    pub(super) ts_recent_at: Instant,
    /// Last.ACK.sent (RFC 7323 §4.3).
    pub(super) last_ack_sent: SeqNumber,
}

/// What the next ACK carries and when it is due (RFC 5681 §4.2, RFC 2883, RFC 5961 §7).
#[derive(Debug, Default)]
pub(super) struct AckState {
    /// An ACK is due at once.
    pub(super) now: bool,
    /// Full-sized segments received since the last ACK.
    pub(super) segs_unacked: u32,
    /// A duplicate range to report first in the next SACK option.
    pub(super) dsack: Option<SackBlock>,
    pub(super) challenge_window: Option<Instant>,
    pub(super) challenge_count: u32,
    /// When the last ACK answering an invalid segment went out.
    pub(super) last_invalid: Option<Instant>,
}

impl Connection {
    /// RFC 9293 §3.10.7.4 first check, with its four cases.
    pub(super) fn acceptable(&self, seg: &TcpRepr) -> bool {
        let wnd = self.rcv.buf.window().max(self.rcv.adv.since(self.rcv.nxt));
        let len = seg.seq_len();
        let start = seg.seq;
        let edge = self.rcv.nxt + wnd;
        match (len, wnd) {
            (0, 0) => start == self.rcv.nxt,
            (0, _) => start.in_range(self.rcv.nxt, edge),
            // A zero window still takes ACKs and RSTs at RCV.NXT; the data is trimmed away.
            (_, 0) => start == self.rcv.nxt,
            (_, _) => {
                start.in_range(self.rcv.nxt, edge)
                    || (start + (len - 1)).in_range(self.rcv.nxt, edge)
            }
        }
    }

    pub(super) fn on_rst(&mut self, _now: Instant, seg: &TcpRepr) {
        if self.state == State::TimeWait {
            // RFC 1337: TIME-WAIT ignores RST, against TIME-WAIT assassination.
            return;
        }
        if seg.seq != self.rcv.nxt {
            // RFC 5961 §3.2: in window but not exact draws a challenge ACK.
            self.challenge_ack(_now);
            return;
        }
        // RFC 9293 §3.10.7.4 second: in SYN-RECEIVED the connection was refused (a passive
        // one just goes away: the endpoint never announced it).
        let err = if self.state == State::SynReceived {
            TcpError::ConnectionRefused
        } else {
            TcpError::ConnectionReset
        };
        self.fail(err);
    }

    /// The duplicate ACK that answers an unacceptable or PAWS-failing segment. For a segment
    /// occupying no sequence space at most one per `INVALID_ACK_INTERVAL` (Linux's
    /// tcp_invalid_ratelimit): two peers out of step would otherwise answer each other's
    /// ACKs for ever. Data, SYN and FIN segments are never part of such a loop and always get
    /// their ACK (a retransmitted FIN in TIME-WAIT needs it).
    pub(super) fn ack_invalid(&mut self, now: Instant, seg: &TcpRepr) {
        if seg.seq_len() == 0 {
            if self
                .ack
                .last_invalid
                .is_some_and(|t| now.saturating_duration_since(t) < INVALID_ACK_INTERVAL)
            {
                self.stats.invalid_acks_suppressed += 1;
                return;
            }
            self.ack.last_invalid = Some(now);
        }
        self.ack.now = true;
    }

    /// RFC 5961 §7: challenge ACKs are rate-limited per connection.
    pub(super) fn challenge_ack(&mut self, now: Instant) {
        match self.ack.challenge_window {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.ack.challenge_window = Some(now);
                self.ack.challenge_count = 0;
            }
        }
        if self.ack.challenge_count < self.cfg.challenge_ack_limit {
            self.ack.challenge_count += 1;
            self.stats.challenge_acks += 1;
            self.ack.now = true;
        } else {
            self.stats.challenge_acks_suppressed += 1;
        }
    }

    pub(super) fn queue_rst(&mut self, seq: SeqNumber, ack: Option<SeqNumber>) {
        if self.ctl_replies.len() >= MAX_CTL_REPLIES {
            self.stats.ctl_replies_dropped += 1;
            return;
        }
        let mut r = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq,
            flags: Flags::RST,
            ..TcpRepr::default()
        };
        if let Some(a) = ack {
            r.ack = a;
            r.flags |= Flags::ACK;
        }
        self.ctl_replies.push_back(r);
    }

    pub(super) fn on_text(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        if payload.is_empty()
            || !matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            return;
        }
        if self.user_closed && seg.seq + payload.len() > self.rcv.nxt {
            // Linux: new data for a closed socket is answered with RST.
            self.rst_pending = true;
            self.fail(TcpError::ConnectionAborted);
            return;
        }
        let mut seq = seg.seq;
        let mut data = payload;
        if seq < self.rcv.nxt {
            let cut = self.rcv.nxt.since(seq);
            // RFC 2883 §4: report the duplicate part, whole segment or the part below RCV.NXT.
            self.ack.dsack = Some(SackBlock {
                start: seq,
                end: seq + cut.min(data.len()),
            });
            self.ack.now = true;
            if cut >= data.len() {
                return;
            }
            data = &data[cut..];
            seq = self.rcv.nxt;
        }
        let off = seq.since(self.rcv.nxt);
        let wnd = self.rcv.buf.window();
        if off >= wnd {
            self.ack.now = true;
            return;
        }
        let data = &data[..data.len().min(wnd - off)];
        let o = self.rcv.buf.write(off, data);
        if !o.stored {
            self.stats.ooo_dropped += 1;
            self.ack.now = true;
        } else if o.duplicate {
            self.ack.dsack = Some(SackBlock {
                start: seq,
                end: seq + data.len(),
            });
            self.ack.now = true;
        } else if o.advanced > 0 {
            self.rcv.nxt += o.advanced;
            self.stats.bytes_received += o.advanced as u64;
            self.signal_readable();
            // A segment the device coalesced counts as the segments it stands for, so the
            // peer's ACK clock is the same as without coalescing.
            let stands_for = o.advanced.div_ceil(self.data_mss());
            self.ack.segs_unacked = self
                .ack
                .segs_unacked
                .saturating_add(u32::try_from(stands_for).unwrap_or(u32::MAX));
            // RFC 5681 §4.2: ACK at once when a hole fills or out-of-order data waits; else
            // at least every second segment, or when the delayed-ACK timer fires.
            if o.filled_hole || self.rcv.buf.has_ooo() || self.ack.segs_unacked >= 2 {
                self.ack.now = true;
            } else if self.timers[Timer::DelayedAck].is_none() {
                self.timers[Timer::DelayedAck] = Some(now + self.cfg.delayed_ack);
            }
        } else {
            // RFC 5681 §4.2: an out-of-order segment draws an immediate (duplicate) ACK.
            self.stats.ooo_segments += 1;
            self.stats.ooo_bytes += data.len() as u64;
            self.ack.now = true;
        }
    }

    pub(super) fn take_fin(&mut self, now: Instant) {
        if self.rcv.ooo_fin != Some(self.rcv.nxt) || self.rcv.fin_received {
            return;
        }
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        self.rcv.ooo_fin = None;
        self.rcv.fin_received = true;
        self.rcv.nxt += 1;
        self.ack.now = true;
        self.readable_signaled = false;
        self.signal_readable();
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 if self.snd.fin_acked => self.enter_time_wait(now),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    pub(super) fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.clear_timers();
        self.release_buffers();
        self.ack.now = true;
        self.timers[Timer::TimeWait] = Some(now + self.cfg.time_wait);
        self.push_event(Event::Closed(None));
    }

    /// The endpoint's TIME-WAIT table is full (`TcpConfig::max_time_wait`): this connection
    /// closes as soon as its last ACK is sent instead of waiting 2×MSL (as Linux does when
    /// tcp_max_tw_buckets is reached).
    pub fn skip_time_wait(&mut self) {
        if self.state == State::TimeWait {
            self.timers.tw_skip = true;
            self.timers[Timer::TimeWait] = None;
        }
    }

    /// The endpoint asks whether a new SYN may take over this TIME-WAIT connection (RFC 6191:
    /// its sequence number, or timestamp, is beyond what this incarnation used).
    pub fn time_wait_accepts_syn(&self, seg: &TcpRepr) -> bool {
        if self.state != State::TimeWait {
            return false;
        }
        match (self.enabled.timestamps, seg.timestamp) {
            (true, Some(ts)) => (ts.tsval.wrapping_sub(self.rcv.ts_recent) as i32) > 0,
            _ => seg.seq > self.rcv.nxt,
        }
    }

    pub(super) fn max_sack_blocks(&self) -> usize {
        if self.enabled.timestamps {
            3
        } else {
            4
        }
    }

    /// Bytes the SACK option of the next ACK will take (NOP, NOP, kind, length, blocks).
    pub(super) fn sack_option_len(&self) -> usize {
        if !self.enabled.sack {
            return 0;
        }
        let n = (usize::from(self.ack.dsack.is_some()) + self.rcv.buf.ooo_ranges())
            .min(self.max_sack_blocks());
        if n == 0 {
            0
        } else {
            4 + 8 * n
        }
    }

    /// RFC 2018 §4: the first block covers the most recent segment; D-SACK (RFC 2883) goes first.
    pub(super) fn sack_blocks(&mut self, out: &mut SackBlocks) {
        let max = self.max_sack_blocks();
        let dsack = self.ack.dsack.take();
        if let Some(d) = dsack {
            out.push(d);
            self.stats.dsack_blocks_sent += 1;
        }
        let rcv_nxt = self.rcv.nxt;
        let ranges = self.rcv.buf.ranges_by_recency();
        let blocks = ranges.iter().map(|r| SackBlock {
            start: rcv_nxt + r.start,
            end: rcv_nxt + r.end,
        });
        // RFC 2883 §4: a D-SACK for data held above RCV.NXT is followed by the block holding it.
        let holds_dsack =
            |b: &SackBlock| dsack.is_some_and(|d| d.start >= b.start && d.end <= b.end);
        let first = blocks.clone().filter(holds_dsack);
        let rest = blocks.filter(|b| !holds_dsack(b));
        for b in first.chain(rest) {
            if out.len() >= max {
                break;
            }
            out.push(b);
        }
    }

    /// RFC 9293 §3.8.6.2.2 (receiver SWS avoidance): the right edge moves only in steps of at
    /// least min(buffer / 2, MSS), and never backwards.
    pub(super) fn advertise_window(&mut self) -> u16 {
        let unit = 1usize << self.rcv.wscale;
        let free = self.rcv.buf.window().min(65535usize << self.rcv.wscale) / unit * unit;
        let cand = self.rcv.nxt + free;
        let cur = self.rcv.adv.max(self.rcv.nxt);
        if cand > cur {
            let step = (self.rcv.buf.capacity() / 2).min(self.data_mss()).max(1);
            if cand.since(cur) >= step || free == self.rcv.buf.capacity() {
                self.rcv.adv = cand;
            }
        }
        self.rcv.adv = self.rcv.adv.max(self.rcv.nxt);
        let step = (self.rcv.buf.capacity() / 2).min(self.data_mss()).max(1);
        self.rcv
            .buf
            .publish_window(self.rcv.adv.since(self.rcv.nxt), step);
        (self.rcv.adv.since(self.rcv.nxt) >> self.rcv.wscale).min(65535) as u16
    }

    /// After a read: send a window update when the window would at least double (as Linux
    /// does), so a sender blocked by a small window learns of the space.
    pub(super) fn maybe_window_update(&mut self) {
        if !self.state.is_synchronized() || self.rcv.fin_received {
            return;
        }
        let cur = self.rcv.adv.since(self.rcv.nxt);
        let free = self.rcv.buf.window();
        let step = (self.rcv.buf.capacity() / 2).min(self.data_mss()).max(1);
        if free >= 2 * cur && free - cur >= step {
            self.ack.now = true;
            self.stats.window_updates += 1;
        }
    }
}
