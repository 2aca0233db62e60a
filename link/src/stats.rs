//! The `counters!` macro every layer declares its statistics with, and the link layer's own
//! counters, [`LinkStats`].

use crate::rx::RxDrop;
use crate::wire::arp::ArpOperation;

/// Declares a stats struct of `u64` counters, each followed by a comma (every counter is public), plus nested stats structs after `;`.
/// The struct derives `Debug`, `Clone`, `Copy`, `Default`, `PartialEq` and `Eq`, and gets:
/// - `add`, which the runtime uses to sum the workers' stats;
/// - `add_delta`, which adds what grew between two snapshots (counters only grow);
/// - `for_each`, which names every counter, nested ones as `outer.inner`.
///
/// ```
/// netstack_link::counters! {
///     /// What a toy layer counts.
///     pub struct ToyStats {
///         /// Packets seen.
///         packets, bytes,
///     }
/// }
/// let mut total = ToyStats::default();
/// total.add(&ToyStats { packets: 2, bytes: 80 });
/// let mut names = Vec::new();
/// total.for_each(&mut |name, v| names.push(format!("{name}={v}")));
/// assert_eq!(names, ["packets=2", "bytes=80"]);
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $f:ident, )*
            $( ; $( $(#[$nm:meta])* $n:ident : $t:ty, )* )?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: u64, )*
            $( $( $(#[$nm])* pub $n: $t, )* )?
        }

        impl $name {
            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &$name) {
                $( self.$f += other.$f; )*
                $( $( self.$n.add(&other.$n); )* )?
            }

            /// Adds what grew from `old` to `new` (counters only ever grow).
            pub fn add_delta(&mut self, new: &$name, old: &$name) {
                $( self.$f = self.$f.wrapping_add(new.$f.wrapping_sub(old.$f)); )*
                $( $( self.$n.add_delta(&new.$n, &old.$n); )* )?
            }

            /// Calls `f` with every counter's name and value, nested ones as `outer.inner`.
            pub fn for_each(&self, f: &mut dyn FnMut(&str, u64)) {
                $( f(stringify!($f), self.$f); )*
                $( $(
                    self.$n.for_each(&mut |name, v| f(&format!("{}.{name}", stringify!($n)), v));
                )* )?
            }
        }
    };
}

counters! {
    /// Link-layer counters. Plain numbers, named after their causes; the runtime sums them
    /// across threads with [`LinkStats::add`].
    pub struct LinkStats {
        /// Frames (or, for `Medium::Ip`, packets) read from the device.
        frames_in,
        /// Frames written to the device.
        frames_out,
        bytes_in,
        bytes_out,
        /// Device read errors (the frame, if any, is lost).
        rx_errors,
        /// Device write errors (the frame is lost).
        tx_errors,

        /// Drops by [`RxDrop`] cause.
        rx_truncated,
        rx_not_for_us,
        rx_multicast,
        rx_ipv6,
        rx_unknown_ethertype,
        rx_bad_arp,
        /// ARP whose sender hardware address is not the Ethernet source.
        rx_bad_arp_sender,
        rx_bad_vnet_header,

        /// Offloading devices: frames read that were coalesced TCP segments (GSO frames), and
        /// frames written as large TCP segments for the device to cut up.
        rx_coalesced,
        tx_segmentation_offloaded,

        /// ARP traffic, counted by the neighbor cache.
        arp_requests_in,
        arp_replies_in,
        arp_requests_out,
        arp_replies_out,
        /// Queued packets given up on because their address never resolved.
        arp_unresolved_drops,
        /// Packets dropped because their address's queue was full (the oldest goes).
        arp_queue_drops,
        /// Packets dropped because too many addresses were already being resolved.
        arp_pending_limit_drops,
        /// Packets dropped because their destination cannot be resolved (0.0.0.0).
        arp_invalid_destination_drops,
        /// Resolved entries removed to make room (the table was full).
        arp_evictions,
        /// Resolved entries removed because their lifetime ended.
        arp_expired,
        /// ARP packets claiming our own IPv4 address from another MAC.
        arp_address_conflicts,
        /// ARP replies not learned: no request of ours was waiting for them and their sender had
        /// no entry to refresh (an unsolicited reply never creates an entry).
        arp_unsolicited_reply_drops,
    }
}

impl LinkStats {
    /// Counts one dropped received frame under its cause.
    pub fn record_drop(&mut self, drop: RxDrop) {
        let counter = match drop {
            RxDrop::Truncated => &mut self.rx_truncated,
            RxDrop::NotForUs => &mut self.rx_not_for_us,
            RxDrop::Multicast => &mut self.rx_multicast,
            RxDrop::Ipv6 => &mut self.rx_ipv6,
            RxDrop::UnknownEtherType(_) => &mut self.rx_unknown_ethertype,
            RxDrop::BadArp(_) => &mut self.rx_bad_arp,
            RxDrop::ArpSenderMismatch => &mut self.rx_bad_arp_sender,
            RxDrop::BadVnetHeader(_) => &mut self.rx_bad_vnet_header,
        };
        *counter += 1;
    }

    /// Counts one frame read from the device.
    pub fn record_in(&mut self, len: usize) {
        self.frames_in += 1;
        self.bytes_in += len as u64;
    }

    /// Counts one frame written to the device.
    pub fn record_out(&mut self, len: usize) {
        self.frames_out += 1;
        self.bytes_out += len as u64;
    }

    /// Counts one ARP packet received.
    pub fn record_arp_in(&mut self, op: ArpOperation) {
        match op {
            ArpOperation::Request => self.arp_requests_in += 1,
            ArpOperation::Reply => self.arp_replies_in += 1,
        }
    }

    /// Counts one ARP packet sent.
    pub fn record_arp_out(&mut self, op: ArpOperation) {
        match op {
            ArpOperation::Request => self.arp_requests_out += 1,
            ArpOperation::Reply => self.arp_replies_out += 1,
        }
    }

    /// Sum of all receive drops.
    pub fn rx_drops(&self) -> u64 {
        self.rx_truncated
            + self.rx_not_for_us
            + self.rx_multicast
            + self.rx_ipv6
            + self.rx_unknown_ethertype
            + self.rx_bad_arp
            + self.rx_bad_arp_sender
            + self.rx_bad_vnet_header
    }
}
