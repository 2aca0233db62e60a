//! Server tests over `std::net` on 127.0.0.1: pipelining, keep-alive, 100-continue, timeouts,
//! 1,000 concurrent keep-alive connections, the 503 over the connection limit, rejections on
//! the wire, upgrades and shutdown. Every wait has a deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::body::{BodyFraming, ChunkedDecoder};
use super::request::{parse_response_head, Limits, ParseError, ResponseHead};
use super::server::{Server, ServerConfig};
use super::{Body, Method, Request, Response};

const DEADLINE: Duration = Duration::from_secs(20);

/// Answers 200 with the request body, and the path in `X-Path`.
fn echo(req: Request) -> Response {
    let mut r = Response::with_body(200, "application/octet-stream", req.body);
    r.headers.append("X-Path", req.path.as_bytes());
    r
}

fn start(config: ServerConfig) -> Server {
    Server::bind_std("127.0.0.1:0", echo, config).unwrap()
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Reads one response from `s`, keeping bytes past it in `buf`. Panics at EOF or timeout.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, method: Method) -> (ResponseHead, Vec<u8>) {
    let limits = Limits::default();
    let (head, used) = loop {
        if let Some(x) = parse_response_head(buf, &limits).unwrap() {
            break x;
        }
        fill(s, buf);
    };
    buf.drain(..used);
    let body = match head.framing(method).unwrap() {
        BodyFraming::None => Vec::new(),
        BodyFraming::Length(n) => {
            while (buf.len() as u64) < n {
                fill(s, buf);
            }
            buf.drain(..n as usize).collect()
        }
        BodyFraming::Chunked => {
            let mut dec = ChunkedDecoder::new(&limits);
            let mut body = Vec::new();
            loop {
                let (used, done) = dec.decode(buf, &mut body).unwrap();
                buf.drain(..used);
                if done {
                    break body;
                }
                fill(s, buf);
            }
        }
        BodyFraming::UntilClose => {
            let mut rest = std::mem::take(buf);
            s.read_to_end(&mut rest).unwrap();
            rest
        }
    };
    (head, body)
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).expect("read before the deadline");
    assert!(
        n > 0,
        "connection closed; have {:?}",
        String::from_utf8_lossy(buf)
    );
    buf.extend_from_slice(&chunk[..n]);
}

/// True when the server closes `s` (EOF or reset) before the deadline.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

#[test]
fn three_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    let mut wire = format!(
        "{}{}",
        get("/one"),
        "POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
    );
    wire.push_str(&get("/three"));
    s.write_all(wire.as_bytes()).unwrap();
    let mut buf = Vec::new();
    for (path, body) in [("/one", &b""[..]), ("/two", b"abc"), ("/three", b"")] {
        let (head, got) = read_response(&mut s, &mut buf, Method::Get);
        assert_eq!(head.status, 200);
        assert_eq!(head.headers.get("x-path"), Some(path.as_bytes()));
        assert_eq!(got, body);
    }
    let stats = server.shutdown(DEADLINE);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.responses_of_class(2), 3);
}

#[test]
fn a_kept_alive_connection_serves_requests_one_after_another() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    let mut buf = Vec::new();
    for i in 0..5 {
        s.write_all(get(&format!("/{i}")).as_bytes()).unwrap();
        let (head, _) = read_response(&mut s, &mut buf, Method::Get);
        assert_eq!(head.status, 200);
        assert!(head.keep_alive());
        assert!(head.headers.get("date").is_some());
    }
    assert_eq!(server.stats().connections_accepted, 1);
    // `Connection: close` ends it (RFC 9112 §9.6).
    s.write_all(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s, &mut buf, Method::Get);
    assert!(!head.keep_alive());
    assert!(closed_by_server(&mut s));
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    let mut buf = Vec::new();
    s.write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s, &mut buf, Method::Get);
    assert_eq!(head.headers.get("connection"), Some(&b"keep-alive"[..]));
    s.write_all(b"GET /b HTTP/1.0\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut s, &mut buf, Method::Get);
    assert_eq!(head.status, 200);
    assert_eq!(head.headers.get("connection"), Some(&b"close"[..]));
    assert!(closed_by_server(&mut s));
}

#[test]
fn expect_100_continue_gets_100_before_the_body_is_read() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    s.write_all(
        b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    let (interim, _) = read_response(&mut s, &mut buf, Method::Put);
    assert_eq!(interim.status, 100);
    s.write_all(b"hello").unwrap();
    let (head, body) = read_response(&mut s, &mut buf, Method::Put);
    assert_eq!(head.status, 200);
    assert_eq!(body, b"hello");
    // Another expectation: 417 and close.
    let mut s = connect(&server);
    s.write_all(b"PUT / HTTP/1.1\r\nHost: t\r\nExpect: tea\r\nContent-Length: 1\r\n\r\nx")
        .unwrap();
    let (head, _) = read_response(&mut s, &mut Vec::new(), Method::Put);
    assert_eq!(head.status, 417);
    assert!(closed_by_server(&mut s));
}

#[test]
fn head_gets_the_fields_without_the_body() {
    let server = Server::bind_std(
        "127.0.0.1:0",
        |_req: Request| Response::text(200, "twelve bytes"),
        ServerConfig::default(),
    )
    .unwrap();
    let mut s = connect(&server);
    s.write_all(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    s.write_all(get("/").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut s, &mut buf, Method::Head);
    assert_eq!(head.headers.get("content-length"), Some(&b"12"[..]));
    assert!(body.is_empty());
    let (_, body) = read_response(&mut s, &mut buf, Method::Get);
    assert_eq!(body, b"twelve bytes");
}

#[test]
fn chunked_request_bodies_are_decoded_and_trailers_dropped() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    s.write_all(b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n")
        .unwrap();
    s.write_all(get("/after").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_response(&mut s, &mut buf, Method::Post);
    assert_eq!(head.status, 200);
    assert_eq!(body, b"abcde");
    let (head, _) = read_response(&mut s, &mut buf, Method::Get);
    assert_eq!(head.headers.get("x-path"), Some(&b"/after"[..]));
}

#[test]
fn a_request_written_one_byte_at_a_time_is_read_whole() {
    let server = start(ServerConfig::default());
    let mut s = connect(&server);
    s.set_nodelay(true).unwrap();
    let wire = b"POST /slow HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n";
    for b in wire {
        s.write_all(&[*b]).unwrap();
        thread::sleep(Duration::from_micros(200));
    }
    let (head, body) = read_response(&mut s, &mut Vec::new(), Method::Post);
    assert_eq!(head.status, 200);
    assert_eq!(body, b"body");
}

#[test]
fn malformed_requests_get_their_status_and_the_connection_closes() {
    let server = start(ServerConfig {
        limits: Limits {
            max_body: 100,
            ..Limits::default()
        },
        ..ServerConfig::default()
    });
    let cases: [(&[u8], u16); 7] = [
        (b"GET / HTTP/1.1\r\nHost : t\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505),
        (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ];
    for (raw, status) in cases {
        let mut s = connect(&server);
        s.write_all(raw).unwrap();
        // A pipelined request after a bad one is never served.
        let _ = s.write_all(get("/never").as_bytes());
        let (head, _) = read_response(&mut s, &mut Vec::new(), Method::Get);
        assert_eq!(head.status, status, "{:?}", String::from_utf8_lossy(raw));
        assert!(!head.keep_alive());
        assert!(closed_by_server(&mut s));
    }
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', 9000));
    let mut s = connect(&server);
    s.write_all(&long).unwrap();
    let (head, _) = read_response(&mut s, &mut Vec::new(), Method::Get);
    assert_eq!(head.status, 414);
    let stats = server.shutdown(DEADLINE);
    assert_eq!(stats.parse_errors_of(ParseError::SpaceBeforeColon), 1);
    assert_eq!(stats.parse_errors_of(ParseError::BodyTooLarge), 1);
    assert_eq!(stats.parse_errors_of(ParseError::InvalidChunk), 1);
    assert_eq!(stats.parse_errors_of(ParseError::RequestLineTooLong), 1);
    assert_eq!(
        stats.requests, 1,
        "only the bad chunked request had a valid head"
    );
}

#[test]
fn a_slowloris_client_is_closed_at_the_header_timeout_with_408() {
    let server = start(ServerConfig {
        header_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    });
    let mut s = connect(&server);
    let started = Instant::now();
    let feeder = s.try_clone().unwrap();
    let drip = thread::spawn(move || {
        let mut feeder = feeder;
        // One byte every 50 ms: each read makes progress, the head never completes in time.
        for b in b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "
            .iter()
            .chain(std::iter::repeat(&b'a'))
        {
            if feeder.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(5) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let (head, _) = read_response(&mut s, &mut Vec::new(), Method::Get);
    assert_eq!(head.status, 408);
    assert!(closed_by_server(&mut s));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drip.join().unwrap();
    assert_eq!(server.stats().header_timeouts, 1);
}

#[test]
fn a_client_trickling_its_body_is_closed_at_the_body_timeout() {
    let server = start(ServerConfig {
        body_timeout: Duration::from_millis(400),
        ..ServerConfig::default()
    });
    let mut s = connect(&server);
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let feeder = s.try_clone().unwrap();
    let drip = thread::spawn(move || {
        let mut feeder = feeder;
        while started.elapsed() < Duration::from_secs(5) && feeder.write_all(b"x").is_ok() {
            thread::sleep(Duration::from_millis(50));
        }
    });
    assert!(closed_by_server(&mut s));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drip.join().unwrap();
    assert_eq!(server.stats().body_timeouts, 1);
}

#[test]
fn an_idle_connection_is_closed_at_the_idle_timeout() {
    let server = start(ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut s = connect(&server);
    s.write_all(get("/").as_bytes()).unwrap();
    let mut buf = Vec::new();
    read_response(&mut s, &mut buf, Method::Get);
    let started = Instant::now();
    assert!(closed_by_server(&mut s));
    assert!(started.elapsed() < Duration::from_secs(3));
    let deadline = Instant::now() + DEADLINE;
    while server.stats().idle_timeouts < 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.stats().idle_timeouts, 1);
}

#[test]
fn a_thousand_concurrent_keep_alive_connections_are_served_at_once() {
    const CONNS: usize = 1000;
    const THREADS: usize = 8;
    let server = start(ServerConfig {
        max_connections: 1100,
        ..ServerConfig::default()
    });
    let addr = server.local_addr().unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(std::sync::Barrier::new(THREADS + 1));
    let done_gate = Arc::new(std::sync::Barrier::new(THREADS + 1));
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let opened = opened.clone();
            let gate = gate.clone();
            let done_gate = done_gate.clone();
            thread::spawn(move || {
                let mut conns: Vec<(TcpStream, Vec<u8>)> = (0..CONNS / THREADS)
                    .map(|_| {
                        let s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(DEADLINE)).unwrap();
                        opened.fetch_add(1, Ordering::SeqCst);
                        (s, Vec::new())
                    })
                    .collect();
                // Two rounds of requests on every connection, all of them open meanwhile.
                for round in 0..2 {
                    for (i, (s, _)) in conns.iter_mut().enumerate() {
                        s.write_all(get(&format!("/{t}/{i}/{round}")).as_bytes())
                            .unwrap();
                    }
                    for (i, (s, buf)) in conns.iter_mut().enumerate() {
                        let (head, _) = read_response(s, buf, Method::Get);
                        assert_eq!(head.status, 200);
                        let path = format!("/{t}/{i}/{round}");
                        assert_eq!(head.headers.get("x-path"), Some(path.as_bytes()));
                    }
                    if round == 0 {
                        gate.wait();
                    }
                }
                done_gate.wait();
                drop(conns);
            })
        })
        .collect();
    gate.wait();
    // Every connection has had an answer and is still open: all are served at once.
    assert_eq!(opened.load(Ordering::SeqCst), CONNS);
    assert_eq!(server.stats().connections_active, CONNS as u64);
    done_gate.wait();
    for c in clients {
        c.join().unwrap();
    }
    let stats = server.shutdown(DEADLINE);
    assert_eq!(stats.requests, 2 * CONNS as u64);
    assert_eq!(stats.responses_of_class(2), 2 * CONNS as u64);
    assert_eq!(stats.rejected_over_limit, 0);
    assert_eq!(stats.connections_active, 0);
}

#[test]
fn past_the_connection_limit_new_connections_get_503_and_close() {
    let server = start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&server);
        s.write_all(get("/").as_bytes()).unwrap();
        read_response(&mut s, &mut Vec::new(), Method::Get);
        held.push(s);
    }
    let mut extra = connect(&server);
    let _ = extra.write_all(get("/").as_bytes());
    let (head, _) = read_response(&mut extra, &mut Vec::new(), Method::Get);
    assert_eq!(head.status, 503);
    assert_eq!(head.headers.get("connection"), Some(&b"close"[..]));
    assert!(closed_by_server(&mut extra));
    assert_eq!(server.stats().rejected_over_limit, 1);
    // Once one closes, a new connection is served again.
    drop(held.pop());
    let deadline = Instant::now() + DEADLINE;
    while server.stats().connections_active > 1 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    let mut s = connect(&server);
    s.write_all(get("/").as_bytes()).unwrap();
    assert_eq!(
        read_response(&mut s, &mut Vec::new(), Method::Get).0.status,
        200
    );
    let stats = server.shutdown(DEADLINE);
    assert_eq!(stats.responses_of_class(5), 1);
}

#[test]
fn a_101_response_hands_the_connection_and_the_bytes_read_past_the_request_to_the_upgrade() {
    let server = Server::bind_std(
        "127.0.0.1:0",
        |_req: Request| {
            let mut r = Response::new(101)
                .header("Upgrade", "echo")
                .header("Connection", "Upgrade");
            r.on_upgrade = Some(Box::new(|mut up: super::Upgraded| {
                // Echo what was buffered, then everything else, upper-cased.
                let mut data = up.buffered.clone();
                let mut chunk = [0u8; 256];
                while !data.ends_with(b"END") {
                    match up.stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = up.stream.write_all(&data.to_ascii_uppercase());
                let _ = up.stream.shutdown_write();
            }));
            r
        },
        ServerConfig::default(),
    )
    .unwrap();
    let mut s = connect(&server);
    s.write_all(
        b"GET /up HTTP/1.1\r\nHost: t\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nearly-",
    )
    .unwrap();
    let mut buf = Vec::new();
    let (head, _) = read_response(&mut s, &mut buf, Method::Get);
    assert_eq!(head.status, 101);
    assert_eq!(head.headers.get("upgrade"), Some(&b"echo"[..]));
    assert!(head.headers.get("content-length").is_none());
    s.write_all(b"late-END").unwrap();
    let mut rest = buf;
    s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"EARLY-LATE-END");
    assert_eq!(server.stats().upgrades, 1);
}

#[test]
fn shutdown_stops_accepting_and_lets_a_request_in_progress_finish() {
    let server = Server::bind_std(
        "127.0.0.1:0",
        |req: Request| {
            thread::sleep(Duration::from_millis(300));
            Response::with_body(200, "text/plain", req.body)
        },
        ServerConfig::default(),
    )
    .unwrap();
    let addr = server.local_addr().unwrap();
    let mut s = connect(&server);
    s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    thread::sleep(Duration::from_millis(100));
    let idle = connect(&server);
    let handle = server.shutdown_handle();
    let stopper = thread::spawn(move || server.shutdown(DEADLINE));
    let (head, body) = read_response(&mut s, &mut Vec::new(), Method::Post);
    assert_eq!(head.status, 200);
    assert_eq!(body, b"ok");
    assert!(!head.keep_alive(), "the last response says close");
    let stats = stopper.join().unwrap();
    assert_eq!(
        stats.connections_active, 0,
        "the idle connection was closed too"
    );
    drop(idle);
    handle.shutdown();
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "nothing listens any more"
    );
}

#[test]
fn a_panicking_handler_gets_500_and_the_server_goes_on() {
    let server = Server::bind_std(
        "127.0.0.1:0",
        |req: Request| {
            if req.path == "/boom" {
                panic!("handler failure (expected by the test)");
            }
            Response {
                body: Body::Reader {
                    reader: Box::new(&b"streamed"[..]),
                    len: None,
                },
                ..Response::new(200)
            }
        },
        ServerConfig::default(),
    )
    .unwrap();
    let mut s = connect(&server);
    s.write_all(get("/boom").as_bytes()).unwrap();
    assert_eq!(
        read_response(&mut s, &mut Vec::new(), Method::Get).0.status,
        500
    );
    let mut s = connect(&server);
    s.write_all(get("/fine").as_bytes()).unwrap();
    let (head, body) = read_response(&mut s, &mut Vec::new(), Method::Get);
    assert_eq!(head.headers.get("transfer-encoding"), Some(&b"chunked"[..]));
    assert_eq!(body, b"streamed");
    assert_eq!(server.stats().handler_panics, 1);
}
