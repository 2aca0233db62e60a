//! `Ipv4Endpoint`: the per-worker IPv4 processor the runtime's network actor calls.
//!
//! Policy, in one place:
//! - We are a host (RFC 1122), not a router: datagrams to our address, our subnet broadcast
//!   and 255.255.255.255 are accepted; everything else is dropped as `NotForUs` (no
//!   forwarding). Multicast is not joined, so multicast destinations are `NotForUs` too.
//! - RFC 1122 §3.2.1.3: a datagram whose source is broadcast or multicast is discarded.
//! - Fragments go to this worker's reassembly shard; the runtime uses [`shard_key`] so that
//!   all fragments of a datagram reach the same worker.
//! - Echo requests are answered (whatever their size, fragmented if needed), except when
//!   `answer_echo` is off or the request went to a broadcast address (RFC 1122 §3.2.2.6
//!   lets a host ignore those; answering invites smurf amplification) unless
//!   `answer_broadcast_echo` is set.
//! - Protocols not marked supported (ICMP, TCP and UDP are by default) draw Protocol
//!   Unreachable (RFC 1122 §3.2.2.1), subject to the error rules and the rate limit.
//! - ICMP errors follow [`crate::icmp::error_allowed`] and [`crate::icmp::RateLimiter`]
//!   (per destination /24 and a jittered global bucket). They quote the
//!   original header (re-emitted without options) plus as much of its payload as keeps the
//!   error within 576 bytes (RFC 1812 §4.3.2.3; at least the 8 bytes RFC 792 requires):
//!   up to [`MAX_QUOTED_DATA`] bytes.
//! - ICMP errors we receive reach the transport only when they quote a datagram from our
//!   address (RFC 5927 §4.1 leaves port and sequence checks to the transport).
//!
//! Nothing here panics on input; every drop increments a named counter of [`Ipv4Stats`].

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::OnceLock;
use std::time::Instant;

use crate::fragment::{fragment, FragmentError};
use crate::icmp::{error_allowed, is_broadcast, IcmpRateConfig, RateLimiter, Suppressed};
use crate::ident::IdentGenerator;
use crate::reassembly::{
    Reassembler, Reassembly, ReassemblyConfig, ReassemblyDrop, ReassemblyStats,
};
use crate::route::RoutingTable;
use crate::wire::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use crate::wire::ipv4::{HEADER_LEN, MAX_PACKET_LEN};
use crate::wire::{
    DstUnreachable, IpProtocol, Ipv4Cidr, Ipv4Packet, Ipv4Repr, TimeExceeded, WireError,
};

/// RFC 1812 §4.3.2.3: an ICMP error should not exceed 576 bytes: 576 − 20 (our IP header)
/// − 8 (ICMP header) − 20 (the quoted header) bytes of the original payload.
pub const MAX_QUOTED_DATA: usize = 576 - HEADER_LEN - 8 - HEADER_LEN;

/// Configuration of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Config {
    /// Our address and subnet (the subnet is on-link).
    pub addr: Ipv4Cidr,
    /// Default gateway; without one only the subnet is reachable.
    pub gateway: Option<Ipv4Addr>,
    /// Largest datagram the link carries (at least 68, RFC 791).
    pub mtu: usize,
    pub default_ttl: u8,
    /// This worker's reassembly limits (see `ReassemblyConfig::share`).
    pub reassembly: ReassemblyConfig,
    /// This worker's ICMP error budget (see `IcmpRateConfig::share`).
    pub icmp_rate: IcmpRateConfig,
    /// Seeds the random jitter of the ICMP error budget (see `crate::icmp`); `new` draws it
    /// from the OS-seeded keys of std's `RandomState`, tests fix it.
    pub icmp_seed: u64,
    /// Answer echo requests sent to our address.
    pub answer_echo: bool,
    /// Answer echo requests sent to a broadcast address too (off: smurf amplification).
    pub answer_broadcast_echo: bool,
    /// Verify IPv4 header and ICMP checksums (off only when the device already did).
    pub verify_checksums: bool,
}

impl Ipv4Config {
    /// Defaults: no gateway, MTU 1500, TTL 64 (RFC 1700 value, Linux default), default
    /// reassembly and ICMP limits (with a random jitter seed), echo answered, broadcast echo ignored.
    pub fn new(addr: Ipv4Cidr) -> Self {
        Ipv4Config {
            addr,
            gateway: None,
            mtu: 1500,
            default_ttl: 64,
            reassembly: ReassemblyConfig::default(),
            icmp_rate: IcmpRateConfig::default(),
            icmp_seed: RandomState::new().hash_one(u32::from(addr.addr)),
            answer_echo: true,
            answer_broadcast_echo: false,
            verify_checksums: true,
        }
    }
}

/// Per-datagram choices of `send`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// None: the configured default TTL.
    pub ttl: Option<u8>,
    /// Set DF: a datagram larger than the MTU then fails with `MessageTooLong`.
    pub dont_frag: bool,
    pub dscp_ecn: u8,
    /// `send_in_place` only: the device cuts this TCP datagram into segments that fit the MTU
    /// (segmentation offload), so it may be larger than the MTU, up to 65535 bytes.
    pub segmentation_offload: bool,
}

/// Why `send` built nothing (each counted in `Ipv4Stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No route to the destination.
    NoRoute,
    /// DF set and the datagram exceeds `mtu` (EMSGSIZE).
    MessageTooLong { mtu: usize },
    /// Header plus payload would exceed 65535 bytes.
    PayloadTooLarge,
    /// The configured MTU is below 68 bytes.
    MtuTooSmall,
}

/// An ICMP error (RFC 792): the one type the stack uses for errors it sends about received
/// datagrams, errors it receives about its own, and the errors it reports to its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpErrorKind {
    DstUnreachable(DstUnreachable),
    TimeExceeded(TimeExceeded),
}

/// What an ICMP error about one of our datagrams means to the socket (UDP or TCP) that sent
/// it; see [`IcmpErrorKind::socket_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketIcmpError {
    /// RFC 1191 §4: a hop could not forward the datagram without fragmenting it (DF set); the
    /// path MTU is at most `next_hop_mtu` (0 when the router did not say). Not an error the
    /// socket reports.
    PathMtu { next_hop_mtu: u16 },
    /// The socket reports `kind`. `hard` errors (RFC 1122 §4.2.3.9: protocol and port
    /// unreachable) end a connection attempt; soft ones only tell that the path failed once.
    Error {
        /// What std on Linux reports for it.
        kind: io::ErrorKind,
        /// Whether it ends a connection attempt.
        hard: bool,
    },
    /// Nothing to report: the peer gave up reassembling our fragments (RFC 792), which the
    /// transport's own retransmission covers.
    Nothing,
}

impl IcmpErrorKind {
    /// The error a socket reports for this ICMP error, with the `io::ErrorKind` std gives on
    /// Linux: port and protocol unreachable are `ConnectionRefused` (hard), network
    /// unreachable and unknown network `NetworkUnreachable`, every other destination
    /// unreachable code and TTL exceeded `HostUnreachable`; fragmentation needed is path MTU
    /// news and a reassembly timeout is nothing. The one mapping UDP and TCP both use.
    pub fn socket_error(self) -> SocketIcmpError {
        use DstUnreachable as D;
        let (kind, hard) = match self {
            IcmpErrorKind::DstUnreachable(D::FragRequired { next_hop_mtu }) => {
                return SocketIcmpError::PathMtu { next_hop_mtu };
            }
            IcmpErrorKind::TimeExceeded(TimeExceeded::FragReassembly) => {
                return SocketIcmpError::Nothing;
            }
            IcmpErrorKind::DstUnreachable(D::PortUnreachable | D::ProtocolUnreachable) => {
                (io::ErrorKind::ConnectionRefused, true)
            }
            IcmpErrorKind::DstUnreachable(D::NetUnreachable | D::DstNetUnknown) => {
                (io::ErrorKind::NetworkUnreachable, false)
            }
            IcmpErrorKind::DstUnreachable(_)
            | IcmpErrorKind::TimeExceeded(TimeExceeded::TtlExceeded) => {
                (io::ErrorKind::HostUnreachable, false)
            }
        };
        SocketIcmpError::Error { kind, hard }
    }
}

/// Bytes of our own transport header quoted when a datagram of ours is reported undeliverable
/// (RFC 792's minimum: enough for the ports and TCP's sequence number).
pub const LOCAL_QUOTE_LEN: usize = 8;

/// Whom to tell that a datagram we sent could not reach its next hop
/// ([`Ipv4Endpoint::local_unreachable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalUnreachable {
    /// Our echo request to `dst`: the pinger waiting for (`ident`, `seq_no`) hears that the
    /// host is unreachable.
    Echo {
        /// Where the request was going.
        dst: Ipv4Addr,
        /// The request's identifier.
        ident: u16,
        /// The request's sequence number.
        seq_no: u16,
    },
    /// A transport datagram: its sender hears host unreachable, exactly as if an ICMP error had
    /// come back (`header` is ours, `data` the first [`LOCAL_QUOTE_LEN`] bytes after it).
    Transport {
        /// Always destination host unreachable.
        kind: IcmpErrorKind,
        /// Our datagram's IPv4 header.
        header: Ipv4Repr,
        /// The start of our transport header.
        data: Vec<u8>,
    },
}

/// Complete IPv4 datagrams for one next hop; fragments in offset order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The address to resolve at the link layer (the destination or a gateway). A
    /// broadcast address (255.255.255.255 or the subnet's) means link-layer broadcast.
    pub next_hop: Ipv4Addr,
    pub packets: Vec<Vec<u8>>,
}

/// Where a delivered payload lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A range of the buffer passed to `receive` (unfragmented datagrams: zero copy).
    InPlace(Range<usize>),
    /// A reassembled datagram.
    Owned(Vec<u8>),
}

impl Payload {
    /// The payload bytes; `input` is the buffer given to `receive`.
    pub fn bytes<'a>(&'a self, input: &'a [u8]) -> &'a [u8] {
        match self {
            Payload::InPlace(r) => input.get(r.clone()).unwrap_or(&[]),
            Payload::Owned(v) => v,
        }
    }
}

/// ICMP messages for the layers above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IcmpEvent {
    /// An echo reply, for a local pinger.
    EchoReply {
        src: Ipv4Addr,
        ident: u16,
        seq_no: u16,
        data: Vec<u8>,
    },
    /// An error about a datagram we sent: `reporter` sent it, `header` is our quoted
    /// header, `data` the quoted bytes after it (the start of our transport header).
    Error {
        reporter: Ipv4Addr,
        kind: IcmpErrorKind,
        header: Ipv4Repr,
        data: Vec<u8>,
    },
}

/// Why `receive` dropped a packet (already counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The IPv4 header failed validation.
    Malformed(WireError),
    /// A source that is broadcast, multicast, class E, loopback or our own address
    /// (RFC 1122 §3.2.1.3).
    BadSource,
    /// Not addressed to us (we do not forward).
    NotForUs,
    Reassembly(ReassemblyDrop),
    /// An ICMP message failed validation or has a type we do not handle.
    IcmpMalformed(WireError),
    /// An ICMP error quoting a datagram we did not send.
    IcmpNotOurs,
    /// An echo request we chose not to answer (disabled, broadcast, bad source).
    EchoIgnored,
    /// A protocol not supported; Protocol Unreachable suppressed or rate limited.
    UnsupportedProtocol,
    /// A reply could not be sent (no route, or it could not be built).
    ReplyFailed,
}

/// What `receive` made of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A whole datagram for a transport protocol.
    Deliver { header: Ipv4Repr, payload: Payload },
    /// Echo reply or ICMP error for the layers above.
    Icmp(IcmpEvent),
    /// The endpoint answered by itself (echo reply, protocol unreachable).
    Respond(Outgoing),
    /// A fragment was stored; nothing to do yet.
    Held,
    /// Dropped; the reason is already counted.
    Dropped(DropReason),
}

crate::counters! {
    /// Counters of one endpoint, named after the causes.
    pub struct Ipv4Stats {
        /// Packets given to `receive`.
        rx_packets,
        /// Datagrams delivered to a transport protocol.
        rx_delivered,
        rx_truncated,
        rx_bad_version,
        rx_bad_header_len,
        rx_bad_total_len,
        rx_bad_checksum,
        rx_bad_source,
        rx_not_for_us,
        rx_unsupported_protocol,
        icmp_rx_echo_requests,
        icmp_rx_echo_replies,
        /// Errors about our datagrams, passed up.
        icmp_rx_errors,
        icmp_rx_truncated,
        icmp_rx_bad_checksum,
        icmp_rx_unknown_type,
        icmp_rx_bad_code,
        icmp_rx_bad_quote,
        /// Errors quoting a datagram not from our address.
        icmp_rx_not_ours,
        /// Echo requests not answered (disabled, to broadcast, from a non-unicast source).
        icmp_echo_ignored,
        icmp_tx_echo_replies,
        /// ICMP errors built (protocol unreachable, time exceeded, `icmp_error`).
        icmp_tx_errors,
        icmp_suppressed_about_icmp_error,
        icmp_suppressed_broadcast,
        icmp_suppressed_source,
        icmp_suppressed_fragment,
        /// The global ICMP error bucket was empty.
        icmp_rate_limited,
        /// The bucket of the error's destination /24 was empty.
        icmp_rate_limited_destination,
        /// `icmp_error` given an original that is not a valid IPv4 packet.
        icmp_bad_original,
        /// Datagrams sent (one per `send` that succeeded).
        tx_datagrams,
        /// Packets emitted, fragments counted one by one.
        tx_packets,
        /// Datagrams that needed fragmenting.
        tx_fragmented,
        tx_no_route,
        tx_message_too_long,
        tx_payload_too_large,
        tx_mtu_too_small,
        ;
        reassembly: ReassemblyStats,
    }
}

/// The per-worker IPv4 processor. Sans-IO.
#[derive(Debug)]
pub struct Ipv4Endpoint {
    config: Ipv4Config,
    routes: RoutingTable,
    ident: IdentGenerator,
    reassembler: Reassembler,
    limiter: RateLimiter,
    supported: [bool; 256],
    stats: Ipv4Stats,
}

impl Ipv4Endpoint {
    /// `ident` is shared by all workers of the stack (clone one `IdentGenerator`), so the
    /// IDs they choose never collide (see `crate::ident`).
    pub fn new(config: Ipv4Config, ident: IdentGenerator) -> Self {
        let routes = RoutingTable::for_interface(config.addr, config.gateway);
        let mut supported = [false; 256];
        for p in [IpProtocol::Icmp, IpProtocol::Tcp, IpProtocol::Udp] {
            supported[usize::from(u8::from(p))] = true;
        }
        Ipv4Endpoint {
            reassembler: Reassembler::new(config.reassembly),
            limiter: RateLimiter::new(config.icmp_rate, config.icmp_seed),
            config,
            routes,
            ident,
            supported,
            stats: Ipv4Stats::default(),
        }
    }

    pub fn config(&self) -> &Ipv4Config {
        &self.config
    }

    /// The routing table (built from `addr` and `gateway`; more routes may be added).
    pub fn routes_mut(&mut self) -> &mut RoutingTable {
        &mut self.routes
    }

    pub fn stats(&self) -> &Ipv4Stats {
        &self.stats
    }

    /// Marks a protocol as handled above (delivered) or not (Protocol Unreachable).
    pub fn set_supported(&mut self, protocol: IpProtocol, supported: bool) {
        self.supported[usize::from(u8::from(protocol))] = supported;
    }

    fn is_supported(&self, protocol: IpProtocol) -> bool {
        self.supported[usize::from(u8::from(protocol))]
    }

    /// This endpoint's reassembly shard, read-only (its memory and what it holds).
    pub fn reassembler(&self) -> &Reassembler {
        &self.reassembler
    }

    /// The next reassembly expiry; call `on_timeout` then.
    pub fn poll_deadline(&self) -> Option<Instant> {
        self.reassembler.poll_deadline()
    }

    /// One received IPv4 packet (may have trailing link padding). Never panics.
    pub fn receive(&mut self, now: Instant, packet: &[u8]) -> Received {
        self.stats.rx_packets += 1;
        let out = self.receive_inner(now, packet);
        self.stats.reassembly = *self.reassembler.stats();
        out
    }

    fn receive_inner(&mut self, now: Instant, packet: &[u8]) -> Received {
        let parsed = Ipv4Packet::new_checked(packet).and_then(|p| {
            Ok((
                Ipv4Repr::parse(&p, self.config.verify_checksums)?,
                p.header_len(),
            ))
        });
        let (header, header_len) = match parsed {
            Ok(ok) => ok,
            Err(e) => {
                *self.ip_error_counter(e) += 1;
                return Received::Dropped(DropReason::Malformed(e));
            }
        };
        let local = self.config.addr;
        let src = header.src;
        // Martians: our own address or loopback cannot arrive from the link (RFC 1122
        // §3.2.1.3 (a), (g)); nor can a source that is not one host.
        if src.is_multicast()
            || is_broadcast(src, &local)
            || src.octets()[0] >= 240
            || src.is_loopback()
            || src == local.addr
        {
            self.stats.rx_bad_source += 1;
            return Received::Dropped(DropReason::BadSource);
        }
        if header.dst != local.addr && !is_broadcast(header.dst, &local) {
            self.stats.rx_not_for_us += 1;
            return Received::Dropped(DropReason::NotForUs);
        }
        let range = header_len..header_len + header.payload_len;
        if !header.is_fragment() {
            return self.dispatch(now, header, Payload::InPlace(range), packet);
        }
        let data = packet.get(range).unwrap_or(&[]);
        match self.reassembler.push(now, &header, data) {
            Reassembly::Complete { header, payload } => {
                self.dispatch(now, header, Payload::Owned(payload), packet)
            }
            Reassembly::Held => Received::Held,
            Reassembly::Dropped(why) => Received::Dropped(DropReason::Reassembly(why)),
        }
    }

    fn ip_error_counter(&mut self, e: WireError) -> &mut u64 {
        let s = &mut self.stats;
        match e {
            WireError::Truncated => &mut s.rx_truncated,
            WireError::BadVersion => &mut s.rx_bad_version,
            WireError::BadHeaderLength => &mut s.rx_bad_header_len,
            WireError::BadChecksum => &mut s.rx_bad_checksum,
            // The IPv4 parser yields no other cause; count any as a bad length.
            _ => &mut s.rx_bad_total_len,
        }
    }

    fn icmp_error_counter(&mut self, e: WireError) -> &mut u64 {
        let s = &mut self.stats;
        match e {
            WireError::BadChecksum => &mut s.icmp_rx_bad_checksum,
            WireError::UnknownIcmpType => &mut s.icmp_rx_unknown_type,
            WireError::BadIcmpCode => &mut s.icmp_rx_bad_code,
            WireError::BadQuotedHeader => &mut s.icmp_rx_bad_quote,
            _ => &mut s.icmp_rx_truncated,
        }
    }

    /// A whole datagram for us: to a transport, to ICMP, or Protocol Unreachable.
    fn dispatch(
        &mut self,
        now: Instant,
        header: Ipv4Repr,
        payload: Payload,
        input: &[u8],
    ) -> Received {
        let bytes = payload.bytes(input);
        if !self.is_supported(header.protocol) {
            self.stats.rx_unsupported_protocol += 1;
            let kind = IcmpErrorKind::DstUnreachable(DstUnreachable::ProtocolUnreachable);
            return match self.icmp_error_about(now, &header, bytes, kind) {
                Some(out) => Received::Respond(out),
                None => Received::Dropped(DropReason::UnsupportedProtocol),
            };
        }
        if header.protocol == IpProtocol::Icmp {
            return self.receive_icmp(now, &header, bytes);
        }
        self.stats.rx_delivered += 1;
        Received::Deliver { header, payload }
    }

    fn receive_icmp(&mut self, now: Instant, ip: &Ipv4Repr, bytes: &[u8]) -> Received {
        let parsed = Icmpv4Packet::new_checked(bytes)
            .and_then(|p| Icmpv4Repr::parse(&p, self.config.verify_checksums));
        let repr = match parsed {
            Ok(r) => r,
            Err(e) => {
                *self.icmp_error_counter(e) += 1;
                return Received::Dropped(DropReason::IcmpMalformed(e));
            }
        };
        let (kind, header, data) = match repr {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => return self.answer_echo(now, ip, ident, seq_no, data),
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                self.stats.icmp_rx_echo_replies += 1;
                let data = data.to_vec();
                return Received::Icmp(IcmpEvent::EchoReply {
                    src: ip.src,
                    ident,
                    seq_no,
                    data,
                });
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                header,
                data,
            } => (IcmpErrorKind::DstUnreachable(reason), header, data),
            Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            } => (IcmpErrorKind::TimeExceeded(reason), header, data),
        };
        if header.src != self.config.addr.addr {
            self.stats.icmp_rx_not_ours += 1;
            return Received::Dropped(DropReason::IcmpNotOurs);
        }
        self.stats.icmp_rx_errors += 1;
        let data = data.to_vec();
        Received::Icmp(IcmpEvent::Error {
            reporter: ip.src,
            kind,
            header,
            data,
        })
    }

    fn answer_echo(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        ident: u16,
        seq_no: u16,
        data: &[u8],
    ) -> Received {
        self.stats.icmp_rx_echo_requests += 1;
        let local = self.config.addr;
        let to_broadcast = is_broadcast(ip.dst, &local);
        // Never reply to an address that is not one host (it would go nowhere or everywhere).
        let bad_source = ip.src.is_unspecified() || ip.src.is_loopback();
        if !self.config.answer_echo
            || (to_broadcast && !self.config.answer_broadcast_echo)
            || bad_source
        {
            self.stats.icmp_echo_ignored += 1;
            return Received::Dropped(DropReason::EchoIgnored);
        }
        // RFC 1122 §3.2.2.6: the reply carries the request's identifier, sequence and data.
        let reply = Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data,
        }
        .to_bytes();
        // Keep the DSCP, not the ECN bits: ICMP is not ECN-capable (RFC 3168 §6.1).
        let opts = SendOptions {
            dscp_ecn: ip.dscp_ecn & 0xfc,
            ..SendOptions::default()
        };
        match self.send(now, ip.src, IpProtocol::Icmp, &reply, opts) {
            Ok(out) => {
                self.stats.icmp_tx_echo_replies += 1;
                Received::Respond(out)
            }
            Err(_) => Received::Dropped(DropReason::ReplyFailed),
        }
    }

    /// The route and the header of a datagram of `payload_len` bytes to `dst` (counted
    /// errors: no route, too large).
    fn header(
        &mut self,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
        dont_frag: bool,
        opts: SendOptions,
    ) -> Result<(Ipv4Addr, Ipv4Repr), SendError> {
        let Some(hop) = self.routes.lookup(dst) else {
            self.stats.tx_no_route += 1;
            return Err(SendError::NoRoute);
        };
        if HEADER_LEN + payload_len > MAX_PACKET_LEN {
            self.stats.tx_payload_too_large += 1;
            return Err(SendError::PayloadTooLarge);
        }
        let src = self.config.addr.addr;
        let repr = Ipv4Repr {
            src,
            dst,
            protocol,
            ttl: opts.ttl.unwrap_or(self.config.default_ttl),
            dscp_ecn: opts.dscp_ecn,
            ident: self.ident.next(src, dst, protocol),
            dont_frag,
            more_frags: false,
            frag_offset: 0,
            payload_len,
        };
        Ok((hop.addr, repr))
    }

    /// Builds (and fragments) an outgoing datagram from our address.
    pub fn send(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        payload: &[u8],
        opts: SendOptions,
    ) -> Result<Outgoing, SendError> {
        let _ = now; // Sans-IO signature; no time-dependent state yet (PMTU would be).
        let (hop, repr) = self.header(dst, protocol, payload.len(), opts.dont_frag, opts)?;
        match fragment(&repr, payload, self.config.mtu) {
            Ok(packets) => {
                self.stats.tx_datagrams += 1;
                self.stats.tx_packets += packets.len() as u64;
                if packets.len() > 1 {
                    self.stats.tx_fragmented += 1;
                }
                Ok(Outgoing {
                    next_hop: hop,
                    packets,
                })
            }
            Err(FragmentError::MessageTooLong { mtu }) => {
                self.stats.tx_message_too_long += 1;
                Err(SendError::MessageTooLong { mtu })
            }
            Err(FragmentError::TooLarge) => {
                self.stats.tx_payload_too_large += 1;
                Err(SendError::PayloadTooLarge)
            }
            Err(FragmentError::MtuTooSmall) => {
                self.stats.tx_mtu_too_small += 1;
                Err(SendError::MtuTooSmall)
            }
        }
    }

    /// Like `send` for a datagram that goes out whole, built in the caller's buffer: `packet`
    /// holds [`HEADER_LEN`] free bytes, then the payload; the header is written in place and
    /// the next hop returned. No copy and no allocation. A datagram larger than the MTU is
    /// not fragmented here: it fails with `MessageTooLong` (the DF semantics TCP asks for).
    pub fn send_in_place(
        &mut self,
        now: Instant,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        packet: &mut [u8],
        opts: SendOptions,
    ) -> Result<Ipv4Addr, SendError> {
        let _ = now;
        if packet.len() < HEADER_LEN {
            self.stats.tx_payload_too_large += 1;
            return Err(SendError::PayloadTooLarge);
        }
        let (hop, repr) = self.header(dst, protocol, packet.len() - HEADER_LEN, true, opts)?;
        if packet.len() > self.config.mtu && !opts.segmentation_offload {
            self.stats.tx_message_too_long += 1;
            return Err(SendError::MessageTooLong {
                mtu: self.config.mtu,
            });
        }
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut *packet));
        self.stats.tx_datagrams += 1;
        self.stats.tx_packets += 1;
        Ok(hop)
    }

    /// An ICMP error about `original` (a received packet), applying RFC 1122 §3.2.2 and the
    /// rate limit; None when suppressed (counted).
    pub fn icmp_error(
        &mut self,
        now: Instant,
        original: &[u8],
        kind: IcmpErrorKind,
    ) -> Option<Outgoing> {
        let parsed =
            Ipv4Packet::new_checked(original).and_then(|p| Ok((Ipv4Repr::parse(&p, false)?, p)));
        let Ok((header, packet)) = parsed else {
            self.stats.icmp_bad_original += 1;
            return None;
        };
        self.icmp_error_about(now, &header, packet.payload(), kind)
    }

    /// The same as `icmp_error` for a datagram known by its header and payload, e.g. a
    /// reassembled one from `Received::Deliver` (`Payload::bytes` gives the payload).
    pub fn icmp_error_about(
        &mut self,
        now: Instant,
        header: &Ipv4Repr,
        payload: &[u8],
        kind: IcmpErrorKind,
    ) -> Option<Outgoing> {
        if let Err(why) = error_allowed(header, payload, &self.config.addr) {
            let s = &mut self.stats;
            *match why {
                Suppressed::AboutIcmpError => &mut s.icmp_suppressed_about_icmp_error,
                Suppressed::BroadcastOrMulticast => &mut s.icmp_suppressed_broadcast,
                Suppressed::NonUnicastSource => &mut s.icmp_suppressed_source,
                Suppressed::NonFirstFragment => &mut s.icmp_suppressed_fragment,
                Suppressed::RateLimited => &mut s.icmp_rate_limited,
                Suppressed::DestinationRateLimited => &mut s.icmp_rate_limited_destination,
            } += 1;
            return None;
        }
        match self.limiter.allow(now, header.src) {
            Ok(()) => {}
            Err(Suppressed::DestinationRateLimited) => {
                self.stats.icmp_rate_limited_destination += 1;
                return None;
            }
            Err(_) => {
                self.stats.icmp_rate_limited += 1;
                return None;
            }
        }
        let quote = &payload[..payload.len().min(MAX_QUOTED_DATA)];
        let message = match kind {
            IcmpErrorKind::DstUnreachable(reason) => Icmpv4Repr::DstUnreachable {
                reason,
                header: *header,
                data: quote,
            },
            IcmpErrorKind::TimeExceeded(reason) => Icmpv4Repr::TimeExceeded {
                reason,
                header: *header,
                data: quote,
            },
        };
        let bytes = message.to_bytes();
        let out = self
            .send(
                now,
                header.src,
                IpProtocol::Icmp,
                &bytes,
                SendOptions::default(),
            )
            .ok()?;
        self.stats.icmp_tx_errors += 1;
        Some(out)
    }

    /// One of our own datagrams (a whole IPv4 packet, as `send` built it) could not reach its
    /// next hop: the link layer found no neighbour for it. Its sender is told as if an ICMP
    /// host unreachable had come back (RFC 1122 §3.3.1.3 leaves the report to the host; Linux
    /// does the same). A fragment other than the first carries no ports and is not reported;
    /// neither is anything unparsable or an ICMP message other than our echo request.
    pub fn local_unreachable(&self, packet: &[u8]) -> Option<LocalUnreachable> {
        let p = Ipv4Packet::new_checked(packet).ok()?;
        let header = Ipv4Repr::parse(&p, false).ok()?;
        if header.frag_offset != 0 {
            return None;
        }
        let data = p.payload();
        if header.protocol == IpProtocol::Icmp {
            return match Icmpv4Packet::new_checked(data).and_then(|i| Icmpv4Repr::parse(&i, false))
            {
                Ok(Icmpv4Repr::EchoRequest { ident, seq_no, .. }) => Some(LocalUnreachable::Echo {
                    dst: header.dst,
                    ident,
                    seq_no,
                }),
                _ => None,
            };
        }
        Some(LocalUnreachable::Transport {
            kind: IcmpErrorKind::DstUnreachable(DstUnreachable::HostUnreachable),
            header,
            data: data[..data.len().min(LOCAL_QUOTE_LEN)].to_vec(),
        })
    }

    /// Expires reassembly; returns Time Exceeded (code 1) for datagrams whose first
    /// fragment had arrived (RFC 1122 §3.3.2), subject to the error rules and rate limit.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for expired in self.reassembler.expire(now) {
            if let Some((header, data)) = expired.first_fragment {
                let kind = IcmpErrorKind::TimeExceeded(TimeExceeded::FragReassembly);
                out.extend(self.icmp_error_about(now, &header, &data, kind));
            }
        }
        self.stats.reassembly = *self.reassembler.stats();
        out
    }
}

/// A hash of (src, dst, protocol, ident) read from raw bytes without validation, so the
/// runtime can send every fragment of a datagram to the same worker. Short or garbage
/// input yields some key (missing bytes read as zero), never a panic. Keyed with a
/// per-process random secret so remote hosts cannot aim all traffic at one worker.
pub fn shard_key(packet: &[u8]) -> u64 {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    let mut fields = [0u8; 11];
    for (dst, src) in fields
        .iter_mut()
        .zip([12, 13, 14, 15, 16, 17, 18, 19, 9, 4, 5])
    {
        *dst = packet.get(src).copied().unwrap_or(0);
    }
    KEY.get_or_init(RandomState::new).hash_one(fields)
}

#[cfg(test)]
mod tests;
