//! Client tests against the server over `std::net` on 127.0.0.1: keep-alive reuse, chunked
//! uploads, redirects (bounded, method rules), a kept connection the server closed, HEAD, and
//! timeouts. Every wait has a deadline.

use std::io::{self, Cursor};
use std::thread;
use std::time::Duration;

use super::client::{std_connector, Client, ClientBody, ClientConfig, ClientRequest};
use super::server::{Server, ServerConfig};
use super::{Method, Request, Response, Router, Url};

fn routes() -> Router {
    Router::new()
        .route_any("/echo", |req: Request| {
            Response::with_body(200, "application/octet-stream", req.body)
                .header("X-Method", req.method.as_str())
        })
        .route(Method::Get, "/hello", |_req: Request| {
            Response::text(200, "hello")
        })
        .route_any("/to-hello", |_req: Request| {
            Response::new(302).header("Location", "/hello")
        })
        .route_any("/see-other", |_req: Request| {
            Response::new(303).header("Location", "/echo")
        })
        .route_any("/temporary", |_req: Request| {
            Response::new(307).header("Location", "echo")
        })
        .route_any("/loop", |_req: Request| {
            Response::new(301).header("Location", "/loop")
        })
        .route(Method::Get, "/slow", |_req: Request| {
            thread::sleep(Duration::from_millis(1500));
            Response::text(200, "late")
        })
}

fn server(config: ServerConfig) -> Server {
    Server::bind_std("127.0.0.1:0", routes(), config).unwrap()
}

fn base(s: &Server) -> String {
    format!("http://{}", s.local_addr().unwrap())
}

fn client() -> Client<impl super::Connector> {
    Client::new(std_connector(), ClientConfig::default())
}

#[test]
fn three_requests_to_one_host_share_one_kept_alive_connection() {
    let s = server(ServerConfig::default());
    let mut c = client();
    for i in 0..3 {
        let r = c.get(&format!("{}/hello", base(&s))).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.reused_connection, i > 0);
    }
    let st = c.stats();
    assert_eq!((st.connections_opened, st.connections_reused), (1, 2));
    assert_eq!(s.stats().connections_accepted, 1);
}

#[test]
fn a_chunked_upload_comes_back_whole_and_a_head_has_no_body() {
    let s = server(ServerConfig::default());
    let mut c = client();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut req = ClientRequest::new(
        Method::Post,
        Url::parse(&format!("{}/echo", base(&s))).unwrap(),
    );
    req.body = ClientBody::Chunked(Box::new(Cursor::new(data.clone())));
    let r = c.send(req).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == data, "{} of {} bytes", r.body.len(), data.len());
    let r = c
        .send(ClientRequest::new(
            Method::Head,
            Url::parse(&format!("{}/hello", base(&s))).unwrap(),
        ))
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.headers.get_str("content-length"), Some("5"));
    // The HEAD response left the connection usable.
    assert!(
        c.get(&format!("{}/hello", base(&s)))
            .unwrap()
            .reused_connection
    );
}

#[test]
fn redirects_are_followed_with_the_method_rules_and_bounded() {
    // RFC 9110 §15.4: 302/303 become GET without a body; 307 repeats method and body.
    let s = server(ServerConfig::default());
    let mut c = client();
    let r = c.get(&format!("{}/to-hello", base(&s))).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_eq!(r.redirects.len(), 1);
    assert_eq!(r.url.path(), "/hello");

    let post = |path: &str| {
        let mut req = ClientRequest::new(
            Method::Post,
            Url::parse(&format!("{}{path}", base(&s))).unwrap(),
        );
        req.body = ClientBody::Bytes(b"payload".to_vec());
        req
    };
    let r = c.send(post("/see-other")).unwrap();
    assert_eq!(r.headers.get_str("x-method"), Some("GET"));
    assert!(r.body.is_empty());
    let r = c.send(post("/temporary")).unwrap();
    assert_eq!(r.headers.get_str("x-method"), Some("POST"));
    assert_eq!(r.body, b"payload");

    let e = c.get(&format!("{}/loop", base(&s))).unwrap_err();
    assert!(e.to_string().contains("more than 10 redirects"), "{e}");

    let mut c = Client::new(
        std_connector(),
        ClientConfig {
            follow_redirects: false,
            ..ClientConfig::default()
        },
    );
    let r = c.get(&format!("{}/to-hello", base(&s))).unwrap();
    assert_eq!(r.status, 302, "not followed: the redirect is the answer");
    assert_eq!(r.headers.get_str("location"), Some("/hello"));
}

#[test]
fn a_kept_connection_the_server_closed_is_replaced_transparently() {
    let s = server(ServerConfig {
        idle_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    });
    let mut c = client();
    assert_eq!(c.get(&format!("{}/hello", base(&s))).unwrap().status, 200);
    thread::sleep(Duration::from_millis(1500));
    let r = c.get(&format!("{}/hello", base(&s))).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(c.stats().connections_opened, 2);
}

#[test]
fn a_silent_server_ends_in_a_timeout_error() {
    let s = server(ServerConfig::default());
    let mut c = Client::new(
        std_connector(),
        ClientConfig {
            io_timeout: Duration::from_millis(300),
            ..ClientConfig::default()
        },
    );
    let e = c.get(&format!("{}/slow", base(&s))).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
}

/// A server that answers one connection with `reply` whatever it asked, then closes it; its
/// base URL.
fn canned(reply: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(reply);
    });
    format!("http://{addr}")
}

#[test]
fn a_response_body_over_the_limit_is_refused() {
    let url = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    let mut c = Client::new(
        std_connector(),
        ClientConfig {
            limits: super::Limits {
                max_body: 10,
                ..super::Limits::default()
            },
            ..ClientConfig::default()
        },
    );
    let e = c.get(&format!("{url}/")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("over 10 bytes"), "{e}");
}

#[test]
fn a_malformed_response_head_and_a_body_cut_short_are_errors() {
    let url = canned(b"HTTP/1.1 200 OK\r\nBad Field: x\r\n\r\n");
    let e = client().get(&format!("{url}/")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("bad response head"), "{e}");

    let url = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this");
    let e = client().get(&format!("{url}/")).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
}
