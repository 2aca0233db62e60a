//! Link RX: reads frames from the device, demultiplexes Ethernet, hands ARP to link TX (which
//! owns the neighbour cache) and IPv4 packets to the network worker that owns their datagram.
//!
//! Policy: this thread never blocks on a queue. A full network queue drops the batch and counts
//! it; the device is read again within one poll interval whatever happens downstream.
//!
//! Shutdown comes in two steps: `intake_closed` stops IPv4 intake (those frames are dropped and
//! counted) while ARP still reaches link TX, which may be resolving output queued before the
//! stop; `stop` ends the thread once link TX is done.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use netstack_link::device::{Device, Medium};
use netstack_link::rx::{classify, classify_vnet, Inbound, RxDrop};
use netstack_link::wire::ethernet::{EthernetRepr, MacAddr};
use netstack_link::LinkStats;
use netstack_transport::Checksum;

use crate::msg::{BatchPool, NetMsg, RxPacket, TxMsg, RX_BATCH};
use crate::shard::Sharder;
use crate::stats::Published;
use crate::POLL_INTERVAL;

pub(crate) struct LinkRx {
    pub device: Arc<dyn Device>,
    /// The device queue this thread reads (multi-queue devices have one thread per queue).
    pub queue: usize,
    pub mac: MacAddr,
    pub sharder: Sharder,
    pub net: Vec<Sender<NetMsg>>,
    pub tx: Sender<TxMsg>,
    pub stop: Arc<AtomicBool>,
    pub intake_closed: Arc<AtomicBool>,
    pub stats: Published<LinkStats>,
    /// Where batch vectors come from (network workers hand them back).
    pub batches: Arc<BatchPool<RxPacket>>,
}

impl LinkRx {
    pub fn run(mut self) {
        let mut frames: Vec<Vec<u8>> = Vec::with_capacity(RX_BATCH);
        let mut batches: Vec<Vec<RxPacket>> =
            (0..self.net.len()).map(|_| self.batches.take()).collect();
        let mut arp = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            frames.clear();
            match self
                .device
                .recv_batch_from(self.queue, &mut frames, RX_BATCH, POLL_INTERVAL)
            {
                Ok(0) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.stats.runtime.rx_device_errors += 1;
                    self.stats.layer.rx_errors += 1;
                    log::warn!("reading {}: {e}", self.device.name());
                    // A persistent error must not spin the CPU.
                    std::thread::sleep(POLL_INTERVAL);
                    self.stats.publish();
                    continue;
                }
            }
            self.stats.runtime.rx_frames += frames.len() as u64;
            let vnet = self.device.offloads().vnet_header;
            for frame in frames.drain(..) {
                self.stats.layer.record_in(frame.len());
                let (start, checksum) = if vnet {
                    match classify_vnet(&frame) {
                        Ok(v) => {
                            self.stats.layer.rx_coalesced += u64::from(v.coalesced);
                            let checksum = if v.checksum_trusted {
                                Checksum::Ignore
                            } else {
                                Checksum::Verify
                            };
                            (v.offset, checksum)
                        }
                        Err(reason) => {
                            self.stats.layer.record_drop(reason);
                            continue;
                        }
                    }
                } else {
                    (0, Checksum::Verify)
                };
                let body = &frame[start..];
                let offset = start
                    + match self.device.medium() {
                        // Bare IP: the version nibble says which protocol (we speak IPv4 only).
                        Medium::Ip if body.first().is_some_and(|b| b >> 4 == 6) => {
                            self.stats.layer.record_drop(RxDrop::Ipv6);
                            continue;
                        }
                        Medium::Ip => 0,
                        Medium::Ethernet => match classify(self.mac, body) {
                            Ok(Inbound::Ipv4(_)) => EthernetRepr::HEADER_LEN,
                            Ok(Inbound::Arp(repr)) => {
                                arp.push(repr);
                                continue;
                            }
                            Err(reason) => {
                                self.stats.layer.record_drop(reason);
                                continue;
                            }
                        },
                    };
                if self.intake_closed.load(Ordering::Relaxed) {
                    self.stats.runtime.rx_dropped_shutting_down += 1;
                    continue;
                }
                let w = self.sharder.network_worker(&frame[offset..]);
                batches[w].push(RxPacket {
                    frame,
                    offset,
                    checksum,
                });
            }
            for (w, batch) in batches.iter_mut().enumerate() {
                if batch.is_empty() {
                    continue;
                }
                let b = std::mem::replace(batch, self.batches.take());
                let n = b.len() as u64;
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    self.net[w].try_send(NetMsg::Inbound(b))
                {
                    self.stats.runtime.net_queue_full += 1;
                    self.stats.runtime.net_queue_full_packets += n;
                }
            }
            if !arp.is_empty() {
                // ARP is rare and small; a full TX queue drops it like any ingress.
                let _ = self.tx.try_send(TxMsg::Arp(std::mem::take(&mut arp)));
            }
            self.stats.publish();
        }
        self.stats.publish();
    }
}
