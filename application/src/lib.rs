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

/// Two stacks joined by the in-memory link, for tests: 192.0.2.2 (usually the server) and
/// 192.0.2.3, one network and two transport workers each.
#[cfg(test)]
pub(crate) fn two_stacks() -> (netstack_runtime::Stack, netstack_runtime::Stack) {
    use netstack_runtime::config::device::{MemoryLink, MemoryLinkConfig};
    let (da, db) = MemoryLink::pair(MemoryLinkConfig::default());
    let build = |d, cidr: &str| {
        netstack_runtime::Stack::builder(std::sync::Arc::new(d), cidr.parse().unwrap())
            .workers(1, 2)
            .build()
            .unwrap()
    };
    (build(da, "192.0.2.2/24"), build(db, "192.0.2.3/24"))
}
