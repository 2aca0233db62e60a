//! CUBIC (RFC 9438): window growth as a cubic function of the time since the last congestion
//! event, with a Reno-friendly region. Windows are kept in segments as `f64`.

use std::time::{Duration, Instant};

use super::{initial_window, CongestionControl};

/// RFC 9438 §5.1: C = 0.4 and β_cubic = 0.7.
const C: f64 = 0.4;
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3 (1 − β) / (1 + β).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

#[derive(Debug, Clone)]
pub struct Cubic {
    mss: usize,
    /// In segments.
    cwnd: f64,
    ssthresh: f64,
    w_max: f64,
    /// W_max before the previous reduction, for fast convergence (RFC 9438 §4.7).
    w_last_max: f64,
    k: f64,
    epoch: Option<Instant>,
    cwnd_epoch: f64,
    w_est: f64,
    /// cwnd when ssthresh was last set (RFC 9438 §4.3 cwnd_prior).
    cwnd_prior: f64,
}

impl Cubic {
    pub fn new(mss: usize) -> Self {
        Cubic {
            mss,
            cwnd: initial_window(mss) as f64 / mss as f64,
            ssthresh: f64::INFINITY,
            w_max: 0.0,
            w_last_max: 0.0,
            k: 0.0,
            epoch: None,
            cwnd_epoch: 0.0,
            w_est: 0.0,
            cwnd_prior: 0.0,
        }
    }

    fn reduce(&mut self) {
        // RFC 9438 §4.7: fast convergence releases bandwidth to newer flows.
        self.w_max = if self.cwnd < self.w_last_max {
            self.cwnd * (1.0 + BETA) / 2.0
        } else {
            self.cwnd
        };
        self.w_last_max = self.cwnd;
        self.cwnd_prior = self.cwnd;
        // RFC 9438 §4.6: ssthresh = cwnd × β (as Linux does), at least 2 segments.
        self.ssthresh = (self.cwnd * BETA).max(2.0);
        self.epoch = None;
    }

    /// RFC 9438 eq. 1: W_cubic(t) = C (t − K)³ + W_max.
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }
}

impl CongestionControl for Cubic {
    fn cwnd(&self) -> usize {
        (self.cwnd * self.mss as f64) as usize
    }
    fn ssthresh(&self) -> usize {
        if self.ssthresh.is_finite() {
            (self.ssthresh * self.mss as f64) as usize
        } else {
            usize::MAX
        }
    }
    fn on_ack(&mut self, now: Instant, acked: usize, srtt: Option<Duration>) {
        let segs = acked as f64 / self.mss as f64;
        if self.cwnd < self.ssthresh {
            // Slow start as in RFC 5681, at most 2 segments per ACK (RFC 3465).
            self.cwnd += segs.min(2.0);
            return;
        }
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                // RFC 9438 §4.2: a new congestion-avoidance epoch.
                self.epoch = Some(now);
                self.cwnd_epoch = self.cwnd;
                self.w_est = self.cwnd;
                if self.w_max < self.cwnd {
                    self.w_max = self.cwnd;
                }
                self.k = ((self.w_max - self.cwnd_epoch).max(0.0) / C).cbrt();
                now
            }
        };
        let rtt = srtt.unwrap_or(Duration::from_millis(100)).as_secs_f64();
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        // RFC 9438 §4.3: the Reno-friendly estimate, growing like Reno (α = 1) once it has
        // reached the window the last congestion event cut.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA
        };
        self.w_est += alpha * segs / self.cwnd;
        // RFC 9438 §4.4–4.5: aim at W_cubic one RTT ahead, clamped to [cwnd, 1.5 cwnd].
        let target = self.w_cubic(t + rtt).clamp(self.cwnd, 1.5 * self.cwnd);
        if self.w_cubic(t) < self.w_est {
            self.cwnd = self.cwnd.max(self.w_est);
        } else {
            self.cwnd += (target - self.cwnd) / self.cwnd * segs;
        }
    }
    fn on_congestion_event(&mut self, _now: Instant, _flight: usize) {
        self.reduce();
        self.cwnd = self.ssthresh;
    }
    fn on_recovery_end(&mut self, _flight: usize) {
        self.cwnd = self.ssthresh;
    }
    fn on_rto(&mut self, _now: Instant, _flight: usize) {
        self.reduce();
        self.cwnd = 1.0;
    }
    fn on_idle_restart(&mut self) {
        let iw = initial_window(self.mss) as f64 / self.mss as f64;
        self.cwnd = self.cwnd.min(iw);
        self.epoch = None;
    }
    fn set_initial_window(&mut self, mss: usize, cwnd: usize) {
        self.mss = mss;
        self.cwnd = cwnd as f64 / mss as f64;
    }
    fn set_mss(&mut self, mss: usize) {
        // Keep the window in bytes when the segment size changes.
        let scale = self.mss as f64 / mss as f64;
        self.cwnd *= scale;
        if self.ssthresh.is_finite() {
            self.ssthresh *= scale;
        }
        self.w_max *= scale;
        self.w_last_max *= scale;
        self.w_est *= scale;
        self.cwnd_epoch *= scale;
        self.cwnd_prior *= scale;
        self.mss = mss;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_reduces_window_by_beta() {
        // RFC 9438 §4.6: cwnd = ssthresh = 0.7 × cwnd
        let mut c = Cubic::new(1000);
        let t = Instant::now();
        c.on_congestion_event(t, 10_000);
        assert_eq!(c.cwnd(), 7000);
        assert_eq!(c.ssthresh(), 7000);
    }

    #[test]
    fn window_regrows_to_w_max_after_k_seconds() {
        // RFC 9438 eq. 2: K = cbrt(W_max (1 − β) / C); after K seconds cwnd ≈ W_max.
        let mut c = Cubic::new(1000);
        let t0 = Instant::now();
        for _ in 0..90 {
            c.on_ack(t0, 1000, None);
        }
        assert_eq!(c.cwnd(), 100_000);
        c.on_congestion_event(t0, 100_000);
        assert_eq!(c.cwnd(), 70_000);
        let k = (100.0 * 0.3 / 0.4f64).cbrt();
        let rtt = Duration::from_millis(100);
        let mut now = t0;
        while now.duration_since(t0).as_secs_f64() < k {
            // One window of ACKs per RTT.
            for _ in 0..(c.cwnd() / 1000) {
                c.on_ack(now, 1000, Some(rtt));
            }
            now += rtt;
        }
        let w = c.cwnd() as f64 / 1000.0;
        assert!((95.0..=106.0).contains(&w), "cwnd {w} segments after K");
    }

    #[test]
    fn fast_convergence_lowers_w_max_when_window_shrank() {
        // RFC 9438 §4.7
        let mut c = Cubic::new(1000);
        let t = Instant::now();
        c.on_congestion_event(t, 10_000); // w_last_max = 10
        c.on_congestion_event(t, 7_000); // cwnd 7 < 10: w_max = 7 × 0.85
        assert!((c.w_max - 5.95).abs() < 1e-9);
    }

    #[test]
    fn rto_sets_cwnd_to_one_segment() {
        let mut c = Cubic::new(1000);
        c.on_rto(Instant::now(), 10_000);
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 7000);
    }

    #[test]
    fn reno_friendly_alpha_becomes_one_once_w_est_reaches_cwnd_prior() {
        // RFC 9438 §4.3: α_cubic = 3(1 − β)/(1 + β) until W_est ≥ cwnd_prior, then 1.
        let mut c = Cubic::new(1000);
        let t = Instant::now();
        let rtt = Some(Duration::from_millis(1));
        c.on_congestion_event(t, 10_000);
        c.on_ack(t, 1000, rtt);
        let (w, cwnd) = (c.w_est, c.cwnd);
        c.on_ack(t, 1000, rtt);
        assert!((c.w_est - w - ALPHA / cwnd).abs() < 1e-9);
        c.w_est = 10.0;
        let cwnd = c.cwnd;
        c.on_ack(t, 1000, rtt);
        assert!((c.w_est - 10.0 - 1.0 / cwnd).abs() < 1e-9);
    }
}
