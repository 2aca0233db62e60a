//! The Internet checksum (RFC 1071) and the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1).
//!
//! Sums are kept as a `u32` accumulator of 16-bit big-endian words so that a header and a
//! payload held in separate buffers can be summed without copying, then folded once.

use std::net::Ipv4Addr;

use crate::wire::IpProtocol;

/// Adds `data` to a running one's-complement sum. An odd trailing byte is padded with zero,
/// so only the last piece of a multi-part sum may have odd length.
pub fn accumulate(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early enough that the accumulator can never overflow, however long the data.
        if sum & 0x8000_0000 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
    }
    sum
}

/// Folds an accumulator into 16 bits (without complementing).
pub fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The checksum of `data` alone: the complement of its folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    !fold(accumulate(0, data))
}

/// The sum of the IPv4 pseudo-header used by TCP and UDP.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, length: usize) -> u32 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum = sum.wrapping_add(u32::from(u8::from(protocol)));
    sum.wrapping_add(length as u32 & 0xffff)
}

/// True when `data` (which contains its own checksum field) sums to all ones.
pub fn verify(sum: u32) -> bool {
    fold(sum) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(accumulate(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), 0x220d);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(checksum(&[0xab]), !0xab00);
    }

    #[test]
    fn a_packet_carrying_its_checksum_verifies() {
        let mut data = vec![
            0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x01, 0, 0,
        ];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verify(accumulate(0, &data)));
        data[0] ^= 1;
        assert!(!verify(accumulate(0, &data)));
    }

    #[test]
    fn long_data_does_not_overflow_the_accumulator() {
        let data = vec![0xff; 200_000];
        assert_eq!(fold(accumulate(0, &data)), 0xffff);
    }

    #[test]
    fn pseudo_header_sums_its_fields() {
        let s = pseudo_header(
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            IpProtocol::Udp,
            8,
        );
        let expected = 0xc000 + 0x0201 + 0xc000 + 0x0202 + 17 + 8;
        assert_eq!(fold(s), fold(expected));
    }
}
