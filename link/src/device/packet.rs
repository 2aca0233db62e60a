//! An AF_PACKET device: the stack attached to an existing Ethernet interface (one end of a veth
//! pair, say) through raw packet sockets, without creating or configuring anything on the kernel
//! side except joining the interface in promiscuous mode for as long as the sockets are open
//! (a `PACKET_MR_PROMISC` membership, which the kernel drops when they close).
//!
//! Receive goes through a `TPACKET_V3` ring per socket (`PACKET_RX_RING`, mapped into this
//! process): the kernel fills blocks of [`RING_BLOCK_SIZE`] bytes with frames and hands a block
//! over when it is full or [`RING_BLOCK_TIMEOUT_MS`] after its first frame; the reader walks the
//! block frame by frame, copies each frame into a buffer (from the [`super::FramePool`] when the
//! runtime gave one) and returns the block. The ring holds [`RING_BLOCKS`] blocks; when all are
//! full the kernel drops frames and counts them (`PACKET_STATISTICS`), which
//! [`PacketDevice::kernel_drops`] adds up and the log reports.
//!
//! Frames this host sends out on the interface also reach a packet socket (`PACKET_OUTGOING`):
//! the sockets ask the kernel not to deliver them (`PACKET_IGNORE_OUTGOING`) and the walker
//! skips any that come anyway, so the stack never hears itself.
//!
//! Send is one `send(2)` per frame on a socket bound to the interface.
//!
//! With [`PacketOptions::offload`] the sockets carry a virtio-net header (`PACKET_VNET_HDR`)
//! both ways, as a TAP opened with `IFF_VNET_HDR` does: frames read may be coalesced or
//! locally sent TCP segments of up to 64 KiB with a partial or verified checksum, and frames
//! written may be large TCP segments the kernel cuts up. In the ring the kernel writes the
//! header just in front of the Ethernet header; the reader copies both.
//!
//! Without offloads a kernel peer on the same host (over veth) still hands up its large
//! segments with a partial checksum: the reader completes such a checksum in software
//! (`TP_STATUS_CSUMNOTREADY`) so the stack can verify it like any other.
//!
//! With [`PacketOptions::queues`] above one, that many sockets join one `PACKET_FANOUT` group in
//! hash mode: the kernel keeps each flow on one socket, one receiving thread reads each ring,
//! and each sending thread keeps to one socket.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

use super::{host, max_frame_len, Device, FramePool, Medium, Offloads};
use crate::wire::vnet::VnetHeader;

/// Bytes per ring block. A power of two of pages, large enough for three coalesced 64 KiB
/// frames with their headers.
pub const RING_BLOCK_SIZE: usize = 256 * 1024;
/// Blocks per ring (per queue): 4 MiB of frames waiting at most; past that the kernel drops
/// and counts ([`PacketDevice::kernel_drops`]).
pub const RING_BLOCKS: usize = 16;
/// How long the kernel keeps a block that has frames before handing it over anyway: the
/// longest a lone frame waits in the ring.
pub const RING_BLOCK_TIMEOUT_MS: u32 = 1;
/// Most queues (sockets in the fanout group) a device is opened with.
pub const MAX_QUEUES: usize = 16;

/// Nominal frame slot the kernel's ring arithmetic asks for; TPACKET_V3 packs frames of any
/// size into a block, so this only has to divide the block size.
const RING_FRAME_SIZE: usize = 2048;
const TPACKET_V3: libc::c_int = 2;
/// Room for one 802.1Q tag on top of the largest untagged frame.
const READ_SLACK: usize = 4;

/// How a packet device is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOptions {
    /// Ask for the virtio-net header (`PACKET_VNET_HDR`) and with it checksum and TCP
    /// segmentation offload both ways; when the kernel refuses, the device is opened without
    /// (and says so in the log).
    pub offload: bool,
    /// Sockets in one `PACKET_FANOUT` group (hash mode), 1 to [`MAX_QUEUES`].
    pub queues: usize,
}

impl Default for PacketOptions {
    /// Offloads on, one queue.
    fn default() -> Self {
        PacketOptions {
            offload: true,
            queues: 1,
        }
    }
}

/// What the receive side counted since the device was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames handed to the stack.
    pub rx_frames: u64,
    /// Frames the kernel dropped because the ring was full (`PACKET_STATISTICS` tp_drops),
    /// as of the last time the device asked (see [`PacketDevice::kernel_drops`]).
    pub kernel_drops: u64,
    /// Frames this host sent on the interface that reached the ring anyway and were skipped.
    pub outgoing_skipped: u64,
    /// Frames cut short by the ring (larger than a block) and dropped.
    pub truncated: u64,
    /// Blocks or frame headers that did not add up, dropped from there to the block's end.
    pub bad_blocks: u64,
    /// Partial checksums completed in software (no virtio-net header to pass them on).
    pub checksums_completed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    rx_frames: AtomicU64,
    kernel_drops: AtomicU64,
    outgoing_skipped: AtomicU64,
    truncated: AtomicU64,
    bad_blocks: AtomicU64,
    checksums_completed: AtomicU64,
}

/// The ring layout the kernel writes (`linux/if_packet.h`): a block descriptor
/// (`tpacket_block_desc` with `tpacket_hdr_v1`), then frames, each a `tpacket3_hdr`, a
/// `sockaddr_ll` at the next 16-byte boundary and the frame at `tp_mac`.
mod field {
    pub const BLOCK_STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const OFFSET_TO_FIRST_PKT: usize = 16;
    pub const BLK_LEN: usize = 20;
    /// `sizeof(struct tpacket_block_desc)`.
    pub const BLOCK_HEADER_LEN: usize = 48;

    pub const TP_NEXT_OFFSET: usize = 0;
    pub const TP_SNAPLEN: usize = 12;
    pub const TP_LEN: usize = 16;
    pub const TP_STATUS: usize = 20;
    pub const TP_MAC: usize = 24;
    /// `TPACKET_ALIGN(sizeof(struct tpacket3_hdr))`: where `sockaddr_ll` starts.
    pub const SOCKADDR_LL: usize = 48;
    /// `sll_pkttype` inside `sockaddr_ll`.
    pub const SLL_PKTTYPE: usize = 10;
    /// `sizeof(struct sockaddr_ll)`.
    pub const SOCKADDR_LL_LEN: usize = 20;
    /// Headers in front of the earliest a frame can start.
    pub const FRAME_HEADERS: usize = SOCKADDR_LL + SOCKADDR_LL_LEN;
}

/// Why a ring block or a frame in it was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The block descriptor's lengths or first offset point outside the block.
    BadBlockHeader,
    /// A frame header, or the frame it describes, does not fit in the block.
    BadFrameHeader,
}

/// One frame of a ring block, as offsets into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingFrame {
    /// `tp_status`: `TP_STATUS_CSUMNOTREADY`, `TP_STATUS_CSUM_VALID`, …
    pub status: u32,
    /// `sll_pkttype`: `PACKET_HOST`, `PACKET_OUTGOING`, …
    pub pkttype: u8,
    /// Where the Ethernet header starts (the virtio-net header, if any, is just before it).
    pub mac: usize,
    /// Bytes of the frame in the block.
    pub snaplen: usize,
    /// Bytes of the frame on the wire (more than `snaplen` when the ring cut it short).
    pub len: usize,
}

/// Where a reader stands inside a block: the next frame's offset and how many remain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCursor {
    next: usize,
    remaining: u32,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}

/// A walk over the frames of one block the kernel has handed over. Every offset read from the
/// block is checked against it, so a bogus block ends the walk with an error, never a panic or
/// an endless loop (each step moves forward and the count is bounded by the block size).
#[derive(Debug)]
pub struct BlockWalk<'a> {
    block: &'a [u8],
    cursor: BlockCursor,
    /// The frame room needed in front of `tp_mac` (the virtio-net header, if any).
    reserve: usize,
}

impl<'a> BlockWalk<'a> {
    /// Starts at the block's first frame. `vnet` says whether frames carry a virtio-net
    /// header in front of the Ethernet header.
    pub fn new(block: &'a [u8], vnet: bool) -> Result<Self, RingError> {
        let num = u32_at(block, field::NUM_PKTS).ok_or(RingError::BadBlockHeader)?;
        let first = u32_at(block, field::OFFSET_TO_FIRST_PKT).ok_or(RingError::BadBlockHeader)?;
        let len = u32_at(block, field::BLK_LEN).ok_or(RingError::BadBlockHeader)?;
        let (first, len) = (first as usize, len as usize);
        if len > block.len() || (num > 0 && (first < field::BLOCK_HEADER_LEN || first >= len)) {
            return Err(RingError::BadBlockHeader);
        }
        Ok(Self::resume(
            &block[..len],
            BlockCursor {
                next: first,
                remaining: num,
            },
            vnet,
        ))
    }

    /// Continues a walk where `cursor` left it (the block is the same, still held).
    pub fn resume(block: &'a [u8], cursor: BlockCursor, vnet: bool) -> Self {
        let reserve = if vnet { VnetHeader::<&[u8]>::LEN } else { 0 };
        Self {
            block,
            cursor,
            reserve,
        }
    }

    /// Where the walk stands, to resume it later.
    pub fn cursor(&self) -> BlockCursor {
        self.cursor
    }

    fn frame_at(&self, at: usize) -> Option<(RingFrame, u32)> {
        let h = self.block.get(at..)?;
        let next = u32_at(h, field::TP_NEXT_OFFSET)?;
        let snaplen = u32_at(h, field::TP_SNAPLEN)? as usize;
        let len = u32_at(h, field::TP_LEN)? as usize;
        let status = u32_at(h, field::TP_STATUS)?;
        let mac = u16_at(h, field::TP_MAC)? as usize;
        let pkttype = *h.get(field::SOCKADDR_LL + field::SLL_PKTTYPE)?;
        if mac < field::FRAME_HEADERS + self.reserve || mac.checked_add(snaplen)? > h.len() {
            return None;
        }
        Some((
            RingFrame {
                status,
                pkttype,
                mac: at + mac,
                snaplen,
                len,
            },
            next,
        ))
    }
}

impl Iterator for BlockWalk<'_> {
    type Item = Result<RingFrame, RingError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.cursor.remaining == 0 {
            return None;
        }
        let at = self.cursor.next;
        let Some((frame, next)) = self.frame_at(at) else {
            self.cursor.remaining = 0;
            return Some(Err(RingError::BadFrameHeader));
        };
        self.cursor.remaining -= 1;
        if self.cursor.remaining > 0 {
            // The next frame must lie further on, past this one's headers.
            let next = next as usize;
            if next < field::FRAME_HEADERS || at + next >= self.block.len() {
                self.cursor.remaining = 0;
                return Some(Err(RingError::BadFrameHeader));
            }
            self.cursor.next = at + next;
        }
        Some(Ok(frame))
    }
}

/// Completes a partial TCP or UDP checksum over IPv4 in an Ethernet frame: the checksum field
/// holds the pseudo-header sum (RFC 1071 arithmetic), the sum over the transport header and
/// payload is folded in and the complement stored. Returns false (frame untouched) for
/// anything else or anything that does not add up.
pub fn complete_partial_checksum(frame: &mut [u8]) -> bool {
    const ETH: usize = 14;
    let mut l3 = ETH;
    let mut ethertype = u16_at_be(frame, 12);
    if ethertype == Some(0x8100) {
        ethertype = u16_at_be(frame, 16);
        l3 += 4;
    }
    if ethertype != Some(0x0800) {
        return false;
    }
    let Some(&vihl) = frame.get(l3) else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    let Some(total) = u16_at_be(frame, l3 + 2).map(usize::from) else {
        return false;
    };
    let Some(&proto) = frame.get(l3 + 9) else {
        return false;
    };
    if vihl >> 4 != 4 || ihl < 20 || total < ihl || l3 + total > frame.len() {
        return false;
    }
    let start = l3 + ihl;
    let field = match proto {
        6 => 16,
        17 => 6,
        _ => return false,
    };
    let end = l3 + total;
    if start + field + 2 > end {
        return false;
    }
    let mut sum: u64 = 0;
    for pair in frame[start..end].chunks(2) {
        let word = match pair {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u64::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut csum = !(sum as u16);
    if proto == 17 && csum == 0 {
        // RFC 768: a computed zero is sent as all ones.
        csum = 0xffff;
    }
    frame[start + field..start + field + 2].copy_from_slice(&csum.to_be_bytes());
    true
}

fn u16_at_be(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// One socket with its receive ring.
#[derive(Debug)]
struct Queue {
    fd: OwnedFd,
    ring: Ring,
    /// The block to read next, and where in it the last read stopped.
    reader: Mutex<(usize, Option<BlockCursor>)>,
}

/// The mapped ring of one socket.
#[derive(Debug)]
struct Ring {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; which side owns a block is decided by its status
// word (read and written atomically), and each queue's reader is behind a mutex.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    fn block_ptr(&self, i: usize) -> *mut u8 {
        // SAFETY: `i < RING_BLOCKS`, so the offset stays inside the mapping.
        unsafe { self.base.as_ptr().add(i * RING_BLOCK_SIZE) }
    }

    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: the status word is 4-aligned (blocks are page-aligned) inside the mapping,
        // and the kernel writes it only as a whole word.
        unsafe {
            &*self
                .block_ptr(i)
                .add(field::BLOCK_STATUS)
                .cast::<AtomicU32>()
        }
    }

    /// Whether the kernel has handed block `i` over.
    fn ready(&self, i: usize) -> bool {
        self.status(i).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Block `i`, while user space owns it.
    ///
    /// # Safety
    /// `ready(i)` must have been true and the block not yet released.
    unsafe fn block(&self, i: usize) -> &[u8] {
        fence(Ordering::Acquire);
        // SAFETY: the caller owns the block; the kernel does not write it until released.
        unsafe { std::slice::from_raw_parts(self.block_ptr(i), RING_BLOCK_SIZE) }
    }

    fn release(&self, i: usize) {
        self.status(i)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `mmap` mapped.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// An Ethernet interface reached through AF_PACKET sockets (see the module documentation).
#[derive(Debug)]
pub struct PacketDevice {
    queues: Vec<Queue>,
    name: String,
    mtu: usize,
    offloads: Offloads,
    pool: OnceLock<std::sync::Arc<FramePool>>,
    next_tx_queue: AtomicUsize,
    counters: Counters,
}

impl PacketDevice {
    /// Attaches to the existing, up interface `ifname` with `opts`. Needs root or
    /// CAP_NET_RAW; nothing on the interface is configured.
    pub fn open_with(ifname: &str, opts: &PacketOptions) -> io::Result<Self> {
        host::validate_name(ifname)?;
        if !(1..=MAX_QUEUES).contains(&opts.queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} queues for {ifname}: use 1 to {MAX_QUEUES}", opts.queues),
            ));
        }
        let ifindex = ifindex(ifname)?;
        check_up(ifname)?;
        let mtu = host::mtu(ifname)?;
        let mut vnet = opts.offload;
        let mut queues = Vec::with_capacity(opts.queues);
        // One group id per device in this process; the kernel scopes groups to the namespace.
        static NEXT_GROUP: AtomicU32 = AtomicU32::new(0);
        let group =
            (std::process::id() as u32 ^ NEXT_GROUP.fetch_add(1, Ordering::Relaxed)) & 0xffff;
        for i in 0..opts.queues {
            let q = match open_queue(ifname, ifindex, vnet) {
                Err(e) if vnet && i == 0 && e.kind() == io::ErrorKind::Unsupported => {
                    log::warn!("{e}; opening without offloads");
                    vnet = false;
                    open_queue(ifname, ifindex, false)?
                }
                r => r?,
            };
            if opts.queues > 1 {
                let arg: libc::c_int = (group | (libc::PACKET_FANOUT_HASH << 16)) as libc::c_int;
                setsockopt(&q.fd, libc::PACKET_FANOUT, &arg)
                    .map_err(|e| context(ifname, "join the PACKET_FANOUT group", e))?;
            }
            queues.push(q);
        }
        let offloads = if vnet {
            Offloads {
                vnet_header: true,
                tx_checksum: true,
                tso4: true,
                rx_coalesced: true,
            }
        } else {
            Offloads::default()
        };
        log::info!(
            "AF_PACKET {ifname}: attached, MTU {mtu}, {} queue{}, TPACKET_V3 ring of {} x {} KiB \
             per queue, offloads: {offloads}",
            queues.len(),
            if queues.len() == 1 { "" } else { "s" },
            RING_BLOCKS,
            RING_BLOCK_SIZE / 1024,
        );
        Ok(Self {
            queues,
            name: ifname.to_string(),
            mtu,
            offloads,
            pool: OnceLock::new(),
            next_tx_queue: AtomicUsize::new(0),
            counters: Counters::default(),
        })
    }

    /// Attaches with offloads on and one queue ([`PacketOptions::default`]).
    pub fn open(ifname: &str) -> io::Result<Self> {
        Self::open_with(ifname, &PacketOptions::default())
    }

    /// Frames the kernel dropped because a ring was full, since the device was opened. Asks
    /// the kernel (`PACKET_STATISTICS`, which resets its count on every read) and adds up.
    pub fn kernel_drops(&self) -> u64 {
        for q in &self.queues {
            self.collect_drops(q);
        }
        self.counters.kernel_drops.load(Ordering::Relaxed)
    }

    /// The receive counters.
    pub fn stats(&self) -> PacketStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PacketStats {
            rx_frames: l(&c.rx_frames),
            kernel_drops: self.kernel_drops(),
            outgoing_skipped: l(&c.outgoing_skipped),
            truncated: l(&c.truncated),
            bad_blocks: l(&c.bad_blocks),
            checksums_completed: l(&c.checksums_completed),
        }
    }

    fn collect_drops(&self, q: &Queue) -> u64 {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of_val(&st) as libc::socklen_t;
        // SAFETY: PACKET_STATISTICS writes at most `len` bytes into `st`.
        let rc = unsafe {
            libc::getsockopt(
                q.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 || st.tp_drops == 0 {
            return 0;
        }
        let d = u64::from(st.tp_drops);
        self.counters.kernel_drops.fetch_add(d, Ordering::Relaxed);
        d
    }

    /// Room for the largest frame the kernel may hand up.
    fn read_len(&self) -> usize {
        if self.offloads.rx_coalesced {
            VnetHeader::<&[u8]>::LEN
                + max_frame_len(Medium::Ethernet, super::tap::MAX_OFFLOAD_PACKET)
                + READ_SLACK
        } else {
            max_frame_len(Medium::Ethernet, self.mtu) + READ_SLACK
        }
    }

    /// Copies up to `max` frames out of queue `q`'s ring, returning blocks as it finishes
    /// them; stops at the first block the kernel still holds.
    fn drain(&self, q: &Queue, out: &mut Vec<Vec<u8>>, max: usize) -> usize {
        let vnet = self.offloads.vnet_header;
        let hdr = self.offloads.header_len();
        let mut reader = q.reader.lock();
        let (ref mut block_idx, ref mut cursor) = *reader;
        let mut appended = 0;
        while appended < max && q.ring.ready(*block_idx) {
            // SAFETY: the kernel handed the block over (`ready`); it is released below.
            let block = unsafe { q.ring.block(*block_idx) };
            if u32_at(block, field::BLOCK_STATUS).unwrap_or(0) & libc::TP_STATUS_LOSING != 0
                && cursor.is_none()
            {
                let d = self.collect_drops(q);
                if d > 0 {
                    log::warn!(
                        "{}: the kernel dropped {d} frames with the ring full ({} in all; ring \
                         of {RING_BLOCKS} x {} KiB per queue)",
                        self.name,
                        self.counters.kernel_drops.load(Ordering::Relaxed),
                        RING_BLOCK_SIZE / 1024
                    );
                }
            }
            let walk = match cursor.take() {
                Some(c) => Ok(BlockWalk::resume(block, c, vnet)),
                None => BlockWalk::new(block, vnet),
            };
            let mut finished = true;
            match walk {
                Err(_) => {
                    self.counters.bad_blocks.fetch_add(1, Ordering::Relaxed);
                }
                Ok(mut walk) => {
                    while appended < max {
                        match walk.next() {
                            None => break,
                            Some(Err(_)) => {
                                self.counters.bad_blocks.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            Some(Ok(f)) => {
                                if let Some(buf) = self.copy_frame(block, &f, hdr) {
                                    out.push(buf);
                                    appended += 1;
                                }
                            }
                        }
                    }
                    if walk.cursor().remaining > 0 {
                        *cursor = Some(walk.cursor());
                        finished = false;
                    }
                }
            }
            if finished {
                q.ring.release(*block_idx);
                *block_idx = (*block_idx + 1) % RING_BLOCKS;
            }
        }
        self.counters
            .rx_frames
            .fetch_add(appended as u64, Ordering::Relaxed);
        appended
    }

    /// The frame `f` of `block` (behind its virtio-net header when `hdr` is not 0) in a
    /// buffer of its own, or `None` when it is not for the stack.
    fn copy_frame(&self, block: &[u8], f: &RingFrame, hdr: usize) -> Option<Vec<u8>> {
        if f.pkttype == libc::PACKET_OUTGOING {
            self.counters
                .outgoing_skipped
                .fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if f.snaplen < f.len {
            self.counters.truncated.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let bytes = &block[f.mac - hdr..f.mac + f.snaplen];
        let mut buf = match self.pool.get() {
            Some(p) => p.take_empty(self.read_len().max(bytes.len())),
            None => Vec::with_capacity(bytes.len()),
        };
        buf.extend_from_slice(bytes);
        if hdr == 0
            && f.status & libc::TP_STATUS_CSUMNOTREADY != 0
            && complete_partial_checksum(&mut buf)
        {
            self.counters
                .checksums_completed
                .fetch_add(1, Ordering::Relaxed);
        }
        Some(buf)
    }

    /// Whether queue `q` has a block waiting (or one half read).
    fn has_ready(q: &Queue) -> bool {
        let reader = q.reader.lock();
        q.ring.ready(reader.0)
    }

    /// This thread's socket: each sending thread gets one, round robin, and keeps it.
    fn tx_fd(&self) -> RawFd {
        if self.queues.len() == 1 {
            return self.queues[0].fd.as_raw_fd();
        }
        thread_local!(static SLOT: Cell<Option<usize>> = const { Cell::new(None) });
        let slot = SLOT.with(|s| {
            *s.get().get_or_insert_with(|| {
                let v = self.next_tx_queue.fetch_add(1, Ordering::Relaxed);
                s.set(Some(v));
                v
            })
        });
        self.queues[slot % self.queues.len()].fd.as_raw_fd()
    }
}

impl Drop for PacketDevice {
    fn drop(&mut self) {
        let drops = self.kernel_drops();
        let s = &self.counters;
        log::info!(
            "AF_PACKET {}: closed after {} frames received, {drops} dropped by the kernel (ring \
             full), {} truncated, {} bad blocks",
            self.name,
            s.rx_frames.load(Ordering::Relaxed),
            s.truncated.load(Ordering::Relaxed),
            s.bad_blocks.load(Ordering::Relaxed),
        );
    }
}

fn context(ifname: &str, op: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{ifname}: {op}: {e}"))
}

fn ifindex(ifname: &str) -> io::Result<libc::c_int> {
    let c = std::ffi::CString::new(ifname)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no interface {ifname} in this network namespace: --packet attaches to an \
                 existing interface (create it first, e.g. one end of a veth pair)"
            ),
        ));
    }
    Ok(i as libc::c_int)
}

fn check_up(ifname: &str) -> io::Result<()> {
    let flags = std::fs::read_to_string(format!("/sys/class/net/{ifname}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok());
    match flags {
        Some(f) if f & libc::IFF_UP as u32 == 0 => Err(io::Error::new(
            io::ErrorKind::NotConnected,
            format!("{ifname} is down: bring it up first (ip link set {ifname} up)"),
        )),
        _ => Ok(()),
    }
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: passes a valid pointer to `val` with its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            opt,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One socket: TPACKET_V3, the virtio-net header when asked, the ring mapped, bound to the
/// interface for every protocol, promiscuous, not hearing this host's own output.
fn open_queue(ifname: &str, ifindex: libc::c_int, vnet: bool) -> io::Result<Queue> {
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the result is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            libc::c_int::from(proto),
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("opening an AF_PACKET socket on {ifname} needs root or CAP_NET_RAW: {e}"),
            ),
            _ => context(ifname, "open an AF_PACKET socket", e),
        });
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    setsockopt(&fd, libc::PACKET_VERSION, &TPACKET_V3)
        .map_err(|e| context(ifname, "select TPACKET_V3", e))?;
    // An offloading socket the kernel refuses (the option itself, or a TPACKET_V3 receive
    // ring with it, which kernels have refused) is `Unsupported`: the caller opens without.
    let refused = |what: &str, e: io::Error| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{ifname}: the kernel refused {what} ({e})"),
        )
    };
    if vnet {
        // Must come before the ring exists (the kernel refuses it after, EBUSY).
        setsockopt(&fd, libc::PACKET_VNET_HDR, &1 as &libc::c_int)
            .map_err(|e| refused("PACKET_VNET_HDR", e))?;
    }
    // Best effort: kernels before 4.20 lack it, and the walker skips outgoing frames anyway.
    let _ = setsockopt(&fd, libc::PACKET_IGNORE_OUTGOING, &1 as &libc::c_int);
    let req = libc::tpacket_req3 {
        tp_block_size: RING_BLOCK_SIZE as u32,
        tp_block_nr: RING_BLOCKS as u32,
        tp_frame_size: RING_FRAME_SIZE as u32,
        tp_frame_nr: (RING_BLOCK_SIZE / RING_FRAME_SIZE * RING_BLOCKS) as u32,
        tp_retire_blk_tov: RING_BLOCK_TIMEOUT_MS,
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    };
    setsockopt(&fd, libc::PACKET_RX_RING, &req).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) if vnet => refused("a TPACKET_V3 ring with PACKET_VNET_HDR", e),
        _ => context(ifname, "set up the TPACKET_V3 receive ring", e),
    })?;
    let len = RING_BLOCK_SIZE * RING_BLOCKS;
    // SAFETY: maps the ring the kernel just made for this socket; checked below.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            fd.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(context(
            ifname,
            "map the receive ring",
            io::Error::last_os_error(),
        ));
    }
    let ring = Ring {
        base: NonNull::new(base.cast()).expect("mmap succeeded"),
        len,
    };
    // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex;
    // SAFETY: a valid sockaddr_ll and its size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(context(ifname, "bind", io::Error::last_os_error()));
    }
    // Frames for the stack's own MAC address are not the interface's: a NIC filters them out
    // unless promiscuous. The membership ends when the socket closes.
    // SAFETY: an all-zero packet_mreq is valid.
    let mut mreq: libc::packet_mreq = unsafe { std::mem::zeroed() };
    mreq.mr_ifindex = ifindex;
    mreq.mr_type = libc::PACKET_MR_PROMISC as u16;
    setsockopt(&fd, libc::PACKET_ADD_MEMBERSHIP, &mreq)
        .map_err(|e| context(ifname, "join in promiscuous mode", e))?;
    Ok(Queue {
        fd,
        ring,
        reader: Mutex::new((0, None)),
    })
}

/// Waits until one of `fds` is ready for what it asks or `timeout` passes; false on timeout.
fn wait_for(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<bool> {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: a valid slice of pollfd, a valid timespec and no signal mask.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

impl Device for PacketDevice {
    fn medium(&self) -> Medium {
        Medium::Ethernet
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn queues(&self) -> usize {
        self.queues.len()
    }

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        if max == 0 {
            return Ok(0);
        }
        if !self.queues.iter().any(Self::has_ready) {
            let mut fds: Vec<libc::pollfd> = self
                .queues
                .iter()
                .map(|q| libc::pollfd {
                    fd: q.fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if !wait_for(&mut fds, timeout)? {
                return Ok(0);
            }
        }
        let mut appended = 0;
        for q in &self.queues {
            if appended >= max {
                break;
            }
            appended += self.drain(q, out, max - appended);
        }
        Ok(appended)
    }

    fn recv_batch_from(
        &self,
        queue: usize,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        let Some(q) = self.queues.get(queue) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: no queue {queue}", self.name),
            ));
        };
        if max == 0 {
            return Ok(0);
        }
        if !Self::has_ready(q) {
            let mut fds = [libc::pollfd {
                fd: q.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            if !wait_for(&mut fds, timeout)? {
                return Ok(0);
            }
        }
        Ok(self.drain(q, out, max))
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<FramePool>) {
        let _ = self.pool.set(pool);
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let fd = self.tx_fd();
        // A full socket send buffer is waited out for at most this many polls of 100 ms.
        let mut waits = 10;
        loop {
            // SAFETY: sends `frame.len()` bytes from a valid slice on a bound socket.
            let n = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), 0) };
            if n >= 0 {
                if n as usize != frame.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("{}: sent {n} of {} bytes", self.name, frame.len()),
                    ));
                }
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // The socket is non-blocking for the ring's sake; a full send buffer waits
                // for room rather than losing the frame.
                io::ErrorKind::WouldBlock if waits > 0 => {
                    waits -= 1;
                    let mut fds = [libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    wait_for(&mut fds, Duration::from_millis(100))?;
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame to put in a fake block: status, packet type and bytes.
    struct Fake<'a> {
        status: u32,
        pkttype: u8,
        bytes: &'a [u8],
    }

    fn put_u32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Lays a TPACKET_V3 block out the way the kernel does: descriptor, then each frame's
    /// header, `sockaddr_ll` and data at `tp_mac`, 16-byte aligned, with `reserve` bytes of
    /// room (a virtio-net header) in front of the data.
    fn fake_block(frames: &[Fake], reserve: usize) -> Vec<u8> {
        let mut b = vec![0u8; 8192];
        put_u32(&mut b, field::BLOCK_STATUS, libc::TP_STATUS_USER);
        put_u32(&mut b, field::NUM_PKTS, frames.len() as u32);
        put_u32(
            &mut b,
            field::OFFSET_TO_FIRST_PKT,
            field::BLOCK_HEADER_LEN as u32,
        );
        let mut at = field::BLOCK_HEADER_LEN;
        for (i, f) in frames.iter().enumerate() {
            let mac = (field::FRAME_HEADERS + reserve).next_multiple_of(16);
            let size = (mac + f.bytes.len()).next_multiple_of(16);
            let next = if i + 1 == frames.len() { 0 } else { size };
            put_u32(&mut b, at + field::TP_NEXT_OFFSET, next as u32);
            put_u32(&mut b, at + field::TP_SNAPLEN, f.bytes.len() as u32);
            put_u32(&mut b, at + field::TP_LEN, f.bytes.len() as u32);
            put_u32(&mut b, at + field::TP_STATUS, f.status);
            b[at + field::TP_MAC..at + field::TP_MAC + 2]
                .copy_from_slice(&(mac as u16).to_ne_bytes());
            b[at + field::SOCKADDR_LL + field::SLL_PKTTYPE] = f.pkttype;
            b[at + mac..at + mac + f.bytes.len()].copy_from_slice(f.bytes);
            if reserve > 0 {
                b[at + mac - reserve..at + mac].fill(0xee);
            }
            at += size;
        }
        put_u32(&mut b, field::BLK_LEN, at as u32);
        b
    }

    fn frames_of<'a>(block: &'a [u8], walk: BlockWalk<'_>) -> Vec<(u8, &'a [u8])> {
        walk.map(|f| {
            let f = f.unwrap();
            (f.pkttype, &block[f.mac..f.mac + f.snaplen])
        })
        .collect()
    }

    #[test]
    fn a_block_is_walked_frame_by_frame_in_order() {
        let block = fake_block(
            &[
                Fake {
                    status: 0,
                    pkttype: libc::PACKET_HOST,
                    bytes: &[1; 60],
                },
                Fake {
                    status: libc::TP_STATUS_CSUMNOTREADY,
                    pkttype: libc::PACKET_OUTGOING,
                    bytes: &[2; 1514],
                },
                Fake {
                    status: 0,
                    pkttype: libc::PACKET_BROADCAST,
                    bytes: &[3; 42],
                },
            ],
            0,
        );
        let walk = BlockWalk::new(&block, false).unwrap();
        let got = frames_of(&block, walk);
        assert_eq!(
            got,
            vec![
                (libc::PACKET_HOST, &[1u8; 60][..]),
                (libc::PACKET_OUTGOING, &[2u8; 1514][..]),
                (libc::PACKET_BROADCAST, &[3u8; 42][..]),
            ]
        );
    }

    #[test]
    fn a_walk_stopped_midway_resumes_at_the_next_frame() {
        let fakes: Vec<Fake> = (0..5u8)
            .map(|i| Fake {
                status: 0,
                pkttype: libc::PACKET_HOST,
                bytes: std::slice::from_ref(&[10u8, 11, 12, 13, 14][i as usize]),
            })
            .collect();
        let block = fake_block(&fakes, 0);
        let mut walk = BlockWalk::new(&block, false).unwrap();
        let first: Vec<u8> = walk
            .by_ref()
            .take(2)
            .map(|f| block[f.unwrap().mac])
            .collect();
        let cursor = walk.cursor();
        let rest: Vec<u8> = BlockWalk::resume(&block, cursor, false)
            .map(|f| block[f.unwrap().mac])
            .collect();
        assert_eq!((first, rest), (vec![10, 11], vec![12, 13, 14]));
    }

    #[test]
    fn with_a_vnet_header_the_frame_needs_room_for_it_in_front() {
        let block = fake_block(
            &[Fake {
                status: 0,
                pkttype: libc::PACKET_HOST,
                bytes: &[7; 100],
            }],
            VnetHeader::<&[u8]>::LEN,
        );
        let f = BlockWalk::new(&block, true)
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(&block[f.mac - 10..f.mac], &[0xee; 10]);
        // A frame starting right after the headers has no room for one: refused with a
        // header, taken without.
        let mut tight = block.clone();
        let at = field::BLOCK_HEADER_LEN + field::TP_MAC;
        tight[at..at + 2].copy_from_slice(&(field::FRAME_HEADERS as u16).to_ne_bytes());
        assert_eq!(
            BlockWalk::new(&tight, true).unwrap().next(),
            Some(Err(RingError::BadFrameHeader))
        );
        assert!(BlockWalk::new(&tight, false)
            .unwrap()
            .next()
            .unwrap()
            .is_ok());
    }

    #[test]
    fn an_empty_block_yields_nothing() {
        let block = fake_block(&[], 0);
        assert_eq!(BlockWalk::new(&block, false).unwrap().count(), 0);
    }

    #[test]
    fn a_truncated_or_bogus_block_header_is_an_error_not_a_panic() {
        // Shorter than the descriptor.
        assert_eq!(
            BlockWalk::new(&[0u8; 10], false).unwrap_err(),
            RingError::BadBlockHeader
        );
        let good = fake_block(
            &[Fake {
                status: 0,
                pkttype: 0,
                bytes: &[1; 60],
            }],
            0,
        );
        // Block length past the block.
        let mut b = good.clone();
        put_u32(&mut b, field::BLK_LEN, 1 << 30);
        assert_eq!(
            BlockWalk::new(&b, false).unwrap_err(),
            RingError::BadBlockHeader
        );
        // First frame inside the descriptor, or past the end.
        for first in [0u32, 8, 1 << 20] {
            let mut b = good.clone();
            put_u32(&mut b, field::OFFSET_TO_FIRST_PKT, first);
            assert_eq!(
                BlockWalk::new(&b, false).unwrap_err(),
                RingError::BadBlockHeader,
                "first at {first}"
            );
        }
    }

    #[test]
    fn bogus_frame_headers_end_the_walk_with_an_error() {
        let fakes = [
            Fake {
                status: 0,
                pkttype: 0,
                bytes: &[1; 60],
            },
            Fake {
                status: 0,
                pkttype: 0,
                bytes: &[2; 60],
            },
        ];
        let good = fake_block(&fakes, 0);
        let first = field::BLOCK_HEADER_LEN;
        type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "snaplen past the block",
                Box::new(move |b| put_u32(b, first + field::TP_SNAPLEN, u32::MAX)),
            ),
            (
                "mac inside the headers",
                Box::new(move |b| b[first + field::TP_MAC..first + field::TP_MAC + 2].fill(0)),
            ),
            (
                "next offset zero with frames left",
                Box::new(move |b| put_u32(b, first + field::TP_NEXT_OFFSET, 0)),
            ),
            (
                "next offset past the block",
                Box::new(move |b| put_u32(b, first + field::TP_NEXT_OFFSET, 1 << 28)),
            ),
            (
                "more frames counted than there are",
                Box::new(|b| put_u32(b, field::NUM_PKTS, u32::MAX)),
            ),
        ];
        for (what, spoil) in cases {
            let mut b = good.clone();
            spoil(&mut b);
            let results: Vec<_> = BlockWalk::new(&b, false).unwrap().take(100).collect();
            assert!(results.iter().any(|r| r.is_err()), "{what}: {results:?}");
            assert!(results.len() <= 3, "{what}: {results:?}");
            assert!(results.last().unwrap().is_err(), "{what}: {results:?}");
        }
    }

    #[test]
    fn a_walk_over_random_bytes_never_panics_and_ends() {
        // A simple LCG: deterministic, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut b = vec![0u8; 512];
            for byte in b.iter_mut() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *byte = (x >> 56) as u8;
            }
            // Small counts and offsets so the walk gets past the descriptor sometimes.
            b[field::NUM_PKTS] %= 8;
            b[field::NUM_PKTS + 1..field::NUM_PKTS + 4].fill(0);
            put_u32(&mut b, field::OFFSET_TO_FIRST_PKT, 48);
            put_u32(&mut b, field::BLK_LEN, 512);
            if let Ok(walk) = BlockWalk::new(&b, x & 1 == 0) {
                for f in walk.take(1000).flatten() {
                    assert!(f.mac + f.snaplen <= b.len());
                }
            }
        }
    }

    /// The RFC 1071 sum of `data`, complemented.
    fn checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// An Ethernet frame with an IPv4/TCP segment whose checksum field holds the
    /// pseudo-header sum, as a sender using checksum offload leaves it.
    fn partial_tcp_frame(payload: &[u8]) -> (Vec<u8>, u16) {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let tcp_len = 20 + payload.len();
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        ip.extend_from_slice(&[198, 51, 100, 1, 198, 51, 100, 2]);
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..4].copy_from_slice(&[0x30, 0x39, 0, 9]);
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        tcp.extend_from_slice(payload);
        // The full checksum, for comparison: pseudo-header then segment.
        let mut pseudo = vec![198, 51, 100, 1, 198, 51, 100, 2, 0, 6];
        pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        let full = checksum(&[pseudo.clone(), tcp.clone()].concat());
        // The partial one: the uncomplemented pseudo-header sum.
        let partial = !checksum(&pseudo);
        tcp[16..18].copy_from_slice(&partial.to_be_bytes());
        f.extend_from_slice(&tcp);
        (f, full)
    }

    #[test]
    fn a_partial_tcp_checksum_is_completed_to_the_full_one() {
        for payload in [&b""[..], b"hello", b"odd length!", &[0xff; 1460][..]] {
            let (mut f, full) = partial_tcp_frame(payload);
            assert!(complete_partial_checksum(&mut f));
            assert_eq!(
                u16::from_be_bytes([f[14 + 20 + 16], f[14 + 20 + 17]]),
                full,
                "{} bytes",
                payload.len()
            );
        }
    }

    #[test]
    fn checksum_completion_leaves_what_it_does_not_understand_alone() {
        let (f, _) = partial_tcp_frame(b"abc");
        // ARP, a total length past the frame, ICMP, and a frame cut short.
        let mut arp = f.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut long = f.clone();
        long[16..18].copy_from_slice(&9999u16.to_be_bytes());
        let mut icmp = f.clone();
        icmp[14 + 9] = 1;
        for (what, mut frame) in [
            ("arp", arp),
            ("long", long),
            ("icmp", icmp),
            ("short", f[..30].to_vec()),
            ("empty", Vec::new()),
        ] {
            let before = frame.clone();
            assert!(!complete_partial_checksum(&mut frame), "{what}");
            assert_eq!(frame, before, "{what}");
        }
    }

    #[test]
    fn options_out_of_range_and_missing_interfaces_are_named() {
        let e = PacketDevice::open_with(
            "lo",
            &PacketOptions {
                offload: false,
                queues: 0,
            },
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("use 1 to 16"), "{e}");
        let e = PacketDevice::open("nsnothere0").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("no interface nsnothere0"), "{e}");
        let e = PacketDevice::open("a/b").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
