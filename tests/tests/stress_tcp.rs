//! Stress tier for TCP: many threads × many connections between two stacks over the in-memory
//! link with seeded loss, every byte checked. The default run is short; `NETSTACK_STRESS_LONG=1`
//! runs the long form.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::Impairments;
use netstack_link::device::memory::MemoryLinkConfig;
use netstack_runtime::{Stack, TcpListener, TcpStream};
use netstack_tests::inprocess::{impaired_pair, pair_built, pair_with, pattern, B};

fn long() -> bool {
    std::env::var_os("NETSTACK_STRESS_LONG").is_some()
}

#[test]
fn many_threads_and_connections_echo_every_byte_under_loss() {
    let (clients, conns, size) = if long() {
        (16, 8, 1 << 20)
    } else {
        (4, 4, 128 * 1024)
    };
    let lossy = Impairments {
        loss: 0.01,
        reorder: 0.01,
        ..Impairments::default()
    };
    let (a, b) = impaired_pair(lossy, 41);
    threads_by_connections(a, b, clients, conns, size);
}

/// The same with one, two and four transport workers on each stack (connections sharded over
/// them by 4-tuple), without impairments.
#[test]
fn threads_by_connections_with_one_two_and_four_workers_echo_every_byte() {
    let (clients, conns, size) = if long() {
        (8, 8, 1 << 20)
    } else {
        (4, 3, 64 * 1024)
    };
    for workers in [1, 2, 4] {
        let cfg = MemoryLinkConfig {
            a_to_b: Impairments::default(),
            b_to_a: Impairments::default(),
            seed: workers as u64,
            ..MemoryLinkConfig::default()
        };
        let (a, b) = pair_with(cfg, Some((1, workers))).unwrap();
        threads_by_connections(a, b, clients, conns, size);
    }
}

/// 10,000 connections open at once between two stacks (4 KiB buffers), each carrying a few
/// bytes each way while all are open; every byte checked, then all closed.
#[test]
fn ten_thousand_concurrent_connections_each_echo_their_bytes() {
    let total: usize = 10_000;
    let threads = 4;
    let (a, b) = pair_built(MemoryLinkConfig::default(), |b| {
        b.workers(1, 2).tcp_buffers(4096, 4096)
    })
    .unwrap();
    let listener = TcpListener::bind_with_backlog(&b, "0.0.0.0:7", 4096).unwrap();
    let acceptor = thread::spawn(move || {
        let mut all = Vec::with_capacity(total);
        let deadline = Instant::now() + Duration::from_secs(240);
        while all.len() < total {
            let (s, _) = listener
                .accept_until(Some(deadline))
                .unwrap_or_else(|e| panic!("accepted {} of {total}: {e}", all.len()));
            all.push(s);
        }
        all
    });
    let start = Instant::now();
    let clients: Vec<Vec<TcpStream>> = thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let a = &a;
                sc.spawn(move || {
                    (0..total / threads)
                        .map(|_| TcpStream::connect(a, SocketAddr::from((B, 7))).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let servers = acceptor.join().unwrap();
    let opened = start.elapsed();
    assert_eq!(a.connections().len(), total);
    // Every connection is open now. The servers echo 8 bytes on each while the clients write
    // and read them back, a share of the connections per thread.
    let chunk = total / threads;
    let mut servers = servers;
    thread::scope(|sc| {
        for part in servers.chunks_mut(chunk) {
            sc.spawn(move || {
                for s in part.iter_mut() {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut buf = [0u8; 8];
                    s.read_exact(&mut buf).unwrap();
                    s.write_all(&buf).unwrap();
                }
            });
        }
        for (t, part) in clients.iter().enumerate() {
            sc.spawn(move || {
                for (k, s) in part.iter().enumerate() {
                    let tag = ((t * chunk + k) as u64).to_be_bytes();
                    (&*s).write_all(&tag).unwrap();
                }
                for (k, s) in part.iter().enumerate() {
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut back = [0u8; 8];
                    (&*s).read_exact(&mut back).unwrap();
                    assert_eq!(u64::from_be_bytes(back), (t * chunk + k) as u64);
                }
            });
        }
    });
    println!(
        "{total} connections opened in {opened:?}, all echoed in {:?}",
        start.elapsed()
    );
    drop(clients);
    drop(servers);
}

fn threads_by_connections(a: Stack, b: Stack, clients: u32, conns: u32, size: usize) {
    let listener = TcpListener::bind(&b, "0.0.0.0:7").unwrap();
    let acceptor = thread::spawn(move || {
        let mut served = 0u32;
        while let Ok((s, _)) = listener.accept() {
            served += 1;
            thread::spawn(move || {
                let mut s = s;
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = s.shutdown(Shutdown::Write);
            });
        }
        served
    });
    let start = Instant::now();
    thread::scope(|sc| {
        for c in 0..clients {
            let a = &a;
            sc.spawn(move || {
                for k in 0..conns {
                    let seed = u64::from(c) << 32 | u64::from(k);
                    let data = pattern(size, seed);
                    let s = TcpStream::connect(a, SocketAddr::from((B, 7))).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let w = s.try_clone().unwrap();
                    let out = data.clone();
                    let writer = thread::spawn(move || {
                        let mut w = w;
                        w.write_all(&out).unwrap();
                        w.shutdown(Shutdown::Write).unwrap();
                    });
                    let mut got = Vec::with_capacity(size);
                    (&s).read_to_end(&mut got).unwrap();
                    writer.join().unwrap();
                    assert!(
                        got == data,
                        "client {c} connection {k}: {} of {size} bytes intact",
                        got.iter().zip(&data).take_while(|(x, y)| x == y).count()
                    );
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let total = u64::from(clients * conns) * size as u64;
    println!(
        "{} connections echoed {} MiB intact each way in {elapsed:?}",
        clients * conns,
        total >> 20
    );
    // Counters are published once per worker wake-up: the last ACKs may be a moment behind
    // the last read.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut acked = a.stats().tcp.connections.bytes_acked;
    while acked < total && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
        acked = a.stats().tcp.connections.bytes_acked;
    }
    drop(b);
    assert!(acceptor.join().unwrap() >= clients * conns);
    assert!(acked >= total, "{acked} of {total} bytes acknowledged");
}

/// Threads × connections over a TAP with Linux as the peer: netstackd with one, two and four
/// transport workers, Python threads in the namespace each running connections that echo
/// random data, every byte checked. Needs root (a system test, gated like the others).
#[test]
fn threads_by_connections_over_the_tap_with_one_two_and_four_workers() {
    use netstack_tests::netns::Netstackd;
    const SCRIPT: &str = r#"
import os, socket, sys, threading
threads, conns, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
bad = []
def run(t):
    for c in range(conns):
        data = os.urandom(size)
        s = socket.create_connection(("192.0.2.2", 7), timeout=30)
        w = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
        w.start()
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        w.join()
        s.close()
        if bytes(got) != data:
            bad.append((t, c, len(got)))
ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
print("bad", bad) if bad else print("ok", threads * conns)
"#;
    let (threads, conns, size) = if long() {
        ("8", "8", "1048576")
    } else {
        ("4", "3", "131072")
    };
    for workers in ["1", "2", "4"] {
        let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &["--workers", workers])
        else {
            return;
        };
        let done = ns.run(
            "python3",
            &["-c", SCRIPT, threads, conns, size],
            Duration::from_secs(120),
        );
        assert!(
            done.stdout.starts_with("ok"),
            "{workers} worker(s): {}",
            done.describe()
        );
        stack.stop_ok();
    }
}
