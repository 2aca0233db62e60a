//! Stress tier for UDP: many threads × many sockets between two stacks over the in-memory link,
//! every byte of every datagram checked. The default run is short; `NETSTACK_STRESS_LONG=1`
//! runs the long form.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use netstack_link::device::memory::{MemoryLink, MemoryLinkConfig};
use netstack_runtime::{Stack, UdpSocket};

fn long() -> bool {
    std::env::var_os("NETSTACK_STRESS_LONG").is_some()
}

/// A datagram whose every byte is derived from (client, socket, sequence).
fn payload(client: u32, sock: u32, seq: u32) -> Vec<u8> {
    let len = 1 + ((client * 131 + sock * 17 + seq * 7) % 3000) as usize;
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&[client as u8, sock as u8]);
    v.extend_from_slice(&seq.to_be_bytes());
    let mut x = client ^ (sock << 8) ^ (seq << 16);
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        v.push((x >> 16) as u8);
    }
    v.truncate(len);
    v
}

#[test]
fn many_threads_and_sockets_echo_every_byte_intact() {
    let (clients, sockets, rounds) = if long() { (16, 8, 2000) } else { (4, 4, 150) };
    let (da, db) = MemoryLink::pair(MemoryLinkConfig::default());
    let a = Stack::builder(Arc::new(da), "192.0.2.2/24".parse().unwrap())
        .workers(2, 2)
        .build()
        .unwrap();
    let b = Stack::builder(Arc::new(db), "192.0.2.3/24".parse().unwrap())
        .workers(2, 2)
        .build()
        .unwrap();

    // Four echo servers on four ports, so the datagrams spread over B's transport workers.
    let ports = [7u16, 1007, 2007, 3007];
    let servers: Vec<_> = ports
        .iter()
        .map(|&port| {
            let sock = UdpSocket::bind(&b, ("0.0.0.0", port)).unwrap();
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                let mut served = 0u64;
                let idle_limit = Instant::now() + Duration::from_secs(600);
                loop {
                    match sock.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            served += 1;
                            sock.send_to(&buf[..n], from).unwrap();
                        }
                        Err(_) if Instant::now() > idle_limit => break,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                        Err(_) => break, // shutdown
                    }
                }
                served
            })
        })
        .collect();

    let start = Instant::now();
    let lost: u64 = thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let a = &a;
                s.spawn(move || {
                    let socks: Vec<UdpSocket> = (0..sockets)
                        .map(|_| {
                            let s = UdpSocket::bind(a, "0.0.0.0:0").unwrap();
                            s.set_read_timeout(Some(Duration::from_millis(250))).unwrap();
                            s
                        })
                        .collect();
                    let mut buf = vec![0u8; 65536];
                    let mut retries = 0u64;
                    for seq in 0..rounds {
                        for (i, sock) in socks.iter().enumerate() {
                            let port = ports[(c as usize + i) % ports.len()];
                            let to = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 3), port));
                            let msg = payload(c, i as u32, seq);
                            let mut tries = 0;
                            loop {
                                sock.send_to(&msg, to).unwrap();
                                match sock.recv_from(&mut buf) {
                                    Ok((n, from)) => {
                                        assert_eq!(from, to);
                                        assert_eq!(&buf[..n], &msg[..], "client {c} socket {i} seq {seq}");
                                        break;
                                    }
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 20 => {
                                        // Bounded queues may drop under load: resend.
                                        tries += 1;
                                        retries += 1;
                                    }
                                    Err(e) => panic!("client {c} socket {i} seq {seq}: {e} after {tries} resends"),
                                }
                            }
                        }
                    }
                    retries
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed();
    let total = u64::from(clients * sockets * rounds);
    a.shutdown(Duration::from_secs(2)).unwrap();
    b.shutdown(Duration::from_secs(2)).unwrap();
    let served: u64 = servers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(served >= total, "servers echoed {served} of {total}");
    println!(
        "{total} datagrams echoed intact by {clients}×{sockets} sockets in {elapsed:?} ({:.0}/s), {lost} resends",
        total as f64 / elapsed.as_secs_f64()
    );
}
