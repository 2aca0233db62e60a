//! The rest of `std::net` on the stack's TCP sockets, introspection, and the data path's
//! promise that reads and writes ask the worker nothing: two stacks over the in-memory link.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::{Impairments, MemoryLinkConfig};
use netstack_runtime::{
    Keepalive, Stack, TcpListener, TcpOptions, TcpState, TcpStream, DEFAULT_TTL,
};
use netstack_tests::inprocess::{impaired_pair, pair_with, A, B};

fn pair() -> (Stack, Stack) {
    impaired_pair(Impairments::default(), 11)
}

fn connected(a: &Stack, b: &Stack, port: u16) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(b, ("0.0.0.0", port)).unwrap();
    let s = TcpStream::connect(a, SocketAddr::from((B, port))).unwrap();
    let (p, _) = l
        .accept_until(Some(Instant::now() + Duration::from_secs(10)))
        .unwrap();
    (s, p)
}

#[test]
fn binding_port_zero_picks_a_free_port_that_local_addr_names() {
    let (a, b) = pair();
    let l = TcpListener::bind(&b, "0.0.0.0:0").unwrap();
    let port = l.local_addr().unwrap().port();
    assert_ne!(port, 0);
    let l2 = TcpListener::bind(&b, "0.0.0.0:0").unwrap();
    assert_ne!(l2.local_addr().unwrap().port(), port);
    let mut s = TcpStream::connect(&a, SocketAddr::from((B, port))).unwrap();
    let (mut p, from) = l.accept().unwrap();
    assert_eq!(from, s.local_addr().unwrap());
    s.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    p.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
}

#[test]
fn peek_returns_data_that_the_next_read_returns_again() {
    let (a, b) = pair();
    let (s, mut p) = connected(&a, &b, 20);
    p.write_all(b"hello").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let n = s.peek(&mut buf).unwrap();
    assert_eq!(&buf[..n], &b"hello"[..n]);
    let mut all = [0u8; 5];
    (&s).read_exact(&mut all).unwrap();
    assert_eq!(&all, b"hello");
}

#[test]
fn options_read_back_and_one_setter_keeps_the_others() {
    let (a, b) = pair();
    let (s, mut p) = connected(&a, &b, 21);
    assert!(!s.nodelay().unwrap());
    assert_eq!(s.ttl().unwrap(), u32::from(DEFAULT_TTL));
    s.set_ttl(17).unwrap();
    assert_eq!(s.ttl().unwrap(), 17);
    assert_eq!(s.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
    let k = Keepalive {
        idle: Duration::from_secs(30),
        interval: Duration::from_secs(5),
        count: 3,
    };
    s.set_keepalive(Some(k)).unwrap();
    s.set_linger(Some(Duration::ZERO)).unwrap();
    // Defect 6: setting TCP_NODELAY used to reset every other option.
    s.set_nodelay(true).unwrap();
    assert!(s.nodelay().unwrap());
    assert_eq!(s.keepalive().unwrap(), Some(k));
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    assert!(s.send_buffer_size() > 0 && s.recv_buffer_size() > 0);
    // Linger zero survived: the close is a reset.
    drop(s);
    p.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(
        p.read(&mut [0u8; 4]).map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset)
    );
}

#[test]
fn take_error_reports_a_reset_once_and_reads_then_see_no_error() {
    let (a, b) = pair();
    let (s, p) = connected(&a, &b, 22);
    p.set_linger(Some(Duration::ZERO)).unwrap();
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(5);
    let err = loop {
        if let Some(e) = s.take_error().unwrap() {
            break e;
        }
        assert!(Instant::now() < deadline, "no error reported");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(s.take_error().unwrap().is_none());
    assert_eq!((&s).read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn info_and_connections_describe_a_live_connection() {
    let (a, b) = pair();
    let (mut s, mut p) = connected(&a, &b, 23);
    s.write_all(&[7u8; 10_000]).unwrap();
    let mut buf = vec![0u8; 10_000];
    p.read_exact(&mut buf).unwrap();
    let info = s.info().unwrap();
    assert_eq!(info.state, TcpState::Established);
    assert_eq!(
        info.local,
        match s.local_addr().unwrap() {
            SocketAddr::V4(v) => v,
            _ => unreachable!(),
        }
    );
    assert_eq!(*info.remote.ip(), B);
    assert!(info.bytes_sent >= 10_000, "{info:?}");
    assert!(info.cwnd > 0 && info.srtt.is_some(), "{info:?}");
    let all = a.connections();
    assert!(all.iter().any(|c| c.local == info.local), "{all:?}");
    assert!(all.iter().all(|c| *c.local.ip() == A));
    let line = info.to_string();
    assert!(
        line.contains("Established") && line.contains("cwnd:"),
        "{line}"
    );
}

#[test]
fn a_listener_honours_the_backlog_it_was_given() {
    let (a, b) = pair_with(MemoryLinkConfig::default(), Some((1, 1))).unwrap();
    let l = TcpListener::bind_with_backlog(&b, "0.0.0.0:24", 2).unwrap();
    // Five connects; nobody accepts yet. Past the backlog the listener drops SYNs (as Linux),
    // so those clients retry.
    let clients: Vec<_> = (0..5)
        .map(|_| {
            let h = a.handle();
            thread::spawn(move || {
                // A client whose handshake ended in a SYN cookie the full listener dropped
                // gets in when its first data carries the cookie's ACK again.
                let mut s = TcpStream::connect(&h, SocketAddr::from((B, 24)))?;
                s.write_all(b"x")?;
                Ok::<_, std::io::Error>(s)
            })
        })
        .collect();
    // Nobody accepts: the connections the listener completed wait in its queue. Watch them
    // for long enough that every client's SYN and several retransmissions arrive; the queue
    // never holds more than the backlog, and the clients past it are refused (counted).
    let queued = || {
        b.connections()
            .iter()
            .filter(|c| c.local.port() == 24 && c.state != TcpState::SynReceived)
            .count()
    };
    let watch_until = Instant::now() + Duration::from_millis(2500);
    let mut most = 0;
    while Instant::now() < watch_until {
        most = most.max(queued());
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(most, 2, "the backlog is 2");
    assert!(
        b.stats().tcp.endpoint.accept_queue_overflows >= 1,
        "the clients past the backlog were refused"
    );
    l.set_nonblocking(true).unwrap();
    let mut accepted = Vec::new();
    // The others are not lost: their retransmitted SYNs, SYN-ACKs and data get them in once
    // there is room.
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.len() < 5 && Instant::now() < deadline {
        match l.accept() {
            Ok((s, _)) => accepted.push(s),
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(accepted.len(), 5, "every client got in once there was room");
    for c in clients {
        c.join().unwrap().unwrap();
    }
}

#[test]
fn a_stream_and_listener_report_std_error_kinds() {
    let (a, b) = pair();
    assert_eq!(
        TcpListener::bind(&b, "198.51.100.1:80").unwrap_err().kind(),
        ErrorKind::AddrNotAvailable
    );
    let _l = TcpListener::bind(&b, "0.0.0.0:25").unwrap();
    assert_eq!(
        TcpListener::bind(&b, "0.0.0.0:25").unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        TcpStream::connect(&a, SocketAddr::from((B, 26)))
            .unwrap_err()
            .kind(),
        ErrorKind::ConnectionRefused
    );
    assert_eq!(
        TcpStream::connect(&a, SocketAddr::from((B, 0)))
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        TcpStream::connect_timeout(&a, &SocketAddr::from((B, 25)), Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    let (s, _p) = connected(&a, &b, 27);
    s.set_nonblocking(true).unwrap();
    assert_eq!(
        (&s).read(&mut [0u8; 4]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!((&s).write(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn connect_tries_each_resolved_address_in_turn() {
    let (a, b) = pair();
    let _l = TcpListener::bind(&b, "0.0.0.0:28").unwrap();
    // The first address refuses (no listener on port 29 there); the second answers.
    let addrs = [SocketAddr::from((B, 29)), SocketAddr::from((B, 28))];
    let s = TcpStream::connect(&a, &addrs[..]).unwrap();
    assert_eq!(s.peer_addr().unwrap(), addrs[1]);
}

/// The data path's promise: a steady transfer sends the worker no command per read or write,
/// and wakes it only on edges. Counted, not timed.
#[test]
fn a_steady_64_mib_transfer_sends_no_command_per_read_or_write() {
    let (a, b) = pair_with(MemoryLinkConfig::default(), Some((1, 1))).unwrap();
    let (s, mut p) = connected(&a, &b, 30);
    let before_a = a.stats().runtime;
    let before_b = b.stats().runtime;
    let total: usize = 64 << 20;
    let writer = thread::spawn(move || {
        let mut s = s;
        let chunk = vec![0x5au8; 64 * 1024];
        let mut sent = 0;
        let mut writes = 0u64;
        while sent < total {
            let n = s.write(&chunk[..chunk.len().min(total - sent)]).unwrap();
            sent += n;
            writes += 1;
        }
        (s, writes)
    });
    let mut got = 0usize;
    let mut reads = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    p.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while got < total {
        let n = p.read(&mut buf).unwrap();
        assert!(buf[..n].iter().all(|&x| x == 0x5a));
        got += n;
        reads += 1;
    }
    let (_s, writes) = writer.join().unwrap();
    let da = a.stats().runtime;
    let db = b.stats().runtime;
    let mib = (total >> 20) as u64;
    let commands =
        (da.tcp_commands - before_a.tcp_commands) + (db.tcp_commands - before_b.tcp_commands);
    let nudges = (da.tcp_nudges - before_a.tcp_nudges) + (db.tcp_nudges - before_b.tcp_nudges);
    println!(
        "64 MiB: {writes} writes, {reads} reads, {commands} commands, {nudges} worker notifications ({:.1}/MiB)",
        nudges as f64 / mib as f64
    );
    // Commands: only the Wake messages that notifications needed (at most one each).
    assert!(
        commands <= nudges + 4,
        "{commands} commands for {nudges} notifications"
    );
    assert!(
        nudges <= 64 * mib,
        "{nudges} worker notifications for {mib} MiB ({writes} writes, {reads} reads)"
    );
}

/// A reader thread and a writer thread on each end of one stream, 64 MiB each way, under seeded
/// loss, duplication and reordering; every byte checked.
#[test]
fn sixty_four_mib_each_way_with_a_reader_and_a_writer_thread_per_end_under_impairments() {
    let imp = Impairments {
        loss: 0.005,
        duplicate: 0.005,
        reorder: 0.01,
        ..Impairments::default()
    };
    let (a, b) = impaired_pair(imp, 64);
    let (s, p) = connected(&a, &b, 31);
    let total = 64usize << 20;
    let pat = |i: usize, salt: u8| (i as u8).wrapping_mul(31).wrapping_add(salt);
    let mut threads = Vec::new();
    for (end, salt_out, salt_in) in [(s, 1u8, 2u8), (p, 2u8, 1u8)] {
        end.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let w = end.try_clone().unwrap();
        threads.push(thread::spawn(move || {
            let mut chunk = vec![0u8; 48 * 1024 + 7];
            let mut sent = 0;
            while sent < total {
                let n = chunk.len().min(total - sent);
                for (k, b) in chunk[..n].iter_mut().enumerate() {
                    *b = pat(sent + k, salt_out);
                }
                (&w).write_all(&chunk[..n]).unwrap();
                sent += n;
            }
            w.shutdown(Shutdown::Write).unwrap();
            0usize
        }));
        threads.push(thread::spawn(move || {
            let mut buf = vec![0u8; 40 * 1024 + 3];
            let mut got = 0usize;
            loop {
                let n = (&end).read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                for (k, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, pat(got + k, salt_in), "byte {}", got + k);
                }
                got += n;
            }
            got
        }));
    }
    let got: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(got, vec![0, total, 0, total]);
}

/// A writer blocked on a full send buffer (the peer reads nothing) when its stack shuts down
/// fails at once with a broken pipe instead of waiting for room that will never come.
#[test]
fn a_writer_blocked_on_a_full_buffer_fails_when_the_stack_shuts_down() {
    let (a, b) = pair();
    let (s, _p) = connected(&a, &b, 32);
    let writer = thread::spawn(move || {
        let chunk = vec![1u8; 64 * 1024];
        loop {
            if let Err(e) = (&s).write(&chunk) {
                return e.kind();
            }
        }
    });
    thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    a.shutdown(Duration::from_secs(2)).unwrap();
    let kind = writer.join().unwrap();
    assert!(
        matches!(kind, ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted),
        "{kind:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

/// SO_SNDBUF/SO_RCVBUF per socket: a connect and a listener given their own buffer sizes;
/// sizes out of bounds are refused with `InvalidInput`.
#[test]
fn per_socket_buffer_sizes_apply_to_connects_and_accepted_connections() {
    let (a, b) = pair();
    let l_opts = TcpOptions {
        recv_buffer: Some(16 * 1024),
        ..TcpOptions::default()
    };
    let l = TcpListener::bind_with(&b, "0.0.0.0:33", 8, l_opts).unwrap();
    let c_opts = TcpOptions {
        send_buffer: Some(8 * 1024),
        nodelay: true,
        ..TcpOptions::default()
    };
    let mut s = TcpStream::connect_with(&a, SocketAddr::from((B, 33)), c_opts).unwrap();
    let (mut p, _) = l.accept().unwrap();
    assert_eq!(s.send_buffer_size(), 8 * 1024);
    assert!(s.nodelay().unwrap());
    assert_eq!(p.recv_buffer_size(), 16 * 1024);
    // Data still flows through the small buffers, every byte intact.
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let sent = data.clone();
    let w = thread::spawn(move || s.write_all(&sent).map(|_| s));
    let mut got = vec![0u8; data.len()];
    p.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    p.read_exact(&mut got).unwrap();
    assert!(got == data);
    w.join().unwrap().unwrap();
    let tiny = TcpOptions {
        send_buffer: Some(100),
        ..TcpOptions::default()
    };
    assert_eq!(
        TcpStream::connect_with(&a, SocketAddr::from((B, 33)), tiny)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}
