//! WebSocket (RFC 6455), server and client, over any byte stream.
//!
//! - [`frame`]: the sans-IO frame reader and writer; [`utf8`]: the incremental UTF-8 check.
//! - [`handshake`]: the opening handshake's checks and messages.
//! - [`WebSocket`]: the blocking connection (read, send, ping, close).
//! - Server side: [`upgrade`] answers a request the HTTP server parsed and takes the connection
//!   over after the 101; [`accept_raw`] reads the upgrade request itself, for a bare stream.
//! - Client side: [`connect`] over a stream already open, [`connect_url`] for a `ws://` URL.
//!
//! No extension is negotiated (so the reserved bits must stay clear) and no TLS is spoken.

pub mod frame;
pub mod handshake;
pub mod utf8;

mod client;
mod socket;

pub use client::{connect, connect_url, connect_url_with, parse_ws_url, WsUrl};
pub use socket::{is_valid_close_code, WebSocket, MAX_CLOSE_REASON};

use std::io::{self, Read, Write};
use std::time::Duration;

use crate::http::{Request, Response, UpgradeStream, Upgraded};

/// Limits and choices of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsConfig {
    /// The largest frame payload accepted; above it the connection fails with 1009.
    pub max_frame_size: usize,
    /// The largest message accepted (all its fragments); above it the connection fails with
    /// 1009.
    pub max_message_size: usize,
    /// The subprotocols a server speaks, most preferred first.
    pub protocols: Vec<String>,
    /// How long the close handshake waits for the peer (its close frame, then its TCP close).
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    /// 16 MiB frames and messages, no subprotocol, a 5-second close timeout.
    fn default() -> WsConfig {
        WsConfig {
            max_frame_size: 16 << 20,
            max_message_size: 16 << 20,
            protocols: Vec::new(),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// A message (RFC 6455 §5.6), or the peer's close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// The close: read, the peer's close code and reason (`None` when its close frame had no
    /// body); sent, the code and reason to close with.
    Close(Option<(u16, String)>),
}

/// Which end of the connection a [`WebSocket`] is: a client masks its frames, a server
/// requires masked frames and closes the TCP connection first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that accepted the connection.
    Server,
    /// The side that opened it.
    Client,
}

/// A byte stream a WebSocket runs over: `Read + Write`, plus the two socket calls the close
/// handshake needs. Both have do-nothing defaults, so any stream can opt in with an empty
/// `impl`; without a read timeout the close handshake waits for the peer without bound.
pub trait WsStream: Read + Write {
    /// As `TcpStream::set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// As `TcpStream::shutdown(Shutdown::Write)`.
    fn shutdown_write(&self) -> io::Result<()> {
        Ok(())
    }
}

impl WsStream for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl WsStream for netstack_runtime::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        netstack_runtime::TcpStream::set_read_timeout(self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl WsStream for Box<dyn UpgradeStream> {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UpgradeStream::set_read_timeout(&**self, timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        UpgradeStream::shutdown_write(&**self)
    }
}

impl<T: WsStream + ?Sized> WsStream for &mut T {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

/// Answers a WebSocket upgrade request the HTTP server parsed (RFC 6455 §4.2). If the request
/// is a valid upgrade, the answer is a 101 whose upgrade hook builds the [`WebSocket`] (the
/// bytes the server read past the request come first) and hands it to `on_open`, on the
/// connection's thread; else a 400, or a 426 naming version 13.
pub fn upgrade<F>(req: &Request, config: WsConfig, on_open: F) -> Response
where
    F: FnOnce(WebSocket<Box<dyn UpgradeStream>>) + Send + 'static,
{
    match handshake::check_request(req, &config.protocols) {
        Err(refusal) => refusal,
        Ok(accepted) => {
            let mut response = handshake::switching_protocols(&accepted);
            let protocol = accepted.protocol;
            response.on_upgrade = Some(Box::new(move |up: Upgraded| {
                let ws = WebSocket::from_upgraded(
                    up.stream,
                    Role::Server,
                    config,
                    protocol,
                    up.buffered,
                );
                on_open(ws)
            }));
            response
        }
    }
}

/// Accepts a WebSocket on a bare stream with the default configuration: see
/// [`accept_raw_with`].
pub fn accept_raw<S: WsStream>(stream: S) -> io::Result<WebSocket<S>> {
    accept_raw_with(stream, WsConfig::default())
}

/// Accepts a WebSocket on a bare stream (no HTTP server in front): reads the upgrade request
/// with a bounded head reader ([`handshake::MAX_HEAD_LEN`]), answers it, and returns the
/// connection. A request that is not a valid upgrade is answered with 400 or 426 and gives
/// `InvalidData`. Set a read timeout on the stream first to bound a slow client.
pub fn accept_raw_with<S: WsStream>(mut stream: S, config: WsConfig) -> io::Result<WebSocket<S>> {
    let (head, rest) = handshake::read_head(&mut stream)?;
    let refused = |stream: &mut S, response: Response| {
        let status = response.status;
        handshake::write_response(stream, &response)?;
        let _ = stream.shutdown_write();
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("WebSocket upgrade refused with {status}"),
        ))
    };
    let req = match handshake::parse_request_head(&head) {
        Ok(req) => req,
        Err(e) => return refused(&mut stream, Response::text(400, format!("{e}\n"))),
    };
    match handshake::check_request(&req, &config.protocols) {
        Ok(accepted) => {
            handshake::write_response(&mut stream, &handshake::switching_protocols(&accepted))?;
            Ok(WebSocket::from_upgraded(
                stream,
                Role::Server,
                config,
                accepted.protocol,
                rest,
            ))
        }
        Err(response) => refused(&mut stream, response),
    }
}
