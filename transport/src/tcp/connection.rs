//! One TCP connection: the RFC 9293 state machine with its send and receive buffers, timers,
//! loss recovery and congestion control. Sans-IO: it takes segments and `now`, and hands out
//! segments (`poll_transmit`), its next deadline (`poll_deadline`) and events (`poll_event`).
//!
//! Sequence space on the send side: `iss` is the SYN; data starts at `iss + 1` and is held in
//! `send` from `data_start` (the first unacknowledged data byte) on; a FIN, once queued,
//! follows the last byte. Every segment sent and not yet acknowledged (SYN aside) sits in the
//! scoreboard, from which retransmissions are chosen.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_network::endpoint::{IcmpErrorKind, SocketIcmpError};

use super::congestion::{initial_window, new_controller, CongestionControl};
use super::recv_buffer::RecvBuffer;
use super::ring::{Consumer, Producer};
use super::rtt::RttEstimator;
use super::sack::{Acked, Scoreboard, SentSegment, DUP_THRESH};
use super::segment::{Flags, SackBlock, SackBlocks, TcpRepr, Timestamp, MAX_WINDOW_SCALE};
use super::send_buffer::SendBuffer;
use super::seq::SeqNumber;
use super::stats::ConnStats;
use super::{FourTuple, SocketOptions, TcpConfig, TcpError};

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
/// IPv4 + TCP headers without options.
const HEADERS: usize = 40;
/// Timestamps option with its two NOPs.
const TS_OPT_LEN: usize = 12;
/// RFC 7323 §5.5: a TS.Recent older than 24 days is no longer a PAWS reference.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);
/// Minimum spacing of the ACKs answering empty invalid segments (Linux: tcp_invalid_ratelimit).
const INVALID_ACK_INTERVAL: Duration = Duration::from_millis(500);
/// Pending control replies (RSTs) a connection queues; more are dropped.
const MAX_CTL_REPLIES: usize = 4;

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

#[derive(Debug)]
pub struct Connection {
    tuple: FourTuple,
    state: State,
    cfg: Arc<TcpConfig>,
    opts: SocketOptions,
    epoch: Instant,
    ts_offset: u32,

    // Send side (RFC 9293 §3.3.1 names).
    iss: SeqNumber,
    snd_una: SeqNumber,
    /// Highest sequence number sent plus one (SND.NXT; retransmissions come from the
    /// scoreboard, so it never moves back).
    snd_max: SeqNumber,
    snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    max_snd_wnd: usize,
    snd_wscale: u8,
    send: SendBuffer,
    data_start: SeqNumber,
    fin_queued: bool,
    fin_acked: bool,
    /// MSS for the path: min(peer's MSS, path MTU − 40).
    peer_mss: usize,
    path_mss: usize,

    // Receive side.
    irs: SeqNumber,
    rcv_nxt: SeqNumber,
    rcv_wscale: u8,
    /// Right edge of the window last advertised; it never moves left (RFC 9293 §3.8.6).
    rcv_adv: SeqNumber,
    recv: RecvBuffer,
    fin_received: bool,
    ooo_fin: Option<SeqNumber>,

    // Options.
    ws_enabled: bool,
    ts_enabled: bool,
    sack_enabled: bool,
    ts_recent: u32,
    ts_recent_at: Instant,
    last_ack_sent: SeqNumber,

    // Reliability.
    rtt: RttEstimator,
    rto_deadline: Option<Instant>,
    retries: u32,
    syn_pending: bool,
    syn_sent_at: Option<Instant>,
    syn_last_sent: Option<Instant>,
    syn_retransmitted: bool,
    sb: Scoreboard,
    dupacks: usize,
    in_recovery: bool,
    recovery_point: SeqNumber,
    /// RFC 6582 §3.2 "recover": no new recovery for dup ACKs of data sent before it.
    recover: SeqNumber,
    recovery_started: Instant,
    /// Bytes that duplicate ACKs say left the network, for peers without SACK.
    reno_sacked: usize,
    /// Send the first lost segment even if pipe ≥ cwnd (RFC 6675 §5 step 4.2).
    force_rexmit: bool,
    /// RFC 6675 §4 RescueRxt: the recovery point of the last rescue retransmission.
    rescue_rxt: Option<SeqNumber>,
    cc: Box<dyn CongestionControl>,
    unacked_since: Option<Instant>,
    /// When new data last went out, for RFC 5681 §4.1 restart after idle.
    last_send: Option<Instant>,
    /// How fully the current window used cwnd (RFC 7661 §4.4, as Linux tracks it): whether a
    /// send was held back by cwnd, and the largest flight, since `cwnd_usage_seq` was sent.
    cwnd_limited: bool,
    max_flight: usize,
    cwnd_usage_seq: SeqNumber,

    // ACK generation.
    ack_now: bool,
    delack_deadline: Option<Instant>,
    segs_unacked: u32,
    dsack: Option<SackBlock>,
    challenge_window: Option<Instant>,
    challenge_count: u32,
    last_invalid_ack: Option<Instant>,

    // Other timers.
    persist_deadline: Option<Instant>,
    persist_backoff: u32,
    persist_due: bool,
    /// The payload per wire segment of the last segment `poll_transmit` returned when it was
    /// an offloaded burst of several (0 otherwise): the device cuts it at this size.
    burst_segment: usize,
    /// Zero-window probes the peer has not answered, and when the first of them went out
    /// (RFC 1122 §4.2.2.17: probe only while the peer answers).
    persist_probes: u32,
    persist_since: Option<Instant>,
    /// RFC 8985 §7 tail loss probe: its timer, a probe due, and one probe per episode.
    tlp_deadline: Option<Instant>,
    tlp_due: bool,
    tlp_out: bool,
    keepalive_probes: u32,
    /// When the last keepalive probe went out: the next waits an interval from it.
    keepalive_probe_at: Option<Instant>,
    keepalive_due: bool,
    last_rx: Instant,
    tw_deadline: Option<Instant>,
    /// The endpoint's TIME-WAIT table is full: close once the last ACK is out.
    tw_skip: bool,
    fw2_deadline: Option<Instant>,

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
    passive: bool,
    stats: ConnStats,
}

fn window_shift_for(buf: usize) -> u8 {
    let mut s = 0;
    while s < MAX_WINDOW_SCALE && (buf >> s) > 65535 {
        s += 1;
    }
    s
}

impl Connection {
    fn new(now: Instant, p: ConnParams) -> Connection {
        let send_cap = p.opts.send_buffer.unwrap_or(p.config.send_buffer).max(1);
        let recv_cap = p.opts.recv_buffer.unwrap_or(p.config.recv_buffer).max(1);
        let mss = usize::from(p.config.mss);
        Connection {
            tuple: p.tuple,
            state: State::Closed,
            epoch: p.epoch,
            ts_offset: p.ts_offset,
            iss: p.iss,
            snd_una: p.iss,
            snd_max: p.iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: p.iss,
            max_snd_wnd: 0,
            snd_wscale: 0,
            send: SendBuffer::new(send_cap),
            data_start: p.iss + 1,
            fin_queued: false,
            fin_acked: false,
            peer_mss: DEFAULT_PEER_MSS,
            path_mss: mss,
            irs: SeqNumber(0),
            rcv_nxt: SeqNumber(0),
            rcv_wscale: if p.opts.window_scaling {
                window_shift_for(recv_cap)
            } else {
                0
            },
            rcv_adv: SeqNumber(0),
            recv: RecvBuffer::new(recv_cap, p.config.max_ooo_ranges),
            fin_received: false,
            ooo_fin: None,
            ws_enabled: false,
            ts_enabled: false,
            sack_enabled: false,
            ts_recent: 0,
            ts_recent_at: now,
            last_ack_sent: SeqNumber(0),
            rtt: RttEstimator::new(p.config.initial_rto, p.config.min_rto, p.config.max_rto),
            rto_deadline: None,
            retries: 0,
            syn_pending: false,
            syn_sent_at: None,
            syn_last_sent: None,
            syn_retransmitted: false,
            sb: Scoreboard::default(),
            dupacks: 0,
            in_recovery: false,
            recovery_point: p.iss,
            recover: p.iss,
            recovery_started: now,
            reno_sacked: 0,
            force_rexmit: false,
            rescue_rxt: None,
            cc: new_controller(p.opts.congestion, mss),
            unacked_since: None,
            last_send: None,
            cwnd_limited: false,
            max_flight: 0,
            cwnd_usage_seq: p.iss,
            ack_now: false,
            delack_deadline: None,
            segs_unacked: 0,
            dsack: None,
            challenge_window: None,
            challenge_count: 0,
            last_invalid_ack: None,
            persist_deadline: None,
            persist_backoff: 0,
            persist_due: false,
            burst_segment: 0,
            persist_probes: 0,
            persist_since: None,
            tlp_deadline: None,
            tlp_due: false,
            tlp_out: false,
            keepalive_probes: 0,
            keepalive_probe_at: None,
            keepalive_due: false,
            last_rx: now,
            tw_deadline: None,
            tw_skip: false,
            fw2_deadline: None,
            events: VecDeque::new(),
            readable_signaled: false,
            writable_wanted: false,
            user_closed: false,
            error: None,
            soft_error: None,
            rst_pending: false,
            ctl_replies: VecDeque::new(),
            passive: false,
            stats: ConnStats::default(),
            cfg: p.config,
            opts: p.opts,
        }
    }

    /// Active open (RFC 9293 §3.10.1): SYN-SENT with a SYN to send.
    pub fn connect(now: Instant, p: ConnParams) -> Connection {
        let mut c = Connection::new(now, p);
        c.state = State::SynSent;
        c.syn_pending = true;
        c
    }

    /// Passive open from a listener's SYN (RFC 9293 §3.10.7.2): SYN-RECEIVED with a SYN-ACK to
    /// send. Options are enabled only when the SYN offered them.
    pub fn accept(now: Instant, p: ConnParams, syn: &TcpRepr) -> Connection {
        let mut c = Connection::new(now, p);
        c.passive = true;
        c.state = State::SynReceived;
        c.syn_pending = true;
        c.take_peer_syn(now, syn);
        c.negotiate(syn);
        c
    }

    /// A connection rebuilt from a valid SYN cookie carried by `ack` (RFC 4987 §3.6):
    /// ESTABLISHED at once. `mss`, `window_scale` and `sack` come from the cookie.
    pub fn from_cookie(
        now: Instant,
        p: ConnParams,
        ack: &TcpRepr,
        mss: u16,
        window_scale: Option<u8>,
        sack: bool,
    ) -> Connection {
        let mut c = Connection::new(now, p);
        c.passive = true;
        let syn = TcpRepr {
            seq: ack.seq - 1,
            mss: Some(mss),
            window_scale,
            sack_permitted: sack,
            timestamp: ack.timestamp.map(|t| Timestamp {
                tsval: t.tsval,
                tsecr: 0,
            }),
            window: ack.window,
            ..TcpRepr::default()
        };
        c.take_peer_syn(now, &syn);
        c.negotiate(&syn);
        c.snd_max = c.iss + 1;
        c.snd_una = c.iss + 1;
        c.snd_wnd = usize::from(ack.window) << c.snd_wscale;
        c.max_snd_wnd = c.snd_wnd;
        c.snd_wl1 = ack.seq;
        c.snd_wl2 = ack.ack;
        c.rcv_adv = c.rcv_nxt;
        c.establish();
        c
    }

    fn take_peer_syn(&mut self, now: Instant, syn: &TcpRepr) {
        self.irs = syn.seq;
        self.rcv_nxt = syn.seq + 1;
        self.rcv_adv = self.rcv_nxt;
        self.last_ack_sent = self.rcv_nxt;
        self.snd_wnd = usize::from(syn.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = syn.seq;
        if let Some(ts) = syn.timestamp {
            self.ts_recent = ts.tsval;
            self.ts_recent_at = now;
        }
    }

    /// Enables the options both sides offered (RFC 7323 §1.3, RFC 2018 §2) and fixes the MSS.
    fn negotiate(&mut self, syn: &TcpRepr) {
        self.ws_enabled = self.opts.window_scaling && syn.window_scale.is_some();
        if self.ws_enabled {
            self.snd_wscale = syn.window_scale.unwrap_or(0);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.ts_enabled = self.opts.timestamps && syn.timestamp.is_some();
        self.sack_enabled = self.opts.sack && syn.sack_permitted;
        // RFC 9293 §3.7.1: send no segment larger than the peer's MSS.
        self.peer_mss = syn.mss.map_or(DEFAULT_PEER_MSS, usize::from).max(64);
        self.cc.set_mss(self.data_mss());
    }

    // ---------------------------------------------------------------- accessors

    pub fn state(&self) -> State {
        self.state
    }
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }
    pub fn rcv_nxt(&self) -> SeqNumber {
        self.rcv_nxt
    }
    pub fn snd_una(&self) -> SeqNumber {
        self.snd_una
    }
    pub fn snd_nxt(&self) -> SeqNumber {
        self.snd_max
    }
    pub fn iss(&self) -> SeqNumber {
        self.iss
    }
    pub fn is_passive(&self) -> bool {
        self.passive
    }
    pub fn error(&self) -> Option<TcpError> {
        self.error
    }
    pub fn cwnd(&self) -> usize {
        self.cc.cwnd()
    }
    pub fn ssthresh(&self) -> usize {
        self.cc.ssthresh()
    }
    pub fn rto(&self) -> Duration {
        self.rtt.rto()
    }
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt()
    }
    pub fn snd_wnd(&self) -> usize {
        self.snd_wnd
    }
    pub fn in_recovery(&self) -> bool {
        self.in_recovery
    }
    /// Which TCP options the handshake enabled (both ends offered them).
    pub fn options_enabled(&self) -> EnabledOptions {
        EnabledOptions {
            window_scaling: self.ws_enabled,
            timestamps: self.ts_enabled,
            sack: self.sack_enabled,
        }
    }
    /// Bytes buffered for sending (unacknowledged plus unsent).
    pub fn send_queued(&self) -> usize {
        self.send.len()
    }
    /// Bytes buffered for reading, in order plus out of order.
    pub fn recv_queued(&self) -> usize {
        self.recv.readable() + self.recv.ooo_bytes()
    }
    /// In-order bytes `recv` can return now.
    pub fn readable(&self) -> usize {
        self.recv.readable()
    }
    /// Bytes `send` would take now (0 after shutdown or close).
    pub fn send_space(&self) -> usize {
        if self.fin_queued || self.user_closed || self.error.is_some() {
            0
        } else {
            self.send.free()
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
        self.recv.capacity()
    }
    pub fn send_capacity(&self) -> usize {
        self.send.capacity()
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
        s.srtt_us = self.rtt.srtt().map_or(0, |d| d.as_micros() as u64);
        s.rttvar_us = self.rtt.rttvar().as_micros() as u64;
        s.rto_us = self.rtt.rto().as_micros() as u64;
        s.cwnd = self.cc.cwnd() as u64;
        s.ssthresh = self.cc.ssthresh().min(u64::MAX as usize) as u64;
        s.snd_wnd = self.snd_wnd as u64;
        s.rcv_wnd = self.rcv_adv.since(self.rcv_nxt) as u64;
        s
    }

    /// When the segment `poll_transmit` just returned is an offloaded burst: the payload per
    /// segment the device is to cut it into (`TcpConfig::segment_offload`).
    pub fn burst_segment(&self, payload_len: usize) -> Option<usize> {
        (self.burst_segment > 0 && payload_len > self.burst_segment).then_some(self.burst_segment)
    }

    /// SMSS: the data a segment with the options every segment carries (timestamps) may hold.
    /// Congestion control and the window logic count in these.
    fn data_mss(&self) -> usize {
        let mss = self.peer_mss.min(self.path_mss);
        // RFC 6691: options come out of the MSS.
        let opt = if self.ts_enabled { TS_OPT_LEN } else { 0 };
        mss.saturating_sub(opt).max(1)
    }

    /// Payload for the next segment: the MSS less the SACK blocks it will carry (RFC 6691:
    /// every option comes out of the MSS, or the packet outgrows the path MTU).
    fn seg_mss(&self) -> usize {
        self.data_mss()
            .saturating_sub(self.sack_option_len())
            .max(1)
    }

    fn max_sack_blocks(&self) -> usize {
        if self.ts_enabled {
            3
        } else {
            4
        }
    }

    /// Bytes the SACK option of the next ACK will take (NOP, NOP, kind, length, blocks).
    fn sack_option_len(&self) -> usize {
        if !self.sack_enabled {
            return 0;
        }
        let n = (usize::from(self.dsack.is_some()) + self.recv.ooo_ranges())
            .min(self.max_sack_blocks());
        if n == 0 {
            0
        } else {
            4 + 8 * n
        }
    }

    fn ts_now(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_millis() as u32).wrapping_add(self.ts_offset)
    }

    fn send_end(&self) -> SeqNumber {
        self.data_start + self.send.len()
    }

    fn flight(&self) -> usize {
        self.snd_max.since(self.snd_una)
    }

    fn pipe(&self) -> usize {
        self.sb.pipe().saturating_sub(self.reno_sacked)
    }

    // ---------------------------------------------------------------- socket calls

    /// Buffers `data`; returns how much was taken (0 when the buffer is full).
    pub fn send(&mut self, data: &[u8]) -> Result<usize, TcpError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.fin_queued || self.user_closed {
            return Err(TcpError::BrokenPipe);
        }
        match self.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed | State::Listen => return Err(TcpError::NotConnected),
            _ => return Err(TcpError::BrokenPipe),
        }
        let n = self.send.write(data);
        if n < data.len() {
            self.writable_wanted = true;
        }
        Ok(n)
    }

    /// Reads in-order data. `Ok(0)` is end of stream; `WouldBlock` means nothing yet.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, TcpError> {
        self.readable_signaled = false;
        if self.recv.readable() > 0 {
            let n = self.recv.read(buf);
            self.maybe_window_update();
            if matches!(self.state, State::TimeWait | State::Closed) {
                self.recv.release_if_drained();
            }
            return Ok(n);
        }
        if self.fin_received {
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
        if self.fin_queued {
            return;
        }
        match self.state {
            // The FIN waits for the handshake (RFC 9293 §3.10.4 queues it behind SENDs).
            State::SynSent | State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
        if self.fin_queued {
            self.send.freeze();
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
        if self.opts.linger_zero || self.recv.readable() > 0 {
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
            self.fw2_deadline = Some(now + self.cfg.fin_wait2_timeout);
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
        self.send.release();
        self.sb = Scoreboard::default();
        self.recv.release_if_drained();
    }

    fn clear_timers(&mut self) {
        self.rto_deadline = None;
        self.tlp_deadline = None;
        self.delack_deadline = None;
        self.persist_deadline = None;
        self.tw_deadline = None;
        self.fw2_deadline = None;
        self.unacked_since = None;
        self.persist_since = None;
        self.ack_now = false;
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
        if self.recv.is_detached() || !self.readable_signaled {
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
            seq == self.iss
        } else {
            seq >= self.snd_una && seq < self.snd_max
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
                if mss < self.path_mss {
                    self.path_mss = mss;
                    let dm = self.data_mss();
                    self.cc.set_mss(dm);
                    // Resend at once what no longer fits (RFC 1191 §6.5): this is not a
                    // congestion signal, so cwnd is left alone.
                    if self.sb.mark_oversized_lost(dm) > 0 {
                        self.force_rexmit = true;
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
        if self.state == State::SynReceived && seg.flags.syn() && seg.seq == self.irs {
            self.last_rx = now;
            if !seg.flags.ack() {
                // The peer retransmitted its SYN: our SYN-ACK was lost, and the one we resend
                // is a retransmission like a timer's (RFC 6298 §3 Karn: the handshake's ACK
                // may answer either copy, so it gives no RTT sample).
                self.syn_pending = true;
                self.syn_retransmitted = true;
                return;
            }
            if seg.ack == self.snd_max {
                // Simultaneous open: the peer's SYN-ACK acknowledges our SYN.
                self.snd_una = seg.ack;
                self.rto_deadline = None;
                self.establish();
                self.ack_now = true;
                return;
            }
        }

        // RFC 7323 §5.3 R1: PAWS.
        if self.ts_enabled && !seg.flags.rst() {
            if let Some(ts) = seg.timestamp {
                let stale = now.saturating_duration_since(self.ts_recent_at) > PAWS_IDLE;
                if (ts.tsval.wrapping_sub(self.ts_recent) as i32) < 0 && !stale {
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
                self.tw_deadline = Some(now + self.cfg.time_wait);
            }
            self.stats.unacceptable_segments += 1;
            if self.sack_enabled && seg.payload_len > 0 && seg.seq + seg.payload_len <= self.rcv_nxt
            {
                // RFC 2883 §4: report a duplicate segment.
                self.dsack = Some(SackBlock {
                    start: seg.seq,
                    end: seg.seq + seg.payload_len,
                });
            }
            self.ack_invalid(now, seg);
            return;
        }

        // Only a segment that passed PAWS and the acceptability test shows the peer is alive
        // (an old or forged one must not keep a dead connection open).
        self.last_rx = now;
        self.keepalive_probes = 0;

        // RFC 7323 §4.3: remember the peer's timestamp.
        if let Some(ts) = seg.timestamp {
            if self.ts_enabled
                && (ts.tsval.wrapping_sub(self.ts_recent) as i32) >= 0
                && seg.seq <= self.last_ack_sent
            {
                self.ts_recent = ts.tsval;
                self.ts_recent_at = now;
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
            if seg.ack > self.snd_una && seg.ack <= self.snd_max {
                self.snd_una = seg.ack;
                self.rto_deadline = None;
                self.retries = 0;
                self.handshake_rtt_sample(now, seg);
                self.snd_wnd = usize::from(seg.window) << self.snd_wscale;
                self.max_snd_wnd = self.snd_wnd;
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
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
            if fin_seq >= self.rcv_nxt {
                self.ooo_fin = Some(fin_seq);
            }
            if self.state == State::TimeWait {
                self.tw_deadline = Some(now + self.cfg.time_wait);
                self.ack_now = true;
            }
        }
        self.take_fin(now);
    }

    fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 9293 §3.10.7.3.
        let mut ack_ok = false;
        if seg.flags.ack() {
            if seg.ack <= self.iss || seg.ack > self.snd_max {
                if !seg.flags.rst() {
                    self.queue_rst(seg.ack, None);
                }
                return;
            }
            ack_ok = true;
        }
        if seg.flags.rst() {
            // RFC 5961 §3.2 keeps RFC 793's rule here: a RST is valid in SYN-SENT when it
            // acknowledges our SYN.
            if ack_ok {
                self.fail(TcpError::ConnectionRefused);
            }
            return;
        }
        if !seg.flags.syn() {
            return;
        }
        self.last_rx = now;
        self.take_peer_syn(now, seg);
        self.negotiate(seg);
        if ack_ok {
            self.snd_una = seg.ack;
            self.snd_wl2 = seg.ack;
            self.rto_deadline = None;
            self.retries = 0;
            self.handshake_rtt_sample(now, seg);
            self.rtt.reset_backoff();
            self.establish();
            self.ack_now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 7): SYN-RECEIVED, resend our SYN
            // with an ACK.
            self.state = State::SynReceived;
            self.syn_pending = true;
        }
    }

    fn establish(&mut self) {
        self.state = if self.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        // RFC 6928 §2: the initial window from the MSS the connection actually uses; RFC 5681
        // §3.1: one segment if our SYN (or SYN-ACK) had to be sent again.
        let mss = self.data_mss();
        let iw = if self.syn_retransmitted {
            mss
        } else {
            initial_window(mss)
        };
        self.cc.set_initial_window(mss, iw);
        if self.syn_retransmitted {
            // RFC 6298 §5.7: without an RTT sample, data starts with a 3 s RTO.
            self.rtt.reset_after_syn_loss();
        }
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt);
        self.push_event(Event::Connected);
    }

    /// RFC 9293 §3.10.7.4 first check, with its four cases.
    fn acceptable(&self, seg: &TcpRepr) -> bool {
        let wnd = self.recv.window().max(self.rcv_adv.since(self.rcv_nxt));
        let len = seg.seq_len();
        let start = seg.seq;
        let edge = self.rcv_nxt + wnd;
        match (len, wnd) {
            (0, 0) => start == self.rcv_nxt,
            (0, _) => start.in_range(self.rcv_nxt, edge),
            // A zero window still takes ACKs and RSTs at RCV.NXT; the data is trimmed away.
            (_, 0) => start == self.rcv_nxt,
            (_, _) => {
                start.in_range(self.rcv_nxt, edge)
                    || (start + (len - 1)).in_range(self.rcv_nxt, edge)
            }
        }
    }

    fn on_rst(&mut self, _now: Instant, seg: &TcpRepr) {
        if self.state == State::TimeWait {
            // RFC 1337: TIME-WAIT ignores RST, against TIME-WAIT assassination.
            return;
        }
        if seg.seq != self.rcv_nxt {
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
    fn ack_invalid(&mut self, now: Instant, seg: &TcpRepr) {
        if seg.seq_len() == 0 {
            if self
                .last_invalid_ack
                .is_some_and(|t| now.saturating_duration_since(t) < INVALID_ACK_INTERVAL)
            {
                self.stats.invalid_acks_suppressed += 1;
                return;
            }
            self.last_invalid_ack = Some(now);
        }
        self.ack_now = true;
    }

    /// RFC 5961 §7: challenge ACKs are rate-limited per connection.
    fn challenge_ack(&mut self, now: Instant) {
        match self.challenge_window {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.challenge_window = Some(now);
                self.challenge_count = 0;
            }
        }
        if self.challenge_count < self.cfg.challenge_ack_limit {
            self.challenge_count += 1;
            self.stats.challenge_acks += 1;
            self.ack_now = true;
        } else {
            self.stats.challenge_acks_suppressed += 1;
        }
    }

    fn queue_rst(&mut self, seq: SeqNumber, ack: Option<SeqNumber>) {
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

    /// The first RTT sample: from the echoed timestamp, else from the SYN's send time unless
    /// it was retransmitted (Karn).
    fn handshake_rtt_sample(&mut self, now: Instant, seg: &TcpRepr) {
        // The SYN is one segment; Karn's rule and the echo check apply to it as to data.
        let acked = match (self.syn_retransmitted, self.syn_sent_at) {
            (false, t) => Acked {
                rtt_sample_from: t,
                ..Acked::default()
            },
            (true, _) => Acked {
                last_resend: self.syn_last_sent,
                ..Acked::default()
            },
        };
        self.ack_rtt_sample(now, seg, &acked);
    }

    /// One RTT sample per ACK of new data, never one that measures a recovery instead of the
    /// path:
    /// - timestamps (RFC 7323 §4.1) unless the echo predates a resend of the acknowledged data
    ///   (the ACK answered the resend but echoes the first copy, whose ACK was lost);
    /// - else the newest acknowledged segment never resent (Karn, RFC 6298 §3), unless the ACK
    ///   also covers a resent one or it was sent before the current recovery began (either way
    ///   it waited behind a hole).
    fn ack_rtt_sample(&mut self, now: Instant, seg: &TcpRepr, acked: &Acked) {
        if let (Some(ts), true) = (seg.timestamp, self.ts_enabled) {
            let fresh = acked
                .last_resend
                .is_none_or(|t| (ts.tsecr.wrapping_sub(self.ts_now(t)) as i32) >= 0);
            if fresh && self.ts_rtt_sample(now, seg) {
                return;
            }
        }
        // An ACK that also covers a resent segment was held back by that hole: the newer
        // segments it covers waited for the repair, so their send times say nothing of the path.
        let since_recovery = |t: Instant| !self.in_recovery || t >= self.recovery_started;
        let unblocked = acked.last_resend.is_none();
        if let Some(t) = acked
            .rtt_sample_from
            .filter(|t| unblocked && since_recovery(*t))
        {
            self.rtt.sample(now.saturating_duration_since(t));
        }
    }

    fn ts_rtt_sample(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        // RFC 7323 §4.1: RTTM from the echoed timestamp of an ACK of new data.
        match seg.timestamp {
            Some(ts) if self.ts_enabled && ts.tsecr != 0 => {
                let ms = self.ts_now(now).wrapping_sub(ts.tsecr);
                if ms < 60_000 {
                    self.rtt.sample(Duration::from_millis(u64::from(ms)));
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    /// RFC 9293 §3.10.7.4 fifth check in the synchronized states. Returns false when the
    /// segment must be dropped.
    fn on_ack(&mut self, now: Instant, seg: &TcpRepr) -> bool {
        let ack = seg.ack;
        // RFC 5961 §5.2: acceptable ACKs lie in SND.UNA − MAX.SND.WND ..= SND.NXT.
        if ack > self.snd_max || ack < self.snd_una - self.max_snd_wnd.max(1) {
            self.challenge_ack(now);
            return false;
        }
        // An acceptable ACK answers any zero-window probe.
        self.persist_probes = 0;
        self.persist_since = None;
        let wnd = usize::from(seg.window) << self.snd_wscale;
        let window_changed = wnd != self.snd_wnd;
        // RFC 9293 §3.10.7.4: update the window from newer segments only. An ACK that moves
        // SND.UNA counts as newer (as Linux has it): its window is relative to that ACK, and
        // keeping the old SND.WND while SND.UNA moves would stretch the edge past what the
        // peer offered (a retransmitted segment, below WL1, carries such ACKs).
        if ack > self.snd_una
            || (ack == self.snd_una
                && (self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack)))
        {
            if wnd > self.snd_wnd {
                self.persist_backoff = 0;
            }
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
            self.max_snd_wnd = self.max_snd_wnd.max(wnd);
        }

        let mut sack_new = false;
        if self.sack_enabled {
            for (i, b) in seg.sack.iter().enumerate() {
                self.stats.sack_blocks_received += 1;
                // RFC 2883 §4: a first block below the ACK, or inside the second, is a D-SACK.
                if i == 0
                    && (b.end <= ack
                        || seg
                            .sack
                            .iter()
                            .nth(1)
                            .is_some_and(|o| b.start >= o.start && b.end <= o.end))
                {
                    self.stats.dsack_blocks_received += 1;
                    continue;
                }
                if b.start < b.end && b.start >= ack && b.end <= self.snd_max {
                    sack_new |= self.sb.apply_sack(b);
                }
            }
        }

        if ack > self.snd_una {
            self.on_new_ack(now, seg);
        } else if ack == self.snd_una
            && !self.sb.is_empty()
            && seg.payload_len == 0
            && !seg.flags.syn()
            && !seg.flags.fin()
            && (!window_changed || sack_new)
        {
            // RFC 5681 §2: a duplicate acknowledgment.
            self.dupacks += 1;
            self.stats.dup_acks += 1;
            if !self.sack_enabled {
                // Each duplicate ACK says a segment left the network (RFC 3042 / RFC 6582
                // cwnd inflation, expressed as pipe).
                let cap = self.flight().saturating_sub(self.data_mss());
                self.reno_sacked = (self.reno_sacked + self.data_mss()).min(cap);
            }
        }
        if self.sack_enabled && sack_new {
            self.sb.mark_lost(self.data_mss());
        }
        if !self.in_recovery
            && !self.sb.is_empty()
            && (self.dupacks >= DUP_THRESH || (self.sack_enabled && self.sb.first_is_lost()))
            && self.snd_una > self.recover
        {
            self.enter_recovery(now);
        }

        match self.state {
            State::FinWait1 if self.fin_acked => {
                self.state = State::FinWait2;
                if self.user_closed {
                    self.fw2_deadline = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked => self.enter_time_wait(now),
            State::LastAck if self.fin_acked => {
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

    fn on_new_ack(&mut self, now: Instant, seg: &TcpRepr) {
        let ack = seg.ack;
        let acked = self.sb.ack(ack);
        let data_end = self.send_end();
        let data_acked = ack.min(data_end).since(self.data_start);
        self.send.consume(data_acked);
        self.data_start += data_acked;
        if acked.fin_acked || (self.fin_queued && ack > data_end) {
            self.fin_acked = true;
        }
        let newly = ack.since(self.snd_una);
        self.snd_una = ack;
        self.stats.bytes_acked += data_acked as u64;
        self.ack_rtt_sample(now, seg, &acked);
        self.rtt.reset_backoff();
        self.retries = 0;
        // RFC 6298 §5.2–5.3.
        if self.sb.is_empty() {
            self.rto_deadline = None;
            self.unacked_since = None;
        } else {
            self.rto_deadline = Some(now + self.rtt.rto());
            self.unacked_since = Some(now);
        }
        if self.in_recovery {
            if ack >= self.recovery_point {
                self.in_recovery = false;
                self.reno_sacked = 0;
                self.dupacks = 0;
                self.cc.on_recovery_end(self.flight());
            } else if !self.sack_enabled {
                // RFC 6582 §3.2 step 4: a partial ACK retransmits the next hole at once.
                self.reno_sacked = self.reno_sacked.saturating_sub(newly);
                self.sb.mark_first_lost();
                self.force_rexmit = true;
            }
        } else {
            self.dupacks = 0;
            self.reno_sacked = 0;
            if self.is_cwnd_limited() {
                self.cc.on_ack(now, newly, self.rtt.srtt());
            }
        }
        if self.writable_wanted && self.send.free() > 0 {
            self.writable_wanted = false;
            self.push_event(Event::Writable);
        } else if self.send.is_detached()
            && data_acked > 0
            && self.send.free() * WRITABLE_LOW_WATER >= self.send.capacity()
        {
            // The application writes into the ring itself: tell the runtime once a third of
            // the buffer is free (as Linux wakes writers), and it wakes a writer if one waits.
            self.push_event(Event::Writable);
        }
        self.tlp_out = false;
        self.arm_tlp(now);
    }

    /// RFC 8985 §7.2: after sending new data or an ACK of new data, with SACK, outside
    /// recovery and timeouts, probe the tail after PTO = 2 SRTT (+ a worst-case delayed ACK
    /// when one segment is in flight), if that comes before the RTO.
    fn arm_tlp(&mut self, now: Instant) {
        self.tlp_deadline = None;
        if !self.sack_enabled
            || self.in_recovery
            || self.tlp_out
            || self.retries > 0
            || self.sb.is_empty()
        {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = srtt * 2;
        if self.flight() <= self.data_mss() + 1 {
            pto += Duration::from_millis(200);
        }
        let at = now + pto.max(Duration::from_millis(10));
        if self.rto_deadline.is_none_or(|rto| at < rto) {
            self.tlp_deadline = Some(at);
        }
    }

    /// RFC 7661 §4.4 (in the simpler form Linux uses): cwnd grows only while the sender uses
    /// it. An application-limited (or receive-window-limited) sender has not shown the path
    /// takes a larger window, and a cwnd grown on such ACKs would later go out as a burst. In
    /// slow start the window may reach twice the largest recent flight; in congestion
    /// avoidance a send must have been held back by cwnd during the last window.
    fn is_cwnd_limited(&self) -> bool {
        let cwnd = self.cc.cwnd();
        if cwnd < self.cc.ssthresh() {
            cwnd < 2 * self.max_flight
        } else {
            self.cwnd_limited
        }
    }

    /// Records how fully this window used cwnd (`limited`: a send was held back by it, or
    /// the flight reached it). A new window (SND.UNA past the mark) starts a new record.
    fn note_cwnd_usage(&mut self, limited: bool) {
        let flight = self.flight();
        if self.snd_una >= self.cwnd_usage_seq
            || limited
            || (!self.cwnd_limited && flight > self.max_flight)
        {
            self.cwnd_limited = limited;
            self.max_flight = flight;
            self.cwnd_usage_seq = self.snd_max;
        }
    }

    /// RFC 6675 §5 (with SACK) or RFC 6582 §3.2 (without): fast retransmit and recovery.
    fn enter_recovery(&mut self, now: Instant) {
        self.in_recovery = true;
        self.tlp_deadline = None;
        self.recovery_started = now;
        self.recovery_point = self.snd_max;
        self.recover = self.snd_max;
        self.rescue_rxt = Some(self.snd_una);
        self.stats.fast_recoveries += 1;
        self.cc.on_congestion_event(now, self.flight());
        self.sb.mark_first_lost();
        self.force_rexmit = true;
    }

    fn on_text(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        if payload.is_empty()
            || !matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            return;
        }
        if self.user_closed && seg.seq + payload.len() > self.rcv_nxt {
            // Linux: new data for a closed socket is answered with RST.
            self.rst_pending = true;
            self.fail(TcpError::ConnectionAborted);
            return;
        }
        let mut seq = seg.seq;
        let mut data = payload;
        if seq < self.rcv_nxt {
            let cut = self.rcv_nxt.since(seq);
            // RFC 2883 §4: report the duplicate part, whole segment or the part below RCV.NXT.
            self.dsack = Some(SackBlock {
                start: seq,
                end: seq + cut.min(data.len()),
            });
            self.ack_now = true;
            if cut >= data.len() {
                return;
            }
            data = &data[cut..];
            seq = self.rcv_nxt;
        }
        let off = seq.since(self.rcv_nxt);
        let wnd = self.recv.window();
        if off >= wnd {
            self.ack_now = true;
            return;
        }
        let data = &data[..data.len().min(wnd - off)];
        let o = self.recv.write(off, data);
        if !o.stored {
            self.stats.ooo_dropped += 1;
            self.ack_now = true;
        } else if o.duplicate {
            self.dsack = Some(SackBlock {
                start: seq,
                end: seq + data.len(),
            });
            self.ack_now = true;
        } else if o.advanced > 0 {
            self.rcv_nxt += o.advanced;
            self.stats.bytes_received += o.advanced as u64;
            self.signal_readable();
            // A segment the device coalesced counts as the segments it stands for, so the
            // peer's ACK clock is the same as without coalescing.
            let stands_for = o.advanced.div_ceil(self.data_mss());
            self.segs_unacked = self
                .segs_unacked
                .saturating_add(u32::try_from(stands_for).unwrap_or(u32::MAX));
            // RFC 5681 §4.2: ACK at once when a hole fills or out-of-order data waits; else
            // at least every second segment, or when the delayed-ACK timer fires.
            if o.filled_hole || self.recv.has_ooo() || self.segs_unacked >= 2 {
                self.ack_now = true;
            } else if self.delack_deadline.is_none() {
                self.delack_deadline = Some(now + self.cfg.delayed_ack);
            }
        } else {
            // RFC 5681 §4.2: an out-of-order segment draws an immediate (duplicate) ACK.
            self.stats.ooo_segments += 1;
            self.stats.ooo_bytes += data.len() as u64;
            self.ack_now = true;
        }
    }

    fn take_fin(&mut self, now: Instant) {
        if self.ooo_fin != Some(self.rcv_nxt) || self.fin_received {
            return;
        }
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            return;
        }
        self.ooo_fin = None;
        self.fin_received = true;
        self.rcv_nxt += 1;
        self.ack_now = true;
        self.readable_signaled = false;
        self.signal_readable();
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 if self.fin_acked => self.enter_time_wait(now),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.clear_timers();
        self.release_buffers();
        self.ack_now = true;
        self.tw_deadline = Some(now + self.cfg.time_wait);
        self.push_event(Event::Closed(None));
    }

    /// The endpoint's TIME-WAIT table is full (`TcpConfig::max_time_wait`): this connection
    /// closes as soon as its last ACK is sent instead of waiting 2×MSL (as Linux does when
    /// tcp_max_tw_buckets is reached).
    pub fn skip_time_wait(&mut self) {
        if self.state == State::TimeWait {
            self.tw_skip = true;
            self.tw_deadline = None;
        }
    }

    /// The endpoint asks whether a new SYN may take over this TIME-WAIT connection (RFC 6191:
    /// its sequence number, or timestamp, is beyond what this incarnation used).
    pub fn time_wait_accepts_syn(&self, seg: &TcpRepr) -> bool {
        if self.state != State::TimeWait {
            return false;
        }
        match (self.ts_enabled, seg.timestamp) {
            (true, Some(ts)) => (ts.tsval.wrapping_sub(self.ts_recent) as i32) > 0,
            _ => seg.seq > self.rcv_nxt,
        }
    }

    // ---------------------------------------------------------------- timers

    pub fn poll_deadline(&self) -> Option<Instant> {
        [
            self.rto_deadline,
            self.tlp_deadline,
            self.delack_deadline,
            self.persist_deadline,
            self.tw_deadline,
            self.fw2_deadline,
            self.keepalive_deadline(),
            self.user_timeout_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        let ka = self.opts.keepalive?;
        if !matches!(self.state, State::Established | State::CloseWait) || !self.sb.is_empty() {
            return None;
        }
        // RFC 1122 §4.2.3.6: the first probe after `idle` without a segment, each further one
        // an interval after the previous probe (not after `last_rx`, so a timer serviced late
        // still gives the peer a whole interval to answer each probe).
        Some(match self.keepalive_probe_at {
            Some(t) if self.keepalive_probes > 0 => t + ka.interval,
            _ => self.last_rx + ka.idle,
        })
    }

    /// RFC 5482 / RFC 9293 §3.8.3: data unacknowledged, or zero-window probes unanswered,
    /// for this long ends the connection (as Linux applies TCP_USER_TIMEOUT to both).
    fn user_timeout_deadline(&self) -> Option<Instant> {
        Some(self.unacked_since.or(self.persist_since)? + self.opts.user_timeout?)
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if self.tw_deadline.is_some_and(|d| d <= now) {
            self.tw_deadline = None;
            self.state = State::Closed;
            return;
        }
        if self.fw2_deadline.is_some_and(|d| d <= now) {
            // The orphan's peer never sent its FIN: tell it the connection is gone (Linux
            // resets too), so it does not wait in CLOSE-WAIT for ever.
            self.fw2_deadline = None;
            self.rst_pending = true;
            self.state = State::Closed;
            self.clear_timers();
            self.release_buffers();
            return;
        }
        if self.user_timeout_deadline().is_some_and(|d| d <= now) {
            self.fail(TcpError::TimedOut);
            return;
        }
        if self.rto_deadline.is_some_and(|d| d <= now) {
            self.on_rto(now);
        }
        if self.tlp_deadline.is_some_and(|d| d <= now) {
            self.tlp_deadline = None;
            self.tlp_due = true;
            self.stats.tail_loss_probes += 1;
        }
        if self.delack_deadline.is_some_and(|d| d <= now) {
            self.delack_deadline = None;
            self.ack_now = true;
        }
        if self.persist_deadline.is_some_and(|d| d <= now) {
            self.persist_deadline = None;
            if self.persist_probes >= self.cfg.max_retries {
                // RFC 1122 §4.2.2.17 keeps probing only while the peer answers: after as many
                // unanswered probes as retransmissions allowed, give up (Linux: tcp_retries2).
                self.fail(TcpError::TimedOut);
                return;
            }
            self.persist_due = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
        }
        if let (Some(d), Some(ka)) = (self.keepalive_deadline(), self.opts.keepalive) {
            if d <= now {
                if self.keepalive_probes >= ka.count {
                    // Giving up on a silent peer: tell it, as Linux does.
                    self.rst_pending = true;
                    self.fail(TcpError::TimedOut);
                    return;
                }
                self.keepalive_probes += 1;
                self.keepalive_probe_at = Some(now);
                self.keepalive_due = true;
            }
        }
    }

    /// RFC 6298 §5.4–5.6 plus RFC 5681 §3.1 on expiry of the retransmission timer.
    fn on_rto(&mut self, now: Instant) {
        self.rto_deadline = None;
        self.tlp_deadline = None;
        self.retries += 1;
        self.stats.rto_expiries += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.retries > self.cfg.syn_retries {
                    self.fail(TcpError::TimedOut);
                    return;
                }
                self.syn_pending = true;
                self.syn_retransmitted = true;
            }
            _ => {
                if self.sb.is_empty() {
                    return;
                }
                if self.retries > self.cfg.max_retries {
                    self.fail(TcpError::TimedOut);
                    return;
                }
                if self.retries == 1 {
                    self.cc.on_rto(now, self.flight());
                } else {
                    // A second expiry in a row: the receiver may have reneged on its SACKs
                    // (RFC 2018 §8), so resend everything.
                    self.sb.clear_sacked();
                }
                self.sb.mark_all_lost();
                self.in_recovery = false;
                self.dupacks = 0;
                self.reno_sacked = 0;
                self.recover = self.snd_max;
                self.force_rexmit = true;
            }
        }
        self.rtt.back_off();
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
            let mut r = self.header(now, self.snd_max, Flags::RST | Flags::ACK);
            r.sack = SackBlocks::default();
            r.window = 0;
            return Some(r);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent | State::SynReceived => return self.syn_segment(now),
            State::TimeWait if self.tw_skip && !self.ack_now => {
                self.state = State::Closed;
                return None;
            }
            _ => {}
        }
        if let Some(seg) = self.data_segment(now, payload) {
            return Some(seg);
        }
        self.update_persist(now);
        if self.persist_due || self.keepalive_due {
            if self.persist_due {
                self.stats.zero_window_probes += 1;
                self.persist_probes += 1;
                self.persist_since.get_or_insert(now);
            } else {
                self.stats.keepalive_probes += 1;
            }
            self.persist_due = false;
            self.keepalive_due = false;
            // A probe the peer must answer: one sequence number below SND.UNA (as Linux).
            return Some(self.header(now, self.snd_una - 1, Flags::ACK));
        }
        if self.ack_now {
            return Some(self.header(now, self.snd_max, Flags::ACK));
        }
        None
    }

    fn syn_segment(&mut self, now: Instant) -> Option<TcpRepr> {
        if !self.syn_pending {
            return None;
        }
        self.syn_pending = false;
        let active = self.state == State::SynSent;
        let mut flags = Flags::SYN;
        if !active {
            flags |= Flags::ACK;
        }
        let mut r = self.header(now, self.iss, flags);
        r.sack = SackBlocks::default();
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        r.window = self.recv.window().min(65535) as u16;
        r.mss = Some(self.cfg.mss);
        let offer_ws = if active {
            self.opts.window_scaling
        } else {
            self.ws_enabled
        };
        r.window_scale = offer_ws.then_some(self.rcv_wscale);
        r.sack_permitted = if active {
            self.opts.sack
        } else {
            self.sack_enabled
        };
        let offer_ts = if active {
            self.opts.timestamps
        } else {
            self.ts_enabled
        };
        r.timestamp = offer_ts.then(|| Timestamp {
            tsval: self.ts_now(now),
            tsecr: if active { 0 } else { self.ts_recent },
        });
        self.snd_max = self.iss + 1;
        self.syn_sent_at.get_or_insert(now);
        self.syn_last_sent = Some(now);
        self.rto_deadline = Some(now + self.rtt.rto());
        if self.syn_retransmitted {
            self.stats.retransmissions += 1;
        }
        Some(r)
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
        if self.ts_enabled {
            r.timestamp = Some(Timestamp {
                tsval: self.ts_now(now),
                tsecr: self.ts_recent,
            });
        }
        if flags.ack() {
            r.ack = self.rcv_nxt;
            r.window = self.advertise_window();
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.delack_deadline = None;
            self.segs_unacked = 0;
            if self.sack_enabled && !flags.syn() {
                self.sack_blocks(&mut r.sack);
            }
        }
        r
    }

    /// RFC 2018 §4: the first block covers the most recent segment; D-SACK (RFC 2883) goes first.
    fn sack_blocks(&mut self, out: &mut SackBlocks) {
        let max = self.max_sack_blocks();
        let dsack = self.dsack.take();
        if let Some(d) = dsack {
            out.push(d);
            self.stats.dsack_blocks_sent += 1;
        }
        let rcv_nxt = self.rcv_nxt;
        let ranges = self.recv.ranges_by_recency();
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
    fn advertise_window(&mut self) -> u16 {
        let unit = 1usize << self.rcv_wscale;
        let free = self.recv.window().min(65535usize << self.rcv_wscale) / unit * unit;
        let cand = self.rcv_nxt + free;
        let cur = self.rcv_adv.max(self.rcv_nxt);
        if cand > cur {
            let step = (self.recv.capacity() / 2).min(self.data_mss()).max(1);
            if cand.since(cur) >= step || free == self.recv.capacity() {
                self.rcv_adv = cand;
            }
        }
        self.rcv_adv = self.rcv_adv.max(self.rcv_nxt);
        let step = (self.recv.capacity() / 2).min(self.data_mss()).max(1);
        self.recv
            .publish_window(self.rcv_adv.since(self.rcv_nxt), step);
        (self.rcv_adv.since(self.rcv_nxt) >> self.rcv_wscale).min(65535) as u16
    }

    /// The application read from or wrote to the shared rings on its own: send new data and
    /// any window update due.
    pub fn on_app_io(&mut self) {
        self.maybe_window_update();
    }

    /// Hands the application's sides of the send and receive rings to the runtime; from then
    /// on `send` and `recv` take and give nothing, and events are edges for the runtime.
    pub fn take_app_io(&mut self) -> Option<AppIo> {
        let send = self.send.take_writer()?;
        let recv = self.recv.take_reader()?;
        Some(AppIo { send, recv })
    }

    /// After a read: send a window update when the window would at least double (as Linux
    /// does), so a sender blocked by a small window learns of the space.
    fn maybe_window_update(&mut self) {
        if !self.state.is_synchronized() || self.fin_received {
            return;
        }
        let cur = self.rcv_adv.since(self.rcv_nxt);
        let free = self.recv.window();
        let step = (self.recv.capacity() / 2).min(self.data_mss()).max(1);
        if free >= 2 * cur && free - cur >= step {
            self.ack_now = true;
            self.stats.window_updates += 1;
        }
    }

    fn copy_out(&self, seq: SeqNumber, len: usize, out: &mut Vec<u8>) {
        self.send.copy_out(seq.since(self.data_start), len, out);
    }

    fn can_send(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    fn data_segment(&mut self, now: Instant, payload: &mut Vec<u8>) -> Option<TcpRepr> {
        if !self.can_send() {
            return None;
        }
        let mss = self.seg_mss();
        let cwnd = self.cc.cwnd();
        if self.tlp_due {
            // RFC 8985 §7.3: the probe is new data if any may go, else the last segment.
            self.tlp_due = false;
            self.tlp_out = true;
            if let Some(r) = self.new_data(now, payload, mss) {
                return Some(r);
            }
            if let Some(last) = self.sb.len().checked_sub(1) {
                if self.sb.get(last).is_some_and(|s| !s.sacked) {
                    return self.resend(last, now, payload);
                }
            }
        }
        // First the segments deemed lost (RFC 6675 §4 NextSeg rule 1).
        if let Some(i) = self.sb.next_lost() {
            if self.pipe() < cwnd || self.force_rexmit {
                self.force_rexmit = false;
                return self.resend(i, now, payload);
            }
            return None;
        }
        self.force_rexmit = false;
        if self.pipe() >= cwnd {
            if self.send_end() > self.snd_max {
                self.note_cwnd_usage(true);
            }
            return None;
        }
        if let Some(r) = self.new_data(now, payload, mss) {
            let limited = self.pipe() >= self.cc.cwnd();
            self.note_cwnd_usage(limited);
            return Some(r);
        }
        // RFC 6675 §4 NextSeg rule 3: with no new data to send, resend a hole below SACKed
        // data even before it counts as lost, rather than idle until the RTO.
        if self.in_recovery && self.sack_enabled {
            if let Some(i) = self.sb.next_hole() {
                return self.resend(i, now, payload);
            }
            // Rule 4, rescue retransmission: once per recovery, the segment holding the highest
            // unSACKed sequence number, so a lost last segment, with nothing SACKed above it
            // to mark it lost, is not left to the RTO. RescueRxt starts at the ACK point where
            // recovery began, so the rescue waits for a partial ACK, and it takes only a
            // segment sent before recovery: by then that one, had it arrived, would have been
            // SACKed (earlier it may just be in flight, and resending it would be spurious).
            if self.rescue_rxt.is_some_and(|r| self.snd_una > r) {
                if let Some(i) = self.sb.rescue(mss, self.recovery_started) {
                    self.rescue_rxt = Some(self.recovery_point);
                    self.stats.rescue_retransmissions += 1;
                    return self.resend(i, now, payload);
                }
            }
        }
        None
    }

    /// Resends scoreboard entry `i` (at most one MSS of it).
    fn resend(&mut self, i: usize, now: Instant, payload: &mut Vec<u8>) -> Option<TcpRepr> {
        let mss = self.seg_mss();
        self.sb
            .split(i, mss + usize::from(self.sb.get(i).is_some_and(|s| s.fin)));
        let s = *self.sb.get(i)?;
        self.sb.mark_retransmitted(i, now);
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
        self.rto_deadline.get_or_insert(now + self.rtt.rto());
        self.unacked_since.get_or_insert(now);
        Some(r)
    }

    /// New data (RFC 6675 NextSeg rule 2), within the peer's window, with Nagle and sender SWS
    /// avoidance.
    fn new_data(&mut self, now: Instant, payload: &mut Vec<u8>, mss: usize) -> Option<TcpRepr> {
        if self.sb.is_empty()
            && self
                .last_send
                .is_some_and(|t| now.saturating_duration_since(t) > self.rtt.rto())
        {
            // RFC 5681 §4.1: restart from the initial window after an idle RTO.
            self.cc.on_idle_restart();
            self.last_send = None;
            if self.pipe() >= self.cc.cwnd() {
                return None;
            }
        }
        // Then new data (rule 2), within the peer's window.
        let unsent = self.send_end().since(self.snd_max.max(self.data_start));
        let fin_unsent = self.fin_queued && self.snd_max <= self.send_end();
        if unsent == 0 && !fin_unsent {
            return None;
        }
        let wnd_edge = self.snd_una + self.snd_wnd;
        let usable = wnd_edge.since(self.snd_max);
        let mut len = mss.min(unsent).min(usable);
        let burst = self.offload_burst(mss, unsent, usable);
        if burst > len {
            len = burst;
        }
        self.burst_segment = if len > mss { mss } else { 0 };
        let forced = self.persist_due;
        if len < unsent.min(mss) && !forced {
            // RFC 9293 §3.8.6.2.1 sender SWS avoidance: a short, window-limited segment only
            // when it is at least half the largest window the peer offered.
            if len == 0 || len < self.max_snd_wnd / 2 {
                return None;
            }
        }
        if len == unsent
            && len < mss
            && !self.opts.nodelay
            && !self.sb.is_empty()
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
            self.persist_due = false;
            self.stats.zero_window_probes += 1;
        }
        len = len.min(unsent);
        let seq = self.snd_max;
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
            self.sb.push(SentSegment {
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
        self.snd_max = seq + seq_len;
        self.last_send = Some(now);
        self.rto_deadline.get_or_insert(now + self.rtt.rto());
        self.arm_tlp(now);
        self.stats.bytes_sent += len as u64;
        self.unacked_since.get_or_insert(now);
        self.persist_deadline = None;
        Some(r)
    }

    /// With segmentation offload: how much new data one segment may carry now, in whole
    /// MSS-sized pieces within the congestion window, the peer's window and the offload limit
    /// (a shorter tail only when it ends the data queued). 0 without offload or room for
    /// fewer than two segments.
    fn offload_burst(&self, mss: usize, unsent: usize, usable: usize) -> usize {
        let limit = self.cfg.segment_offload;
        if limit < 2 * mss {
            return 0;
        }
        let cwnd_room = self.cc.cwnd().saturating_sub(self.pipe());
        let room = limit.min(usable).min(cwnd_room.max(mss));
        if unsent <= room {
            return unsent;
        }
        room / mss * mss
    }

    /// RFC 9293 §3.8.6.1: with data waiting, nothing in flight and no usable window, the
    /// persist timer probes the window with exponential backoff.
    fn update_persist(&mut self, now: Instant) {
        let unsent = self.send_end().since(self.snd_max.max(self.data_start));
        let blocked = self.can_send() && unsent > 0 && self.sb.is_empty() && !self.persist_due;
        if !blocked {
            self.persist_deadline = None;
            return;
        }
        if self.persist_deadline.is_none() {
            let base = self.rtt.rto();
            let shift = self.persist_backoff.min(16);
            let d = base.saturating_mul(1 << shift).min(self.cfg.max_rto);
            self.persist_deadline = Some(now + d);
        }
    }
}

#[cfg(test)]
mod tests;
