//! Link TX: resolves next hops through ARP (it owns the neighbour cache and its timers), frames
//! packets and writes them to the device.
//!
//! Policy: producers block when this queue is full (egress pushes back). Packets waiting for ARP
//! sit in the neighbour cache's bounded per-address queue; when resolution fails after three
//! tries they are dropped and counted as host unreachable. On shutdown the queue is drained
//! before the thread exits, so replies already produced still leave.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use netstack_link::device::{Device, Medium};
use netstack_link::neighbor::{NeighborCache, Resolve};
use netstack_link::wire::arp::ArpRepr;
use netstack_link::wire::ethernet::{EtherType, MacAddr};
use netstack_link::LinkStats;

use crate::actor::{self, Actor};
use crate::direct::DirectTx;
use crate::frame::Framer;
use crate::msg::{NetMsg, TxMsg, TxOffload, TxPacket};
use crate::stats::Published;

/// How long link TX stays up after a stop for packets still waiting for ARP.
const ARP_FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Messages handled per wake-up before the stats are published and timers checked.
const DRAIN_LIMIT: usize = 256;

pub(crate) struct LinkTx {
    pub device: Arc<dyn Device>,
    framer: Framer,
    /// Destinations that need no resolution: the limited and the subnet broadcast.
    pub broadcast: [Ipv4Addr; 2],
    pub neighbors: NeighborCache<TxPacket>,
    pub rx: Receiver<TxMsg>,
    /// Where to report packets that failed resolution (any network worker will do).
    pub net: Sender<NetMsg>,
    pub stop: Arc<AtomicBool>,
    pub stats: Published<LinkStats>,
    /// Where resolved neighbours are published for direct transmission.
    direct: Arc<DirectTx>,
    scratch: Vec<u8>,
    /// When `may_stop` was first asked.
    stop_seen: Option<Instant>,
    /// How long to spin for more work after a busy wake-up before parking.
    pub spin: std::time::Duration,
}

impl LinkTx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        device: Arc<dyn Device>,
        mac: MacAddr,
        broadcast: [Ipv4Addr; 2],
        neighbors: NeighborCache<TxPacket>,
        rx: Receiver<TxMsg>,
        net: Sender<NetMsg>,
        stop: Arc<AtomicBool>,
        stats: Published<LinkStats>,
        direct: Arc<DirectTx>,
    ) -> Self {
        Self {
            framer: Framer::new(&*device, mac),
            device,
            broadcast,
            neighbors,
            rx,
            net,
            stop,
            stats,
            direct,
            scratch: Vec::with_capacity(2048),
            stop_seen: None,
            spin: std::time::Duration::ZERO,
        }
    }

    pub fn run(mut self) {
        if self.device.medium() == Medium::Ethernet {
            // Announce ourselves so the peer's cache is fresh (RFC 5227 §3 "ARP Announcement").
            let g = self.neighbors.gratuitous();
            self.send_arp(&g);
            self.stats.layer.record_arp_out(g.operation);
            self.flush_device();
        }
        let (rx, stop, spin) = (self.rx.clone(), self.stop.clone(), self.spin);
        actor::run(&mut self, &rx, &stop, DRAIN_LIMIT, spin);
    }

    /// Our own counters plus the neighbour cache's ARP counters.
    fn publish(&mut self) {
        let own = self.stats.layer;
        self.stats.layer.add(self.neighbors.stats());
        self.stats.publish();
        self.stats.layer = own;
    }
}

impl Actor for LinkTx {
    type Msg = TxMsg;

    /// Shutdown flushes output, and packets waiting for ARP are output too: keep resolving
    /// them for up to [`ARP_FLUSH_GRACE`] after the stop (their senders are told host
    /// unreachable if it fails, as usual).
    fn may_stop(&mut self) -> bool {
        let first = *self.stop_seen.get_or_insert_with(Instant::now);
        self.neighbors.pending_len() == 0 || first.elapsed() >= ARP_FLUSH_GRACE
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.neighbors.poll_deadline()
    }

    fn after_wake(&mut self) {
        self.on_timers();
        self.flush_device();
        self.publish();
    }

    fn handle(&mut self, msg: TxMsg) {
        match msg {
            TxMsg::Packets(batch) => {
                for p in batch {
                    self.send_packet(p);
                }
            }
            TxMsg::Arp(reprs) => {
                let now = Instant::now();
                for repr in reprs {
                    let out = self.neighbors.on_arp(now, &repr);
                    // What direct senders use follows the cache at once (a new or changed MAC).
                    match self.neighbors.lookup(now, repr.sender_ip) {
                        Some(mac) => self.direct.publish(repr.sender_ip, mac, now),
                        None => self.direct.forget(repr.sender_ip),
                    }
                    if let Some(reply) = out.reply {
                        self.send_arp(&reply);
                    }
                    for (mac, mut packet) in out.released {
                        self.write_packet(mac, &mut packet);
                    }
                }
            }
        }
    }
}

impl LinkTx {
    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.neighbors.poll_deadline().is_some_and(|d| d <= now) {
            let out = self.neighbors.on_timeout(now);
            for req in &out.requests {
                self.send_arp(req);
            }
            for (ip, _) in &out.failed {
                self.direct.forget(*ip);
            }
            self.stats.runtime.tx_host_unreachable += out.failed.len() as u64;
            if !out.failed.is_empty() {
                // Rare: one message; a full queue drops the reports (the senders time out).
                let packets = out
                    .failed
                    .into_iter()
                    .map(|(_, p)| p.into_datagram())
                    .collect();
                let _ = self.net.try_send(NetMsg::Unreachable(packets));
            }
        }
    }

    fn send_packet(&mut self, mut p: TxPacket) {
        if self.device.medium() == Medium::Ip {
            self.write_packet(MacAddr::ZERO, &mut p);
            return;
        }
        if self.broadcast.contains(&p.next_hop) {
            self.write_packet(MacAddr::BROADCAST, &mut p);
            return;
        }
        let next_hop = p.next_hop;
        match self.neighbors.resolve(Instant::now(), next_hop, p) {
            Resolve::Ready(mac, mut packet) => {
                self.direct.publish(next_hop, mac, Instant::now());
                self.write_packet(mac, &mut packet)
            }
            Resolve::Queued { request } => {
                if let Some(req) = request {
                    self.send_arp(&req);
                }
            }
            // Counted by the neighbour cache under its reason.
            Resolve::Dropped(..) => {}
        }
    }

    fn send_arp(&mut self, repr: &ArpRepr) {
        let eth = repr.ethernet_repr();
        let r = self.framer.send_copy(
            &*self.device,
            eth.dst,
            EtherType::Arp,
            &repr.to_bytes(),
            TxOffload::None,
            &mut self.scratch,
        );
        self.count(r, false);
    }

    /// Frames and writes one datagram (in place when it has room, else in the scratch buffer:
    /// no allocation per packet, at most one copy).
    fn write_packet(&mut self, dst: MacAddr, p: &mut TxPacket) {
        let r = self.framer.send(&*self.device, p, dst, &mut self.scratch);
        self.count(r, p.offload.segmented());
    }

    /// A device that batches its writes gets what this wake-up wrote out now.
    fn flush_device(&mut self) {
        if let Err(e) = self.device.flush() {
            self.stats.runtime.tx_device_errors += 1;
            self.stats.layer.tx_errors += 1;
            log::debug!("writing to {}: {e}", self.device.name());
        }
    }

    fn count(&mut self, r: std::io::Result<usize>, segmented: bool) {
        match r {
            Ok(len) => {
                self.stats.runtime.tx_frames += 1;
                self.stats.layer.record_out(len);
                if segmented {
                    self.stats.layer.tx_segmentation_offloaded += 1;
                }
            }
            Err(e) => {
                self.stats.runtime.tx_device_errors += 1;
                self.stats.layer.tx_errors += 1;
                log::debug!("writing to {}: {e}", self.device.name());
            }
        }
    }
}
