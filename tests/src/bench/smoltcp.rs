//! smoltcp, the Rust stack most people pick, as the reference beside netstack: its usual
//! single-threaded poll loop serving discard and chargen over a TAP, and two of its sockets
//! talking over its in-process `Loopback` device the way its `loopback_benchmark` drives them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netstack_link::device::host;

use super::tcp::{chargen_pattern, Outcome, TapSetup, CHARGEN_PORT, DISCARD_PORT};

/// smoltcp's socket buffers, as its own `benchmark` and `loopback_benchmark` examples size them.
pub const SMOLTCP_BUFFER: usize = 65_535;
/// Listening smoltcp sockets per port: one can serve while the last one finishes closing.
pub const SMOLTCP_SOCKETS_PER_PORT: usize = 4;
/// The longest the smoltcp poll loop sleeps when nothing is due.
const SMOLTCP_IDLE_WAIT: Duration = Duration::from_millis(100);

/// smoltcp over a new TAP in its usual single-threaded poll loop (the shape of its `benchmark`
/// example): discard and chargen, [`SMOLTCP_SOCKETS_PER_PORT`] listening sockets each with
/// `buffer`-byte receive and send buffers ([`SMOLTCP_BUFFER`] in its examples), a closed socket
/// listening again. Prints `ready` when it serves; never returns unless the device fails.
pub fn serve_smoltcp(t: &TapSetup, buffer: usize, ready: &str) -> Result<(), String> {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{wait, Medium, TunTapInterface};
    use smoltcp::socket::tcp;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
    use std::os::fd::AsRawFd;

    let mut dev = TunTapInterface::new(&t.tap, Medium::Ethernet)
        .map_err(|e| format!("TAP {}: {e}", t.tap))?;
    host::set_ipv4(&t.tap, t.host_addr.addr, t.host_addr.prefix_len)
        .and_then(|()| host::set_up(&t.tap))
        .map_err(|e| format!("configuring {}: {e}", t.tap))?;
    let fd = dev.as_raw_fd();
    let mut config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x02]).into());
    config.random_seed = seed();
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    let a = t.addr.addr.octets();
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(
            IpAddress::v4(a[0], a[1], a[2], a[3]),
            t.addr.prefix_len,
        ));
    });
    let mut sockets = SocketSet::new(vec![]);
    let mut served = Vec::new();
    for port in [DISCARD_PORT, CHARGEN_PORT] {
        for _ in 0..SMOLTCP_SOCKETS_PER_PORT {
            let s = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; buffer]),
                tcp::SocketBuffer::new(vec![0; buffer]),
            );
            served.push((sockets.add(s), port));
        }
    }
    let pattern = chargen_pattern(buffer);
    println!("{ready} smoltcp on {} as {}", t.tap, t.addr.addr);
    loop {
        let now = smoltcp::time::Instant::now();
        iface.poll(now, &mut dev, &mut sockets);
        for &(h, port) in &served {
            let s = sockets.get_mut::<tcp::Socket>(h);
            if !s.is_open() {
                s.listen(port).map_err(|e| format!("listen {port}: {e}"))?;
                continue;
            }
            if port == DISCARD_PORT {
                while s.can_recv() {
                    let _ = s.recv(|b| (b.len(), ()));
                }
            } else {
                while s.can_send() {
                    let _ = s.send(|b| {
                        let n = b.len().min(pattern.len());
                        b[..n].copy_from_slice(&pattern[..n]);
                        (n, ())
                    });
                }
            }
            // The client's FIN: everything it sent has been read, so close our side.
            if s.state() == tcp::State::CloseWait && !s.can_recv() {
                s.close();
            }
        }
        let wait_for =
            iface
                .poll_delay(now, &sockets)
                .unwrap_or(smoltcp::time::Duration::from_millis(
                    SMOLTCP_IDLE_WAIT.as_millis() as u64,
                ));
        if wait_for > smoltcp::time::Duration::ZERO {
            wait(fd, Some(wait_for)).map_err(|e| format!("waiting on {}: {e}", t.tap))?;
        }
    }
}

fn seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// How smoltcp's in-process loopback is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackFraming {
    /// As its `loopback_benchmark` runs: the `Loopback` device's 65,535-byte MTU, checksums
    /// neither computed nor checked.
    Benchmark,
    /// Like the in-memory link netstack runs over: Ethernet frames of at most 1,514 bytes (IP
    /// MTU 1,500), checksums computed and checked.
    Ethernet,
}

/// A device that passes frames through and says other capabilities than the one it wraps.
struct Framed<D> {
    inner: D,
    caps: smoltcp::phy::DeviceCapabilities,
}

impl<D: smoltcp::phy::Device> smoltcp::phy::Device for Framed<D> {
    type RxToken<'a>
        = D::RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = D::TxToken<'a>
    where
        Self: 'a;

    fn receive(
        &mut self,
        now: smoltcp::time::Instant,
    ) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.inner.receive(now)
    }

    fn transmit(&mut self, now: smoltcp::time::Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(now)
    }

    fn capabilities(&self) -> smoltcp::phy::DeviceCapabilities {
        self.caps.clone()
    }
}

/// smoltcp to smoltcp in one thread over its `Loopback` device, framed as `framing` says, the
/// way its `loopback_benchmark` drives it: a client socket sends `bytes` to a server socket,
/// both with [`SMOLTCP_BUFFER`]-byte buffers, the data neither written nor read by an
/// application (only buffer space is claimed), so this is smoltcp's protocol cost alone.
pub fn smoltcp_loopback(bytes: u64, framing: LoopbackFraming) -> Result<Outcome, String> {
    use smoltcp::iface::{Config, Interface, SocketSet};
    use smoltcp::phy::{ChecksumCapabilities, Device, Loopback, Medium};
    use smoltcp::socket::tcp;
    use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};

    let inner = Loopback::new(Medium::Ethernet);
    let mut caps = inner.capabilities();
    if framing == LoopbackFraming::Ethernet {
        // For an Ethernet medium smoltcp counts the 14-byte header in the MTU.
        caps.max_transmission_unit = 1514;
        caps.checksum = ChecksumCapabilities::default();
    }
    let mut dev = Framed { inner, caps };
    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 0x02]).into());
    let mut iface = Interface::new(config, &mut dev, smoltcp::time::Instant::now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::v4(192, 0, 2, 2), 24));
    });
    let socket = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SMOLTCP_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SMOLTCP_BUFFER]),
        )
    };
    let mut sockets = SocketSet::new(vec![]);
    let server = sockets.add(socket());
    let client = sockets.add(socket());
    sockets
        .get_mut::<tcp::Socket>(server)
        .listen(DISCARD_PORT)
        .map_err(|e| format!("smoltcp listen: {e}"))?;
    sockets
        .get_mut::<tcp::Socket>(client)
        .connect(
            iface.context(),
            (IpAddress::v4(192, 0, 2, 2), DISCARD_PORT),
            49_152,
        )
        .map_err(|e| format!("smoltcp connect: {e}"))?;
    let (mut sent, mut received) = (0u64, 0u64);
    let start = Instant::now();
    let give_up = start + Duration::from_secs(60) + Duration::from_nanos(bytes);
    while received < bytes {
        if Instant::now() > give_up {
            return Err(format!("smoltcp loopback stalled after {received} bytes"));
        }
        iface.poll(smoltcp::time::Instant::now(), &mut dev, &mut sockets);
        let s = sockets.get_mut::<tcp::Socket>(server);
        while s.can_recv() {
            received += s.recv(|b| (b.len(), b.len())).unwrap_or(0) as u64;
        }
        let c = sockets.get_mut::<tcp::Socket>(client);
        while c.can_send() && sent < bytes {
            sent += c
                .send(|b| {
                    let n = b.len().min((bytes - sent) as usize);
                    (n, n)
                })
                .unwrap_or(0) as u64;
        }
    }
    Ok(Outcome {
        bytes: received,
        ops: 1,
        elapsed: start.elapsed(),
        ..Outcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoltcp_loopback_moves_every_byte_in_either_framing() {
        for framing in [LoopbackFraming::Ethernet, LoopbackFraming::Benchmark] {
            let o = smoltcp_loopback(4 << 20, framing).unwrap();
            assert!(o.bytes >= 4 << 20, "{framing:?}: {o:?}");
        }
    }
}
