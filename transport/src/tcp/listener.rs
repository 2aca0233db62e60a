//! A passive open's bookkeeping (RFC 9293 §3.10.7.2): its options, its SYN queue (half-open
//! connections, which live in the endpoint as SYN-RECEIVED connections) and its accept queue
//! (established connections the socket layer has not taken yet). Both queues are bounded by the
//! backlog; past the SYN queue's bound the listener answers with SYN cookies (RFC 4987 §3.6).
//!
//! The endpoint's passive-open path lives here too: listening, a SYN for a listener, the
//! cookie SYN-ACK, and the ACK that brings a cookie back (`impl Endpoint` below).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use super::connection::{Connection, State};
use super::endpoint::{ConnId, Endpoint};
use super::segment::TcpRepr;
use super::syncookie::{self, CookieParams, TICK_SECS};
use super::{FourTuple, SocketOptions, TcpError};

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

// ---------------------------------------------------------------- the passive-open path

impl Endpoint {
    pub fn listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        opts: SocketOptions,
    ) -> Result<(), TcpError> {
        if local.port() == 0 {
            return Err(TcpError::InvalidInput);
        }
        if self.listeners.contains_key(&local) {
            return Err(TcpError::AddrInUse);
        }
        self.listeners
            .insert(local, Listener::new(local, backlog, opts));
        Ok(())
    }

    pub fn unlisten(&mut self, local: SocketAddrV4) {
        self.listeners.remove(&local);
    }

    /// Tells a listener how many of its connections wait in an accept queue the socket layer
    /// keeps (shared with other endpoints in a runtime with several workers): its SYNs are then
    /// admitted against the whole queue, plus the accepts this endpoint announced that the
    /// socket layer has not polled yet. From then on the socket layer's count is the one kept:
    /// taking a connection does not count it off here.
    pub fn set_accept_queue(&mut self, local: SocketAddrV4, waiting: usize) {
        if let Some(l) = self.listeners.get_mut(&local) {
            l.shared_queue = true;
            l.accept_queue = waiting + l.unpolled_accepts;
        }
    }

    pub(super) fn listener_for(&self, local: SocketAddrV4) -> Option<SocketAddrV4> {
        if self.listeners.contains_key(&local) {
            return Some(local);
        }
        let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port());
        self.listeners.contains_key(&any).then_some(any)
    }

    pub(super) fn cookie_counter(&mut self, now: Instant) -> u32 {
        let epoch = self.epoch(now);
        (now.saturating_duration_since(epoch).as_secs() / TICK_SECS) as u32
    }

    /// Would this segment complete a passive handshake while its listener's accept queue is
    /// full?
    pub(super) fn completes_into_full_accept_queue(&self, id: ConnId, seg: &TcpRepr) -> bool {
        let Some(e) = self.conns.get(&id) else {
            return false;
        };
        if e.conn.state() != State::SynReceived
            || !seg.flags.ack()
            || seg.flags.rst()
            || seg.flags.syn()
        {
            return false;
        }
        e.listener
            .and_then(|a| self.listeners.get(&a))
            .is_some_and(|l| l.accept_queue_full())
    }

    /// RFC 9293 §3.10.7.2: a segment for a listening socket (no connection has its 4-tuple).
    pub(super) fn on_listener_segment(
        &mut self,
        now: Instant,
        laddr: SocketAddrV4,
        tuple: FourTuple,
        repr: &TcpRepr,
        payload: &[u8],
    ) {
        if repr.flags.rst() {
            self.stats.endpoint.rst_ignored_no_socket += 1;
        } else if repr.flags.syn() && !repr.flags.ack() {
            self.on_listener_syn(now, laddr, tuple, repr);
        } else if repr.flags.ack() && !repr.flags.syn() {
            self.on_listener_ack(now, laddr, tuple, repr, payload);
        } else if repr.flags.ack() {
            // RFC 9293 §3.10.7.2 second: any ACK in LISTEN (here a SYN-ACK) draws a RST.
            self.reply_rst(&tuple, repr);
        } else {
            // RFC 9293 §3.10.7.2 fourth: neither SYN, ACK nor RST (a FIN or NULL probe) is
            // dropped, as Linux does, so a scan cannot tell an open port from a closed one.
            self.stats.endpoint.dropped_listen_no_syn_or_ack += 1;
        }
    }

    pub(super) fn on_listener_syn(
        &mut self,
        now: Instant,
        laddr: SocketAddrV4,
        tuple: FourTuple,
        syn: &TcpRepr,
    ) {
        let Some(l) = self.listeners.get_mut(&laddr) else {
            return;
        };
        if l.accept_queue_full() {
            // Like Linux: with a full accept queue the SYN is dropped and the peer retries.
            self.stats.endpoint.accept_queue_overflows += 1;
            return;
        }
        let opts = l.opts;
        if l.syn_queue_full() {
            l.last_overflow = Some(now);
            self.stats.endpoint.syn_queue_overflows += 1;
            if self.config.syn_cookies {
                self.send_cookie(now, tuple, syn, opts);
            }
            return;
        }
        l.syn_queue += 1;
        let iss = self.isn(now, &tuple);
        let p = self.params(now, tuple, iss, opts);
        let conn = Connection::accept(now, p, syn);
        self.stats.endpoint.passive_opens += 1;
        let id = self.insert(conn, Some(laddr), false);
        self.after(id);
    }

    /// RFC 4987 §3.6: a stateless SYN-ACK whose ISN is the cookie.
    pub(super) fn send_cookie(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        syn: &TcpRepr,
        opts: SocketOptions,
    ) {
        let counter = self.cookie_counter(now);
        let ws = syn.window_scale.filter(|_| opts.window_scaling);
        let sack = syn.sack_permitted && opts.sack;
        let params = CookieParams {
            mss: syn.mss.unwrap_or(536).min(self.config.mss),
            window_scale: ws,
            sack_permitted: sack,
        };
        let cookie = syncookie::encode(&self.secret, &tuple, syn.seq, counter, params);
        // Reuse a connection's SYN-ACK construction so the options match what it will use.
        let p = self.params(now, tuple, cookie, opts);
        let mut conn = Connection::accept(now, p, syn);
        let mut scratch = Vec::new();
        if let Some(r) = conn.poll_transmit(now, &mut scratch) {
            self.stats.endpoint.syn_cookies_sent += 1;
            self.push_stateless(&tuple, &r);
        }
    }

    pub(super) fn on_listener_ack(
        &mut self,
        now: Instant,
        laddr: SocketAddrV4,
        tuple: FourTuple,
        ack: &TcpRepr,
        payload: &[u8],
    ) {
        let recent = self
            .listeners
            .get(&laddr)
            .is_some_and(|l| l.cookies_recent(now));
        if !(self.config.syn_cookies && recent) {
            self.reply_rst(&tuple, ack);
            return;
        }
        let counter = self.cookie_counter(now);
        // While cookies are in use, an ACK that fails the check is dropped rather than reset:
        // it may be a later segment of a cookie connection whose first segment was lost or
        // reordered, and the peer's retransmission of that one will establish it.
        let Some(params) =
            syncookie::decode(&self.secret, &tuple, ack.seq - 1, counter, ack.ack - 1)
        else {
            self.stats.endpoint.syn_cookies_rejected += 1;
            return;
        };
        let Some(l) = self.listeners.get(&laddr) else {
            return;
        };
        if l.accept_queue_full() {
            self.stats.endpoint.accept_queue_overflows += 1;
            return;
        }
        let opts = l.opts;
        self.stats.endpoint.syn_cookies_accepted += 1;
        self.stats.endpoint.passive_opens += 1;
        let p = self.params(now, tuple, ack.ack - 1, opts);
        let mut conn = Connection::from_cookie(
            now,
            p,
            ack,
            params.mss,
            params.window_scale,
            params.sack_permitted,
        );
        // The ACK may carry data; process it like any segment.
        if !payload.is_empty() || ack.flags.fin() {
            conn.on_segment(now, ack, payload);
        }
        if let Some(l) = self.listeners.get_mut(&laddr) {
            l.syn_queue += 1; // balanced when `Connected` moves it to the accept queue
        }
        let id = self.insert(conn, Some(laddr), false);
        self.after(id);
    }

    /// A half-open connection can meet an ACK for a SYN cookie sent for the same 4-tuple
    /// earlier (the peer's first SYN overflowed the queue, its retransmission did not, and the
    /// cookie SYN-ACK won). Answering with RST would reset the peer's established connection, so
    /// a valid cookie replaces the half-open connection.
    pub(super) fn cookie_takes_over(
        &mut self,
        now: Instant,
        id: ConnId,
        tuple: &FourTuple,
        seg: &TcpRepr,
        payload: &[u8],
    ) -> bool {
        let Some(e) = self.conns.get(&id) else {
            return false;
        };
        let c = &e.conn;
        let candidate = c.state() == State::SynReceived
            && c.is_passive()
            && !e.announced
            && seg.flags.ack()
            && !seg.flags.syn()
            && !seg.flags.rst()
            && seg.ack != c.snd_nxt();
        let Some(laddr) = e.listener.filter(|_| candidate && self.config.syn_cookies) else {
            return false;
        };
        if !self
            .listeners
            .get(&laddr)
            .is_some_and(|l| l.cookies_recent(now))
        {
            return false;
        }
        let counter = self.cookie_counter(now);
        if syncookie::decode(&self.secret, tuple, seg.seq - 1, counter, seg.ack - 1).is_none() {
            return false;
        }
        self.remove(id);
        self.on_listener_ack(now, laddr, *tuple, seg, payload);
        true
    }
}
