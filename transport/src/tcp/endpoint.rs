//! The endpoint: everything one transport worker owns — its connections (by 4-tuple), a copy
//! of every listener, timers, and replies that belong to no connection. A runtime worker feeds
//! it segments, ICMP errors and time, and drains segments and events.
//!
//! Driving it (one transport worker):
//! ```text
//! loop {
//!     batch = channel.recv_deadline(endpoint.poll_deadline())
//!     for (src, dst, tcp_bytes) in batch: endpoint.on_segment(now, src, dst, tcp_bytes)
//!     for icmp error quoting TCP:        endpoint.on_icmp_error(now, info)
//!     for socket command:                endpoint.send / recv / close / connect / listen …
//!     endpoint.on_timeout(now)
//!     endpoint.poll_transmit(now, &mut out)   // (src, dst, TCP bytes, checksum filled):
//!                                             // wrap each in IPv4, protocol 6
//!     while let Some(ev) = endpoint.poll_event() { wake the socket it names }
//! }
//! ```
//! Inputs are the IPv4 payload with the IPv4 addresses (the checksum is verified here);
//! `TcpConfig::mss` should be the interface MTU − 40. Workers may share one `secret`, but the
//! ISN clock, the SYN-cookie counter and the timestamp clock run from each endpoint's own
//! epoch (its first `now`), and a listener's "cookies in use" state is per endpoint: the
//! runtime must deliver every segment of a 4-tuple to the same worker (shard by 4-tuple), or a
//! cookie ACK reaching another worker fails its check and its timestamps are off.
//!
//! Policy, in one place:
//! - A `ConnId` stays valid until the socket layer calls `close` or `abort`, even after the
//!   connection ended (so `recv` can still return end of stream or the error). Connections the
//!   socket layer never heard of (half-open ones) are dropped as soon as they end.
//! - A passive connection counts against its listener's accept queue from `Accepted` until the
//!   socket layer first touches it (`accepted`, `send`, `recv`, `close`…).
//! - Stateless replies (RSTs, cookie SYN-ACKs) wait in a queue of `max_stateless_queue`; more
//!   are dropped and counted.
//! - At most `max_time_wait` connections sit in TIME-WAIT (holding no buffers); past that a
//!   connection closes once its last ACK is sent, counted in `time_wait_overflows`.
//! - Events wait in an unbounded queue: each is caused by a call the runtime made, and the
//!   runtime drains it after every batch.
//!
//! Listening and the passive-open path (SYNs for a listener, SYN cookies) are in `listener.rs`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Instant;

use super::connection::{AppIo, ConnParams, Connection, Event, State};
use super::isn::{initial_sequence_number, siphash24, tuple_bytes};
use super::listener::Listener;
use super::segment::{Checksum, Flags, SegmentError, TcpPacket, TcpRepr};
use super::seq::SeqNumber;
use super::stats::{ConnStats, TcpStats};
use super::{FourTuple, SocketOptions, TcpConfig, TcpError};

/// A connection handle, valid within one `Endpoint`. Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A segment ready to go, with the IP fields the network layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// `None`: the IP layer's default TTL.
    pub ttl: Option<u8>,
    /// `headroom` bytes for the layers below, then the TCP header and payload, checksum
    /// filled.
    pub bytes: Vec<u8>,
    /// Where the TCP segment starts in `bytes`: at least `Endpoint::set_headroom`'s room for
    /// the layers below (more when the header is shorter than the largest).
    pub headroom: usize,
    /// An offloaded burst (`TcpConfig::segment_offload`): the payload per segment the device
    /// cuts it into. `None` for an ordinary segment.
    pub segment_size: Option<u16>,
    /// The checksum is partial, for the device to complete (`Endpoint::set_checksum_offload`).
    pub checksum_partial: bool,
}

impl Transmit {
    /// The TCP segment.
    pub fn segment(&self) -> &[u8] {
        &self.bytes[self.headroom..]
    }
}

/// Spare segment buffers an endpoint keeps for reuse at most.
const MAX_SPARE_BUFFERS: usize = 256;

/// The largest TCP header (RFC 9293 §3.1: data offset 15 words).
const MAX_TCP_HEADER: usize = 60;

/// What the socket layer hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpEvent {
    /// A passive open completed on the listener bound to `listener`.
    Accepted { listener: SocketAddrV4, id: ConnId },
    /// An active open completed.
    Connected(ConnId),
    /// Data or end of stream arrived. Edge-triggered: raised once per arrival after the last
    /// `recv` (after `take_app_io`: on every arrival); `readiness` tells how much is there.
    Readable(ConnId),
    /// Send-buffer space freed after a `send` that took less than offered (after
    /// `take_app_io`: whenever an ACK leaves at least a third of the buffer free).
    Writable(ConnId),
    /// The connection ended: `None` orderly, else the error.
    Closed(ConnId, Option<TcpError>),
}

/// The stack's one ICMP error type (what each means to TCP: `Connection::on_icmp`).
pub use netstack_network::endpoint::IcmpErrorKind;

/// An ICMP error as the network layer hands it over: the quoted IPv4 header's addresses (the
/// source is us) and the first eight bytes of the quoted TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpErrorInfo {
    pub kind: IcmpErrorKind,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub quoted: [u8; 8],
}

impl IcmpErrorInfo {
    /// Builds the info from the quoted transport bytes; `None` when fewer than 8 are quoted.
    pub fn new(kind: IcmpErrorKind, src: Ipv4Addr, dst: Ipv4Addr, quoted: &[u8]) -> Option<Self> {
        let q: [u8; 8] = quoted.get(..8)?.try_into().ok()?;
        Some(IcmpErrorInfo {
            kind,
            src,
            dst,
            quoted: q,
        })
    }
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) conn: Connection,
    /// For passive connections: the listener, until the socket layer takes the connection.
    pub(super) listener: Option<SocketAddrV4>,
    /// The socket layer knows this id (active open, or `Accepted` emitted).
    pub(super) announced: bool,
    /// The socket layer has touched a passive connection (it left the accept queue).
    pub(super) taken: bool,
    pub(super) closed_emitted: bool,
    pub(super) released: bool,
    pub(super) timer: Option<Instant>,
    pub(super) dirty: bool,
    /// IP TTL for this connection's segments (`None`: the IP layer's default).
    pub(super) ttl: Option<u8>,
    /// Counted in `Endpoint::time_wait`.
    pub(super) in_time_wait: bool,
}

pub struct Endpoint {
    pub(super) config: Arc<TcpConfig>,
    pub(super) secret: [u8; 16],
    pub(super) epoch: Option<Instant>,
    /// Boxed: a table of 1.7 KB entries would carry its load-factor slack at that size.
    pub(super) conns: HashMap<ConnId, Box<Entry>>,
    pub(super) by_tuple: HashMap<FourTuple, ConnId>,
    pub(super) next_id: u64,
    pub(super) listeners: HashMap<SocketAddrV4, Listener>,
    pub(super) timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    pub(super) dirty: VecDeque<ConnId>,
    pub(super) stateless: VecDeque<(Ipv4Addr, Ipv4Addr, Vec<u8>)>,
    pub(super) events: VecDeque<TcpEvent>,
    pub(super) stats: TcpStats,
    /// Connections in TIME-WAIT, at most `TcpConfig::max_time_wait`.
    pub(super) time_wait: usize,
    /// The latest `now` the runtime gave us, for calls that take no time (`close`).
    pub(super) last_now: Option<Instant>,
    /// Bytes left free in front of each segment `poll_segments` builds.
    pub(super) headroom: usize,
    pub(super) checksum_offload: bool,
    /// Segment buffers given back with `recycle`.
    pub(super) spare: Vec<Vec<u8>>,
}

impl Endpoint {
    /// `secret` keys ISNs (RFC 6528) and SYN cookies. The clocks they use start at this
    /// endpoint's first `now`, so a connection's segments must all reach the same endpoint.
    pub fn new(config: TcpConfig, secret: [u8; 16]) -> Self {
        Endpoint {
            config: Arc::new(config),
            secret,
            epoch: None,
            conns: HashMap::new(),
            by_tuple: HashMap::new(),
            next_id: 1,
            listeners: HashMap::new(),
            timers: BinaryHeap::new(),
            dirty: VecDeque::new(),
            stateless: VecDeque::new(),
            events: VecDeque::new(),
            stats: TcpStats::default(),
            time_wait: 0,
            last_now: None,
            headroom: 0,
            checksum_offload: false,
            spare: Vec::new(),
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.config
    }

    /// Leaves `n` bytes free in front of every segment `poll_segments` builds, so the layers
    /// below can write their headers in place (IPv4 and Ethernet: 34).
    pub fn set_headroom(&mut self, n: usize) {
        self.headroom = n;
    }

    /// Connection segments leave their checksum partial (see `TcpRepr::emit_in_place`)
    /// for a device that completes it. Stateless replies (RSTs, cookie SYN-ACKs) keep a full
    /// checksum.
    pub fn set_checksum_offload(&mut self, on: bool) {
        self.checksum_offload = on;
    }

    /// Gives back a buffer of a `Transmit` that has been sent, for a later segment (bounded;
    /// past the bound it is freed).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE_BUFFERS {
            self.spare.push(buf);
        }
    }

    pub(super) fn epoch(&mut self, now: Instant) -> Instant {
        self.last_now = Some(self.last_now.map_or(now, |t| t.max(now)));
        *self.epoch.get_or_insert(now)
    }

    pub(super) fn params(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        iss: SeqNumber,
        opts: SocketOptions,
    ) -> ConnParams {
        let epoch = self.epoch(now);
        let mut tb = [0u8; 13];
        tb[..12].copy_from_slice(&tuple_bytes(&tuple));
        tb[12] = b't';
        ConnParams {
            tuple,
            iss,
            epoch,
            ts_offset: siphash24(&self.secret, &tb) as u32,
            config: self.config.clone(),
            opts,
        }
    }

    pub(super) fn isn(&mut self, now: Instant, tuple: &FourTuple) -> SeqNumber {
        let epoch = self.epoch(now);
        initial_sequence_number(&self.secret, tuple, now.saturating_duration_since(epoch))
    }

    // ---------------------------------------------------------------- opens

    pub fn connect(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        opts: SocketOptions,
    ) -> Result<ConnId, TcpError> {
        if tuple.local.port() == 0 || tuple.remote.port() == 0 {
            return Err(TcpError::InvalidInput);
        }
        if self.by_tuple.contains_key(&tuple) {
            return Err(TcpError::AddrInUse);
        }
        let iss = self.isn(now, &tuple);
        let p = self.params(now, tuple, iss, opts);
        let conn = Connection::connect(now, p);
        self.stats.endpoint.active_opens += 1;
        let id = self.insert(conn, None, true);
        self.after(id);
        Ok(id)
    }

    pub(super) fn insert(
        &mut self,
        conn: Connection,
        listener: Option<SocketAddrV4>,
        announced: bool,
    ) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        self.by_tuple.insert(conn.tuple(), id);
        // What the connection counted before it was inserted (a cookie's first segment).
        self.stats
            .connections
            .add_delta(conn.counters(), &ConnStats::default());
        self.conns.insert(
            id,
            Box::new(Entry {
                conn,
                listener,
                announced,
                taken: announced,
                closed_emitted: false,
                released: false,
                timer: None,
                dirty: false,
                ttl: None,
                in_time_wait: false,
            }),
        );
        id
    }

    // ---------------------------------------------------------------- input

    /// A received TCP segment (the IPv4 payload) addressed to this worker.
    pub fn on_segment(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) {
        self.on_segment_with(now, src, dst, segment, Checksum::Verify)
    }

    /// Like `on_segment`; with `Checksum::Ignore` for a segment whose checksum the device
    /// vouched for (a verified or partial checksum from an offloading device).
    pub fn on_segment_with(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        segment: &[u8],
        checksum: Checksum,
    ) {
        self.epoch(now);
        self.stats.endpoint.segments_received += 1;
        let parsed = TcpPacket::new_checked(segment)
            .and_then(|p| TcpRepr::parse(&p, src, dst, checksum).map(|r| (r, p.header_len())));
        let (repr, hl) = match parsed {
            Ok(v) => v,
            Err(e) => {
                log::trace!("tcp: dropped a segment from {src}: {e}");
                let c = &mut self.stats.endpoint;
                match e {
                    SegmentError::TooShort => c.dropped_too_short += 1,
                    SegmentError::BadDataOffset => c.dropped_bad_data_offset += 1,
                    SegmentError::BadChecksum => c.dropped_bad_checksum += 1,
                    SegmentError::BadOptionLength => c.dropped_bad_option += 1,
                    SegmentError::ZeroPort => c.dropped_zero_port += 1,
                }
                return;
            }
        };
        let payload = &segment[hl..];
        let tuple = FourTuple {
            local: SocketAddrV4::new(dst, repr.dst_port),
            remote: SocketAddrV4::new(src, repr.src_port),
        };
        if let Some(&id) = self.by_tuple.get(&tuple) {
            if self.cookie_takes_over(now, id, &tuple, &repr, payload) {
                return;
            }
            let reuse = repr.flags.syn()
                && !repr.flags.ack()
                && self
                    .conns
                    .get(&id)
                    .is_some_and(|e| e.conn.time_wait_accepts_syn(&repr))
                && self.listener_for(tuple.local).is_some();
            if !reuse {
                if self.completes_into_full_accept_queue(id, &repr) {
                    // Like Linux: the handshake's last ACK is dropped while the accept queue
                    // is full; the SYN-ACK is retransmitted and the peer's ACK comes again.
                    self.stats.endpoint.accept_queue_overflows += 1;
                    return;
                }
                if repr.flags.rst() && self.conns.contains_key(&id) {
                    self.stats.endpoint.resets_received += 1;
                }
                self.counted(id, |c| c.on_segment(now, &repr, payload));
                self.after(id);
                return;
            }
            // RFC 6191 / RFC 9293 §3.10.7.4: a new SYN may reopen a TIME-WAIT 4-tuple.
            self.stats.endpoint.time_wait_reused += 1;
            self.by_tuple.remove(&tuple);
            self.counted(id, Connection::abort);
            self.after(id);
        }
        match self.listener_for(tuple.local) {
            Some(laddr) => self.on_listener_segment(now, laddr, tuple, &repr, payload),
            None => self.reply_rst(&tuple, &repr),
        }
    }

    /// RFC 9293 §3.10.7.1: a segment for no connection draws a RST, unless it is one.
    pub(super) fn reply_rst(&mut self, tuple: &FourTuple, seg: &TcpRepr) {
        if seg.flags.rst() {
            self.stats.endpoint.rst_ignored_no_socket += 1;
            return;
        }
        let mut r = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            ..TcpRepr::default()
        };
        if seg.flags.ack() {
            r.seq = seg.ack;
            r.flags = Flags::RST;
        } else {
            r.seq = SeqNumber(0);
            r.ack = seg.seq + seg.seq_len();
            r.flags = Flags::RST | Flags::ACK;
        }
        self.stats.endpoint.rst_sent_no_socket += 1;
        self.push_stateless(tuple, &r);
    }

    pub(super) fn push_stateless(&mut self, tuple: &FourTuple, r: &TcpRepr) {
        if self.stateless.len() >= self.config.max_stateless_queue {
            self.stats.endpoint.stateless_queue_drops += 1;
            return;
        }
        let bytes = r.to_bytes(*tuple.local.ip(), *tuple.remote.ip(), &[]);
        self.stateless
            .push_back((*tuple.local.ip(), *tuple.remote.ip(), bytes));
    }

    /// An ICMP error quoting one of our segments (RFC 5927 checks in `Connection::on_icmp`).
    pub fn on_icmp_error(&mut self, now: Instant, err: IcmpErrorInfo) {
        self.epoch(now);
        let q = err.quoted;
        let sport = u16::from_be_bytes([q[0], q[1]]);
        let dport = u16::from_be_bytes([q[2], q[3]]);
        let seq = SeqNumber(u32::from_be_bytes([q[4], q[5], q[6], q[7]]));
        let tuple = FourTuple {
            local: SocketAddrV4::new(err.src, sport),
            remote: SocketAddrV4::new(err.dst, dport),
        };
        let Some(&id) = self.by_tuple.get(&tuple) else {
            self.stats.endpoint.icmp_ignored += 1;
            return;
        };
        let accepted = self
            .counted(id, |c| c.on_icmp(now, err.kind, seq))
            .unwrap_or(false);
        if accepted {
            self.stats.endpoint.icmp_accepted += 1;
        } else {
            self.stats.endpoint.icmp_ignored += 1;
        }
        self.after(id);
    }

    // ---------------------------------------------------------------- time

    pub fn on_timeout(&mut self, now: Instant) {
        self.epoch(now);
        // Take the due entries first, so a connection is visited once per call even if its
        // timer comes due again at once.
        let mut due = Vec::new();
        while let Some(&Reverse((t, id))) = self.timers.peek() {
            if t > now {
                break;
            }
            self.timers.pop();
            due.push((t, id));
        }
        for (t, id) in due {
            let Some(e) = self.conns.get_mut(&id) else {
                continue;
            };
            if e.timer != Some(t) {
                continue;
            }
            e.timer = None;
            if e.conn.poll_deadline().is_some_and(|d| d <= now) {
                self.counted(id, |c| c.on_timeout(now));
            }
            self.after(id);
        }
    }

    pub fn poll_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    // ---------------------------------------------------------------- output

    /// Appends every segment ready to go: (source, destination, TCP bytes with checksum).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)>) {
        let mut segs = Vec::new();
        self.poll_segments(now, &mut segs);
        out.extend(segs.into_iter().map(|mut t| {
            t.bytes.drain(..t.headroom);
            (t.src, t.dst, t.bytes)
        }));
    }

    /// Like `poll_transmit`, with each segment's IP TTL (set per connection by `set_ttl`).
    pub fn poll_segments(&mut self, now: Instant, out: &mut Vec<Transmit>) {
        self.epoch(now);
        let before = out.len();
        out.extend(self.stateless.drain(..).map(|(src, dst, bytes)| Transmit {
            src,
            dst,
            ttl: None,
            bytes,
            headroom: 0,
            segment_size: None,
            checksum_partial: false,
        }));
        while let Some(id) = self.dirty.pop_front() {
            let Some(e) = self.conns.get_mut(&id) else {
                continue;
            };
            e.dirty = false;
            let tuple = e.conn.tuple();
            let (src, dst) = (*tuple.local.ip(), *tuple.remote.ip());
            let before = *e.conn.counters();
            // The payload is copied once, from the send buffer to where it goes out: the
            // buffer keeps room for the lower layers and the largest TCP header in front of
            // it, and the header is written just before it.
            let room = self.headroom + MAX_TCP_HEADER;
            // Room for a full-sized segment, so a buffer never grows while the payload goes
            // in (an offloaded burst grows it once; it keeps that capacity when reused).
            let full = room + usize::from(self.config.mss);
            loop {
                let mut bytes = self.spare.pop().unwrap_or_default();
                bytes.clear();
                bytes.reserve(full);
                bytes.resize(room, 0);
                let Some(r) = e.conn.poll_transmit(now, &mut bytes) else {
                    if self.spare.len() < MAX_SPARE_BUFFERS {
                        self.spare.push(bytes);
                    }
                    break;
                };
                let start = room - r.header_len();
                r.emit_in_place(&mut bytes[start..], src, dst, self.checksum_offload);
                let segment_size = e
                    .conn
                    .burst_segment(r.payload_len)
                    .and_then(|n| u16::try_from(n).ok());
                out.push(Transmit {
                    src,
                    dst,
                    ttl: e.ttl,
                    bytes,
                    headroom: start,
                    segment_size,
                    checksum_partial: self.checksum_offload,
                });
            }
            self.stats.connections.add_delta(e.conn.counters(), &before);
            self.settle(id);
        }
        self.stats.endpoint.segments_sent += (out.len() - before) as u64;
    }

    pub fn poll_event(&mut self) -> Option<TcpEvent> {
        let ev = self.events.pop_front()?;
        if let TcpEvent::Accepted { listener, .. } = ev {
            if let Some(l) = self.listeners.get_mut(&listener) {
                l.unpolled_accepts = l.unpolled_accepts.saturating_sub(1);
            }
        }
        Some(ev)
    }

    /// After any call into a connection: route its events, reschedule its timer, queue it
    /// for transmission, and forget it when it is finished.
    pub(super) fn after(&mut self, id: ConnId) {
        if let Some(e) = self.conns.get_mut(&id) {
            if !e.dirty {
                e.dirty = true;
                self.dirty.push_back(id);
            }
        }
        self.settle(id);
    }

    /// Runs `f` on connection `id` and adds what it counted to the endpoint's totals, so the
    /// totals are kept as they change and `stats` walks nothing (and no connection keeps a
    /// copy of its counters as last added). `None` for an unknown id.
    pub(super) fn counted<R>(
        &mut self,
        id: ConnId,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> Option<R> {
        let e = self.conns.get_mut(&id)?;
        let before = *e.conn.counters();
        let r = f(&mut e.conn);
        self.stats.connections.add_delta(e.conn.counters(), &before);
        Some(r)
    }

    fn settle(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(ev) = e.conn.poll_event() {
            match ev {
                Event::Connected if e.conn.is_passive() => {
                    e.announced = true;
                    self.stats.endpoint.established += 1;
                    if let Some(l) = e.listener.and_then(|a| self.listeners.get_mut(&a)) {
                        l.syn_queue = l.syn_queue.saturating_sub(1);
                        l.accept_queue += 1;
                        l.unpolled_accepts += 1;
                    }
                    let listener = e.listener.unwrap_or(e.conn.tuple().local);
                    self.events.push_back(TcpEvent::Accepted { listener, id });
                }
                Event::Connected => {
                    self.stats.endpoint.established += 1;
                    self.events.push_back(TcpEvent::Connected(id));
                }
                _ if !e.announced => {}
                Event::Readable => self.events.push_back(TcpEvent::Readable(id)),
                Event::Writable => self.events.push_back(TcpEvent::Writable(id)),
                Event::Closed(err) => {
                    if !e.closed_emitted {
                        e.closed_emitted = true;
                        self.events.push_back(TcpEvent::Closed(id, err));
                    }
                }
            }
        }
        // TIME-WAIT is bounded: past the limit a connection leaves once its last ACK is out.
        let tw = e.conn.state() == State::TimeWait;
        if tw && !e.in_time_wait {
            if self.time_wait >= self.config.max_time_wait {
                self.stats.endpoint.time_wait_overflows += 1;
                e.conn.skip_time_wait();
            } else {
                e.in_time_wait = true;
                self.time_wait += 1;
            }
        } else if !tw && e.in_time_wait {
            e.in_time_wait = false;
            self.time_wait -= 1;
        }
        // Timer.
        let d = e.conn.poll_deadline();
        if let Some(d) = d {
            if e.timer.is_none_or(|t| d < t) {
                e.timer = Some(d);
                self.timers.push(Reverse((d, id)));
            }
        }
        if e.conn.state() == State::Closed {
            if !e.conn.is_closed() {
                return;
            }
            if self.by_tuple.get(&e.conn.tuple()) == Some(&id) {
                self.by_tuple.remove(&e.conn.tuple());
            }
            if e.conn.error() == Some(TcpError::TimedOut) {
                self.stats.endpoint.timeouts += 1;
            }
            if !e.announced || e.released {
                self.remove(id);
            } else if !e.closed_emitted {
                e.closed_emitted = true;
                self.events.push_back(TcpEvent::Closed(id, e.conn.error()));
            }
        }
    }

    pub(super) fn remove(&mut self, id: ConnId) {
        let Some(e) = self.conns.remove(&id) else {
            return;
        };
        if e.in_time_wait {
            self.time_wait -= 1;
        }
        if self.by_tuple.get(&e.conn.tuple()) == Some(&id) {
            self.by_tuple.remove(&e.conn.tuple());
        }
        if let Some(l) = e.listener.and_then(|a| self.listeners.get_mut(&a)) {
            if !e.announced {
                l.syn_queue = l.syn_queue.saturating_sub(1);
            } else if !e.taken && !l.shared_queue {
                l.accept_queue = l.accept_queue.saturating_sub(1);
            }
        }
    }

    // ---------------------------------------------------------------- socket calls

    fn touch(&mut self, id: ConnId) -> Result<&mut Entry, TcpError> {
        let e = self.conns.get_mut(&id).ok_or(TcpError::NotConnected)?;
        if !e.taken && e.announced {
            e.taken = true;
            if let Some(l) = e.listener.and_then(|a| self.listeners.get_mut(&a)) {
                if !l.shared_queue {
                    l.accept_queue = l.accept_queue.saturating_sub(1);
                }
            }
        }
        Ok(e)
    }

    /// The socket layer took an accepted connection off its queue.
    pub fn accepted(&mut self, id: ConnId) {
        let _ = self.touch(id);
    }

    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, TcpError> {
        self.touch(id)?;
        let r = self
            .counted(id, |c| c.send(data))
            .ok_or(TcpError::NotConnected)?;
        self.after(id);
        r
    }

    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, TcpError> {
        self.touch(id)?;
        let r = self
            .counted(id, |c| c.recv(buf))
            .ok_or(TcpError::NotConnected)?;
        self.after(id);
        r
    }

    /// Hands the application's sides of the connection's rings to the runtime (see
    /// `Connection::take_app_io`); `None` if the id is unknown or they were taken already.
    pub fn take_app_io(&mut self, id: ConnId) -> Option<AppIo> {
        self.conns.get_mut(&id)?.conn.take_app_io()
    }

    /// The application wrote to or read from the connection's rings: send what is due (new
    /// data, a window update). Also marks an accepted connection as taken.
    pub fn on_app_io(&mut self, id: ConnId) {
        if self.touch(id).is_ok() {
            self.counted(id, Connection::on_app_io);
            self.after(id);
        }
    }

    pub fn shutdown_write(&mut self, id: ConnId) {
        if self.touch(id).is_ok() {
            self.counted(id, Connection::shutdown_write);
            self.after(id);
        }
    }

    /// Close and release the handle (the connection finishes on its own).
    pub fn close(&mut self, id: ConnId) {
        let now = self.last_now;
        if let Ok(e) = self.touch(id) {
            e.released = true;
            e.closed_emitted = true;
            self.counted(id, |c| c.close(now));
            self.after(id);
        }
    }

    /// Abort with RST and release the handle.
    pub fn abort(&mut self, id: ConnId) {
        if let Ok(e) = self.touch(id) {
            e.released = true;
            e.closed_emitted = true;
            self.counted(id, Connection::abort);
            self.after(id);
        }
    }

    /// Changes the options that may change on a live connection (TCP_NODELAY, keepalive, user
    /// timeout, linger-0); see `Connection::set_options`.
    pub fn set_options(&mut self, id: ConnId, opts: SocketOptions) -> Result<(), TcpError> {
        self.counted(id, |c| c.set_options(opts))
            .ok_or(TcpError::NotConnected)?;
        self.after(id);
        Ok(())
    }

    /// Sets the IP TTL of the connection's segments from now on.
    pub fn set_ttl(&mut self, id: ConnId, ttl: u8) {
        if let Some(e) = self.conns.get_mut(&id) {
            e.ttl = Some(ttl);
        }
    }

    /// Every connection held, released ones and TIME-WAIT included.
    pub fn ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Connections still exchanging data or closing: neither CLOSED nor TIME-WAIT. (Walks
    /// every connection: for shutdown, not for the data path.)
    pub fn active_count(&self) -> usize {
        self.conns
            .values()
            .filter(|e| !matches!(e.conn.state(), State::Closed | State::TimeWait))
            .count()
    }

    /// In-order bytes ready to read, and free send-buffer space: what a poll needs.
    pub fn readiness(&self, id: ConnId) -> Option<(usize, usize)> {
        self.conns
            .get(&id)
            .map(|e| (e.conn.readable(), e.conn.send_space()))
    }

    pub fn conn_stats(&self, id: ConnId) -> Option<ConnStats> {
        self.conns.get(&id).map(|e| e.conn.stats())
    }

    pub fn state(&self, id: ConnId) -> Option<State> {
        self.conns.get(&id).map(|e| e.conn.state())
    }

    pub fn connection(&self, id: ConnId) -> Option<&Connection> {
        self.conns.get(&id).map(|e| &e.conn)
    }

    /// Number of connections held (including TIME-WAIT and released-but-closing ones).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections in TIME-WAIT (at most `TcpConfig::max_time_wait`).
    pub fn time_wait_count(&self) -> usize {
        self.time_wait
    }

    /// Endpoint counters plus the counters of every connection, live or gone (kept as they
    /// change, so this walks nothing).
    pub fn stats(&self) -> TcpStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
