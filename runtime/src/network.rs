//! Network worker: one of N, each owning an `Ipv4Endpoint` (validation, its reassembly shard,
//! ICMP) and the timers of that shard.
//!
//! Policy: packets for the transport layer go to the worker that owns their flow with
//! `try_send` (a full queue drops the batch and counts it). Packets to send go to link TX with
//! a blocking `send` (egress pushes back).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use netstack_network::endpoint::{
    IcmpEvent, Ipv4Endpoint, Ipv4Stats, Outgoing, Received, SendOptions,
};
use netstack_network::wire::icmpv4::Icmpv4Repr;
use netstack_network::wire::IpProtocol;

use crate::msg::{NetMsg, RxPacket, TxMsg, TxPacket};
use crate::ping::EchoRegistry;
use crate::stats::Published;
use crate::POLL_INTERVAL;

/// Messages handled per wake-up before outputs are flushed and timers checked.
const DRAIN_LIMIT: usize = 64;

pub(crate) struct NetworkWorker {
    pub endpoint: Ipv4Endpoint,
    pub rx: Receiver<NetMsg>,
    pub tx: Sender<TxMsg>,
    pub echo: Arc<EchoRegistry>,
    pub stop: Arc<AtomicBool>,
    pub stats: Published<Ipv4Stats>,
    out: Vec<TxPacket>,
}

impl NetworkWorker {
    pub fn new(
        endpoint: Ipv4Endpoint,
        rx: Receiver<NetMsg>,
        tx: Sender<TxMsg>,
        echo: Arc<EchoRegistry>,
        stop: Arc<AtomicBool>,
        stats: Published<Ipv4Stats>,
    ) -> Self {
        Self {
            endpoint,
            rx,
            tx,
            echo,
            stop,
            stats,
            out: Vec::new(),
        }
    }

    pub fn run(mut self) {
        loop {
            let now = Instant::now();
            let deadline = self
                .endpoint
                .poll_deadline()
                .map_or(now + POLL_INTERVAL, |d| d.min(now + POLL_INTERVAL));
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => {
                    self.handle(msg);
                    for _ in 0..DRAIN_LIMIT {
                        match self.rx.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if self.endpoint.poll_deadline().is_some_and(|d| d <= now) {
                for o in self.endpoint.on_timeout(now) {
                    self.queue(o);
                }
            }
            self.flush();
            self.stats.layer.clone_from(self.endpoint.stats());
            self.stats.publish();
        }
        self.flush();
        self.stats.layer.clone_from(self.endpoint.stats());
        self.stats.publish();
    }

    fn handle(&mut self, msg: NetMsg) {
        let now = Instant::now();
        match msg {
            NetMsg::Inbound(batch) => {
                for p in batch {
                    self.receive(now, p);
                }
            }
            NetMsg::Echo {
                dst,
                ident,
                seq_no,
                data,
            } => {
                let icmp = Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data: &data,
                }
                .to_bytes();
                match self
                    .endpoint
                    .send(now, dst, IpProtocol::Icmp, &icmp, SendOptions::default())
                {
                    Ok(o) => self.queue(o),
                    Err(e) => {
                        log::debug!("echo to {dst}: {e:?}");
                        self.stats.runtime.echo_send_errors += 1;
                    }
                }
            }
        }
    }

    fn receive(&mut self, now: Instant, p: RxPacket) {
        match self.endpoint.receive(now, p.bytes()) {
            Received::Respond(o) => self.queue(o),
            Received::Icmp(IcmpEvent::EchoReply {
                src,
                ident,
                seq_no,
                data,
            }) => {
                if !self.echo.deliver(src, ident, seq_no, data) {
                    self.stats.runtime.echo_replies_unclaimed += 1;
                }
            }
            // Transport protocols and ICMP errors for them are wired in with TCP and UDP.
            Received::Deliver { .. } | Received::Icmp(_) => {}
            Received::Held | Received::Dropped(_) => {}
        }
    }

    fn queue(&mut self, o: Outgoing) {
        let next_hop = o.next_hop;
        self.out.extend(
            o.packets
                .into_iter()
                .map(|packet| TxPacket { next_hop, packet }),
        );
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            // Blocking: egress pushes back. Disconnected only during shutdown.
            let _ = self.tx.send(TxMsg::Packets(std::mem::take(&mut self.out)));
        }
    }
}
