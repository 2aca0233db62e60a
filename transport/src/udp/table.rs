//! Which UDP socket a datagram belongs to, and which ports are taken.
//!
//! Lookup order for a datagram from `remote` to `local` (the order Linux scores sockets in):
//! a socket connected to exactly that remote, then one bound to exactly the local address, then
//! one bound to the wildcard address. Binding refuses a port whose address overlaps a socket
//! already there (no SO_REUSEADDR), as std::net does with `AddrInUse`. Port 0 takes the first
//! free port among the caller's candidates (see [`crate::ports`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// A socket's handle in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindError {
    /// Another socket holds an overlapping address on that port.
    AddrInUse,
    /// Every candidate ephemeral port is taken.
    NoEphemeralPort,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BindError::AddrInUse => "address already in use",
            BindError::NoEphemeralPort => "no free ephemeral port",
        })
    }
}

impl std::error::Error for BindError {}

#[derive(Debug, Clone)]
struct Entry<S> {
    id: SocketId,
    local: Ipv4Addr,
    remote: Option<SocketAddrV4>,
    socket: S,
}

/// The bound sockets, by local port. `S` is whatever the runtime keeps per socket.
#[derive(Debug)]
pub struct SocketTable<S> {
    ports: HashMap<u16, Vec<Entry<S>>>,
    next_id: u64,
}

impl<S> Default for SocketTable<S> {
    fn default() -> Self {
        Self {
            ports: HashMap::new(),
            next_id: 1,
        }
    }
}

impl<S> SocketTable<S> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.ports.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Binds `local`; port 0 takes the first free port of `candidates` (for example
    /// [`crate::ports::random_candidates`]), which is not used otherwise.
    /// `make` builds the socket's entry once its id and final address are known.
    pub fn bind(
        &mut self,
        local: SocketAddrV4,
        candidates: impl IntoIterator<Item = u16>,
        make: impl FnOnce(SocketId, SocketAddrV4) -> S,
    ) -> Result<(SocketId, SocketAddrV4), BindError> {
        let port = if local.port() == 0 {
            candidates
                .into_iter()
                .find(|&port| port != 0 && self.port_free(*local.ip(), port))
                .ok_or(BindError::NoEphemeralPort)?
        } else {
            if !self.port_free(*local.ip(), local.port()) {
                return Err(BindError::AddrInUse);
            }
            local.port()
        };
        let id = SocketId(self.next_id);
        self.next_id += 1;
        let bound = SocketAddrV4::new(*local.ip(), port);
        self.ports.entry(port).or_default().push(Entry {
            id,
            local: *local.ip(),
            remote: None,
            socket: make(id, bound),
        });
        Ok((id, bound))
    }

    fn port_free(&self, addr: Ipv4Addr, port: u16) -> bool {
        self.ports.get(&port).is_none_or(|entries| {
            !entries
                .iter()
                .any(|e| e.local == addr || e.local.is_unspecified() || addr.is_unspecified())
        })
    }

    /// Sets (or with `None` clears) the remote a socket is connected to.
    pub fn connect(&mut self, port: u16, id: SocketId, remote: Option<SocketAddrV4>) -> bool {
        match self
            .ports
            .get_mut(&port)
            .and_then(|v| v.iter_mut().find(|e| e.id == id))
        {
            Some(e) => {
                e.remote = remote;
                true
            }
            None => false,
        }
    }

    /// Removes a socket; its port becomes free.
    pub fn unbind(&mut self, port: u16, id: SocketId) -> Option<S> {
        let entries = self.ports.get_mut(&port)?;
        let i = entries.iter().position(|e| e.id == id)?;
        let e = entries.swap_remove(i);
        if entries.is_empty() {
            self.ports.remove(&port);
        }
        Some(e.socket)
    }

    /// Calls `f` on every socket (for example to close them all at shutdown).
    pub fn for_each_socket(&self, mut f: impl FnMut(&S)) {
        self.ports.values().flatten().for_each(|e| f(&e.socket));
    }

    /// The socket a datagram from `remote` to `local` belongs to.
    pub fn lookup(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<(SocketId, &S)> {
        let entries = self.ports.get(&local.port())?;
        let addr_ok = |e: &Entry<S>| e.local == *local.ip() || e.local.is_unspecified();
        let best = entries
            .iter()
            .filter(|e| addr_ok(e) && e.remote.is_none_or(|r| r == remote))
            .max_by_key(|e| (e.remote.is_some(), !e.local.is_unspecified()))?;
        Some((best.id, &best.socket))
    }

    /// The socket connected to exactly `remote` from `local` (its address or the wildcard),
    /// if any: the only kind an ICMP error about a datagram we sent is reported to.
    pub fn lookup_connected(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Option<(SocketId, &S)> {
        let entries = self.ports.get(&local.port())?;
        let e = entries
            .iter()
            .filter(|e| e.remote == Some(remote))
            .filter(|e| e.local == *local.ip() || e.local.is_unspecified())
            .max_by_key(|e| !e.local.is_unspecified())?;
        Some((e.id, &e.socket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{random_candidates, EPHEMERAL_PORTS};

    fn sa(a: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, a), port)
    }

    fn any(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
    }

    #[test]
    fn binding_a_taken_port_is_addr_in_use() {
        let mut t = SocketTable::new();
        t.bind(any(53), [], |_, _| "a").unwrap();
        assert_eq!(
            t.bind(any(53), [], |_, _| "b").unwrap_err(),
            BindError::AddrInUse
        );
        assert_eq!(
            t.bind(sa(2, 53), [], |_, _| "c").unwrap_err(),
            BindError::AddrInUse
        );
        let mut t = SocketTable::new();
        t.bind(sa(2, 53), [], |_, _| "a").unwrap();
        assert_eq!(
            t.bind(any(53), [], |_, _| "b").unwrap_err(),
            BindError::AddrInUse
        );
        // A different specific address on the same port is fine.
        t.bind(sa(3, 53), [], |_, _| "c").unwrap();
    }

    #[test]
    fn port_zero_picks_a_free_ephemeral_port() {
        let mut t = SocketTable::new();
        let (_, a) = t.bind(any(0), random_candidates(12345), |_, _| ()).unwrap();
        let (_, b) = t.bind(any(0), random_candidates(12345), |_, _| ()).unwrap();
        assert!(EPHEMERAL_PORTS.contains(&a.port()) && EPHEMERAL_PORTS.contains(&b.port()));
        assert_eq!(a.port(), 49152 + 12345);
        assert_eq!(b.port(), a.port() + 1, "the taken candidate is skipped");
    }

    #[test]
    fn port_zero_skips_candidates_taken_by_a_specific_address_or_zero() {
        let mut t = SocketTable::new();
        t.bind(sa(2, 50000), [], |_, _| ()).unwrap();
        let (_, b) = t.bind(any(0), [0, 50000, 50001], |_, _| ()).unwrap();
        assert_eq!(b.port(), 50001);
    }

    #[test]
    fn ephemeral_ports_run_out_with_an_error() {
        let mut t = SocketTable::new();
        for port in EPHEMERAL_PORTS {
            // Start each search at a free port, so filling the range stays linear.
            t.bind(any(0), random_candidates(u32::from(port)), |_, _| ())
                .unwrap();
        }
        assert_eq!(
            t.bind(any(0), random_candidates(7), |_, _| ()).unwrap_err(),
            BindError::NoEphemeralPort
        );
        let mut t = SocketTable::<()>::new();
        assert_eq!(
            t.bind(any(0), [], |_, _| ()).unwrap_err(),
            BindError::NoEphemeralPort
        );
    }

    #[test]
    fn an_explicit_port_ignores_the_candidates() {
        let mut t = SocketTable::new();
        let (_, a) = t.bind(any(53), [50000], |_, _| ()).unwrap();
        assert_eq!(a.port(), 53);
    }

    #[test]
    fn lookup_connected_finds_only_a_socket_connected_to_that_remote() {
        let mut t = SocketTable::new();
        let (wild, _) = t.bind(any(9), [], |_, _| "wild").unwrap();
        assert!(t.lookup_connected(sa(2, 9), sa(1, 1000)).is_none());
        t.connect(9, wild, Some(sa(1, 1000)));
        assert_eq!(t.lookup_connected(sa(2, 9), sa(1, 1000)).unwrap().0, wild);
        assert!(t.lookup_connected(sa(2, 9), sa(1, 1001)).is_none());
        assert!(t.lookup_connected(sa(2, 10), sa(1, 1000)).is_none());
        t.connect(9, wild, None);
        assert!(t.lookup_connected(sa(2, 9), sa(1, 1000)).is_none());
    }

    #[test]
    fn connected_beats_specific_beats_wildcard() {
        let mut t = SocketTable::new();
        let (wild, _) = t.bind(any(7), [], |_, _| "wild").unwrap();
        let mut t2 = SocketTable::new();
        let (spec, _) = t2.bind(sa(2, 7), [], |_, _| "spec").unwrap();
        assert_eq!(t.lookup(sa(2, 7), sa(1, 999)).unwrap().0, wild);
        assert_eq!(t2.lookup(sa(2, 7), sa(1, 999)).unwrap().0, spec);
        // A connected socket only takes datagrams from its remote.
        let mut t = SocketTable::new();
        let (c, _) = t.bind(sa(2, 9), [], |_, _| "conn").unwrap();
        t.connect(9, c, Some(sa(1, 1000)));
        assert_eq!(t.lookup(sa(2, 9), sa(1, 1000)).unwrap().0, c);
        assert!(t.lookup(sa(2, 9), sa(1, 1001)).is_none());
    }

    #[test]
    fn wrong_address_or_port_finds_nothing() {
        let mut t = SocketTable::new();
        t.bind(sa(2, 7), [], |_, _| ()).unwrap();
        assert!(t.lookup(sa(3, 7), sa(1, 1)).is_none());
        assert!(t.lookup(sa(2, 8), sa(1, 1)).is_none());
    }

    #[test]
    fn unbind_frees_the_port() {
        let mut t = SocketTable::new();
        let (id, _) = t.bind(any(7), [], |_, _| "a").unwrap();
        assert_eq!(t.unbind(7, id), Some("a"));
        assert!(t.is_empty());
        t.bind(any(7), [], |_, _| "b").unwrap();
    }
}
