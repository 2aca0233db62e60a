//! A host's routing table: on-link subnets, routes via gateways, a default gateway;
//! longest-prefix match (RFC 1812 §5.2.4.3, as a host uses it: RFC 1122 §3.3.1).

use std::net::Ipv4Addr;

use crate::wire::Ipv4Cidr;

/// Where to send a datagram at the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// The address to resolve (ARP): the destination itself when on-link, else a gateway.
    pub addr: Ipv4Addr,
    /// The route that matched.
    pub route: Ipv4Cidr,
}

/// One route: `dest` is reached directly (`gateway: None`) or through `gateway`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dest: Ipv4Cidr,
    pub gateway: Option<Ipv4Addr>,
}

/// Routes kept sorted by prefix length, longest first, so the first match wins.
#[derive(Debug, Clone, Default)]
pub struct RoutingTable {
    routes: Vec<Route>,
}

impl RoutingTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The table of a host with one interface address and an optional default gateway.
    pub fn for_interface(addr: Ipv4Cidr, gateway: Option<Ipv4Addr>) -> Self {
        let mut t = Self::new();
        t.add_on_link(addr);
        if let Some(g) = gateway {
            t.set_default_gateway(g);
        }
        t
    }

    /// Adds a route, replacing one for the same destination prefix. The gateway is not
    /// checked to be on-link (a later lookup of it would show).
    pub fn add(&mut self, route: Route) {
        let dest = Ipv4Cidr::new(route.dest.network(), route.dest.prefix_len).unwrap_or(route.dest);
        let route = Route {
            dest,
            gateway: route.gateway,
        };
        self.routes.retain(|r| r.dest != dest);
        let at = self
            .routes
            .partition_point(|r| r.dest.prefix_len >= dest.prefix_len);
        self.routes.insert(at, route);
    }

    /// A directly attached subnet.
    pub fn add_on_link(&mut self, subnet: Ipv4Cidr) {
        self.add(Route {
            dest: subnet,
            gateway: None,
        });
    }

    /// 0.0.0.0/0 via `gateway`.
    pub fn set_default_gateway(&mut self, gateway: Ipv4Addr) {
        self.add(Route {
            dest: Ipv4Cidr {
                addr: Ipv4Addr::UNSPECIFIED,
                prefix_len: 0,
            },
            gateway: Some(gateway),
        });
    }

    pub fn remove(&mut self, dest: Ipv4Cidr) {
        let net = dest.network();
        self.routes
            .retain(|r| !(r.dest.network() == net && r.dest.prefix_len == dest.prefix_len));
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The longest matching prefix decides. The limited broadcast 255.255.255.255 is
    /// always on-link (RFC 919); None when nothing matches.
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<NextHop> {
        if dst.is_broadcast() {
            let route = Ipv4Cidr {
                addr: dst,
                prefix_len: 32,
            };
            return Some(NextHop { addr: dst, route });
        }
        let r = self.routes.iter().find(|r| r.dest.contains(dst))?;
        Some(NextHop {
            addr: r.gateway.unwrap_or(dst),
            route: r.dest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    const GW: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    #[test]
    fn on_link_destination_is_its_own_next_hop() {
        let t = RoutingTable::for_interface(cidr("192.0.2.2/24"), Some(GW));
        let d = Ipv4Addr::new(192, 0, 2, 77);
        assert_eq!(
            t.lookup(d),
            Some(NextHop {
                addr: d,
                route: cidr("192.0.2.0/24")
            })
        );
    }

    #[test]
    fn default_gateway_catches_the_rest() {
        let t = RoutingTable::for_interface(cidr("192.0.2.2/24"), Some(GW));
        let hop = t.lookup(Ipv4Addr::new(198, 51, 100, 5)).unwrap();
        assert_eq!((hop.addr, hop.route), (GW, cidr("0.0.0.0/0")));
    }

    #[test]
    fn no_route_without_gateway() {
        let t = RoutingTable::for_interface(cidr("192.0.2.2/24"), None);
        assert_eq!(t.lookup(Ipv4Addr::new(198, 51, 100, 5)), None);
    }

    #[test]
    fn longest_prefix_wins_whatever_the_insertion_order() {
        let via = |n| Some(Ipv4Addr::new(192, 0, 2, n));
        let mut t = RoutingTable::new();
        t.add(Route {
            dest: cidr("198.51.100.0/24"),
            gateway: via(10),
        });
        t.add(Route {
            dest: cidr("198.51.100.128/25"),
            gateway: via(11),
        });
        t.add(Route {
            dest: cidr("198.51.0.0/16"),
            gateway: via(12),
        });
        t.set_default_gateway(GW);
        t.add_on_link(cidr("192.0.2.0/24"));
        let hop = |a: [u8; 4]| t.lookup(Ipv4Addr::from(a)).unwrap().addr;
        assert_eq!(hop([198, 51, 100, 200]), Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(hop([198, 51, 100, 5]), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(hop([198, 51, 7, 5]), Ipv4Addr::new(192, 0, 2, 12));
        assert_eq!(hop([203, 0, 113, 1]), GW);
    }

    #[test]
    fn adding_the_same_prefix_replaces_and_remove_deletes() {
        let mut t = RoutingTable::new();
        t.add(Route {
            dest: cidr("198.51.100.9/24"),
            gateway: Some(GW),
        });
        t.add_on_link(cidr("198.51.100.0/24"));
        assert_eq!(t.routes().len(), 1);
        let d = Ipv4Addr::new(198, 51, 100, 5);
        assert_eq!(t.lookup(d).unwrap().addr, d);
        t.remove(cidr("198.51.100.0/24"));
        assert_eq!(t.lookup(d), None);
    }

    #[test]
    fn limited_broadcast_is_on_link() {
        let t = RoutingTable::new();
        assert_eq!(
            t.lookup(Ipv4Addr::BROADCAST).unwrap().addr,
            Ipv4Addr::BROADCAST
        );
    }
}
