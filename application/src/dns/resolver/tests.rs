use super::*;
use crate::dns::testutil::{name, soa};
use std::net::Ipv4Addr;

const S1: &str = "192.0.2.53:53";
const S2: &str = "198.51.100.53:53";

fn s1() -> SocketAddr {
    S1.parse().unwrap()
}
fn s2() -> SocketAddr {
    S2.parse().unwrap()
}

fn resolver(servers: &[SocketAddr]) -> Resolver {
    Resolver::new(ResolverConfig::new(servers.to_vec()), 7)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn a(owner: &str, ttl: u32, last: u8) -> Record {
    Record::new(name(owner), ttl, RData::A(Ipv4Addr::new(192, 0, 2, last)))
}

fn cname(owner: &str, target: &str) -> Record {
    Record::new(name(owner), 300, RData::Cname(name(target)))
}

/// Sends the first query of `l`, answers it from S1 and returns the outcome.
fn first_answer(
    l: &mut Lookup,
    r: &mut Resolver,
    now: Instant,
    rcode: Rcode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
) -> Result<LookupAnswer, ResolveError> {
    let (_, q) = expect_send(l, r, now);
    l.on_response(r, now, s1(), &reply(&q, rcode, answers, authorities));
    expect_done(l, r, now)
}

/// Expects a transmission and returns it with the query it carries.
fn expect_send(l: &mut Lookup, r: &mut Resolver, now: Instant) -> (Transmit, Message) {
    match l.poll(r, now) {
        Step::Send(t) => {
            let q = Message::parse(&t.payload).unwrap();
            (t, q)
        }
        other => panic!("expected a send, got {other:?}"),
    }
}

fn expect_done(
    l: &mut Lookup,
    r: &mut Resolver,
    now: Instant,
) -> Result<LookupAnswer, ResolveError> {
    match l.poll(r, now) {
        Step::Done(d) => d,
        other => panic!("expected the end, got {other:?}"),
    }
}

/// The response a server would send to `q`.
fn reply(q: &Message, rcode: Rcode, answers: Vec<Record>, authorities: Vec<Record>) -> Vec<u8> {
    let mut m = Message {
        header: HeaderRepr {
            id: q.header.id,
            qr: true,
            rd: true,
            ra: true,
            ..HeaderRepr::default()
        },
        questions: q.questions.clone(),
        answers,
        authorities,
        ..Message::default()
    };
    m.set_rcode(rcode);
    m.emit().unwrap()
}

use crate::dns::HeaderRepr;

#[test]
fn query_carries_a_random_id_the_question_rd_and_edns() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.demo.test"), RecordType::A);
    let (t, q) = expect_send(&mut l, &mut r, t0);
    assert_eq!(t.server, s1());
    assert!(t.fresh_socket);
    assert_eq!(
        q.questions,
        vec![Question::new(name("www.demo.test"), RecordType::A)]
    );
    assert!(q.header.rd && !q.header.qr);
    assert_eq!(q.edns.as_ref().unwrap().udp_payload_size, EDNS_PAYLOAD_SIZE);
    // The ID comes from the seeded generator: another seed, another ID.
    let mut other = Resolver::new(ResolverConfig::new(vec![s1()]), 8);
    let mut l2 = other.lookup(name("www.demo.test"), RecordType::A);
    let (_, q2) = expect_send(&mut l2, &mut other, t0);
    assert_ne!(q.header.id, q2.header.id);
    assert_eq!(l.poll(&mut r, t0), Step::Wait(t0 + secs(1)));
}

#[test]
fn answer_completes_the_lookup_and_fills_the_cache() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let answer = first_answer(
        &mut l,
        &mut r,
        t0,
        Rcode::NOERROR,
        vec![a("a.test", 60, 1)],
        vec![],
    )
    .unwrap();
    assert_eq!(answer.records, vec![a("a.test", 60, 1)]);
    assert_eq!(
        answer.addresses(),
        vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]
    );
    assert!(!answer.from_cache);
    assert_eq!(answer.response.as_ref().map(|m| m.answers.len()), Some(1));
    // Ten seconds later the cache answers, with the TTL counted down.
    let mut again = r.lookup(name("A.test"), RecordType::A);
    let cached = expect_done(&mut again, &mut r, t0 + secs(10)).unwrap();
    assert_eq!(cached.records, vec![a("a.test", 50, 1)]);
    assert!(cached.from_cache);
    assert_eq!(cached.response, None);
    assert_eq!((r.stats().queries_sent, r.stats().cache_answers), (1, 1));
}

#[test]
fn cached_records_expire_with_their_ttl() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    first_answer(
        &mut l,
        &mut r,
        t0,
        Rcode::NOERROR,
        vec![a("a.test", 60, 1)],
        vec![],
    )
    .unwrap();
    let mut later = r.lookup(name("a.test"), RecordType::A);
    expect_send(&mut later, &mut r, t0 + secs(60));
}

#[test]
fn silent_server_is_retried_with_doubling_timeouts_then_times_out() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (first, q1) = expect_send(&mut l, &mut r, t0);
    assert_eq!(
        l.poll(&mut r, t0 + Duration::from_millis(999)),
        Step::Wait(t0 + secs(1))
    );
    let (retry, q2) = expect_send(&mut l, &mut r, t0 + secs(1));
    assert_eq!(
        (first.server, retry.server, retry.fresh_socket),
        (s1(), s1(), false)
    );
    assert_ne!(q1.header.id, q2.header.id, "each try has its own ID");
    assert_eq!(l.poll(&mut r, t0 + secs(2)), Step::Wait(t0 + secs(3)));
    assert_eq!(
        expect_done(&mut l, &mut r, t0 + secs(3)),
        Err(ResolveError::Timeout { tries: 2 })
    );
    assert_eq!(
        (
            r.stats().queries_sent,
            r.stats().retries,
            r.stats().timeouts
        ),
        (2, 1, 2)
    );
}

#[test]
fn tries_rotate_over_the_servers() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1(), s2()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let mut sent = vec![];
    let mut now = t0;
    loop {
        match l.poll(&mut r, now) {
            Step::Send(t) => sent.push((t.server, now - t0)),
            Step::Wait(d) => now = d,
            Step::Done(d) => {
                assert_eq!(d, Err(ResolveError::Timeout { tries: 4 }));
                break;
            }
            Step::SendTcp(t) => panic!("no answer was truncated: {t:?}"),
        }
    }
    assert_eq!(
        sent,
        vec![
            (s1(), secs(0)),
            (s2(), secs(1)),
            (s1(), secs(2)),
            (s2(), secs(4))
        ]
    );
    assert_eq!(now - t0, secs(6));
}

#[test]
fn late_answer_to_an_earlier_try_is_accepted() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1(), s2()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (_, q1) = expect_send(&mut l, &mut r, t0);
    expect_send(&mut l, &mut r, t0 + secs(1));
    l.on_response(
        &mut r,
        t0 + secs(1),
        s1(),
        &reply(&q1, Rcode::NOERROR, vec![a("a.test", 60, 1)], vec![]),
    );
    assert_eq!(
        expect_done(&mut l, &mut r, t0 + secs(1))
            .unwrap()
            .records
            .len(),
        1
    );
}

#[test]
fn responses_that_do_not_match_are_ignored() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let good = reply(&q, Rcode::NOERROR, vec![a("a.test", 60, 1)], vec![]);
    // Wrong ID.
    let mut wrong_id = q.clone();
    wrong_id.header.id = q.header.id.wrapping_add(1);
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&wrong_id, Rcode::NOERROR, vec![a("a.test", 60, 66)], vec![]),
    );
    // Right ID from another address.
    l.on_response(&mut r, t0, s2(), &good);
    // Right ID and server, another question.
    let mut other_q = q.clone();
    other_q.questions[0].name = name("b.test");
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&other_q, Rcode::NOERROR, vec![a("b.test", 60, 66)], vec![]),
    );
    other_q.questions[0] = Question::new(name("a.test"), RecordType::AAAA);
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&other_q, Rcode::NOERROR, vec![], vec![]),
    );
    // Not a response at all, and garbage.
    l.on_response(&mut r, t0, s1(), &q.emit().unwrap());
    l.on_response(&mut r, t0, s1(), &good[..good.len() - 1]);
    assert_eq!(l.poll(&mut r, t0), Step::Wait(t0 + secs(1)));
    let s = r.stats();
    assert_eq!(
        (
            s.responses_unknown_id,
            s.responses_wrong_server,
            s.responses_wrong_question,
            s.responses_not_response,
            s.responses_malformed,
            s.responses_accepted
        ),
        (1, 1, 2, 1, 1, 0)
    );
    // 0x20-style case changes in the echoed question are fine (RFC 4343).
    let mut upper = q.clone();
    upper.questions[0].name = name("A.TEST");
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&upper, Rcode::NOERROR, vec![a("a.test", 60, 1)], vec![]),
    );
    assert_eq!(
        expect_done(&mut l, &mut r, t0).unwrap().records,
        vec![a("a.test", 60, 1)]
    );
}

#[test]
fn servfail_moves_to_the_next_server_at_once() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1(), s2()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::SERVFAIL, vec![], vec![]),
    );
    let (t, q2) = expect_send(&mut l, &mut r, t0);
    assert_eq!(t.server, s2());
    l.on_response(
        &mut r,
        t0,
        s2(),
        &reply(&q2, Rcode::NOERROR, vec![a("a.test", 60, 1)], vec![]),
    );
    assert!(expect_done(&mut l, &mut r, t0).is_ok());
}

#[test]
fn every_server_failing_reports_the_last_failure() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    for rcode in [Rcode::SERVFAIL, Rcode::REFUSED] {
        let (_, q) = expect_send(&mut l, &mut r, t0);
        l.on_response(&mut r, t0, s1(), &reply(&q, rcode, vec![], vec![]));
    }
    assert_eq!(
        expect_done(&mut l, &mut r, t0),
        Err(ResolveError::ServerFailure {
            rcode: Rcode::REFUSED,
            server: s1()
        })
    );
    assert_eq!(r.stats().server_failures, 2);
}

#[test]
fn truncated_response_without_tcp_is_reported_with_the_truncated_answer() {
    let t0 = Instant::now();
    let config = ResolverConfig {
        tcp_timeout: None,
        ..ResolverConfig::new(vec![s1()])
    };
    let mut r = Resolver::new(config, 7);
    let mut l = r.lookup(name("a.test"), RecordType::TXT);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let truncated = truncated_reply(&q, vec![]);
    l.on_response(&mut r, t0, s1(), &truncated);
    assert_eq!(
        expect_done(&mut l, &mut r, t0),
        Err(ResolveError::Truncated {
            server: s1(),
            question: Question::new(name("a.test"), RecordType::TXT),
            cnames: vec![],
            response: Box::new(Message::parse(&truncated).unwrap()),
        })
    );
    assert_eq!((r.stats().truncated, r.stats().tcp_retries), (1, 0));
}

#[test]
fn cname_chain_in_one_response_is_followed() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let answers = vec![
        cname("www.test", "web.test"),
        cname("web.test", "host.test"),
        a("host.test", 60, 9),
    ];
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NOERROR, answers, vec![]),
    );
    let answer = expect_done(&mut l, &mut r, t0).unwrap();
    assert_eq!(
        answer.cnames,
        vec![
            cname("www.test", "web.test"),
            cname("web.test", "host.test")
        ]
    );
    assert_eq!(answer.records, vec![a("host.test", 60, 9)]);
    assert_eq!(answer.answers().count(), 3);
    // The whole chain is cached.
    let mut again = r.lookup(name("www.test"), RecordType::A);
    let cached = expect_done(&mut again, &mut r, t0 + secs(1)).unwrap();
    assert!(cached.from_cache);
    assert_eq!(cached.cnames.len(), 2);
}

#[test]
fn cname_to_elsewhere_is_asked_again_from_a_fresh_socket() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(
            &q,
            Rcode::NOERROR,
            vec![cname("www.test", "cdn.example")],
            vec![],
        ),
    );
    let (t, q2) = expect_send(&mut l, &mut r, t0);
    assert!(t.fresh_socket);
    assert_eq!(
        q2.questions,
        vec![Question::new(name("cdn.example"), RecordType::A)]
    );
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q2, Rcode::NOERROR, vec![a("cdn.example", 60, 4)], vec![]),
    );
    let answer = expect_done(&mut l, &mut r, t0).unwrap();
    assert_eq!(answer.cnames, vec![cname("www.test", "cdn.example")]);
    assert_eq!(answer.records, vec![a("cdn.example", 60, 4)]);
}

#[test]
fn cname_loop_is_an_error() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let answers = vec![cname("a.test", "b.test"), cname("b.test", "a.test")];
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NOERROR, answers, vec![]),
    );
    assert_eq!(
        expect_done(&mut l, &mut r, t0),
        Err(ResolveError::CnameLoop(name("a.test")))
    );
}

#[test]
fn cname_chain_longer_than_the_bound_is_an_error() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("c0.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let answers = (0..10)
        .map(|i| cname(&format!("c{i}.test"), &format!("c{}.test", i + 1)))
        .collect();
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NOERROR, answers, vec![]),
    );
    assert_eq!(
        expect_done(&mut l, &mut r, t0),
        Err(ResolveError::CnameChainTooLong)
    );
}

#[test]
fn nxdomain_is_cached_for_the_negative_ttl_for_every_type() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("gone.test"), RecordType::A);
    let answer = first_answer(
        &mut l,
        &mut r,
        t0,
        Rcode::NXDOMAIN,
        vec![],
        vec![soa("test", 300, 30)],
    )
    .unwrap();
    assert_eq!(answer.rcode, Rcode::NXDOMAIN);
    assert_eq!(answer.soa, Some(soa("test", 300, 30)));
    // RFC 2308 §5: for min(300, 30) = 30 s, any type at that name is NXDOMAIN from the cache.
    let mut mx = r.lookup(name("gone.test"), RecordType::MX);
    let cached = expect_done(&mut mx, &mut r, t0 + secs(29)).unwrap();
    assert_eq!((cached.rcode, cached.from_cache), (Rcode::NXDOMAIN, true));
    let mut after = r.lookup(name("gone.test"), RecordType::A);
    expect_send(&mut after, &mut r, t0 + secs(30));
}

#[test]
fn nodata_is_cached_for_its_type_only() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::AAAA);
    let answer = first_answer(
        &mut l,
        &mut r,
        t0,
        Rcode::NOERROR,
        vec![],
        vec![soa("test", 60, 60)],
    )
    .unwrap();
    assert_eq!((answer.rcode, answer.records.len()), (Rcode::NOERROR, 0));
    let mut again = r.lookup(name("a.test"), RecordType::AAAA);
    assert!(
        expect_done(&mut again, &mut r, t0 + secs(1))
            .unwrap()
            .from_cache
    );
    let mut other = r.lookup(name("a.test"), RecordType::A);
    expect_send(&mut other, &mut r, t0 + secs(1));
}

#[test]
fn negative_answer_without_soa_is_not_cached() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("gone.test"), RecordType::A);
    assert_eq!(
        first_answer(&mut l, &mut r, t0, Rcode::NXDOMAIN, vec![], vec![])
            .unwrap()
            .rcode,
        Rcode::NXDOMAIN
    );
    let mut again = r.lookup(name("gone.test"), RecordType::A);
    expect_send(&mut again, &mut r, t0);
}

#[test]
fn nxdomain_after_a_cname_speaks_of_the_target() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("alias.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let answers = vec![cname("alias.test", "gone.test")];
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NXDOMAIN, answers, vec![soa("test", 60, 60)]),
    );
    let answer = expect_done(&mut l, &mut r, t0).unwrap();
    assert_eq!(answer.rcode, Rcode::NXDOMAIN);
    assert_eq!(answer.cnames.len(), 1);
    // The alias itself exists: its CNAME is cached, the NXDOMAIN belongs to the target.
    let mut target = r.lookup(name("gone.test"), RecordType::TXT);
    assert_eq!(
        expect_done(&mut target, &mut r, t0).unwrap().rcode,
        Rcode::NXDOMAIN
    );
}

#[test]
fn unrelated_records_in_a_response_are_not_cached() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let answers = vec![a("a.test", 60, 1), a("bank.example", 60, 66)];
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NOERROR, answers, vec![]),
    );
    assert_eq!(
        expect_done(&mut l, &mut r, t0).unwrap().records,
        vec![a("a.test", 60, 1)]
    );
    let mut poisoned = r.lookup(name("bank.example"), RecordType::A);
    expect_send(&mut poisoned, &mut r, t0);
}

#[test]
fn no_servers_is_an_error() {
    let mut r = resolver(&[]);
    let mut l = r.lookup(name("a.test"), RecordType::A);
    assert_eq!(
        expect_done(&mut l, &mut r, Instant::now()),
        Err(ResolveError::NoServers)
    );
}

#[test]
fn id_generator_is_deterministic_per_seed_and_spreads() {
    let mut a = IdRng::new(1);
    let mut b = IdRng::new(1);
    let ids: Vec<u16> = (0..1000).map(|_| a.next_u16()).collect();
    assert_eq!(ids, (0..1000).map(|_| b.next_u16()).collect::<Vec<_>>());
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert!(distinct.len() > 980, "{} distinct of 1000", distinct.len());
}

/// `q`'s answer with TC set and only `answers` (what fitted).
fn truncated_reply(q: &Message, answers: Vec<Record>) -> Vec<u8> {
    let mut m = Message::parse(&reply(q, Rcode::NOERROR, answers, vec![])).unwrap();
    m.header.tc = true;
    m.emit().unwrap()
}

fn txt(owner: &str, i: usize) -> Record {
    Record::new(
        name(owner),
        60,
        RData::Txt(vec![format!("{i}").into_bytes()]),
    )
}

/// Expects a retry over TCP and returns it with the query it carries.
fn expect_tcp(l: &mut Lookup, r: &mut Resolver, now: Instant) -> (TcpTransmit, Message) {
    match l.poll(r, now) {
        Step::SendTcp(t) => {
            let q = Message::parse(&t.payload).unwrap();
            (t, q)
        }
        other => panic!("expected a retry over TCP, got {other:?}"),
    }
}

/// A lookup of a.test TXT whose first UDP answer (from S1) came back truncated, holding one
/// record; returns the truncated answer's bytes.
fn truncated_lookup(r: &mut Resolver, t0: Instant) -> (Lookup, Vec<u8>) {
    let mut l = r.lookup(name("a.test"), RecordType::TXT);
    let (_, q) = expect_send(&mut l, r, t0);
    let truncated = truncated_reply(&q, vec![txt("a.test", 0)]);
    l.on_response(r, t0, s1(), &truncated);
    (l, truncated)
}

fn truncated_error(
    server: SocketAddr,
    qname: &str,
    cnames: Vec<Record>,
    bytes: &[u8],
) -> ResolveError {
    ResolveError::Truncated {
        server,
        question: Question::new(name(qname), RecordType::TXT),
        cnames,
        response: Box::new(Message::parse(bytes).unwrap()),
    }
}

#[test]
fn truncated_answer_is_asked_again_over_tcp_of_the_same_server_with_a_fresh_id() {
    // RFC 1035 §4.2.2, RFC 7766 §5.
    let t0 = Instant::now();
    let mut r = resolver(&[s1(), s2()]);
    let mut l = r.lookup(name("a.test"), RecordType::TXT);
    let (_, udp) = expect_send(&mut l, &mut r, t0);
    l.on_response(
        &mut r,
        t0,
        s1(),
        &truncated_reply(&udp, vec![txt("a.test", 0)]),
    );
    let (t, q) = expect_tcp(&mut l, &mut r, t0);
    assert_eq!(t.server, s1());
    assert_eq!(t.deadline, t0 + DEFAULT_TCP_TIMEOUT);
    assert_eq!(q.questions, udp.questions);
    assert_ne!(q.header.id, udp.header.id, "a fresh ID (RFC 5452)");
    assert!(q.header.rd && !q.header.qr);
    // Nothing else happens while the exchange runs; a late UDP answer no longer counts.
    assert_eq!(l.poll(&mut r, t0 + secs(1)), Step::Wait(t.deadline));
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&udp, Rcode::NOERROR, vec![], vec![]),
    );
    assert_eq!(r.stats().responses_unknown_id, 1);
    let whole: Vec<Record> = (0..40).map(|i| txt("a.test", i)).collect();
    l.on_tcp_response(
        &mut r,
        t0 + secs(1),
        &reply(&q, Rcode::NOERROR, whole.clone(), vec![]),
    );
    let answer = expect_done(&mut l, &mut r, t0 + secs(1)).unwrap();
    assert_eq!(answer.records, whole);
    assert_eq!(answer.response.as_ref().map(|m| m.answers.len()), Some(40));
    let s = r.stats();
    assert_eq!(
        (s.truncated, s.tcp_retries, s.tcp_failures, s.queries_sent),
        (1, 1, 0, 2)
    );
    // The whole answer went into the cache (its TTLs now a second lower).
    let mut again = r.lookup(name("a.test"), RecordType::TXT);
    let cached = expect_done(&mut again, &mut r, t0 + secs(2)).unwrap();
    assert!(cached.from_cache);
    assert_eq!(cached.records.len(), 40);
}

#[test]
fn tcp_answer_that_does_not_match_fails_the_retry_with_the_truncated_answer() {
    let t0 = Instant::now();
    type Spoil = fn(&mut Message);
    let cases: [(&str, Spoil); 5] = [
        ("another ID", |m| m.header.id = m.header.id.wrapping_add(1)),
        ("another question", |m| {
            m.questions[0].name = name("b.test");
        }),
        ("a query, not a response", |m| m.header.qr = false),
        ("TC set over TCP", |m| m.header.tc = true),
        ("malformed", |m| m.header.id ^= 0), // replaced by garbage below
    ];
    for (what, spoil) in cases {
        let mut r = resolver(&[s1()]);
        let (mut l, truncated) = truncated_lookup(&mut r, t0);
        let (_, q) = expect_tcp(&mut l, &mut r, t0);
        let mut m =
            Message::parse(&reply(&q, Rcode::NOERROR, vec![txt("a.test", 1)], vec![])).unwrap();
        spoil(&mut m);
        let bytes = if what == "malformed" {
            vec![0xde, 0xad]
        } else {
            m.emit().unwrap()
        };
        l.on_tcp_response(&mut r, t0, &bytes);
        assert_eq!(
            expect_done(&mut l, &mut r, t0),
            Err(truncated_error(s1(), "a.test", vec![], &truncated)),
            "{what}"
        );
        let s = r.stats();
        assert_eq!((s.tcp_retries, s.tcp_failures), (1, 1), "{what}");
        let by_cause = [
            s.responses_unknown_id,
            s.responses_wrong_question,
            s.responses_not_response,
            s.tcp_truncated,
            s.responses_malformed,
        ];
        assert_eq!(by_cause.iter().sum::<u64>(), 1, "{what}: {s:?}");
    }
}

#[test]
fn tcp_retry_past_its_deadline_ends_with_the_truncated_answer() {
    let t0 = Instant::now();
    let config = ResolverConfig {
        tcp_timeout: Some(Duration::from_millis(300)),
        ..ResolverConfig::new(vec![s1()])
    };
    let mut r = Resolver::new(config, 7);
    let (mut l, truncated) = truncated_lookup(&mut r, t0);
    let (t, q) = expect_tcp(&mut l, &mut r, t0);
    assert_eq!(t.deadline, t0 + Duration::from_millis(300));
    assert_eq!(
        expect_done(&mut l, &mut r, t.deadline),
        Err(truncated_error(s1(), "a.test", vec![], &truncated))
    );
    // An answer after the end changes nothing.
    l.on_tcp_response(
        &mut r,
        t.deadline,
        &reply(&q, Rcode::NOERROR, vec![], vec![]),
    );
    assert!(matches!(
        expect_done(&mut l, &mut r, t.deadline),
        Err(ResolveError::Truncated { .. })
    ));
    let s = r.stats();
    assert_eq!((s.tcp_retries, s.tcp_failures, s.tcp_timeouts), (1, 1, 1));
    assert_eq!(s.timeouts, 0, "UDP timeouts are counted apart");
}

#[test]
fn tcp_connection_failure_ends_with_the_truncated_answer() {
    let t0 = Instant::now();
    for (kind, errors, timeouts) in [
        (io::ErrorKind::ConnectionRefused, 1, 0),
        (io::ErrorKind::UnexpectedEof, 1, 0),
        (io::ErrorKind::WouldBlock, 0, 1),
    ] {
        let mut r = resolver(&[s1(), s2()]);
        let (mut l, truncated) = truncated_lookup(&mut r, t0);
        expect_tcp(&mut l, &mut r, t0);
        l.on_tcp_failure(&mut r, kind);
        assert_eq!(
            expect_done(&mut l, &mut r, t0),
            Err(truncated_error(s1(), "a.test", vec![], &truncated)),
            "{kind:?}"
        );
        let s = r.stats();
        assert_eq!(
            (s.tcp_failures, s.tcp_errors, s.tcp_timeouts),
            (1, errors, timeouts),
            "{kind:?}"
        );
    }
}

#[test]
fn servfail_over_tcp_moves_on_to_the_next_server_over_udp() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1(), s2()]);
    let (mut l, _) = truncated_lookup(&mut r, t0);
    let (_, q) = expect_tcp(&mut l, &mut r, t0);
    l.on_tcp_response(&mut r, t0, &reply(&q, Rcode::SERVFAIL, vec![], vec![]));
    let (t, _) = expect_send(&mut l, &mut r, t0);
    assert_eq!(t.server, s2());
    assert_eq!(r.stats().server_failures, 1);
}

#[test]
fn truncated_answer_after_a_cname_keeps_the_chain() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.test"), RecordType::TXT);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let chain = vec![cname("www.test", "a.test")];
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(&q, Rcode::NOERROR, chain.clone(), vec![]),
    );
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let truncated = truncated_reply(&q, vec![]);
    l.on_response(&mut r, t0, s1(), &truncated);
    let (_, tcp) = expect_tcp(&mut l, &mut r, t0);
    assert_eq!(
        tcp.questions, q.questions,
        "the retry asks for the CNAME's target"
    );
    l.on_tcp_failure(&mut r, io::ErrorKind::ConnectionReset);
    assert_eq!(
        expect_done(&mut l, &mut r, t0),
        Err(truncated_error(s1(), "a.test", chain, &truncated))
    );
}

/// `count` A records at `owner`, enough to make a response of about 16 octets each.
fn many_a(owner: &str, count: u8) -> Vec<Record> {
    (0..count).map(|i| a(owner, 60, i)).collect()
}

#[test]
fn an_answer_larger_than_the_advertised_size_is_dropped_and_counted() {
    let t0 = Instant::now();
    // Without EDNS we advertise 512 octets.
    let config = ResolverConfig {
        edns_payload: None,
        ..ResolverConfig::new(vec![s1()])
    };
    let mut r = Resolver::new(config, 7);
    let mut l = r.lookup(name("big.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let big = reply(&q, Rcode::NOERROR, many_a("big.test", 40), vec![]);
    assert!(big.len() > 512, "{}", big.len());
    l.on_response(&mut r, t0, s1(), &big);
    assert_eq!(r.stats().responses_oversize, 1);
    assert_eq!(r.stats().responses_accepted, 0);
    assert!(matches!(l.poll(&mut r, t0), Step::Wait(_)), "still waiting");
    // One that fits is taken.
    let small = reply(&q, Rcode::NOERROR, many_a("big.test", 2), vec![]);
    l.on_response(&mut r, t0, s1(), &small);
    assert_eq!(expect_done(&mut l, &mut r, t0).unwrap().records.len(), 2);
}

#[test]
fn with_edns_the_bound_is_the_size_we_advertised() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let advertised = usize::from(r.config().edns_payload.unwrap());
    let mut l = r.lookup(name("big.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    // Between 512 and our EDNS size: accepted.
    let mid = reply(&q, Rcode::NOERROR, many_a("big.test", 40), vec![]);
    assert!(mid.len() > 512 && mid.len() <= advertised);
    l.on_response(&mut r, t0, s1(), &mid);
    assert!(expect_done(&mut l, &mut r, t0).is_ok());
    let mut l = r.lookup(name("bigger.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let over = reply(&q, Rcode::NOERROR, many_a("bigger.test", 90), vec![]);
    assert!(over.len() > advertised);
    l.on_response(&mut r, t0, s1(), &over);
    assert_eq!(r.stats().responses_oversize, 1);
}

#[test]
fn records_off_the_question_chain_are_neither_cached_nor_used_and_are_counted() {
    let t0 = Instant::now();
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.example.test"), RecordType::A);
    let answer = first_answer(
        &mut l,
        &mut r,
        t0,
        Rcode::NOERROR,
        vec![
            cname("www.example.test", "web.example.test"),
            a("web.example.test", 60, 1),
            // Poison attempts: another name, and another type at the target.
            a("bank.test", 60, 66),
            Record::new(name("web.example.test"), 60, RData::Ns(name("evil.test"))),
        ],
        vec![Record::new(
            name("bank.test"),
            60,
            RData::Ns(name("evil.test")),
        )],
    )
    .unwrap();
    assert_eq!(answer.answers().count(), 2);
    assert_eq!(r.stats().records_not_cached, 3);
    let mut l = r.lookup(name("bank.test"), RecordType::A);
    assert!(matches!(l.poll(&mut r, t0), Step::Send(_)), "not cached");
}

#[test]
fn a_cname_target_outside_the_bailiwick_is_asked_for_on_its_own() {
    let t0 = Instant::now();
    let config = ResolverConfig {
        bailiwick: name("example.test"),
        ..ResolverConfig::new(vec![s1()])
    };
    let mut r = Resolver::new(config, 7);
    let mut l = r.lookup(name("www.example.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let resp = reply(
        &q,
        Rcode::NOERROR,
        vec![
            cname("www.example.test", "cdn.other.test"),
            a("cdn.other.test", 60, 66),
        ],
        vec![],
    );
    l.on_response(&mut r, t0, s1(), &resp);
    assert_eq!(
        r.stats().records_not_cached,
        1,
        "the target's A is not trusted"
    );
    // The target is asked for with a query of its own; its answer then counts.
    let (_, q2) = expect_send(&mut l, &mut r, t0);
    assert_eq!(q2.questions[0].name, name("cdn.other.test"));
    l.on_response(
        &mut r,
        t0,
        s1(),
        &reply(
            &q2,
            Rcode::NOERROR,
            vec![a("cdn.other.test", 60, 7)],
            vec![],
        ),
    );
    let answer = expect_done(&mut l, &mut r, t0).unwrap();
    assert_eq!(answer.records, vec![a("cdn.other.test", 60, 7)]);
    // Within the bailiwick (the default root) the same response finishes at once.
    let mut r = resolver(&[s1()]);
    let mut l = r.lookup(name("www.example.test"), RecordType::A);
    let (_, q) = expect_send(&mut l, &mut r, t0);
    let resp = reply(
        &q,
        Rcode::NOERROR,
        vec![
            cname("www.example.test", "cdn.other.test"),
            a("cdn.other.test", 60, 66),
        ],
        vec![],
    );
    l.on_response(&mut r, t0, s1(), &resp);
    assert!(expect_done(&mut l, &mut r, t0).is_ok());
}

#[test]
fn ids_from_the_os_differ_and_are_not_the_seeded_sequence() {
    let mut os = IdRng::from_os();
    let ids: Vec<u16> = (0..64).map(|_| os.next_u16()).collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert!(distinct.len() > 50, "{ids:?}");
    let mut r = Resolver::with_os_ids(ResolverConfig::new(vec![s1()]));
    let mut l = r.lookup(name("a.test"), RecordType::A);
    assert!(matches!(l.poll(&mut r, Instant::now()), Step::Send(_)));
}
