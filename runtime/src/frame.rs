//! Turning an outgoing IPv4 datagram into what the device takes: an Ethernet frame (TAP) or the
//! bare packet (TUN), behind a virtio-net header when the device negotiated offloads. The
//! header says whether the TCP checksum is partial (checksum offload) and whether the packet is
//! a large segment the device cuts up (TSO). Both link TX and the actors that write directly
//! (`direct`) frame through here.

use std::io;

use netstack_link::device::{Device, Medium};
use netstack_link::wire::ethernet::{EtherType, EthernetFrame, EthernetRepr, MacAddr};
use netstack_link::wire::vnet::{VnetChecksum, VnetGso, VnetHeader, VnetRepr};

use crate::msg::{TxOffload, TxPacket};

/// Where the checksum sits in a TCP header.
const TCP_CHECKSUM_OFFSET: u16 = 16;

/// How frames are built for one device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Framer {
    medium: Medium,
    vnet: bool,
    mac: MacAddr,
}

impl Framer {
    pub fn new(device: &dyn Device, mac: MacAddr) -> Self {
        Framer {
            medium: device.medium(),
            vnet: device.offloads().vnet_header,
            mac,
        }
    }

    fn vnet_len(&self) -> usize {
        if self.vnet {
            VnetHeader::<&[u8]>::LEN
        } else {
            0
        }
    }

    fn l2_len(&self) -> usize {
        match self.medium {
            Medium::Ethernet => EthernetRepr::HEADER_LEN,
            Medium::Ip => 0,
        }
    }

    /// Bytes the layers below IPv4 put in front of a datagram.
    pub fn headroom(&self) -> usize {
        self.vnet_len() + self.l2_len()
    }

    /// The virtio-net header for a datagram whose frame has `l2` bytes of link header.
    fn vnet_repr(&self, datagram: &[u8], offload: TxOffload) -> VnetRepr {
        let TxOffload::Tcp { segment_size } = offload else {
            return VnetRepr::default();
        };
        let l2 = self.l2_len();
        let ihl = datagram.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        let thl = datagram
            .get(ihl + 12)
            .map_or(20, |b| usize::from(b >> 4) * 4);
        let start = u16::try_from(l2 + ihl).unwrap_or(u16::MAX);
        VnetRepr {
            checksum: VnetChecksum::Partial {
                start,
                offset: TCP_CHECKSUM_OFFSET,
            },
            gso: segment_size.map_or(VnetGso::None, |segment_size| VnetGso::TcpV4 {
                segment_size,
                ecn: false,
            }),
            header_len: u16::try_from(l2 + ihl + thl).unwrap_or(u16::MAX),
        }
    }

    /// Writes `p` to `dst` (ignored for bare IP), in place when the packet has room for the
    /// headers in front, else copied into `scratch`. Returns the frame's length without the
    /// virtio-net header.
    pub fn send(
        &self,
        device: &dyn Device,
        p: &mut TxPacket,
        dst: MacAddr,
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let room = self.headroom();
        if p.offset < room {
            return self.send_copy(
                device,
                dst,
                EtherType::Ipv4,
                p.datagram(),
                p.offload,
                scratch,
            );
        }
        let vnet = self.vnet_repr(p.datagram(), p.offload);
        let start = p.offset - room;
        let frame = &mut p.packet[start..];
        self.write_headers(frame, dst, EtherType::Ipv4, &vnet);
        device.send(frame)?;
        Ok(frame.len() - self.vnet_len())
    }

    /// Frames `payload` (an IPv4 datagram with `offload`, or an ARP packet) in `scratch` and
    /// writes it. Returns the frame's length without the virtio-net header.
    pub fn send_copy(
        &self,
        device: &dyn Device,
        dst: MacAddr,
        ethertype: EtherType,
        payload: &[u8],
        offload: TxOffload,
        scratch: &mut Vec<u8>,
    ) -> io::Result<usize> {
        let vnet = self.vnet_repr(payload, offload);
        scratch.clear();
        scratch.resize(self.headroom(), 0);
        scratch.extend_from_slice(payload);
        self.write_headers(scratch, dst, ethertype, &vnet);
        device.send(scratch)?;
        Ok(scratch.len() - self.vnet_len())
    }

    /// Fills the virtio-net and Ethernet headers at the start of `frame`.
    fn write_headers(&self, frame: &mut [u8], dst: MacAddr, ethertype: EtherType, vnet: &VnetRepr) {
        if self.vnet {
            if let Ok(mut h) = VnetHeader::new_checked(&mut frame[..]) {
                vnet.emit(&mut h);
            }
        }
        if self.medium == Medium::Ethernet {
            let eth = EthernetRepr {
                src: self.mac,
                dst,
                ethertype,
            };
            if let Ok(mut f) = EthernetFrame::new_checked(&mut frame[self.vnet_len()..]) {
                eth.emit(&mut f);
            }
        }
    }
}
