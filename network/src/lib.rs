//! The network layer: IPv4 (RFC 791) with fragmentation and reassembly, ICMPv4 (RFC 792)
//! and routing. Sans-IO: nothing here owns a thread, a socket or a clock.
//!
//! Map:
//! - [`wire`]: zero-copy views and `Repr`s: IPv4 (`Ipv4Packet`, `Ipv4Repr`, `Ipv4Cidr`) and
//!   ICMPv4 (`Icmpv4Packet`, `Icmpv4Repr`); [`checksum`]: RFC 1071 sums.
//! - [`fragment`]: splitting to an MTU; [`ident`]: the Identification field (RFC 6864/7739);
//!   [`reassembly`]: the bounded, overlap-intolerant reassembler.
//! - [`icmp`]: when an ICMP error may be sent and the rate limit; [`route`]: the routing table.
//! - [`endpoint`]: `Ipv4Endpoint`, which the runtime's network workers each own (one
//!   reassembly shard and one rate-limiter share per worker); [`endpoint::shard_key`] sends
//!   every fragment of a datagram to the same worker.

/// The stats macro every layer uses; it lives in the link crate, at the bottom of the stack.
pub use netstack_link::counters;

pub mod checksum;
pub mod endpoint;
pub mod fragment;
pub mod icmp;
pub mod ident;
pub mod reassembly;
pub mod route;
pub mod wire;
