//! Transport worker: one of T, each owning the UDP sockets whose local port hashes to it and
//! the TCP connections whose keyed 4-tuple hashes to it.
//!
//! Policy:
//! - Inbound packets arrive in batches from the network workers (who dropped and counted when
//!   this queue was full); a datagram for a full socket queue is dropped and counted.
//! - Application commands (connect, listen, close, options) arrive on their own queue and are
//!   handled before packets in each wake-up, so heavy socket use never crowds out segments and
//!   segments never delay a command. Reads and writes send no command: the application copies
//!   into and out of the connection's rings and, on an edge, puts the connection on this
//!   worker's ready list (see `tcp`), which is drained on every wake-up.
//! - What the worker produces goes to link TX with a blocking send (egress pushes back).
//! - Counters are kept as events happen (TCP's totals included, without walking the
//!   connections) and published once per wake-up.
//! - Shutdown comes in two steps. While the stack is *closing* (intake still open, packets
//!   flowing both ways), every connection the application holds is shut down for writing (FIN
//!   after its buffered data) and the worker reports how many are still active; the stack
//!   waits for none or its grace deadline. When the worker is then *stopped*, whatever is left
//!   (released connections included) is reset, the output flushed, and the worker ends.
//!
//! Each worker owns an `Ipv4Endpoint` used to build its IPv4 datagrams and ICMP errors with
//! its own share of the rate limit. (UDP sends skip the worker: see `udp`.)

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use netstack_link::device::FramePool;
use netstack_link::LinkStats;
use netstack_network::endpoint::{IcmpErrorKind, Ipv4Endpoint, Ipv4Stats, Outgoing, SendOptions};
use netstack_network::wire::ipv4::{Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN};
use netstack_network::wire::IpProtocol;
use netstack_transport::tcp::gro::{append, GroFlow, GroKey, MAX_COALESCED_PAYLOAD};
use netstack_transport::tcp::segment::TcpPacket;
use netstack_transport::tcp::{
    ConnId, Endpoint, IcmpErrorInfo, State, TcpError, TcpEvent, TcpStats, Transmit,
};
use netstack_transport::udp::{self, Input, SocketTable, UdpStats};
use netstack_transport::Checksum;

use crate::msg::{BatchPool, Delivery, TcpCmd, TransportMsg, TxMsg, TxOffload, TxPacket};
use crate::stack::Shared;
use crate::stats::Published;
use crate::tcp::{ConnShared, ListenerShared, TcpInfo};
use crate::udp::{Datagram, SocketInner};
use crate::POLL_INTERVAL;

/// Messages handled per wake-up, per queue, before outputs are flushed.
const DRAIN_LIMIT: usize = 64;

/// Connections with a coalescing run open at once within one batch (see `coalesce`).
const GRO_RUNS: usize = 8;

/// A transport worker's counters: TCP, UDP, and the IPv4 sends and ICMP errors it made.
#[derive(Debug, Default, Clone)]
pub struct TransportStats {
    /// The worker's TCP endpoint, its connections' totals included.
    pub tcp: TcpStats,
    /// Frames this worker wrote to the device itself (see `direct`).
    pub link: LinkStats,
    /// UDP datagrams this worker delivered or dropped.
    pub udp: UdpStats,
    /// What its `Ipv4Endpoint` counted: datagrams built, ICMP errors sent or rate-limited.
    pub ipv4: Ipv4Stats,
}

pub(crate) struct TransportWorker {
    pub index: usize,
    pub tcp: Endpoint,
    /// The application side of each connection this worker owns.
    pub tcp_conns: HashMap<ConnId, Arc<ConnShared>>,
    pub tcp_listeners: HashMap<SocketAddrV4, Arc<ListenerShared>>,
    pub ip: Ipv4Endpoint,
    pub rx: Receiver<TransportMsg>,
    pub cmds: Receiver<TcpCmd>,
    pub tx: Sender<TxMsg>,
    pub shared: Arc<Shared>,
    pub stop: Arc<AtomicBool>,
    pub stats: Published<TransportStats>,
    pub out: Vec<TxPacket>,
    /// The closing step has begun (connections were shut down for writing).
    pub closing_seen: bool,
    pub ready_scratch: Vec<ConnId>,
    pub segs: Vec<Transmit>,
    pub frame_scratch: Vec<u8>,
    /// Connections that became readable or writable in this wake-up.
    pub readable: Vec<ConnId>,
    pub writable: Vec<ConnId>,
    /// Where received frames go back once handled.
    pub frames: Arc<FramePool>,
    /// Receive coalescing (software GRO) on.
    pub gro: bool,
    /// How long to spin for more work after a busy wake-up before parking.
    pub spin: std::time::Duration,
    /// Where emptied delivery batches go back to (the network workers fill them).
    pub delivery_batches: Arc<BatchPool<Delivery>>,
    /// `coalesce`'s open runs, kept between batches for their capacity.
    pub gro_runs: Vec<(usize, GroKey)>,
}

impl TransportWorker {
    pub fn run(mut self) {
        let never = crossbeam_channel::never();
        // Handles for `select!` taken once, not per wake-up (each clone is an atomic pair).
        let (packets, cmds) = (self.rx.clone(), self.cmds.clone());
        let mut packets_open = true;
        let mut busy = false;
        loop {
            if busy {
                crate::actor::spin_for_work(self.spin, || !packets.is_empty() || !cmds.is_empty());
            }
            let now = Instant::now();
            let deadline = self
                .tcp
                .poll_deadline()
                .map_or(now + POLL_INTERVAL, |d| d.min(now + POLL_INTERVAL));
            let timeout = deadline.saturating_duration_since(now);
            let rx = if packets_open { &packets } else { &never };
            let mut idle = false;
            crossbeam_channel::select! {
                recv(cmds) -> m => match m {
                    Ok(c) => self.tcp_command(Instant::now(), c),
                    Err(_) => idle = true,
                },
                recv(rx) -> m => match m {
                    Ok(msg) => self.handle(msg),
                    Err(_) => packets_open = false,
                },
                default(timeout) => idle = true,
            }
            // One wake-up, many messages: commands first, then packets.
            for _ in 0..DRAIN_LIMIT {
                match cmds.try_recv() {
                    Ok(c) => self.tcp_command(Instant::now(), c),
                    Err(_) => break,
                }
            }
            if packets_open {
                for _ in 0..DRAIN_LIMIT {
                    match rx.try_recv() {
                        Ok(msg) => self.handle(msg),
                        Err(_) => break,
                    }
                }
            }
            if (idle || !packets_open) && self.stop.load(Ordering::Relaxed) {
                self.finish();
                break;
            }
            busy = !idle;
            self.after_wake();
        }
    }

    /// The application touched these connections' rings: send new data and window updates.
    fn drain_ready(&mut self) {
        std::mem::swap(
            &mut *self.shared.tcp_ready[self.index].lock(),
            &mut self.ready_scratch,
        );
        let mut ids = std::mem::take(&mut self.ready_scratch);
        for id in ids.drain(..) {
            if let Some(c) = self.tcp_conns.get(&id) {
                // Cleared before the rings are looked at: a write after this point nudges again.
                c.unqueue();
            }
            self.tcp.on_app_io(id);
        }
        self.ready_scratch = ids;
    }

    fn after_wake(&mut self) {
        self.drain_ready();
        let now = Instant::now();
        if self.tcp.poll_deadline().is_some_and(|d| d <= now) {
            self.tcp.on_timeout(now);
        }
        if self.shared.is_closing() && !self.closing_seen {
            self.closing_seen = true;
            self.begin_closing();
        }
        self.tcp_output(now);
        self.flush();
        if self.closing_seen {
            self.shared.tcp_active[self.index].store(self.tcp.active_count(), Ordering::SeqCst);
        }
    }

    /// The stack is closing: every connection the application holds gets a FIN after its
    /// buffered data (no write can land behind it), while packets still flow both ways.
    fn begin_closing(&mut self) {
        for (id, c) in &self.tcp_conns {
            c.shut_write();
            self.tcp.shutdown_write(*id);
        }
    }

    /// The stack stopped: reset whatever is left, flush, wake every waiting thread.
    fn finish(&mut self) {
        let now = Instant::now();
        self.drain_ready();
        for id in self.tcp.ids() {
            if self.tcp.state(id).is_some_and(|s| s != State::TimeWait) {
                self.tcp.abort(id);
            }
        }
        self.tcp_output(now);
        self.flush();
        for c in self.tcp_conns.values() {
            c.on_closed(Some(TcpError::ConnectionAborted));
        }
        self.shared.tcp_active[self.index].store(0, Ordering::SeqCst);
    }

    fn handle(&mut self, msg: TransportMsg) {
        let now = Instant::now();
        match msg {
            TransportMsg::Inbound(mut batch) => {
                if self.gro {
                    self.coalesce(&mut batch);
                }
                // SYNs are admitted against each listener's whole accept queue, shared by
                // every worker.
                for (local, l) in &self.tcp_listeners {
                    self.tcp.set_accept_queue(*local, l.waiting());
                }
                // The UDP table is locked once per batch, and only for a batch that holds UDP.
                let shared = self.shared.clone();
                let mut table = None;
                for d in batch.drain(..) {
                    match d.header.protocol {
                        IpProtocol::Udp => {
                            let t = table.get_or_insert_with(|| shared.udp.lock());
                            self.udp_input(now, d, t);
                        }
                        IpProtocol::Tcp => {
                            let seg = &d.buf[d.payload.clone()];
                            self.tcp.on_segment_with(
                                now,
                                d.header.src,
                                d.header.dst,
                                seg,
                                d.checksum,
                            );
                            // TCP copied what it keeps: the frame goes back to the pool.
                            self.frames.give(d.buf);
                        }
                        _ => {}
                    }
                }
                drop(table);
                self.delivery_batches.give(batch);
            }
            TransportMsg::IcmpError { kind, header, data }
                if header.protocol == IpProtocol::Tcp =>
            {
                if let Some(info) = tcp_icmp(kind, &header, &data) {
                    self.tcp.on_icmp_error(now, info);
                }
            }
            TransportMsg::IcmpError { kind, header, data } => self.icmp_error(kind, header, &data),
        }
    }

    fn tcp_command(&mut self, now: Instant, cmd: TcpCmd) {
        self.stats.runtime.tcp_commands += 1;
        match cmd {
            TcpCmd::Wake => {}
            TcpCmd::Listen {
                local,
                backlog,
                opts,
                listener,
                reply,
            } => {
                let r = self.tcp.listen(local, backlog, opts);
                if r.is_ok() {
                    self.tcp_listeners.insert(local, listener);
                }
                let _ = reply.send(r);
            }
            TcpCmd::Unlisten { local } => {
                self.tcp.unlisten(local);
                self.tcp_listeners.remove(&local);
            }
            TcpCmd::Connect { tuple, conn, opts } => {
                if self.shared.is_closing() {
                    conn.on_closed(Some(TcpError::ConnectionAborted));
                    return;
                }
                match self.tcp.connect(now, tuple, opts) {
                    Ok(id) => {
                        let io = self.tcp.take_app_io(id);
                        conn.attach(id, io);
                        self.tcp_conns.insert(id, conn);
                    }
                    Err(e) => conn.on_closed(Some(e)),
                }
            }
            TcpCmd::Accepted { id } => self.tcp.accepted(id),
            TcpCmd::SetOptions { id, opts } => {
                let _ = self.tcp.set_options(id, opts);
            }
            TcpCmd::SetTtl { id, ttl } => self.tcp.set_ttl(id, ttl),
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
            TcpCmd::AbortConn { conn } => {
                if let Some(id) = conn.id() {
                    self.tcp.abort(id);
                    self.tcp_conns.remove(&id);
                }
                conn.on_closed(Some(TcpError::TimedOut));
            }
            TcpCmd::Info { id, reply } => {
                let _ = reply.send(self.info(id));
            }
            TcpCmd::Connections { reply } => {
                let mut ids = self.tcp.ids();
                ids.sort();
                let _ = reply.send(ids.into_iter().filter_map(|id| self.info(id)).collect());
            }
        }
    }

    /// Receive coalescing (see `netstack_transport::tcp::gro`): each in-order data segment
    /// that continues an earlier one of its connection in this batch is appended to it, once
    /// both checksums have been verified, and leaves the batch. A segment of a connection that
    /// does not continue its run ends it, so each connection's segments keep their order. At
    /// most [`GRO_RUNS`] connections have a run open at once.
    fn coalesce(&mut self, batch: &mut Vec<Delivery>) {
        let mut runs = std::mem::take(&mut self.gro_runs);
        runs.clear();
        let mut merged = 0;
        for i in 0..batch.len() {
            let (before, rest) = batch.split_at_mut(i);
            let d = &mut rest[0];
            if d.header.protocol != IpProtocol::Tcp {
                continue;
            }
            let (src, dst) = (d.header.src, d.header.dst);
            let seg = &d.buf[d.payload.clone()];
            let Some(flow) = GroFlow::of(src, dst, seg) else {
                continue;
            };
            let run = runs.iter().position(|(_, k)| k.flow() == flow);
            let key = GroKey::of(src, dst, seg).filter(|_| {
                d.checksum == Checksum::Ignore
                    || TcpPacket::new_checked(seg).is_ok_and(|p| p.verify_checksum(src, dst))
            });
            let Some(key) = key else {
                // Not a candidate (or a bad checksum TCP will count): it ends its flow's run.
                if let Some(r) = run {
                    runs.remove(r);
                }
                continue;
            };
            d.checksum = Checksum::Ignore;
            match run {
                Some(r) if runs[r].1.continued_by(&key) => {
                    let head = &mut before[runs[r].0];
                    head.buf.truncate(head.payload.end);
                    if head.buf.capacity() < head.buf.len() + seg.len() {
                        // The run outgrows a one-frame buffer: move it to a large one from the
                        // pool once, instead of growing the small one (an allocation).
                        let mut large = self
                            .frames
                            .take_empty(head.payload.end + MAX_COALESCED_PAYLOAD);
                        large.extend_from_slice(&head.buf);
                        self.frames.give(std::mem::replace(&mut head.buf, large));
                    }
                    append(&mut head.buf, head.payload.start, &mut runs[r].1, &key, seg);
                    head.payload.end = head.buf.len();
                    // Emptied: left out of the batch below.
                    d.payload = 0..0;
                    merged += 1;
                }
                Some(r) => runs[r] = (i, key),
                None => {
                    if runs.len() == GRO_RUNS {
                        runs.remove(0);
                    }
                    runs.push((i, key));
                }
            }
        }
        if merged > 0 {
            let frames = &self.frames;
            batch.retain_mut(|d| {
                if d.payload.is_empty() {
                    frames.give(std::mem::take(&mut d.buf));
                    false
                } else {
                    true
                }
            });
            self.stats.runtime.gro_merged += merged;
        }
        self.gro_runs = runs;
    }

    fn info(&self, id: ConnId) -> Option<TcpInfo> {
        let c = self.tcp.connection(id)?;
        let s = c.stats();
        Some(TcpInfo {
            local: c.tuple().local,
            remote: c.tuple().remote,
            worker: self.index,
            state: c.state(),
            send_queue: c.send_queued(),
            recv_queue: c.readable(),
            cwnd: s.cwnd,
            ssthresh: s.ssthresh,
            srtt: c.srtt(),
            rto: c.rto(),
            snd_wnd: s.snd_wnd,
            rcv_wnd: s.rcv_wnd,
            bytes_sent: s.bytes_sent,
            bytes_acked: s.bytes_acked,
            bytes_received: s.bytes_received,
            segments_sent: s.segments_sent,
            segments_received: s.segments_received,
            retransmissions: s.retransmissions,
        })
    }

    /// Segments out to link TX, events out to the sockets.
    fn tcp_output(&mut self, now: Instant) {
        let mut segs = std::mem::take(&mut self.segs);
        self.tcp.poll_segments(now, &mut segs);
        for mut t in segs.drain(..) {
            let opts = SendOptions {
                dont_frag: true,
                ttl: t.ttl,
                segmentation_offload: t.segment_size.is_some(),
                ..SendOptions::default()
            };
            let offload = if t.checksum_partial {
                TxOffload::Tcp {
                    segment_size: t.segment_size,
                }
            } else {
                TxOffload::None
            };
            // Segments come with room for the IPv4 and Ethernet headers: the datagram and then
            // the frame are written in place around them.
            let r = match t.headroom.checked_sub(IPV4_HEADER_LEN) {
                Some(offset) => self
                    .ip
                    .send_in_place(now, t.dst, IpProtocol::Tcp, &mut t.bytes[offset..], opts)
                    .map(|next_hop| {
                        self.out.push(TxPacket {
                            next_hop,
                            packet: t.bytes,
                            offset,
                            offload,
                        })
                    }),
                None => self
                    .ip
                    .send(now, t.dst, IpProtocol::Tcp, t.segment(), opts)
                    .map(|o| self.out.extend(TxPacket::all(o))),
            };
            if let Err(e) = r {
                log::debug!("TCP segment to {}: {e:?}", t.dst);
            }
        }
        self.segs = segs;
        while let Some(ev) = self.tcp.poll_event() {
            match ev {
                TcpEvent::Accepted { listener, id } => {
                    let remote = self.tcp.connection(id).map(|c| c.tuple().remote);
                    match (self.tcp_listeners.get(&listener), remote) {
                        (Some(l), Some(remote)) if !self.shared.is_closing() => {
                            let conn = Arc::new(ConnShared::new(self.index));
                            conn.set_opts(l.opts);
                            conn.attach(id, self.tcp.take_app_io(id));
                            conn.on_connected();
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
                        c.on_connected();
                    }
                }
                // Collected, so a connection that got many segments in this wake-up wakes its
                // reader (or writer) once, after all of them.
                TcpEvent::Readable(id) => self.readable.push(id),
                TcpEvent::Writable(id) => self.writable.push(id),
                TcpEvent::Closed(id, err) => {
                    if let Some(c) = self.tcp_conns.get(&id) {
                        c.on_closed(err);
                    }
                }
            }
        }
        for ids in [&mut self.readable, &mut self.writable] {
            ids.sort_unstable();
            ids.dedup();
        }
        let mut ids = std::mem::take(&mut self.readable);
        for id in ids.drain(..) {
            if let Some(c) = self.tcp_conns.get(&id) {
                let eof = self.tcp.state(id).is_some_and(|s| {
                    matches!(
                        s,
                        State::CloseWait | State::LastAck | State::Closing | State::TimeWait
                    )
                });
                c.on_readable(eof);
            }
        }
        self.readable = ids;
        let mut ids = std::mem::take(&mut self.writable);
        for id in ids.drain(..) {
            if let Some(c) = self.tcp_conns.get(&id) {
                c.on_writable();
            }
        }
        self.writable = ids;
    }

    /// A received UDP datagram: the sans-IO endpoint decides, the worker queues or answers.
    fn udp_input(&mut self, now: Instant, d: Delivery, table: &SocketTable<Arc<SocketInner>>) {
        let bytes = &d.buf[d.payload.clone()];
        match udp::receive(
            table,
            &d.header,
            bytes,
            d.checksum,
            &mut self.stats.layer.udp,
        ) {
            Input::Deliver {
                socket,
                from,
                payload,
                ..
            } => {
                let datagram = Datagram {
                    from,
                    to: d.header.dst,
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
            // Packets whose next hop is resolved go straight to the device; link TX gets the
            // rest (and resolves them).
            let tcp = &mut self.tcp;
            self.shared.direct.send_all(
                &mut self.out,
                &mut self.frame_scratch,
                &mut self.stats.layer.link,
                &mut self.stats.runtime,
                |buf| tcp.recycle(buf),
            );
        }
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
