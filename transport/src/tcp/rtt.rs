//! Round-trip time estimation and the retransmission timeout (RFC 6298).

use std::time::Duration;

/// RFC 6298 §2 with the limits netstack uses: initial RTO 1 s, a 200 ms floor (Linux's
/// TCP_RTO_MIN rather than the RFC's 1 s, which it allows "at a conservative setting"), a 120 s
/// ceiling (RFC 6298 §2.5 allows a maximum of at least 60 s).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    backoff: u32,
    min_rto: Duration,
    max_rto: Duration,
}

/// RFC 6298 §5.7: the RTO data starts with after a SYN timed out without an RTT sample
/// (Linux: TCP_TIMEOUT_FALLBACK).
pub const RTO_AFTER_SYN_LOSS: Duration = Duration::from_secs(3);

/// RFC 6298 §2: K = 4, and G (clock granularity) is 1 ms in virtual time.
const K: u32 = 4;
const GRANULARITY: Duration = Duration::from_millis(1);

impl RttEstimator {
    pub fn new(initial: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial,
            backoff: 0,
            min_rto,
            max_rto,
        }
    }

    /// RFC 6298 §2.2–2.3: fold in one measurement and recompute the RTO. A new sample also ends
    /// any backoff (§5.7 keeps the backed-off value only until a valid sample arrives).
    pub fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        self.rto = (srtt + (self.rttvar * K).max(GRANULARITY)).clamp(self.min_rto, self.max_rto);
        self.backoff = 0;
    }

    /// RFC 6298 §5.5: the timer backs off by doubling, up to the ceiling.
    pub fn back_off(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// Clears the backoff after an ACK of new data (RFC 6298 §5.7 via Karn's rule, which keeps
    /// the doubled value only until data sent after it is acknowledged).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// RFC 6298 §5.7: the SYN (or SYN-ACK) was retransmitted. Data starts without the
    /// handshake's backoff, and with an RTO of 3 s unless a sample (from timestamps) exists.
    pub fn reset_after_syn_loss(&mut self) {
        self.backoff = 0;
        if self.srtt.is_none() {
            self.rto = RTO_AFTER_SYN_LOSS.clamp(self.min_rto, self.max_rto);
        }
    }

    /// The current timeout, including backoff.
    pub fn rto(&self) -> Duration {
        let shift = self.backoff.min(16);
        self.rto.saturating_mul(1 << shift).min(self.max_rto)
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
    pub fn backoff(&self) -> u32 {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> RttEstimator {
        RttEstimator::new(
            Duration::from_secs(1),
            Duration::from_millis(200),
            Duration::from_secs(120),
        )
    }

    #[test]
    fn initial_rto_is_one_second() {
        // RFC 6298 §2.1
        assert_eq!(est().rto(), Duration::from_secs(1));
    }

    #[test]
    fn first_sample_sets_srtt_and_half_rttvar() {
        // RFC 6298 §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
        let mut e = est();
        e.sample(Duration::from_millis(100));
        assert_eq!(e.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(e.rttvar(), Duration::from_millis(50));
        assert_eq!(e.rto(), Duration::from_millis(300));
    }

    #[test]
    fn later_samples_are_smoothed_with_alpha_and_beta() {
        // RFC 6298 §2.3: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT = 7/8 SRTT + 1/8 R'
        let mut e = est();
        e.sample(Duration::from_millis(100));
        e.sample(Duration::from_millis(200));
        assert_eq!(
            e.rttvar(),
            Duration::from_millis(62) + Duration::from_micros(500)
        );
        assert_eq!(
            e.srtt(),
            Some(Duration::from_millis(112) + Duration::from_micros(500))
        );
    }

    #[test]
    fn rto_is_floored_at_200ms() {
        let mut e = est();
        e.sample(Duration::from_millis(1));
        assert_eq!(e.rto(), Duration::from_millis(200));
    }

    #[test]
    fn rto_doubles_on_backoff_up_to_120s() {
        // RFC 6298 §5.5
        let mut e = est();
        e.back_off();
        assert_eq!(e.rto(), Duration::from_secs(2));
        e.back_off();
        assert_eq!(e.rto(), Duration::from_secs(4));
        for _ in 0..20 {
            e.back_off();
        }
        assert_eq!(e.rto(), Duration::from_secs(120));
        e.sample(Duration::from_millis(100));
        assert_eq!(e.backoff(), 0);
    }

    #[test]
    fn rto_is_three_seconds_after_a_syn_loss_without_a_sample() {
        // RFC 6298 §5.7
        let mut e = est();
        e.back_off();
        e.reset_after_syn_loss();
        assert_eq!(e.rto(), Duration::from_secs(3));
        let mut e = est();
        e.sample(Duration::from_millis(100));
        e.back_off();
        e.reset_after_syn_loss();
        assert_eq!(
            e.rto(),
            Duration::from_millis(300),
            "a sample keeps its RTO"
        );
    }
}
