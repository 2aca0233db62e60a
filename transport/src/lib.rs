//! The transport layer: UDP (RFC 768) and TCP (RFC 9293), sans-IO.

pub mod tcp;
pub mod udp;
