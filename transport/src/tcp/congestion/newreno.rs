//! NewReno (RFC 5681 slow start and congestion avoidance; recovery per RFC 6582 lives in the
//! connection).

use std::time::{Duration, Instant};

use super::{initial_window, CongestionControl};

#[derive(Debug, Clone)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 §3.1, the
    /// byte-counting variant).
    acked_in_ca: usize,
}

impl NewReno {
    pub fn new(mss: usize) -> Self {
        NewReno {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            acked_in_ca: 0,
        }
    }
}

/// RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2 × SMSS).
pub fn half_flight(flight: usize, mss: usize) -> usize {
    (flight / 2).max(2 * mss)
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn on_ack(&mut self, _now: Instant, acked: usize, _srtt: Option<Duration>) {
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 eq. 2 with RFC 3465's L = 2 SMSS limit per ACK.
            self.cwnd += acked.min(2 * self.mss);
        } else {
            self.acked_in_ca += acked;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }
    fn on_congestion_event(&mut self, _now: Instant, flight: usize) {
        self.ssthresh = half_flight(flight, self.mss);
        self.cwnd = self.ssthresh;
        self.acked_in_ca = 0;
    }
    fn on_recovery_end(&mut self, flight: usize) {
        // RFC 6582 §3.2 step 3, option 1: min(ssthresh, max(FlightSize, SMSS) + SMSS).
        self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
    }
    fn on_rto(&mut self, _now: Instant, flight: usize) {
        self.ssthresh = half_flight(flight, self.mss);
        self.cwnd = self.mss;
        self.acked_in_ca = 0;
    }
    fn set_mss(&mut self, mss: usize) {
        self.mss = mss;
    }
    fn set_initial_window(&mut self, mss: usize, cwnd: usize) {
        self.mss = mss;
        self.cwnd = cwnd;
    }
    fn on_idle_restart(&mut self) {
        self.cwnd = self.cwnd.min(initial_window(self.mss));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Instant {
        Instant::now()
    }

    #[test]
    fn slow_start_grows_cwnd_by_acked_bytes() {
        let mut c = NewReno::new(1000);
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(t(), 1000, None);
        assert_eq!(c.cwnd(), 11_000);
        // RFC 3465: at most 2 SMSS per ACK.
        c.on_ack(t(), 5000, None);
        assert_eq!(c.cwnd(), 13_000);
    }

    #[test]
    fn congestion_avoidance_adds_one_mss_per_window() {
        let mut c = NewReno::new(1000);
        c.on_congestion_event(t(), 20_000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.cwnd(), 10_000);
        for _ in 0..9 {
            c.on_ack(t(), 1000, None);
        }
        assert_eq!(c.cwnd(), 10_000);
        c.on_ack(t(), 1000, None);
        assert_eq!(c.cwnd(), 11_000);
    }

    #[test]
    fn rto_collapses_cwnd_to_one_segment() {
        // RFC 5681 §3.1: LW = 1 SMSS, ssthresh = max(FlightSize/2, 2 SMSS)
        let mut c = NewReno::new(1000);
        c.on_rto(t(), 3000);
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 2000);
    }

    #[test]
    fn recovery_end_deflates_to_ssthresh() {
        let mut c = NewReno::new(1000);
        c.on_congestion_event(t(), 40_000);
        c.on_recovery_end(40_000);
        assert_eq!(c.cwnd(), 20_000);
        c.on_congestion_event(t(), 40_000);
        c.on_recovery_end(0);
        assert_eq!(c.cwnd(), 2000);
    }
}
