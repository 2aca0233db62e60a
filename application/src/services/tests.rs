//! The services on a stack, with a second stack as the client, joined by the in-memory link.
//! Stack A (192.0.2.2) runs the services, stack B (192.0.2.3) the clients. Every wait has a
//! deadline.

use super::*;
use crate::dns::tcp::{read_message, write_message};
use crate::dns::{demo_zone, Catalog, Message, Question, Rcode, RecordType};
use netstack_runtime::Stack;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::thread;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const ECHO: u16 = 7;
const DISCARD: u16 = 9;
const CHARGEN: u16 = 19;
const DNS: u16 = 53;
/// How long a client waits for any one thing from a service.
const DEADLINE: Duration = Duration::from_secs(10);

fn stacks() -> (Stack, Stack) {
    crate::two_stacks()
}

fn dns_service() -> DnsService {
    let mut catalog = Catalog::new();
    catalog.insert(demo_zone(A));
    DnsService::new(DNS, catalog, vec![])
}

fn all_services(dns: DnsService) -> ServiceConfig {
    ServiceConfig {
        echo: Some(ECHO),
        discard: Some(DISCARD),
        chargen: Some(CHARGEN),
        dns: Some(dns),
        http: None,
    }
}

fn connect(client: &Stack, port: u16) -> TcpStream {
    let c = TcpStream::connect_timeout(client, &SocketAddr::from((A, port)), DEADLINE).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.set_write_timeout(Some(DEADLINE)).unwrap();
    c
}

fn counters(list: &[(String, u64)]) -> BTreeMap<String, u64> {
    list.iter().cloned().collect()
}

/// Runs `f` on a thread and waits at most `secs` for it: a hang fails the test naming `what`.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

/// Reads until the end of the stream: `Ok(bytes)` after a FIN, `Err` (with what came before)
/// after a reset or a timeout.
fn read_to_end(mut c: &TcpStream) -> Result<Vec<u8>, (io::Error, usize)> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return Err((e, got.len())),
        }
    }
}

fn is_chargen_text(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|&b| (b' '..=b'~').contains(&b) || b == b'\r' || b == b'\n')
}

#[test]
fn echo_discard_and_chargen_answer_over_udp_and_tcp() {
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let udp = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = [0u8; 2048];
    udp.send_to(b"echo 862", (A, ECHO)).unwrap();
    let (n, from) = udp.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from),
        (&b"echo 862"[..], SocketAddr::from((A, ECHO)))
    );
    udp.send_to(b"anything", (A, CHARGEN)).unwrap();
    let (n, _) = udp.recv_from(&mut buf).unwrap();
    assert!(n <= CHARGEN_MAX && is_chargen_text(&buf[..n]));
    udp.send_to(b"gone", (A, DISCARD)).unwrap();

    let mut echo = connect(&b, ECHO);
    echo.write_all(b"hello tcp").unwrap();
    let mut back = [0u8; 9];
    echo.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello tcp");
    echo.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&echo).unwrap(), b"", "FIN after the echo");

    let mut discard = connect(&b, DISCARD);
    discard.write_all(&[7u8; 100_000]).unwrap();
    discard.shutdown(Shutdown::Write).unwrap();
    assert_eq!(
        read_to_end(&discard).unwrap(),
        b"",
        "discard sends nothing, then FIN"
    );

    let stopped = services.stop(Instant::now() + DEADLINE);
    assert_eq!(stopped.unfinished, Vec::<String>::new());
    let c = counters(&stopped.counters);
    assert_eq!(c["echo.udp_datagrams"], 1);
    assert_eq!(c["chargen.udp_datagrams"], 1);
    assert_eq!((c["discard.udp_datagrams"], c["discard.udp_bytes"]), (1, 4));
    assert_eq!(c["echo.tcp_bytes"], 9);
    assert_eq!(c["discard.tcp_bytes"], 100_000);
    assert_eq!((c["tcp.connections"], c["tcp.connections_refused"]), (2, 0));
}

#[test]
fn chargen_discards_what_the_client_sends_and_closes_with_fin() {
    // RFC 864: data the client sends is thrown away, and the stream goes on until the client
    // closes. A server that never reads lets its receive window fill: the client's writes
    // stall, and closing with unread data turns the close into a RST.
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let c = connect(&b, CHARGEN);
    const SENT: usize = 2 << 20;
    let writer = c.try_clone().unwrap();
    let wrote = thread::spawn(move || {
        let r = (&writer).write_all(&vec![b'x'; SENT]);
        // Our side is done: the chargen service must now end the stream with a FIN.
        let _ = writer.shutdown(Shutdown::Write);
        r
    });
    let received = within(30, "the chargen stream's end", move || read_to_end(&c));
    let received = received.unwrap_or_else(|(e, n)| {
        panic!(
            "chargen ended in {e} ({:?}) after {n} bytes, not a FIN",
            e.kind()
        )
    });
    wrote
        .join()
        .unwrap()
        .expect("the client's 2 MiB were all taken: chargen reads what it is sent");
    assert!(is_chargen_text(&received), "chargen sent other than lines");
    assert!(!received.is_empty());
    let stopped = services.stop(Instant::now() + DEADLINE);
    let counts = counters(&stopped.counters);
    assert_eq!(counts["chargen.tcp_discarded_bytes"], SENT as u64);
    assert_eq!(counts["chargen.tcp_bytes"], received.len() as u64);
}

#[test]
fn stop_joins_every_connection_thread_before_it_returns() {
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = connect(&b, ECHO);
        c.write_all(b"x").unwrap();
        c.read_exact(&mut [0u8; 1]).unwrap(); // served: its thread runs
        clients.push(c);
    }
    // A chargen client that never reads: the service's writer waits on a full window.
    let chargen = connect(&b, CHARGEN);
    let mut first = [0u8; 1];
    (&chargen).read_exact(&mut first).unwrap();
    // An idle DNS-over-TCP connection.
    let mut dns = connect(&b, DNS);
    let q = Message::query(
        1,
        Question::new("demo.test".parse().unwrap(), RecordType::A),
    );
    write_message(&mut dns, &q.emit().unwrap()).unwrap();
    read_message(&mut dns).unwrap().unwrap();
    thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let stopped = services.stop(started + DEADLINE);
    let took = started.elapsed();
    let c = counters(&stopped.counters);
    assert_eq!(stopped.unfinished, Vec::<String>::new());
    assert_eq!(
        (c["tcp.connections_open"], c["dns.tcp_connections_open"]),
        (0, 0),
        "stop returned while connection threads still ran: {c:?}"
    );
    assert_eq!((c["tcp.connections"], c["dns.tcp_connections"]), (4, 1));
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    // Each connection was closed in order by its thread.
    for c in &clients {
        assert_eq!(read_to_end(c).unwrap(), b"", "echo: FIN on stop");
    }
    assert_eq!(read_message(&mut dns).unwrap(), None, "dns: FIN on stop");
}

#[test]
fn counters_are_read_after_every_connection_thread_ended() {
    // The chargen thread counts what it sends until it sees the stop flag: counters read
    // before the threads ended would miss the last of it.
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let c = connect(&b, CHARGEN);
    let (progress_tx, progress) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut total = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        let mut told = false;
        loop {
            match (&c).read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) => return Err((e, total)),
            }
            if total >= 256 * 1024 && !told {
                told = true;
                let _ = progress_tx.send(());
            }
        }
    });
    progress
        .recv_timeout(DEADLINE)
        .expect("256 KiB of chargen within the deadline");
    let stopped = services.stop(Instant::now() + DEADLINE);
    let received = within(30, "the chargen stream's end", move || {
        reader.join().unwrap()
    })
    .unwrap_or_else(|(e, n)| panic!("chargen ended in {e} after {n} bytes, not a FIN"));
    assert_eq!(
        counters(&stopped.counters)["chargen.tcp_bytes"],
        received as u64,
        "the counter says what the client received"
    );
}

fn demo_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::query(id, Question::new(name.parse().unwrap(), RecordType::A));
    m.header.rd = true;
    m.emit().unwrap()
}

#[test]
fn dns_over_tcp_on_the_stack_answers_pipelined_queries_as_udp_does() {
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    assert!(services.listening.iter().any(|l| l == "dns tcp/53"));
    let names = ["www.demo.test", "demo.test", "missing.demo.test"];
    let mut c = connect(&b, DNS);
    let mut wire = Vec::new();
    for (id, n) in names.iter().enumerate() {
        write_message(&mut wire, &demo_query(id as u16, n)).unwrap();
    }
    c.write_all(&wire).unwrap();
    let mut over_tcp: Vec<Vec<u8>> = (0..names.len())
        .map(|_| read_message(&mut c).unwrap().expect("an answer"))
        .collect();
    over_tcp.sort_by_key(|m| Message::parse(m).unwrap().header.id);
    let udp = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(DEADLINE)).unwrap();
    for (id, n) in names.iter().enumerate() {
        udp.send_to(&demo_query(id as u16, n), (A, DNS)).unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = udp.recv_from(&mut buf).unwrap();
        assert_eq!(over_tcp[id], &buf[..len], "{n}: TCP and UDP answers differ");
    }
    let r = Message::parse(&over_tcp[2]).unwrap();
    assert_eq!(r.rcode(), Rcode::NXDOMAIN);
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_message(&mut c).unwrap(), None);
    let c = counters(&services.stop(Instant::now() + DEADLINE).counters);
    assert_eq!(c["dns.queries"], 6);
    assert_eq!(c["dns.tcp_connections"], 1);
}

#[test]
fn dns_tcp_connections_past_the_limit_are_refused_and_counted() {
    let (a, b) = stacks();
    let dns = DnsService {
        tcp_max_connections: 2,
        ..dns_service()
    };
    let services = Services::start(&a, all_services(dns)).unwrap();
    let mut open = Vec::new();
    for id in 0..2 {
        let mut c = connect(&b, DNS);
        write_message(&mut c, &demo_query(id, "demo.test")).unwrap();
        read_message(&mut c).unwrap().expect("an answer");
        open.push(c);
    }
    let mut third = connect(&b, DNS);
    let _ = write_message(&mut third, &demo_query(9, "demo.test"));
    match read_message(&mut third) {
        Ok(None) => {}
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => {}
        other => panic!("the third connection was served: {other:?}"),
    }
    // The two admitted ones still work.
    for (id, c) in open.iter_mut().enumerate() {
        write_message(c, &demo_query(10 + id as u16, "demo.test")).unwrap();
        assert!(read_message(c).unwrap().is_some());
    }
    let c = counters(&services.stop(Instant::now() + DEADLINE).counters);
    assert_eq!(
        (c["dns.tcp_connections"], c["dns.tcp_connections_refused"]),
        (3, 1)
    );
    assert_eq!(c["tcp.connections_refused"], 0, "echo's limit is its own");
}

#[test]
fn dns_tcp_idle_connection_on_the_stack_is_closed() {
    let (a, b) = stacks();
    let dns = DnsService {
        tcp_idle_timeout: Duration::from_millis(300),
        ..dns_service()
    };
    let services = Services::start(&a, all_services(dns)).unwrap();
    let mut c = connect(&b, DNS);
    write_message(&mut c, &demo_query(1, "demo.test")).unwrap();
    read_message(&mut c).unwrap().expect("an answer");
    let answered = Instant::now();
    assert_eq!(read_message(&mut c).unwrap(), None, "closed when idle");
    assert!(answered.elapsed() >= Duration::from_millis(250));
    let c = counters(&services.stop(Instant::now() + DEADLINE).counters);
    assert_eq!(c["dns.tcp_idle_closed"], 1);
}

#[test]
fn the_web_service_serves_stats_json_the_status_page_echo_and_a_websocket_echo() {
    use crate::http::{Client, ClientBody, ClientConfig, ClientRequest, Method, Url};
    let (a, b) = stacks();
    let cfg = ServiceConfig {
        http: Some(WebService {
            port: 80,
            root: None,
            observer: a.observer(),
            server: crate::http::ServerConfig::default(),
        }),
        ..ServiceConfig::default()
    };
    let services = Services::start(&a.handle(), cfg).unwrap();
    assert!(services.listening.contains(&"http tcp/80".to_string()));
    let hb = b.handle();
    let connector = move |host: &str, port: u16, timeout: Duration| {
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        TcpStream::connect_timeout(&hb, &SocketAddr::from((ip, port)), timeout)
    };
    let mut client = Client::new(connector, ClientConfig::default());
    let stats = client.get("http://192.0.2.2/stats").unwrap();
    assert_eq!(stats.status, 200);
    assert_eq!(
        stats.headers.get_str("content-type"),
        Some("application/json")
    );
    let json = String::from_utf8(stats.body).unwrap();
    assert!(json.contains("\"tcp.endpoint.passive_opens\":"), "{json}");
    assert!(
        json.contains("\"remote\":\"192.0.2.3:"),
        "the client's connection is listed: {json}"
    );
    let page = client.get("http://192.0.2.2/").unwrap();
    assert!(String::from_utf8_lossy(&page.body).contains("<h1>netstackd</h1>"));
    let mut req = ClientRequest::new(Method::Put, Url::parse("http://192.0.2.2/echo").unwrap());
    req.body = ClientBody::Bytes(b"put me back".to_vec());
    assert_eq!(client.send(req).unwrap().body, b"put me back");
    assert_eq!(
        client.stats().connections_opened,
        1,
        "one kept-alive connection"
    );

    let stream = connect(&b, 80);
    let mut ws = crate::ws::connect(
        stream,
        "192.0.2.2",
        "/ws",
        &[],
        crate::ws::WsConfig::default(),
    )
    .unwrap();
    ws.send_text("hello ws").unwrap();
    assert_eq!(
        ws.read_message().unwrap(),
        crate::ws::Message::Text("hello ws".into())
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    ws.send_binary(&big).unwrap();
    assert_eq!(ws.read_message().unwrap(), crate::ws::Message::Binary(big));
    ws.close(1000, "done").unwrap();

    let stopped = services.stop(Instant::now() + DEADLINE);
    let c = counters(&stopped.counters);
    assert_eq!(c["http.requests"], 4, "{c:?}");
    assert_eq!(c["http.upgrades"], 1);
    assert_eq!(c["http.ws_messages"], 2);
    assert_eq!(c["http.responses_2xx"], 3);
}

#[test]
fn a_web_port_already_taken_fails_start_naming_the_flag() {
    let (a, _b) = stacks();
    let _taken = TcpListener::bind(&a.handle(), ("0.0.0.0", 8080)).unwrap();
    let cfg = ServiceConfig {
        http: Some(WebService {
            port: 8080,
            root: None,
            observer: a.observer(),
            server: crate::http::ServerConfig::default(),
        }),
        ..ServiceConfig::default()
    };
    let err = Services::start(&a.handle(), cfg)
        .err()
        .expect("the port is taken");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    assert!(err.to_string().contains("--http 8080"), "{err}");
}

/// Bytes written, and what was read: `Err` (with the count) if the stream ended in a reset.
type ClientEnd = (usize, Result<Vec<u8>, (io::Error, usize)>);

/// A client that writes without pause, reading what comes back, until it reads the service's
/// FIN; then it stops writing and closes its side, as a well-behaved client does. Returns a
/// handle to stop the service against once `min_bytes` were written, and the thread's result:
/// bytes written, and what it read (`Err` if the stream ended in a reset).
fn cooperative_client(
    b: &Stack,
    port: u16,
    min_bytes: usize,
) -> (mpsc::Receiver<()>, thread::JoinHandle<ClientEnd>) {
    let c = connect(b, port);
    c.set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let (progress_tx, progress) = mpsc::channel();
    let handle = thread::spawn(move || {
        let fin = Arc::new(AtomicBool::new(false));
        let reader = {
            let (c, fin) = (c.try_clone().unwrap(), fin.clone());
            thread::spawn(move || {
                let r = read_to_end(&c);
                fin.store(true, Ordering::SeqCst);
                r
            })
        };
        let chunk: Vec<u8> = (0..16 * 1024).map(|i| (i % 251) as u8).collect();
        let mut written = 0;
        let mut told = false;
        while !fin.load(Ordering::SeqCst) {
            match (&c).write(&chunk) {
                Ok(n) => written += n,
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
            if written >= min_bytes && !told {
                told = true;
                let _ = progress_tx.send(());
            }
        }
        let _ = c.shutdown(Shutdown::Write);
        (written, reader.join().unwrap())
    });
    (progress, handle)
}

#[test]
fn a_stopped_service_reads_until_the_clients_fin_so_no_acknowledged_or_written_byte_is_lost() {
    // Stopping with data acknowledged but unread used to close with that data unread: a RST
    // that threw away the echo service's last writes, and bytes the stack had acknowledged
    // that the discard service never counted.
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let (echo_going, echo) = cooperative_client(&b, ECHO, 256 * 1024);
    let (discard_going, discard) = cooperative_client(&b, DISCARD, 256 * 1024);
    echo_going
        .recv_timeout(DEADLINE)
        .expect("echo transfer under way");
    discard_going
        .recv_timeout(DEADLINE)
        .expect("discard transfer under way");
    let started = Instant::now();
    let stopped = services.stop(started + DEADLINE);
    let took = started.elapsed();
    let c = counters(&stopped.counters);
    let (echo_written, echoed) = within(30, "the echo client", move || echo.join().unwrap());
    let (discard_written, discard_end) =
        within(30, "the discard client", move || discard.join().unwrap());
    let echoed = echoed.unwrap_or_else(|(e, n)| panic!("echo ended in {e} after {n} bytes"));
    assert_eq!(
        echoed.len() as u64,
        c["echo.tcp_bytes"],
        "every byte the echo service wrote reached the client, then FIN"
    );
    assert!(echoed.len() <= echo_written);
    assert_eq!(
        discard_end.unwrap_or_else(|(e, n)| panic!("discard ended in {e} after {n} bytes")),
        b""
    );
    assert_eq!(
        discard_written as u64, c["discard.tcp_bytes"],
        "every byte the client wrote before its FIN was read by the discard service"
    );
    assert_eq!(stopped.unfinished, Vec::<String>::new());
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
}

/// Waits until the service counter `name` reaches `want` (failing after [`DEADLINE`]).
fn wait_counter(services: &Services, name: &str, want: u64) {
    let until = Instant::now() + DEADLINE;
    loop {
        let got = counters(&services.counters())[name];
        if got >= want {
            assert_eq!(got, want, "{name}");
            return;
        }
        assert!(Instant::now() < until, "{name} stayed at {got}, not {want}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A round trip through UDP echo from an ordinary port: once it is back, any answer to what
/// was sent before it would have arrived too (one service thread, one link, in order).
fn echo_round_trip(client: &Stack) {
    let s = UdpSocket::bind(client, "0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.send_to(b"ping", (A, ECHO)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.recv_from(&mut buf).unwrap().0, 4);
}

fn nothing_queued(s: &UdpSocket) -> bool {
    s.set_nonblocking(true).unwrap();
    let got = s.recv_from(&mut [0u8; 2048]);
    matches!(got, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

#[test]
fn udp_echo_and_chargen_refuse_every_well_known_source_port() {
    for port in [0, 7, 9, 13, 19, 37, 53, 123, 1023] {
        let from = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 3), port));
        assert_eq!(
            reflection_refusal(from, A, Some(Ipv4Addr::new(192, 0, 2, 255))),
            Some(Refusal::SourcePort),
            "{port}"
        );
    }
    for port in [LOWEST_ANSWERED_PORT, 40000, 65535] {
        let from = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 3), port));
        assert_eq!(reflection_refusal(from, A, None), None, "{port}");
    }
}

#[test]
fn udp_echo_and_chargen_refuse_a_broadcast_whatever_its_source_port() {
    let from = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 3), 40000));
    let subnet = Some(Ipv4Addr::new(192, 0, 2, 255));
    for to in [Ipv4Addr::BROADCAST, Ipv4Addr::new(192, 0, 2, 255)] {
        assert_eq!(
            reflection_refusal(from, to, subnet),
            Some(Refusal::Broadcast)
        );
    }
    // The subnet's network address is not a broadcast for a /24.
    assert_eq!(
        reflection_refusal(from, Ipv4Addr::new(192, 0, 2, 0), subnet),
        None
    );
}

#[test]
fn two_echo_servers_cannot_bounce_a_datagram_between_them() {
    // A naive echo on the client's port 7 (answering everything, as echo servers did) starts
    // the loop with one datagram to our echo: our service refuses a source port below 1024,
    // so the naive echo never hears back.
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let naive = UdpSocket::bind(&b, "0.0.0.0:7").unwrap();
    naive
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    naive.send_to(b"loop", (A, ECHO)).unwrap();
    let naive_chargen = UdpSocket::bind(&b, "0.0.0.0:19").unwrap();
    naive_chargen.send_to(b"loop", (A, CHARGEN)).unwrap();
    let started = Instant::now();
    let mut bounced = 0;
    let mut buf = [0u8; 2048];
    while started.elapsed() < Duration::from_secs(1) {
        match naive.recv_from(&mut buf) {
            Ok((n, from)) => {
                bounced += 1;
                naive.send_to(&buf[..n], from).unwrap();
            }
            Err(_) => break,
        }
    }
    assert_eq!(bounced, 0, "the datagram bounced {bounced} times in 1 s");
    wait_counter(&services, "echo.udp_refused_source_port", 1);
    wait_counter(&services, "chargen.udp_refused_source_port", 1);
    echo_round_trip(&b);
    assert!(nothing_queued(&naive_chargen), "chargen answered port 19");
    let stopped = services.stop(Instant::now() + DEADLINE);
    let c = counters(&stopped.counters);
    assert_eq!(
        (c["echo.udp_datagrams"], c["chargen.udp_datagrams"]),
        (1, 0)
    );
}

#[test]
fn udp_echo_and_chargen_never_answer_a_broadcast() {
    let (a, b) = stacks();
    let services = Services::start(&a, all_services(dns_service())).unwrap();
    let client = UdpSocket::bind(&b, "0.0.0.0:0").unwrap();
    client.set_broadcast(true).unwrap();
    for to in [Ipv4Addr::BROADCAST, Ipv4Addr::new(192, 0, 2, 255)] {
        client.send_to(b"anyone?", (to, ECHO)).unwrap();
        client.send_to(b"anyone?", (to, CHARGEN)).unwrap();
    }
    // Each reached the service (counted), none was answered.
    wait_counter(&services, "echo.udp_refused_broadcast", 2);
    wait_counter(&services, "chargen.udp_refused_broadcast", 2);
    echo_round_trip(&b);
    assert!(nothing_queued(&client), "a broadcast was answered");
    // Sent to the stack's own address, the same client is answered.
    client.set_nonblocking(false).unwrap();
    client.set_read_timeout(Some(DEADLINE)).unwrap();
    client.send_to(b"just you", (A, ECHO)).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"just you");
    let c = counters(&services.stop(Instant::now() + DEADLINE).counters);
    assert_eq!(
        (c["echo.udp_refused_source_port"], c["echo.udp_datagrams"]),
        (0, 2)
    );
}
