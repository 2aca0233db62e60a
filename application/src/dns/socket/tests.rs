//! Blocking resolver and servers over std UDP sockets on 127.0.0.1. Every wait has a deadline.

use super::*;
use crate::dns::testutil::{name, tool_present, within};
use crate::dns::{
    demo_zone, Message, Question, RData, Rcode, Record, ResolverConfig, ResolverStats, Zone,
};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;

const STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// A running server thread; stops and is joined (with a deadline) on drop.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ServerStats>>,
    done: Option<mpsc::Receiver<io::Result<()>>>,
}

impl Server {
    fn start(
        run: impl FnOnce(UdpSocket, &Mutex<ServerStats>, &AtomicBool) -> io::Result<()> + Send + 'static,
    ) -> Server {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ServerStats::default()));
        let (tx, rx) = mpsc::channel();
        let (stop2, stats2) = (stop.clone(), stats.clone());
        thread::spawn(move || {
            let _ = tx.send(run(socket, &stats2, &stop2));
        });
        Server {
            addr,
            stop,
            stats,
            done: Some(rx),
        }
    }

    fn authoritative(catalog: Catalog) -> Server {
        Server::start(move |s, stats, stop| serve(&s, &catalog, stats, stop))
    }

    fn stats(&self) -> ServerStats {
        *self.stats.lock().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(rx) = self.done.take() {
            let result = rx.recv_timeout(Duration::from_secs(5));
            if !thread::panicking() {
                result
                    .expect("server thread did not stop within 5 s")
                    .expect("server loop failed");
            }
        }
    }
}

fn demo_catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(demo_zone(STACK));
    c
}

fn quick_config(servers: Vec<SocketAddr>) -> ResolverConfig {
    ResolverConfig {
        timeout: Duration::from_millis(200),
        ..ResolverConfig::new(servers)
    }
}

fn lookup(server: SocketAddr, n: &str, t: RecordType) -> Result<LookupAnswer, ResolveError> {
    let n = name(n);
    within(10, "lookup", move || {
        let mut r = Resolver::new(quick_config(vec![server]), random_seed());
        resolve(&mut r, &mut std_socket_for, n, t)
    })
}

#[test]
fn resolver_gets_a_cname_chain_from_the_server_over_udp() {
    let server = Server::authoritative(demo_catalog());
    let answer = lookup(server.addr, "www.demo.test", RecordType::A).unwrap();
    assert_eq!(answer.cnames.len(), 1);
    assert_eq!(answer.addresses(), vec![std::net::IpAddr::V4(STACK)]);
    assert_eq!(server.stats().answered, 1);
}

#[test]
fn resolver_gets_nxdomain_with_the_soa_over_udp() {
    let server = Server::authoritative(demo_catalog());
    let answer = lookup(server.addr, "missing.demo.test", RecordType::A).unwrap();
    assert_eq!(answer.rcode, Rcode::NXDOMAIN);
    assert_eq!(answer.soa.unwrap().name, name("demo.test"));
}

#[test]
fn every_type_of_the_demo_zone_is_served() {
    let server = Server::authoritative(demo_catalog());
    for t in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SOA,
        RecordType::NS,
    ] {
        let answer = lookup(server.addr, "demo.test", t).unwrap();
        assert_eq!(answer.records.len(), 1, "{t}");
        assert_eq!(answer.records[0].rtype(), t);
    }
}

#[test]
fn refused_outside_the_zones_is_a_server_failure_after_every_try() {
    let server = Server::authoritative(demo_catalog());
    let err = lookup(server.addr, "example.com", RecordType::A).unwrap_err();
    assert_eq!(
        err,
        ResolveError::ServerFailure {
            rcode: Rcode::REFUSED,
            server: server.addr
        }
    );
    assert_eq!(
        server.stats().refused,
        2,
        "one REFUSED per try: 2 rounds over 1 server"
    );
}

#[test]
fn silent_server_times_out_after_two_tries_in_bounded_time() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let err = lookup(addr, "demo.test", RecordType::A).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, ResolveError::Timeout { tries: 2 });
    // 200 ms + 400 ms of timeouts.
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(3),
        "took {took:?}"
    );
    // Both tries arrived, from the same socket, with different IDs.
    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 512];
    let (n1, from1) = silent.recv_from(&mut buf).unwrap();
    let id1 = Message::parse(&buf[..n1]).unwrap().header.id;
    let (n2, from2) = silent.recv_from(&mut buf).unwrap();
    let id2 = Message::parse(&buf[..n2]).unwrap().header.id;
    assert_eq!(from1, from2);
    assert_ne!(id1, id2);
}

#[test]
fn each_lookup_uses_a_new_source_port() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let addr = silent.local_addr().unwrap();
    let ports = within(10, "three lookups", move || {
        let config = ResolverConfig {
            attempts: 1,
            timeout: Duration::from_millis(50),
            ..ResolverConfig::new(vec![addr])
        };
        let mut r = Resolver::new(config, random_seed());
        let mut buf = [0u8; 512];
        (0..3)
            .map(|i| {
                let _ = resolve(
                    &mut r,
                    &mut std_socket_for,
                    name(&format!("n{i}.test")),
                    RecordType::A,
                );
                silent.recv_from(&mut buf).unwrap().1.port()
            })
            .collect::<Vec<u16>>()
    });
    assert!(ports.windows(2).any(|w| w[0] != w[1]), "ports {ports:?}");
}

#[test]
fn forwarder_answers_local_zones_and_forwards_the_rest() {
    let upstream = Server::authoritative(demo_catalog());
    let upstream_addr = upstream.addr;
    let mut local = Catalog::new();
    local.insert(
        Zone::parse_master(
            "$ORIGIN local.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ A 192.0.2.77\n",
            "l",
            None,
        )
        .unwrap(),
    );
    let forwarder = Server::start(move |s, stats, stop| {
        let mut resolver = Resolver::new(quick_config(vec![upstream_addr]), random_seed());
        serve_forwarding(&s, &local, &mut resolver, std_socket_for, stats, stop)
    });
    // From the forwarder's own zone: authoritative.
    let a = lookup(forwarder.addr, "local.test", RecordType::A).unwrap();
    assert_eq!(a.records[0].data, RData::A(Ipv4Addr::new(192, 0, 2, 77)));
    // Through the forwarder to the upstream, twice: the second comes from its cache.
    for _ in 0..2 {
        let www = lookup(forwarder.addr, "www.demo.test", RecordType::A).unwrap();
        assert_eq!(www.addresses(), vec![std::net::IpAddr::V4(STACK)]);
    }
    assert_eq!(
        upstream.stats().answered,
        1,
        "the forwarder's cache answered the second time"
    );
    // Upstream NXDOMAIN passes through with its SOA.
    let nx = lookup(forwarder.addr, "nope.demo.test", RecordType::A).unwrap();
    assert_eq!(nx.rcode, Rcode::NXDOMAIN);
    // The upstream refuses example.com: the forwarder says SERVFAIL.
    let err = lookup(forwarder.addr, "example.com", RecordType::A).unwrap_err();
    assert!(
        matches!(
            err,
            ResolveError::ServerFailure {
                rcode: Rcode::SERVFAIL,
                ..
            }
        ),
        "{err:?}"
    );
    let stats = forwarder.stats();
    assert_eq!(
        stats.forwarded, 5,
        "www twice, nope once, example.com twice"
    );
}

#[test]
fn server_survives_garbage_and_keeps_answering() {
    let server = Server::authoritative(demo_catalog());
    let addr = server.addr;
    let replies = within(10, "garbage exchange", move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 1500];
        // Too short: dropped, no reply. Then a malformed query: FORMERR.
        client.send_to(&[1, 2, 3], addr).unwrap();
        client
            .send_to(
                &[
                    0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0x0C, 0, 1, 0, 1,
                ],
                addr,
            )
            .unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        let formerr = Message::parse(&buf[..n]).unwrap();
        let q = Message::query(77, Question::new(name("demo.test"), RecordType::A));
        client.send_to(&q.emit().unwrap(), addr).unwrap();
        let (n, _) = client.recv_from(&mut buf).unwrap();
        (formerr, Message::parse(&buf[..n]).unwrap())
    });
    assert_eq!(
        (replies.0.header.id, replies.0.rcode()),
        (0xABCD, Rcode::FORMERR)
    );
    assert_eq!((replies.1.header.id, replies.1.answers.len()), (77, 1));
    let stats = server.stats();
    assert_eq!(
        (stats.queries, stats.dropped_short, stats.formerr),
        (3, 1, 1)
    );
}

/// dig, the reference client, reads our answers (skipped, loudly, when dig is not installed,
/// unless NETSTACK_REQUIRE_SYSTEM_TESTS=1).
#[test]
fn dig_reads_our_answers() {
    if !tool_present("dig", "-v", "bind9-dnsutils") {
        return;
    }
    let mut catalog = demo_catalog();
    let mut zone = "$ORIGIN demo.test.\n$TTL 300\n@ SOA ns hostmaster 1 2 3 4 60\n".to_string();
    for i in 0..8 {
        zone.push_str(&format!("big TXT \"{i} {}\"\n", "z".repeat(80)));
    }
    let mut records: Vec<Record> = demo_zone(STACK).records().cloned().collect();
    let big = Zone::parse_master(&zone, "big", None).unwrap();
    records.extend(
        big.records()
            .filter(|r| r.rtype() == RecordType::TXT)
            .cloned(),
    );
    catalog.insert(Zone::from_records(records).unwrap());
    let server = Server::authoritative(catalog);
    let port = server.addr.port().to_string();
    let dig = |args: &[&str]| {
        let mut all = vec!["@127.0.0.1", "-p", &port, "+tries=1", "+time=2"];
        all.extend_from_slice(args);
        let args: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        within(10, "dig", move || {
            let out = std::process::Command::new("dig")
                .args(&args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    let www = dig(&["www.demo.test", "A"]);
    assert!(www.contains("status: NOERROR"), "{www}");
    assert!(www.contains("flags: qr aa rd;"), "{www}");
    assert!(
        www.contains("www.demo.test.\t\t300\tIN\tCNAME\tdemo.test."),
        "{www}"
    );
    assert!(www.contains("demo.test.\t\t300\tIN\tA\t192.0.2.2"), "{www}");
    let nx = dig(&["nope.demo.test", "A"]);
    assert!(nx.contains("status: NXDOMAIN"), "{nx}");
    assert!(nx.contains("AUTHORITY: 1"), "{nx}");
    let short = dig(&["+short", "demo.test", "MX"]);
    assert_eq!(short.trim(), "10 mail.demo.test.");
    let txt = dig(&["+short", "demo.test", "TXT"]);
    assert_eq!(txt.trim(), "\"netstack demo zone\"");
    let aaaa = dig(&["+short", "demo.test", "AAAA"]);
    assert_eq!(aaaa.trim(), "2001:db8::2");
    // Without EDNS an answer over 512 octets comes back truncated; with dig's EDNS it fits.
    let tc = dig(&["+noedns", "+ignore", "big.demo.test", "TXT"]);
    assert!(tc.contains("flags: qr aa tc rd;"), "{tc}");
    let big = dig(&["big.demo.test", "TXT"]);
    assert!(big.contains("ANSWER: 8,"), "{big}");
}

/// kdig (Knot's client) reads our answers too.
#[test]
fn kdig_reads_our_answers() {
    if !tool_present("kdig", "-V", "knot-dnsutils") {
        return;
    }
    let server = Server::authoritative(demo_catalog());
    let port = server.addr.port().to_string();
    let out = within(10, "kdig", move || {
        let args = [
            "@127.0.0.1",
            "-p",
            &port,
            "+retry=0",
            "+timeout=2",
            "www.demo.test",
            "A",
        ];
        let out = std::process::Command::new("kdig")
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("Flags: qr aa rd;"), "{out}");
    assert!(out.contains("CNAME\tdemo.test."), "{out}");
    assert!(out.contains("A\t192.0.2.2"), "{out}");
}

/// What the fake upstream does over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TcpSide {
    /// Answers whole.
    Whole,
    /// Accepts and never answers.
    Silent,
    /// Answers whole, under another ID.
    WrongId,
    /// Nothing listens: connections are refused.
    Absent,
}

/// A tiny fake upstream on one 127.0.0.1 port: every UDP answer has TC set and holds only the
/// first of its records; over TCP, on the same port, it does what `TcpSide` says. It knows one
/// RRset: eight TXT records of about 100 octets at `big.test`, more than 512 octets in all and
/// less than 1232.
struct TruncatingUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    udp_queries: Arc<AtomicU64>,
    tcp_queries: Arc<AtomicU64>,
    done: mpsc::Receiver<()>,
    threads: usize,
}

const BIG: &str = "big.test";

fn big_rrset() -> Vec<Record> {
    (0..8)
        .map(|i| {
            let text = format!("{i} {}", "x".repeat(98)).into_bytes();
            Record::new(name(BIG), 60, RData::Txt(vec![text]))
        })
        .collect()
}

/// The fake upstream's answer to `query`: TC and one record over UDP, all of them over TCP.
fn upstream_answer(query: &[u8], udp: bool, id_offset: u16) -> Option<Vec<u8>> {
    let q = Message::parse(query).ok()?;
    let mut r = Message::query(q.header.id.wrapping_add(id_offset), q.questions[0].clone());
    r.header.qr = true;
    r.header.ra = true;
    r.header.rd = q.header.rd;
    r.answers = big_rrset();
    if udp {
        r.header.tc = true;
        r.answers.truncate(1);
    }
    r.emit().ok()
}

impl TruncatingUpstream {
    fn start(side: TcpSide) -> TruncatingUpstream {
        // The same port number for UDP and TCP, as a DNS server has.
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
                if side == TcpSide::Absent {
                    return Some((udp, None));
                }
                let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).ok()?;
                Some((udp, Some(tcp)))
            })
            .expect("no port free for both UDP and TCP on 127.0.0.1");
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicU64::new(0));
        let tcp_queries = Arc::new(AtomicU64::new(0));
        let (tx, done) = mpsc::channel();
        let mut threads = 1;
        {
            let (stop, count, tx) = (stop.clone(), udp_queries.clone(), tx.clone());
            thread::spawn(move || {
                udp.set_read_timeout(Some(Duration::from_millis(20)))
                    .unwrap();
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    if let Some(r) = upstream_answer(&buf[..n], true, 0) {
                        let _ = udp.send_to(&r, from);
                    }
                }
                let _ = tx.send(());
            });
        }
        if let Some(listener) = tcp {
            threads += 1;
            let (stop, count) = (stop.clone(), tcp_queries.clone());
            thread::spawn(move || {
                listener.set_nonblocking(true).unwrap();
                let mut held = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut conn, _)) = listener.accept() else {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                    if side == TcpSide::Silent {
                        held.push(conn);
                        continue;
                    }
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let offset = u16::from(side == TcpSide::WrongId);
                    if let Ok(Some(q)) = crate::dns::tcp::read_message(&mut conn) {
                        if let Some(r) = upstream_answer(&q, false, offset) {
                            let _ = crate::dns::tcp::write_message(&mut conn, &r);
                        }
                    }
                }
                let _ = tx.send(());
            });
        }
        TruncatingUpstream {
            addr,
            stop,
            udp_queries,
            tcp_queries,
            done,
            threads,
        }
    }

    /// (UDP queries, TCP connections) so far.
    fn counts(&self) -> (u64, u64) {
        (
            self.udp_queries.load(Ordering::Relaxed),
            self.tcp_queries.load(Ordering::Relaxed),
        )
    }
}

impl Drop for TruncatingUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in 0..self.threads {
            let stopped = self.done.recv_timeout(Duration::from_secs(5));
            if !thread::panicking() {
                stopped.expect("fake upstream did not stop within 5 s");
            }
        }
    }
}

/// A resolver configuration for the fake upstream, with `tcp_timeout`.
fn tcp_config(server: SocketAddr, tcp_timeout: Duration) -> ResolverConfig {
    ResolverConfig {
        tcp_timeout: Some(tcp_timeout),
        ..quick_config(vec![server])
    }
}

/// Resolves big.test TXT with std UDP sockets and std TCP connections.
fn lookup_big_with_tcp(
    config: ResolverConfig,
) -> (Result<LookupAnswer, ResolveError>, ResolverStats) {
    within(10, "lookup with TCP", move || {
        let mut r = Resolver::new(config, random_seed());
        let result = resolve_with_tcp(
            &mut r,
            &mut std_socket_for,
            &mut std_tcp_connect,
            name(BIG),
            RecordType::TXT,
        );
        (result, r.stats())
    })
}

#[test]
fn resolver_retries_a_truncated_answer_over_tcp_and_gets_it_whole() {
    let upstream = TruncatingUpstream::start(TcpSide::Whole);
    let (result, stats) = lookup_big_with_tcp(tcp_config(upstream.addr, Duration::from_secs(2)));
    let answer = result.unwrap();
    assert_eq!(answer.records.len(), 8);
    assert!(!answer.response.unwrap().header.tc);
    assert_eq!(
        (stats.truncated, stats.tcp_retries, stats.tcp_failures),
        (1, 1, 0)
    );
    assert_eq!(
        upstream.counts(),
        (1, 1),
        "one UDP query, then one TCP connection"
    );
}

#[test]
fn resolver_over_udp_only_reports_the_truncated_answer() {
    let upstream = TruncatingUpstream::start(TcpSide::Whole);
    let addr = upstream.addr;
    let (result, stats) = within(10, "lookup over UDP only", move || {
        let mut r = Resolver::new(quick_config(vec![addr]), random_seed());
        let result = resolve(&mut r, &mut std_socket_for, name(BIG), RecordType::TXT);
        (result, r.stats())
    });
    let Err(ResolveError::Truncated {
        server, response, ..
    }) = result
    else {
        panic!("not truncated: {result:?}");
    };
    assert_eq!((server, response.answers.len()), (addr, 1));
    assert_eq!(
        (stats.tcp_failures, stats.tcp_errors),
        (1, 1),
        "Unsupported"
    );
    assert_eq!(upstream.counts(), (1, 0));
}

#[test]
fn tcp_upstream_that_never_answers_ends_within_the_tcp_timeout() {
    let upstream = TruncatingUpstream::start(TcpSide::Silent);
    let started = Instant::now();
    let (result, stats) =
        lookup_big_with_tcp(tcp_config(upstream.addr, Duration::from_millis(300)));
    let took = started.elapsed();
    let Err(ResolveError::Truncated { response, .. }) = result else {
        panic!("not truncated: {result:?}");
    };
    assert_eq!(
        response.answers.len(),
        1,
        "the truncated answer, as it came"
    );
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "took {took:?}"
    );
    assert_eq!(
        (stats.tcp_retries, stats.tcp_failures, stats.tcp_timeouts),
        (1, 1, 1)
    );
    assert_eq!(upstream.counts(), (1, 1));
}

#[test]
fn tcp_answer_under_another_id_is_not_taken() {
    let upstream = TruncatingUpstream::start(TcpSide::WrongId);
    let (result, stats) = lookup_big_with_tcp(tcp_config(upstream.addr, Duration::from_secs(2)));
    assert!(
        matches!(result, Err(ResolveError::Truncated { .. })),
        "{result:?}"
    );
    assert_eq!((stats.responses_unknown_id, stats.tcp_failures), (1, 1));
}

#[test]
fn exchange_over_tcp_is_bounded_against_a_peer_that_trickles() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let peer = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        // A length of 256, then one octet every 50 ms: each read gets data, the whole never.
        let _ = io::Write::write_all(&mut conn, &[1, 0]);
        while !stop2.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
            if io::Write::write_all(&mut conn, &[0]).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let err = within(5, "trickled exchange", move || {
        let deadline = Instant::now() + Duration::from_millis(400);
        exchange_over_tcp(&mut std_tcp_connect, addr, b"query", deadline).unwrap_err()
    });
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    within(5, "trickling peer", move || peer.join().unwrap());
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ),
        "{err}"
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
}

/// A forwarder over std sockets in front of `upstream`, retrying over TCP.
fn tcp_forwarder(upstream: SocketAddr, tcp_timeout: Duration) -> Server {
    Server::start(move |s, stats, stop| {
        let mut resolver = Resolver::new(tcp_config(upstream, tcp_timeout), random_seed());
        serve_forwarding_with_tcp(
            &s,
            &Catalog::new(),
            &mut resolver,
            std_socket_for,
            std_tcp_connect,
            stats,
            stop,
        )
    })
}

/// Asks `server` for big.test TXT over UDP with EDNS (1232 octets) and returns the reply.
fn ask_big(server: SocketAddr) -> Message {
    within(10, "query to the forwarder", move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut q = Message::query(4242, Question::new(name(BIG), RecordType::TXT));
        q.header.rd = true;
        q.edns = Some(crate::dns::Edns::new(crate::dns::EDNS_PAYLOAD_SIZE));
        client.send_to(&q.emit().unwrap(), server).unwrap();
        let mut buf = [0u8; 2048];
        let (n, _) = client.recv_from(&mut buf).unwrap();
        Message::parse(&buf[..n]).unwrap()
    })
}

#[test]
fn forwarder_retries_over_tcp_and_relays_the_whole_answer() {
    let upstream = TruncatingUpstream::start(TcpSide::Whole);
    let forwarder = tcp_forwarder(upstream.addr, Duration::from_secs(2));
    let r = ask_big(forwarder.addr);
    assert_eq!((r.header.id, r.rcode()), (4242, Rcode::NOERROR));
    assert!(!r.header.tc && r.header.ra);
    assert_eq!(r.answers, big_rrset());
    assert_eq!(upstream.counts(), (1, 1));
    let stats = forwarder.stats();
    assert_eq!(
        (stats.forwarded, stats.answered, stats.truncated),
        (1, 1, 0)
    );
}

#[test]
fn forwarder_relays_the_truncated_answer_when_tcp_fails() {
    for side in [TcpSide::Absent, TcpSide::Silent, TcpSide::WrongId] {
        let upstream = TruncatingUpstream::start(side);
        let forwarder = tcp_forwarder(upstream.addr, Duration::from_millis(300));
        let r = ask_big(forwarder.addr);
        assert_eq!((r.header.id, r.rcode()), (4242, Rcode::NOERROR), "{side:?}");
        assert!(r.header.tc && r.header.ra, "{side:?}");
        assert_eq!(r.answers, big_rrset()[..1], "{side:?}");
        let stats = forwarder.stats();
        assert_eq!((stats.truncated, stats.servfail), (1, 0), "{side:?}");
    }
}

/// An upstream that answers A 192.0.2.55 for every name except those under silent.test,
/// which it never answers: a silent upstream for some clients, a working one for the others.
fn half_silent_upstream() -> Server {
    Server::start(|s, _stats, stop| {
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let Ok(q) = Message::parse(&buf[..n]) else {
                continue;
            };
            let Some(question) = q.questions.first().cloned() else {
                continue;
            };
            if question.name.is_subdomain_of(&name("silent.test")) {
                continue;
            }
            let mut r = q.clone();
            r.header.qr = true;
            r.header.ra = true;
            r.answers = vec![Record::new(
                question.name,
                60,
                RData::A(Ipv4Addr::new(192, 0, 2, 55)),
            )];
            let _ = s.send_to(&r.emit().unwrap(), from);
        }
        Ok(())
    })
}

/// A concurrent forwarder in front of `upstream` with `policy`; silent lookups end after 2 s.
fn policy_forwarder(upstream: SocketAddr, policy: ForwardPolicy) -> Server {
    Server::start(move |s, stats, stop| {
        let config = ResolverConfig {
            timeout: Duration::from_secs(2),
            attempts: 1,
            ..ResolverConfig::new(vec![upstream])
        };
        let mut resolver = Resolver::with_os_ids(config);
        serve_forwarding_with_policy(
            &s,
            &Catalog::new(),
            &mut resolver,
            std_socket_for,
            NoTcp,
            &policy,
            stats,
            stop,
        )
    })
}

/// Sends an A query for `n` from a new client socket, without waiting for the answer.
fn send_query(server: SocketAddr, n: &str) -> UdpSocket {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut q = Message::query(7, Question::new(name(n), RecordType::A));
    q.header.rd = true;
    client.send_to(&q.emit().unwrap(), server).unwrap();
    client
}

fn receive_answer(client: &UdpSocket, wait: Duration) -> Option<Message> {
    client.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 2048];
    let (n, _) = client.recv_from(&mut buf).ok()?;
    Message::parse(&buf[..n]).ok()
}

#[test]
fn a_silent_upstream_delays_only_its_own_clients() {
    let upstream = half_silent_upstream();
    let forwarder = policy_forwarder(upstream.addr, ForwardPolicy::default());
    let addr = forwarder.addr;
    let (waiting, answered) = within(20, "clients of the forwarder", move || {
        let started = Instant::now();
        // Eight clients ask names the upstream never answers; their lookups wait 2 s.
        let silent: Vec<UdpSocket> = (0..8)
            .map(|i| send_query(addr, &format!("n{i}.silent.test")))
            .collect();
        // Eight more ask names it answers: each gets its answer long before the silent ones.
        let mut slowest = Duration::ZERO;
        for i in 0..8 {
            let c = send_query(addr, &format!("n{i}.fast.test"));
            let r = receive_answer(&c, Duration::from_secs(5)).expect("a prompt answer");
            assert_eq!(r.answers.len(), 1, "{r:?}");
            slowest = slowest.max(started.elapsed());
        }
        let still_waiting = silent
            .iter()
            .filter(|c| receive_answer(c, Duration::from_millis(10)).is_none())
            .count();
        // The silent clients end with SERVFAIL after the resolver's timeout.
        for c in &silent {
            let r = receive_answer(c, Duration::from_secs(5)).expect("SERVFAIL in the end");
            assert_eq!(r.rcode(), Rcode::SERVFAIL);
        }
        (still_waiting, slowest)
    });
    assert!(
        answered < Duration::from_millis(1500),
        "the answered clients waited {answered:?} behind the silent ones"
    );
    assert_eq!(waiting, 8, "the silent clients were still waiting then");
    let stats = forwarder.stats();
    assert_eq!(
        (stats.forwarded, stats.servfail, stats.answered),
        (16, 8, 8)
    );
    assert_eq!(stats.forward_dropped, 0);
}

#[test]
fn lookups_in_flight_are_bounded_and_the_excess_is_dropped_and_counted() {
    let upstream = half_silent_upstream();
    let policy = ForwardPolicy {
        max_in_flight: 2,
        ..ForwardPolicy::default()
    };
    let forwarder = policy_forwarder(upstream.addr, policy);
    let addr = forwarder.addr;
    let stats = forwarder.stats.clone();
    within(20, "clients of the forwarder", move || {
        let clients: Vec<UdpSocket> = (0..5)
            .map(|i| send_query(addr, &format!("n{i}.silent.test")))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.lock().unwrap().forward_dropped < 3 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let answered = clients
            .iter()
            .filter(|c| receive_answer(c, Duration::from_secs(3)).is_some())
            .count();
        assert_eq!(answered, 2, "only the two lookups in flight were answered");
    });
    let s = forwarder.stats();
    assert_eq!((s.forwarded, s.forward_dropped, s.servfail), (5, 3, 2));
}

#[test]
fn clients_outside_the_allowed_networks_get_refused_and_are_counted() {
    let upstream = half_silent_upstream();
    let policy = ForwardPolicy {
        allow: Some(vec![crate::dns::policy::ClientNet::new(
            Ipv4Addr::new(192, 0, 2, 0),
            24,
        )]),
        ..ForwardPolicy::default()
    };
    let forwarder = policy_forwarder(upstream.addr, policy);
    let addr = forwarder.addr;
    let r = within(10, "a refused client", move || {
        receive_answer(&send_query(addr, "www.fast.test"), Duration::from_secs(5))
    })
    .expect("an answer");
    // 127.0.0.1 is not in 192.0.2.0/24.
    assert_eq!(r.rcode(), Rcode::REFUSED);
    let s = forwarder.stats();
    assert_eq!((s.refused_recursion, s.forwarded), (1, 0));
}

#[test]
fn responses_past_the_rate_slip_truncated_or_drop_and_are_counted() {
    let policy = ForwardPolicy {
        rate: RateLimit {
            responses_per_second: 3,
            slip: 2,
            max_prefixes: 16,
        },
        ..ForwardPolicy::default()
    };
    let forwarder = Server::start(move |s, stats, stop| {
        let mut resolver = Resolver::new(quick_config(vec![]), 1);
        serve_forwarding_with_policy(
            &s,
            &demo_catalog(),
            &mut resolver,
            std_socket_for,
            NoTcp,
            &policy,
            stats,
            stop,
        )
    });
    let addr = forwarder.addr;
    let (full, truncated) = within(10, "rate-limited client", move || {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut q = Message::query(3, Question::new(name("demo.test"), RecordType::A));
        q.header.rd = true;
        for _ in 0..7 {
            client.send_to(&q.emit().unwrap(), addr).unwrap();
        }
        let (mut full, mut truncated) = (0, 0);
        while let Some(r) = receive_answer(&client, Duration::from_millis(500)) {
            if r.header.tc {
                assert!(r.answers.is_empty());
                truncated += 1;
            } else {
                full += 1;
            }
        }
        (full, truncated)
    });
    // Three within the rate, then of four limited: two slip (TC), two dropped.
    assert_eq!((full, truncated), (3, 2));
    let s = forwarder.stats();
    assert_eq!((s.rate_limited_slipped, s.rate_limited_dropped), (2, 2));
}

#[test]
fn upstream_sockets_are_connected_and_ignore_other_senders() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap();
    let s = std_socket_for(server).unwrap();
    assert_eq!(s.peer_addr().unwrap(), server);
    // A datagram from another port never reaches the lookup's socket.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"spoof", s.local_addr().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert!(s.recv_from(&mut buf).is_err());
}
