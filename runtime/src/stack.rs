//! `Stack`: builds the actors, hands out the application API, sums the counters, shuts down.

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use netstack_link::device::tap::MAX_OFFLOAD_PACKET;
use netstack_link::device::{Device, FramePool, Medium};
use netstack_link::neighbor::{NeighborCache, NeighborConfig};
use netstack_link::wire::ethernet::MacAddr;
use netstack_link::LinkStats;
use netstack_network::endpoint::{Ipv4Config, Ipv4Endpoint, Ipv4Stats};
use netstack_network::ident::IdentGenerator;
use netstack_network::wire::ipv4::Ipv4Cidr;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use dashmap::DashMap;
use netstack_transport::ports::EphemeralPorts;
use netstack_transport::tcp::{ConnId, Endpoint, TcpConfig};
use netstack_transport::udp::{SocketTable, UdpStats};
use parking_lot::Mutex;
use std::collections::HashMap;

use crate::direct::DirectTx;
use crate::link_rx::LinkRx;
use crate::link_tx::LinkTx;
use crate::msg::{
    BatchPool, NetMsg, TcpCmd, TxMsg, NET_QUEUE, TCP_CMD_QUEUE, TRANSPORT_QUEUE, TX_QUEUE,
};
use crate::network::NetworkWorker;
use crate::ping::{EchoRegistry, Pinger};
use crate::shard::Sharder;
use crate::stats::{Published, RuntimeStats, Slot, StackStats};
use crate::tcp::{ListenerShared, TcpInfo};
use crate::transport::{TransportStats, TransportWorker};
use crate::udp::{SocketInner, UdpSender};

/// The smallest TCP buffer a stack accepts (two full-size segments).
pub const MIN_TCP_BUFFER: usize = 4096;
/// The largest: what a window scale of 14 can advertise (RFC 7323 §2.3).
pub const MAX_TCP_BUFFER: usize = 1 << 30;

/// The spin (`StackBuilder::spin`) netstackd uses by default: on the 2-core development VM it
/// lifted request/response over a TAP by 25–75% and left bulk transfers over a TAP unchanged,
/// while it slowed two stacks in one process (`docs/PERFORMANCE.md`).
pub const SERVER_SPIN: std::time::Duration = std::time::Duration::from_micros(30);

/// Spare receive buffers a stack keeps at most (about 6 MiB at MTU 1500).
pub const FRAME_POOL_BUFFERS: usize = 4096;

/// Most worker threads of one kind a stack may run.
pub const MAX_WORKERS: usize = 64;

/// The default size of each worker pool: half the cores the process may use, at least one.
///
/// A stack also runs link RX and link TX, and the application needs CPU too; measured on a
/// 2-core machine, one network and one transport worker answer a ping flood 2–3× faster than
/// two of each, because more runnable threads than cores turn every hand-off into a context
/// switch.
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| (n.get() / 2).max(1))
        .min(MAX_WORKERS)
}

/// What a stack is built from. `StackBuilder` fills it; [`StackBuilder::build`] checks it.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The stack's address and the prefix of its on-link network (e.g. 192.0.2.2/24).
    pub addr: Ipv4Cidr,
    /// The router for destinations outside `addr`'s network; it must lie inside it. `None`:
    /// only on-link destinations are reachable.
    pub gateway: Option<Ipv4Addr>,
    /// The stack's Ethernet address (unused on a TUN device); must be unicast.
    pub mac: MacAddr,
    /// IP MTU, 68 to 65535 bytes; `None` takes the device's.
    pub mtu: Option<usize>,
    /// Network worker threads (IPv4, reassembly, ICMP), 1 to [`MAX_WORKERS`].
    pub network_workers: usize,
    /// Transport worker threads (UDP sockets, TCP connections), 1 to [`MAX_WORKERS`].
    pub transport_workers: usize,
    /// ARP cache and resolution limits.
    pub neighbor: NeighborConfig,
    /// Static ARP entries: on-link unicast addresses and their unicast MACs. They never
    /// expire, are never evicted and no received ARP changes them.
    pub static_arp: Vec<(Ipv4Addr, MacAddr)>,
    /// Each TCP connection's send and receive buffer, in bytes (like Linux's tcp_wmem and
    /// tcp_rmem defaults), [`MIN_TCP_BUFFER`] to [`MAX_TCP_BUFFER`]. A ring is allocated on its
    /// first byte, so an idle connection costs none of it.
    pub tcp_send_buffer: usize,
    /// Each TCP connection's receive buffer, in bytes: the most it advertises as its window.
    /// Same limits as `tcp_send_buffer`.
    pub tcp_recv_buffer: usize,
    /// Receive coalescing (software GRO): in-order TCP data segments of one connection that
    /// arrive in one batch are merged before TCP sees them (`netstack_transport::tcp::gro`).
    pub gro: bool,
    /// How long a network worker, transport worker or link TX that has just handled work
    /// spins for more before it parks (zero: it parks at once). Spinning trades CPU for
    /// latency: it pays when the stack's threads have cores to themselves (one stack over a
    /// TAP), and costs when they outnumber the cores (two stacks in one process on 2 cores);
    /// `docs/PERFORMANCE.md` has the measurements.
    pub spin: std::time::Duration,
}

impl StackConfig {
    /// The defaults for a stack at `addr`: no gateway, a locally administered MAC derived from
    /// `addr`, the device's MTU, [`default_workers`] of each kind, the default ARP settings and
    /// 256 KiB TCP buffers each way.
    pub fn new(addr: Ipv4Cidr) -> Self {
        Self {
            addr,
            gateway: None,
            mac: MacAddr::local_from_seed(u64::from(u32::from(addr.addr))),
            mtu: None,
            network_workers: default_workers(),
            transport_workers: default_workers(),
            neighbor: NeighborConfig::default(),
            static_arp: Vec::new(),
            tcp_send_buffer: TcpConfig::default().send_buffer,
            tcp_recv_buffer: TcpConfig::default().recv_buffer,
            gro: true,
            spin: std::time::Duration::ZERO,
        }
    }
}

/// Builds a [`Stack`] over a device.
pub struct StackBuilder {
    config: StackConfig,
    device: Arc<dyn Device>,
}

impl StackBuilder {
    /// A builder for a stack at `addr` on `device`, starting from [`StackConfig::new`].
    pub fn new(device: Arc<dyn Device>, addr: Ipv4Cidr) -> Self {
        Self {
            config: StackConfig::new(addr),
            device,
        }
    }

    /// Routes destinations outside the stack's network through `gw` (which must be inside it).
    pub fn gateway(mut self, gw: Ipv4Addr) -> Self {
        self.config.gateway = Some(gw);
        self
    }

    /// The stack's Ethernet address (must be unicast) instead of the one derived from its
    /// IPv4 address.
    pub fn mac(mut self, mac: MacAddr) -> Self {
        self.config.mac = mac;
        self
    }

    /// The IP MTU in bytes (68 to 65535) instead of the device's.
    pub fn mtu(mut self, mtu: usize) -> Self {
        self.config.mtu = Some(mtu);
        self
    }

    /// Network and transport worker threads (each at least 1, at most [`MAX_WORKERS`]).
    pub fn workers(mut self, network: usize, transport: usize) -> Self {
        self.config.network_workers = network;
        self.config.transport_workers = transport;
        self
    }

    /// How long busy workers spin for more work before parking (`StackConfig::spin`; zero,
    /// the default, parks at once).
    pub fn spin(mut self, spin: std::time::Duration) -> Self {
        self.config.spin = spin;
        self
    }

    /// Receive coalescing (software GRO) on or off (on by default).
    pub fn gro(mut self, on: bool) -> Self {
        self.config.gro = on;
        self
    }

    /// TCP send and receive buffer sizes for every connection (each at least
    /// [`MIN_TCP_BUFFER`]).
    pub fn tcp_buffers(mut self, send: usize, recv: usize) -> Self {
        self.config.tcp_send_buffer = send;
        self.config.tcp_recv_buffer = recv;
        self
    }

    /// ARP cache and resolution settings.
    pub fn neighbor(mut self, cfg: NeighborConfig) -> Self {
        self.config.neighbor = cfg;
        self
    }

    /// A static ARP entry: packets to `ip` go to `mac` without asking, whatever ARP says
    /// (`StackConfig::static_arp`; `build` checks both are unicast and `ip` on-link).
    pub fn static_arp(mut self, ip: Ipv4Addr, mac: MacAddr) -> Self {
        self.config.static_arp.push((ip, mac));
        self
    }

    /// The configuration built so far (not yet checked).
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Checks the configuration and starts every actor.
    ///
    /// Fails with `InvalidInput`, naming the value and its range, when a worker count, a TCP
    /// buffer size, the MAC, the MTU, the gateway or a static ARP entry is out of bounds; with the OS error when a
    /// thread cannot be spawned.
    pub fn build(self) -> io::Result<Stack> {
        Stack::start(self.config, self.device)
    }
}

/// What application threads and actors share: the named, small shared state of the design
/// (the UDP port table) plus the queues into the actors.
pub(crate) struct Shared {
    pub config: StackConfig,
    pub sharder: Sharder,
    pub net: Vec<Sender<NetMsg>>,
    /// The UDP sockets by local port; also the UDP port allocator.
    pub udp: Mutex<SocketTable<Arc<SocketInner>>>,
    /// Builds UDP sends, one per transport shard (see `udp`).
    pub udp_tx: Vec<Mutex<UdpSender>>,
    /// Link TX's queue, for sends from application threads.
    pub tx: Sender<TxMsg>,
    /// The transport workers' command queues (TCP commands, never behind packets).
    pub tcp_cmds: Vec<Sender<TcpCmd>>,
    /// Each transport worker's ready list: connections whose rings the application touched
    /// on an edge (see `tcp`).
    pub tcp_ready: Vec<Mutex<Vec<ConnId>>>,
    /// While the stack is closing: each worker's count of connections still active
    /// (`usize::MAX` until it has begun closing them).
    pub tcp_active: Vec<AtomicUsize>,
    /// Ready-list entries made by application threads (each an edge, not a read or write).
    pub tcp_nudges: AtomicU64,
    /// TCP listeners by port (the design's shared listener table).
    pub tcp_listeners: DashMap<u16, Arc<ListenerShared>>,
    /// Writes packets whose next hop link TX has resolved straight to the device.
    pub direct: Arc<DirectTx>,
    /// Ephemeral ports for active opens (RFC 6056 Algorithm 4), keyed by a secret of its own.
    pub tcp_ports: EphemeralPorts,
    running: AtomicBool,
    closing: AtomicBool,
    random: (RandomState, AtomicU64),
}

impl Shared {
    pub fn check_running(&self) -> io::Result<()> {
        if self.running.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the stack has shut down",
            ))
        }
    }

    /// An unpredictable number (keyed hash of a counter), for ephemeral port choice.
    pub fn random_u32(&self) -> u32 {
        let n = self.random.1.fetch_add(1, Ordering::Relaxed);
        self.random.0.hash_one(n) as u32
    }

    pub fn udp_worker(&self, port: u16) -> usize {
        self.sharder.udp_worker(port)
    }

    /// Queues a TCP command for a transport worker, blocking while its command queue is full
    /// (commands are egress: they push back on the application). Fails once the worker ended.
    pub fn tcp_command(&self, worker: usize, cmd: TcpCmd) -> io::Result<()> {
        self.tcp_cmds[worker]
            .send(cmd)
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the stack has shut down"))
    }

    /// Puts a connection on its worker's ready list; the worker is woken only when the list
    /// was empty (a full command queue means it is awake anyway and drains the list).
    pub fn tcp_nudge(&self, worker: usize, id: ConnId) {
        self.tcp_nudges.fetch_add(1, Ordering::Relaxed);
        let first = {
            let mut l = self.tcp_ready[worker].lock();
            l.push(id);
            l.len() == 1
        };
        if first {
            let _ = self.tcp_cmds[worker].try_send(TcpCmd::Wake);
        }
    }

    /// The stack is shutting down: connections are being closed.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Queues packets for link TX: blocking (until `timeout`, if any), or failing with
    /// `WouldBlock` at once when `nonblocking` and the queue is full. Egress pushes back.
    pub fn send_tx(
        &self,
        msg: TxMsg,
        nonblocking: bool,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        use crossbeam_channel::{SendTimeoutError, TrySendError};
        self.check_running()?;
        let full = || io::Error::new(io::ErrorKind::WouldBlock, "the device's send queue is full");
        let gone = || io::Error::new(io::ErrorKind::NotConnected, "the stack has shut down");
        if nonblocking {
            return self.tx.try_send(msg).map_err(|e| match e {
                TrySendError::Full(_) => full(),
                TrySendError::Disconnected(_) => gone(),
            });
        }
        match timeout {
            Some(t) => self.tx.send_timeout(msg, t).map_err(|e| match e {
                SendTimeoutError::Timeout(_) => full(),
                SendTimeoutError::Disconnected(_) => gone(),
            }),
            None => self.tx.send(msg).map_err(|_| gone()),
        }
    }
}

struct Actor {
    name: String,
    handle: JoinHandle<()>,
    /// Disconnects when the thread ends, normally or by panic: shutdown waits on it with a
    /// deadline instead of polling.
    done: crossbeam_channel::Receiver<()>,
}

/// A cheap, cloneable reference to a running stack: what sockets are bound on. Threads that
/// serve or open sockets hold one of these; only the [`Stack`] itself can shut down.
#[derive(Clone)]
pub struct StackHandle {
    shared: Arc<Shared>,
    echo: Arc<EchoRegistry>,
    mtu: usize,
}

impl StackHandle {
    /// The configuration the stack was built with (`mtu` as given: [`mtu`](Self::mtu) tells
    /// the one in use).
    pub fn config(&self) -> &StackConfig {
        &self.shared.config
    }

    /// The IP MTU in use.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A pinger with its own ICMP echo identifier.
    ///
    /// Fails with `NotConnected` once the stack has shut down, and with `AddrInUse` when all
    /// 65,536 identifiers are taken by live pingers.
    pub fn pinger(&self) -> io::Result<Pinger> {
        self.shared.check_running()?;
        Pinger::new(self.echo.clone(), self.shared.net.clone())
    }
}

/// A running stack. Dropping it shuts it down with a deadline of 2 s. It dereferences to
/// a [`StackHandle`], so `UdpSocket::bind(&stack, …)` and `stack.pinger()` work on either.
pub struct Stack {
    handle: StackHandle,
    observer: StackObserver,
    /// Stop flags in shutdown order: intake first, then each stage drains into the next.
    stages: Vec<(Arc<AtomicBool>, Vec<Actor>)>,
}

/// What [`Stack::observer`] returns: reads the counters and the connection table from any
/// thread.
#[derive(Clone)]
pub struct StackObserver {
    shared: Arc<Shared>,
    link_slots: Vec<Slot<(LinkStats, RuntimeStats)>>,
    ipv4_slots: Vec<Slot<(Ipv4Stats, RuntimeStats)>>,
    transport_slots: Vec<Slot<(TransportStats, RuntimeStats)>>,
    /// The receive-buffer pool (for its counters).
    frames: Arc<FramePool>,
}

impl StackObserver {
    /// Every layer's counters, summed across actors.
    pub fn stats(&self) -> StackStats {
        let mut s = StackStats::default();
        for slot in &self.link_slots {
            let g = slot.lock();
            s.link.add(&g.0);
            s.runtime.add(&g.1);
        }
        for slot in &self.ipv4_slots {
            let g = slot.lock();
            s.ipv4.add(&g.0);
            s.runtime.add(&g.1);
        }
        for sender in &self.shared.udp_tx {
            let g = sender.lock();
            s.udp.add(&g.stats);
            s.ipv4.add(g.ip.stats());
        }
        for slot in &self.transport_slots {
            let g = slot.lock();
            s.tcp.add(&g.0.tcp);
            s.link.add(&g.0.link);
            s.udp.add(&g.0.udp);
            s.ipv4.add(&g.0.ipv4);
            s.runtime.add(&g.1);
        }
        s.runtime.tcp_nudges += self.shared.tcp_nudges.load(Ordering::Relaxed);
        s.runtime.rx_buffers_allocated += self.frames.allocated();
        s.runtime.rx_buffers_reused += self.frames.reused();
        s
    }

    /// Every TCP connection the stack holds (TIME-WAIT and closing ones included), with its
    /// state and counters, one round trip to each transport worker.
    pub fn connections(&self) -> Vec<TcpInfo> {
        let mut all = Vec::new();
        let mut replies = Vec::new();
        for w in 0..self.shared.tcp_cmds.len() {
            let (reply, rx) = crossbeam_channel::bounded(1);
            if self
                .shared
                .tcp_command(w, TcpCmd::Connections { reply })
                .is_ok()
            {
                replies.push(rx);
            }
        }
        for rx in replies {
            if let Ok(v) = rx.recv_timeout(Duration::from_secs(5)) {
                all.extend(v);
            }
        }
        all
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl Stack {
    /// A [`StackBuilder`] for a stack at `addr` on `device`.
    pub fn builder(device: Arc<dyn Device>, addr: Ipv4Cidr) -> StackBuilder {
        StackBuilder::new(device, addr)
    }

    fn start(config: StackConfig, device: Arc<dyn Device>) -> io::Result<Stack> {
        for (what, n) in [
            ("network workers", config.network_workers),
            ("transport workers", config.transport_workers),
        ] {
            if n == 0 || n > MAX_WORKERS {
                return Err(invalid(format!("{what}: {n}; use 1 to {MAX_WORKERS}")));
            }
        }
        for (what, n) in [
            ("TCP send buffer", config.tcp_send_buffer),
            ("TCP receive buffer", config.tcp_recv_buffer),
        ] {
            if !(MIN_TCP_BUFFER..=MAX_TCP_BUFFER).contains(&n) {
                return Err(invalid(format!(
                    "{what}: {n} bytes; use {MIN_TCP_BUFFER} to {MAX_TCP_BUFFER}"
                )));
            }
        }
        if !config.mac.is_unicast() {
            return Err(invalid(format!(
                "MAC {}: not a unicast address",
                config.mac
            )));
        }
        let mtu = config.mtu.unwrap_or_else(|| device.mtu());
        if !(68..=65535).contains(&mtu) {
            // RFC 791: every host must handle 68-octet datagrams unfragmented.
            return Err(invalid(format!("MTU {mtu}: use 68 to 65535")));
        }
        for &(ip, mac) in &config.static_arp {
            if !mac.is_unicast() {
                return Err(invalid(format!(
                    "static ARP entry {ip}={mac}: the MAC is not a unicast address"
                )));
            }
            let on_link = config.addr.contains(ip)
                && ip != config.addr.addr
                && Some(ip) != config.addr.broadcast()
                && !ip.is_unspecified();
            if !on_link {
                return Err(invalid(format!(
                    "static ARP entry {ip}={mac}: use a host address inside {} other than the \
                     stack's own",
                    config.addr
                )));
            }
        }
        if let Some(gw) = config.gateway {
            if !config.addr.contains(gw) {
                return Err(invalid(format!(
                    "gateway {gw} is not inside {}",
                    config.addr
                )));
            }
        }

        let sharder = Sharder::new(config.network_workers, config.transport_workers);
        // Network and transport workers each build IPv4 datagrams and ICMP errors; the
        // documented totals (reassembly memory, ICMP error rate) are split between them all.
        let ip_workers = sharder.network_workers() + sharder.transport_workers();
        let echo = Arc::new(EchoRegistry::new());
        let ident = IdentGenerator::new();
        let (tx_send, tx_recv) = crossbeam_channel::bounded::<TxMsg>(TX_QUEUE);

        let mut transport_senders = Vec::new();
        let mut transport_receivers = Vec::new();
        let mut cmd_senders = Vec::new();
        let mut cmd_receivers = Vec::new();
        for _ in 0..sharder.transport_workers() {
            let (s, r) = crossbeam_channel::bounded(TRANSPORT_QUEUE);
            transport_senders.push(s);
            transport_receivers.push(r);
            let (s, r) = crossbeam_channel::bounded(TCP_CMD_QUEUE);
            cmd_senders.push(s);
            cmd_receivers.push(r);
        }
        let mut net_senders = Vec::new();
        let mut net_workers = Vec::new();
        let mut ipv4_slots = Vec::new();
        let net_stop = Arc::new(AtomicBool::new(false));
        // Batch vectors go back to the actor that fills the next batch.
        let rx_batches = Arc::new(BatchPool::new());
        let delivery_batches = Arc::new(BatchPool::new());
        for i in 0..sharder.network_workers() {
            let (s, r) = crossbeam_channel::bounded(NET_QUEUE);
            net_senders.push(s);
            let (stats, slot) = Published::new();
            ipv4_slots.push(slot);
            let w = NetworkWorker {
                endpoint: Ipv4Endpoint::new(ip_config(&config, mtu, ip_workers), ident.clone()),
                rx: r,
                tx: tx_send.clone(),
                transport: transport_senders.clone(),
                sharder: sharder.clone(),
                echo: echo.clone(),
                stop: net_stop.clone(),
                stats,
                out: Vec::new(),
                deliveries: (0..sharder.transport_workers())
                    .map(|_| Vec::new())
                    .collect(),
                rx_batches: rx_batches.clone(),
                delivery_batches: delivery_batches.clone(),
                spin: config.spin,
            };
            net_workers.push(spawn(format!("net-{i}"), move || w.run())?);
        }

        let mut link_slots = Vec::new();
        let tx_stop = Arc::new(AtomicBool::new(false));
        let (tx_stats, slot) = Published::new();
        link_slots.push(slot);
        let direct = Arc::new(DirectTx::new(device.clone(), config.mac));
        // Received frames come from this pool and go back to it once handled.
        let frames = Arc::new(FramePool::new(FRAME_POOL_BUFFERS));
        device.set_frame_pool(frames.clone());
        let mut neighbors =
            NeighborCache::new(config.neighbor.clone(), config.mac, config.addr.addr);
        for &(ip, mac) in &config.static_arp {
            // Nothing is queued yet, so nothing is released.
            let _ = neighbors.insert_static(ip, mac, Instant::now());
        }
        let mut link_tx = LinkTx::new(
            device.clone(),
            config.mac,
            [
                Ipv4Addr::BROADCAST,
                config.addr.broadcast().unwrap_or(Ipv4Addr::BROADCAST),
            ],
            neighbors,
            tx_recv,
            net_senders[0].clone(),
            tx_stop.clone(),
            tx_stats,
            direct.clone(),
        );
        link_tx.spin = config.spin;
        let tx_actor = spawn("link-tx".into(), move || link_tx.run())?;

        let shared = Arc::new(Shared {
            config: config.clone(),
            sharder: sharder.clone(),
            net: net_senders.clone(),
            udp: Mutex::new(SocketTable::new()),
            udp_tx: (0..sharder.transport_workers())
                .map(|_| {
                    Mutex::new(UdpSender {
                        ip: Ipv4Endpoint::new(ip_config(&config, mtu, ip_workers), ident.clone()),
                        stats: UdpStats::default(),
                    })
                })
                .collect(),
            tx: tx_send.clone(),
            tcp_cmds: cmd_senders,
            tcp_ready: (0..sharder.transport_workers())
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            tcp_active: (0..sharder.transport_workers())
                .map(|_| AtomicUsize::new(usize::MAX))
                .collect(),
            tcp_nudges: AtomicU64::new(0),
            tcp_listeners: DashMap::new(),
            tcp_ports: EphemeralPorts::new(random_secret()),
            direct: direct.clone(),
            running: AtomicBool::new(true),
            closing: AtomicBool::new(false),
            random: (RandomState::new(), AtomicU64::new(0)),
        });
        // One secret for every worker, so ISNs and SYN cookies agree whichever answers.
        let tcp_secret = random_secret();
        let mut transport_slots = Vec::new();
        let mut transport_workers = Vec::new();
        let transport_stop = Arc::new(AtomicBool::new(false));
        for (i, (r, cmds)) in transport_receivers
            .into_iter()
            .zip(cmd_receivers)
            .enumerate()
        {
            let (stats, slot) = Published::new();
            transport_slots.push(slot);
            let offloads = device.offloads();
            let tcp_config = TcpConfig {
                // IPv4 and TCP headers without options (RFC 9293 §3.7.1).
                mss: u16::try_from(mtu.saturating_sub(40)).unwrap_or(u16::MAX),
                send_buffer: config.tcp_send_buffer,
                recv_buffer: config.tcp_recv_buffer,
                // The device cuts large segments: up to a 64 KiB datagram with the largest
                // IPv4 and TCP headers.
                segment_offload: if offloads.tso4 && offloads.tx_checksum {
                    MAX_OFFLOAD_PACKET - 120
                } else {
                    0
                },
                ..TcpConfig::default()
            };
            let mut tcp = Endpoint::new(tcp_config, tcp_secret);
            // Room for the IPv4 header and the link's headers (a virtio-net header and, on
            // Ethernet, the frame header): segments become datagrams and frames in place.
            tcp.set_headroom(
                netstack_network::wire::ipv4::HEADER_LEN
                    + crate::frame::Framer::new(&*device, config.mac).headroom(),
            );
            tcp.set_checksum_offload(offloads.tx_checksum);
            let w = TransportWorker {
                index: i,
                tcp,
                tcp_conns: HashMap::new(),
                tcp_listeners: HashMap::new(),
                ip: Ipv4Endpoint::new(ip_config(&config, mtu, ip_workers), ident.clone()),
                rx: r,
                cmds,
                tx: tx_send.clone(),
                shared: shared.clone(),
                stop: transport_stop.clone(),
                stats,
                out: Vec::new(),
                closing_seen: false,
                ready_scratch: Vec::new(),
                segs: Vec::new(),
                frame_scratch: Vec::with_capacity(2048),
                readable: Vec::new(),
                writable: Vec::new(),
                frames: frames.clone(),
                // A device that coalesces (offloads) hands up large segments already.
                gro: config.gro && !offloads.rx_coalesced,
                delivery_batches: delivery_batches.clone(),
                gro_runs: Vec::new(),
                spin: config.spin,
            };
            transport_workers.push(spawn(format!("transport-{i}"), move || w.run())?);
        }

        let rx_stop = Arc::new(AtomicBool::new(false));
        let intake_closed = Arc::new(AtomicBool::new(false));
        // One receiving thread per device queue.
        let mut rx_actors = Vec::new();
        for queue in 0..device.queues() {
            let (rx_stats, slot) = Published::new();
            link_slots.push(slot);
            let link_rx = LinkRx {
                device: device.clone(),
                queue,
                mac: config.mac,
                sharder: sharder.clone(),
                net: net_senders.clone(),
                tx: tx_send.clone(),
                stop: rx_stop.clone(),
                intake_closed: intake_closed.clone(),
                stats: rx_stats,
                batches: rx_batches.clone(),
            };
            rx_actors.push(spawn(format!("link-rx-{queue}"), move || link_rx.run())?);
        }

        log::info!(
            "stack up on {} ({:?}): {} mac {} mtu {} workers net={} transport={} queues={} \
             offloads: {}",
            device.name(),
            device.medium(),
            config.addr,
            config.mac,
            mtu,
            config.network_workers,
            config.transport_workers,
            device.queues(),
            device.offloads()
        );
        if device.medium() == Medium::Ip {
            log::debug!("{} carries bare IP: no Ethernet, no ARP", device.name());
        }
        Ok(Stack {
            observer: StackObserver {
                shared: shared.clone(),
                link_slots,
                ipv4_slots,
                transport_slots,
                frames,
            },
            handle: StackHandle { shared, echo, mtu },
            // Intake closes first; link RX itself stops last, because link TX may still be
            // resolving queued output and needs the ARP replies it reads.
            stages: vec![
                (intake_closed, vec![]),
                (net_stop, net_workers),
                (transport_stop, transport_workers),
                (tx_stop, vec![tx_actor]),
                (rx_stop, rx_actors),
            ],
        })
    }

    /// A cloneable handle for threads that open sockets.
    pub fn handle(&self) -> StackHandle {
        self.handle.clone()
    }

    /// Every layer's counters, summed across actors.
    pub fn stats(&self) -> StackStats {
        self.observer.stats()
    }

    /// Every TCP connection the stack holds (TIME-WAIT and closing ones included), with its
    /// state and counters, one round trip to each transport worker.
    pub fn connections(&self) -> Vec<TcpInfo> {
        self.observer.connections()
    }

    /// A cloneable, thread-safe view of the stack's counters and connection table, for status
    /// pages and monitoring threads; it outlives neither the stack's counters nor its workers
    /// in meaning (after shutdown it reports the final counters and no connection).
    pub fn observer(&self) -> StackObserver {
        self.observer.clone()
    }

    /// Stops intake, lets every stage drain into the next, and joins every thread, in that
    /// order. Threads that have not finished by `deadline` are left behind and named in a
    /// `TimedOut` error; the process can still exit.
    ///
    /// Up to half the deadline goes to closing: listeners stop accepting, new sockets fail with
    /// `NotConnected`, and every TCP connection sends its buffered data, then FIN, while
    /// packets still flow both ways (later writes fail with `BrokenPipe`). Then intake stops
    /// and the connections still open are reset (their next call fails with
    /// `ConnectionAborted`).
    pub fn shutdown(mut self, deadline: Duration) -> io::Result<()> {
        self.stop(deadline)
    }

    /// Like [`shutdown`](Self::shutdown), then every layer's counters as the stopped stack left
    /// them (the closing connections' last segments included).
    pub fn shutdown_with_stats(mut self, deadline: Duration) -> (io::Result<()>, StackStats) {
        let r = self.stop(deadline);
        (r, self.stats())
    }

    fn stop(&mut self, deadline: Duration) -> io::Result<()> {
        let start = Instant::now();
        let end = start + deadline;
        let mut stuck = Vec::new();
        let shared = &self.handle.shared;
        shared.running.store(false, Ordering::Relaxed);
        // 1. Closing, with packets still flowing both ways: no new connections; every
        //    connection sends its buffered data and FIN. Up to half the deadline.
        for l in shared.tcp_listeners.iter() {
            l.close();
        }
        shared.closing.store(true, Ordering::SeqCst);
        for w in 0..shared.tcp_cmds.len() {
            let _ = shared.tcp_cmds[w].try_send(TcpCmd::Wake);
        }
        let grace = start + deadline / 2;
        while Instant::now() < grace
            && shared
                .tcp_active
                .iter()
                .any(|a| a.load(Ordering::SeqCst) != 0)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        // 2. Intake stops, each stage drains into the next, what is left is reset.
        for (flag, actors) in self.stages.drain(..) {
            flag.store(true, Ordering::Relaxed);
            for a in actors {
                match a.done.recv_deadline(end) {
                    // The thread has left its body; join returns at once.
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) | Ok(()) => {
                        if a.handle.join().is_err() {
                            stuck.push(format!("{} (panicked)", a.name));
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => stuck.push(a.name),
                }
            }
        }
        // Wake every acceptor and socket reader: nothing will arrive any more.
        for l in self.handle.shared.tcp_listeners.iter() {
            l.close();
        }
        let udp = std::mem::take(&mut *self.handle.shared.udp.lock());
        udp.for_each_socket(|s| s.close());
        if stuck.is_empty() {
            log::info!("stack stopped");
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "shutdown deadline passed; still running: {}",
                    stuck.join(", ")
                ),
            ))
        }
    }
}

impl std::ops::Deref for Stack {
    type Target = StackHandle;

    fn deref(&self) -> &StackHandle {
        &self.handle
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !self.stages.is_empty() {
            if let Err(e) = self.stop(Duration::from_secs(2)) {
                log::warn!("{e}");
            }
        }
    }
}

/// 16 unpredictable bytes (the standard library's per-process random hash keys).
fn random_secret() -> [u8; 16] {
    let k = RandomState::new();
    let (a, b) = (k.hash_one(1u8), k.hash_one(2u8));
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&a.to_le_bytes());
    s[8..].copy_from_slice(&b.to_le_bytes());
    s
}

/// One worker's share of the IPv4 configuration.
fn ip_config(config: &StackConfig, mtu: usize, workers: usize) -> Ipv4Config {
    let mut c = Ipv4Config::new(config.addr);
    c.mtu = mtu;
    c.gateway = config.gateway;
    c.reassembly = c.reassembly.share(workers);
    c.icmp_rate = c.icmp_rate.share(workers);
    c
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<Actor> {
    let (alive, done) = crossbeam_channel::bounded::<()>(0);
    let handle = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let _alive = alive; // dropped when the thread ends, even by panic
            f()
        })?;
    Ok(Actor { name, handle, done })
}
