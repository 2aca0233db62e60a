//! The UDP endpoint, sans-IO: what a received datagram and an ICMP error about a datagram we
//! sent call for, given the socket table. The runtime keeps the table (and its lock) and the
//! sockets' receive queues; it calls these functions and does what they return.
//!
//! Rules, in one place:
//! - A received datagram is checked (RFC 768: length field, checksum unless zero,
//!   destination port not 0); a bad one is dropped and counted under its cause.
//! - It goes to the socket [`SocketTable::lookup`] finds: one connected to exactly its
//!   source, else one bound to exactly its destination address, else one bound to the
//!   wildcard address.
//! - With no socket, RFC 1122 §4.1.3.1 asks for ICMP port unreachable. The IPv4 layer builds
//!   it and still applies its own rules (never about a broadcast or a fragment other than the
//!   first, RFC 1122 §3.2.2) and its rate limit.
//! - An ICMP error quoting a datagram we sent is reported only to a socket connected to that
//!   datagram's destination, as Linux does: an unconnected socket could not tell which of its
//!   sends failed. The error kind is [`IcmpErrorKind::socket_error`], the mapping TCP uses
//!   too; path MTU news and reassembly timeouts are not errors for a UDP socket.
//!
//! Every datagram and every ICMP error handled here is counted in [`UdpStats`] (delivery
//! into a socket's queue, which the runtime bounds, is counted by the runtime).

use std::io;
use std::net::SocketAddrV4;
use std::ops::Range;

use netstack_network::endpoint::{IcmpErrorKind, SocketIcmpError};
use netstack_network::wire::ipv4::Ipv4Repr;
use netstack_network::wire::{DstUnreachable, IpProtocol};

use crate::Checksum;

use super::{SocketId, SocketTable, UdpError, UdpPacket, UdpRepr, UdpStats, HEADER_LEN};

/// What a received datagram calls for.
#[derive(Debug, PartialEq, Eq)]
pub enum Input<'t, S> {
    /// Queue the bytes `payload` (a range of the datagram given to [`receive`]) on `socket`,
    /// as sent by `from`.
    Deliver {
        /// The socket's handle in the table.
        id: SocketId,
        /// What the runtime keeps for it (its receive queue).
        socket: &'t S,
        /// The sender's address and port.
        from: SocketAddrV4,
        /// Where the data lies in the bytes given to [`receive`].
        payload: Range<usize>,
    },
    /// No socket takes it: answer with this ICMP error (port unreachable, RFC 1122
    /// §4.1.3.1), built by the IPv4 layer under its rules. Counted as `rx_no_socket`.
    Reject(IcmpErrorKind),
    /// Malformed: drop it. Already counted under the cause.
    Drop(UdpError),
}

/// Handles a received UDP datagram: `header` is its IPv4 header, `datagram` the IPv4 payload
/// (UDP header and data; trailing bytes past the UDP length are ignored); `checksum` says
/// whether its checksum is verified.
pub fn receive<'t, S>(
    table: &'t SocketTable<S>,
    header: &Ipv4Repr,
    datagram: &[u8],
    checksum: Checksum,
    stats: &mut UdpStats,
) -> Input<'t, S> {
    stats.rx_datagrams += 1;
    let parsed = UdpPacket::new_checked(datagram).and_then(|p| {
        UdpRepr::parse_with(&p, header.src, header.dst, checksum).map(|r| (r, p.len()))
    });
    let (repr, len) = match parsed {
        Ok(x) => x,
        Err(e) => {
            stats.record_error(e);
            return Input::Drop(e);
        }
    };
    let local = SocketAddrV4::new(header.dst, repr.dst_port);
    let from = SocketAddrV4::new(header.src, repr.src_port);
    match table.lookup(local, from) {
        Some((id, socket)) => Input::Deliver {
            id,
            socket,
            from,
            payload: HEADER_LEN..len,
        },
        None => {
            stats.rx_no_socket += 1;
            Input::Reject(IcmpErrorKind::DstUnreachable(
                DstUnreachable::PortUnreachable,
            ))
        }
    }
}

/// An ICMP error for a socket: its next call reports `error` (as Linux's pending socket
/// error).
#[derive(Debug, PartialEq, Eq)]
pub struct IcmpReport<'t, S> {
    /// The socket's handle in the table.
    pub id: SocketId,
    /// What the runtime keeps for it.
    pub socket: &'t S,
    /// The error to report, from [`IcmpErrorKind::socket_error`].
    pub error: io::ErrorKind,
}

/// Handles an ICMP error about a datagram we sent: `header` is our quoted IPv4 header,
/// `quoted` the bytes quoted after it (the start of our UDP header). Returns the socket to
/// tell, if any (counted as `icmp_errors_delivered`, the others as `icmp_errors_ignored`).
/// Errors about other protocols are not UDP's and are neither reported nor counted.
pub fn icmp_error<'t, S>(
    table: &'t SocketTable<S>,
    kind: IcmpErrorKind,
    header: &Ipv4Repr,
    quoted: &[u8],
    stats: &mut UdpStats,
) -> Option<IcmpReport<'t, S>> {
    if header.protocol != IpProtocol::Udp {
        return None;
    }
    let SocketIcmpError::Error { kind: error, .. } = kind.socket_error() else {
        // Path MTU: the next send is fragmented to fit anyway; nothing for the socket.
        return None;
    };
    let Some(ports) = quoted.get(..4) else {
        stats.icmp_errors_ignored += 1;
        return None;
    };
    let local = SocketAddrV4::new(header.src, u16::from_be_bytes([ports[0], ports[1]]));
    let remote = SocketAddrV4::new(header.dst, u16::from_be_bytes([ports[2], ports[3]]));
    match table.lookup_connected(local, remote) {
        Some((id, socket)) => {
            stats.icmp_errors_delivered += 1;
            Some(IcmpReport { id, socket, error })
        }
        None => {
            stats.icmp_errors_ignored += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netstack_network::wire::TimeExceeded;
    use std::net::Ipv4Addr;

    const US: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const BROADCAST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 255);

    fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(ip, port)
    }

    fn any(port: u16) -> SocketAddrV4 {
        sa(Ipv4Addr::UNSPECIFIED, port)
    }

    fn ip_header(src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::Udp,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            payload_len,
        }
    }

    /// A datagram from PEER:`from_port` to `dst`:`to_port`, with its IPv4 header.
    fn datagram(dst: Ipv4Addr, from_port: u16, to_port: u16, data: &[u8]) -> (Ipv4Repr, Vec<u8>) {
        let mut out = Vec::new();
        UdpRepr {
            src_port: from_port,
            dst_port: to_port,
        }
        .emit(PEER, dst, data, &mut out);
        (ip_header(PEER, dst, out.len()), out)
    }

    fn delivered_to<S: Copy + std::fmt::Debug>(
        input: Input<'_, S>,
    ) -> (S, SocketAddrV4, Range<usize>) {
        match input {
            Input::Deliver {
                socket,
                from,
                payload,
                ..
            } => (*socket, from, payload),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    #[test]
    fn datagram_goes_to_the_bound_socket_with_its_payload_and_source() {
        let mut t = SocketTable::new();
        t.bind(any(7), [], |_, _| "echo").unwrap();
        let mut st = UdpStats::default();
        let (h, d) = datagram(US, 40000, 7, b"hello");
        let (socket, from, payload) = delivered_to(receive(&t, &h, &d, Checksum::Verify, &mut st));
        assert_eq!((socket, from), ("echo", sa(PEER, 40000)));
        assert_eq!(&d[payload], b"hello");
        assert_eq!(st.rx_datagrams, 1);
    }

    #[test]
    fn ip_padding_past_the_udp_length_is_not_payload() {
        let mut t = SocketTable::new();
        t.bind(any(7), [], |_, _| ()).unwrap();
        let (h, mut d) = datagram(US, 40000, 7, b"hi");
        d.extend_from_slice(&[0; 6]);
        let (_, _, payload) = delivered_to(receive(
            &t,
            &h,
            &d,
            Checksum::Verify,
            &mut UdpStats::default(),
        ));
        assert_eq!(payload, HEADER_LEN..HEADER_LEN + 2);
    }

    #[test]
    fn a_connected_socket_takes_datagrams_from_its_remote_only() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| "conn").unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let mut st = UdpStats::default();
        let (h, d) = datagram(US, 53, 5000, b"x");
        assert_eq!(
            delivered_to(receive(&t, &h, &d, Checksum::Verify, &mut st)).0,
            "conn"
        );
        // From anyone else it is as if nobody listened (Linux answers port unreachable too).
        let (h, d) = datagram(US, 54, 5000, b"x");
        assert!(matches!(
            receive(&t, &h, &d, Checksum::Verify, &mut st),
            Input::Reject(_)
        ));
        assert_eq!(st.rx_no_socket, 1);
    }

    #[test]
    fn a_stranger_to_a_connected_port_gets_exactly_what_a_closed_port_gets() {
        // The ephemeral port of a connected socket (a DNS query's) must not show as open to
        // anyone but its peer: the same outcome (ICMP port unreachable) and the same counters
        // as a closed port, whether the stranger differs by address or only by port.
        let mut open = SocketTable::new();
        let (c, _) = open.bind(any(50001), [], |_, _| "query").unwrap();
        open.connect(50001, c, Some(sa(PEER, 53)));
        let closed = SocketTable::<&str>::new();
        let (mut st_open, mut st_closed) = (UdpStats::default(), UdpStats::default());
        for (src, port) in [(Ipv4Addr::new(198, 51, 100, 9), 53), (PEER, 5353)] {
            let mut d = Vec::new();
            UdpRepr {
                src_port: port,
                dst_port: 50001,
            }
            .emit(src, US, b"spoofed answer", &mut d);
            let h = ip_header(src, US, d.len());
            let a = receive(&open, &h, &d, Checksum::Verify, &mut st_open);
            let b = receive(&closed, &h, &d, Checksum::Verify, &mut st_closed);
            assert_eq!(a, b);
            assert_eq!(
                a,
                Input::Reject(IcmpErrorKind::DstUnreachable(
                    DstUnreachable::PortUnreachable
                ))
            );
        }
        assert_eq!(st_open, st_closed);
        assert_eq!(st_open.rx_no_socket, 2);
    }

    #[test]
    fn no_socket_answers_port_unreachable_and_counts_it() {
        // RFC 1122 §4.1.3.1.
        let t = SocketTable::<()>::new();
        let mut st = UdpStats::default();
        let (h, d) = datagram(US, 40000, 9999, b"x");
        assert_eq!(
            receive(&t, &h, &d, Checksum::Verify, &mut st),
            Input::Reject(IcmpErrorKind::DstUnreachable(
                DstUnreachable::PortUnreachable
            ))
        );
        assert_eq!((st.rx_datagrams, st.rx_no_socket), (1, 1));
    }

    #[test]
    fn a_broadcast_reaches_only_wildcard_sockets() {
        let mut t = SocketTable::new();
        t.bind(sa(US, 67), [], |_, _| "specific").unwrap();
        let (h, d) = datagram(BROADCAST, 68, 67, b"x");
        let mut st = UdpStats::default();
        // The reject is for the IPv4 layer, which never sends an error about a broadcast.
        assert!(matches!(
            receive(&t, &h, &d, Checksum::Verify, &mut st),
            Input::Reject(_)
        ));
        let mut t = SocketTable::new();
        t.bind(any(67), [], |_, _| "wild").unwrap();
        assert_eq!(
            delivered_to(receive(&t, &h, &d, Checksum::Verify, &mut st)).0,
            "wild"
        );
    }

    #[test]
    fn malformed_datagrams_are_dropped_and_counted_by_cause() {
        let mut t = SocketTable::new();
        t.bind(any(7), [], |_, _| ()).unwrap();
        let mut st = UdpStats::default();
        let (h, good) = datagram(US, 40000, 7, b"data");
        assert_eq!(
            receive(&t, &h, &good[..5], Checksum::Verify, &mut st),
            Input::Drop(UdpError::Truncated)
        );
        let mut long = good.clone();
        long[5] = 200; // length field past the end
        assert_eq!(
            receive(&t, &h, &long, Checksum::Verify, &mut st),
            Input::Drop(UdpError::BadLength)
        );
        let mut flipped = good.clone();
        flipped[9] ^= 1;
        assert_eq!(
            receive(&t, &h, &flipped, Checksum::Verify, &mut st),
            Input::Drop(UdpError::BadChecksum)
        );
        // A checksum the device vouched for (or left partial) is not checked again.
        assert!(matches!(
            receive(&t, &h, &flipped, Checksum::Ignore, &mut UdpStats::default()),
            Input::Deliver { .. }
        ));
        let (h0, port0) = datagram(US, 40000, 0, b"data");
        assert_eq!(
            receive(&t, &h0, &port0, Checksum::Verify, &mut st),
            Input::Drop(UdpError::BadPort)
        );
        assert_eq!(
            (
                st.rx_datagrams,
                st.rx_truncated,
                st.rx_bad_length,
                st.rx_bad_checksum,
                st.rx_bad_port,
                st.rx_no_socket
            ),
            (4, 1, 1, 1, 1, 0)
        );
    }

    #[test]
    fn a_zero_checksum_means_none_was_computed() {
        // RFC 768.
        let mut t = SocketTable::new();
        t.bind(any(7), [], |_, _| ()).unwrap();
        let (h, mut d) = datagram(US, 40000, 7, b"data");
        d[6..8].copy_from_slice(&[0, 0]);
        assert!(matches!(
            receive(&t, &h, &d, Checksum::Verify, &mut UdpStats::default()),
            Input::Deliver { .. }
        ));
    }

    /// Our datagram from US:`from_port` to PEER:`to_port`, as an ICMP error quotes it.
    fn ours(from_port: u16, to_port: u16) -> (Ipv4Repr, Vec<u8>) {
        let mut q = Vec::new();
        q.extend_from_slice(&from_port.to_be_bytes());
        q.extend_from_slice(&to_port.to_be_bytes());
        q.extend_from_slice(&[0, 12, 0, 0]);
        (ip_header(US, PEER, 12), q)
    }

    fn unreachable(reason: DstUnreachable) -> IcmpErrorKind {
        IcmpErrorKind::DstUnreachable(reason)
    }

    #[test]
    fn icmp_error_reaches_the_socket_connected_to_that_remote() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| "conn").unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let mut st = UdpStats::default();
        let (h, q) = ours(5000, 53);
        let got = icmp_error(
            &t,
            unreachable(DstUnreachable::PortUnreachable),
            &h,
            &q,
            &mut st,
        );
        assert_eq!(
            got,
            Some(IcmpReport {
                id: c,
                socket: &"conn",
                error: io::ErrorKind::ConnectionRefused
            })
        );
        assert_eq!(st.icmp_errors_delivered, 1);
    }

    #[test]
    fn icmp_error_kinds_follow_the_shared_mapping() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| ()).unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let (h, q) = ours(5000, 53);
        let cases = [
            (
                unreachable(DstUnreachable::NetUnreachable),
                io::ErrorKind::NetworkUnreachable,
            ),
            (
                unreachable(DstUnreachable::HostUnreachable),
                io::ErrorKind::HostUnreachable,
            ),
            (
                unreachable(DstUnreachable::ProtocolUnreachable),
                io::ErrorKind::ConnectionRefused,
            ),
            (
                IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded),
                io::ErrorKind::HostUnreachable,
            ),
        ];
        for (kind, want) in cases {
            let got = icmp_error(&t, kind, &h, &q, &mut UdpStats::default());
            assert_eq!(got.map(|r| r.error), Some(want), "{kind:?}");
        }
    }

    #[test]
    fn path_mtu_news_and_reassembly_timeouts_tell_the_socket_nothing() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| ()).unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let (h, q) = ours(5000, 53);
        let mut st = UdpStats::default();
        for kind in [
            unreachable(DstUnreachable::FragRequired { next_hop_mtu: 1280 }),
            IcmpErrorKind::TimeExceeded(TimeExceeded::FragReassembly),
        ] {
            assert!(icmp_error(&t, kind, &h, &q, &mut st).is_none());
        }
        assert_eq!(st, UdpStats::default());
    }

    #[test]
    fn an_unconnected_socket_never_hears_of_icmp_errors() {
        let mut t = SocketTable::new();
        t.bind(any(5000), [], |_, _| ()).unwrap();
        let (h, q) = ours(5000, 53);
        let mut st = UdpStats::default();
        let kind = unreachable(DstUnreachable::PortUnreachable);
        assert!(icmp_error(&t, kind, &h, &q, &mut st).is_none());
        assert_eq!(st.icmp_errors_ignored, 1);
    }

    #[test]
    fn icmp_error_about_another_remote_or_port_is_ignored() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| ()).unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let kind = unreachable(DstUnreachable::PortUnreachable);
        let mut st = UdpStats::default();
        for (from, to) in [(5000, 54), (5001, 53)] {
            let (h, q) = ours(from, to);
            assert!(icmp_error(&t, kind, &h, &q, &mut st).is_none());
        }
        assert_eq!(st.icmp_errors_ignored, 2);
    }

    #[test]
    fn icmp_error_quoting_too_little_is_ignored_and_other_protocols_are_not_ours() {
        let mut t = SocketTable::new();
        let (c, _) = t.bind(any(5000), [], |_, _| ()).unwrap();
        t.connect(5000, c, Some(sa(PEER, 53)));
        let kind = unreachable(DstUnreachable::PortUnreachable);
        let mut st = UdpStats::default();
        let (h, q) = ours(5000, 53);
        assert!(icmp_error(&t, kind, &h, &q[..3], &mut st).is_none());
        assert_eq!(st.icmp_errors_ignored, 1);
        let tcp = Ipv4Repr {
            protocol: IpProtocol::Tcp,
            ..h
        };
        assert!(icmp_error(&t, kind, &tcp, &q, &mut st).is_none());
        assert_eq!(st.icmp_errors_ignored, 1);
    }
}
