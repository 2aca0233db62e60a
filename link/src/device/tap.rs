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
                    format!("{name} is busy: another process holds it: {e}"),
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
            let mut buf = vec![0u8; len];
            match self.iface.recv(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    out.push(buf);
                    appended += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
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

    #[test]
    fn bad_names_are_rejected_before_touching_the_kernel() {
        let e = TapDevice::open("").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = TunDevice::open("a-name-longer-than-15").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("at most 15"), "{e}");
    }
}
