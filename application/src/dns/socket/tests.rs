//! Blocking resolver and servers over std UDP sockets on 127.0.0.1. Every wait has a deadline.

use super::*;
use crate::dns::testutil::{name, tool_present, within};
use crate::dns::{demo_zone, Message, Question, RData, Rcode, Record, ResolverConfig, Zone};
use std::net::Ipv4Addr;
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
/// unless NETSTACK_REQUIRE_SYSTEM_TESTS is set).
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
