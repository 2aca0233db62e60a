//! Issue 9: no per-packet heap allocation on the data path. A counting global allocator
//! watches a steady bulk transfer between two in-memory stacks (after a warm-up that fills the
//! buffer pools) and the allocations per MiB moved must stay under a bound far below one per
//! segment (a MiB is about 720 segments of 1,448 bytes, plus their ACKs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;

use netstack_link::device::memory::MemoryLinkConfig;
use netstack_runtime::{TcpListener, TcpStream};
use netstack_tests::inprocess::{pair_built, B};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MIB: usize = 1 << 20;
/// Allocations per MiB moved that the steady state may make (a segment is ~1/720 MiB: one
/// allocation per segment would be 720 or more).
const BOUND_PER_MIB: u64 = 16;

#[test]
fn a_steady_bulk_transfer_allocates_almost_nothing_per_mebibyte() {
    let (a, b) = pair_built(MemoryLinkConfig::default(), |x| x.workers(1, 1)).unwrap();
    let l = TcpListener::bind(&b, "0.0.0.0:9").unwrap();
    let reader = thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0usize;
        loop {
            match c.read(&mut buf).unwrap() {
                0 => return n,
                k => n += k,
            }
        }
    });
    let mut c = TcpStream::connect(&a, SocketAddr::V4(SocketAddrV4::new(B, 9))).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut send = |mib: usize| {
        for _ in 0..mib * MIB / chunk.len() {
            c.write_all(&chunk).unwrap();
        }
    };
    // Warm-up: connection buffers, frame pools and segment buffers reach their steady size.
    send(32);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let measured = 64;
    send(measured);
    let during = ALLOCATIONS.load(Ordering::Relaxed) - before;
    c.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(reader.join().unwrap(), (32 + measured) * MIB);
    let per_mib = during / measured as u64;
    println!("{during} allocations while moving {measured} MiB: {per_mib} per MiB");
    assert!(
        per_mib <= BOUND_PER_MIB,
        "{per_mib} allocations per MiB in a steady transfer (bound {BOUND_PER_MIB})"
    );
}
