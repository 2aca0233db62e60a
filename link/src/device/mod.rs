//! Devices: where frames come from and where they go. The runtime drives one device from two
//! threads (one receiving, one sending) through an `Arc<dyn Device>`.

pub mod host;
pub mod memory;
pub mod pool;
pub mod tap;

use std::io;
use std::time::Duration;

pub use memory::{Impairments, MemoryDevice, MemoryLink, MemoryLinkConfig, MemoryStats};
pub use pool::FramePool;
pub use tap::{TapDevice, TunDevice};

/// What a device carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Medium {
    /// Ethernet II frames (TAP).
    #[default]
    Ethernet,
    /// Bare IP packets (TUN).
    Ip,
}

/// A network device. Implementations are safe to call from one receiving thread and any number
/// of sending threads at the same time.
pub trait Device: Send + Sync {
    fn medium(&self) -> Medium;

    /// The IP MTU: the largest IP packet the device carries (for Ethernet, the largest frame
    /// payload; the 14-byte header comes on top).
    fn mtu(&self) -> usize;

    fn name(&self) -> &str;

    /// Waits at most `timeout` for a frame, then appends every frame already waiting, up to `max`,
    /// to `out`. Returns how many were appended (0 on timeout). Never blocks past `timeout`.
    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize>;

    /// Writes one frame (an Ethernet frame or, for `Medium::Ip`, an IP packet).
    fn send(&self, frame: &[u8]) -> io::Result<()>;

    /// Gives the device a pool to take receive buffers from (see `pool`); devices that make
    /// their frames some other way ignore it.
    fn set_frame_pool(&self, _pool: std::sync::Arc<FramePool>) {}
}

impl<D: Device + ?Sized> Device for std::sync::Arc<D> {
    fn medium(&self) -> Medium {
        (**self).medium()
    }

    fn mtu(&self) -> usize {
        (**self).mtu()
    }

    fn name(&self) -> &str {
        (**self).name()
    }

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        (**self).recv_batch(out, max, timeout)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<FramePool>) {
        (**self).set_frame_pool(pool)
    }
}

/// Largest frame a device of `medium` with IP MTU `mtu` carries.
pub fn max_frame_len(medium: Medium, mtu: usize) -> usize {
    match medium {
        Medium::Ethernet => mtu + crate::wire::ethernet::EthernetRepr::HEADER_LEN,
        Medium::Ip => mtu,
    }
}
