//! Transport worker: one of T, each owning the UDP sockets whose local port hashes to it (and,
//! with TCP, the connections whose keyed 4-tuple hashes to it).
//!
//! Policy: inbound datagrams arrive in batches from the network workers (who dropped and
//! counted when this queue was full); a datagram for a full socket queue is dropped and
//! counted. What the worker produces (ICMP port unreachable) goes to link TX with a blocking
//! send (egress pushes back). Each worker owns an `Ipv4Endpoint` used only to build ICMP
//! errors with its own share of the rate limit. (UDP sends skip the worker: see `udp`.)

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use netstack_network::endpoint::{IcmpErrorKind, Ipv4Endpoint, Ipv4Stats, Outgoing, SendOptions};
use netstack_network::wire::ipv4::Ipv4Repr;
use netstack_network::wire::IpProtocol;
use netstack_transport::tcp::{
    ConnId, Endpoint, IcmpErrorInfo, SocketOptions, TcpError, TcpEvent, TcpStats,
};
use netstack_transport::udp::{self, Input, SocketTable, UdpStats};

use crate::actor::{self, Actor};
use crate::msg::{Delivery, TcpCmd, TransportMsg, TxMsg, TxPacket};
use crate::stack::Shared;
use crate::stats::Published;
use crate::tcp::{ConnShared, ListenerShared};
use crate::udp::{Datagram, SocketInner};

/// Messages handled per wake-up before outputs are flushed.
const DRAIN_LIMIT: usize = 64;

/// A transport worker's counters: TCP, UDP, and the IPv4 sends and ICMP errors it made.
#[derive(Debug, Default, Clone)]
pub struct TransportStats {
    pub tcp: TcpStats,
    pub udp: UdpStats,
    pub ipv4: Ipv4Stats,
}

/// How long a worker keeps closing its TCP connections after a stop before resetting them.
const TCP_CLOSE_GRACE: Duration = Duration::from_secs(1);

pub(crate) struct TransportWorker {
    pub index: usize,
    pub tcp: Endpoint,
    /// The application side of each connection this worker owns.
    pub tcp_conns: HashMap<ConnId, Arc<ConnShared>>,
    pub tcp_listeners: HashMap<SocketAddrV4, Arc<ListenerShared>>,
    /// When the stop was first seen (TCP connections get a grace period to close).
    pub stop_seen: Option<Instant>,
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

    fn next_deadline(&self) -> Option<Instant> {
        self.tcp.poll_deadline()
    }

    fn after_wake(&mut self) {
        let now = Instant::now();
        if self.tcp.poll_deadline().is_some_and(|d| d <= now) {
            self.tcp.on_timeout(now);
        }
        self.tcp_output(now);
        self.flush();
    }

    /// Shutdown: close every connection (FIN after buffered data), give them
    /// [`TCP_CLOSE_GRACE`] to finish, then reset what is left.
    fn may_stop(&mut self) -> bool {
        let now = Instant::now();
        let first = *self.stop_seen.get_or_insert_with(|| {
            for id in self.tcp_conns.keys().copied().collect::<Vec<_>>() {
                self.tcp.close(id);
            }
            now
        });
        let done = self.tcp.connection_count() == 0;
        if !done && now.duration_since(first) >= TCP_CLOSE_GRACE {
            for id in self.tcp_conns.keys().copied().collect::<Vec<_>>() {
                self.tcp.abort(id);
            }
        }
        self.tcp_output(now);
        self.flush();
        let stop = done || now.duration_since(first) >= TCP_CLOSE_GRACE;
        if stop {
            // Wake every reader and writer still blocked: nothing more will come.
            for c in self.tcp_conns.values() {
                c.on_closed(Some(TcpError::ConnectionAborted));
            }
        }
        stop
    }

    fn handle(&mut self, msg: TransportMsg) {
        let now = Instant::now();
        match msg {
            TransportMsg::Inbound(batch) => {
                // One lock of the socket table per batch, not per datagram.
                let shared = self.shared.clone();
                let table = shared.udp.lock();
                for d in batch {
                    match d.header.protocol {
                        IpProtocol::Udp => self.udp_input(now, d, &table),
                        IpProtocol::Tcp => {
                            let seg = &d.buf[d.payload.clone()];
                            self.tcp.on_segment(now, d.header.src, d.header.dst, seg);
                        }
                        _ => {}
                    }
                }
            }
            TransportMsg::IcmpError { kind, header, data }
                if header.protocol == IpProtocol::Tcp =>
            {
                if let Some(info) = tcp_icmp(kind, &header, &data) {
                    self.tcp.on_icmp_error(now, info);
                }
            }
            TransportMsg::IcmpError { kind, header, data } => self.icmp_error(kind, header, &data),
            TransportMsg::Tcp(cmd) => self.tcp_command(now, cmd),
        }
    }
}

impl TransportWorker {
    fn tcp_command(&mut self, now: Instant, cmd: TcpCmd) {
        match cmd {
            TcpCmd::Listen {
                local,
                backlog,
                listener,
            } => {
                if self
                    .tcp
                    .listen(local, backlog, SocketOptions::default())
                    .is_ok()
                {
                    self.tcp_listeners.insert(local, listener);
                }
            }
            TcpCmd::Unlisten { local } => {
                self.tcp.unlisten(local);
                self.tcp_listeners.remove(&local);
            }
            TcpCmd::Connect { tuple, conn } => {
                match self.tcp.connect(now, tuple, SocketOptions::default()) {
                    Ok(id) => {
                        conn.set_id(id);
                        self.tcp_conns.insert(id, conn);
                    }
                    Err(e) => conn.on_closed(Some(e)),
                }
            }
            TcpCmd::Accepted { id } => self.tcp.accepted(id),
            TcpCmd::Send { id, data, reply } => {
                let _ = reply.send(self.tcp.send(id, &data));
            }
            TcpCmd::Recv { id, max, reply } => {
                let mut buf = vec![0u8; max];
                let r = self.tcp.recv(id, &mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                let _ = reply.send(r);
            }
            TcpCmd::SetOptions { id, opts } => {
                let _ = self.tcp.set_options(id, opts);
            }
            TcpCmd::ShutdownWrite { id } => self.tcp.shutdown_write(id),
            TcpCmd::Close { id } => {
                self.tcp.close(id);
                self.tcp_conns.remove(&id);
            }
            TcpCmd::Abort { id } => {
                self.tcp.abort(id);
                if let Some(c) = self.tcp_conns.remove(&id) {
                    c.on_closed(Some(TcpError::ConnectionAborted));
                }
            }
        }
    }

    /// Segments out to link TX, events out to the sockets.
    fn tcp_output(&mut self, now: Instant) {
        let mut segs = Vec::new();
        self.tcp.poll_transmit(now, &mut segs);
        for (_src, dst, seg) in segs {
            let opts = SendOptions {
                dont_frag: true,
                ..SendOptions::default()
            };
            match self.ip.send(now, dst, IpProtocol::Tcp, &seg, opts) {
                Ok(o) => self.queue(o),
                Err(e) => log::debug!("TCP segment to {dst}: {e:?}"),
            }
        }
        while let Some(ev) = self.tcp.poll_event() {
            match ev {
                TcpEvent::Accepted { listener, id } => {
                    let remote = self.tcp.connection(id).map(|c| c.tuple().remote);
                    match (self.tcp_listeners.get(&listener), remote) {
                        (Some(l), Some(remote)) => {
                            let conn = Arc::new(ConnShared::new(self.index, Some(id)));
                            if l.push(conn.clone(), remote) {
                                self.tcp_conns.insert(id, conn);
                            } else {
                                self.tcp.abort(id);
                            }
                        }
                        _ => self.tcp.abort(id),
                    }
                }
                TcpEvent::Connected(id) => {
                    if let Some(c) = self.tcp_conns.get(&id) {
                        c.on_connected(id);
                    }
                }
                TcpEvent::Readable(id) => {
                    if let Some(c) = self.tcp_conns.get(&id) {
                        c.on_readable();
                    }
                }
                TcpEvent::Writable(id) => {
                    if let Some(c) = self.tcp_conns.get(&id) {
                        c.on_writable();
                    }
                }
                TcpEvent::Closed(id, err) => {
                    if let Some(c) = self.tcp_conns.get(&id) {
                        c.on_closed(err);
                    }
                }
            }
        }
    }

    /// A received UDP datagram: the sans-IO endpoint decides, the worker queues or answers.
    fn udp_input(&mut self, now: Instant, d: Delivery, table: &SocketTable<Arc<SocketInner>>) {
        let bytes = &d.buf[d.payload.clone()];
        match udp::receive(table, &d.header, bytes, &mut self.stats.layer.udp) {
            Input::Deliver {
                socket,
                from,
                payload,
                ..
            } => {
                let datagram = Datagram {
                    from,
                    payload: d.payload.start + payload.start..d.payload.start + payload.end,
                    buf: d.buf,
                };
                if socket.push(datagram) {
                    self.stats.layer.udp.rx_delivered += 1;
                } else {
                    self.stats.layer.udp.rx_queue_full += 1;
                }
            }
            Input::Reject(kind) => {
                // The IPv4 layer applies its rules (broadcasts, fragments) and rate limit.
                let out = match d.ip_offset {
                    Some(off) => self.ip.icmp_error(now, &d.buf[off..], kind),
                    None => self.ip.icmp_error_about(now, &d.header, bytes, kind),
                };
                if let Some(o) = out {
                    self.queue(o);
                }
            }
            Input::Drop(_) => {}
        }
    }

    /// An ICMP error about a datagram we sent: the sans-IO endpoint names the socket (only a
    /// connected one) and the error its next call reports.
    fn icmp_error(&mut self, kind: IcmpErrorKind, header: Ipv4Repr, data: &[u8]) {
        let report = {
            let table = self.shared.udp.lock();
            udp::icmp_error(&table, kind, &header, data, &mut self.stats.layer.udp)
                .map(|r| (r.socket.clone(), r.error))
        };
        if let Some((socket, error)) = report {
            socket.set_error(error);
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
        self.stats.layer.tcp = self.tcp.stats();
        self.stats.publish();
    }
}

/// The TCP core's view of an ICMP error quoting one of our segments (`None`: it quotes
/// fewer than the 8 bytes TCP needs).
fn tcp_icmp(kind: IcmpErrorKind, header: &Ipv4Repr, data: &[u8]) -> Option<IcmpErrorInfo> {
    IcmpErrorInfo::new(kind, header.src, header.dst, data)
}
