//! The three-way handshake (RFC 9293 §3.5): a connection's birth (active open, passive open,
//! SYN cookie), the SYN and SYN-ACK it sends, the options they negotiate (RFC 7323 §1.3,
//! RFC 2018 §2) and the first RTT sample.

use std::collections::VecDeque;
use std::time::Instant;

use super::receive::{AckState, Receiver};
use super::recovery::Recovery;
use super::send::Sender;
use super::timers::{Timer, Timers};
use super::{ConnParams, Connection, EnabledOptions, Event, State, DEFAULT_PEER_MSS};
use crate::tcp::congestion::{initial_window, new_controller};
use crate::tcp::recv_buffer::RecvBuffer;
use crate::tcp::rtt::RttEstimator;
use crate::tcp::sack::{Acked, Scoreboard};
use crate::tcp::segment::{Flags, SackBlocks, TcpRepr, Timestamp, MAX_WINDOW_SCALE};
use crate::tcp::send_buffer::SendBuffer;
use crate::tcp::seq::SeqNumber;
use crate::tcp::stats::ConnStats;
use crate::tcp::TcpError;

/// The handshake's SYN (or SYN-ACK): whether one is due and when it went out, for the first
/// RTT sample (RFC 6298 §3 Karn) and the initial window (RFC 5681 §3.1).
#[derive(Debug, Default)]
pub(super) struct SynState {
    pub(super) pending: bool,
    pub(super) first_sent: Option<Instant>,
    pub(super) last_sent: Option<Instant>,
    pub(super) retransmitted: bool,
}

fn window_shift_for(buf: usize) -> u8 {
    let mut s = 0;
    while s < MAX_WINDOW_SCALE && (buf >> s) > 65535 {
        s += 1;
    }
    s
}

impl Connection {
    pub(super) fn new(now: Instant, p: ConnParams) -> Connection {
        let send_cap = p.opts.send_buffer.unwrap_or(p.config.send_buffer).max(1);
        let recv_cap = p.opts.recv_buffer.unwrap_or(p.config.recv_buffer).max(1);
        let mss = usize::from(p.config.mss);
        Connection {
            tuple: p.tuple,
            state: State::Closed,
            epoch: p.epoch,
            ts_offset: p.ts_offset,
            passive: false,
            enabled: EnabledOptions {
                window_scaling: false,
                timestamps: false,
                sack: false,
            },
            snd: Sender {
                iss: p.iss,
                una: p.iss,
                max: p.iss,
                wnd: 0,
                wl1: SeqNumber(0),
                wl2: p.iss,
                max_wnd: 0,
                wscale: 0,
                buf: SendBuffer::new(send_cap),
                data_start: p.iss + 1,
                fin_queued: false,
                fin_acked: false,
                peer_mss: DEFAULT_PEER_MSS,
                path_mss: mss,
                last_send: None,
                burst_segment: 0,
            },
            rcv: Receiver {
                irs: SeqNumber(0),
                nxt: SeqNumber(0),
                wscale: if p.opts.window_scaling {
                    window_shift_for(recv_cap)
                } else {
                    0
                },
                adv: SeqNumber(0),
                buf: RecvBuffer::new(recv_cap, p.config.max_ooo_ranges),
                fin_received: false,
                ooo_fin: None,
                ts_recent: 0,
                ts_recent_at: now,
                last_ack_sent: SeqNumber(0),
            },
            syn: SynState::default(),
            rec: Recovery {
                rtt: RttEstimator::new(p.config.initial_rto, p.config.min_rto, p.config.max_rto),
                retries: 0,
                sb: Scoreboard::default(),
                dupacks: 0,
                active: false,
                point: p.iss,
                recover: p.iss,
                started: now,
                reno_sacked: 0,
                force_rexmit: false,
                rescue_rxt: None,
                cc: new_controller(p.opts.congestion, mss),
                tlp_due: false,
                tlp_out: false,
                cwnd_limited: false,
                max_flight: 0,
                cwnd_usage_seq: p.iss,
            },
            ack: AckState::default(),
            timers: Timers::new(now),
            events: VecDeque::new(),
            readable_signaled: false,
            writable_wanted: false,
            user_closed: false,
            error: None,
            soft_error: None,
            rst_pending: false,
            ctl_replies: VecDeque::new(),
            stats: ConnStats::default(),
            cfg: p.config,
            opts: p.opts,
        }
    }

    /// Active open (RFC 9293 §3.10.1): SYN-SENT with a SYN to send.
    pub fn connect(now: Instant, p: ConnParams) -> Connection {
        let mut c = Connection::new(now, p);
        c.state = State::SynSent;
        c.syn.pending = true;
        c
    }

    /// Passive open from a listener's SYN (RFC 9293 §3.10.7.2): SYN-RECEIVED with a SYN-ACK to
    /// send. Options are enabled only when the SYN offered them.
    pub fn accept(now: Instant, p: ConnParams, syn: &TcpRepr) -> Connection {
        let mut c = Connection::new(now, p);
        c.passive = true;
        c.state = State::SynReceived;
        c.syn.pending = true;
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
        c.snd.max = c.snd.iss + 1;
        c.snd.una = c.snd.iss + 1;
        c.snd.wnd = usize::from(ack.window) << c.snd.wscale;
        c.snd.max_wnd = c.snd.wnd;
        c.snd.wl1 = ack.seq;
        c.snd.wl2 = ack.ack;
        c.rcv.adv = c.rcv.nxt;
        c.establish();
        c
    }

    pub(super) fn take_peer_syn(&mut self, now: Instant, syn: &TcpRepr) {
        self.rcv.irs = syn.seq;
        self.rcv.nxt = syn.seq + 1;
        self.rcv.adv = self.rcv.nxt;
        self.rcv.last_ack_sent = self.rcv.nxt;
        self.snd.wnd = usize::from(syn.window);
        self.snd.max_wnd = self.snd.wnd;
        self.snd.wl1 = syn.seq;
        if let Some(ts) = syn.timestamp {
            self.rcv.ts_recent = ts.tsval;
            self.rcv.ts_recent_at = now;
        }
    }

    /// Enables the options both sides offered (RFC 7323 §1.3, RFC 2018 §2) and fixes the MSS.
    pub(super) fn negotiate(&mut self, syn: &TcpRepr) {
        self.enabled.window_scaling = self.opts.window_scaling && syn.window_scale.is_some();
        if self.enabled.window_scaling {
            self.snd.wscale = syn.window_scale.unwrap_or(0);
        } else {
            self.snd.wscale = 0;
            self.rcv.wscale = 0;
        }
        self.enabled.timestamps = self.opts.timestamps && syn.timestamp.is_some();
        self.enabled.sack = self.opts.sack && syn.sack_permitted;
        // RFC 9293 §3.7.1: send no segment larger than the peer's MSS.
        self.snd.peer_mss = syn.mss.map_or(DEFAULT_PEER_MSS, usize::from).max(64);
        self.rec.cc.set_mss(self.data_mss());
    }

    pub(super) fn on_segment_syn_sent(&mut self, now: Instant, seg: &TcpRepr) {
        // RFC 9293 §3.10.7.3.
        let mut ack_ok = false;
        if seg.flags.ack() {
            if seg.ack <= self.snd.iss || seg.ack > self.snd.max {
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
        self.timers.last_rx = now;
        self.take_peer_syn(now, seg);
        self.negotiate(seg);
        if ack_ok {
            self.snd.una = seg.ack;
            self.snd.wl2 = seg.ack;
            self.timers[Timer::Rto] = None;
            self.rec.retries = 0;
            self.handshake_rtt_sample(now, seg);
            self.rec.rtt.reset_backoff();
            self.establish();
            self.ack.now = true;
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 7): SYN-RECEIVED, resend our SYN
            // with an ACK.
            self.state = State::SynReceived;
            self.syn.pending = true;
        }
    }

    pub(super) fn establish(&mut self) {
        self.state = if self.snd.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        // RFC 6928 §2: the initial window from the MSS the connection actually uses; RFC 5681
        // §3.1: one segment if our SYN (or SYN-ACK) had to be sent again.
        let mss = self.data_mss();
        let iw = if self.syn.retransmitted {
            mss
        } else {
            initial_window(mss)
        };
        self.rec.cc.set_initial_window(mss, iw);
        if self.syn.retransmitted {
            // RFC 6298 §5.7: without an RTT sample, data starts with a 3 s RTO.
            self.rec.rtt.reset_after_syn_loss();
        }
        self.rcv.adv = self.rcv.adv.max(self.rcv.nxt);
        self.push_event(Event::Connected);
    }

    /// The first RTT sample: from the echoed timestamp, else from the SYN's send time unless
    /// it was retransmitted (Karn).
    pub(super) fn handshake_rtt_sample(&mut self, now: Instant, seg: &TcpRepr) {
        // The SYN is one segment; Karn's rule and the echo check apply to it as to data.
        let acked = match (self.syn.retransmitted, self.syn.first_sent) {
            (false, t) => Acked {
                rtt_sample_from: t,
                ..Acked::default()
            },
            (true, _) => Acked {
                last_resend: self.syn.last_sent,
                ..Acked::default()
            },
        };
        self.ack_rtt_sample(now, seg, &acked);
    }

    pub(super) fn syn_segment(&mut self, now: Instant) -> Option<TcpRepr> {
        if !self.syn.pending {
            return None;
        }
        self.syn.pending = false;
        let active = self.state == State::SynSent;
        let mut flags = Flags::SYN;
        if !active {
            flags |= Flags::ACK;
        }
        let mut r = self.header(now, self.snd.iss, flags);
        r.sack = SackBlocks::default();
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        r.window = self.rcv.buf.window().min(65535) as u16;
        r.mss = Some(self.cfg.mss);
        let offer_ws = if active {
            self.opts.window_scaling
        } else {
            self.enabled.window_scaling
        };
        r.window_scale = offer_ws.then_some(self.rcv.wscale);
        r.sack_permitted = if active {
            self.opts.sack
        } else {
            self.enabled.sack
        };
        let offer_ts = if active {
            self.opts.timestamps
        } else {
            self.enabled.timestamps
        };
        r.timestamp = offer_ts.then(|| Timestamp {
            tsval: self.ts_now(now),
            tsecr: if active { 0 } else { self.rcv.ts_recent },
        });
        self.snd.max = self.snd.iss + 1;
        self.syn.first_sent.get_or_insert(now);
        self.syn.last_sent = Some(now);
        self.timers[Timer::Rto] = Some(now + self.rec.rtt.rto());
        if self.syn.retransmitted {
            self.stats.retransmissions += 1;
        }
        Some(r)
    }
}
