//! Kernel-side configuration of a network interface through ioctls on an AF_INET datagram socket
//! (what `ip addr`/`ip link` do, without shelling out). Every error names the interface and the
//! operation, and keeps the OS error's kind.

use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::wire::ethernet::MacAddr;

/// Linux IFNAMSIZ minus the terminating NUL.
pub const MAX_NAME_LEN: usize = libc::IFNAMSIZ - 1;

/// Checks an interface name the way the kernel will: 1 to 15 bytes, no '/', NUL or whitespace.
pub fn validate_name(name: &str) -> io::Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    if name.is_empty() {
        return invalid("interface name is empty; Linux needs 1 to 15 bytes".into());
    }
    if name.len() > MAX_NAME_LEN {
        return invalid(format!(
            "interface name {name:?} is {} bytes; Linux allows at most {MAX_NAME_LEN} (IFNAMSIZ - 1)",
            name.len()
        ));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == 0 || b.is_ascii_whitespace())
        || name == "."
        || name == ".."
    {
        return invalid(format!(
            "interface name {name:?} contains '/', NUL or whitespace, or is '.'/'..'"
        ));
    }
    Ok(())
}

/// Whether an interface of this name exists in our network namespace.
pub fn exists(name: &str) -> bool {
    validate_name(name).is_ok() && Path::new("/sys/class/net").join(name).exists()
}

/// Sets the interface's IPv4 address and prefix (SIOCSIFADDR, then SIOCSIFNETMASK).
pub fn set_ipv4(name: &str, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("set IPv4 address on {name}: prefix length {prefix_len} is over 32"),
        ));
    }
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    let mut req = ifreq(name, "set IPv4 address")?;
    req.ifr_ifru.ifru_addr = sockaddr_in(addr);
    ioctl(name, "set IPv4 address", libc::SIOCSIFADDR, &mut req)?;
    let mut req = ifreq(name, "set IPv4 netmask")?;
    req.ifr_ifru.ifru_netmask = sockaddr_in(Ipv4Addr::from(mask));
    ioctl(name, "set IPv4 netmask", libc::SIOCSIFNETMASK, &mut req)
}

/// Brings the interface up (IFF_UP).
pub fn set_up(name: &str) -> io::Result<()> {
    let mut req = ifreq(name, "read flags")?;
    ioctl(name, "read flags", libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(name, "bring up", libc::SIOCSIFFLAGS, &mut req)
}

/// Sets the interface's MTU.
pub fn set_mtu(name: &str, mtu: usize) -> io::Result<()> {
    let mtu = libc::c_int::try_from(mtu).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("set MTU on {name}: {mtu} is too big"),
        )
    })?;
    let mut req = ifreq(name, "set MTU")?;
    req.ifr_ifru.ifru_mtu = mtu;
    ioctl(name, "set MTU", libc::SIOCSIFMTU, &mut req)
}

/// The interface's MTU.
pub fn mtu(name: &str) -> io::Result<usize> {
    let mut req = ifreq(name, "read MTU")?;
    ioctl(name, "read MTU", libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU filled the mtu member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    usize::try_from(mtu).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("read MTU of {name}: kernel said {mtu}"),
        )
    })
}

/// The interface's own hardware address (for a TAP: the kernel side's MAC, not ours).
pub fn mac(name: &str) -> io::Result<MacAddr> {
    let mut req = ifreq(name, "read hardware address")?;
    ioctl(name, "read hardware address", libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut octets = [0u8; 6];
    for (o, d) in octets.iter_mut().zip(data.iter()) {
        *o = *d as u8;
    }
    Ok(MacAddr(octets))
}

fn ifreq(name: &str, op: &str) -> io::Result<libc::ifreq> {
    validate_name(name).map_err(|e| io::Error::new(e.kind(), format!("{op}: {e}")))?;
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn sockaddr_in(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(addr.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size on Linux; the kernel reads it as
    // sockaddr_in because sa_family is AF_INET.
    unsafe { mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

fn ioctl(name: &str, op: &str, request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{op} on {name}: {e}"));
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(context(io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: req is a valid, initialised ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(context(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_name_is_invalid_input() {
        let e = validate_name("").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("1 to 15"), "{e}");
    }

    #[test]
    fn sixteen_byte_name_is_invalid_input_naming_the_limit() {
        assert!(validate_name("abcdefghijklmno").is_ok());
        let e = validate_name("abcdefghijklmnop").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("at most 15"), "{e}");
    }

    #[test]
    fn slash_or_space_in_name_is_invalid_input() {
        for bad in ["a/b", "a b", "..", "a\0"] {
            assert_eq!(
                validate_name(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn loopback_mtu_and_mac_are_readable() {
        // Every namespace has lo; reading needs no privilege.
        assert!(mtu("lo").unwrap() >= 1280);
        assert_eq!(mac("lo").unwrap(), MacAddr::ZERO);
        assert!(exists("lo"));
    }

    #[test]
    fn errors_name_the_interface_and_operation() {
        let e = mtu("nsnotthere0").unwrap_err();
        assert!(e.to_string().starts_with("read MTU on nsnotthere0:"), "{e}");
        assert!(!exists("nsnotthere0"));
        let e = set_ipv4("nsnotthere0", Ipv4Addr::new(192, 0, 2, 1), 33).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = set_mtu("", 1500).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(
            e.to_string()
                .starts_with("set MTU: interface name is empty"),
            "{e}"
        );
    }
}
