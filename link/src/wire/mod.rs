//! Wire formats of the link layer: zero-copy views with checked constructors plus owned `Repr`s.

pub mod arp;
pub mod ethernet;
pub mod vnet;

/// Why a link-layer wire format was rejected. One variant per cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the fixed header.
    #[error("truncated: need {needed} bytes, have {got}")]
    Truncated { needed: usize, got: usize },
    /// ARP hardware type is not Ethernet (1).
    #[error("ARP hardware type {0} is not Ethernet (1)")]
    ArpHardwareType(u16),
    /// ARP protocol type is not IPv4 (0x0800).
    #[error("ARP protocol type {0:#06x} is not IPv4 (0x0800)")]
    ArpProtocolType(u16),
    /// ARP hardware address length is not 6.
    #[error("ARP hardware address length {0} is not 6")]
    ArpHardwareLen(u8),
    /// ARP protocol address length is not 4.
    #[error("ARP protocol address length {0} is not 4")]
    ArpProtocolLen(u8),
    /// ARP operation is neither request (1) nor reply (2).
    #[error("ARP operation {0} is neither request (1) nor reply (2)")]
    ArpOperation(u16),
    /// A virtio-net header names a GSO type this stack does not know.
    #[error("virtio-net GSO type {0} is unknown")]
    VnetGsoType(u8),
    /// A virtio-net header asks for a segmentation this stack does not do (IPv6, UDP).
    #[error("virtio-net GSO for IPv6 or UDP is not supported")]
    VnetUnsupportedGso,
}

/// Reads a big-endian u16 at `at`. Callers have proven `at + 2 <= buf.len()` in `new_checked`.
pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Writes a big-endian u16 at `at`. Callers have proven the length in `new_checked`.
pub(crate) fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Checks that `buf` holds at least `needed` bytes.
pub(crate) fn check_len(buf: &[u8], needed: usize) -> Result<(), WireError> {
    if buf.len() < needed {
        Err(WireError::Truncated {
            needed,
            got: buf.len(),
        })
    } else {
        Ok(())
    }
}
