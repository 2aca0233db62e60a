//! A TCP echo server and its client in one process, two stacks joined by the in-memory link:
//! no root and no TAP needed. `cargo run -p netstack-runtime --example memory_echo`
//!
//! The server half is the same as `echo_server`'s, the client half as `echo_client`'s.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use netstack_runtime::config::device::{MemoryLink, MemoryLinkConfig};
use netstack_runtime::config::Ipv4Cidr;
use netstack_runtime::{Stack, TcpListener, TcpStream};

fn main() -> io::Result<()> {
    let cidr = |s: &str| s.parse::<Ipv4Cidr>().expect("a valid CIDR");
    let (a, b) = MemoryLink::pair(MemoryLinkConfig::default());
    let server = Stack::builder(Arc::new(a), cidr("192.0.2.2/24")).build()?;
    let client = Stack::builder(Arc::new(b), cidr("192.0.2.3/24")).build()?;

    // Server: one thread per connection; the loop ends when the stack shuts down.
    let listener = TcpListener::bind(&server, "192.0.2.2:7")?;
    let acceptor = thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            thread::spawn(move || {
                let (mut from, mut to) = (&stream, &stream);
                io::copy(&mut from, &mut to)?;
                stream.shutdown(Shutdown::Write)
            });
        }
    });

    // Client: each line out, its echo back, with a deadline so nothing can hang.
    let mut stream = TcpStream::connect(&client, "192.0.2.2:7")?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut echo = Vec::new();
    for line in ["hello\n", "over the in-memory link\n"] {
        stream.write_all(line.as_bytes())?;
        echo.resize(line.len(), 0);
        stream.read_exact(&mut echo)?;
        print!("echo: {}", String::from_utf8_lossy(&echo));
        assert_eq!(echo, line.as_bytes());
    }
    stream.shutdown(Shutdown::Write)?;
    // The server closes its half in turn: the stream ends.
    assert_eq!(stream.read(&mut echo)?, 0);
    drop(stream);

    client.shutdown(Duration::from_secs(2))?;
    server.shutdown(Duration::from_secs(2))?;
    acceptor.join().expect("the acceptor thread ended");
    Ok(())
}
