//! The `netstackd` command line (../shared/DESIGN.md): flags, their checks and the errors that
//! name the flag, the value and the fix.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Parser;
use netstack_application::dns::policy::DEFAULT_DNS_RATE;
use netstack_bin::args::{
    parse_arp_entry, parse_cidr, parse_ifname, parse_ip, parse_level, parse_mac, parse_mtu,
    parse_network, parse_on_off, parse_port, parse_queues, parse_workers,
};
use netstack_runtime::config::{Ipv4Cidr, MacAddr};

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

    /// An existing Ethernet interface (e.g. one end of a veth pair) to attach to through
    /// AF_PACKET sockets instead of a TAP: it must be up; netstackd configures nothing on it
    /// (no address, no MTU) and takes it in promiscuous mode while running
    #[arg(long, value_name = "IFNAME", value_parser = parse_ifname, conflicts_with_all = ["tap", "tun"])]
    pub packet: Option<String>,

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

    /// A static ARP entry: packets to IP (inside --addr's subnet) go to MAC without asking;
    /// it never expires and received ARP never changes it; repeat for more
    #[arg(long = "arp", value_name = "IP=MAC", value_parser = parse_arp_entry)]
    pub arp: Vec<(Ipv4Addr, MacAddr)>,

    /// IP MTU; also set on the device [default: the device's]
    #[arg(long, value_name = "N", value_parser = parse_mtu)]
    pub mtu: Option<usize>,

    /// Checksum and TCP segmentation offload with the kernel (IFF_VNET_HDR and TUNSETOFFLOAD;
    /// PACKET_VNET_HDR with --packet): on where the kernel accepts it (the log says what was
    /// negotiated), or off
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub offload: bool,

    /// Device queues (IFF_MULTI_QUEUE; sockets in a PACKET_FANOUT group with --packet), each
    /// read by its own thread; the kernel spreads flows across them
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_queues)]
    pub queues: usize,

    /// Microseconds a busy worker spins for more work before it sleeps (0: sleep at once);
    /// trades CPU for latency, see docs/PERFORMANCE.md
    #[arg(long, value_name = "US", default_value_t = netstack_runtime::SERVER_SPIN.as_micros() as u64, value_parser = parse_spin)]
    pub spin_us: u64,

    /// Worker threads per layer pool (network and transport) [default: half the cores, at least 1]
    #[arg(long, value_name = "N", value_parser = parse_workers)]
    pub workers: Option<usize>,

    /// Capture every frame in and out to this pcap file (tshark/Wireshark read it)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// error, warn, info, debug or trace
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = parse_level)]
    pub log_level: log::LevelFilter,

    /// Echo service port, UDP and TCP (RFC 862)
    #[arg(long, value_name = "PORT", default_value_t = 7, value_parser = parse_port)]
    pub echo: u16,
    /// Turn the echo service off
    #[arg(long)]
    pub no_echo: bool,

    /// Discard service port, UDP and TCP (RFC 863)
    #[arg(long, value_name = "PORT", default_value_t = 9, value_parser = parse_port)]
    pub discard: u16,
    /// Turn the discard service off
    #[arg(long)]
    pub no_discard: bool,

    /// Character generator port, UDP and TCP (RFC 864)
    #[arg(long, value_name = "PORT", default_value_t = 19, value_parser = parse_port)]
    pub chargen: u16,
    /// Turn the chargen service off
    #[arg(long)]
    pub no_chargen: bool,

    /// DNS server port, UDP; answers for the built-in demo.test zone and every --zone
    #[arg(long, value_name = "PORT", default_value_t = 53, value_parser = parse_port)]
    pub dns: u16,
    /// Turn the DNS server off
    #[arg(long)]
    pub no_dns: bool,
    /// A zone master file (RFC 1035 §5) to serve; repeat for more zones
    #[arg(long, value_name = "FILE")]
    pub zone: Vec<PathBuf>,
    /// Forward queries for names outside the served zones to this DNS server
    #[arg(long, value_name = "IP", value_parser = parse_ip)]
    pub dns_upstream: Option<Ipv4Addr>,
    /// Offer recursion (forwarding to --dns-upstream) only to clients in this network; repeat
    /// for more, 0.0.0.0/0 for everyone. Other clients get REFUSED for names outside the zones
    /// (counted as dns.refused_recursion) [default: --addr's subnet]
    #[arg(long, value_name = "CIDR", value_parser = parse_network)]
    pub dns_allow: Vec<Ipv4Cidr>,
    /// DNS responses per second over UDP to each client /24 (response rate limiting); past it,
    /// every second response goes out truncated so real clients retry over TCP, the others are
    /// dropped (dns.rate_limited_slipped, dns.rate_limited_dropped); 0: no limit
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DNS_RATE, value_parser = parse_dns_rate)]
    pub dns_rate: u32,

    /// HTTP server port (TCP): the status page at /, the counters and connections as JSON at
    /// /stats, a WebSocket echo at /ws
    #[arg(long, value_name = "PORT", default_value_t = 80, value_parser = parse_port)]
    pub http: u16,
    /// Turn the HTTP server off
    #[arg(long)]
    pub no_http: bool,
    /// Serve the files under this directory at / instead of the status page (/stats and /ws
    /// stay)
    #[arg(long, value_name = "DIR", value_parser = parse_root)]
    pub root: Option<PathBuf>,
}

/// `--spin-us`: 0 to 1000.
fn parse_spin(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err("use a number of microseconds from 0 (no spinning) to 1000, e.g. 30".into()),
    }
}

/// The largest `--dns-rate`.
const MAX_DNS_RATE: u32 = 1_000_000;

/// `--dns-rate`: 0 (off) to a million responses per second per client /24.
fn parse_dns_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n <= MAX_DNS_RATE => Ok(n),
        _ => Err(format!(
            "use a number of responses per second per client /24 from 0 (no limit) to \
             {MAX_DNS_RATE}, e.g. {DEFAULT_DNS_RATE}"
        )),
    }
}

/// `--root`: an existing directory.
fn parse_root(s: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(format!(
            "{s} is not a directory; give the directory to serve"
        )),
        Err(e) => Err(format!("{s}: {e}; give an existing directory to serve")),
    }
}

/// What kind of device the flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Tap,
    Tun,
    /// An existing interface through AF_PACKET sockets.
    Packet,
}

impl Args {
    /// The device flags resolved: (name, kind).
    pub fn device(&self) -> (&str, DeviceKind) {
        match (&self.packet, &self.tun, &self.tap) {
            (Some(ifname), _, _) => (ifname, DeviceKind::Packet),
            (None, Some(tun), _) => (tun, DeviceKind::Tun),
            (None, None, Some(tap)) => (tap, DeviceKind::Tap),
            (None, None, None) => ("tap0", DeviceKind::Tap),
        }
    }

    /// Checks that need more than one flag.
    pub fn check(&self) -> Result<(), String> {
        let mut ports: Vec<(&str, u16)> = Vec::new();
        for (flag, port, off) in [
            ("--echo", self.echo, self.no_echo),
            ("--discard", self.discard, self.no_discard),
            ("--chargen", self.chargen, self.no_chargen),
            ("--dns", self.dns, self.no_dns),
            ("--http", self.http, self.no_http),
        ] {
            if off {
                continue;
            }
            if let Some((other, _)) = ports.iter().find(|(_, p)| *p == port) {
                return Err(format!(
                    "{flag} {port}: {other} already uses port {port}; give one of them another port"
                ));
            }
            ports.push((flag, port));
        }
        if self.no_dns && (!self.zone.is_empty() || self.dns_upstream.is_some()) {
            return Err(
                "--no-dns: --zone and --dns-upstream need the DNS server; drop one or the other"
                    .into(),
            );
        }
        if let Some(net) = self.dns_allow.first() {
            if self.no_dns {
                return Err(format!(
                    "--dns-allow {net}: --no-dns turns the DNS server off; drop one or the other"
                ));
            }
            if self.dns_upstream.is_none() {
                return Err(format!(
                    "--dns-allow {net}: recursion needs an upstream; add --dns-upstream IP or \
                     drop --dns-allow"
                ));
            }
        }
        if self.no_http && self.root.is_some() {
            return Err("--no-http: --root needs the HTTP server; drop one or the other".into());
        }
        if let Some(ifname) = &self.packet {
            if let Some(h) = self.host_addr {
                return Err(format!(
                    "--host-addr {h}: netstackd does not configure {ifname}, an interface it did \
                     not create (--packet); give it an address with `ip addr` if needed, or drop \
                     --host-addr"
                ));
            }
            if let Some(m) = self.mtu {
                return Err(format!(
                    "--mtu {m}: with --packet the stack uses {ifname}'s MTU and netstackd does not \
                     change it; set it with `ip link set {ifname} mtu {m}` first, or drop --mtu"
                ));
            }
        }
        netstack_bin::tool::check_addresses(self.addr, self.host_addr, self.gateway)?;
        for &(ip, mac) in &self.arp {
            if !self.addr.contains(ip) || ip == self.addr.addr || Some(ip) == self.addr.broadcast()
            {
                return Err(format!(
                    "--arp {ip}={mac}: {ip} is not another host on {}; give a neighbour's \
                     address inside --addr's subnet",
                    self.addr
                ));
            }
        }
        if let Some((ip, _)) = self
            .arp
            .iter()
            .enumerate()
            .find_map(|(i, (ip, _))| self.arp[..i].iter().find(|(o, _)| o == ip))
        {
            return Err(format!(
                "--arp {ip}=…: given twice; keep one entry per address"
            ));
        }
        Ok(())
    }
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
        assert_eq!(a.device(), ("tap0", DeviceKind::Tap));
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
            (&["--spin-us", "2000"][..], "0 (no spinning) to 1000"),
            (&["--offload", "maybe"][..], "use on or off"),
            (&["--queues", "0"][..], "from 1 to 16"),
            (&["--queues", "17"][..], "from 1 to 16"),
            (&["--mtu", "x"][..], "68 to 65521"),
            (&["--workers", "0"][..], "from 1 to"),
            (&["--mac", "01:00:5e:00:00:01"][..], "unicast"),
            (&["--mac", "zz"][..], "six hex bytes"),
            (&["--arp", "192.0.2.1"][..], "joined by '='"),
            (
                &["--arp", "192.0.2.x=02:00:00:00:00:01"][..],
                "not an IPv4 address",
            ),
            (
                &["--arp", "255.255.255.255=02:00:00:00:00:01"][..],
                "unicast",
            ),
            (&["--arp", "192.0.2.1=ff:ff:ff:ff:ff:ff"][..], "unicast"),
            (&["--arp", "192.0.2.1=zz"][..], "six hex bytes"),
            (&["--tap", "a-name-longer-than-15"][..], "1 to 15 bytes"),
            (&["--addr", "192.0.2.0/24"][..], "network or broadcast"),
            (&["--addr", "192.0.2.2/31"][..], "/30"),
            (&["--log-level", "loud"][..], "debug"),
            (&["--echo", "0"][..], "1 to 65535"),
            (&["--dns", "70000"][..], "1 to 65535"),
            (&["--tap", "a", "--tun", "b"][..], "cannot be used with"),
            (&["--packet", "a", "--tap", "b"][..], "cannot be used with"),
            (&["--packet", "a", "--tun", "b"][..], "cannot be used with"),
            (&["--packet", "a-name-longer-than-15"][..], "1 to 15 bytes"),
            (&["--http", "0"][..], "1 to 65535"),
            (&["--dns-allow", "192.0.2.0"][..], "e.g. 192.0.2.0/24"),
            (&["--dns-allow", "192.0.2.0/33"][..], "e.g. 192.0.2.0/24"),
            (&["--dns-rate", "1.5"][..], "0 (no limit) to 1000000"),
            (&["--dns-rate", "2000000"][..], "0 (no limit) to 1000000"),
            (
                &["--root", "/nonexistent-netstack-root"][..],
                "give an existing directory",
            ),
            (&["--root", "/etc/hostname"][..], "is not a directory"),
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
        let a = parse(&["--echo", "53"]).unwrap();
        assert!(a
            .check()
            .unwrap_err()
            .contains("--dns 53: --echo already uses port 53"));
        let a = parse(&["--echo", "53", "--no-dns"]).unwrap();
        assert!(a.check().is_ok());
        let a = parse(&["--http", "7"]).unwrap();
        assert!(a
            .check()
            .unwrap_err()
            .contains("--http 7: --echo already uses port 7"));
        let a = parse(&["--no-http", "--root", "/"]).unwrap();
        assert!(a.check().unwrap_err().contains("--no-http"));
        let a = parse(&["--no-dns", "--dns-upstream", "192.0.2.1"]).unwrap();
        assert!(a.check().unwrap_err().contains("--no-dns"));
        let a = parse(&["--tun", "tun0", "--host-addr", "192.0.2.1/24"]).unwrap();
        assert_eq!(a.device(), ("tun0", DeviceKind::Tun));
        assert!(a.check().is_ok());
    }

    #[test]
    fn dns_allow_and_rate_parse_and_need_the_forwarder() {
        let a = parse(&[]).unwrap();
        assert!(a.dns_allow.is_empty());
        assert_eq!(a.dns_rate, DEFAULT_DNS_RATE);
        let a = parse(&[
            "--dns-upstream",
            "192.0.2.1",
            "--dns-allow",
            "192.0.2.0/24",
            "--dns-allow",
            "198.51.100.0/24",
            "--dns-rate",
            "0",
        ])
        .unwrap();
        assert_eq!(a.dns_allow.len(), 2);
        assert_eq!(a.dns_rate, 0);
        assert!(a.check().is_ok());
        let e = parse(&["--dns-allow", "198.51.100.0/24"])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(
            e.contains("--dns-allow 198.51.100.0/24") && e.contains("add --dns-upstream"),
            "{e}"
        );
        let e = parse(&["--no-dns", "--dns-allow", "198.51.100.0/24"])
            .unwrap()
            .check()
            .unwrap_err();
        assert!(e.contains("--no-dns"), "{e}");
        let msg = parse(&["--dns-rate", "lots"]).unwrap_err().to_string();
        assert!(msg.contains("--dns-rate") && msg.contains("lots"), "{msg}");
    }

    #[test]
    fn arp_flag_repeats_and_its_addresses_must_be_neighbours() {
        let a = parse(&[
            "--arp",
            "192.0.2.1=02:00:00:00:00:01",
            "--arp",
            "192.0.2.9=02:00:00:00:00:09",
        ])
        .unwrap();
        assert_eq!(a.arp.len(), 2);
        assert_eq!(a.arp[1].0, Ipv4Addr::new(192, 0, 2, 9));
        assert!(a.check().is_ok());
        let e = parse(&["--arp", "192.0.2.1=01:00:5e:00:00:01"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--arp") && e.contains("192.0.2.1=01:00:5e:00:00:01"),
            "{e}"
        );
        for (value, needle) in [
            (
                "198.51.100.1=02:00:00:00:00:01",
                "not another host on 192.0.2.2/24",
            ),
            ("192.0.2.2=02:00:00:00:00:01", "not another host"),
            ("192.0.2.255=02:00:00:00:00:01", "not another host"),
        ] {
            let e = parse(&["--arp", value]).unwrap().check().unwrap_err();
            assert!(e.contains(needle) && e.contains("--arp"), "{value}: {e}");
        }
        let a = parse(&[
            "--arp",
            "192.0.2.1=02:00:00:00:00:01",
            "--arp",
            "192.0.2.1=02:00:00:00:00:02",
        ])
        .unwrap();
        assert!(a.check().unwrap_err().contains("given twice"));
    }

    #[test]
    fn packet_takes_offload_and_queues_and_configures_nothing_on_the_interface() {
        let a = parse(&["--packet", "veth0", "--offload", "off", "--queues", "2"]).unwrap();
        assert_eq!(a.device(), ("veth0", DeviceKind::Packet));
        assert_eq!((a.offload, a.queues), (false, 2));
        assert!(a.check().is_ok());
        let a = parse(&["--packet", "veth0", "--host-addr", "192.0.2.1/24"]).unwrap();
        let e = a.check().unwrap_err();
        assert!(
            e.contains("--host-addr 192.0.2.1/24") && e.contains("does not configure veth0"),
            "{e}"
        );
        let a = parse(&["--packet", "veth0", "--mtu", "1400"]).unwrap();
        let e = a.check().unwrap_err();
        assert!(e.contains("ip link set veth0 mtu 1400"), "{e}");
    }
}
