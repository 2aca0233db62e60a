//! A passive open's bookkeeping (RFC 9293 §3.10.7.2): its options, its SYN queue (half-open
//! connections, which live in the endpoint as SYN-RECEIVED connections) and its accept queue
//! (established connections the socket layer has not taken yet). Both queues are bounded by the
//! backlog; past the SYN queue's bound the listener answers with SYN cookies (RFC 4987 §3.6).

use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::syncookie::TICK_SECS;
use super::SocketOptions;

#[derive(Debug, Clone)]
pub struct Listener {
    pub local: SocketAddrV4,
    pub backlog: usize,
    pub opts: SocketOptions,
    /// Half-open connections (SYN-RECEIVED).
    pub syn_queue: usize,
    /// Established connections announced but not yet taken by the socket layer.
    pub accept_queue: usize,
    /// `Accepted` events queued for this listener that the socket layer has not polled yet.
    pub unpolled_accepts: usize,
    /// The socket layer keeps the accept queue (shared by several endpoints) and refreshes
    /// `accept_queue` from it (`Endpoint::set_accept_queue`); taking or dropping a connection
    /// then does not count it off here.
    pub shared_queue: bool,
    /// When the SYN queue last overflowed; cookies are honoured only for two cookie ticks
    /// after that (as Linux does), so a forged ACK cannot open connections at other times.
    pub last_overflow: Option<Instant>,
}

impl Listener {
    pub fn new(local: SocketAddrV4, backlog: usize, opts: SocketOptions) -> Self {
        Listener {
            local,
            backlog: backlog.max(1),
            opts,
            syn_queue: 0,
            accept_queue: 0,
            unpolled_accepts: 0,
            shared_queue: false,
            last_overflow: None,
        }
    }

    pub fn syn_queue_full(&self) -> bool {
        self.syn_queue >= self.backlog
    }

    pub fn accept_queue_full(&self) -> bool {
        self.accept_queue >= self.backlog
    }

    /// Whether an ACK arriving now may carry a cookie we issued.
    pub fn cookies_recent(&self, now: Instant) -> bool {
        self.last_overflow
            .is_some_and(|t| now.saturating_duration_since(t) <= Duration::from_secs(2 * TICK_SECS))
    }
}
