//! The netstack runtime: the only crate that owns threads, channels and clocks.
//!
//! It wires the sans-IO protocol crates into actor thread pools joined by bounded crossbeam
//! channels that carry batches:
//!
//! ```text
//!  app threads ── Stack API: TcpListener, TcpStream, UdpSocket, Pinger, stats, shutdown
//!       │ commands (TCP data is copied through rings shared with the workers)
//!       ▼
//!  transport workers 0..T-1  ◀── deliveries, sharded by a keyed 4-tuple hash
//!       ▲
//!  network workers 0..N-1    ◀── IPv4 packets, sharded by (src, dst, protocol, ident)
//!       ▲                    ──▶ packets to send
//!  link RX (device read, Ethernet demux)      link TX (ARP resolve + queue, Ethernet emit, device write)
//! ```
//!
//! Queue policy (the one place it is written down):
//! - **Ingress drops.** Link RX never blocks on a full network queue, and network workers never
//!   block on a full transport queue: the batch is dropped and counted (`runtime.*_queue_full`),
//!   exactly as a NIC drops when its ring is full. The device reader therefore always returns to
//!   the device within one poll interval.
//! - **Egress pushes back.** Producers of outgoing packets (network and transport workers, app
//!   threads) block on a full link TX queue, so a sender can never outrun the device silently.
//! - Every actor waits on its channel with a deadline equal to its next timer, bounded by
//!   [`POLL_INTERVAL`] so it notices shutdown.
//!
//! Sockets follow `std::net`: the same methods, blocking by default, and the `io::ErrorKind`
//! std gives on Linux. `runtime/examples/` has an echo server and client to copy
//! (`echo_server`, `echo_client`, over a TAP) and both ends in one process over the in-memory
//! link (`memory_echo`, no root needed).

#![warn(missing_docs)]

mod actor;
mod direct;
mod frame;
mod link_rx;
mod link_tx;
mod msg;
mod network;
mod ping;
mod shard;
mod stack;
mod stats;
mod tcp;
mod transport;
mod udp;

use std::time::Duration;

/// The configuration types a stack is built from, re-exported so that a program using the
/// runtime needs no direct dependency on the protocol crates.
pub mod config {
    pub use netstack_link::device::{self, Device, Medium};
    pub use netstack_link::neighbor::NeighborConfig;
    pub use netstack_link::pcap;
    pub use netstack_link::wire::ethernet::MacAddr;
    pub use netstack_network::wire::ipv4::Ipv4Cidr;
}

pub use netstack_transport::tcp::{
    CongestionAlgorithm, Keepalive, SocketOptions as TcpOptions, State as TcpState,
};
pub use ping::Pinger;
pub use stack::{
    default_workers, Stack, StackBuilder, StackConfig, StackHandle, StackObserver,
    FRAME_POOL_BUFFERS, MAX_TCP_BUFFER, MAX_WORKERS, MIN_TCP_BUFFER, SERVER_SPIN,
};
pub use stats::{RuntimeStats, StackStats};
pub use tcp::{TcpInfo, TcpListener, TcpStream, DEFAULT_BACKLOG, DEFAULT_TTL, MAX_BACKLOG};
pub use transport::TransportStats;
pub use udp::{UdpSocket, RECV_QUEUE_BYTES, RECV_QUEUE_DATAGRAMS};

/// Longest time any actor sleeps without checking for shutdown.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
