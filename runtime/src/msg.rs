//! Messages between actors. Every channel carries batches so one wake-up moves many packets.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use crossbeam_channel::Sender;
use netstack_transport::tcp::FourTuple;
use netstack_transport::tcp::{ConnId, SocketOptions, TcpError};
use netstack_transport::Checksum;
use std::ops::Range;

use netstack_link::wire::arp::ArpRepr;
use netstack_network::endpoint::{IcmpErrorKind, Outgoing};
use netstack_network::wire::ipv4::Ipv4Repr;

use crate::tcp::{ConnShared, ListenerShared, TcpInfo};

/// How many frames link RX reads from the device per wake-up at most.
pub(crate) const RX_BATCH: usize = 64;

/// Capacity, in batches, of each network worker's inbound queue.
pub(crate) const NET_QUEUE: usize = 256;
/// Capacity, in batches, of each transport worker's inbound queue.
pub(crate) const TRANSPORT_QUEUE: usize = 256;
/// Capacity, in batches, of the link TX queue.
pub(crate) const TX_QUEUE: usize = 1024;

/// Most spare batch vectors a [`BatchPool`] keeps.
const MAX_SPARE_BATCHES: usize = 1024;

/// Batch vectors used again: the actor that empties a batch hands its vector back to the
/// actor that fills the next one, so a steady stream of batches allocates none. Bounded: past
/// [`MAX_SPARE_BATCHES`] a returned vector is freed.
pub(crate) struct BatchPool<T> {
    free: parking_lot::Mutex<Vec<Vec<T>>>,
}

impl<T> BatchPool<T> {
    pub fn new() -> Self {
        BatchPool {
            free: parking_lot::Mutex::new(Vec::new()),
        }
    }

    /// An empty vector, a spare one when there is one.
    pub fn take(&self) -> Vec<T> {
        self.free
            .lock()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(RX_BATCH))
    }

    /// Takes back an emptied (or not: it is cleared) vector.
    pub fn give(&self, mut v: Vec<T>) {
        v.clear();
        let mut free = self.free.lock();
        if free.len() < MAX_SPARE_BATCHES {
            free.push(v);
        }
    }
}

/// A received IPv4 packet: the whole frame as read from the device, and where the IPv4 header
/// starts in it. Keeping the frame avoids copying the packet out of the device buffer.
pub(crate) struct RxPacket {
    pub frame: Vec<u8>,
    pub offset: usize,
    /// `Ignore` when the device vouched for the transport checksum (see `Offloads`).
    pub checksum: Checksum,
}

impl RxPacket {
    pub fn bytes(&self) -> &[u8] {
        &self.frame[self.offset..]
    }
}

/// A complete IPv4 datagram (or fragment) on its way out, with the neighbour to send it to.
/// The datagram is `packet[offset..]`; the bytes before it are room for the link header, so
/// a frame can be written in place.
pub(crate) struct TxPacket {
    pub next_hop: Ipv4Addr,
    pub packet: Vec<u8>,
    pub offset: usize,
    /// What an offloading device is asked to finish (see `frame`).
    pub offload: TxOffload,
}

/// What the device finishes for a datagram (devices with a virtio-net header only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum TxOffload {
    /// Nothing: the datagram is complete.
    #[default]
    None,
    /// A TCP segment whose checksum is partial; with `segment_size`, a large segment the device
    /// cuts into pieces of that much payload.
    Tcp { segment_size: Option<u16> },
}

impl TxOffload {
    /// A large segment the device cuts up.
    pub fn segmented(&self) -> bool {
        matches!(
            self,
            TxOffload::Tcp {
                segment_size: Some(_)
            }
        )
    }
}

impl TxPacket {
    /// The IPv4 datagram.
    pub fn datagram(&self) -> &[u8] {
        &self.packet[self.offset..]
    }

    /// The datagram in a buffer of its own that starts with it (for packets that must wait).
    pub fn into_datagram(mut self) -> Vec<u8> {
        self.packet.drain(..self.offset);
        self.packet
    }

    /// The packets (a datagram's fragments, in order) of an IPv4 `Outgoing`.
    pub fn all(o: Outgoing) -> impl Iterator<Item = TxPacket> {
        let next_hop = o.next_hop;
        o.packets.into_iter().map(move |packet| TxPacket {
            next_hop,
            packet,
            offset: 0,
            offload: TxOffload::None,
        })
    }
}

pub(crate) enum NetMsg {
    Inbound(Vec<RxPacket>),
    /// Locally sent datagrams that link TX gave up on: their next hop never answered ARP.
    /// The network worker tells their senders, as Linux does, with host unreachable.
    Unreachable(Vec<Vec<u8>>),
    /// An app thread's echo request (Stack::pinger).
    Echo {
        dst: Ipv4Addr,
        ident: u16,
        seq_no: u16,
        data: Vec<u8>,
    },
}

/// A datagram IPv4 delivered (whole, reassembled if it had to be) for a transport protocol.
pub(crate) struct Delivery {
    pub header: Ipv4Repr,
    /// The buffer holding it: the received frame, or the reassembled payload.
    pub buf: Vec<u8>,
    /// Where the IPv4 header starts in `buf`; `None` for a reassembled datagram (whose
    /// header exists only as `header`).
    pub ip_offset: Option<usize>,
    /// The transport header and data within `buf`.
    pub payload: Range<usize>,
    /// Whether the transport checksum is still to be verified.
    pub checksum: Checksum,
}

pub(crate) enum TransportMsg {
    Inbound(Vec<Delivery>),
    /// An ICMP error quoting a datagram we sent.
    IcmpError {
        kind: IcmpErrorKind,
        /// The quoted IPv4 header (its source is us).
        header: Ipv4Repr,
        /// The quoted transport bytes (at least the first 8).
        data: Vec<u8>,
    },
}

/// Commands from application threads to the worker that owns a TCP connection (or, for
/// listens, to every worker). They have their own queue, never behind packets; reads and
/// writes send none (see `tcp`).
pub(crate) enum TcpCmd {
    /// The ready list went from empty to non-empty: look at it.
    Wake,
    Listen {
        local: SocketAddrV4,
        backlog: usize,
        opts: SocketOptions,
        listener: Arc<ListenerShared>,
        reply: Sender<Result<(), TcpError>>,
    },
    Unlisten {
        local: SocketAddrV4,
    },
    Connect {
        tuple: FourTuple,
        conn: Arc<ConnShared>,
        opts: SocketOptions,
    },
    /// The application took the connection from the accept queue.
    Accepted {
        id: ConnId,
    },
    SetOptions {
        id: ConnId,
        opts: SocketOptions,
    },
    SetTtl {
        id: ConnId,
        ttl: u8,
    },
    ShutdownWrite {
        id: ConnId,
    },
    Close {
        id: ConnId,
    },
    Abort {
        id: ConnId,
    },
    /// A connect the application gave up on (its id may not have been known to it).
    AbortConn {
        conn: Arc<ConnShared>,
    },
    Info {
        id: ConnId,
        reply: Sender<Option<TcpInfo>>,
    },
    Connections {
        reply: Sender<Vec<TcpInfo>>,
    },
}

/// Capacity of each transport worker's command queue. Commands push back on the application
/// when it is full (they are egress); the ready-list wake-up never waits for room.
pub(crate) const TCP_CMD_QUEUE: usize = 1024;

pub(crate) enum TxMsg {
    Packets(Vec<TxPacket>),
    /// ARP packets received by link RX; link TX owns the neighbour cache.
    Arp(Vec<ArpRepr>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_pool_hands_back_cleared_vectors_and_keeps_at_most_its_bound() {
        let pool: BatchPool<u32> = BatchPool::new();
        let mut v = pool.take();
        assert!(v.capacity() >= RX_BATCH);
        v.extend([1, 2, 3]);
        let cap = v.capacity();
        pool.give(v);
        let again = pool.take();
        assert!(again.is_empty() && again.capacity() == cap);
        for _ in 0..MAX_SPARE_BATCHES + 5 {
            pool.give(Vec::new());
        }
        assert_eq!(pool.free.lock().len(), MAX_SPARE_BATCHES);
    }
}
