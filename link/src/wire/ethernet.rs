//! Ethernet II (DIX) frames: destination, source, EtherType, payload. No 802.1Q tags, no FCS
//! (TAP devices and the in-memory link neither carry nor expect one).

use std::fmt;
use std::str::FromStr;

use super::{check_len, read_u16, write_u16, WireError};

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const PAYLOAD: usize = 14;
}

/// A 48-bit IEEE 802 MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00 (the "unknown" target hardware address of an ARP request).
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// The raw octets.
    pub const fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// Builds an address from a slice of exactly six bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<MacAddr> {
        <[u8; 6]>::try_from(bytes).ok().map(MacAddr)
    }

    /// IEEE 802: the I/G bit (least significant bit of the first octet) is clear.
    pub const fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0
    }

    /// IEEE 802: the I/G bit is set (broadcast is a multicast address too).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// All ones.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// IEEE 802: the U/L bit (second least significant bit of the first octet) is set, so the
    /// address was assigned locally, not by a manufacturer.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// A locally administered unicast address derived from `seed` (the same seed gives the same
    /// address), for stacks that need a MAC of their own: 02:xx:xx:xx:xx:xx.
    pub fn local_from_seed(seed: u64) -> MacAddr {
        let bits = crate::prng::SplitMix64::new(seed).next_u64().to_be_bytes();
        let mut octets = [0u8; 6];
        octets.copy_from_slice(&bits[..6]);
        // Set U/L, clear I/G.
        octets[0] = (octets[0] & !0x01) | 0x02;
        MacAddr(octets)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            o[0], o[1], o[2], o[3], o[4], o[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

/// Why a MAC address string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MacParseError {
    /// Not six groups separated by ':' or '-'.
    #[error(
        "expected six hex octets separated by ':' or '-' (like 02:00:00:00:00:01), got {0} groups"
    )]
    WrongGroupCount(usize),
    /// Both ':' and '-' appear.
    #[error("mixed ':' and '-' separators")]
    MixedSeparators,
    /// A group is not one or two hex digits.
    #[error("octet {index} ({text:?}) is not one or two hex digits")]
    BadOctet { index: usize, text: String },
}

impl FromStr for MacAddr {
    type Err = MacParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let sep = match (s.contains(':'), s.contains('-')) {
            (true, true) => return Err(MacParseError::MixedSeparators),
            (false, true) => '-',
            _ => ':',
        };
        let groups: Vec<&str> = s.split(sep).collect();
        if groups.len() != 6 {
            return Err(MacParseError::WrongGroupCount(groups.len()));
        }
        let mut octets = [0u8; 6];
        for (index, (text, octet)) in groups.iter().zip(octets.iter_mut()).enumerate() {
            let valid =
                (1..=2).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit());
            *octet = u8::from_str_radix(text, 16)
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| MacParseError::BadOctet {
                    index,
                    text: text.to_string(),
                })?;
        }
        Ok(MacAddr(octets))
    }
}

/// The EtherType field (IEEE 802.3 values of 0x0600 and above).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Ipv6,
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(value: u16) -> Self {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> Self {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

/// A zero-copy view of an Ethernet II frame whose header length has been checked.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps `buf` after checking that it holds the 14-byte header.
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        check_len(buf.as_ref(), field::PAYLOAD)?;
        Ok(Self { buf })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buf
    }

    pub fn dst(&self) -> MacAddr {
        mac_at(self.buf.as_ref(), field::DST.start)
    }

    pub fn src(&self) -> MacAddr {
        mac_at(self.buf.as_ref(), field::SRC.start)
    }

    pub fn ethertype(&self) -> EtherType {
        read_u16(self.buf.as_ref(), field::ETHERTYPE).into()
    }

    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[field::PAYLOAD..]
    }
}

impl<'a> EthernetFrame<&'a [u8]> {
    /// The payload, borrowed for as long as the underlying buffer.
    pub fn into_payload(self) -> &'a [u8] {
        &self.buf[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    pub fn set_dst(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::DST].copy_from_slice(&mac.0);
    }

    pub fn set_src(&mut self, mac: MacAddr) {
        self.buf.as_mut()[field::SRC].copy_from_slice(&mac.0);
    }

    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        write_u16(self.buf.as_mut(), field::ETHERTYPE, ethertype.into());
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buf.as_mut()[field::PAYLOAD..]
    }
}

/// Reads six octets at `at`; the caller has checked the length.
pub(crate) fn mac_at(buf: &[u8], at: usize) -> MacAddr {
    let mut octets = [0u8; 6];
    octets.copy_from_slice(&buf[at..at + 6]);
    MacAddr(octets)
}

/// The meaning of an Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub src: MacAddr,
    pub dst: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Length of the header on the wire.
    pub const HEADER_LEN: usize = field::PAYLOAD;

    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self, WireError> {
        Ok(Self {
            src: frame.src(),
            dst: frame.dst(),
            ethertype: frame.ethertype(),
        })
    }

    /// Writes the header; the payload is left as it is.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst(self.dst);
        frame.set_src(self.src);
        frame.set_ethertype(self.ethertype);
    }

    /// Length of a frame carrying `payload_len` bytes.
    pub const fn buffer_len(payload_len: usize) -> usize {
        field::PAYLOAD + payload_len
    }

    /// Builds a whole frame: this header followed by `payload`.
    pub fn frame_with(&self, payload: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; Self::buffer_len(payload.len())];
        buf[field::PAYLOAD..].copy_from_slice(payload);
        // The buffer was sized for the header just above, so the check cannot fail.
        if let Ok(mut frame) = EthernetFrame::new_checked(&mut buf[..]) {
            self.emit(&mut frame);
        }
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: MacAddr = MacAddr([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);
    const B: MacAddr = MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

    #[test]
    fn mac_parses_colon_and_dash_forms() {
        assert_eq!("52:54:00:ab:cd:ef".parse::<MacAddr>(), Ok(B));
        assert_eq!("52-54-00-AB-CD-EF".parse::<MacAddr>(), Ok(B));
        assert_eq!("2:0:0:0:0:1".parse::<MacAddr>(), Ok(A));
    }

    #[test]
    fn mac_rejects_wrong_group_count() {
        assert_eq!(
            "52:54:00:ab:cd".parse::<MacAddr>(),
            Err(MacParseError::WrongGroupCount(5))
        );
        assert_eq!(
            "52:54:00:ab:cd:ef:01".parse::<MacAddr>(),
            Err(MacParseError::WrongGroupCount(7))
        );
        assert_eq!(
            "".parse::<MacAddr>(),
            Err(MacParseError::WrongGroupCount(1))
        );
    }

    #[test]
    fn mac_rejects_mixed_separators() {
        assert_eq!(
            "52:54-00:ab:cd:ef".parse::<MacAddr>(),
            Err(MacParseError::MixedSeparators)
        );
    }

    #[test]
    fn mac_rejects_bad_octets() {
        let bad = |index: usize, text: &str| MacParseError::BadOctet {
            index,
            text: text.into(),
        };
        assert_eq!("52:54:00:ab:cd:eg".parse::<MacAddr>(), Err(bad(5, "eg")));
        assert_eq!("52:54::ab:cd:ef".parse::<MacAddr>(), Err(bad(2, "")));
        assert_eq!("52:154:00:ab:cd:ef".parse::<MacAddr>(), Err(bad(1, "154")));
        assert_eq!("+5:54:00:ab:cd:ef".parse::<MacAddr>(), Err(bad(0, "+5")));
    }

    #[test]
    fn mac_displays_lowercase_colon_form_and_round_trips() {
        assert_eq!(B.to_string(), "52:54:00:ab:cd:ef");
        assert_eq!(B.to_string().parse::<MacAddr>(), Ok(B));
        assert_eq!(format!("{B:?}"), "MacAddr(52:54:00:ab:cd:ef)");
    }

    #[test]
    fn mac_classification_follows_ig_and_ul_bits() {
        let global = MacAddr([0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef]);
        assert!(global.is_unicast() && !global.is_multicast());
        assert!(!global.is_broadcast() && !global.is_local());
        // 52:54:00 (QEMU's prefix) has the U/L bit set.
        assert!(B.is_local());
        assert!(A.is_unicast() && A.is_local());
        let ipv6_mcast = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
        assert!(
            ipv6_mcast.is_multicast() && !ipv6_mcast.is_unicast() && !ipv6_mcast.is_broadcast()
        );
        assert!(MacAddr::BROADCAST.is_broadcast() && MacAddr::BROADCAST.is_multicast());
    }

    #[test]
    fn local_from_seed_is_local_unicast_and_reproducible() {
        for seed in 0..100u64 {
            let mac = MacAddr::local_from_seed(seed);
            assert!(mac.is_local() && mac.is_unicast(), "{mac}");
            assert_eq!(mac, MacAddr::local_from_seed(seed));
        }
        assert_ne!(MacAddr::local_from_seed(1), MacAddr::local_from_seed(2));
    }

    #[test]
    fn ethertype_maps_known_and_unknown_values() {
        for (raw, ty) in [
            (0x0800, EtherType::Ipv4),
            (0x0806, EtherType::Arp),
            (0x86dd, EtherType::Ipv6),
            (0x88cc, EtherType::Unknown(0x88cc)),
        ] {
            assert_eq!(EtherType::from(raw), ty);
            assert_eq!(u16::from(ty), raw);
        }
    }

    #[test]
    fn frame_shorter_than_header_is_truncated() {
        assert_eq!(
            EthernetFrame::new_checked(&[0u8; 13][..]).err(),
            Some(WireError::Truncated {
                needed: 14,
                got: 13
            })
        );
        assert!(EthernetFrame::new_checked(&[0u8; 14][..]).is_ok());
    }

    #[test]
    fn repr_round_trips_and_emits_exact_bytes() {
        let repr = EthernetRepr {
            src: A,
            dst: B,
            ethertype: EtherType::Arp,
        };
        let buf = repr.frame_with(&[0xde, 0xad]);
        assert_eq!(
            buf,
            [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, 0xde, 0xad]
        );
        let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(EthernetRepr::parse(&frame), Ok(repr));
        assert_eq!(frame.payload(), &[0xde, 0xad]);
        assert_eq!(EthernetRepr::HEADER_LEN, 14);
    }

    #[test]
    fn setters_write_in_place() {
        let mut buf = [0u8; 20];
        let mut frame = EthernetFrame::new_checked(&mut buf[..]).unwrap();
        frame.set_src(B);
        frame.set_dst(MacAddr::BROADCAST);
        frame.set_ethertype(EtherType::Unknown(0x1234));
        frame.payload_mut()[0] = 7;
        assert_eq!(frame.src(), B);
        assert_eq!(frame.dst(), MacAddr::BROADCAST);
        assert_eq!(frame.ethertype(), EtherType::Unknown(0x1234));
        assert_eq!(frame.payload().len(), 6);
        assert_eq!(buf[14], 7);
    }
}
