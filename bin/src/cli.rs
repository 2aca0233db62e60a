//! The `netstackd` command line (../shared/DESIGN.md): flags, their checks and the errors that
//! name the flag, the value and the fix.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Parser;
use netstack_link::wire::ethernet::MacAddr;
use netstack_network::wire::ipv4::Ipv4Cidr;

/// A user-space TCP/IP stack on a TAP or TUN device.
///
/// With no flags, as root, netstackd creates tap0, gives the kernel side 192.0.2.1/24, brings it
/// up and answers as 192.0.2.2.
#[derive(Debug, Parser)]
#[command(name = "netstackd", version, about, long_about = None)]
pub struct Args {
    /// TAP device (Ethernet frames) to attach to; created when missing [default: tap0]
    #[arg(long, value_name = "NAME", value_parser = parse_ifname, conflicts_with = "tun")]
    pub tap: Option<String>,

    /// TUN device (bare IP packets, no ARP) to attach to instead of a TAP; created when missing
    #[arg(long, value_name = "NAME", value_parser = parse_ifname)]
    pub tun: Option<String>,

    /// The stack's address and prefix
    #[arg(long, value_name = "CIDR", default_value = "192.0.2.2/24", value_parser = parse_cidr)]
    pub addr: Ipv4Cidr,

    /// Address for the kernel side of the device, set and brought up by netstackd
    /// [default: 192.0.2.1/24 when netstackd created the device]
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr)]
    pub host_addr: Option<Ipv4Cidr>,

    /// Default gateway (must be inside --addr's subnet)
    #[arg(long, value_name = "IP", value_parser = parse_ip)]
    pub gateway: Option<Ipv4Addr>,

    /// The stack's MAC address [default: a locally administered one derived from --addr]
    #[arg(long, value_name = "MAC", value_parser = parse_mac)]
    pub mac: Option<MacAddr>,

    /// IP MTU; also set on the device [default: the device's]
    #[arg(long, value_name = "N", value_parser = parse_mtu)]
    pub mtu: Option<usize>,

    /// Worker threads per layer pool (network and transport)
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = parse_workers)]
    pub workers: usize,

    /// Capture every frame in and out to this pcap file (tshark/Wireshark read it)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// error, warn, info, debug or trace
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_level)]
    pub log_level: log::LevelFilter,
}

impl Args {
    /// The device flags resolved: (name, is_tun).
    pub fn device(&self) -> (&str, bool) {
        match (&self.tun, &self.tap) {
            (Some(tun), _) => (tun, true),
            (None, Some(tap)) => (tap, false),
            (None, None) => ("tap0", false),
        }
    }

    /// Checks that need more than one flag.
    pub fn check(&self) -> Result<(), String> {
        if let Some(gw) = self.gateway {
            if !self.addr.contains(gw) {
                return Err(format!(
                    "--gateway {gw}: not inside --addr {}; give a gateway on that subnet",
                    self.addr
                ));
            }
        }
        if let Some(host) = self.host_addr {
            if host.addr == self.addr.addr {
                return Err(format!(
                    "--host-addr {host}: the same address as --addr; give the kernel side another address, e.g. 192.0.2.1/24"
                ));
            }
            if !host.contains(self.addr.addr) {
                return Err(format!(
                    "--host-addr {host}: --addr {} is not on that subnet, so the kernel could not reach the stack; use the same subnet",
                    self.addr
                ));
            }
        }
        Ok(())
    }
}

fn parse_ifname(s: &str) -> Result<String, String> {
    // IFNAMSIZ is 16 including the NUL; the kernel also refuses '/', whitespace, "." and "..".
    if s.is_empty() || s.len() > 15 {
        return Err("interface names are 1 to 15 bytes long, e.g. tap0".into());
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("interface names cannot contain '/', ':' or spaces, e.g. tap0".into());
    }
    Ok(s.to_string())
}

fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    let c: Ipv4Cidr = s
        .parse()
        .map_err(|e| format!("{e}; write an IPv4 address and prefix length, e.g. 192.0.2.2/24"))?;
    if c.prefix_len > 30 {
        return Err("prefix longer than /30 leaves no room for a peer; use e.g. /24".into());
    }
    if c.addr == c.network() || Some(c.addr) == c.broadcast() {
        return Err(format!(
            "{} is the subnet's network or broadcast address; pick a host address inside it",
            c.addr
        ));
    }
    Ok(c)
}

fn parse_ip(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| "not an IPv4 address; write e.g. 192.0.2.1".to_string())
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = s.parse().map_err(|_| {
        "not a MAC address; write six hex bytes, e.g. 02:00:00:00:00:02".to_string()
    })?;
    if !mac.is_unicast() {
        return Err("a multicast or broadcast MAC cannot be a host's; use a unicast one such as 02:00:00:00:00:02".into());
    }
    Ok(mac)
}

fn parse_mtu(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        // RFC 791: every IPv4 link carries 68 octets; an Ethernet frame's payload is at most 65521
        // on Linux TAP devices (65535 less the Ethernet header).
        Ok(n) if (68..=65521).contains(&n) => Ok(n),
        _ => Err("use a number from 68 to 65521, e.g. 1500".into()),
    }
}

fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=netstack_runtime::MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "use a number from 1 to {}, e.g. the number of cores",
            netstack_runtime::MAX_WORKERS
        )),
    }
}

fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| "use one of error, warn, info, debug, trace, off".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("netstackd").chain(args.iter().copied()))
    }

    #[test]
    fn no_flags_means_tap0_and_the_documented_addresses() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.device(), ("tap0", false));
        assert_eq!(a.addr.to_string(), "192.0.2.2/24");
        assert!(a.host_addr.is_none());
        assert!(a.check().is_ok());
    }

    #[test]
    fn a_bad_value_names_the_flag_the_value_and_the_fix() {
        let e = parse(&["--addr", "192.0.2.300/24"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let msg = e.to_string();
        assert!(msg.contains("--addr"), "{msg}");
        assert!(msg.contains("192.0.2.300/24"), "{msg}");
        assert!(msg.contains("e.g. 192.0.2.2/24"), "{msg}");
    }

    #[test]
    fn rejections() {
        for (args, needle) in [
            (&["--mtu", "40"][..], "68 to 65521"),
            (&["--mtu", "x"][..], "68 to 65521"),
            (&["--workers", "0"][..], "from 1 to"),
            (&["--mac", "01:00:5e:00:00:01"][..], "unicast"),
            (&["--mac", "zz"][..], "six hex bytes"),
            (&["--tap", "a-name-longer-than-15"][..], "1 to 15 bytes"),
            (&["--addr", "192.0.2.0/24"][..], "network or broadcast"),
            (&["--addr", "192.0.2.2/31"][..], "/30"),
            (&["--log-level", "loud"][..], "debug"),
            (&["--tap", "a", "--tun", "b"][..], "cannot be used with"),
        ] {
            let msg = parse(args).unwrap_err().to_string();
            assert!(msg.contains(needle), "{args:?}: {msg}");
        }
    }

    #[test]
    fn cross_flag_checks() {
        let a = parse(&["--gateway", "198.51.100.1"]).unwrap();
        assert!(a.check().unwrap_err().contains("--gateway 198.51.100.1"));
        let a = parse(&["--host-addr", "192.0.2.2/24"]).unwrap();
        assert!(a.check().unwrap_err().contains("same address"));
        let a = parse(&["--host-addr", "198.51.100.1/24"]).unwrap();
        assert!(a.check().unwrap_err().contains("not on that subnet"));
        let a = parse(&["--tun", "tun0", "--host-addr", "192.0.2.1/24"]).unwrap();
        assert_eq!(a.device(), ("tun0", true));
        assert!(a.check().is_ok());
    }
}
