//! A WebSocket echo server over `std::net`, one thread per connection: every text and binary
//! message comes back as it arrived. It is what the Autobahn testsuite's fuzzing client runs
//! against (`wstest -m fuzzingclient` with `"url": "ws://127.0.0.1:9001"`).
//!
//! `ws_echo [--addr ADDR]`, default `127.0.0.1:9001`.
//!
//! ```text
//! cargo run -p netstack-application --example ws_echo -- --addr 127.0.0.1:9001
//! ```

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use netstack_application::ws::{self, Message};

/// How long the handshake may take, and how long a connection may stay silent.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

fn main() -> io::Result<()> {
    let mut addr = "127.0.0.1:9001".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" | "-a" => {
                addr = args.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "--addr needs a value")
                })?
            }
            "--help" | "-h" => {
                println!("ws_echo [--addr ADDR]   WebSocket echo server, default 127.0.0.1:9001");
                return Ok(());
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unknown argument {other}; try --help"),
                ));
            }
        }
    }
    let listener = TcpListener::bind(&addr)?;
    eprintln!("ws_echo: listening on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    if let Err(e) = serve(stream) {
                        eprintln!("ws_echo: {e}");
                    }
                });
            }
            Err(e) => eprintln!("ws_echo: accept: {e}"),
        }
    }
    Ok(())
}

fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut ws = ws::accept_raw(stream)?;
    ws.get_ref().set_read_timeout(Some(IDLE_TIMEOUT))?;
    loop {
        match ws.read_message() {
            Ok(Message::Close(_)) => return Ok(()),
            Ok(m) => ws.send(m)?,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return ws.close(1001, "idle");
            }
            Err(e) => return Err(e),
        }
    }
}
