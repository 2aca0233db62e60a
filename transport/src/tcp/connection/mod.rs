//! One TCP connection: the RFC 9293 state machine with its send and receive buffers, timers,
//! loss recovery and congestion control. Sans-IO: it takes segments and `now`, and hands out
//! segments (`poll_transmit`), its next deadline (`poll_deadline`) and events (`poll_event`).
//!
//! Sequence space on the send side: `iss` is the SYN; data starts at `iss + 1` and is held in
//! the send buffer from `data_start` (the first unacknowledged data byte) on; a FIN, once
//! queued, follows the last byte. Every segment sent and not yet acknowledged (SYN aside) sits
//! in the scoreboard, from which retransmissions are chosen.
//!
//! Layout: this file has the public types, the socket calls, segment arrival in the order of
//! RFC 9293 §3.10.7.4 and the choice of the next segment to send; the rest is by concern, each
//! file with the part of the state it owns:
//! - `handshake`: opens, the SYN and SYN-ACK, option negotiation (`SynState`);
//! - `send`: ACK processing and data segments (`Sender`);
//! - `receive`: acceptability, text, FIN, TIME-WAIT and what ACKs carry (`Receiver`,
//!   `AckState`);
//! - `recovery`: RTT samples, SACK, duplicate ACKs, fast recovery, TLP, RTO (`Recovery`);
//! - `timers`: the timer table and what each timer does (`Timer`, `Timers`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_network::endpoint::{IcmpErrorKind, SocketIcmpError};

use super::ring::{Consumer, Producer};
use super::sack::Scoreboard;
use super::segment::{Flags, SackBlock, SackBlocks, TcpRepr, Timestamp};
use super::seq::SeqNumber;
use super::stats::ConnStats;
use super::{FourTuple, SocketOptions, TcpConfig, TcpError};

mod handshake;
mod receive;
mod recovery;
mod send;
mod timers;

use handshake::SynState;
use receive::{AckState, Receiver};
use recovery::Recovery;
use send::Sender;
use timers::{Timer, Timers};

/// RFC 9293 §3.3.2: the connection states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// RFC 9293 §3.5: the synchronized states (after the handshake).
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
}

/// What the socket layer hears from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed.
    Connected,
    /// Data (or end of stream) can be read.
    Readable,
    /// Send-buffer space freed after a short `send`.
    Writable,
    /// The connection ended: `None` for an orderly close, else why it failed.
    Closed(Option<TcpError>),
}

/// RFC 9293 §3.7.1: without an MSS option the peer's MSS is 536.
pub const DEFAULT_PEER_MSS: usize = 536;
/// Linux's min_pmtu: fragmentation-needed never takes the path MTU below 552.
pub const MIN_PATH_MTU: usize = 552;
/// RFC 7323 §5.5: a TS.Recent older than 24 days is no longer a PAWS reference.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);
/// IPv4 + TCP headers without options.
const HEADERS: usize = 40;
/// Timestamps option with its two NOPs.
const TS_OPT_LEN: usize = 12;

/// Everything a new connection needs from its endpoint.
#[derive(Debug, Clone)]
pub struct ConnParams {
    pub tuple: FourTuple,
    pub iss: SeqNumber,
    /// Origin of the timestamp clock (the endpoint's first `now`).
    pub epoch: Instant,
    /// RFC 7323 §5.4: a per-connection offset added to the timestamp clock.
    pub ts_offset: u32,
    /// Shared by every connection of an endpoint.
    pub config: Arc<TcpConfig>,
    pub opts: SocketOptions,
}

/// The application's sides of a connection's rings, once the runtime takes them: it appends
/// to `send` and reads from `recv` without asking the connection.
#[derive(Debug)]
pub struct AppIo {
    pub send: Producer,
    pub recv: Consumer,
}

/// The connection error an ICMP error's socket error kind stands for, when it is one TCP
/// reports (host and network unreachable).
fn kind_of(kind: std::io::ErrorKind) -> Option<TcpError> {
    match kind {
        std::io::ErrorKind::HostUnreachable => Some(TcpError::HostUnreachable),
        std::io::ErrorKind::NetworkUnreachable => Some(TcpError::NetworkUnreachable),
        _ => None,
    }
}

/// A writer waits until at least 1/`WRITABLE_LOW_WATER` of the send buffer is free.
pub const WRITABLE_LOW_WATER: usize = 3;

/// The TCP options a connection's handshake enabled: each needs both ends to offer it
/// (RFC 7323 §1.3 for window scaling and timestamps, RFC 2018 §2 for SACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnabledOptions {
    /// Window scaling (RFC 7323 §2).
    pub window_scaling: bool,
    /// Timestamps (RFC 7323 §3).
    pub timestamps: bool,
    /// Selective acknowledgments (RFC 2018).
    pub sack: bool,
}

/// One TCP connection. Its state is grouped by concern; each group is documented where it is
/// defined.
#[derive(Debug)]
pub struct Connection {
    tuple: FourTuple,
    state: State,
    cfg: Arc<TcpConfig>,
    opts: SocketOptions,
    epoch: Instant,
    ts_offset: u32,
    /// Opened by a listener (SYN-RECEIVED first), not by `connect`.
    passive: bool,
    /// The options the handshake enabled.
    enabled: EnabledOptions,
    snd: Sender,
    rcv: Receiver,
    syn: SynState,
    rec: Recovery,
    ack: AckState,
    timers: Timers,

    // Socket-layer state.
    events: VecDeque<Event>,
    readable_signaled: bool,
    writable_wanted: bool,
    user_closed: bool,
    error: Option<TcpError>,
    /// The last soft ICMP error: what a later timeout reports.
    soft_error: Option<TcpError>,
    rst_pending: bool,
    ctl_replies: VecDeque<TcpRepr>,
    stats: ConnStats,
}

impl Connection {
    // ---------------------------------------------------------------- accessors

    pub fn state(&self) -> State {
        self.state
    }

    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv.nxt
    }

    pub fn snd_una(&self) -> SeqNumber {
        self.snd.una
    }

    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd.max
    }

    pub fn iss(&self) -> SeqNumber {
        self.snd.iss
    }

    pub fn is_passive(&self) -> bool {
        self.passive
    }

    pub fn error(&self) -> Option<TcpError> {
        self.error
    }

    pub fn cwnd(&self) -> usize {
        self.rec.cc.cwnd()
    }

    pub fn ssthresh(&self) -> usize {
        self.rec.cc.ssthresh()
    }

    pub fn rto(&self) -> Duration {
        self.rec.rtt.rto()
    }

    pub fn srtt(&self) -> Option<Duration> {
        self.rec.rtt.srtt()
    }

    pub fn snd_wnd(&self) -> usize {
        self.snd.wnd
    }

    pub fn in_recovery(&self) -> bool {
        self.rec.active
    }

    /// Which TCP options the handshake enabled (both ends offered them).
    pub fn options_enabled(&self) -> EnabledOptions {
        self.enabled
    }

    /// Bytes buffered for sending (unacknowledged plus unsent).
    pub fn send_queued(&self) -> usize {
        self.snd.buf.len()
    }

    /// Bytes buffered for reading, in order plus out of order.
    pub fn recv_queued(&self) -> usize {
        self.rcv.buf.readable() + self.rcv.buf.ooo_bytes()
    }

    /// In-order bytes `recv` can return now.
    pub fn readable(&self) -> usize {
        self.rcv.buf.readable()
    }

    /// Bytes `send` would take now (0 after shutdown or close).
    pub fn send_space(&self) -> usize {
        if self.snd.fin_queued || self.user_closed || self.error.is_some() {
            0
        } else {
            self.snd.buf.free()
        }
    }

    /// The options that may change after the connection exists: Nagle, keepalive, the user
    /// timeout and linger-0 (buffer sizes and negotiated options stay as they were).
    pub fn set_options(&mut self, o: SocketOptions) {
        self.opts.nodelay = o.nodelay;
        self.opts.keepalive = o.keepalive;
        self.opts.user_timeout = o.user_timeout;
        self.opts.linger_zero = o.linger_zero;
    }

    pub fn options(&self) -> SocketOptions {
        self.opts
    }

    pub fn recv_capacity(&self) -> usize {
        self.rcv.buf.capacity()
    }

    pub fn send_capacity(&self) -> usize {
        self.snd.buf.capacity()
    }

    /// Closed, with nothing left to send: the endpoint may forget it.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed && !self.rst_pending && self.ctl_replies.is_empty()
    }

    /// The counters alone (the gauges of `stats` read as zero), without copying.
    pub fn counters(&self) -> &ConnStats {
        &self.stats
    }

    /// Counters plus current gauges.
    pub fn stats(&self) -> ConnStats {
        let mut s = self.stats;
        s.srtt_us = self.rec.rtt.srtt().map_or(0, |d| d.as_micros() as u64);
        s.rttvar_us = self.rec.rtt.rttvar().as_micros() as u64;
        s.rto_us = self.rec.rtt.rto().as_micros() as u64;
        s.cwnd = self.rec.cc.cwnd() as u64;
        s.ssthresh = self.rec.cc.ssthresh().min(u64::MAX as usize) as u64;
        s.snd_wnd = self.snd.wnd as u64;
        s.rcv_wnd = self.rcv.adv.since(self.rcv.nxt) as u64;
        s
    }

    /// When the segment `poll_transmit` just returned is an offloaded burst: the payload per
    /// segment the device is to cut it into (`TcpConfig::segment_offload`).
    pub fn burst_segment(&self, payload_len: usize) -> Option<usize> {
        (self.snd.burst_segment > 0 && payload_len > self.snd.burst_segment)
            .then_some(self.snd.burst_segment)
    }

    /// SMSS: the data a segment with the options every segment carries (timestamps) may hold.
    /// Congestion control and the window logic count in these.
    fn data_mss(&self) -> usize {
        let mss = self.snd.peer_mss.min(self.snd.path_mss);
        // RFC 6691: options come out of the MSS.
        let opt = if self.enabled.timestamps {
            TS_OPT_LEN
        } else {
            0
        };
        mss.saturating_sub(opt).max(1)
    }

    /// Payload for the next segment: the MSS less the SACK blocks it will carry (RFC 6691:
    /// every option comes out of the MSS, or the packet outgrows the path MTU).
    fn seg_mss(&self) -> usize {
        self.data_mss()
            .saturating_sub(self.sack_option_len())
            .max(1)
    }

    fn ts_now(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_millis() as u32).wrapping_add(self.ts_offset)
    }

    fn flight(&self) -> usize {
        self.snd.max.since(self.snd.una)
    }

    // ---------------------------------------------------------------- socket calls

    /// Buffers `data`; returns how much was taken (0 when the buffer is full).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.snd.fin_queued || self.user_closed {
            return Err(TcpError::BrokenPipe);
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed | State::Listen => return Err(TcpError::NotConnected),
            _ => return Err(TcpError::BrokenPipe),
        }
        let n = self.snd.buf.write(data);
        if n < data.len() {
            self.writable_wanted = true;
        }
        Ok(n)
    }

    /// Reads in-order data. `Ok(0)` is end of stream; `WouldBlock` means nothing yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        self.readable_signaled = false;
        if self.rcv.buf.readable() > 0 {
            let n = self.rcv.buf.read(buf);
            self.maybe_window_update();
            if matches!(self.state, State::TimeWait | State::Closed) {
                self.rcv.buf.release_if_drained();
            }
            return Ok(n);
        }
        if self.rcv.fin_received {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.state {
            State::Closed | State::Listen => Err(TcpError::NotConnected),
            _ => Err(TcpError::WouldBlock),
        }
    }

    /// Half-close: a FIN follows the buffered data (RFC 9293 §3.10.4).
    pub fn shutdown_write(&mut self) {
        if self.snd.fin_queued {
            return;
        }
        match self.state {
            // The FIN waits for the handshake (RFC 9293 §3.10.4 queues it behind SENDs).
            State::SynSent | State::SynReceived => self.snd.fin_queued = true,
            State::Established => {
                self.snd.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
        if self.snd.fin_queued {
            self.snd.buf.freeze();
        }
    }

    /// Full close. Like Linux, a close with unread data (or with SO_LINGER 0) aborts with RST
    /// (RFC 2525 §2.17); otherwise the FIN follows the data and the connection is orphaned.
    /// Only in-order data counts as unread: out-of-order bytes were never readable (Linux
    /// resets only for its receive queue, not its out-of-order queue).
    pub fn close(&mut self, now: Option<Instant>) {
        if self.user_closed {
            return;
        }
        if self.opts.linger_zero || self.rcv.buf.readable() > 0 {
            self.abort();
            return;
        }
        self.user_closed = true;
        if self.state == State::SynSent {
            // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB.
            self.state = State::Closed;
            self.clear_timers();
            self.push_event(Event::Closed(None));
            return;
        }
        self.shutdown_write();
        if let (State::FinWait2, Some(now)) = (self.state, now) {
            self.timers[Timer::FinWait2] = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Abort (RFC 9293 §3.10.5): RST in synchronized states, then CLOSED.
    pub fn abort(&mut self) {
        self.user_closed = true;
        if matches!(self.state, State::Closed | State::Listen | State::TimeWait) {
            self.state = State::Closed;
            return;
        }
        if self.state != State::SynSent {
            self.rst_pending = true;
        }
        self.fail(TcpError::ConnectionAborted);
    }

    fn fail(&mut self, e: TcpError) {
        let e = match (e, self.soft_error) {
            (TcpError::TimedOut, Some(soft)) => soft,
            _ => e,
        };
        log::debug!("tcp {:?}: {} in {:?}", self.tuple, e, self.state);
        self.error = Some(e);
        self.state = State::Closed;
        self.clear_timers();
        self.release_buffers();
        self.push_event(Event::Closed(Some(e)));
    }

    /// A connection that will send no more data (TIME-WAIT, CLOSED) keeps only what its
    /// remaining duties need: the send buffer and scoreboard go, and the receive ring once the
    /// application has read it. The endpoint may hold such a connection for 2×MSL, so it
    /// must cost a few hundred bytes, not its buffers.
    fn release_buffers(&mut self) {
        self.snd.buf.release();
        self.rec.sb = Scoreboard::default();
        self.rcv.buf.release_if_drained();
    }

    fn push_event(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn signal_readable(&mut self) {
        // Once the application reads from the ring itself, every arrival is an edge worth
        // telling: the runtime wakes a reader only if one waits.
        if self.rcv.buf.is_detached() || !self.readable_signaled {
            self.readable_signaled = true;
            self.push_event(Event::Readable);
        }
    }

    // ---------------------------------------------------------------- ICMP

    /// An ICMP error quoting our segment with sequence number `seq`. RFC 5927 §4.1: act only
    /// when `seq` lies in SND.UNA..SND.NXT. What the error means comes from the stack's one
    /// mapping, [`IcmpErrorKind::socket_error`]. Returns whether the error was accepted.
    pub fn on_icmp(&mut self, now: Instant, kind: IcmpErrorKind, seq: SeqNumber) -> bool {
        let in_flight = if self.state == State::SynSent {
            seq == self.snd.iss
        } else {
            seq >= self.snd.una && seq < self.snd.max
        };
        if !in_flight {
            return false;
        }
        let icmp_kind = kind;
        match kind.socket_error() {
            SocketIcmpError::Error { hard: true, .. } if self.state == State::SynSent => {
                // RFC 1122 §4.2.3.9: port or protocol unreachable (ConnectionRefused in the
                // mapping) is a hard error.
                self.fail(TcpError::ConnectionRefused);
            }
            SocketIcmpError::Error { kind, .. }
                if self.state == State::SynSent
                    && kind_of(kind).is_some()
                    && matches!(icmp_kind, IcmpErrorKind::DstUnreachable(_)) =>
            {
                // RFC 1122 §4.2.3.9 calls host and net unreachable soft errors; like Linux, a
                // connect still in SYN-SENT gives up at once (EHOSTUNREACH / ENETUNREACH)
                // instead of retransmitting its SYN to a host that is not there for minutes.
                self.fail(kind_of(kind).unwrap_or(TcpError::HostUnreachable));
            }
            SocketIcmpError::Error { kind, .. } => {
                // Soft error (RFC 1122 §4.2.3.9): keep retransmitting, and report it instead of
                // a plain timeout if the connection times out (as Linux's sk_err_soft).
                self.soft_error = kind_of(kind);
            }
            // The peer gave up reassembling: retransmission covers it.
            SocketIcmpError::Nothing => return false,
            SocketIcmpError::PathMtu { next_hop_mtu: mtu } => {
                // RFC 1191 §6.3: lower the path MTU, never below our floor.
                let mtu = usize::from(mtu).max(MIN_PATH_MTU);
                let mss = mtu - HEADERS;
                if mss < self.snd.path_mss {
                    self.snd.path_mss = mss;
                    let dm = self.data_mss();
                    self.rec.cc.set_mss(dm);
                    // Resend at once what no longer fits (RFC 1191 §6.5): this is not a
                    // congestion signal, so cwnd is left alone.
                    if self.rec.sb.mark_oversized_lost(dm) > 0 {
                        self.rec.force_rexmit = true;
                    }
                }
                let _ = now;
            }
        }
        true
    }

    // ---------------------------------------------------------------- segment arrival

    /// RFC 9293 §3.10.7: a segment for this connection arrived.
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        self.stats.segments_received += 1;
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent => return self.on_segment_syn_sent(now, seg),
            _ => {}
        }
        if self.state == State::SynReceived && seg.flags.syn() && seg.seq == self.rcv.irs {
            self.timers.last_rx = now;
            if !seg.flags.ack() {
                // The peer retransmitted its SYN: our SYN-ACK was lost, and the one we resend
                // is a retransmission like a timer's (RFC 6298 §3 Karn: the handshake's ACK
                // may answer either copy, so it gives no RTT sample).
                self.syn.pending = true;
                self.syn.retransmitted = true;
                return;
            }
            if seg.ack == self.snd.max {
                // Simultaneous open: the peer's SYN-ACK acknowledges our SYN.
                self.snd.una = seg.ack;
                self.timers[Timer::Rto] = None;
                self.establish();
                self.ack.now = true;
                return;
            }
        }

        // RFC 7323 §5.3 R1: PAWS.
        if self.enabled.timestamps && !seg.flags.rst() {
            if let Some(ts) = seg.timestamp {
                let stale = now.saturating_duration_since(self.rcv.ts_recent_at) > PAWS_IDLE;
                if (ts.tsval.wrapping_sub(self.rcv.ts_recent) as i32) < 0 && !stale {
                    self.stats.paws_drops += 1;
                    self.ack_invalid(now, seg);
                    return;
                }
            }
        }

        // RFC 9293 §3.10.7.4 first: is the segment acceptable?
        if !self.acceptable(seg) {
            if seg.flags.rst() {
                return;
            }
            if self.state == State::TimeWait && seg.flags.fin() {
                // RFC 9293 §3.10.7.4 eighth: ACK a retransmitted FIN, restart 2 MSL.
                self.timers[Timer::TimeWait] = Some(now + self.cfg.time_wait);
            }
            self.stats.unacceptable_segments += 1;
            if self.enabled.sack && seg.payload_len > 0 && seg.seq + seg.payload_len <= self.rcv.nxt
            {
                // RFC 2883 §4: report a duplicate segment.
                self.ack.dsack = Some(SackBlock {
                    start: seg.seq,
                    end: seg.seq + seg.payload_len,
                });
            }
            self.ack_invalid(now, seg);
            return;
        }

        // Only a segment that passed PAWS and the acceptability test shows the peer is alive
        // (an old or forged one must not keep a dead connection open).
        self.timers.last_rx = now;
        self.timers.keepalive_probes = 0;

        // RFC 7323 §4.3: remember the peer's timestamp.
        if let Some(ts) = seg.timestamp {
            if self.enabled.timestamps
                && (ts.tsval.wrapping_sub(self.rcv.ts_recent) as i32) >= 0
                && seg.seq <= self.rcv.last_ack_sent
            {
                self.rcv.ts_recent = ts.tsval;
                self.rcv.ts_recent_at = now;
            }
        }

        // Second: RST.
        if seg.flags.rst() {
            self.on_rst(now, seg);
            return;
        }

        // Fourth: SYN. RFC 5961 §4.2: any SYN in a synchronized state draws a challenge ACK.
        if seg.flags.syn() {
            self.challenge_ack(now);
            return;
        }

        // Fifth: ACK.
        if !seg.flags.ack() {
            return;
        }
        if self.state == State::SynReceived {
            if seg.ack > self.snd.una && seg.ack <= self.snd.max {
                self.snd.una = seg.ack;
                self.timers[Timer::Rto] = None;
                self.rec.retries = 0;
                self.handshake_rtt_sample(now, seg);
                self.snd.wnd = usize::from(seg.window) << self.snd.wscale;
                self.snd.max_wnd = self.snd.wnd;
                self.snd.wl1 = seg.seq;
                self.snd.wl2 = seg.ack;
                self.establish();
            } else {
                // RFC 9293 §3.10.7.4 fifth: <SEQ=SEG.ACK><CTL=RST>.
                self.queue_rst(seg.ack, None);
                return;
            }
        }
        if !self.on_ack(now, seg) {
            return;
        }

        // Seventh: segment text.
        self.on_text(now, seg, payload);

        // Eighth: FIN.
        if seg.flags.fin() {
            let fin_seq = seg.seq + seg.payload_len;
            if fin_seq >= self.rcv.nxt {
                self.rcv.ooo_fin = Some(fin_seq);
            }
            if self.state == State::TimeWait {
                self.timers[Timer::TimeWait] = Some(now + self.cfg.time_wait);
                self.ack.now = true;
            }
        }
        self.take_fin(now);
    }

    // ---------------------------------------------------------------- transmission

    /// The next segment to send, if any; its payload is appended to `payload`.
    pub fn poll_transmit(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpRepr> {
        let seg = self.next_segment(now, payload)?;
        self.stats.segments_sent += 1;
        Some(seg)
    }

    fn next_segment(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpRepr> {
        if let Some(r) = self.ctl_replies.pop_front() {
            return Some(r);
        }
        if self.rst_pending {
            self.rst_pending = false;
            // RFC 9293 §3.10.5: <SEQ=SND.NXT><CTL=RST>, with an ACK as Linux sends it.
            let mut r = self.header(now, self.snd.max, Flags::RST | Flags::ACK);
            r.sack = SackBlocks::default();
            r.window = 0;
            return Some(r);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived => return self.syn_segment(now),
            State::TimeWait if self.timers.tw_skip && !self.ack.now => {
                self.state = State::Closed;
                return None;
            }
            _ => {}
        }
        if let Some(seg) = self.data_segment(now, payload) {
            return Some(seg);
        }
        self.update_persist(now);
        if self.timers.persist_due || self.timers.keepalive_due {
            if self.timers.persist_due {
                self.stats.zero_window_probes += 1;
                self.timers.persist_probes += 1;
                self.timers.persist_since.get_or_insert(now);
            } else {
                self.stats.keepalive_probes += 1;
            }
            self.timers.persist_due = false;
            self.timers.keepalive_due = false;
            // A probe the peer must answer: one sequence number below SND.UNA (as Linux).
            return Some(self.header(now, self.snd.una - 1, Flags::ACK));
        }
        if self.ack.now {
            return Some(self.header(now, self.snd.max, Flags::ACK));
        }
        None
    }

    /// A header with ACK, window, timestamps and SACK blocks filled in; sending it clears any
    /// pending ACK.
    fn header(&mut self, now: Instant, seq: SeqNumber, flags: Flags) -> TcpRepr {
        let mut r = TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq,
            flags,
            ..TcpRepr::default()
        };
        if self.enabled.timestamps {
            r.timestamp = Some(Timestamp {
                tsval: self.ts_now(now),
                tsecr: self.rcv.ts_recent,
            });
        }
        if flags.ack() {
            r.ack = self.rcv.nxt;
            r.window = self.advertise_window();
            self.rcv.last_ack_sent = self.rcv.nxt;
            self.ack.now = false;
            self.timers[Timer::DelayedAck] = None;
            self.ack.segs_unacked = 0;
            if self.enabled.sack && !flags.syn() {
                self.sack_blocks(&mut r.sack);
            }
        }
        r
    }

    /// The application read from or wrote to the shared rings on its own: send new data and
    /// any window update due.
    pub fn on_app_io(&mut self) {
        self.maybe_window_update();
    }

    /// Hands the application's sides of the send and receive rings to the runtime; from then
    /// on `send` and `recv` take and give nothing, and events are edges for the runtime.
    pub fn take_app_io(&mut self) -> Option<AppIo> {
        let send = self.snd.buf.take_writer()?;
        let recv = self.rcv.buf.take_reader()?;
        Some(AppIo { send, recv })
    }
}

#[cfg(test)]
mod tests;
