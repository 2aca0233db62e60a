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
    /// Records what `inner` reads and writes. With offloads (a virtio-net header) the frames
    /// are recorded as the stack and the kernel exchange them, without the header: a large TCP
    /// segment is one record of up to 64 KiB (the wire carries it cut into MSS-sized
    /// segments), and a TCP checksum the device completes shows as wrong.
    pub fn new(inner: D, writer: PcapWriter<W>) -> Self {
        if inner.offloads().vnet_header {
            log::warn!(
                "{}: offloads are on: the capture records large TCP segments whole (up to 64 KiB) \
                 with partial checksums, not the MSS-sized segments on the wire; run with \
                 offloads off for a capture of the wire",
                inner.name()
            );
        }
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
        let skip = self.inner.offloads().header_len();
        let mut writer = self.writer.lock();
        for frame in frames {
            let frame = frame.get(skip..).unwrap_or_default();
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

impl<D: Device, W: Write + Send> CaptureDevice<D, W> {
    /// Records frames just read; with none (idle), pushes buffered records out so a live
    /// reader of the file sees them.
    fn record_received(&self, frames: &[Vec<u8>]) {
        if !frames.is_empty() {
            self.record(frames.iter().map(Vec::as_slice));
        } else if let Err(e) = self.flush() {
            log::debug!("{}: flushing capture: {e}", self.name());
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
        self.record_received(&out[start..]);
        Ok(n)
    }

    fn recv_batch_from(
        &self,
        queue: usize,
        out: &mut Vec<Vec<u8>>,
        max: usize,
        timeout: Duration,
    ) -> io::Result<usize> {
        let start = out.len();
        let n = self.inner.recv_batch_from(queue, out, max, timeout)?;
        self.record_received(&out[start..]);
        Ok(n)
    }

    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.inner.send(frame)?;
        self.record([frame]);
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }

    fn offloads(&self) -> crate::device::Offloads {
        self.inner.offloads()
    }

    fn queues(&self) -> usize {
        self.inner.queues()
    }

    fn set_frame_pool(&self, pool: std::sync::Arc<crate::device::FramePool>) {
        self.inner.set_frame_pool(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::memory::{MemoryLink, MemoryLinkConfig};
    use std::sync::Arc;

    /// A writer whose bytes stay readable after the capture owning it is gone.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Fails every write.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const GLOBAL_ETHERNET: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, // magic, microsecond timestamps, little-endian
        2, 0, 4, 0, // version 2.4
        0, 0, 0, 0, // thiszone
        0, 0, 0, 0, // sigfigs
        0xff, 0xff, 0, 0, // snaplen 65535
        1, 0, 0, 0, // LINKTYPE_ETHERNET
    ];

    #[test]
    fn global_header_bytes_are_exact() {
        let mut buf = Vec::new();
        drop(PcapWriter::new(&mut buf, LinkType::Ethernet).unwrap());
        assert_eq!(buf, GLOBAL_ETHERNET);
        let mut raw = Vec::new();
        drop(PcapWriter::new(&mut raw, LinkType::RawIpv4).unwrap());
        assert_eq!(&raw[20..24], &[101, 0, 0, 0]);
    }

    #[test]
    fn record_bytes_are_exact() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, LinkType::Ethernet).unwrap();
        let ts = UNIX_EPOCH + Duration::new(0x0102_0304, 567_891_234);
        w.write_frame(ts, &[0xaa, 0xbb, 0xcc]).unwrap();
        drop(w);
        assert_eq!(
            &buf[24..],
            &[
                0x04, 0x03, 0x02, 0x01, // seconds
                0x53, 0xaa, 0x08, 0x00, // 567891 µs = 0x08aa53
                3, 0, 0, 0, // included length
                3, 0, 0, 0, // original length
                0xaa, 0xbb, 0xcc,
            ]
        );
    }

    #[test]
    fn frames_longer_than_snaplen_are_cut_keeping_original_length() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf, LinkType::RawIpv4).unwrap();
        w.write_frame(UNIX_EPOCH, &vec![7u8; 70_000]).unwrap();
        drop(w);
        assert_eq!(&buf[32..36], &65535u32.to_le_bytes());
        assert_eq!(&buf[36..40], &70_000u32.to_le_bytes());
        assert_eq!(buf.len(), 24 + 16 + 65535);
    }

    #[test]
    fn capture_device_records_frames_in_and_out() {
        let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        let bytes = Shared::default();
        let cap = CaptureDevice::new(
            a,
            PcapWriter::new(bytes.clone(), LinkType::Ethernet).unwrap(),
        );
        cap.send(&[1u8; 20]).unwrap();
        b.send(&[2u8; 30]).unwrap();
        let mut out = vec![vec![9u8]];
        assert_eq!(
            cap.recv_batch(&mut out, 8, Duration::from_secs(1)).unwrap(),
            1
        );
        drop(cap);
        let buf = bytes.0.lock().clone();
        assert_eq!(buf.len(), 24 + 16 + 20 + 16 + 30);
        assert_eq!(&buf[24 + 8..24 + 12], &20u32.to_le_bytes());
        assert_eq!(&buf[24 + 16..24 + 36], &[1u8; 20]);
        assert_eq!(&buf[60 + 8..60 + 12], &30u32.to_le_bytes());
        assert_eq!(&buf[76..], &[2u8; 30]);
    }

    #[test]
    fn capture_write_error_is_counted_and_never_fails_the_data_path() {
        let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
        // Built directly: no header (it would fail too); every record write fails.
        let writer = PcapWriter { out: Broken };
        let cap = CaptureDevice::new(a, writer);
        cap.send(&[1u8; 20]).unwrap();
        cap.send(&[1u8; 20]).unwrap();
        let mut out = Vec::new();
        assert_eq!(b.recv_batch(&mut out, 8, Duration::ZERO).unwrap(), 2);
        assert_eq!(cap.write_errors(), 2);
    }

    #[test]
    fn idle_receive_flushes_buffered_records_to_the_file() {
        let dir = std::env::temp_dir().join(format!("netstack-link-idle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("idle.pcap");
        let (a, _b) = MemoryLink::pair(MemoryLinkConfig::default());
        let cap = CaptureDevice::new(a, PcapWriter::create(&path, LinkType::Ethernet).unwrap());
        cap.send(&[1u8; 20]).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        assert_eq!(
            cap.recv_batch(&mut Vec::new(), 8, Duration::ZERO).unwrap(),
            0
        );
        let after = std::fs::metadata(&path).unwrap().len();
        drop(cap);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((before, after), (0, 24 + 16 + 20));
    }

    #[test]
    fn written_file_reads_back_with_tshark_when_installed() {
        let dir = std::env::temp_dir().join(format!("netstack-link-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("arp.pcap");
        let arp = crate::wire::arp::ArpRepr {
            operation: crate::wire::arp::ArpOperation::Request,
            sender_mac: crate::wire::ethernet::MacAddr([2, 0, 0, 0, 0, 2]),
            sender_ip: std::net::Ipv4Addr::new(192, 0, 2, 2),
            target_mac: crate::wire::ethernet::MacAddr::ZERO,
            target_ip: std::net::Ipv4Addr::new(192, 0, 2, 1),
        };
        let mut w = PcapWriter::create(&path, LinkType::Ethernet).unwrap();
        w.write_frame(SystemTime::now(), &arp.to_frame()).unwrap();
        drop(w);
        let result = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .output();
        std::fs::remove_dir_all(&dir).unwrap();
        let Ok(output) = result else {
            // As every system test: a missing tool fails under the require variable.
            assert!(
                std::env::var("NETSTACK_REQUIRE_SYSTEM_TESTS").as_deref() != Ok("1"),
                "tshark is required (NETSTACK_REQUIRE_SYSTEM_TESTS=1) but not installed (apt: tshark)"
            );
            eprintln!("SKIPPED: tshark not installed (apt: tshark): no read-back check");
            return;
        };
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            text.contains("Who has 192.0.2.1? Tell 192.0.2.2"),
            "tshark said: {text}"
        );
    }
}
