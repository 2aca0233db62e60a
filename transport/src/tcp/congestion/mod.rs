//! Congestion control behind a trait (RFC 5681 framework). The connection owns loss detection
//! and recovery (RFC 6675, RFC 6582); an algorithm only decides cwnd and ssthresh.

use std::fmt::Debug;
use std::time::{Duration, Instant};

pub mod cubic;
pub mod newreno;

pub use cubic::Cubic;
pub use newreno::NewReno;

/// Which algorithm a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CongestionAlgorithm {
    /// RFC 9438, the default (as in Linux).
    #[default]
    Cubic,
    /// RFC 5681 with RFC 6582 recovery.
    NewReno,
}

/// RFC 6928: IW = min(10 × MSS, max(2 × MSS, 14600)).
pub fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14600))
}

/// A congestion controller. All sizes are in bytes.
pub trait CongestionControl: Debug + Send {
    /// The congestion window.
    fn cwnd(&self) -> usize;
    /// The slow-start threshold.
    fn ssthresh(&self) -> usize;
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, now: Instant, acked: usize, srtt: Option<Duration>);
    /// A loss was detected by duplicate ACKs or SACK (entering fast recovery): set ssthresh and
    /// return the window to use during recovery.
    fn on_congestion_event(&mut self, now: Instant, flight: usize);
    /// Fast recovery ended: RFC 6582 §3.2 step 3 — cwnd = min(ssthresh, flight + MSS)… the
    /// connection passes the flight; algorithms apply their rule.
    fn on_recovery_end(&mut self, flight: usize);
    /// The retransmission timer expired (RFC 5681 §3.1 eq. 4, cwnd = loss window).
    fn on_rto(&mut self, now: Instant, flight: usize);
    /// The path MSS changed.
    fn set_mss(&mut self, mss: usize);
    /// The handshake completed: start from `cwnd` bytes with the negotiated `mss` (RFC 6928,
    /// or RFC 5681 §3.1's one segment after a lost SYN).
    fn set_initial_window(&mut self, mss: usize, cwnd: usize);
    /// RFC 5681 §4.1: sending resumes after an idle period longer than the RTO, so the
    /// window no longer reflects the path: cwnd = min(cwnd, IW).
    fn on_idle_restart(&mut self);
}

/// Builds the controller for a connection.
pub fn new_controller(alg: CongestionAlgorithm, mss: usize) -> Box<dyn CongestionControl> {
    match alg {
        CongestionAlgorithm::Cubic => Box::new(Cubic::new(mss)),
        CongestionAlgorithm::NewReno => Box::new(NewReno::new(mss)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_window_is_ten_segments_capped_at_14600_bytes() {
        // RFC 6928 §2
        assert_eq!(initial_window(1460), 14600);
        assert_eq!(initial_window(536), 5360);
        assert_eq!(initial_window(9000), 18000);
    }
}
