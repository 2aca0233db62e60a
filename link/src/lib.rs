//! netstack link layer: Ethernet II and ARP wire formats, receive-side demultiplexing, the
//! sans-IO ARP neighbor cache, the devices (TAP, TUN, in-memory pair with impairments) and pcap
//! capture.
//!
//! Nothing here knows about the layers above: the IPv4 bytes of a frame are handed up as a slice.

pub mod device;
pub mod neighbor;
pub mod pcap;
mod prng;
pub mod rx;
pub mod wire;

pub use device::{Device, Medium};
pub use neighbor::{ArpOutcome, NeighborCache, NeighborConfig, Resolve, TimeoutOutcome};
pub use rx::{classify, Inbound, LinkStats, RxDrop};
pub use wire::arp::{ArpOperation, ArpPacket, ArpRepr};
pub use wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
pub use wire::WireError;
