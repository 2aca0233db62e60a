//! Wire formats of the network layer: zero-copy views plus `Repr` structs.

mod error;
pub mod icmpv4;
mod ip_protocol;
pub mod ipv4;

pub use error::WireError;
pub use icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
pub use ip_protocol::IpProtocol;
pub use ipv4::{CidrError, Ipv4Cidr, Ipv4Packet, Ipv4Repr};
