//! The client side of the opening handshake (RFC 6455 §4.1) and `ws://` URLs (§3).

use std::io;

use super::handshake;
use super::{Role, WebSocket, WsConfig, WsStream};
use crate::http::{Scheme, Url};

/// Opens a WebSocket over `stream` (already connected): sends the upgrade request for `path`
/// with `Host: host`, a random key and the offered `protocols`, and checks the answer (101,
/// the Upgrade and Connection tokens, the accept value, a subprotocol among those offered).
/// Bytes the server sent after its answer are read as the first frames. A refusal (any status
/// but 101) gives `ConnectionRefused`; a malformed or wrong answer `InvalidData`.
pub fn connect<S: WsStream>(
    mut stream: S,
    host: &str,
    path: &str,
    protocols: &[&str],
    config: WsConfig,
) -> io::Result<WebSocket<S>> {
    let key = handshake::new_key()?;
    stream.write_all(&handshake::client_request(host, path, &key, protocols))?;
    stream.flush()?;
    let (head, rest) = handshake::read_head(&mut stream)?;
    let (status, headers) = handshake::parse_response_head(&head)?;
    let protocol = handshake::check_response(status, &headers, &key, protocols)?;
    Ok(WebSocket::from_upgraded(
        stream,
        Role::Client,
        config,
        protocol,
        rest,
    ))
}

/// Opens a WebSocket to a `ws://host[:port][/path]` URL with the default configuration and no
/// subprotocol; `connector(host, port)` opens the TCP connection (over `std::net` or the
/// stack).
pub fn connect_url<S, C>(url: &str, connector: C) -> io::Result<WebSocket<S>>
where
    S: WsStream,
    C: FnOnce(&str, u16) -> io::Result<S>,
{
    connect_url_with(url, &[], WsConfig::default(), connector)
}

/// As [`connect_url`], offering `protocols` and with `config`.
pub fn connect_url_with<S, C>(
    url: &str,
    protocols: &[&str],
    config: WsConfig,
    connector: C,
) -> io::Result<WebSocket<S>>
where
    S: WsStream,
    C: FnOnce(&str, u16) -> io::Result<S>,
{
    let url = parse_ws_url(url)?;
    let stream = connector(&url.host, url.port)?;
    connect(stream, &url.authority(), &url.target, protocols, config)
}

/// Parses a `ws://` URL (RFC 6455 §3) into the HTTP client's [`Url`]. `wss://` is refused
/// with `Unsupported` (no TLS here); anything else (another scheme, a fragment, a missing host
/// or a bad port) with `InvalidInput`.
pub fn parse_ws_url(url: &str) -> io::Result<Url> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("{why}: {url}"));
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    if scheme.eq_ignore_ascii_case("wss") {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs TLS, which this client does not speak",
        ));
    }
    if url.contains('#') {
        return Err(invalid("a WebSocket URL has no fragment"));
    }
    let parsed = Url::parse(url).map_err(|e| invalid(&e.0))?;
    if parsed.scheme != Scheme::Ws {
        return Err(invalid("not a ws:// URL"));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::Message;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn ws_urls_split_into_host_port_and_resource() {
        let u = parse_ws_url("ws://example.test/chat?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authority(), u.target.as_str()),
            ("example.test", 80, "example.test".to_string(), "/chat?x=1")
        );
        let u = parse_ws_url("ws://127.0.0.1:9001").unwrap();
        assert_eq!(
            (u.port, u.authority(), u.target.as_str()),
            (9001, "127.0.0.1:9001".to_string(), "/")
        );
        assert_eq!(
            parse_ws_url("wss://a/").unwrap_err().kind(),
            io::ErrorKind::Unsupported
        );
        for bad in [
            "http://a/",
            "ws://",
            "ws://a:99999/",
            "ws://a/#frag",
            "ws:/a",
            "ws://u@a/",
        ] {
            assert_eq!(
                parse_ws_url(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad}"
            );
        }
    }

    fn payloads() -> Vec<Message> {
        let mut v = Vec::new();
        for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            v.push(Message::Text(text));
            v.push(Message::Binary((0..len).map(|i| (i * 7) as u8).collect()));
        }
        v.push(Message::Text("κόσμε €𝄞".repeat(1000)));
        v
    }

    #[test]
    fn our_client_echoes_through_a_tungstenite_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut ws = tungstenite::accept(stream).unwrap();
            loop {
                match ws.read() {
                    Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                        ws.send(m).unwrap()
                    }
                    Ok(tungstenite::Message::Close(_)) => {
                        // Let tungstenite answer the close, then wait for our TCP close.
                        let _ = ws.flush();
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let url = format!("ws://{addr}/echo");
        let mut ws = connect_url(&url, |host, port| {
            let s = TcpStream::connect((host, port))?;
            s.set_read_timeout(Some(Duration::from_secs(20)))?;
            Ok(s)
        })
        .unwrap();
        for m in payloads() {
            ws.send(m.clone()).unwrap();
            assert_eq!(ws.read_message().unwrap(), m);
        }
        ws.ping(b"hi").unwrap();
        ws.send_text("after ping").unwrap();
        assert_eq!(
            ws.read_message().unwrap(),
            Message::Text("after ping".into())
        );
        ws.close(1000, "bye").unwrap();
        assert!(ws.is_closed());
        server.join().unwrap();
    }

    #[test]
    fn a_tungstenite_client_echoes_through_our_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut ws = crate::ws::accept_raw(stream).unwrap();
            loop {
                match ws.read_message().unwrap() {
                    Message::Close(c) => return c,
                    m => ws.send(m).unwrap(),
                }
            }
        });
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (mut ws, response) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
        assert_eq!(response.status(), 101);
        for m in payloads() {
            let tm = match &m {
                Message::Text(t) => tungstenite::Message::text(t.clone()),
                Message::Binary(b) => tungstenite::Message::binary(b.clone()),
                Message::Close(_) => unreachable!(),
            };
            ws.send(tm.clone()).unwrap();
            assert_eq!(ws.read().unwrap(), tm);
        }
        ws.close(Some(tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::Away,
            reason: "done".into(),
        }))
        .unwrap();
        // tungstenite reads our echoed close, then the server closes the TCP connection.
        loop {
            match ws.read() {
                Ok(tungstenite::Message::Close(Some(c))) => assert_eq!(u16::from(c.code), 1001),
                Ok(_) => {}
                Err(tungstenite::Error::ConnectionClosed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(server.join().unwrap(), Some((1001, "done".to_string())));
    }
}
