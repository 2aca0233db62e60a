//! Splitting a datagram into fragments that fit an MTU (RFC 791 §2.3, §3.2 "Fragmentation").

use crate::wire::ipv4::{Ipv4Repr, HEADER_LEN, MAX_PACKET_LEN};

/// RFC 791 §3.1: every internet module must forward a 68-byte datagram without further
/// fragmentation; an MTU below that cannot be honoured.
pub const MIN_MTU: usize = 68;

/// Why a datagram could not be fragmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentError {
    /// DF is set and the datagram is larger than the MTU (the caller reports EMSGSIZE or
    /// ICMP Fragmentation Needed carrying `mtu`).
    MessageTooLong { mtu: usize },
    /// Header plus payload exceeds the 65535 bytes the total length field can express.
    TooLarge,
    /// The MTU is below the 68 bytes RFC 791 guarantees.
    MtuTooSmall,
}

/// Emits `repr` with `payload` as one datagram when it fits `mtu`, else as fragments in
/// offset order. Each fragment but the last carries a multiple of 8 payload bytes and MF;
/// the last keeps `repr.more_frags`, so an already fragmented datagram can be split again.
/// `repr.payload_len` is ignored: `payload.len()` is used.
pub fn fragment(
    repr: &Ipv4Repr,
    payload: &[u8],
    mtu: usize,
) -> Result<Vec<Vec<u8>>, FragmentError> {
    let total = HEADER_LEN + payload.len();
    if total > MAX_PACKET_LEN
        || usize::from(repr.frag_offset) + payload.len() > MAX_PACKET_LEN - HEADER_LEN
    {
        return Err(FragmentError::TooLarge);
    }
    if mtu < MIN_MTU {
        return Err(FragmentError::MtuTooSmall);
    }
    if total <= mtu {
        return Ok(vec![repr.to_bytes(payload)]);
    }
    if repr.dont_frag {
        return Err(FragmentError::MessageTooLong { mtu });
    }
    // RFC 791 §3.2: the data of every fragment but the last is a multiple of 8 octets.
    let chunk = (mtu - HEADER_LEN) & !7;
    let count = payload.len().div_ceil(chunk);
    let mut out = Vec::with_capacity(count);
    for (i, piece) in payload.chunks(chunk).enumerate() {
        let last = i + 1 == count;
        let frag = Ipv4Repr {
            frag_offset: repr.frag_offset + (i * chunk) as u16,
            more_frags: if last { repr.more_frags } else { true },
            payload_len: piece.len(),
            ..*repr
        };
        out.push(frag.to_bytes(piece));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{IpProtocol, Ipv4Packet};
    use std::net::Ipv4Addr;

    pub(crate) fn datagram(len: usize) -> (Ipv4Repr, Vec<u8>) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 2),
            dst: Ipv4Addr::new(192, 0, 2, 1),
            protocol: IpProtocol::Udp,
            ttl: 64,
            dscp_ecn: 0,
            ident: 4242,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            payload_len: len,
        };
        (repr, payload)
    }

    fn parse(b: &[u8]) -> (Ipv4Repr, Vec<u8>) {
        let p = Ipv4Packet::new_checked(b).unwrap();
        (Ipv4Repr::parse(&p, true).unwrap(), p.payload().to_vec())
    }

    #[test]
    fn datagram_that_fits_is_not_fragmented() {
        let (r, p) = datagram(1480);
        let out = fragment(&r, &p, 1500).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(parse(&out[0]), (r, p));
    }

    #[test]
    fn fragments_have_8_byte_aligned_offsets_and_mf_on_all_but_last() {
        let (r, p) = datagram(4000);
        let out = fragment(&r, &p, 1500).unwrap();
        let parsed: Vec<_> = out.iter().map(|b| parse(b)).collect();
        let shape: Vec<_> = parsed
            .iter()
            .map(|(h, d)| (h.frag_offset, h.more_frags, d.len(), h.ident))
            .collect();
        assert_eq!(
            shape,
            vec![
                (0, true, 1480, 4242),
                (1480, true, 1480, 4242),
                (2960, false, 1040, 4242)
            ]
        );
        assert!(out.iter().all(|b| b.len() <= 1500));
        let joined: Vec<u8> = parsed.into_iter().flat_map(|(_, d)| d).collect();
        assert_eq!(joined, p);
    }

    #[test]
    fn odd_mtu_rounds_fragment_payload_down_to_8() {
        let (r, p) = datagram(100);
        let out = fragment(&r, &p, 20 + 45).unwrap_err();
        assert_eq!(out, FragmentError::MtuTooSmall);
        let out = fragment(&r, &p, 20 + 53).unwrap();
        let lens: Vec<_> = out.iter().map(|b| parse(b).1.len()).collect();
        assert_eq!(lens, vec![48, 48, 4]);
    }

    #[test]
    fn refragmenting_a_fragment_keeps_its_offset_and_mf() {
        let (r, p) = datagram(96);
        let r = Ipv4Repr {
            frag_offset: 800,
            more_frags: true,
            ..r
        };
        let out = fragment(&r, &p, 68).unwrap();
        let shape: Vec<_> = out
            .iter()
            .map(|b| parse(b).0)
            .map(|h| (h.frag_offset, h.more_frags))
            .collect();
        assert_eq!(shape, vec![(800, true), (848, true)]);
    }

    #[test]
    fn dont_fragment_too_big_is_message_too_long() {
        let (r, p) = datagram(1481);
        let r = Ipv4Repr {
            dont_frag: true,
            ..r
        };
        assert_eq!(
            fragment(&r, &p, 1500),
            Err(FragmentError::MessageTooLong { mtu: 1500 })
        );
        assert_eq!(fragment(&r, &p[..1480], 1500).unwrap().len(), 1);
    }

    #[test]
    fn payload_past_65535_is_too_large() {
        let (r, p) = datagram(65515);
        assert_eq!(fragment(&r, &p, 1500).unwrap().len(), 45);
        let (r, p) = datagram(65516);
        assert_eq!(fragment(&r, &p, 1500), Err(FragmentError::TooLarge));
    }
}
