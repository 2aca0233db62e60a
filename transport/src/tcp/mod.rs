//! TCP (RFC 9293) as a sans-IO state machine, with loss recovery (RFC 6298, 6675, 6582),
//! congestion control (RFC 9438, 5681), options (RFC 7323, 2018, 2883) and hardening
//! (RFC 5961, 6528, 4987, 5927).
//!
//! `Connection` is one connection driven with segments and virtual time; `Endpoint` owns many
//! of them plus the listeners, demultiplexes segments, and is what a runtime worker drives.

pub mod congestion;
pub mod connection;
pub mod endpoint;
pub mod gro;
pub mod isn;
pub mod listener;
pub mod recv_buffer;
pub mod ring;
pub mod rtt;
pub mod sack;
pub mod segment;
pub mod send_buffer;
pub mod seq;
pub mod stats;
pub mod syncookie;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Duration;

pub use congestion::CongestionAlgorithm;
pub use connection::{AppIo, Connection, State};
pub use endpoint::{ConnId, Endpoint, IcmpErrorInfo, IcmpErrorKind, TcpEvent, Transmit};
pub use segment::{Flags, SegmentError, TcpPacket, TcpRepr};
pub use seq::SeqNumber;
pub use stats::{ConnStats, TcpStats};

/// A connection's addresses, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}

/// Endpoint-wide settings. Every limit is documented where it is enforced.
#[derive(Debug, Clone)]
pub struct TcpConfig {
    /// The MSS we announce and start from: the interface MTU less 40 (RFC 9293 §3.7.1).
    pub mss: u16,
    pub send_buffer: usize,
    pub recv_buffer: usize,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    /// SYN (or SYN-ACK) retransmissions before a handshake fails with `TimedOut`.
    pub syn_retries: u32,
    /// Consecutive RTO expiries on data before the connection fails with `TimedOut`
    /// (RFC 9293 §3.8.3 R2; Linux's tcp_retries2 = 15).
    pub max_retries: u32,
    /// Delayed-ACK timer (RFC 9293 §3.8.6.3: < 0.5 s; netstack uses 40 ms like Linux).
    pub delayed_ack: Duration,
    /// TIME-WAIT length, 2 × MSL (RFC 9293 §3.4.2).
    pub time_wait: Duration,
    /// Connections an endpoint holds in TIME-WAIT at most (each a few hundred bytes: TIME-WAIT
    /// keeps no buffers). Beyond it a connection closes as soon as its last ACK is sent, as
    /// Linux does past tcp_max_tw_buckets; `EndpointCounters::time_wait_overflows` counts them.
    pub max_time_wait: usize,
    /// How long an orphaned connection may sit in FIN-WAIT-2.
    pub fin_wait2_timeout: Duration,
    /// Answer with SYN cookies when a listener's SYN queue is full.
    pub syn_cookies: bool,
    /// RFC 5961 §7: challenge ACKs per connection per second.
    pub challenge_ack_limit: u32,
    /// Out-of-order ranges kept per connection; beyond it segments are dropped.
    pub max_ooo_ranges: usize,
    /// Segments waiting in `Endpoint` for `poll_transmit` that belong to no connection (RSTs,
    /// cookie SYN-ACKs); more are dropped and counted.
    pub max_stateless_queue: usize,
    pub defaults: SocketOptions,
    /// Segmentation offload (TSO): the most payload one segment handed to the device may
    /// carry, which the device cuts into MSS-sized segments. 0 (the default) sends one MSS per
    /// segment. Congestion and receive windows still count in MSS-sized segments, and the
    /// scoreboard keeps one entry per MSS, so loss recovery resends single segments.
    pub segment_offload: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1460,
            send_buffer: 256 * 1024,
            recv_buffer: 256 * 1024,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(120),
            syn_retries: 6,
            max_retries: 15,
            delayed_ack: Duration::from_millis(40),
            time_wait: Duration::from_secs(60),
            max_time_wait: 16 * 1024,
            fin_wait2_timeout: Duration::from_secs(60),
            syn_cookies: true,
            challenge_ack_limit: 10,
            max_ooo_ranges: 64,
            max_stateless_queue: 1024,
            defaults: SocketOptions::default(),
            segment_offload: 0,
        }
    }
}

/// Keepalive parameters (RFC 9293 §3.8.4 / RFC 1122 §4.2.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub count: u32,
}

impl Default for Keepalive {
    fn default() -> Self {
        // RFC 1122 §4.2.3.6: the idle time MUST default to no less than two hours.
        Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            count: 9,
        }
    }
}

/// Per-socket options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    /// Disable Nagle (TCP_NODELAY).
    pub nodelay: bool,
    pub keepalive: Option<Keepalive>,
    /// SO_LINGER with a zero timeout: close sends RST.
    pub linger_zero: bool,
    /// RFC 5482 / RFC 9293 §3.8.3: fail when data stays unacknowledged this long.
    pub user_timeout: Option<Duration>,
    pub congestion: CongestionAlgorithm,
    pub send_buffer: Option<usize>,
    pub recv_buffer: Option<usize>,
    pub window_scaling: bool,
    pub timestamps: bool,
    pub sack: bool,
}

impl Default for SocketOptions {
    fn default() -> Self {
        SocketOptions {
            nodelay: false,
            keepalive: None,
            linger_zero: false,
            user_timeout: None,
            congestion: CongestionAlgorithm::Cubic,
            send_buffer: None,
            recv_buffer: None,
            window_scaling: true,
            timestamps: true,
            sack: true,
        }
    }
}

/// Errors of the socket-facing calls and the reasons a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpError {
    /// RST (or ICMP port/protocol unreachable) answered our SYN.
    ConnectionRefused,
    /// The peer reset an established connection.
    ConnectionReset,
    /// Retransmissions, the user timeout or keepalive gave up.
    TimedOut,
    /// The handle names no connection, or the operation needs a synchronized one.
    NotConnected,
    /// The address is already in use (listener or 4-tuple).
    AddrInUse,
    /// Writing after shutdown or after the connection closed.
    BrokenPipe,
    /// The connection was aborted locally.
    ConnectionAborted,
    /// Nothing to read yet (`recv` only).
    WouldBlock,
    /// An ICMP host unreachable answered a connect, or a connection that timed out had seen
    /// one (EHOSTUNREACH).
    HostUnreachable,
    /// The same for an ICMP network unreachable (ENETUNREACH).
    NetworkUnreachable,
    /// A bad argument (for example a port of 0).
    InvalidInput,
}

impl TcpError {
    pub fn kind(self) -> std::io::ErrorKind {
        use std::io::ErrorKind as K;
        match self {
            TcpError::ConnectionRefused => K::ConnectionRefused,
            TcpError::ConnectionReset => K::ConnectionReset,
            TcpError::TimedOut => K::TimedOut,
            TcpError::NotConnected => K::NotConnected,
            TcpError::AddrInUse => K::AddrInUse,
            TcpError::BrokenPipe => K::BrokenPipe,
            TcpError::ConnectionAborted => K::ConnectionAborted,
            TcpError::WouldBlock => K::WouldBlock,
            TcpError::HostUnreachable => K::HostUnreachable,
            TcpError::NetworkUnreachable => K::NetworkUnreachable,
            TcpError::InvalidInput => K::InvalidInput,
        }
    }
}

impl fmt::Display for TcpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            TcpError::ConnectionRefused => "connection refused",
            TcpError::ConnectionReset => "connection reset by peer",
            TcpError::TimedOut => "connection timed out",
            TcpError::NotConnected => "not connected",
            TcpError::AddrInUse => "address in use",
            TcpError::BrokenPipe => "broken pipe",
            TcpError::ConnectionAborted => "connection aborted",
            TcpError::WouldBlock => "operation would block",
            TcpError::HostUnreachable => "no route to host",
            TcpError::NetworkUnreachable => "network is unreachable",
            TcpError::InvalidInput => "invalid input",
        };
        f.write_str(s)
    }
}

impl std::error::Error for TcpError {}

impl From<TcpError> for std::io::Error {
    fn from(e: TcpError) -> Self {
        std::io::Error::new(e.kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_io_error_kinds() {
        let e: std::io::Error = TcpError::ConnectionRefused.into();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(TcpError::TimedOut.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(TcpError::BrokenPipe.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(TcpError::AddrInUse.kind(), std::io::ErrorKind::AddrInUse);
    }
}
