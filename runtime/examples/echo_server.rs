//! A TCP echo server (RFC 862) on port 7 over a TAP device, one thread per connection.
//!
//! `echo_server [TAP] [CIDR]`, defaults `tap0` and `192.0.2.2/24`. It needs root or
//! CAP_NET_ADMIN; a TAP it creates gets the kernel side the subnet's first free host address
//! (192.0.2.1) and is brought up. Try it in a network namespace of your own:
//!
//! ```text
//! cargo build -p netstack-runtime --examples
//! ip netns add demo
//! ip netns exec demo target/debug/examples/echo_server &
//! echo hello | ip netns exec demo nc -N 192.0.2.2 7
//! ip netns del demo
//! ```

use std::io;
use std::net::Shutdown;
use std::thread;

use netstack_runtime::{TcpListener, TcpStream};

mod common;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let tap = args.next().unwrap_or_else(|| "tap0".into());
    let cidr = args.next().unwrap_or_else(|| "192.0.2.2/24".into());
    let (stack, addr) = common::stack_on_tap(&tap, &cidr)?;
    let listener = TcpListener::bind(&stack, (addr.addr, 7))?;
    println!("echoing on {}:7 over {tap}", addr.addr);
    for stream in listener.incoming() {
        let stream = stream?;
        thread::spawn(move || {
            if let Err(e) = echo(&stream) {
                eprintln!("{:?}: {e}", stream.peer_addr());
            }
        });
    }
    Ok(())
}

/// Sends back everything the peer sends, then closes our half when the peer closes its own.
fn echo(stream: &TcpStream) -> io::Result<()> {
    let (mut from, mut to) = (stream, stream);
    io::copy(&mut from, &mut to)?;
    stream.shutdown(Shutdown::Write)
}
