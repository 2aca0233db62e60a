//! A TCP echo client over a TAP device: sends each line of stdin to an echo server and prints
//! what comes back.
//!
//! `echo_client [SERVER] [TAP] [CIDR]`, defaults `192.0.2.1:7`, `nstap0` and `192.0.2.3/24`.
//! It needs root or CAP_NET_ADMIN; a TAP it creates gets the kernel side 192.0.2.1 and is
//! brought up. Try it in a network namespace of your own, with the kernel as the server:
//!
//! ```text
//! cargo build -p netstack-runtime --examples
//! ip netns add demo
//! ip netns exec demo socat TCP-LISTEN:7,fork,reuseaddr EXEC:cat &
//! printf 'hello\nworld\n' | ip netns exec demo target/debug/examples/echo_client
//! ip netns del demo
//! ```

use std::io::{self, BufRead, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use netstack_runtime::TcpStream;

mod common;

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let server = args.next().unwrap_or_else(|| "192.0.2.1:7".into());
    let tap = args.next().unwrap_or_else(|| "nstap0".into());
    let cidr = args.next().unwrap_or_else(|| "192.0.2.3/24".into());
    let (stack, _) = common::stack_on_tap(&tap, &cidr)?;
    let mut stream = TcpStream::connect(&stack, server.as_str())?;
    // A server that stops answering ends the client with an error instead of a hang.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut echo = Vec::new();
    for line in io::stdin().lock().lines() {
        let line = line? + "\n";
        stream.write_all(line.as_bytes())?;
        echo.resize(line.len(), 0);
        stream.read_exact(&mut echo)?;
        print!("{}", String::from_utf8_lossy(&echo));
    }
    // FIN after the last line; the stack's shutdown waits for it to be sent.
    stream.shutdown(Shutdown::Write)?;
    drop(stream);
    stack.shutdown(Duration::from_secs(2))
}
