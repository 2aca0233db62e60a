//! The application layer: DNS (codec, resolver, authoritative server, forwarder) and, to come,
//! HTTP/1.1 and WebSocket.
//!
//! The protocol code runs over small std-shaped traits (see [`dns::socket::DatagramSocket`]),
//! so the same code serves over `std::net` sockets (for comparisons and tests) and over the
//! stack's own sockets, whose adapters live in [`stack_socket`].

pub mod dns;
pub mod stack_socket;
