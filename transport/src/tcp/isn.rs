//! Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport,
//! secretkey), with M a timer ticking every 4 µs and F a keyed hash (SipHash-2-4 here).

use std::time::Duration;

use super::seq::SeqNumber;
use super::FourTuple;

/// SipHash-2-4 (Aumasson & Bernstein), the keyed PRF RFC 6528 §3 asks for.
pub(crate) fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let k1 = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let m = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    }
    let mut last = [0u8; 8];
    let rem = chunks.remainder();
    last[..rem.len()].copy_from_slice(rem);
    last[7] = data.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    round(&mut v);
    round(&mut v);
    v[0] ^= m;
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

/// The bytes of a 4-tuple, local first, as hashed by ISNs and cookies.
pub(crate) fn tuple_bytes(t: &FourTuple) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0..4].copy_from_slice(&t.local.ip().octets());
    b[4..6].copy_from_slice(&t.local.port().to_be_bytes());
    b[6..10].copy_from_slice(&t.remote.ip().octets());
    b[10..12].copy_from_slice(&t.remote.port().to_be_bytes());
    b
}

/// RFC 6528 §3: the ISN for `tuple` at `elapsed` since the endpoint's clock origin.
pub fn initial_sequence_number(
    secret: &[u8; 16],
    tuple: &FourTuple,
    elapsed: Duration,
) -> SeqNumber {
    let m = (elapsed.as_micros() / 4) as u32;
    let f = siphash24(secret, &tuple_bytes(tuple)) as u32;
    SeqNumber(m.wrapping_add(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), port),
        }
    }

    #[test]
    fn siphash_matches_the_reference_vector() {
        // The SipHash paper, Appendix A: key 00..0f, message 00..0e.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&key, &msg), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn isn_advances_with_the_4us_clock() {
        // RFC 6528 §3: M is a timer incremented every 4 microseconds.
        let k = [7u8; 16];
        let a = initial_sequence_number(&k, &tuple(1000), Duration::ZERO);
        let b = initial_sequence_number(&k, &tuple(1000), Duration::from_micros(400));
        assert_eq!(b.diff(a), 100);
    }

    #[test]
    fn isn_differs_per_tuple_and_per_key() {
        // RFC 6528 §3: F hashes the connection-id with a secret key.
        let k = [7u8; 16];
        let a = initial_sequence_number(&k, &tuple(1000), Duration::ZERO);
        let b = initial_sequence_number(&k, &tuple(1001), Duration::ZERO);
        let c = initial_sequence_number(&[8u8; 16], &tuple(1000), Duration::ZERO);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
