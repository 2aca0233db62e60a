//! Classic libpcap capture files (the format tcpdump -w writes): a 24-byte global header, then per
//! frame a 16-byte record header and the frame. Little-endian, microsecond timestamps, snaplen
//! 65535.
//!
//! [`CaptureDevice`] wraps any [`Device`] and records every frame it receives and sends. Capture is
//! best effort: a write error is logged once and counted, never returned to the data path.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use crate::device::{Device, Medium};

const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const VERSION_MAJOR: u16 = 2;
const VERSION_MINOR: u16 = 4;
/// Longest frame stored whole; longer ones are cut (the record keeps the original length).
pub const SNAPLEN: u32 = 65535;

/// The link type of a capture file (tcpdump.org link-layer header types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_RAW (101): bare IPv4/IPv6 packets.
    RawIpv4,
}

impl LinkType {
    pub fn code(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIpv4 => 101,
        }
    }

    /// The link type that records what a device of `medium` carries.
    pub fn for_medium(medium: Medium) -> Self {
        match medium {
            Medium::Ethernet => LinkType::Ethernet,
            Medium::Ip => LinkType::RawIpv4,
        }
    }
}

/// Writes a pcap stream. Buffered; flushed by `flush` and on drop.
#[derive(Debug)]
pub struct PcapWriter<W: Write = BufWriter<File>> {
    out: W,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the global header.
    pub fn create(path: impl AsRef<Path>, link_type: LinkType) -> io::Result<Self> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("create capture file {}: {e}", path.display()),
            )
        })?;
        Self::new(BufWriter::new(file), link_type)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header to `out`.
    pub fn new(mut out: W, link_type: LinkType) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        header[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        // thiszone (8..12) and sigfigs (12..16) stay 0: timestamps are UTC.
        header[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        header[20..24].copy_from_slice(&link_type.code().to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out })
    }

    /// Appends one record stamped `ts` (times before 1970 are written as 0).
    pub fn write_frame(&mut self, ts: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = ts.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
        let incl = frame.len().min(SNAPLEN as usize);
        let orig = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let mut header = [0u8; 16];
        header[0..4].copy_from_slice(&secs.to_le_bytes());
        header[4..8].copy_from_slice(&since.subsec_micros().to_le_bytes());
        header[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        header[12..16].copy_from_slice(&orig.to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&frame[..incl])
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    fn drop(&mut self) {
        if let Err(e) = self.out.flush() {
            log::warn!("flushing capture file: {e}");
        }
    }
}

/// A device that records every frame received and sent into a pcap writer.
#[derive(Debug)]
pub struct CaptureDevice<D: Device, W: Write + Send = BufWriter<File>> {
    inner: D,
    writer: Mutex<PcapWriter<W>>,
    write_errors: AtomicU64,
}

impl<D: Device, W: Write + Send> CaptureDevice<D, W> {
    pub fn new(inner: D, writer: PcapWriter<W>) -> Self {
        Self {
            inner,
            writer: Mutex::new(writer),
            write_errors: AtomicU64::new(0),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Records that could not be written.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.writer.lock().flush()
    }

    fn record<'a>(&self, frames: impl IntoIterator<Item = &'a [u8]>) {
        let now = SystemTime::now();
        let mut writer = self.writer.lock();
        for frame in frames {
            if let Err(e) = writer.write_frame(now, frame) {
                // Only the first error is logged: a full disk would otherwise flood the log.
                if self.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::error!(
                        "{}: capture write failed, frames go uncaptured: {e}",
                        self.name()
                    );
                }
            }
        }
    }
}

impl<D: Device, W: Write + Send> Device for CaptureDevice<D, W> {
    fn medium(&self) -> Medium {
        self.inner.medium()
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn recv_batch(
        &self,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        let start = out.len();
        let n = self.inner.recv_batch(out, max, timeout)?;
        self.record(out.iter().skip(start).map(Vec::as_slice));
        Ok(n)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.inner.send(frame)?;
        self.record([frame]);
        Ok(())
    }
}
