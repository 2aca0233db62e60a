//! TAP (Ethernet frames) and TUN (bare IP packets) devices over /dev/net/tun, without the packet
//! information header.
//!
//! Opening attaches to an existing device of that name or creates it. The descriptor is
//! non-blocking: `recv_batch` waits in `ppoll` for at most its timeout and then reads until the
//! kernel has nothing more (EAGAIN) or the batch is full, so one wake-up drains a burst.

use std::io;
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{host, max_frame_len, Device, Medium};

/// Marker for the kind of device a [`TunTapDevice`] is.
pub trait TunTapKind: Send + Sync + 'static {
    const MODE: tun_tap::Mode;
    const MEDIUM: Medium;
    const NAME: &'static str;
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
}

impl TunTapKind for Tun {
    const MODE: tun_tap::Mode = tun_tap::Mode::Tun;
    const MEDIUM: Medium = Medium::Ip;
    const NAME: &'static str = "TUN";
}

/// A TAP device: Ethernet frames, `Medium::Ethernet`.
pub type TapDevice = TunTapDevice<Tap>;
/// A TUN device: IP packets, `Medium::Ip`.
pub type TunDevice = TunTapDevice<Tun>;

/// Room for one 802.1Q tag on top of the largest untagged frame, should the kernel send one.
const READ_SLACK: usize = 4;

const TUN_PATH: &str = "/dev/net/tun";

#[derive(Debug)]
pub struct TunTapDevice<K: TunTapKind> {
    iface: tun_tap::Iface,
    name: String,
    mtu: AtomicUsize,
    created: bool,
    /// Where receive buffers come from, once the runtime gives a pool.
    pool: std::sync::OnceLock<std::sync::Arc<super::FramePool>>,
    kind: PhantomData<K>,
}

impl<K: TunTapKind> TunTapDevice<K> {
    /// Attaches to the device `name`, creating it when it does not exist. Needs root or
    /// CAP_NET_ADMIN.
    pub fn open(name: &str) -> io::Result<Self> {
        host::validate_name(name)?;
        let existed = host::exists(name);
        let missing_module = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{TUN_PATH} is missing: load the tun module (modprobe tun)"),
            )
        };
        if !Path::new(TUN_PATH).exists() {
            return Err(missing_module());
        }
        let iface = tun_tap::Iface::without_packet_info(name, K::MODE).map_err(|e| {
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
                    format!("{name} exists but is not a {} device: {e}", K::NAME),
                ),
                _ => io::Error::new(e.kind(), format!("opening {} {name}: {e}", K::NAME)),
            }
        })?;
        set_nonblocking(&iface)
            .map_err(|e| io::Error::new(e.kind(), format!("set {name} non-blocking: {e}")))?;
        let name = iface.name().to_string();
        let mtu = host::mtu(&name)?;
        log::info!(
            "{} {name}: {}, MTU {mtu}",
            K::NAME,
            if existed { "attached" } else { "created" }
        );
        Ok(Self {
            iface,
            name,
            mtu: AtomicUsize::new(mtu),
            created: !existed,
            pool: std::sync::OnceLock::new(),
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

    /// Waits until the descriptor is readable or `timeout` passes; false on timeout.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.iface.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: one valid pollfd, a valid timespec and no signal mask.
        let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            // A signal ends the wait early; the caller sees a timeout and loops.
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }
}

fn set_nonblocking(iface: &tun_tap::Iface) -> io::Result<()> {
    let fd = iface.as_raw_fd();
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

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        if max == 0 || !self.wait_readable(timeout)? {
            return Ok(0);
        }
        let len = max_frame_len(K::MEDIUM, self.mtu()) + READ_SLACK;
        let mut appended = 0;
        while appended < max {
            let mut buf = match self.pool.get() {
                Some(p) => p.take(len),
                None => vec![0u8; len],
            };
            match self.iface.recv(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    out.push(buf);
                    appended += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(p) = self.pool.get() {
                        p.give(buf);
                    }
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Hand up what we have; the error will show again on the next call.
                Err(e) if appended > 0 => {
                    log::debug!("{}: read error after {appended} frames: {e}", self.name);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(appended)
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<super::FramePool>) {
        let _ = self.pool.set(pool);
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let n = self.iface.send(frame)?;
        if n != frame.len() {
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
    fn bad_names_are_rejected_before_touching_the_kernel() {
        let e = TapDevice::open("").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = TunDevice::open("a-name-longer-than-15").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("at most 15"), "{e}");
    }
}
