//! Stress tier for TCP: many threads × many connections between two stacks over the in-memory
//! link with seeded loss, every byte checked. The default run is short; `NETSTACK_STRESS_LONG=1`
//! runs the long form.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::Impairments;
use netstack_runtime::{TcpListener, TcpStream};
use netstack_tests::inprocess::{impaired_pair, B};

fn long() -> bool {
    std::env::var_os("NETSTACK_STRESS_LONG").is_some()
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
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
        "{} connections echoed {} MiB intact each way under 1% loss in {elapsed:?}",
        clients * conns,
        total >> 20
    );
    let stats = a.stats();
    drop(b);
    assert!(acceptor.join().unwrap() >= clients * conns);
    assert!(
        stats.tcp.connections.retransmissions > 0,
        "the loss should have cost retransmissions"
    );
}
