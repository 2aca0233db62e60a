//! Counters, summed across actors on demand.
//!
//! Each actor counts into its own plain struct and publishes a copy into a shared slot once per
//! batch (one uncontended lock per wake-up, never one per packet). `Stack::stats()` adds the slots.

use std::sync::Arc;

use netstack_link::LinkStats;
use netstack_network::endpoint::Ipv4Stats;
use netstack_transport::tcp::TcpStats;
use netstack_transport::udp::UdpStats;
use parking_lot::Mutex;

netstack_network::counters! {
    /// The runtime's own counters: queues, devices, the ping API.
    pub struct RuntimeStats {
        /// Frames read from the device.
        rx_frames,
        /// Device read calls that failed (other than a timeout).
        rx_device_errors,
        /// IPv4 frames read after intake closed for shutdown (dropped).
        rx_dropped_shutting_down,
        /// Batches of packets dropped because a network worker's queue was full.
        net_queue_full,
        /// Packets in those batches.
        net_queue_full_packets,
        /// Batches dropped because a transport worker's queue was full.
        transport_queue_full,
        /// Datagrams and ICMP errors in those batches.
        transport_queue_full_packets,
        /// Frames written to the device.
        tx_frames,
        /// Frames the device refused to write (dropped).
        tx_device_errors,
        /// Packets that waited for ARP and failed (their senders are told host unreachable).
        tx_host_unreachable,
        /// Echo replies for which no local pinger was waiting.
        echo_replies_unclaimed,
        /// Echo requests a local pinger could not send (no route, too big).
        echo_send_errors,
        /// TCP commands the transport workers handled (connect, listen, close, options, …;
        /// reads and writes send none).
        tcp_commands,
        /// Times an application thread put a connection on its worker's ready list (a write
        /// into an empty send buffer, or a read that reopened the window).
        tcp_nudges,
        /// Receive buffers the frame pool had to allocate (none was spare).
        rx_buffers_allocated,
        /// Receive buffers the frame pool handed out again.
        rx_buffers_reused,
        /// TCP segments merged into the one before them by receive coalescing (software GRO).
        gro_merged,
    }
}

/// Everything the stack counts, by layer.
#[derive(Debug, Default, Clone)]
pub struct StackStats {
    /// Ethernet and ARP: frames and bytes in and out, drops by cause, ARP messages and cache
    /// events.
    pub link: LinkStats,
    /// IPv4 and ICMP: validation drops, reassembly, fragmentation, ICMP in and out.
    pub ipv4: Ipv4Stats,
    /// TCP: the endpoints' counters plus every connection's, live and closed.
    pub tcp: TcpStats,
    /// UDP: datagrams delivered and sent, drops by cause.
    pub udp: UdpStats,
    /// The runtime's own: queues, device calls, pings, TCP commands.
    pub runtime: RuntimeStats,
}

/// One actor's published counters.
pub(crate) type Slot<T> = Arc<Mutex<T>>;

/// Actor-side counters for one layer plus the runtime's, published once per batch.
pub(crate) struct Published<T: Clone> {
    pub layer: T,
    pub runtime: RuntimeStats,
    slot: Slot<(T, RuntimeStats)>,
}

impl<T: Clone + Default> Published<T> {
    pub fn new() -> (Self, Slot<(T, RuntimeStats)>) {
        let slot: Slot<(T, RuntimeStats)> = Arc::default();
        let me = Self {
            layer: T::default(),
            runtime: RuntimeStats::default(),
            slot: slot.clone(),
        };
        (me, slot)
    }

    pub fn publish(&self) {
        let mut s = self.slot.lock();
        s.0.clone_from(&self.layer);
        s.1.clone_from(&self.runtime);
    }
}

impl StackStats {
    /// Every counter as `(layer.name, value)`, in a stable order: what `netstackd` prints.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        self.link
            .for_each(&mut |n, v| out.push((format!("link.{n}"), v)));
        self.ipv4
            .for_each(&mut |n, v| out.push((format!("ipv4.{n}"), v)));
        self.tcp
            .for_each(&mut |n, v| out.push((format!("tcp.{n}"), v)));
        self.udp
            .for_each(&mut |n, v| out.push((format!("udp.{n}"), v)));
        self.runtime
            .for_each(&mut |n, v| out.push((format!("runtime.{n}"), v)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_name_every_layer() {
        let mut s = StackStats::default();
        s.udp.rx_no_socket = 3;
        s.link.rx_not_for_us = 2;
        let c = s.counters();
        for layer in ["link.", "ipv4.", "udp.", "runtime."] {
            assert!(
                c.iter().any(|(n, _)| n.starts_with(layer)),
                "no {layer} counters"
            );
        }
        assert!(c.contains(&("udp.rx_no_socket".to_string(), 3)));
        assert!(c.contains(&("link.rx_not_for_us".to_string(), 2)));
    }
}
