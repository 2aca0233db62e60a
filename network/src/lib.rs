//! The network layer: IPv4 (RFC 791) with fragmentation and reassembly, ICMPv4 (RFC 792)
//! and routing. Sans-IO: nothing here owns a thread, a socket or a clock.

pub mod checksum;
pub mod fragment;
pub mod ident;
pub mod reassembly;
pub mod wire;
