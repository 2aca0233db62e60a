//! TAP (Ethernet frames) and TUN (bare IP packets) devices over /dev/net/tun, without the packet
//! information header.
//!
//! Opening attaches to an existing device of that name or creates it. The descriptors are
//! non-blocking: `recv_batch` waits in `ppoll` for at most its timeout and then reads until the
//! kernel has nothing more (EAGAIN) or the batch is full, so one wake-up drains a burst.
//!
//! With [`TapOptions::offload`] the device is opened with `IFF_VNET_HDR` and asks the kernel for
//! checksum and TCP segmentation offload (`TUNSETOFFLOAD` with `TUN_F_CSUM | TUN_F_TSO4`, and
//! `TUN_F_TSO_ECN` when offered): every frame then starts with a virtio-net header
//! ([`crate::wire::vnet`]) both ways, frames read may be coalesced TCP segments of up to 64 KiB
//! with a partial or verified checksum, and frames written may be large TCP segments the kernel
//! cuts up. With [`TapOptions::queues`] above one the device is opened `IFF_MULTI_QUEUE` with one
//! descriptor per queue: the kernel spreads flows across the queues, one receiving thread reads
//! each, and each sending thread keeps to one queue.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::pool::SMALL_FRAME;
use super::{host, max_frame_len, Device, Medium, Offloads};
use crate::wire::vnet::VnetHeader;

/// Marker for the kind of device a [`TunTapDevice`] is.
pub trait TunTapKind: Send + Sync + 'static {
    const MODE: tun_tap::Mode;
    const MEDIUM: Medium;
    const NAME: &'static str;
    /// `IFF_TAP` or `IFF_TUN`.
    const IFF: libc::c_int;
}

/// Ethernet frames.
#[derive(Debug)]
pub enum Tap {}

/// IP packets.
#[derive(Debug)]
pub enum Tun {}

impl TunTapKind for Tap {
    const MODE: tun_tap::Mode = tun_tap::Mode::Tap;
    const MEDIUM: Medium = Medium::Ethernet;
    const NAME: &'static str = "TAP";
    const IFF: libc::c_int = libc::IFF_TAP;
}

impl TunTapKind for Tun {
    const MODE: tun_tap::Mode = tun_tap::Mode::Tun;
    const MEDIUM: Medium = Medium::Ip;
    const NAME: &'static str = "TUN";
    const IFF: libc::c_int = libc::IFF_TUN;
}

/// A TAP device: Ethernet frames, `Medium::Ethernet`.
pub type TapDevice = TunTapDevice<Tap>;
/// A TUN device: IP packets, `Medium::Ip`.
pub type TunDevice = TunTapDevice<Tun>;

/// Room for one 802.1Q tag on top of the largest untagged frame, should the kernel send one.
const READ_SLACK: usize = 4;

/// The largest IP packet a coalesced or segmentation-offloaded frame carries.
pub const MAX_OFFLOAD_PACKET: usize = 65535;

pub use super::MAX_QUEUES;

const TUN_PATH: &str = "/dev/net/tun";

/// How a TUN/TAP device is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapOptions {
    /// Ask for the virtio-net header and checksum/TSO offloads; when the kernel refuses them
    /// the device is opened without (and says so in the log).
    pub offload: bool,
    /// Descriptors (queues), 1 to [`MAX_QUEUES`]; above one the device is multi-queue.
    pub queues: usize,
}

impl Default for TapOptions {
    /// Offloads on, one queue: what `netstackd` opens unless told otherwise.
    fn default() -> Self {
        TapOptions {
            offload: true,
            queues: 1,
        }
    }
}

impl TapOptions {
    /// No offloads, one queue: plain frames, as [`TunTapDevice::open`] opens.
    pub fn plain() -> Self {
        TapOptions {
            offload: false,
            queues: 1,
        }
    }
}

/// One queue's descriptor.
#[derive(Debug)]
enum Queue {
    /// Opened by the tun-tap crate (no offloads, one queue).
    Iface(tun_tap::Iface),
    /// Opened here with flags the crate does not offer.
    Fd(OwnedFd),
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Queue::Iface(i) => i.as_raw_fd(),
            Queue::Fd(f) => f.as_raw_fd(),
        }
    }
}

#[derive(Debug)]
pub struct TunTapDevice<K: TunTapKind> {
    queues: Vec<Queue>,
    name: String,
    mtu: AtomicUsize,
    created: bool,
    offloads: Offloads,
    /// Where receive buffers come from, once the runtime gives a pool.
    pool: std::sync::OnceLock<std::sync::Arc<super::FramePool>>,
    /// Hands each sending thread its queue.
    next_tx_queue: AtomicUsize,
    kind: PhantomData<K>,
}

impl<K: TunTapKind> TunTapDevice<K> {
    /// Attaches to the device `name`, creating it when it does not exist: plain frames, one
    /// queue ([`TapOptions::plain`]). Needs root or CAP_NET_ADMIN.
    pub fn open(name: &str) -> io::Result<Self> {
        Self::open_with(name, &TapOptions::plain())
    }

    /// Attaches to the device `name` (creating it when it does not exist) with `opts`. Needs
    /// root or CAP_NET_ADMIN. A multi-queue open of a device that exists without
    /// `IFF_MULTI_QUEUE` (or the other way round) fails with `InvalidInput`.
    pub fn open_with(name: &str, opts: &TapOptions) -> io::Result<Self> {
        host::validate_name(name)?;
        super::check_queues(name, opts.queues)?;
        let existed = host::exists(name);
        if !Path::new(TUN_PATH).exists() {
            return Err(missing_module());
        }
        let (queues, offloads) = if opts.offload || opts.queues > 1 {
            open_raw::<K>(name, opts)?
        } else {
            let iface = tun_tap::Iface::without_packet_info(name, K::MODE)
                .map_err(|e| open_error::<K>(name, e))?;
            (vec![Queue::Iface(iface)], Offloads::default())
        };
        for q in &queues {
            set_nonblocking(q.as_raw_fd())
                .map_err(|e| io::Error::new(e.kind(), format!("set {name} non-blocking: {e}")))?;
        }
        let mtu = host::mtu(name)?;
        log::info!(
            "{} {name}: {}, MTU {mtu}, {} queue{}, offloads: {}",
            K::NAME,
            if existed { "attached" } else { "created" },
            queues.len(),
            if queues.len() == 1 { "" } else { "s" },
            offloads,
        );
        Ok(Self {
            queues,
            name: name.to_string(),
            mtu: AtomicUsize::new(mtu),
            created: !existed,
            offloads,
            pool: std::sync::OnceLock::new(),
            next_tx_queue: AtomicUsize::new(0),
            kind: PhantomData,
        })
    }

    /// True when `open` created the device (it did not exist before).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Re-reads the MTU from the kernel (after `host::set_mtu`, say) and returns it.
    pub fn refresh_mtu(&self) -> io::Result<usize> {
        let mtu = host::mtu(&self.name)?;
        self.mtu.store(mtu, Ordering::Relaxed);
        Ok(mtu)
    }

    /// Reads from `fd` until EAGAIN or `max` frames. With coalescing on, each read goes into a
    /// 64 KiB buffer; a frame that turns out small is copied into a small buffer and the large
    /// one is read into again, so small frames never hold 64 KiB each.
    fn drain(&self, fd: RawFd, out: &mut Vec<Vec<u8>>, max: usize) -> io::Result<usize> {
        let len = self.read_len();
        let take = |cap: usize| match self.pool.get() {
            Some(p) => p.take_empty(cap),
            None => Vec::with_capacity(cap),
        };
        let give = |buf: Vec<u8>| {
            if let Some(p) = self.pool.get() {
                p.give(buf);
            }
        };
        let mut large: Option<Vec<u8>> = None;
        let mut appended = 0;
        let mut result = Ok(());
        while appended < max {
            let mut buf = large.take().unwrap_or_else(|| take(len));
            // SAFETY: reads at most the buffer's spare capacity into it; `set_len` below covers
            // only what the kernel wrote.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.capacity()) };
            if n >= 0 {
                // SAFETY: the kernel initialized the first `n` bytes.
                unsafe { buf.set_len(n as usize) };
                if len > SMALL_FRAME && buf.len() <= SMALL_FRAME {
                    let mut small = take(buf.len());
                    small.extend_from_slice(&buf);
                    buf.clear();
                    large = Some(buf);
                    out.push(small);
                } else {
                    out.push(buf);
                }
                appended += 1;
                continue;
            }
            let e = io::Error::last_os_error();
            large = Some(buf);
            match e.kind() {
                io::ErrorKind::WouldBlock => break,
                io::ErrorKind::Interrupted => continue,
                // Hand up what we have; the error will show again on the next call.
                _ if appended > 0 => {
                    log::debug!("{}: read error after {appended} frames: {e}", self.name);
                    break;
                }
                _ => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Some(buf) = large {
            give(buf);
        }
        result.map(|()| appended)
    }

    /// Room for the largest frame the kernel may hand up.
    fn read_len(&self) -> usize {
        if self.offloads.rx_coalesced {
            VnetHeader::<&[u8]>::LEN + max_frame_len(K::MEDIUM, MAX_OFFLOAD_PACKET) + READ_SLACK
        } else {
            self.offloads.header_len() + max_frame_len(K::MEDIUM, self.mtu()) + READ_SLACK
        }
    }

    /// This thread's queue (see `thread_queue`).
    fn tx_fd(&self) -> RawFd {
        let q = super::thread_queue(&self.next_tx_queue, self.queues.len());
        self.queues[q].as_raw_fd()
    }
}

fn missing_module() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{TUN_PATH} is missing: load the tun module (modprobe tun)"),
    )
}

/// Names the cause of a failed open.
fn open_error<K: TunTapKind>(name: &str, e: io::Error) -> io::Error {
    match (e.kind(), e.raw_os_error()) {
        (io::ErrorKind::PermissionDenied, _) => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "opening {TUN_PATH} for {} {name} needs root or CAP_NET_ADMIN: {e}",
                K::NAME
            ),
        ),
        (io::ErrorKind::NotFound, _) | (_, Some(libc::ENODEV)) => missing_module(),
        (_, Some(libc::EBUSY)) => io::Error::new(
            e.kind(),
            format!("{name} is busy: another descriptor is attached to it: {e}"),
        ),
        (_, Some(libc::EINVAL)) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{name} exists but is not a {} device with these flags (single- or \
                 multi-queue as it was created): {e}",
                K::NAME
            ),
        ),
        _ => io::Error::new(e.kind(), format!("opening {} {name}: {e}", K::NAME)),
    }
}

/// Opens `opts.queues` descriptors on `name` with `IFF_VNET_HDR` when offloads are asked for
/// and `IFF_MULTI_QUEUE` for more than one queue, and negotiates the offloads on the first.
fn open_raw<K: TunTapKind>(name: &str, opts: &TapOptions) -> io::Result<(Vec<Queue>, Offloads)> {
    let mut flags = K::IFF | libc::IFF_NO_PI;
    if opts.queues > 1 {
        flags |= libc::IFF_MULTI_QUEUE;
    }
    let mut offloads = Offloads::default();
    if opts.offload {
        // SAFETY: TUNGETFEATURES writes one unsigned int.
        let features = tun_fd()
            .ok()
            .and_then(|fd| {
                let mut f: libc::c_uint = 0;
                let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNGETFEATURES, &mut f) };
                (rc == 0).then_some(f as libc::c_int)
            })
            .unwrap_or(0);
        if features & libc::IFF_VNET_HDR != 0 {
            flags |= libc::IFF_VNET_HDR;
        } else {
            log::warn!("{name}: the kernel offers no IFF_VNET_HDR; opening without offloads");
        }
    }
    let mut queues = Vec::with_capacity(opts.queues);
    for _ in 0..opts.queues {
        let fd = tun_fd().map_err(|e| open_error::<K>(name, e))?;
        set_iff(&fd, name, flags as libc::c_short).map_err(|e| open_error::<K>(name, e))?;
        if flags & libc::IFF_VNET_HDR != 0 && queues.is_empty() {
            offloads = negotiate(&fd, name);
        }
        queues.push(Queue::Fd(fd));
    }
    Ok((queues, offloads))
}

fn tun_fd() -> io::Result<OwnedFd> {
    let path = c"/dev/net/tun";
    // SAFETY: a valid C string; the descriptor returned is owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// TUNSETIFF: attaches `fd` to `name` with `flags`.
fn set_iff(fd: &OwnedFd, name: &str, flags: libc::c_short) -> io::Result<()> {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags;
    // SAFETY: TUNSETIFF reads (and writes back) one ifreq.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// TUNSETOFFLOAD: checksum and TSO4 (plus ECN when the kernel takes it). Without them the
/// header stays but the kernel hands up only plain, fully checksummed frames.
fn negotiate(fd: &OwnedFd, name: &str) -> Offloads {
    let set = |bits: libc::c_uint| {
        // SAFETY: TUNSETOFFLOAD takes the flags by value.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETOFFLOAD, bits as libc::c_ulong) == 0 }
    };
    let full = libc::TUN_F_CSUM | libc::TUN_F_TSO4;
    let rx = if set(full | libc::TUN_F_TSO_ECN) || set(full) {
        true
    } else {
        log::warn!(
            "{name}: the kernel refused checksum and TSO4 offload ({}); frames come up whole",
            io::Error::last_os_error()
        );
        false
    };
    Offloads {
        vnet_header: true,
        tx_checksum: true,
        tso4: true,
        rx_coalesced: rx,
    }
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl<K: TunTapKind> Device for TunTapDevice<K> {
    fn medium(&self) -> Medium {
        K::MEDIUM
    }

    fn mtu(&self) -> usize {
        self.mtu.load(Ordering::Relaxed)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn queues(&self) -> usize {
        self.queues.len()
    }

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        let (mut set, n) = super::read_set(self.queues.iter().map(|q| q.as_raw_fd()));
        let fds = &mut set[..n];
        if !super::poll_fds(fds, timeout)? {
            return Ok(0);
        }
        let mut appended = 0;
        for p in fds.iter().filter(|p| p.revents != 0) {
            appended += self.drain(p.fd, out, max - appended)?;
        }
        Ok(appended)
    }

    fn recv_batch_from(
        &self,
        queue: usize,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        let Some(q) = self.queues.get(queue) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: no queue {queue}", self.name),
            ));
        };
        let mut fds = [libc::pollfd {
            fd: q.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if max == 0 || !super::poll_fds(&mut fds, timeout)? {
            return Ok(0);
        }
        self.drain(fds[0].fd, out, max)
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<super::FramePool>) {
        let _ = self.pool.set(pool);
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: writes `frame.len()` bytes from a valid slice.
        let n = unsafe { libc::write(self.tx_fd(), frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("{}: wrote {n} of {} bytes", self.name, frame.len()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rx::{classify, Inbound, RxDrop};
    use crate::wire::arp::{ArpOperation, ArpRepr};
    use crate::wire::ethernet::MacAddr;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    /// Refuses to run outside a network namespace of its own: this test creates devices and
    /// sends traffic, which must never touch the root namespace.
    fn in_private_namespace() -> bool {
        let ns = |p: &str| std::fs::read_link(p).ok();
        std::env::var_os("NETSTACK_LINK_NETNS_TEST").is_some()
            && ns("/proc/self/ns/net").is_some()
            && ns("/proc/self/ns/net") != ns("/proc/1/ns/net")
    }

    /// Reads frames until `want` accepts one or `within` passes.
    fn wait_for<D: Device, T>(
        dev: &D,
        within: Duration,
        mut want: impl FnMut(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        let mut frames = Vec::new();
        while Instant::now() < deadline {
            frames.clear();
            dev.recv_batch(&mut frames, 64, Duration::from_millis(100))
                .unwrap();
            if let Some(found) = frames.iter().find_map(|f| want(f)) {
                return Some(found);
            }
        }
        None
    }

    /// By hand, as an unprivileged user: `setpriv --reuid=65534 --regid=65534 --clear-groups
    /// TEST_BINARY --ignored unprivileged`.
    #[test]
    #[ignore = "must run as an unprivileged user (see the doc comment)"]
    fn unprivileged_open_says_root_or_cap_net_admin_is_needed() {
        // SAFETY: geteuid has no preconditions.
        assert_ne!(
            unsafe { libc::geteuid() },
            0,
            "run this one without privileges"
        );
        let e = TapDevice::open("nstap9").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert!(e.to_string().contains("root or CAP_NET_ADMIN"), "{e}");
    }

    /// By hand, as root: `ip netns add h1test; NETSTACK_LINK_NETNS_TEST=1 ip netns exec h1test
    /// cargo test -p netstack-link -- --ignored --nocapture; ip netns del h1test`.
    #[test]
    #[ignore = "needs root inside a private network namespace (see the doc comment)"]
    fn tap_and_tun_carry_kernel_traffic_in_a_namespace() {
        assert!(
            in_private_namespace(),
            "run inside `ip netns exec`, with NETSTACK_LINK_NETNS_TEST=1"
        );
        let tap = TapDevice::open("nstap0").unwrap();
        assert!(tap.created());
        assert_eq!(
            (tap.name(), tap.medium(), tap.mtu()),
            ("nstap0", Medium::Ethernet, 1500)
        );
        host::set_ipv4("nstap0", Ipv4Addr::new(192, 0, 2, 1), 24).unwrap();
        host::set_up("nstap0").unwrap();
        let kernel_mac = host::mac("nstap0").unwrap();
        assert!(
            kernel_mac.is_unicast() && kernel_mac != MacAddr::ZERO,
            "{kernel_mac}"
        );

        // A second open of an attached, single-queue TAP is refused with a message.
        let busy = TapDevice::open("nstap0").unwrap_err();
        eprintln!("second open: {busy}");

        let us = MacAddr::local_from_seed(2);
        let mut ping = std::process::Command::new("ping")
            .args(["-c", "1", "-W", "3", "192.0.2.2"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut drops = Vec::new();
        let request = wait_for(&tap, Duration::from_secs(3), |f| match classify(us, f) {
            Ok(Inbound::Arp(arp)) if arp.target_ip == Ipv4Addr::new(192, 0, 2, 2) => Some(arp),
            Ok(_) => None,
            Err(drop) => {
                drops.push(drop);
                None
            }
        })
        .expect("the kernel's ARP request for 192.0.2.2");
        assert_eq!(request.operation, ArpOperation::Request);
        assert_eq!(request.sender_mac, kernel_mac);
        eprintln!("kernel asked {request:?}; dropped meanwhile: {drops:?}");

        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            sender_mac: us,
            sender_ip: Ipv4Addr::new(192, 0, 2, 2),
            target_mac: request.sender_mac,
            target_ip: request.sender_ip,
        };
        tap.send(&reply.to_frame()).unwrap();
        let echo = wait_for(&tap, Duration::from_secs(3), |f| match classify(us, f) {
            Ok(Inbound::Ipv4(ip)) => Some(ip.to_vec()),
            _ => None,
        })
        .expect("the ICMP echo request sent to our MAC after our ARP reply");
        assert_eq!(echo[0] >> 4, 4);
        assert_eq!(echo[9], 1, "ICMP");
        assert_eq!(&echo[16..20], &[192, 0, 2, 2]);
        let _ = ping.wait();
        let kernel_neigh = std::process::Command::new("ip")
            .args(["neigh", "show", "192.0.2.2"])
            .output()
            .unwrap();
        eprintln!(
            "kernel neighbour table: {}",
            String::from_utf8_lossy(&kernel_neigh.stdout)
        );
        assert!(
            drops
                .iter()
                .all(|d| matches!(d, RxDrop::Multicast | RxDrop::Ipv6)),
            "{drops:?}"
        );

        // With IPv6 on, the kernel's neighbour discovery and MLD go to 33:33:… multicast.
        let ipv6_on = std::fs::read_to_string("/proc/sys/net/ipv6/conf/nstap0/disable_ipv6")
            .is_ok_and(|v| v.trim() == "0");
        if ipv6_on {
            // Only frames from now on: those already read were dropped above.
            let _ = std::process::Command::new("ip")
                .args(["link", "set", "nstap0", "down"])
                .status();
            host::set_up("nstap0").unwrap();
            let mcast = wait_for(&tap, Duration::from_secs(5), |f| {
                (classify(us, f) == Err(RxDrop::Multicast)).then(|| f[..6].to_vec())
            });
            eprintln!("kernel IPv6 multicast dropped: {mcast:02x?}");
            assert_eq!(mcast.map(|dst| dst[..2].to_vec()), Some(vec![0x33, 0x33]));
        }

        // TUN: the kernel routes straight to it, no ARP.
        let tun = TunDevice::open("nstun0").unwrap();
        assert_eq!(tun.medium(), Medium::Ip);
        host::set_ipv4("nstun0", Ipv4Addr::new(192, 0, 2, 129), 25).unwrap();
        host::set_up("nstun0").unwrap();
        host::set_mtu("nstun0", 1400).unwrap();
        assert_eq!(tun.refresh_mtu().unwrap(), 1400);
        let mut ping = std::process::Command::new("ping")
            .args(["-c", "1", "-W", "2", "192.0.2.130"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let packet = wait_for(&tun, Duration::from_secs(3), |p| {
            (p.first().map(|b| b >> 4) == Some(4)).then(|| p.to_vec())
        })
        .expect("an IPv4 packet from the kernel on the TUN");
        assert_eq!(&packet[16..20], &[192, 0, 2, 130]);
        let _ = ping.wait();

        // A persistent device made beforehand is attached to, not created.
        let status = std::process::Command::new("ip")
            .args(["tuntap", "add", "dev", "nstap1", "mode", "tap"])
            .status()
            .unwrap();
        assert!(status.success());
        let attached = TapDevice::open("nstap1").unwrap();
        assert!(!attached.created());
        drop(attached);
        let _ = std::process::Command::new("ip")
            .args(["tuntap", "del", "dev", "nstap1", "mode", "tap"])
            .status();
    }

    #[test]
    fn a_refused_tunsetoffload_leaves_the_header_with_whole_frames_coming_up() {
        // Any descriptor that is not a TUN/TAP refuses TUNSETOFFLOAD, as a kernel without the
        // offloads would: the device keeps its virtio-net header (so it may still send large
        // segments) but says no coalesced frames come up.
        let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let o = negotiate(&fd, "test0");
        assert_eq!(
            o,
            Offloads {
                vnet_header: true,
                tx_checksum: true,
                tso4: true,
                rx_coalesced: false
            }
        );
        assert!(o.to_string().contains("coalescing off"), "{o}");
        assert_eq!(Offloads::default().to_string(), "none");
    }

    #[test]
    fn a_queue_count_out_of_range_is_rejected_before_touching_the_kernel() {
        for queues in [0, MAX_QUEUES + 1] {
            let opts = TapOptions {
                offload: true,
                queues,
            };
            let e = TapDevice::open_with("nstapq0", &opts).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains("use 1 to 16"), "{e}");
        }
    }

    #[test]
    fn bad_names_are_rejected_before_touching_the_kernel() {
        let e = TapDevice::open("").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = TunDevice::open("a-name-longer-than-15").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("at most 15"), "{e}");
    }
}
