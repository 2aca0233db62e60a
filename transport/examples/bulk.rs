//! CPU cost of the TCP core: two endpoints in one thread, joined by a perfect wire, moving
//! 1 GiB one way. `cargo run --release -p netstack-transport --example bulk`
//!
//! Virtual time stands still (no link delay), so this measures segment processing alone.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use netstack_transport::tcp::{Endpoint, FourTuple, SocketOptions, TcpConfig, TcpError, TcpEvent};

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1 << 30);
    let (a_ip, b_ip) = (Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2));
    let cfg = TcpConfig {
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..TcpConfig::default()
    };
    let mut a = Endpoint::new(cfg.clone(), [1; 16]);
    let mut b = Endpoint::new(cfg, [2; 16]);
    let now = Instant::now();
    b.listen(SocketAddrV4::new(b_ip, 80), 8, SocketOptions::default())
        .unwrap();
    let tuple = FourTuple {
        local: SocketAddrV4::new(a_ip, 4000),
        remote: SocketAddrV4::new(b_ip, 80),
    };
    let id = a.connect(now, tuple, SocketOptions::default()).unwrap();
    let data = vec![0xabu8; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let (mut sent, mut received, mut segments) = (0u64, 0u64, 0u64);
    let mut sid = None;
    let start = Instant::now();
    while received < total {
        if sent < total {
            let n = ((total - sent) as usize).min(data.len());
            sent += a.send(id, &data[..n]).unwrap() as u64;
        }
        let mut wa = Vec::new();
        a.poll_transmit(now, &mut wa);
        segments += wa.len() as u64;
        for (s, d, seg) in wa {
            b.on_segment(now, s, d, &seg);
        }
        while let Some(ev) = b.poll_event() {
            if let TcpEvent::Accepted { id, .. } = ev {
                sid = Some(id);
            }
        }
        if let Some(sid) = sid {
            loop {
                match b.recv(sid, &mut buf) {
                    Ok(n) if n > 0 => received += n as u64,
                    Ok(_) | Err(TcpError::WouldBlock) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        }
        let mut wb = Vec::new();
        b.poll_transmit(now, &mut wb);
        segments += wb.len() as u64;
        for (s, d, seg) in wb {
            a.on_segment(now, s, d, &seg);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} MiB in {secs:.2}s: {:.2} Gbit/s of payload through both ends, {:.0} segments/s",
        total >> 20,
        total as f64 * 8.0 / secs / 1e9,
        segments as f64 / secs
    );
}
