//! Which worker owns what.
//!
//! - Network workers: by (src, dst, protocol, ident) of the IPv4 header, so every fragment of a
//!   datagram meets the one reassembly shard that can complete it.
//! - Transport workers: by a keyed hash of the 4-tuple, so one connection's segments always meet
//!   the worker that owns its state. The key is random per stack, so a remote peer cannot aim
//!   all its connections at one worker.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::SocketAddrV4;

use netstack_network::wire::IpProtocol;

#[derive(Clone)]
pub(crate) struct Sharder {
    key: RandomState,
    network: usize,
    transport: usize,
}

impl Sharder {
    pub fn new(network: usize, transport: usize) -> Self {
        Self {
            key: RandomState::new(),
            network: network.max(1),
            transport: transport.max(1),
        }
    }

    /// The network worker for a raw IPv4 packet (garbage included: it still lands somewhere,
    /// and the worker counts the drop).
    pub fn network_worker(&self, packet: &[u8]) -> usize {
        // shard_key is already keyed per process.
        (netstack_network::endpoint::shard_key(packet) % self.network as u64) as usize
    }

    /// The transport worker for a flow seen from our side.
    pub fn transport_worker(
        &self,
        protocol: IpProtocol,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> usize {
        let h = self.key.hash_one((u8::from(protocol), local, remote));
        (h % self.transport as u64) as usize
    }

    /// The transport worker that owns the UDP sockets bound to local port `port` (all of
    /// them: connected or not, any local address), so binding needs no cross-worker check.
    pub fn udp_worker(&self, port: u16) -> usize {
        (self.key.hash_one((17u8, port)) % self.transport as u64) as usize
    }

    pub fn network_workers(&self) -> usize {
        self.network
    }

    pub fn transport_workers(&self) -> usize {
        self.transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn a_flow_always_maps_to_the_same_worker_and_flows_spread() {
        let s = Sharder::new(2, 4);
        let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
        let mut seen = [0usize; 4];
        for port in 1024..2048 {
            let remote = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), port);
            let w = s.transport_worker(IpProtocol::Tcp, local, remote);
            assert_eq!(w, s.transport_worker(IpProtocol::Tcp, local, remote));
            seen[w] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }

    #[test]
    fn garbage_packets_still_get_a_worker() {
        let s = Sharder::new(3, 1);
        assert!(s.network_worker(&[]) < 3);
        assert!(s.network_worker(&[0x45]) < 3);
    }
}
