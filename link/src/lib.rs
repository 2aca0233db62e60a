//! netstack link layer: Ethernet II and ARP wire formats, receive-side demultiplexing, the
//! sans-IO ARP neighbor cache, the devices (TAP, TUN, in-memory pair with impairments) and pcap
//! capture.
//!
//! Nothing here knows about the layers above: the IPv4 bytes of a frame are handed up as a slice.
//!
//! How the runtime uses it:
//! - RX thread: [`Device::recv_batch`] → [`classify`] each frame → IPv4 bytes go up, ARP goes to
//!   [`NeighborCache::on_arp`] (send its reply, transmit its released packets), drops go to
//!   [`LinkStats::record_drop`].
//! - TX thread: [`NeighborCache::resolve`] per outgoing packet → [`EthernetRepr::frame_with`] →
//!   [`Device::send`]; [`NeighborCache::on_timeout`] at [`NeighborCache::poll_deadline`].
//! - Tests: [`MemoryLink::pair`] instead of a TAP; [`CaptureDevice`] around any device.

pub mod device;
pub mod neighbor;
pub mod pcap;
pub mod prng;
pub mod rx;
pub mod stats;
pub mod wire;

pub use device::memory::{Impairments, MemoryDevice, MemoryLink, MemoryLinkConfig, MemoryStats};
pub use device::tap::{TapDevice, TunDevice};
pub use device::{Device, Medium};
pub use neighbor::{
    ArpOutcome, NeighborCache, NeighborConfig, Resolve, ResolveDrop, TimeoutOutcome,
};
pub use pcap::{CaptureDevice, LinkType, PcapWriter};
pub use rx::{classify, Inbound, LinkStats, RxDrop};
pub use wire::arp::{ArpOperation, ArpPacket, ArpRepr};
pub use wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr, MacParseError};
pub use wire::WireError;
