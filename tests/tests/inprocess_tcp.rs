//! In-process tier for TCP: two stacks over the in-memory link, through the runtime's
//! `TcpListener` / `TcpStream` (std::net-shaped), every byte checked.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::Impairments;
use netstack_runtime::{Stack, TcpListener, TcpStream};
use netstack_tests::inprocess::{impaired_pair, pattern, B};

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// An echo server (RFC 862 over TCP) that serves every connection on its own thread.
fn echo_server(stack: &Stack, port: u16) -> TcpListener {
    let l = TcpListener::bind(stack, ("0.0.0.0", port)).unwrap();
    let l2 = l.try_clone().unwrap();
    thread::spawn(move || {
        while let Ok((s, _)) = l2.accept() {
            thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    l
}

/// Writes `data` on one thread while reading the echo on this one; returns what came back.
fn echo_round(stream: TcpStream, data: &[u8]) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let writer = stream.try_clone().unwrap();
    let to_send = data.to_vec();
    let w = thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&to_send).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    w.join().unwrap();
    got
}

#[test]
fn echo_round_trip_over_tcp() {
    let (a, b) = impaired_pair(Impairments::default(), 31);
    let _l = echo_server(&b, 7);
    let s = TcpStream::connect(&a, sa(B, 7)).unwrap();
    assert_eq!(s.peer_addr().unwrap(), sa(B, 7));
    let got = echo_round(s, b"hello over tcp");
    assert_eq!(got, b"hello over tcp");
}

#[test]
fn four_mebibytes_each_way_survive_loss_byte_for_byte() {
    for seed in [32, 33] {
        let lossy = Impairments {
            loss: 0.02,
            reorder: 0.01,
            duplicate: 0.01,
            ..Impairments::default()
        };
        let (a, b) = impaired_pair(lossy, seed);
        let _l = echo_server(&b, 7);
        let data = pattern(4 << 20, seed);
        let start = Instant::now();
        let s = TcpStream::connect(&a, sa(B, 7)).unwrap();
        let got = echo_round(s, &data);
        assert!(
            got == data,
            "seed {seed}: {} of {} bytes came back, first difference at {:?}",
            got.len(),
            data.len(),
            got.iter().zip(&data).position(|(x, y)| x != y)
        );
        println!("seed {seed}: 4 MiB each way in {:?}", start.elapsed());
    }
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let (a, _b) = impaired_pair(Impairments::default(), 34);
    let err = TcpStream::connect(&a, sa(B, 9999)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn binding_a_listening_port_twice_is_addr_in_use() {
    let (_a, b) = impaired_pair(Impairments::default(), 35);
    let _l = TcpListener::bind(&b, "0.0.0.0:80").unwrap();
    assert_eq!(
        TcpListener::bind(&b, "0.0.0.0:80").unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
}

#[test]
fn a_read_with_nothing_to_read_times_out_with_would_block() {
    let (a, b) = impaired_pair(Impairments::default(), 36);
    let l = TcpListener::bind(&b, "0.0.0.0:81").unwrap();
    let s = TcpStream::connect(&a, sa(B, 81)).unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 8];
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        (&s).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[test]
fn many_connections_spread_over_workers_each_echo_their_own_bytes() {
    let (a, b) = impaired_pair(Impairments::default(), 37);
    let _l = echo_server(&b, 7);
    thread::scope(|sc| {
        for c in 0..16u32 {
            let a = &a;
            sc.spawn(move || {
                let data = pattern(64 * 1024 + c as usize * 97, u64::from(c));
                let s = TcpStream::connect(a, sa(B, 7)).unwrap();
                assert_eq!(echo_round(s, &data), data, "connection {c}");
            });
        }
    });
}

#[test]
fn the_peer_closing_gives_eof_and_shutdown_closes_connections() {
    let (a, b) = impaired_pair(Impairments::default(), 38);
    let l = TcpListener::bind(&b, "0.0.0.0:82").unwrap();
    let mut s = TcpStream::connect(&a, sa(B, 82)).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    peer.write_all(b"bye").unwrap();
    drop(peer);
    let mut got = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    // A connection still open when the stack stops is closed within the deadline.
    let _open = TcpStream::connect(&a, sa(B, 82)).unwrap();
    let start = Instant::now();
    a.shutdown(Duration::from_secs(3)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn shutdown_wakes_a_blocked_accept_and_a_blocked_read() {
    let (a, b) = impaired_pair(Impairments::default(), 39);
    let l = TcpListener::bind(&b, "0.0.0.0:83").unwrap();
    let s = TcpStream::connect(&a, sa(B, 83)).unwrap();
    let (_peer, _) = l.accept().unwrap();
    let acceptor = thread::spawn(move || l.accept().map(|_| ()).map_err(|e| e.kind()));
    let reader = thread::spawn(move || {
        let mut buf = [0u8; 8];
        (&s).read(&mut buf).map_err(|e| e.kind())
    });
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    b.shutdown(Duration::from_secs(3)).unwrap();
    assert_eq!(acceptor.join().unwrap(), Err(ErrorKind::NotConnected));
    // A's side sees B's FIN (graceful close) or the reset after the grace: either ends the read.
    let r = reader.join().unwrap();
    assert!(
        matches!(r, Ok(0) | Err(ErrorKind::ConnectionReset)),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    drop(a);
}
