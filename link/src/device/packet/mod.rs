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
//! Send batches: a thread's frames are copied into its socket's batch and written with one
//! `sendmmsg(2)` when [`TX_BATCH`] wait or when the runtime calls `Device::flush` after a burst.
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

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;

mod ring;
mod tx;

use tx::TxBatch;
pub use tx::TX_BATCH;

pub use ring::{complete_partial_checksum, BlockCursor, BlockWalk, RingError, RingFrame};
use ring::{field, u32_at};

use super::{host, Device, FramePool, Medium, Offloads};

/// Bytes per ring block. A power of two of pages, large enough for three coalesced 64 KiB
/// frames with their headers.
pub const RING_BLOCK_SIZE: usize = 256 * 1024;
/// Blocks per ring (per queue): 4 MiB of frames waiting at most; past that the kernel drops
/// and counts ([`PacketDevice::kernel_drops`]).
pub const RING_BLOCKS: usize = 16;
/// How long the kernel keeps a block that has frames before handing it over anyway: the
/// longest a lone frame waits in the ring.
pub const RING_BLOCK_TIMEOUT_MS: u32 = 1;
pub use super::MAX_QUEUES;

/// Nominal frame slot the kernel's ring arithmetic asks for; TPACKET_V3 packs frames of any
/// size into a block, so this only has to divide the block size.
const RING_FRAME_SIZE: usize = 2048;
const TPACKET_V3: libc::c_int = 2;

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

/// One socket with its receive ring.
#[derive(Debug)]
struct Queue {
    fd: OwnedFd,
    ring: Ring,
    /// The block to read next, and where in it the last read stopped.
    reader: Mutex<(usize, Option<BlockCursor>)>,
    /// Frames sent on this socket and not written yet (see `tx`).
    tx: Mutex<TxBatch>,
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
        super::check_queues(ifname, opts.queues)?;
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
            Some(p) => p.take_empty(bytes.len()),
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

    /// This thread's socket (see `thread_queue`).
    fn tx_queue(&self) -> usize {
        super::thread_queue(&self.next_tx_queue, self.queues.len())
    }
}

impl Drop for PacketDevice {
    fn drop(&mut self) {
        // Frames still batched go out before the sockets close.
        for q in &self.queues {
            let mut tx = q.tx.lock();
            if !tx.is_empty() {
                if let Err(e) = tx.send(q.fd.as_raw_fd(), &self.name) {
                    log::warn!("{e}");
                }
            }
        }
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
        tx: Mutex::new(TxBatch::default()),
    })
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
            let (mut set, n) = super::read_set(self.queues.iter().map(|q| q.fd.as_raw_fd()));
            let fds = &mut set[..n];
            if !super::poll_fds(fds, timeout)? {
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
            if !super::poll_fds(&mut fds, timeout)? {
                return Ok(0);
            }
        }
        Ok(self.drain(q, out, max))
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<FramePool>) {
        let _ = self.pool.set(pool);
    }

    /// Copies the frame into this thread's socket's batch, written with one `sendmmsg` when
    /// it is full or at the next `flush`.
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let q = &self.queues[self.tx_queue()];
        let mut tx = q.tx.lock();
        if tx.push(frame) {
            tx.send(q.fd.as_raw_fd(), &self.name)?;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        let q = &self.queues[self.tx_queue()];
        let mut tx = q.tx.lock();
        if tx.is_empty() {
            return Ok(());
        }
        tx.send(q.fd.as_raw_fd(), &self.name)
    }
}

#[cfg(test)]
mod tests;
