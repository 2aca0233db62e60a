//! SYN cookies (RFC 4987 §3.6): when the SYN queue is full the listener answers with a
//! SYN-ACK whose ISN encodes what it must remember, and keeps no state until the ACK returns.
//!
//! Layout of the 32-bit cookie, high bits first:
//! `counter:5 | mss index:3 | window scale:4 (15 = none) | SACK-permitted:1 | MAC:19`.
//! The MAC is a keyed hash of the 4-tuple, the peer's ISN, the counter and the encoded
//! fields. The counter ticks every 64 s; a cookie is accepted for two ticks (up to 128 s).
//! Timestamps are not encoded: a returning ACK that carries the option shows the peer agreed
//! to it (RFC 7323 §3.2 sends it on every segment once negotiated).

use super::isn::{siphash24, tuple_bytes};
use super::seq::SeqNumber;
use super::FourTuple;

/// The MSS values a cookie can carry (the largest not above the peer's is chosen).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1360, 1400, 1440, 1452, 1460];
/// Seconds per counter tick.
pub const TICK_SECS: u64 = 64;
const MAC_BITS: u32 = 19;
const NO_WSCALE: u32 = 15;

/// What a cookie remembers of the SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieParams {
    pub mss: u16,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
}

fn mac(key: &[u8; 16], tuple: &FourTuple, peer_isn: SeqNumber, counter: u32, fields: u32) -> u32 {
    let mut data = [0u8; 24];
    data[..12].copy_from_slice(&tuple_bytes(tuple));
    data[12..16].copy_from_slice(&peer_isn.0.to_be_bytes());
    data[16..20].copy_from_slice(&counter.to_be_bytes());
    data[20..24].copy_from_slice(&fields.to_be_bytes());
    (siphash24(key, &data) as u32) & ((1 << MAC_BITS) - 1)
}

/// Builds the cookie (our ISN) for a SYN with `peer_isn` seen at counter `counter`.
pub fn encode(
    key: &[u8; 16],
    tuple: &FourTuple,
    peer_isn: SeqNumber,
    counter: u32,
    p: CookieParams,
) -> SeqNumber {
    let mss_idx = MSS_TABLE.iter().rposition(|&m| m <= p.mss).unwrap_or(0) as u32;
    let ws = p.window_scale.map_or(NO_WSCALE, |w| u32::from(w.min(14)));
    let fields =
        ((counter & 31) << 27) | (mss_idx << 24) | (ws << 20) | (u32::from(p.sack_permitted) << 19);
    SeqNumber(fields | mac(key, tuple, peer_isn, counter & 31, fields))
}

/// Checks a returning cookie (the ACK number minus one) against the current counter.
pub fn decode(
    key: &[u8; 16],
    tuple: &FourTuple,
    peer_isn: SeqNumber,
    counter_now: u32,
    cookie: SeqNumber,
) -> Option<CookieParams> {
    let c = cookie.0;
    let counter = c >> 27;
    let age = (counter_now & 31).wrapping_sub(counter) & 31;
    if age > 1 {
        return None;
    }
    let fields = c & !((1 << MAC_BITS) - 1);
    if mac(key, tuple, peer_isn, counter, fields) != c & ((1 << MAC_BITS) - 1) {
        return None;
    }
    let ws = (c >> 20) & 0xf;
    Some(CookieParams {
        mss: MSS_TABLE[((c >> 24) & 7) as usize],
        window_scale: if ws == NO_WSCALE {
            None
        } else {
            Some(ws as u8)
        },
        sack_permitted: (c >> 19) & 1 == 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn tuple() -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 5555),
        }
    }
    const K: [u8; 16] = [3; 16];
    const P: CookieParams = CookieParams {
        mss: 1460,
        window_scale: Some(7),
        sack_permitted: true,
    };

    #[test]
    fn cookie_round_trips_mss_window_scale_and_sack() {
        let c = encode(&K, &tuple(), SeqNumber(99), 4, P);
        assert_eq!(decode(&K, &tuple(), SeqNumber(99), 4, c), Some(P));
        let q = CookieParams {
            mss: 1000,
            window_scale: None,
            sack_permitted: false,
        };
        let c = encode(&K, &tuple(), SeqNumber(99), 4, q);
        assert_eq!(
            decode(&K, &tuple(), SeqNumber(99), 4, c),
            Some(CookieParams { mss: 536, ..q })
        );
    }

    #[test]
    fn cookie_expires_after_two_ticks() {
        let c = encode(&K, &tuple(), SeqNumber(99), 31, P);
        assert!(decode(&K, &tuple(), SeqNumber(99), 0, c).is_some());
        assert!(decode(&K, &tuple(), SeqNumber(99), 1, c).is_none());
    }

    #[test]
    fn forged_or_mismatched_cookie_is_rejected() {
        let c = encode(&K, &tuple(), SeqNumber(99), 4, P);
        assert!(decode(&K, &tuple(), SeqNumber(100), 4, c).is_none());
        assert!(decode(&[4; 16], &tuple(), SeqNumber(99), 4, c).is_none());
        assert!(decode(&K, &tuple(), SeqNumber(99), 4, SeqNumber(c.0 ^ 1)).is_none());
        // Flipping an encoded field breaks the MAC too.
        assert!(decode(&K, &tuple(), SeqNumber(99), 4, SeqNumber(c.0 ^ (1 << 19))).is_none());
    }
}
