//! Flag value parsers shared by netstackd and the tools: each error says what is wrong and
//! gives an example of a right value; clap adds the flag and the value.

use std::net::Ipv4Addr;

use netstack_runtime::config::{Ipv4Cidr, MacAddr};

pub fn parse_ifname(s: &str) -> Result<String, String> {
    // IFNAMSIZ is 16 including the NUL; the kernel also refuses '/', whitespace, "." and "..".
    if s.is_empty() || s.len() > 15 {
        return Err("interface names are 1 to 15 bytes long, e.g. tap0".into());
    }
    if s == "." || s == ".." || s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err("interface names cannot contain '/', ':' or spaces, e.g. tap0".into());
    }
    Ok(s.to_string())
}

pub fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
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

pub fn parse_ip(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| "not an IPv4 address; write e.g. 192.0.2.1".to_string())
}

pub fn parse_mac(s: &str) -> Result<MacAddr, String> {
    let mac: MacAddr = s.parse().map_err(|_| {
        "not a MAC address; write six hex bytes, e.g. 02:00:00:00:00:02".to_string()
    })?;
    if !mac.is_unicast() {
        return Err("a multicast or broadcast MAC cannot be a host's; use a unicast one such as 02:00:00:00:00:02".into());
    }
    Ok(mac)
}

/// `IP=MAC`, a static ARP entry (`--arp`).
pub fn parse_arp_entry(s: &str) -> Result<(Ipv4Addr, MacAddr), String> {
    const EXAMPLE: &str = "e.g. 192.0.2.1=02:00:00:00:00:01";
    let (ip, mac) = s
        .split_once('=')
        .ok_or_else(|| format!("write the address and the MAC joined by '=', {EXAMPLE}"))?;
    let ip: Ipv4Addr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{ip} is not an IPv4 address; {EXAMPLE}"))?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(format!(
            "{ip} is not a host's address; give a unicast one, {EXAMPLE}"
        ));
    }
    let mac = parse_mac(mac.trim())?;
    Ok((ip, mac))
}

pub fn parse_mtu(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        // RFC 791: every IPv4 link carries 68 octets; an Ethernet frame's payload is at most 65521
        // on Linux TAP devices (65535 less the Ethernet header).
        Ok(n) if (68..=65521).contains(&n) => Ok(n),
        _ => Err("use a number from 68 to 65521, e.g. 1500".into()),
    }
}

pub fn parse_workers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=netstack_runtime::MAX_WORKERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "use a number from 1 to {}, e.g. the number of cores",
            netstack_runtime::MAX_WORKERS
        )),
    }
}

/// `on` or `off`.
pub fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err("use on or off".into()),
    }
}

/// A device queue count.
pub fn parse_queues(s: &str) -> Result<usize, String> {
    let max = netstack_runtime::config::device::tap::MAX_QUEUES;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "use a number from 1 to {max}, e.g. the number of cores"
        )),
    }
}

pub fn parse_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| "use one of error, warn, info, debug, trace, off".to_string())
}

pub fn parse_port(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err("use a port from 1 to 65535, e.g. 5353".into()),
    }
}

/// A network, e.g. `192.0.2.0/24` (any prefix from /0 to /32; host bits are ignored), as
/// `netstackd --dns-allow` takes it.
pub fn parse_network(s: &str) -> Result<Ipv4Cidr, String> {
    s.parse().map_err(|e| {
        format!("{e}; write a network and prefix length, e.g. 192.0.2.0/24 (0.0.0.0/0: everyone)")
    })
}
