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

pub use client::{connect, connect_url, connect_url_with, parse_ws_url};
pub use socket::{is_valid_close_code, WebSocket, MAX_CLOSE_REASON};

use std::io;
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

/// A byte stream a WebSocket runs over: the HTTP upgrade's stream trait (`Read + Write +
/// Send` plus the read timeout and the write shutdown the close handshake needs), implemented
/// for both `TcpStream`s, boxed streams and `&mut` references.
pub use crate::http::UpgradeStream as WsStream;

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
        handshake::write_response(stream, response)?;
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
            handshake::write_response(&mut stream, handshake::switching_protocols(&accepted))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use std::io::{Cursor, Read, Write};
    use std::sync::{Arc, Mutex};

    /// An upgraded connection: prepared input, shared output.
    struct Conn {
        input: Cursor<Vec<u8>>,
        output: Arc<Mutex<Vec<u8>>>,
    }

    impl Read for Conn {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Conn {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl UpgradeStream for Conn {
        fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
        fn shutdown_write(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn masked(opcode: frame::OpCode, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        frame::write_frame(&mut out, true, opcode, Some([1, 2, 3, 4]), payload);
        out
    }

    fn upgrade_request() -> Request {
        let mut r = Request::new(Method::Get, "/ws");
        r.headers.append("Host", "192.0.2.2");
        r.headers.append("Upgrade", "websocket");
        r.headers.append("Connection", "keep-alive, Upgrade");
        r.headers
            .append("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
        r.headers.append("Sec-WebSocket-Version", "13");
        r.headers.append("Sec-WebSocket-Protocol", "b, a");
        r
    }

    #[test]
    fn upgrade_answers_101_and_its_hook_opens_the_socket_with_the_buffered_bytes_first() {
        let config = WsConfig {
            protocols: vec!["a".into(), "b".into()],
            ..WsConfig::default()
        };
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let response = upgrade(&upgrade_request(), config, move |mut ws| {
            assert_eq!(ws.protocol(), Some("a"));
            while let Ok(m) = ws.read_message() {
                seen.lock().unwrap().push(m);
            }
        });
        assert_eq!(response.status, 101);
        assert_eq!(
            response.headers.get("Sec-WebSocket-Accept"),
            Some(&b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="[..])
        );
        assert_eq!(
            response.headers.get("Sec-WebSocket-Protocol"),
            Some(&b"a"[..])
        );
        // The server read the first frame together with the request; the second comes later.
        let mut rest = masked(frame::OpCode::Text, b"second");
        rest.extend(masked(frame::OpCode::Close, &1000u16.to_be_bytes()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let hook = response.on_upgrade.expect("an upgrade hook");
        hook(Upgraded {
            buffered: masked(frame::OpCode::Text, b"first"),
            stream: Box::new(Conn {
                input: Cursor::new(rest),
                output: output.clone(),
            }),
        });
        assert_eq!(
            *got.lock().unwrap(),
            vec![
                Message::Text("first".into()),
                Message::Text("second".into()),
                Message::Close(Some((1000, String::new())))
            ]
        );
        // The close reply, unmasked, echoing 1000.
        assert_eq!(*output.lock().unwrap(), [0x88, 0x02, 0x03, 0xE8]);
    }

    #[test]
    fn upgrade_refuses_a_bad_request_without_a_hook() {
        let mut r = upgrade_request();
        r.headers.set("Sec-WebSocket-Version", "7");
        let response = upgrade(&r, WsConfig::default(), |_| unreachable!());
        assert_eq!(response.status, 426);
        assert!(response.on_upgrade.is_none());
    }

    #[test]
    fn accept_raw_answers_a_bad_upgrade_with_its_status_and_fails() {
        let output = Arc::new(Mutex::new(Vec::new()));
        let conn = Conn {
            input: Cursor::new(
                b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                    .to_vec(),
            ),
            output: output.clone(),
        };
        let err = accept_raw(conn).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let written = String::from_utf8(output.lock().unwrap().clone()).unwrap();
        assert!(
            written.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
            "{written}"
        );
        assert!(written.contains("Sec-WebSocket-Version: 13\r\n"));
    }

    #[test]
    fn accept_raw_answers_101_and_reads_frames_sent_with_the_request() {
        let mut input =
            b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec();
        input.extend(masked(frame::OpCode::Binary, &[7; 300]));
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut ws = accept_raw(Conn {
            input: Cursor::new(input),
            output: output.clone(),
        })
        .unwrap();
        let written = String::from_utf8(output.lock().unwrap().clone()).unwrap();
        assert!(
            written.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{written}"
        );
        assert!(written.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!written.contains("Content-Length"));
        assert_eq!(ws.read_message().unwrap(), Message::Binary(vec![7; 300]));
    }
}
