//! The Internet checksum (RFC 1071) and the IPv4 pseudo-header (RFC 768, RFC 9293 §3.1).
//!
//! Sums are kept as a `u32` accumulator of 16-bit big-endian words so that a header and a
//! payload held in separate buffers can be summed without copying, then folded once.

use std::net::Ipv4Addr;

use crate::wire::IpProtocol;

/// Adds `data` to a running one's-complement sum. An odd trailing byte is padded with zero,
/// so only the last piece of a multi-part sum may have odd length.
///
/// RFC 1071 §2: the bulk is summed 32 bytes at a time as native-endian 64-bit words with
/// end-around carry ("parallel summation"; since 2^64 ≡ 2^16 ≡ 1 (mod 2^16 − 1) this is
/// congruent to adding the 16-bit words one by one), folded to 16 bits and byte-swapped to
/// network order on a little-endian host ("byte order independence"); the tail is added as
/// big-endian 16-bit words. Folding with end-around carry never turns a non-zero sum into
/// zero. The result is folded to 16 bits, so callers may keep adding small values to it.
pub fn accumulate(sum: u32, data: &[u8]) -> u32 {
    let mut wide: u64 = 0;
    let add = |acc: u64, w: u64| {
        let (s, carry) = acc.overflowing_add(w);
        s + u64::from(carry)
    };
    let word = |c: &[u8]| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    let mut blocks = data.chunks_exact(32);
    for c in &mut blocks {
        wide = add(wide, word(&c[0..8]));
        wide = add(wide, word(&c[8..16]));
        wide = add(wide, word(&c[16..24]));
        wide = add(wide, word(&c[24..32]));
    }
    let mut words = blocks.remainder().chunks_exact(8);
    for c in &mut words {
        wide = add(wide, word(c));
    }
    // 64 → 32 → 16 bits, end-around carry at each step; then to network byte order.
    let mut folded = (wide & 0xffff_ffff) + (wide >> 32);
    folded = (folded & 0xffff_ffff) + (folded >> 32);
    let mut native = (folded & 0xffff) + (folded >> 16);
    native = (native & 0xffff) + (native >> 16);
    native = (native & 0xffff) + (native >> 16);
    let bulk = if cfg!(target_endian = "little") {
        (native as u16).swap_bytes()
    } else {
        native as u16
    };
    let mut acc = u64::from(sum) + u64::from(bulk);
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for c in &mut pairs {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u32
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

    /// The word-at-a-time sum against the definition: 16-bit words, end-around carry.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in data.chunks(2) {
            let word = u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
            sum += word;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    proptest::proptest! {
        #[test]
        fn parallel_sum_equals_the_definition(data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000), split in 0usize..3000) {
            proptest::prop_assert_eq!(fold(accumulate(0, &data)), reference(&data));
            // In two pieces, the first of even length, as callers do (header, then payload).
            let split = (split.min(data.len())) & !1;
            let two = accumulate(accumulate(0, &data[..split]), &data[split..]);
            proptest::prop_assert_eq!(fold(two), reference(&data));
        }
    }

    #[test]
    fn all_ones_data_sums_to_ffff_never_zero() {
        assert_eq!(fold(accumulate(0, &[0xff; 24])), 0xffff);
        assert_eq!(fold(accumulate(0xffff, &[0xff, 0xff])), 0xffff);
        assert_eq!(fold(accumulate(0, &[])), 0);
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
