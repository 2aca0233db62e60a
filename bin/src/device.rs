//! Opening the TAP or TUN device, configuring its kernel side, and wrapping it in a pcap
//! capture: the steps netstackd and every tool share. An existing interface can be used through
//! AF_PACKET sockets instead ([`open_packet`]), with no kernel-side configuration at all.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;

use netstack_runtime::config::device::host;
use netstack_runtime::config::device::packet::{PacketDevice, PacketOptions};
use netstack_runtime::config::device::tap::{TapDevice, TapOptions, TunDevice};
use netstack_runtime::config::pcap::{CaptureDevice, LinkType, PcapWriter};
use netstack_runtime::config::{Device, Ipv4Cidr};

/// Which device to use and how to set it up.
#[derive(Debug, Clone)]
pub struct DeviceOptions {
    pub name: String,
    /// TUN (bare IP) instead of TAP (Ethernet).
    pub tun: bool,
    /// The stack's own address (to derive the kernel side's default).
    pub stack_addr: Ipv4Cidr,
    /// Kernel-side address; `None` takes the default when the device was created here.
    pub host_addr: Option<Ipv4Cidr>,
    pub mtu: Option<usize>,
    pub pcap: Option<PathBuf>,
    /// Offloads and queues.
    pub tap: TapOptions,
}

pub struct OpenedDevice {
    pub device: Arc<dyn Device>,
    /// Whether the device did not exist before.
    pub created: bool,
    /// The kernel-side address set, if any.
    pub host_addr: Option<Ipv4Cidr>,
}

/// Opens (creating when missing) and configures the device.
///
/// The kernel side is ours to configure only when we made the device or were given an
/// address for it; an existing device's addresses are left alone.
pub fn open(o: &DeviceOptions) -> io::Result<OpenedDevice> {
    let (device, created): (Arc<dyn Device>, bool) = if o.tun {
        let d = TunDevice::open_with(&o.name, &o.tap)?;
        let c = d.created();
        (Arc::new(d), c)
    } else {
        let d = TapDevice::open_with(&o.name, &o.tap)?;
        let c = d.created();
        (Arc::new(d), c)
    };
    if let Some(mtu) = o.mtu {
        host::set_mtu(&o.name, mtu)?;
    }
    let host_addr = o
        .host_addr
        .or_else(|| created.then(|| default_host_addr(o.stack_addr)));
    if let Some(h) = host_addr {
        host::set_ipv4(&o.name, h.addr, h.prefix_len)?;
        host::set_up(&o.name)?;
    }
    let link = if o.tun {
        LinkType::RawIpv4
    } else {
        LinkType::Ethernet
    };
    Ok(OpenedDevice {
        device: capture(device, o, link)?,
        created,
        host_addr,
    })
}

/// Attaches to the existing interface `o.name` through AF_PACKET sockets, with `o.tap`'s
/// offloads and queues. Nothing on the interface is configured: it must exist and be up, and
/// its MTU is the stack's. `o.tun`, `o.host_addr` and `o.mtu` ask for what this cannot do and
/// are refused with `InvalidInput`.
pub fn open_packet(o: &DeviceOptions) -> io::Result<OpenedDevice> {
    let refuse = |what: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: an AF_PACKET device {what}", o.name),
        ))
    };
    if o.tun {
        return refuse("carries Ethernet frames, not bare IP");
    }
    if o.host_addr.is_some() || o.mtu.is_some() {
        return refuse("leaves the interface's addresses and MTU as they are");
    }
    let d = PacketDevice::open_with(
        &o.name,
        &PacketOptions {
            offload: o.tap.offload,
            queues: o.tap.queues,
        },
    )?;
    Ok(OpenedDevice {
        device: capture(Arc::new(d), o, LinkType::Ethernet)?,
        created: false,
        host_addr: None,
    })
}

/// Wraps `device` in a pcap capture when `o.pcap` asks for one.
fn capture(
    device: Arc<dyn Device>,
    o: &DeviceOptions,
    link: LinkType,
) -> io::Result<Arc<dyn Device>> {
    Ok(match &o.pcap {
        Some(path) => {
            let writer = PcapWriter::create(path, link)
                .map_err(|e| io::Error::new(e.kind(), format!("--pcap {}: {e}", path.display())))?;
            Arc::new(CaptureDevice::new(device, writer))
        }
        None => device,
    })
}

/// The first host address of the stack's subnet, or the second when the stack has the first.
pub fn default_host_addr(stack: Ipv4Cidr) -> Ipv4Cidr {
    let net = u32::from(stack.network());
    let first = Ipv4Addr::from(net + 1);
    let addr = if first == stack.addr {
        Ipv4Addr::from(net + 2)
    } else {
        first
    };
    Ipv4Cidr {
        addr,
        prefix_len: stack.prefix_len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_host_address_is_the_first_free_host_of_the_subnet() {
        let c = |s: &str| s.parse::<Ipv4Cidr>().unwrap();
        assert_eq!(default_host_addr(c("192.0.2.2/24")), c("192.0.2.1/24"));
        assert_eq!(default_host_addr(c("192.0.2.1/24")), c("192.0.2.2/24"));
    }
}
