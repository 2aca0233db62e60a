//! What the TAP examples share: parse the stack's address, open the TAP, and give a TAP the
//! example created a kernel side.

use std::io;
use std::net::Ipv4Addr;
use std::sync::Arc;

use netstack_runtime::config::device::{host, TapDevice};
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::Stack;

/// A stack on the TAP `tap` with the address `cidr`. A TAP this call creates gets the kernel
/// side the subnet's first host address (the second, if the first is the stack's) and is
/// brought up; an existing TAP is used as it is.
pub fn stack_on_tap(tap: &str, cidr: &str) -> io::Result<(Stack, Ipv4Cidr)> {
    let addr: Ipv4Cidr = cidr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{cidr}: {e}")))?;
    let device = TapDevice::open(tap)?;
    if device.created() {
        let (first, ours) = (u32::from(addr.network()) + 1, u32::from(addr.addr));
        let kernel = Ipv4Addr::from(if first == ours { first + 1 } else { first });
        host::set_ipv4(tap, kernel, addr.prefix_len)?;
        host::set_up(tap)?;
    }
    Ok((Stack::builder(Arc::new(device), addr).build()?, addr))
}
