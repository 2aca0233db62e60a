//! ICMP echo from application threads: `Stack::pinger()` gives a `Pinger` with its own echo
//! identifier; replies are matched by (source, identifier, sequence number, data).

use std::io;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use dashmap::DashMap;

use crate::msg::NetMsg;

/// Echo replies a pinger may have waiting before further ones are dropped.
const REPLY_QUEUE: usize = 64;

pub(crate) struct EchoReply {
    src: Ipv4Addr,
    seq_no: u16,
    data: Vec<u8>,
    at: Instant,
    /// Not a reply: our request to `src` could not be delivered (ARP failed).
    unreachable: bool,
}

/// Which identifier belongs to which pinger.
pub(crate) struct EchoRegistry {
    waiting: DashMap<u16, Sender<EchoReply>>,
    next: AtomicU16,
}

impl EchoRegistry {
    pub fn new() -> Self {
        Self {
            waiting: DashMap::new(),
            next: AtomicU16::new(std::process::id() as u16),
        }
    }

    /// Hands a reply to the pinger that owns `ident`; false when nobody does (or it is full).
    pub fn deliver(&self, src: Ipv4Addr, ident: u16, seq_no: u16, data: Vec<u8>) -> bool {
        match self.waiting.get(&ident) {
            Some(tx) => tx
                .try_send(EchoReply {
                    src,
                    seq_no,
                    data,
                    at: Instant::now(),
                    unreachable: false,
                })
                .is_ok(),
            None => false,
        }
    }

    /// Tells the pinger that owns `ident` that its request `seq_no` to `dst` never left: the
    /// neighbour did not answer ARP.
    pub fn unreachable(&self, dst: Ipv4Addr, ident: u16, seq_no: u16) -> bool {
        match self.waiting.get(&ident) {
            Some(tx) => tx
                .try_send(EchoReply {
                    src: dst,
                    seq_no,
                    data: Vec::new(),
                    at: Instant::now(),
                    unreachable: true,
                })
                .is_ok(),
            None => false,
        }
    }

    fn register(&self) -> io::Result<(u16, Receiver<EchoReply>)> {
        let (tx, rx) = crossbeam_channel::bounded(REPLY_QUEUE);
        for _ in 0..=u16::MAX as usize {
            let ident = self.next.fetch_add(1, Ordering::Relaxed);
            if let dashmap::Entry::Vacant(v) = self.waiting.entry(ident) {
                v.insert(tx);
                return Ok((ident, rx));
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "every ICMP echo identifier is in use",
        ))
    }
}

/// Sends ICMP echo requests and waits for the matching replies.
pub struct Pinger {
    ident: u16,
    replies: Receiver<EchoReply>,
    registry: Arc<EchoRegistry>,
    net: Vec<Sender<NetMsg>>,
}

impl Pinger {
    pub(crate) fn new(registry: Arc<EchoRegistry>, net: Vec<Sender<NetMsg>>) -> io::Result<Self> {
        let (ident, replies) = registry.register()?;
        Ok(Self {
            ident,
            replies,
            registry,
            net,
        })
    }

    /// The echo identifier this pinger uses.
    pub fn ident(&self) -> u16 {
        self.ident
    }

    /// Sends one echo request carrying `data` and waits up to `timeout` for its reply.
    /// Returns the round-trip time; `TimedOut` when no matching reply came (or the request
    /// could not even be queued in time); `HostUnreachable` when an on-link destination never
    /// answered ARP (after three requests, about 3 s); `NotConnected` once the stack has shut
    /// down.
    pub fn ping(
        &self,
        dst: Ipv4Addr,
        seq_no: u16,
        data: &[u8],
        timeout: Duration,
    ) -> io::Result<Duration> {
        let start = Instant::now();
        let deadline = start + timeout;
        let worker = usize::from(self.ident) % self.net.len();
        let msg = NetMsg::Echo {
            dst,
            ident: self.ident,
            seq_no,
            data: data.to_vec(),
        };
        self.net[worker]
            .send_deadline(msg, deadline)
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "network worker queue full"))?;
        loop {
            match self.replies.recv_deadline(deadline) {
                Ok(r) if r.unreachable && r.src == dst && r.seq_no == seq_no => {
                    return Err(io::Error::new(
                        io::ErrorKind::HostUnreachable,
                        format!("{dst} did not answer ARP: host unreachable"),
                    ));
                }
                Ok(r) if !r.unreachable && r.src == dst && r.seq_no == seq_no && r.data == data => {
                    return Ok(r.at.saturating_duration_since(start));
                }
                Ok(_) => continue, // a late reply to an earlier request, or a duplicate
                Err(RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no echo reply from {dst} (seq {seq_no}) within {timeout:?}"),
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the stack has shut down",
                    ))
                }
            }
        }
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.registry.waiting.remove(&self.ident);
    }
}
