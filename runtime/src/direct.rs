//! Direct transmission: an actor that produced a packet whose next hop link TX has already
//! resolved frames it and writes it to the device itself, instead of waking link TX for it.
//!
//! Link TX still owns ARP and the neighbour cache; it publishes what it resolved into a small
//! shared table (the design's named shared state: the neighbour table), each entry valid for
//! [`SNAPSHOT_TTL`] after link TX last confirmed it, so an entry never outlives the cache's by
//! more than that. A miss (unknown, expired, or a broadcast) goes to link TX as before. Writes
//! to the device are thread-safe (`Device::send(&self)`); frames of one flow come from one
//! actor, so they keep their order.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_link::device::{Device, Medium};
use netstack_link::wire::ethernet::MacAddr;
use netstack_link::LinkStats;
use parking_lot::RwLock;

use crate::frame::Framer;
use crate::msg::TxPacket;
use crate::stats::RuntimeStats;

/// How long a neighbour link TX published stays usable without link TX seeing it again.
pub(crate) const SNAPSHOT_TTL: Duration = Duration::from_secs(1);

pub(crate) struct DirectTx {
    device: Arc<dyn Device>,
    framer: Framer,
    neighbors: RwLock<HashMap<Ipv4Addr, (MacAddr, Instant)>>,
}

impl DirectTx {
    pub fn new(device: Arc<dyn Device>, mac: MacAddr) -> Self {
        Self {
            framer: Framer::new(&*device, mac),
            device,
            neighbors: RwLock::new(HashMap::new()),
        }
    }

    /// Link TX resolved (or confirmed) `ip` at `mac` at `now`. Cheap when nothing changed.
    pub fn publish(&self, ip: Ipv4Addr, mac: MacAddr, now: Instant) {
        let until = now + SNAPSHOT_TTL;
        if let Some((m, u)) = self.neighbors.read().get(&ip) {
            // Refreshed only once half its life has gone, so link TX rarely takes the lock.
            if *m == mac && *u > now + SNAPSHOT_TTL / 2 {
                return;
            }
        }
        self.neighbors.write().insert(ip, (mac, until));
    }

    /// `ip` is no longer resolved (expired, changed, or failed).
    pub fn forget(&self, ip: Ipv4Addr) {
        if self.neighbors.read().contains_key(&ip) {
            self.neighbors.write().remove(&ip);
        }
    }

    fn lookup(&self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        self.neighbors
            .read()
            .get(&ip)
            .filter(|(_, until)| *until > now)
            .map(|(m, _)| *m)
    }

    /// Writes the packets whose next hop is known (framing in place when a packet has room
    /// for the link headers in front, else in `scratch`; see `frame`), hands each written packet's buffer
    /// to `sent`, and leaves the others in `packets` (for link TX). Counts what it wrote in
    /// `link` and `runtime`.
    pub fn send_all(
        &self,
        packets: &mut Vec<TxPacket>,
        scratch: &mut Vec<u8>,
        link: &mut LinkStats,
        runtime: &mut RuntimeStats,
        mut sent: impl FnMut(Vec<u8>),
    ) {
        let now = Instant::now();
        let ip = self.device.medium() == Medium::Ip;
        // In place: `packets` keeps its capacity for the caller's next batch.
        packets.retain_mut(|p| {
            let dst = if ip {
                MacAddr::ZERO
            } else {
                match self.lookup(p.next_hop, now) {
                    Some(mac) => mac,
                    None => return true,
                }
            };
            match self.framer.send(&*self.device, p, dst, scratch) {
                Ok(len) => {
                    runtime.tx_frames += 1;
                    link.record_out(len);
                    if p.offload.segmented() {
                        link.tx_segmentation_offloaded += 1;
                    }
                }
                Err(e) => {
                    runtime.tx_device_errors += 1;
                    link.tx_errors += 1;
                    log::debug!("writing to {}: {e}", self.device.name());
                }
            }
            sent(std::mem::take(&mut p.packet));
            false
        });
        // A device that batches its writes gets this burst out now.
        if let Err(e) = self.device.flush() {
            runtime.tx_device_errors += 1;
            link.tx_errors += 1;
            log::debug!("writing to {}: {e}", self.device.name());
        }
    }
}
