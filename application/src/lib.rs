//! The application layer: DNS (codec, resolver, authoritative server, forwarder, DNS over TCP),
//! HTTP/1.1 ([`http`]: message types, codec, server and client), WebSocket ([`ws`]), and the built-in
//! services netstackd runs (echo, discard, chargen, DNS).
//!
//! The protocol code runs over small std-shaped traits (see [`dns::socket::DatagramSocket`] and
//! [`dns::tcp::StreamSocket`]), so the same code serves over `std::net` sockets (for
//! comparisons and tests) and over the stack's own sockets, whose adapters live in
//! [`stack_socket`] and [`services`]. [`services`] wires the protocols onto a stack.

pub mod dns;
pub mod http;
pub mod services;
pub mod stack_socket;
pub mod ws;
