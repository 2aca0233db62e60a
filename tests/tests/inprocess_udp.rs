//! In-process tier for UDP: two stacks over the in-memory link, the socket API's behaviour and
//! its errors. No root needed; impairments are seeded.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::Impairments;
use netstack_runtime::{Stack, UdpSocket};
use netstack_tests::inprocess::{impaired_pair, A, B};

fn pair(impairments: Impairments, seed: u64) -> (Stack, Stack) {
    impaired_pair(impairments, seed)
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

/// An echo server on `stack:port` (RFC 862) that runs until its socket errors (shutdown).
fn echo_server(stack: &Stack, port: u16) -> thread::JoinHandle<()> {
    let sock = UdpSocket::bind(stack, ("0.0.0.0", port)).unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let _ = sock.send_to(&buf[..n], from);
        }
    })
}

/// Sends `msg` and waits for it to come back, retrying up to `tries` times.
fn round_trip(sock: &UdpSocket, to: SocketAddr, msg: &[u8], tries: usize) -> Result<usize, String> {
    let mut buf = vec![0u8; 65536];
    for attempt in 1..=tries {
        sock.send_to(msg, to).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == to && &buf[..n] == msg => return Ok(attempt),
                Ok(_) => continue, // a late echo of an earlier try
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Err(format!(
        "no echo of {} bytes after {tries} tries",
        msg.len()
    ))
}

fn client(stack: &Stack) -> UdpSocket {
    let s = UdpSocket::bind(stack, "0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    s
}

#[test]
fn udp_echo_survives_loss_by_retrying() {
    for seed in [11, 12] {
        let (a, b) = pair(
            Impairments {
                loss: 0.10,
                ..Impairments::default()
            },
            seed,
        );
        let _srv = echo_server(&b, 7);
        let c = client(&a);
        for i in 0..50u32 {
            let msg = format!("datagram {i} seed {seed}");
            round_trip(&c, sa(B, 7), msg.as_bytes(), 40)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }
}

#[test]
fn sixty_thousand_byte_datagrams_cross_both_ways() {
    let (a, b) = pair(Impairments::default(), 13);
    let _srv = echo_server(&b, 7);
    let c = client(&a);
    let msg: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 251) as u8).collect();
    round_trip(&c, sa(B, 7), &msg, 5).unwrap();
    // The largest payload IPv4 can carry.
    let max = vec![0xabu8; 65_507];
    round_trip(&c, sa(B, 7), &max, 5).unwrap();
    let s = b.stats();
    assert!(
        s.ipv4.reassembly.reassembled >= 2,
        "{:?}",
        s.ipv4.reassembly
    );
    assert!(s.udp.rx_delivered >= 2);
}

#[test]
fn a_datagram_too_large_for_ipv4_is_refused_at_once() {
    let (a, _b) = pair(Impairments::default(), 14);
    let c = client(&a);
    let err = c.send_to(&vec![0u8; 65_508], sa(B, 7)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn binding_twice_is_addr_in_use_and_a_foreign_address_is_not_available() {
    let (a, _b) = pair(Impairments::default(), 15);
    let s = UdpSocket::bind(&a, "0.0.0.0:5000").unwrap();
    assert_eq!(
        UdpSocket::bind(&a, "0.0.0.0:5000").unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        UdpSocket::bind(&a, (A, 5000)).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        UdpSocket::bind(&a, (B, 5001)).unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    // The port is free again once every handle is gone.
    let clone = s.try_clone().unwrap();
    drop(s);
    assert_eq!(
        UdpSocket::bind(&a, "0.0.0.0:5000").unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop(clone);
    UdpSocket::bind(&a, "0.0.0.0:5000").unwrap();
}

#[test]
fn ephemeral_binds_get_distinct_ports_in_the_dynamic_range() {
    let (a, _b) = pair(Impairments::default(), 16);
    let s1 = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let s2 = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let (p1, p2) = (
        s1.local_addr().unwrap().port(),
        s2.local_addr().unwrap().port(),
    );
    assert_ne!(p1, p2);
    assert!(p1 >= 49152 && p2 >= 49152);
}

#[test]
fn nonblocking_and_timeouts_give_would_block_promptly() {
    let (a, _b) = pair(Impairments::default(), 17);
    let s = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let mut buf = [0u8; 16];
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        s.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        s.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(
        s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn a_connected_socket_learns_connection_refused_from_port_unreachable() {
    let (a, _b) = pair(Impairments::default(), 18);
    let s = client(&a);
    s.connect(sa(B, 9999)).unwrap();
    assert_eq!(s.peer_addr().unwrap(), sa(B, 9999));
    s.send(b"anyone?").unwrap();
    let mut buf = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match s.recv(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                // ARP may have delayed the first datagram: try again.
                s.send(b"anyone?").unwrap();
            }
            other => panic!("expected ConnectionRefused, got {other:?}"),
        }
    }
    // Reported once, like a pending socket error.
    assert_eq!(s.recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn an_unconnected_socket_never_sees_icmp_errors() {
    let (a, b) = pair(Impairments::default(), 19);
    let s = client(&a);
    s.send_to(b"x", sa(B, 9999)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        s.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    // But B did answer with port unreachable, and counted it.
    assert!(b.stats().udp.rx_no_socket >= 1);
}

#[test]
fn send_without_a_peer_is_not_connected_and_broadcast_needs_permission() {
    let (a, _b) = pair(Impairments::default(), 20);
    let s = client(&a);
    assert_eq!(s.send(b"x").unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(s.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
    let bcast = sa(Ipv4Addr::new(192, 0, 2, 255), 7);
    assert_eq!(
        s.send_to(b"x", bcast).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    s.set_broadcast(true).unwrap();
    assert!(s.broadcast().unwrap());
    s.send_to(b"x", bcast).unwrap();
    assert_eq!(
        s.send_to(b"x", sa(Ipv4Addr::new(198, 51, 100, 1), 7))
            .unwrap_err()
            .kind(),
        ErrorKind::NetworkUnreachable
    );
}

#[test]
fn peek_leaves_the_datagram_and_short_buffers_truncate() {
    let (a, b) = pair(Impairments::default(), 21);
    let rx = UdpSocket::bind(&b, "0.0.0.0:4000").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let tx = client(&a);
    tx.send_to(b"hello world", sa(B, 4000)).unwrap();
    let mut buf = [0u8; 5];
    let (n, from) = rx.peek_from(&mut buf).unwrap();
    assert_eq!((n, &buf[..n]), (5, &b"hello"[..]));
    assert_eq!(from, tx.local_addr().map(|a| sa(A, a.port())).unwrap());
    let mut big = [0u8; 64];
    let (n, _) = rx.recv_from(&mut big).unwrap();
    assert_eq!(&big[..n], b"hello world");
}

#[test]
fn many_threads_share_one_socket_and_many_sockets_run_at_once() {
    let (a, b) = pair(Impairments::default(), 22);
    let _srv = echo_server(&b, 7);
    thread::scope(|s| {
        for t in 0..4 {
            let a = &a;
            s.spawn(move || {
                let c = client(a);
                for i in 0..100 {
                    let msg = format!("thread {t} message {i}");
                    round_trip(&c, sa(B, 7), msg.as_bytes(), 5).unwrap();
                }
            });
        }
    });
    // One socket, two threads: every datagram is read exactly once.
    let rx = UdpSocket::bind(&b, "0.0.0.0:4001").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let rx2 = rx.try_clone().unwrap();
    let tx = client(&a);
    let readers: Vec<_> = [rx, rx2]
        .into_iter()
        .map(|r| {
            thread::spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 16];
                while let Ok((n, _)) = r.recv_from(&mut buf) {
                    got.push(u32::from_be_bytes(buf[..n].try_into().unwrap()));
                }
                got
            })
        })
        .collect();
    for i in 0..200u32 {
        tx.send_to(&i.to_be_bytes(), sa(B, 4001)).unwrap();
        if i % 50 == 0 {
            thread::sleep(Duration::from_millis(5));
        }
    }
    let mut all: Vec<u32> = readers
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>());
}

#[test]
fn shutdown_wakes_a_blocked_reader_with_an_error() {
    let (a, _b) = pair(Impairments::default(), 23);
    let s = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 8];
        s.recv_from(&mut buf).map(|_| ()).map_err(|e| e.kind())
    });
    thread::sleep(Duration::from_millis(50));
    a.shutdown(Duration::from_secs(2)).unwrap();
    let start = Instant::now();
    let r = reader.join().unwrap();
    assert_eq!(r, Err(ErrorKind::NotConnected));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_connected_socket_to_a_silent_neighbour_learns_host_unreachable() {
    let (a, _b) = pair(Impairments::default(), 24);
    let s = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.connect(sa(Ipv4Addr::new(192, 0, 2, 9), 53)).unwrap();
    s.send(b"hello?").unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 8];
    let err = s.recv(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::HostUnreachable, "{err}");
    assert!(start.elapsed() < Duration::from_secs(6));
}

#[test]
fn shutdown_still_delivers_a_datagram_that_was_waiting_for_arp() {
    // 250 ms each way: ARP takes longer than the other stages need to stop, so without the
    // flush link TX would be gone before the reply came.
    let slow = Impairments {
        delay: Duration::from_millis(250),
        ..Impairments::default()
    };
    let (a, b) = pair(slow, 25);
    let rx = UdpSocket::bind(&b, "0.0.0.0:4002").unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let tx = UdpSocket::bind(&a, "0.0.0.0:0").unwrap();
    // The first datagram to B must wait for ARP; shutting down at once must not lose it.
    tx.send_to(b"last words", sa(B, 4002)).unwrap();
    a.shutdown(Duration::from_secs(2)).unwrap();
    let mut buf = [0u8; 32];
    let (n, _) = rx
        .recv_from(&mut buf)
        .expect("the datagram queued behind ARP was flushed");
    assert_eq!(&buf[..n], b"last words");
}

#[test]
fn a_socket_nobody_reads_holds_its_bound_and_counts_the_rest() {
    let (a, b) = pair(Impairments::default(), 26);
    let rx = UdpSocket::bind(&b, "0.0.0.0:4003").unwrap();
    let tx = client(&a);
    let limit = netstack_runtime::RECV_QUEUE_DATAGRAMS;
    for i in 0..limit + 300 {
        tx.send_to(&(i as u32).to_be_bytes(), sa(B, 4003)).unwrap();
        if i % 16 == 0 {
            thread::sleep(Duration::from_millis(2)); // pace, so the drops are the socket's
        }
    }
    // Wait until the arrivals stop, so the reads below race none. On a loaded machine the
    // stack's ingress queues may drop a datagram before UDP (counted by the runtime); every
    // datagram that reached UDP is either queued, up to the bound, or counted as a drop.
    let sent = (limit + 300) as u64;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (0, Instant::now());
    while Instant::now() < deadline {
        let n = b.stats().udp.rx_datagrams;
        if n == sent {
            break;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > limit as u64 && last.1.elapsed() > Duration::from_millis(500) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let stats = b.stats();
    let udp = stats.udp;
    let ingress_drops =
        stats.runtime.net_queue_full_packets + stats.runtime.transport_queue_full_packets;
    assert!(
        udp.rx_datagrams > limit as u64 && udp.rx_datagrams + ingress_drops <= sent,
        "{udp:?}, ingress drops {ingress_drops}"
    );
    assert_eq!(
        (udp.rx_delivered, udp.rx_queue_full),
        (limit as u64, udp.rx_datagrams - limit as u64),
        "{udp:?}"
    );
    rx.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 8];
    let mut read = 0;
    while rx.recv_from(&mut buf).is_ok() {
        read += 1;
    }
    assert_eq!(read, limit, "the queue holds exactly its bound");
}
