//! DNS over TCP: framing, the answering rules, and the servers over std TCP on 127.0.0.1 (and
//! dig and kdig when installed). Every wait has a deadline.

use super::*;
use crate::dns::resolver::ResolverConfig;
use crate::dns::socket::{random_seed, std_socket_for};
use crate::dns::testutil::{name, tool_present, within};
use crate::dns::{answer, answer_or_forward, demo_zone, Message, Outcome, Question, Rcode};
use crate::dns::{RData, RecordType, Zone};
use std::io::Cursor;
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};

const STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// How long a test client waits for any one answer.
const ANSWER_DEADLINE: Duration = Duration::from_secs(5);

fn demo_catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(demo_zone(STACK));
    c
}

/// A zone whose `t` name has 40 TXT records of about 100 octets: an answer over 4 KB.
fn big_catalog() -> Catalog {
    let mut text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n".to_string();
    for i in 0..40 {
        text.push_str(&format!("t TXT \"{i} {}\"\n", "x".repeat(100)));
    }
    let mut catalog = demo_catalog();
    catalog.insert(Zone::parse_master(&text, "big", None).unwrap());
    catalog
}

fn query(id: u16, n: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::query(id, Question::new(name(n), t));
    m.header.rd = true;
    m.emit().unwrap()
}

#[test]
fn frames_round_trip_and_a_clean_close_ends_the_stream() {
    let mut wire = Vec::new();
    write_message(&mut wire, b"abc").unwrap();
    write_message(&mut wire, b"").unwrap();
    assert_eq!(wire, b"\x00\x03abc\x00\x00");
    let mut r = Cursor::new(wire);
    assert_eq!(read_message(&mut r).unwrap(), Some(b"abc".to_vec()));
    assert_eq!(read_message(&mut r).unwrap(), Some(vec![]));
    assert_eq!(read_message(&mut r).unwrap(), None);
}

#[test]
fn close_inside_a_frame_is_unexpected_eof() {
    for cut in [&b"\x00"[..], b"\x00\x05ab"] {
        let err = read_message(&mut Cursor::new(cut.to_vec())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}

#[test]
fn message_over_65535_cannot_be_framed() {
    let err = write_message(&mut Vec::new(), &vec![0; 65_536]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn deframer_yields_each_message_whatever_the_pieces_it_arrives_in() {
    let messages: [&[u8]; 4] = [b"first", b"", &[7u8; 300], b"last"];
    let mut wire = Vec::new();
    for m in messages {
        write_message(&mut wire, m).unwrap();
    }
    for piece in [1, 2, 3, 7, 64, wire.len()] {
        let mut d = Deframer::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(piece) {
            d.push(chunk);
            while let Some(m) = d.next_message() {
                got.push(m);
            }
        }
        assert_eq!(got, messages.map(<[u8]>::to_vec), "pieces of {piece}");
        assert_eq!(d.pending(), 0);
    }
    let mut d = Deframer::default();
    d.push(b"\x00\x05ab");
    assert_eq!(d.next_message(), None);
    assert_eq!(d.pending(), 4, "an incomplete message is held, not dropped");
}

/// A byte stream: reads from `input`, writes to `output`.
struct Duplex {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn tcp_answers_are_never_truncated() {
    let catalog = big_catalog();
    let mut input = Vec::new();
    for (id, n) in [(1, "t.big.test"), (2, "demo.test")] {
        let q = Message::query(id, Question::new(name(n), RecordType::TXT));
        write_message(&mut input, &q.emit().unwrap()).unwrap();
    }
    let mut stream = Duplex {
        input: Cursor::new(input),
        output: Vec::new(),
    };
    let mut stats = ServerStats::default();
    serve_connection(&mut stream, &catalog, &mut stats).unwrap();
    let mut out = Cursor::new(stream.output);
    let big = Message::parse(&read_message(&mut out).unwrap().unwrap()).unwrap();
    assert_eq!(
        (big.header.id, big.header.tc, big.answers.len()),
        (1, false, 40)
    );
    let demo = Message::parse(&read_message(&mut out).unwrap().unwrap()).unwrap();
    assert_eq!((demo.header.id, demo.answers.len()), (2, 1));
    assert_eq!(read_message(&mut out).unwrap(), None);
    assert_eq!((stats.queries, stats.truncated), (2, 0));
}

#[test]
fn tcp_gets_the_udp_answer_for_every_answer_that_fits_a_datagram() {
    let catalog = demo_catalog();
    let mut malformed = query(5, "demo.test", RecordType::A);
    malformed.push(0);
    let queries = [
        query(1, "www.demo.test", RecordType::A),
        query(2, "missing.demo.test", RecordType::A),
        query(3, "demo.test", RecordType::MX),
        query(4, "example.com", RecordType::A),
        malformed,
    ];
    for q in &queries {
        let udp = answer(q, &catalog, &mut ServerStats::default());
        let tcp = match answer_or_forward_tcp(q, &catalog, false, &mut ServerStats::default()) {
            TcpOutcome::Reply(bytes) => Some(bytes),
            TcpOutcome::Drop => None,
            TcpOutcome::Forward(q) => panic!("forwarded without a forwarder: {q:?}"),
        };
        assert_eq!(tcp, udp, "query {:?}", Message::parse(q));
    }
    // A forwarding server: the same as the UDP forwarder, local and forwarded alike.
    for q in &queries {
        let udp = answer_or_forward(q, &catalog, &mut ServerStats::default());
        let tcp = answer_or_forward_tcp(q, &catalog, true, &mut ServerStats::default());
        match (udp, tcp) {
            (Outcome::Reply(u), TcpOutcome::Reply(t)) => assert_eq!(u, t),
            (Outcome::Forward(u), TcpOutcome::Forward(t)) => {
                assert_eq!(u.question, t.question);
                assert_eq!(
                    t.limit, MAX_TCP_MESSAGE,
                    "forwarded answers are not truncated"
                );
            }
            (Outcome::Drop, TcpOutcome::Drop) => {}
            (u, t) => panic!("UDP {u:?} but TCP {t:?}"),
        }
    }
    assert!(matches!(
        answer_or_forward_tcp(&[1, 2, 3], &catalog, true, &mut ServerStats::default()),
        TcpOutcome::Drop
    ));
}

#[test]
fn a_forwarding_server_answers_its_zones_whole_over_tcp_with_ra() {
    let mut stats = ServerStats::default();
    let q = query(9, "t.big.test", RecordType::TXT);
    let TcpOutcome::Reply(bytes) = answer_or_forward_tcp(&q, &big_catalog(), true, &mut stats)
    else {
        panic!("a local name was not answered locally");
    };
    let r = Message::parse(&bytes).unwrap();
    assert!(r.header.aa && r.header.ra && !r.header.tc);
    assert_eq!(r.answers.len(), 40);
    assert!(bytes.len() > 4000);
    assert_eq!(stats.truncated, 0);
}

/// `server` running on a std listener on 127.0.0.1, one thread per connection.
struct Running {
    addr: SocketAddr,
    server: TcpServer,
    /// One per connection the listener accepted: the connection's result.
    ended: Receiver<io::Result<()>>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl Running {
    fn start(server: TcpServer) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, ended) = mpsc::channel();
        let s = server.clone();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                count.fetch_add(1, Ordering::Relaxed);
                let (Ok(conn), s, tx) = (conn, s.clone(), tx.clone()) else {
                    return;
                };
                thread::spawn(move || {
                    let _ = tx.send(serve_pipelined(&conn, &s));
                });
            }
        });
        Running {
            addr,
            server,
            ended,
            accepted,
        }
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(self.addr).unwrap();
        c.set_read_timeout(Some(ANSWER_DEADLINE)).unwrap();
        c
    }

    /// Waits for the next connection to end and returns its result.
    fn next_end(&self, within: Duration) -> io::Result<()> {
        self.ended
            .recv_timeout(within)
            .expect("the connection did not end in time")
    }

    fn tcp_stats(&self) -> TcpServerStats {
        *self.server.tcp_stats.lock().unwrap()
    }

    fn stats(&self) -> ServerStats {
        *self.server.stats.lock().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.stop.store(true, Ordering::Relaxed);
    }
}

fn read_answer(c: &mut TcpStream) -> Message {
    let bytes = read_message(c)
        .expect("reading an answer")
        .expect("an answer, not the end of the stream");
    Message::parse(&bytes).unwrap()
}

#[test]
fn pipelined_queries_on_one_connection_are_each_answered() {
    let server = Running::start(TcpServer::new(Arc::new(big_catalog())));
    let mut c = server.connect();
    // Five queries in one write: the server must not wait for the client between them.
    let names = [
        "www.demo.test",
        "demo.test",
        "missing.demo.test",
        "t.big.test",
        "example.com",
    ];
    let mut wire = Vec::new();
    for (id, n) in names.iter().enumerate() {
        write_message(&mut wire, &query(id as u16, n, RecordType::TXT)).unwrap();
    }
    c.write_all(&wire).unwrap();
    let mut answers: Vec<(u16, Rcode, usize, bool)> = (0..names.len())
        .map(|_| read_answer(&mut c))
        .map(|m| (m.header.id, m.rcode(), m.answers.len(), m.header.tc))
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [
            (0, Rcode::NOERROR, 2, false), // the CNAME, then demo.test's TXT
            (1, Rcode::NOERROR, 1, false),
            (2, Rcode::NXDOMAIN, 0, false),
            (3, Rcode::NOERROR, 40, false),
            (4, Rcode::REFUSED, 0, false),
        ]
    );
    // The client closes its side; the server closes its own after the last answer.
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_message(&mut c).unwrap(), None, "FIN after the answers");
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(server.stats().queries, 5);
}

#[test]
fn answers_to_queries_sent_before_the_client_closes_its_side_still_arrive() {
    let server = Running::start(TcpServer::new(Arc::new(demo_catalog())));
    let mut c = server.connect();
    let mut wire = Vec::new();
    for id in 0..20 {
        write_message(&mut wire, &query(id, "demo.test", RecordType::A)).unwrap();
    }
    c.write_all(&wire).unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut ids: Vec<u16> = (0..20).map(|_| read_answer(&mut c).header.id).collect();
    ids.sort();
    assert_eq!(ids, (0..20).collect::<Vec<_>>());
    assert_eq!(read_message(&mut c).unwrap(), None);
}

/// A UDP DNS server on 127.0.0.1 answering from `catalog`, each answer `delay` late.
fn slow_upstream(catalog: Catalog, delay: Duration) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // Ends when the test is long over (the read timeout) or the socket fails.
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            thread::sleep(delay);
            if let Some(reply) = answer(&buf[..n], &catalog, &mut ServerStats::default()) {
                let _ = socket.send_to(&reply, from);
            }
        }
    });
    addr
}

/// A UDP DNS server on 127.0.0.1 answering from the demo zone, but never a name under
/// silent.test.
fn half_silent_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let catalog = demo_catalog();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let silent = Message::parse(&buf[..n]).is_ok_and(|m| {
                m.questions
                    .first()
                    .is_some_and(|q| q.name.is_subdomain_of(&name("silent.test")))
            });
            if silent {
                continue;
            }
            if let Some(reply) = answer(&buf[..n], &catalog, &mut ServerStats::default()) {
                let _ = socket.send_to(&reply, from);
            }
        }
    });
    addr
}

#[test]
fn a_silent_upstream_holds_back_only_the_tcp_queries_waiting_for_it() {
    // Eight queries the upstream never answers are resolved side by side with the others, so
    // a client asking an answered name is not queued behind their 2 s timeouts.
    let server = Running::start(forwarding_server(half_silent_upstream(), Catalog::new()));
    let mut silent = server.connect();
    let mut wire = Vec::new();
    for i in 0..8 {
        write_message(
            &mut wire,
            &query(i, &format!("n{i}.silent.test"), RecordType::A),
        )
        .unwrap();
    }
    silent.write_all(&wire).unwrap();
    thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut fast = server.connect();
    for i in 0..4 {
        write_message(&mut fast, &query(100 + i, "www.demo.test", RecordType::A)).unwrap();
        let r = read_answer(&mut fast);
        assert_eq!((r.header.id, r.rcode()), (100 + i, Rcode::NOERROR));
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "the answered client waited {took:?} behind the silent queries"
    );
    // The silent queries end in SERVFAIL once the resolver gives up.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for _ in 0..8 {
        assert_eq!(read_answer(&mut silent).rcode(), Rcode::SERVFAIL);
    }
}

fn forwarding_server(upstream: SocketAddr, local: Catalog) -> TcpServer {
    let mut server = TcpServer::new(Arc::new(local));
    let config = ResolverConfig {
        timeout: Duration::from_secs(2),
        ..ResolverConfig::new(vec![upstream])
    };
    let resolver = Resolver::new(config, random_seed());
    let (forwarder, _thread) = TcpForwarder::spawn(
        resolver,
        std_socket_for,
        crate::dns::socket::std_tcp_connect,
        server.stats.clone(),
        server.stop.clone(),
    )
    .unwrap();
    server.forwarder = Some(forwarder);
    server
}

#[test]
fn a_forwarded_query_that_finds_the_forward_queue_full_is_answered_servfail_and_counted() {
    // A queue with no room and nobody taking from it: every forwarded query finds it full.
    let (jobs, _queue) = crossbeam_channel::bounded(0);
    let mut server = TcpServer::new(Arc::new(demo_catalog()));
    server.forwarder = Some(TcpForwarder { jobs });
    let server = Running::start(server);
    let mut c = server.connect();
    write_message(&mut c, &query(7, "www.example.test", RecordType::A)).unwrap();
    let r = read_answer(&mut c);
    assert_eq!((r.header.id, r.rcode()), (7, Rcode::SERVFAIL));
    assert_eq!(server.tcp_stats().forward_queue_full, 1);
    assert_eq!(server.stats().forwarded, 1);
}

#[test]
fn a_slow_forwarded_query_does_not_hold_back_the_local_answer_after_it() {
    // RFC 7766 §6.2.1.1: answers go out as they are ready, not in the order asked.
    let upstream = slow_upstream(demo_catalog(), Duration::from_millis(400));
    let mut local = Catalog::new();
    local.insert(
        Zone::parse_master(
            "$ORIGIN local.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ A 192.0.2.77\n",
            "l",
            None,
        )
        .unwrap(),
    );
    let server = Running::start(forwarding_server(upstream, local));
    let mut c = server.connect();
    let mut wire = Vec::new();
    write_message(&mut wire, &query(1, "www.demo.test", RecordType::A)).unwrap();
    write_message(&mut wire, &query(2, "local.test", RecordType::A)).unwrap();
    c.write_all(&wire).unwrap();
    let first = read_answer(&mut c);
    let second = read_answer(&mut c);
    assert_eq!(
        (first.header.id, second.header.id),
        (2, 1),
        "the local answer first"
    );
    assert!(first.header.aa && first.header.ra);
    assert_eq!(
        first.answers[0].data,
        RData::A(Ipv4Addr::new(192, 0, 2, 77))
    );
    // The forwarded one: the upstream's records, RA set, AA clear.
    assert!(second.header.ra && !second.header.aa);
    assert_eq!(second.rcode(), Rcode::NOERROR);
    assert_eq!(second.answers.len(), 2, "{second:?}");
    assert_eq!(server.stats().forwarded, 1);
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let mut server = TcpServer::new(Arc::new(demo_catalog()));
    server.idle_timeout = Duration::from_millis(300);
    let server = Running::start(server);
    let mut c = server.connect();
    write_message(&mut c, &query(1, "demo.test", RecordType::A)).unwrap();
    assert_eq!(read_answer(&mut c).header.id, 1);
    let answered = Instant::now();
    assert_eq!(
        read_message(&mut c).unwrap(),
        None,
        "the server closes an idle connection"
    );
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(2),
        "closed after {idle:?}"
    );
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(server.tcp_stats().idle_closed, 1);
}

#[test]
fn a_message_trickled_in_does_not_keep_an_idle_connection_open() {
    let mut server = TcpServer::new(Arc::new(demo_catalog()));
    server.idle_timeout = Duration::from_millis(300);
    let server = Running::start(server);
    let mut c = server.connect();
    let q = query(1, "demo.test", RecordType::A);
    let mut framed = Vec::new();
    write_message(&mut framed, &q).unwrap();
    let started = Instant::now();
    // One byte every 100 ms: the message would take seconds to complete.
    let mut closed = false;
    for b in &framed {
        if c.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut rest = [0u8; 64];
    let end = c.read(&mut rest);
    assert!(
        closed || matches!(end, Ok(0)) || end.is_err(),
        "the connection is still open after {:?}: {end:?}",
        started.elapsed()
    );
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(server.tcp_stats().idle_closed, 1);
    assert_eq!(server.stats().queries, 0);
}

#[test]
fn stop_flag_ends_an_open_connection_within_the_poll_interval() {
    let server = Running::start(TcpServer::new(Arc::new(demo_catalog())));
    let mut c = server.connect();
    write_message(&mut c, &query(1, "demo.test", RecordType::A)).unwrap();
    read_answer(&mut c);
    let stopped = Instant::now();
    server.server.stop.store(true, Ordering::Relaxed);
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert!(stopped.elapsed() < STOP_POLL_INTERVAL * 5);
    assert_eq!(read_message(&mut c).unwrap(), None, "FIN on stop");
}

#[test]
fn a_peer_closing_inside_a_message_is_counted() {
    let server = Running::start(TcpServer::new(Arc::new(demo_catalog())));
    let mut c = server.connect();
    c.write_all(b"\x00\x20abc").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_message(&mut c).unwrap(), None);
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(server.tcp_stats().cut_frames, 1);
}

#[test]
fn more_queries_than_may_be_outstanding_are_all_answered() {
    // Past MAX_OUTSTANDING the server stops reading until answers leave; none is lost.
    let upstream = slow_upstream(demo_catalog(), Duration::from_millis(1));
    let server = Running::start(forwarding_server(upstream, demo_catalog()));
    let mut c = server.connect();
    let count = MAX_OUTSTANDING as u16 * 3;
    let mut wire = Vec::new();
    for id in 0..count {
        // Every other one is forwarded (the upstream refuses it: SERVFAIL back).
        let n = if id % 2 == 0 {
            "demo.test"
        } else {
            "example.org"
        };
        write_message(&mut wire, &query(id, n, RecordType::A)).unwrap();
    }
    let mut writer = c.try_clone().unwrap();
    thread::spawn(move || writer.write_all(&wire));
    let mut ids: Vec<u16> = (0..count).map(|_| read_answer(&mut c).header.id).collect();
    ids.sort();
    assert_eq!(ids, (0..count).collect::<Vec<_>>());
}

#[test]
fn dig_over_tcp_gets_the_whole_answer() {
    if !tool_present("dig", "-v", "bind9-dnsutils") {
        return;
    }
    let server = Running::start(TcpServer::new(Arc::new(demo_catalog())));
    let port = server.addr.port().to_string();
    let out = within(10, "dig +tcp", move || {
        let args = [
            "@127.0.0.1",
            "-p",
            &port,
            "+tcp",
            "+tries=1",
            "+time=2",
            "www.demo.test",
        ];
        let out = std::process::Command::new("dig")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("(TCP)"), "{out}");
    assert!(out.contains("ANSWER: 2,"), "{out}");
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(server.stats().answered, 1);
}

#[test]
fn kdig_keeps_one_connection_open_for_several_queries() {
    if !tool_present("kdig", "-V", "knot-dnsutils") {
        return;
    }
    let server = Running::start(TcpServer::new(Arc::new(demo_catalog())));
    let port = server.addr.port().to_string();
    let out = within(15, "kdig +tcp +keepopen", move || {
        let args = [
            "@127.0.0.1",
            "-p",
            &port,
            "+tcp",
            "+keepopen",
            "+retry=0",
            "+timeout=2",
            "www.demo.test",
            "demo.test",
            "missing.demo.test",
        ];
        let out = std::process::Command::new("kdig")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert_eq!(out.matches("status: NOERROR").count(), 2, "{out}");
    assert_eq!(out.matches("status: NXDOMAIN").count(), 1, "{out}");
    server.next_end(ANSWER_DEADLINE).unwrap();
    assert_eq!(
        server.accepted.load(Ordering::Relaxed),
        1,
        "kdig used more than one connection:\n{out}"
    );
    assert_eq!(server.stats().queries, 3);
}
