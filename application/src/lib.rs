//! The application layer: DNS (codec, resolver, authoritative server, forwarder, DNS over TCP),
//! the built-in services netstackd runs (echo, discard, chargen, DNS), and, to come, HTTP/1.1
//! and WebSocket.
//!
//! The protocol code runs over small std-shaped traits (see [`dns::socket::DatagramSocket`] and
//! [`dns::tcp::StreamSocket`]), so the same code serves over `std::net` sockets (for
//! comparisons and tests) and over the stack's own sockets, whose adapters live in
//! [`stack_socket`] and [`services`]. [`services`] wires the protocols onto a stack.

pub mod dns;
pub mod services;
pub mod stack_socket;
