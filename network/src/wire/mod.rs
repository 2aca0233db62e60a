//! Wire formats of the network layer: zero-copy views plus `Repr` structs.

mod ip_protocol;

pub use ip_protocol::IpProtocol;
