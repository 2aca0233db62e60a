//! Helpers shared by the fuzz targets: a reader that turns the fuzzer's bytes into a script of
//! operations, and checksum fix-ups so mutated packets reach the logic behind the checksum.
//!
//! Every target reads its input as a script: a sequence of operations, each an opcode byte and
//! the bytes that operation needs (a packet is a 16-bit length then that many bytes, cut short
//! at the end of the input). `fuzz/seeds/make_seeds.py` writes seeds in the same format.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netstack_network::checksum::{accumulate, fold, pseudo_header};
use netstack_network::wire::IpProtocol;

/// Reads operations and their arguments from the front of the fuzzer's input.
pub struct Script<'a> {
    data: &'a [u8],
}

impl<'a> Script<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Script { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    /// Big-endian; missing bytes read as zero once at least one is there.
    pub fn u16(&mut self) -> Option<u16> {
        let hi = self.u8()?;
        let lo = self.u8().unwrap_or(0);
        Some(u16::from_be_bytes([hi, lo]))
    }

    pub fn u32(&mut self) -> Option<u32> {
        let hi = self.u16()?;
        let lo = self.u16().unwrap_or(0);
        Some(u32::from(hi) << 16 | u32::from(lo))
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A 16-bit length, then that many bytes (fewer at the end of the input).
    pub fn chunk(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        Some(self.bytes(usize::from(n)))
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// A virtual clock the scripts advance; starts at one process-wide instant so runs repeat.
pub struct Clock {
    now: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        use std::sync::OnceLock;
        static T0: OnceLock<Instant> = OnceLock::new();
        Clock {
            now: *T0.get_or_init(Instant::now),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Advances by `step` on a scale that reaches both sub-second timers and multi-minute
    /// lifetimes: 0..=127 milliseconds ×10, 128..=255 seconds (×4).
    pub fn advance(&mut self, step: u8) {
        let d = if step < 128 {
            Duration::from_millis(u64::from(step) * 10)
        } else {
            Duration::from_secs(u64::from(step - 128) * 4)
        };
        self.now += d;
    }
}

/// The one's-complement checksum of `data`, to store in a zeroed field.
fn complement(sum: u32) -> u16 {
    !fold(sum)
}

/// Rewrites the IPv4 header checksum of `packet` when its IHL fits in the buffer.
pub fn fix_ipv4_header(packet: &mut [u8]) {
    if packet.len() < 20 {
        return;
    }
    let hl = usize::from(packet[0] & 0x0f) * 4;
    if hl < 20 || hl > packet.len() {
        return;
    }
    packet[10..12].fill(0);
    let c = complement(accumulate(0, &packet[..hl]));
    packet[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Rewrites the ICMP checksum of a whole ICMP message.
pub fn fix_icmp(message: &mut [u8]) {
    if message.len() < 4 {
        return;
    }
    message[2..4].fill(0);
    let c = complement(accumulate(0, message));
    message[2..4].copy_from_slice(&c.to_be_bytes());
}

/// Rewrites the TCP checksum of `segment` (the whole IPv4 payload) for `src` → `dst`.
pub fn fix_tcp(segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    if segment.len() < 18 {
        return;
    }
    segment[16..18].fill(0);
    let sum = pseudo_header(src, dst, IpProtocol::Tcp, segment.len());
    let c = complement(accumulate(sum, segment));
    segment[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Rewrites the UDP checksum of the first `length`-field bytes of `datagram`, unless the
/// field is zero (no checksum, RFC 768) or the length field does not fit.
pub fn fix_udp(datagram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
    if datagram.len() < 8 || datagram[6..8] == [0, 0] {
        return;
    }
    let len = usize::from(u16::from_be_bytes([datagram[4], datagram[5]]));
    if len < 8 || len > datagram.len() {
        return;
    }
    datagram[6..8].fill(0);
    let sum = pseudo_header(src, dst, IpProtocol::Udp, len);
    let mut c = complement(accumulate(sum, &datagram[..len]));
    if c == 0 {
        c = 0xffff;
    }
    datagram[6..8].copy_from_slice(&c.to_be_bytes());
}

/// Fixes every checksum of an IPv4 packet this harness can: the header's, and for an
/// unfragmented datagram the ICMP, UDP or TCP checksum over the payload its total length
/// gives.
pub fn fix_ipv4_packet(packet: &mut [u8]) {
    fix_ipv4_header(packet);
    if packet.len() < 20 {
        return;
    }
    let hl = usize::from(packet[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if hl < 20 || total < hl || total > packet.len() {
        return;
    }
    let frag = u16::from_be_bytes([packet[6], packet[7]]);
    if frag & 0x3fff != 0 {
        return;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let protocol = packet[9];
    let payload = &mut packet[hl..total];
    match protocol {
        1 => fix_icmp(payload),
        6 => fix_tcp(payload, src, dst),
        17 => fix_udp(payload, src, dst),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_ipv4_header_verifies() {
        let mut p = vec![
            0x45, 0, 0, 20, 0, 1, 0, 0, 64, 1, 0xde, 0xad, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        fix_ipv4_header(&mut p);
        assert_eq!(netstack_network::checksum::checksum(&p), 0);
    }
}
