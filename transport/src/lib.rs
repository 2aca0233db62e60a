//! The transport layer: UDP (RFC 768) and TCP (RFC 9293), sans-IO, and the ephemeral port
//! choice both use (RFC 6056).

pub mod ports;
pub mod tcp;
pub mod udp;

pub use tcp::segment::Checksum;
