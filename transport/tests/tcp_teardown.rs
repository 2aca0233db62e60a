//! Ends of connections: a close with only out-of-order data unread, the memory a TIME-WAIT or
//! reset connection keeps (counted by a global allocator for this test binary), and LISTEN's
//! answer to a segment without SYN or ACK (RFC 9293 §3.10.7.2). The helpers are
//! `netstack_transport::tcp::testing`.

use std::net::{Ipv4Addr, SocketAddrV4};

use netstack_transport::tcp::connection::State;
use netstack_transport::tcp::testing::*;
use netstack_transport::tcp::{
    Endpoint, Flags, FourTuple, SeqNumber, SocketOptions, TcpConfig, TcpError, TcpRepr,
};

/// RFC 2525 §2.17 as Linux applies it: close with unread data resets, but only in-order data
/// was ever readable. With nothing but out-of-order bytes held, close sends a FIN.
#[test]
fn close_with_only_out_of_order_data_sends_a_fin() {
    let mut c = established_with(SocketOptions::default(), SACK).0;
    let ooo = TcpRepr {
        payload_len: 100,
        ..peer(Flags::ACK, PEER_ISS + 101, c.snd_nxt())
    };
    c.on_segment(ms(20), &ooo, &[0; 100]);
    drain(&mut c, ms(20));
    assert_eq!((c.readable(), c.recv_queued()), (0, 100));
    c.close(Some(ms(30)));
    let out = drain(&mut c, ms(30));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.flags, Flags::FIN | Flags::ACK);
    assert_eq!(c.state(), State::FinWait1);
}

mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local!(static NET: Cell<isize> = const { Cell::new(0) });

    pub struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let _ = NET.try_with(|n| n.set(n.get() + l.size() as isize));
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            let _ = NET.try_with(|n| n.set(n.get() - l.size() as isize));
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            let _ = NET.try_with(|n| n.set(n.get() + new as isize - l.size() as isize));
            unsafe { System.realloc(p, l, new) }
        }
    }

    /// Net bytes allocated by this thread so far.
    pub fn net() -> isize {
        NET.with(|n| n.get())
    }
}

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

/// Bounded memory (issue 4, house rules): a connection in TIME-WAIT needs only its 4-tuple,
/// sequence numbers, timestamps and a deadline, and lives 2×MSL = 60 s. It must not keep its
/// receive ring (256 KiB by default) or send buffer, or every recently closed connection pins
/// about 0.5 MiB for a minute. (The number of TIME-WAIT connections is bounded as well:
/// `TcpConfig::max_time_wait`, tested in the endpoint's unit tests.)
#[test]
fn time_wait_connection_keeps_no_buffers() {
    use netstack_transport::tcp::testing::pump;
    use netstack_transport::tcp::TcpEvent;
    let a_ip = Ipv4Addr::new(192, 0, 2, 1);
    let b_ip = Ipv4Addr::new(192, 0, 2, 2);
    let mut a = Endpoint::new(TcpConfig::default(), [1; 16]);
    let mut b = Endpoint::new(TcpConfig::default(), [2; 16]);
    b.listen(SocketAddrV4::new(b_ip, 80), 8, SocketOptions::default())
        .unwrap();
    let t = t0();
    let mut buf = vec![0u8; 300_000];
    let baseline = alloc_count::net();
    let tuple = FourTuple {
        local: SocketAddrV4::new(a_ip, 4000),
        remote: SocketAddrV4::new(b_ip, 80),
    };
    let id = a.connect(t, tuple, SocketOptions::default()).unwrap();
    pump(&mut a, &mut b, t);
    let sid = std::iter::from_fn(|| b.poll_event())
        .find_map(|e| match e {
            TcpEvent::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    // 64 KiB each way, all read.
    a.send(id, &[1; 65536]).unwrap();
    b.send(sid, &[2; 65536]).unwrap();
    pump(&mut a, &mut b, t);
    while b.recv(sid, &mut buf).is_ok_and(|n| n > 0) {}
    while a.recv(id, &mut buf).is_ok_and(|n| n > 0) {}
    pump(&mut a, &mut b, t);
    // a closes first, b follows: a ends in TIME-WAIT, b's connection is gone.
    a.close(id);
    pump(&mut a, &mut b, t);
    let _ = b.recv(sid, &mut buf);
    b.close(sid);
    pump(&mut a, &mut b, t);
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert_eq!(a.connection_count(), 1, "a's connection is in TIME-WAIT");
    assert_eq!(b.connection_count(), 0);
    let held = alloc_count::net() - baseline;
    drop(buf);
    assert!(
        held < 32 * 1024,
        "{held} bytes still allocated with one connection in TIME-WAIT"
    );
}

/// The same bound for a connection that ended with a reset but whose handle the application
/// still holds: CLOSED keeps neither its unsent data nor its (read) receive ring.
#[test]
fn reset_connection_keeps_no_buffers() {
    let mut c = established().0;
    let before = alloc_count::net();
    c.send(&vec![1; 100_000]).unwrap();
    drain(&mut c, ms(20));
    c.on_segment(ms(30), &peer_data(&c, 0, 1000), &[2; 1000]);
    let mut buf = [0u8; 1000];
    assert_eq!(c.recv(&mut buf), Ok(1000));
    assert!(alloc_count::net() - before > 200_000, "buffers in use");
    let rst = peer(Flags::RST, PEER_ISS + 1001, SeqNumber(0));
    c.on_segment(ms(40), &rst, &[]);
    assert_eq!(c.error(), Some(TcpError::ConnectionReset));
    let held = alloc_count::net() - before;
    assert!(held < 8 * 1024, "{held} bytes still held after the reset");
    assert_eq!(c.send_queued(), 0);
}

/// RFC 9293 §3.10.7.2 (LISTEN, "fourth, other text or control"): a segment with neither SYN
/// nor ACK (nor RST) is dropped and counted. (Linux drops it too; answering with a RST would let
/// FIN/NULL scans see a closed port where Linux shows an open one.) A SYN-ACK still draws a RST.
#[test]
fn listener_drops_a_segment_without_syn_or_ack() {
    let mut ep = Endpoint::new(config(), [9; 16]);
    let local = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80);
    ep.listen(local, 8, SocketOptions::default()).unwrap();
    let fin = TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq: SeqNumber(1),
        flags: Flags::FIN,
        window: 1000,
        ..TcpRepr::default()
    };
    let src = Ipv4Addr::new(192, 0, 2, 1);
    let bytes = fin.to_bytes(src, *local.ip(), &[]);
    ep.on_segment(t0(), src, *local.ip(), &bytes);
    let mut out = Vec::new();
    ep.poll_transmit(t0(), &mut out);
    assert!(
        out.is_empty(),
        "LISTEN answered a FIN-only segment: {} segment(s)",
        out.len()
    );
    assert_eq!(ep.stats().endpoint.dropped_listen_no_syn_or_ack, 1);
    // RFC 9293 §3.10.7.2 second: an ACK-bearing segment, even with SYN, draws <SEQ=SEG.ACK><RST>.
    let synack = TcpRepr {
        flags: Flags::SYN | Flags::ACK,
        ack: SeqNumber(777),
        ..fin
    };
    ep.on_segment(
        t0(),
        src,
        *local.ip(),
        &synack.to_bytes(src, *local.ip(), &[]),
    );
    ep.poll_transmit(t0(), &mut out);
    assert_eq!(out.len(), 1, "a SYN-ACK to a listener draws a RST");
}
