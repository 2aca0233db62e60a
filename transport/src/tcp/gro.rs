//! Receive coalescing (software GRO): consecutive in-order data segments of one connection that
//! arrived in the same batch become one segment before the connection sees them, so it runs its
//! receive path once per batch instead of once per segment. The rules follow Linux's
//! `tcp_gro_receive`: a segment continues the one before when it starts where that one ends and
//! carries the same ports, acknowledgment, window, options (timestamps included) and flags —
//! PSH excepted, which may come on the last one merged and ends the run. SYN, FIN, RST, URG,
//! CWR and empty segments are never merged. The connection counts a coalesced segment as the
//! segments it stands for when it decides when to acknowledge (`Connection`), so the peer's
//! ACK clock is the same.
//!
//! Sans-IO: the caller keeps the segments and their buffers; this module says whether two
//! segments may be one and appends one to the other.

use std::net::Ipv4Addr;

use super::segment::{Flags, TcpPacket};
use super::seq::SeqNumber;

/// The largest TCP payload a coalesced segment holds: what one 64 KiB IPv4 datagram with the
/// largest headers carries.
pub const MAX_COALESCED_PAYLOAD: usize = 65535 - 60 - 60;

/// A connection, one direction: addresses and ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroFlow {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    src_port: u16,
    dst_port: u16,
}

impl GroFlow {
    /// The flow of a TCP segment (the IPv4 payload), if its header is whole.
    pub fn of(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> Option<GroFlow> {
        let p = TcpPacket::new_checked(segment).ok()?;
        Some(GroFlow {
            src,
            dst,
            src_port: p.src_port(),
            dst_port: p.dst_port(),
        })
    }
}

/// What decides whether a segment may be merged with its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroKey {
    flow: GroFlow,
    seq: SeqNumber,
    ack: SeqNumber,
    window: u16,
    flags: Flags,
    header_len: usize,
    payload_len: usize,
    /// The option bytes, compared as they are (up to 40).
    options: [u8; 40],
}

impl GroKey {
    /// The key of a TCP segment (`segment` is the IPv4 payload), or `None` when the segment
    /// can be merged with nothing: malformed, no payload, or a flag other than ACK and PSH.
    pub fn of(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> Option<GroKey> {
        let p = TcpPacket::new_checked(segment).ok()?;
        let flags = p.flags();
        let allowed = Flags(Flags::ACK.0 | Flags::PSH.0);
        if !flags.ack() || flags.0 & !allowed.0 != 0 || p.payload().is_empty() {
            return None;
        }
        let mut options = [0u8; 40];
        let o = p.options();
        options[..o.len()].copy_from_slice(o);
        Some(GroKey {
            flow: GroFlow::of(src, dst, segment)?,
            seq: p.seq_number(),
            ack: p.ack_number(),
            window: p.window(),
            flags,
            header_len: p.header_len(),
            payload_len: p.payload().len(),
            options,
        })
    }

    /// The segment's connection and direction.
    pub fn flow(&self) -> GroFlow {
        self.flow
    }

    /// Whether `next` continues the run this key ends (see the module's rules).
    pub fn continued_by(&self, next: &GroKey) -> bool {
        self.flow == next.flow
            && !self.flags.contains(Flags::PSH)
            && next.seq == self.seq + self.payload_len
            && next.ack == self.ack
            && next.window == self.window
            && next.header_len == self.header_len
            && next.options == self.options
            && self.payload_len + next.payload_len <= MAX_COALESCED_PAYLOAD
    }

    /// Payload bytes of the run.
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }
}

/// Appends `next` (a whole TCP segment whose key continues `head`'s) to `head` (a segment at
/// the end of `buf`, `buf[start..]`), copying PSH from `next`, and updates `head` to the
/// merged run. The merged segment's checksum is no longer valid: the caller verifies both
/// before and no one verifies the result.
pub fn append(buf: &mut Vec<u8>, start: usize, head: &mut GroKey, next: &GroKey, segment: &[u8]) {
    let payload = &segment[next.header_len..];
    buf.extend_from_slice(payload);
    head.payload_len += payload.len();
    if next.flags.contains(Flags::PSH) {
        head.flags = Flags(head.flags.0 | Flags::PSH.0);
        // Byte 13 of the TCP header holds the flags.
        if let Some(b) = buf.get_mut(start + 13) {
            *b |= Flags::PSH.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::segment::{Checksum, TcpRepr, Timestamp};

    const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn seg(seq: u32, flags: Flags, payload: &[u8], tsval: u32) -> Vec<u8> {
        let r = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNumber(seq),
            ack: SeqNumber(7),
            flags,
            window: 1000,
            timestamp: Some(Timestamp { tsval, tsecr: 1 }),
            payload_len: payload.len(),
            ..TcpRepr::default()
        };
        r.to_bytes(A, B, payload)
    }

    fn key(b: &[u8]) -> GroKey {
        GroKey::of(A, B, b).unwrap()
    }

    #[test]
    fn in_order_segments_with_the_same_header_merge_and_psh_ends_the_run() {
        let ack = Flags::ACK;
        let psh = Flags(Flags::ACK.0 | Flags::PSH.0);
        let s1 = seg(100, ack, b"hello ", 5);
        let s2 = seg(106, psh, b"world", 5);
        let s3 = seg(111, ack, b"!", 5);
        let mut head = key(&s1);
        assert!(head.continued_by(&key(&s2)));
        let mut buf = s1.clone();
        let k2 = key(&s2);
        append(&mut buf, 0, &mut head, &k2, &s2);
        // PSH came with the last one merged: nothing more joins the run.
        assert!(!head.continued_by(&key(&s3)));
        let p = TcpPacket::new_checked(&buf[..]).unwrap();
        let r = TcpRepr::parse(&p, A, B, Checksum::Ignore).unwrap();
        assert_eq!(p.payload(), b"hello world");
        assert_eq!((r.seq, r.flags), (SeqNumber(100), psh));
    }

    #[test]
    fn a_gap_a_flag_change_an_option_change_or_another_flow_is_never_merged() {
        let ack = Flags::ACK;
        let head = key(&seg(100, ack, b"abc", 5));
        // A gap (or a retransmission) in the sequence.
        assert!(!head.continued_by(&key(&seg(104, ack, b"d", 5))));
        assert!(!head.continued_by(&key(&seg(100, ack, b"abc", 5))));
        // Another timestamp: an option change.
        assert!(!head.continued_by(&key(&seg(103, ack, b"d", 6))));
        // Another flow.
        let other = GroKey::of(Ipv4Addr::new(192, 0, 2, 9), B, &seg(103, ack, b"d", 5)).unwrap();
        assert!(!head.continued_by(&other));
        // Flags other than ACK and PSH: never a candidate.
        for f in [Flags::FIN, Flags::SYN, Flags::RST, Flags::URG, Flags::CWR] {
            let flags = Flags(Flags::ACK.0 | f.0);
            assert!(
                GroKey::of(A, B, &seg(103, flags, b"d", 5)).is_none(),
                "{f:?}"
            );
        }
        // No payload (a pure ACK) or a malformed segment: never a candidate.
        assert!(GroKey::of(A, B, &seg(103, ack, b"", 5)).is_none());
        assert!(GroKey::of(A, B, &[0u8; 7]).is_none());
    }

    #[test]
    fn a_run_stops_at_the_coalescing_limit() {
        let ack = Flags::ACK;
        let big = vec![0u8; MAX_COALESCED_PAYLOAD - 10];
        let head = key(&seg(0, ack, &big, 5));
        assert!(head.continued_by(&key(&seg(big.len() as u32, ack, &[0; 10], 5))));
        assert!(!head.continued_by(&key(&seg(big.len() as u32, ack, &[0; 11], 5))));
    }
}
