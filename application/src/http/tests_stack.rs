//! The server over the stack's own sockets: two stacks joined by the in-memory link, the
//! server on one through the `Listen`/`Connection` impls in `stack_socket`, a client on the
//! other. No root needed.

use std::io::{Read, Write};
use std::time::Duration;

use netstack_runtime::{TcpListener, TcpStream};

use super::body::BodyFraming;
use super::request::{parse_response_head, Limits};
use super::server::{Server, ServerConfig};
use super::{Request, Response, Upgraded};

#[test]
fn the_server_runs_over_the_stacks_sockets_with_pipelining_and_upgrade() {
    let (server_stack, client_stack) = crate::two_stacks();
    let listener = TcpListener::bind(&server_stack, "192.0.2.2:80").unwrap();
    let server = Server::start(
        listener,
        |req: Request| {
            if req.path == "/upgrade" {
                let mut r = Response::new(101)
                    .header("Upgrade", "x")
                    .header("Connection", "Upgrade");
                r.on_upgrade = Some(Box::new(|mut up: Upgraded| {
                    let _ = up.stream.write_all(&up.buffered);
                    let _ = up.stream.write_all(b"|upgraded");
                    let _ = up.stream.shutdown_write();
                }));
                return r;
            }
            let mut r = Response::with_body(200, "text/plain", req.body);
            r.headers.append("X-Path", req.path.as_bytes());
            r
        },
        ServerConfig::default(),
    )
    .unwrap();

    let mut s = TcpStream::connect(&client_stack, "192.0.2.2:80").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nPOST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody\
          GET /upgrade HTTP/1.1\r\nHost: t\r\n\r\nleftover",
    )
    .unwrap();
    let mut wire = Vec::new();
    s.read_to_end(&mut wire).unwrap();
    let mut at = 0;
    for (status, path, body) in [(200, "/a", &b""[..]), (200, "/b", b"body"), (101, "", b"")] {
        let (head, used) = parse_response_head(&wire[at..], &Limits::default())
            .unwrap()
            .unwrap();
        at += used;
        assert_eq!(head.status, status);
        if status == 200 {
            assert_eq!(head.headers.get("x-path"), Some(path.as_bytes()));
            let BodyFraming::Length(n) = head.framing(super::Method::Get).unwrap() else {
                panic!("Content-Length expected");
            };
            assert_eq!(&wire[at..at + n as usize], body);
            at += n as usize;
        }
    }
    assert_eq!(&wire[at..], b"leftover|upgraded");
    drop(s);
    let stats = server.shutdown(Duration::from_secs(5));
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.upgrades, 1);
    client_stack.shutdown(Duration::from_secs(2)).unwrap();
    server_stack.shutdown(Duration::from_secs(2)).unwrap();
}
