//! The sender's scoreboard: every segment sent and not yet cumulatively acknowledged, with
//! what SACK (RFC 2018) said about it and whether it is deemed lost (RFC 6675 §4 `IsLost`).
//! Loss recovery picks retransmissions from here and computes `pipe` (RFC 6675 §4 `SetPipe`).
//! Its length is bounded by the send buffer: every entry holds at least one byte of it.

use std::collections::VecDeque;
use std::time::Instant;

use super::segment::SackBlock;
use super::seq::SeqNumber;

/// RFC 6675 §2: DupThresh.
pub const DUP_THRESH: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentSegment {
    pub seq: SeqNumber,
    /// Sequence space, including one for a FIN.
    pub len: usize,
    pub fin: bool,
    pub sacked: bool,
    pub lost: bool,
    /// Retransmitted since it was last marked lost (RFC 6675 "HighRxt" per segment).
    pub retransmitted: bool,
    /// Ever retransmitted: Karn's rule forbids RTT samples from it.
    pub ever_retransmitted: bool,
    pub sent_at: Instant,
}

impl SentSegment {
    pub fn end(&self) -> SeqNumber {
        self.seq + self.len
    }
    /// Data bytes (sequence space less the FIN).
    pub fn data_len(&self) -> usize {
        self.len - usize::from(self.fin)
    }
}

/// What a cumulative ACK removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Acked {
    pub bytes: usize,
    /// Send time of the newest fully acknowledged segment that was neither retransmitted
    /// (Karn's rule) nor SACKed before (an RTT sample of this ACK).
    pub rtt_sample_from: Option<Instant>,
    /// Latest (re)transmission among the acknowledged segments that were ever resent: an
    /// echoed timestamp older than this belongs to an earlier copy.
    pub last_resend: Option<Instant>,
    pub fin_acked: bool,
}

/// RFC 6675 §4 SetPipe contribution of one segment: octets not SACKed and not lost count
/// once, retransmitted ones once more.
fn pipe_of(s: &SentSegment) -> usize {
    if s.sacked {
        0
    } else {
        s.len * (usize::from(!s.lost) + usize::from(s.retransmitted))
    }
}

fn mark_lost(s: &mut SentSegment) {
    s.lost = true;
    s.retransmitted = false;
}

fn is_pending_lost(s: &SentSegment) -> bool {
    s.lost && !s.retransmitted && !s.sacked
}

/// The segments plus running totals, so that `pipe` and "anything to retransmit?" cost O(1)
/// per segment sent instead of a walk over the whole flight.
#[derive(Debug, Clone, Default)]
pub struct Scoreboard {
    segs: VecDeque<SentSegment>,
    pipe: usize,
    pending_lost: usize,
}

impl Scoreboard {
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }
    pub fn len(&self) -> usize {
        self.segs.len()
    }
    pub fn get(&self, i: usize) -> Option<&SentSegment> {
        self.segs.get(i)
    }
    pub fn iter(&self) -> impl Iterator<Item = &SentSegment> {
        self.segs.iter()
    }
    pub fn push(&mut self, s: SentSegment) {
        self.count_in(&s);
        self.segs.push_back(s);
    }

    fn count_in(&mut self, s: &SentSegment) {
        self.pipe += pipe_of(s);
        self.pending_lost += usize::from(is_pending_lost(s));
    }

    fn count_out(&mut self, s: &SentSegment) {
        self.pipe -= pipe_of(s);
        self.pending_lost -= usize::from(is_pending_lost(s));
    }

    /// Changes segment `i` keeping the totals right.
    fn update(&mut self, i: usize, f: impl FnOnce(&mut SentSegment)) {
        let Some(mut s) = self.segs.get(i).copied() else {
            return;
        };
        self.count_out(&s);
        f(&mut s);
        self.count_in(&s);
        self.segs[i] = s;
    }

    /// Recomputes the totals from scratch (checked in debug builds).
    fn check_totals(&self) {
        debug_assert_eq!(self.pipe, self.segs.iter().map(pipe_of).sum::<usize>());
        debug_assert_eq!(
            self.pending_lost,
            self.segs.iter().filter(|s| is_pending_lost(s)).count()
        );
    }

    /// Removes what `ack` covers; a partly covered segment is trimmed at the front.
    pub fn ack(&mut self, ack: SeqNumber) -> Acked {
        let mut out = Acked::default();
        while let Some(&front) = self.segs.front() {
            if front.end() <= ack {
                out.bytes += front.len;
                out.fin_acked |= front.fin;
                if front.ever_retransmitted {
                    out.last_resend = out.last_resend.max(Some(front.sent_at));
                } else if !front.sacked {
                    // A segment SACKed earlier arrived then, not now: its send time would
                    // measure the wait for the hole before it, not the path.
                    out.rtt_sample_from = Some(front.sent_at);
                }
                self.count_out(&front);
                self.segs.pop_front();
            } else if front.seq < ack {
                let cut = ack.since(front.seq);
                self.update(0, |f| {
                    f.seq = ack;
                    f.len -= cut;
                });
                out.bytes += cut;
                break;
            } else {
                break;
            }
        }
        self.check_totals();
        out
    }

    /// Splits segment `i` so that it holds at most `len` sequence numbers.
    pub fn split(&mut self, i: usize, len: usize) {
        let Some(&s) = self.segs.get(i) else { return };
        if s.len <= len || len == 0 {
            return;
        }
        let mut tail = s;
        tail.seq = s.seq + len;
        tail.len -= len;
        self.update(i, |h| {
            h.len = len;
            h.fin = false;
        });
        self.count_in(&tail);
        self.segs.insert(i + 1, tail);
    }

    /// Marks the bytes of one SACK block. Returns true when it SACKed something new.
    pub fn apply_sack(&mut self, b: SackBlock) -> bool {
        let mut new = false;
        let mut i = self.segs.partition_point(|s| s.end() <= b.start);
        while i < self.segs.len() {
            let s = self.segs[i];
            if s.seq >= b.end {
                break;
            }
            if s.seq < b.start {
                // Block starts inside this segment: split so SACK covers whole entries.
                self.split(i, b.start.since(s.seq));
                i += 1;
                continue;
            }
            if s.end() > b.end {
                self.split(i, b.end.since(s.seq));
            }
            if !self.segs[i].sacked {
                self.update(i, |s| {
                    s.sacked = true;
                    s.lost = false;
                });
                new = true;
            }
            i += 1;
        }
        self.check_totals();
        new
    }

    /// RFC 6675 §4 IsLost: a segment is lost once DupThresh discontiguous SACKed segments or
    /// more than (DupThresh − 1) × SMSS SACKed bytes lie above it. Marks such segments.
    pub fn mark_lost(&mut self, mss: usize) {
        let mut sacked_bytes = 0;
        let mut sacked_runs = 0;
        let mut in_run = false;
        for i in (0..self.segs.len()).rev() {
            let s = self.segs[i];
            if s.sacked {
                sacked_bytes += s.len;
                if !in_run {
                    sacked_runs += 1;
                    in_run = true;
                }
            } else {
                in_run = false;
                if !s.lost && (sacked_runs >= DUP_THRESH || sacked_bytes > (DUP_THRESH - 1) * mss) {
                    // A segment already resent (by rule 3) is not resent again (NextSeg
                    // rule 1 wants S2 > HighRxt); it now counts once in pipe.
                    self.update(i, |s| s.lost = true);
                }
            }
        }
        self.check_totals();
    }

    /// Marks the first unSACKed segment lost (fast retransmit, or a NewReno partial ACK).
    pub fn mark_first_lost(&mut self) {
        if let Some(i) = self.segs.iter().position(|s| !s.sacked) {
            self.update(i, mark_lost);
        }
    }

    /// After an RTO every unSACKed segment is lost (RFC 6675 §5.1). None of them may give an
    /// RTT sample any more (Karn's rule as RFC 6298 §5 applies it to a backed-off timer): an
    /// ACK for one sent before the timeout measures the recovery, not the path.
    pub fn mark_all_lost(&mut self) {
        for i in 0..self.segs.len() {
            if !self.segs[i].sacked {
                self.update(i, |s| {
                    mark_lost(s);
                    s.ever_retransmitted = true;
                });
            }
        }
    }

    /// Forgets SACK state, for a receiver that may have reneged (RFC 2018 §8).
    pub fn clear_sacked(&mut self) {
        for i in 0..self.segs.len() {
            self.update(i, |s| s.sacked = false);
        }
    }

    pub fn first_is_lost(&self) -> bool {
        self.segs.front().is_some_and(|s| s.lost)
    }

    pub fn sacked_bytes(&self) -> usize {
        self.segs.iter().filter(|s| s.sacked).map(|s| s.len).sum()
    }

    /// RFC 6675 §4 SetPipe: octets not SACKed and not lost count once, retransmitted ones once
    /// more.
    pub fn pipe(&self) -> usize {
        self.pipe
    }

    /// Index of the first segment due for retransmission (lost, not yet resent).
    pub fn next_lost(&self) -> Option<usize> {
        if self.pending_lost == 0 {
            return None;
        }
        self.segs.iter().position(is_pending_lost)
    }

    /// RFC 6675 §4 NextSeg rule 3: the first segment neither SACKed, lost nor resent that has
    /// SACKed data above it.
    pub fn next_hole(&self) -> Option<usize> {
        let top = self.segs.iter().rposition(|s| s.sacked)?;
        self.segs
            .iter()
            .take(top)
            .position(|s| !s.sacked && !s.lost && !s.retransmitted)
    }

    /// RFC 6675 §4 NextSeg rule 4 (rescue retransmission): the entry holding the highest
    /// unSACKed sequence number, split so that it holds at most `mss` data bytes and ends
    /// there. None when that entry is lost (rule 1 resends it), already resent, or was sent
    /// after `sent_by` (it may simply still be in flight).
    pub fn rescue(&mut self, mss: usize, sent_by: Instant) -> Option<usize> {
        let i = self.segs.iter().rposition(|s| !s.sacked)?;
        let s = self.segs[i];
        if s.lost || s.retransmitted || s.sent_at > sent_by {
            return None;
        }
        let cap = mss + usize::from(s.fin);
        if s.len > cap {
            self.split(i, s.len - cap);
            return Some(i + 1);
        }
        Some(i)
    }

    pub fn mark_retransmitted(&mut self, i: usize, now: Instant) {
        self.update(i, |s| {
            s.retransmitted = true;
            s.ever_retransmitted = true;
            s.sent_at = now;
        });
    }

    /// Marks segments longer than `len` lost so they are resent in smaller pieces (RFC 1191
    /// §6.5 after a smaller path MTU). Returns how many were marked.
    pub fn mark_oversized_lost(&mut self, len: usize) -> usize {
        let mut n = 0;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            if !s.sacked && s.data_len() > len {
                self.update(i, mark_lost);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(n: usize) -> (Scoreboard, Instant) {
        let t = Instant::now();
        let mut b = Scoreboard::default();
        for i in 0..n {
            b.push(SentSegment {
                seq: SeqNumber(1000 + 100 * i as u32),
                len: 100,
                fin: false,
                sacked: false,
                lost: false,
                retransmitted: false,
                ever_retransmitted: false,
                sent_at: t,
            });
        }
        (b, t)
    }

    fn blk(a: u32, b: u32) -> SackBlock {
        SackBlock {
            start: SeqNumber(a),
            end: SeqNumber(b),
        }
    }

    #[test]
    fn cumulative_ack_trims_partial_segments() {
        let (mut b, _) = board(3);
        let a = b.ack(SeqNumber(1150));
        assert_eq!(a.bytes, 150);
        assert_eq!(b.get(0).unwrap().seq, SeqNumber(1150));
        assert_eq!(b.get(0).unwrap().len, 50);
    }

    #[test]
    fn sack_block_splits_at_its_edges() {
        let (mut b, _) = board(3);
        assert!(b.apply_sack(blk(1150, 1250)));
        assert_eq!(b.sacked_bytes(), 100);
        assert_eq!(b.len(), 5);
        assert!(!b.apply_sack(blk(1150, 1250)));
    }

    #[test]
    fn is_lost_needs_three_segments_sacked_above() {
        // RFC 6675 §4: DupThresh discontiguous SACKed segments, or > 2 SMSS SACKed bytes.
        let (mut b, _) = board(6);
        b.apply_sack(blk(1100, 1200));
        b.apply_sack(blk(1300, 1400));
        b.mark_lost(100);
        assert!(!b.first_is_lost());
        b.apply_sack(blk(1500, 1600));
        b.mark_lost(100);
        assert!(b.first_is_lost());
        assert_eq!(b.next_lost(), Some(0));
    }

    #[test]
    fn pipe_counts_unsacked_unlost_and_retransmitted_octets() {
        // RFC 6675 §4 SetPipe
        let (mut b, t) = board(4);
        b.apply_sack(blk(1100, 1200));
        assert_eq!(b.pipe(), 300);
        b.mark_first_lost();
        assert_eq!(b.pipe(), 200);
        b.mark_retransmitted(0, t);
        assert_eq!(b.pipe(), 300);
    }

    #[test]
    fn retransmitted_segment_gives_no_rtt_sample() {
        // Karn's rule (RFC 6298 §3)
        let (mut b, t) = board(2);
        b.mark_retransmitted(0, t);
        let a = b.ack(SeqNumber(1100));
        assert_eq!(a.rtt_sample_from, None);
        let a = b.ack(SeqNumber(1200));
        assert_eq!(a.rtt_sample_from, Some(t));
    }

    #[test]
    fn rescue_takes_the_last_mss_of_the_highest_unsacked_segment() {
        // RFC 6675 §4 NextSeg rule 4: the segment MUST include the highest unSACKed octet.
        let (mut b, t) = board(3);
        b.apply_sack(blk(1100, 1200));
        let i = b.rescue(40, t).unwrap();
        let s = *b.get(i).unwrap();
        assert_eq!((s.seq, s.end()), (SeqNumber(1260), SeqNumber(1300)));
        // Not when it was sent after recovery began, nor once resent.
        let before = t - std::time::Duration::from_millis(1);
        assert_eq!(b.rescue(40, before), None);
        b.mark_retransmitted(i, t);
        assert_eq!(b.rescue(40, t), None);
    }

    #[test]
    fn segment_sacked_before_gives_no_rtt_sample_when_cumulatively_acked() {
        // RFC 6298 §3 / RFC 2018: only the segment whose arrival caused the ACK is timed.
        let (mut b, t) = board(1);
        let later = t + std::time::Duration::from_millis(5);
        b.push(SentSegment {
            seq: SeqNumber(1100),
            sent_at: later,
            ..*b.get(0).unwrap()
        });
        b.apply_sack(blk(1100, 1200));
        // The hole fills: the sample is the first segment's, not the SACKed later one's.
        assert_eq!(b.ack(SeqNumber(1200)).rtt_sample_from, Some(t));
    }
}
