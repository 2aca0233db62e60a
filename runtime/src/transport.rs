//! Transport worker: one of T, each owning the UDP sockets whose local port hashes to it (and,
//! with TCP, the connections whose keyed 4-tuple hashes to it).
//!
//! Policy: inbound datagrams arrive in batches from the network workers (who dropped and
//! counted when this queue was full); a datagram for a full socket queue is dropped and
//! counted. What the worker produces (ICMP port unreachable) goes to link TX with a blocking
//! send (egress pushes back). Each worker owns an `Ipv4Endpoint` used only to build ICMP
//! errors with its own share of the rate limit. (UDP sends skip the worker: see `udp`.)

use std::io;
use std::net::SocketAddrV4;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use netstack_network::endpoint::{IcmpErrorKind, Ipv4Endpoint, Ipv4Stats, Outgoing};
use netstack_network::wire::icmpv4::{DstUnreachable, TimeExceeded};
use netstack_network::wire::ipv4::Ipv4Repr;
use netstack_network::wire::IpProtocol;
use netstack_transport::udp::{SocketTable, UdpPacket, UdpRepr, UdpStats};

use crate::actor::{self, Actor};
use crate::msg::{Delivery, TransportMsg, TxMsg, TxPacket};
use crate::stack::Shared;
use crate::stats::Published;
use crate::udp::{Datagram, SocketInner};

/// Messages handled per wake-up before outputs are flushed.
const DRAIN_LIMIT: usize = 64;

/// A transport worker's counters: UDP, and the IPv4 sends and ICMP errors it made.
#[derive(Debug, Default, Clone)]
pub struct TransportStats {
    pub udp: UdpStats,
    pub ipv4: Ipv4Stats,
}

pub(crate) struct TransportWorker {
    pub ip: Ipv4Endpoint,
    pub rx: Receiver<TransportMsg>,
    pub tx: Sender<TxMsg>,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub stats: Published<TransportStats>,
    pub out: Vec<TxPacket>,
}

impl TransportWorker {
    pub fn run(mut self) {
        let (rx, stop) = (self.rx.clone(), self.stop.clone());
        actor::run(&mut self, &rx, &stop, DRAIN_LIMIT);
    }
}

impl Actor for TransportWorker {
    type Msg = TransportMsg;

    fn after_wake(&mut self) {
        self.flush();
    }

    fn handle(&mut self, msg: TransportMsg) {
        let now = Instant::now();
        match msg {
            TransportMsg::Inbound(batch) => {
                // Only UDP arrives here until TCP is wired in: IPv4 answers TCP with protocol
                // unreachable meanwhile (see `stack::ip_config`).
                // One lock of the socket table per batch, not per datagram.
                let shared = self.shared.clone();
                let table = shared.udp.lock();
                for d in batch {
                    if d.header.protocol == IpProtocol::Udp {
                        self.udp_input(now, d, &table);
                    }
                }
            }
            TransportMsg::IcmpError { kind, header, data } => self.icmp_error(kind, header, &data),
        }
    }
}

impl TransportWorker {
    fn udp_input(&mut self, now: Instant, d: Delivery, table: &SocketTable<Arc<SocketInner>>) {
        let st = &mut self.stats.layer.udp;
        st.rx_datagrams += 1;
        let (src, dst) = (d.header.src, d.header.dst);
        let bytes = &d.buf[d.payload.clone()];
        let parsed = UdpPacket::new_checked(bytes)
            .and_then(|p| UdpRepr::parse(&p, src, dst).map(|r| (r, p.len())));
        let (repr, len) = match parsed {
            Ok(x) => x,
            Err(e) => {
                st.record_error(e);
                return;
            }
        };
        let local = SocketAddrV4::new(dst, repr.dst_port);
        let remote = SocketAddrV4::new(src, repr.src_port);
        match table.lookup(local, remote) {
            Some((_, sock)) => {
                let start = d.payload.start + netstack_transport::udp::HEADER_LEN;
                let datagram = Datagram {
                    from: remote,
                    payload: start..d.payload.start + len,
                    buf: d.buf,
                };
                if sock.push(datagram) {
                    self.stats.layer.udp.rx_delivered += 1;
                } else {
                    self.stats.layer.udp.rx_queue_full += 1;
                }
            }
            None => {
                st.rx_no_socket += 1;
                // RFC 1122 §4.1.3.1: port unreachable (the IPv4 layer applies the rules about
                // broadcasts and fragments, and the rate limit).
                let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable);
                let out = match d.ip_offset {
                    Some(off) => self.ip.icmp_error(now, &d.buf[off..], kind),
                    None => self.ip.icmp_error_about(now, &d.header, bytes, kind),
                };
                if let Some(o) = out {
                    self.queue(o);
                }
            }
        }
    }

    /// An ICMP error about a datagram we sent: a connected socket learns it on its next call,
    /// as on Linux; unconnected sockets never hear of it.
    fn icmp_error(&mut self, kind: IcmpErrorKind, header: Ipv4Repr, data: &[u8]) {
        if header.protocol != IpProtocol::Udp || data.len() < 4 {
            return;
        }
        let local = SocketAddrV4::new(header.src, u16::from_be_bytes([data[0], data[1]]));
        let remote = SocketAddrV4::new(header.dst, u16::from_be_bytes([data[2], data[3]]));
        let errno = match kind {
            IcmpErrorKind::DstUnreachable(DstUnreachable::PortUnreachable)
            | IcmpErrorKind::DstUnreachable(DstUnreachable::ProtocolUnreachable) => {
                io::ErrorKind::ConnectionRefused
            }
            IcmpErrorKind::DstUnreachable(DstUnreachable::NetUnreachable)
            | IcmpErrorKind::DstUnreachable(DstUnreachable::DstNetUnknown) => {
                io::ErrorKind::NetworkUnreachable
            }
            // Path MTU: nothing for the socket to report (the next send is fragmented anyway).
            IcmpErrorKind::DstUnreachable(DstUnreachable::FragRequired { .. }) => return,
            IcmpErrorKind::DstUnreachable(_)
            | IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded) => {
                io::ErrorKind::HostUnreachable
            }
            IcmpErrorKind::TimeExceeded(_) => return,
        };
        let socket = self
            .shared
            .udp
            .lock()
            .lookup(local, remote)
            .map(|(_, s)| s.clone());
        match socket {
            Some(sock) if *sock.remote.lock() == Some(remote) => {
                sock.set_error(errno);
                self.stats.layer.udp.icmp_errors_delivered += 1;
            }
            _ => self.stats.layer.udp.icmp_errors_ignored += 1,
        }
    }

    fn queue(&mut self, o: Outgoing) {
        self.out.extend(TxPacket::all(o));
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            let _ = self.tx.send(TxMsg::Packets(std::mem::take(&mut self.out)));
        }
        self.stats.layer.ipv4.clone_from(self.ip.stats());
        self.stats.publish();
    }
}
