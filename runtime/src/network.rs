//! Network worker: one of N, each owning an `Ipv4Endpoint` (validation, its reassembly shard,
//! ICMP) and the timers of that shard.
//!
//! Policy: packets for the transport layer go to the worker that owns their flow with
//! `try_send` (a full queue drops the batch and counts it). Packets to send go to link TX with
//! a blocking `send` (egress pushes back).

use std::net::SocketAddrV4;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use netstack_network::endpoint::{
    IcmpEvent, Ipv4Endpoint, Ipv4Stats, LocalUnreachable, Outgoing, Payload, Received, SendOptions,
};
use netstack_network::wire::icmpv4::Icmpv4Repr;
use netstack_network::wire::ipv4::Ipv4Repr;
use netstack_network::wire::IpProtocol;

use crate::actor::{self, Actor};
use netstack_transport::Checksum;

use crate::msg::{BatchPool, Delivery, NetMsg, RxPacket, TransportMsg, TxMsg, TxPacket};
use crate::ping::EchoRegistry;
use crate::shard::Sharder;
use crate::stats::Published;

/// Messages handled per wake-up before outputs are flushed and timers checked.
const DRAIN_LIMIT: usize = 64;

pub(crate) struct NetworkWorker {
    pub endpoint: Ipv4Endpoint,
    pub rx: Receiver<NetMsg>,
    pub tx: Sender<TxMsg>,
    pub transport: Vec<Sender<TransportMsg>>,
    pub sharder: Sharder,
    pub echo: Arc<EchoRegistry>,
    pub stop: Arc<AtomicBool>,
    pub stats: Published<Ipv4Stats>,
    pub out: Vec<TxPacket>,
    /// Per transport worker, the deliveries of this wake-up.
    pub deliveries: Vec<Vec<Delivery>>,
    /// Batch vectors: link RX's handed back here, ours taken here and handed back by the
    /// transport workers.
    pub rx_batches: Arc<BatchPool<RxPacket>>,
    pub delivery_batches: Arc<BatchPool<Delivery>>,
    /// How long to spin for more work after a busy wake-up before parking.
    pub spin: std::time::Duration,
}

impl NetworkWorker {
    pub fn run(mut self) {
        let (rx, stop, spin) = (self.rx.clone(), self.stop.clone(), self.spin);
        actor::run(&mut self, &rx, &stop, DRAIN_LIMIT, spin);
    }
}

impl Actor for NetworkWorker {
    type Msg = NetMsg;

    fn next_deadline(&self) -> Option<Instant> {
        self.endpoint.poll_deadline()
    }

    fn after_wake(&mut self) {
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

    fn handle(&mut self, msg: NetMsg) {
        let now = Instant::now();
        match msg {
            NetMsg::Inbound(mut batch) => {
                for p in batch.drain(..) {
                    self.receive(now, p);
                }
                self.rx_batches.give(batch);
            }
            NetMsg::Unreachable(packets) => {
                for p in packets {
                    self.local_unreachable(&p);
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
}

impl NetworkWorker {
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
            Received::Deliver { header, payload } => {
                let d = match payload {
                    Payload::InPlace(r) => Delivery {
                        header,
                        ip_offset: Some(p.offset),
                        payload: p.offset + r.start..p.offset + r.end,
                        buf: p.frame,
                        checksum: p.checksum,
                    },
                    Payload::Owned(buf) => Delivery {
                        header,
                        ip_offset: None,
                        payload: 0..buf.len(),
                        buf,
                        // A reassembled datagram was never offloaded.
                        checksum: Checksum::Verify,
                    },
                };
                let w = self.owner(&header, &d.buf[d.payload.clone()], true);
                self.deliveries[w].push(d);
            }
            Received::Icmp(IcmpEvent::Error {
                kind, header, data, ..
            }) => {
                let w = self.owner(&header, &data, false);
                self.send_to_transport(w, TransportMsg::IcmpError { kind, header, data }, 1);
            }
            Received::Held | Received::Dropped(_) => {}
        }
    }

    /// One of our own datagrams could not reach its next hop: the endpoint says whom to tell
    /// (a pinger, or the transport worker owning the socket, as if an ICMP error had come
    /// back).
    fn local_unreachable(&mut self, packet: &[u8]) {
        match self.endpoint.local_unreachable(packet) {
            Some(LocalUnreachable::Echo { dst, ident, seq_no }) => {
                self.echo.unreachable(dst, ident, seq_no);
            }
            Some(LocalUnreachable::Transport { kind, header, data }) => {
                let w = self.owner(&header, &data, false);
                self.send_to_transport(w, TransportMsg::IcmpError { kind, header, data }, 1);
            }
            None => {}
        }
    }

    /// Ingress policy: a full transport queue drops the message (counted, with the `packets`
    /// it carried), never blocks.
    fn send_to_transport(&mut self, worker: usize, msg: TransportMsg, packets: u64) {
        if self.transport[worker].try_send(msg).is_err() {
            self.stats.runtime.transport_queue_full += 1;
            self.stats.runtime.transport_queue_full_packets += packets;
        }
    }

    /// The transport worker owning a segment or datagram. `inbound`: the bytes are a received
    /// transport header (our port is the destination); otherwise one we sent, quoted in an ICMP
    /// error (our port is the source). Too-short input goes to worker 0, which counts it.
    fn owner(&self, header: &Ipv4Repr, transport: &[u8], inbound: bool) -> usize {
        let ports = transport.get(0..4).map(|p| {
            (
                u16::from_be_bytes([p[0], p[1]]),
                u16::from_be_bytes([p[2], p[3]]),
            )
        });
        match (header.protocol, ports) {
            (IpProtocol::Udp, Some((src, dst))) => {
                self.sharder.udp_worker(if inbound { dst } else { src })
            }
            // TCP: the keyed hash of the 4-tuple seen from our side.
            (IpProtocol::Tcp, Some((src, dst))) => {
                let (local, remote) = if inbound {
                    (
                        SocketAddrV4::new(header.dst, dst),
                        SocketAddrV4::new(header.src, src),
                    )
                } else {
                    (
                        SocketAddrV4::new(header.src, src),
                        SocketAddrV4::new(header.dst, dst),
                    )
                };
                self.sharder
                    .transport_worker(IpProtocol::Tcp, local, remote)
            }
            _ => 0,
        }
    }

    fn queue(&mut self, o: Outgoing) {
        self.out.extend(TxPacket::all(o));
    }

    fn flush(&mut self) {
        for w in 0..self.deliveries.len() {
            if !self.deliveries[w].is_empty() {
                let batch =
                    std::mem::replace(&mut self.deliveries[w], self.delivery_batches.take());
                let n = batch.len() as u64;
                self.send_to_transport(w, TransportMsg::Inbound(batch), n);
            }
        }
        if !self.out.is_empty() {
            // Blocking: egress pushes back. Disconnected only during shutdown.
            let _ = self.tx.send(TxMsg::Packets(std::mem::take(&mut self.out)));
        }
    }
}
