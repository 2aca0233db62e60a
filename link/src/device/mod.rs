//! Devices: where frames come from and where they go. The runtime drives one device from two
//! threads (one receiving, one sending) through an `Arc<dyn Device>`.

pub mod host;
pub mod memory;
pub mod packet;
pub mod pool;
pub mod tap;

use std::io;
use std::time::Duration;

pub use memory::{Impairments, MemoryDevice, MemoryLink, MemoryLinkConfig, MemoryStats};
pub use packet::{PacketDevice, PacketOptions};
pub use pool::FramePool;
pub use tap::{TapDevice, TapOptions, TunDevice};

/// What a device carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Medium {
    /// Ethernet II frames (TAP, AF_PACKET).
    #[default]
    Ethernet,
    /// Bare IP packets (TUN).
    Ip,
}

/// What a device does for the stack, settled when it was opened. With `vnet_header` every
/// frame read or written starts with a virtio-net header ([`crate::wire::vnet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// Frames both ways start with a virtio-net header.
    pub vnet_header: bool,
    /// Send: a TCP or UDP checksum may be left partial (`NEEDS_CSUM`), the device completes it.
    pub tx_checksum: bool,
    /// Send: a TCP/IPv4 frame may be a large segment (`GSO_TCPV4`) of up to 64 KiB of IP
    /// packet, which the device cuts into segments of the MSS given in the header.
    pub tso4: bool,
    /// Receive: frames may be coalesced TCP segments of up to 64 KiB of IP packet, with a
    /// partial or verified checksum.
    pub rx_coalesced: bool,
}

impl Offloads {
    /// Bytes of virtio-net header in front of every frame.
    pub fn header_len(&self) -> usize {
        if self.vnet_header {
            crate::wire::vnet::VnetHeader::<&[u8]>::LEN
        } else {
            0
        }
    }
}

impl std::fmt::Display for Offloads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.vnet_header {
            return f.write_str("none");
        }
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "virtio-net header, tx checksum {}, TSO4 {}, rx checksum and coalescing {}",
            on(self.tx_checksum),
            on(self.tso4),
            on(self.rx_coalesced)
        )
    }
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

    /// Like `recv_batch`, from one queue of a multi-queue device (one receiving thread per
    /// queue). Devices with one queue read it whatever `queue` is.
    fn recv_batch_from(
        &self,
        _queue: usize,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        self.recv_batch(out, max, timeout)
    }

    /// Writes one frame (an Ethernet frame or, for `Medium::Ip`, an IP packet), behind a
    /// virtio-net header when `offloads().vnet_header`.
    fn send(&self, frame: &[u8]) -> io::Result<()>;

    /// Writes what `send` held back to batch it (devices that batch their writes, such as the
    /// packet device's `sendmmsg`); the runtime calls it after each burst of sends from a
    /// thread. A no-op for devices that write at once.
    fn flush(&self) -> io::Result<()> {
        Ok(())
    }

    /// The offloads negotiated when the device was opened (none by default).
    fn offloads(&self) -> Offloads {
        Offloads::default()
    }

    /// Receive queues, each read by its own thread through `recv_batch_from`.
    fn queues(&self) -> usize {
        1
    }

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

    fn recv_batch_from(
        &self,
        queue: usize,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        (**self).recv_batch_from(queue, out, max, timeout)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        (**self).send(frame)
    }

    fn flush(&self) -> io::Result<()> {
        (**self).flush()
    }

    fn offloads(&self) -> Offloads {
        (**self).offloads()
    }

    fn queues(&self) -> usize {
        (**self).queues()
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

/// Most queues (descriptors or sockets) a TAP, TUN or packet device is opened with.
pub const MAX_QUEUES: usize = 16;

/// `InvalidInput` naming `name` unless `queues` is 1 to [`MAX_QUEUES`].
pub(crate) fn check_queues(name: &str, queues: usize) -> io::Result<()> {
    if (1..=MAX_QUEUES).contains(&queues) {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{queues} queues for {name}: use 1 to {MAX_QUEUES}"),
    ))
}

/// A `pollfd` asking to read each of `fds` (at most [`MAX_QUEUES`]), on the stack, and how
/// many there are: a receive wait allocates nothing.
pub(crate) fn read_set(
    fds: impl Iterator<Item = std::os::fd::RawFd>,
) -> ([libc::pollfd; MAX_QUEUES], usize) {
    let mut set = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX_QUEUES];
    let mut n = 0;
    for (p, fd) in set.iter_mut().zip(fds) {
        *p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        n += 1;
    }
    (set, n)
}

/// Waits until one of `fds` is ready for what it asks or `timeout` passes; false on timeout or
/// when a signal ends the wait early (the caller loops).
pub(crate) fn poll_fds(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<bool> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid slice of pollfd, a valid timespec and no signal mask.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

/// The queue the calling thread sends on, of `queues`: each sending thread takes the next one
/// from `next` (round robin) on its first send and keeps it, so a flow, owned by one worker,
/// stays on one queue.
pub(crate) fn thread_queue(next: &std::sync::atomic::AtomicUsize, queues: usize) -> usize {
    use std::cell::Cell;
    if queues <= 1 {
        return 0;
    }
    thread_local!(static SLOT: Cell<Option<usize>> = const { Cell::new(None) });
    let slot = SLOT.with(|s| {
        *s.get().get_or_insert_with(|| {
            let v = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s.set(Some(v));
            v
        })
    });
    slot % queues
}
