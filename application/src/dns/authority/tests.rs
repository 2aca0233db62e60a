use super::*;
use crate::dns::{demo_zone, Edns};
use std::net::Ipv4Addr;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

const STACK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(demo_zone(STACK));
    let big = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.9\n\
               sub NS ns.sub\nns.sub A 192.0.2.10\nloop CNAME loop2\nloop2 CNAME loop\n\
               out CNAME www.elsewhere.test.\n";
    let mut big = big.to_string();
    for i in 0..40 {
        big.push_str(&format!("many TXT \"{i:02} {}\"\n", "x".repeat(40)));
    }
    c.insert(Zone::parse_master(&big, "big", None).unwrap());
    c
}

fn ask(q: &Message) -> (Message, ServerStats) {
    let mut stats = ServerStats::default();
    let bytes = answer(&q.emit().unwrap(), &catalog(), &mut stats).expect("an answer");
    (Message::parse(&bytes).unwrap(), stats)
}

/// Asks `q` of a catalog holding just the zone in `text`.
fn ask_zone(text: &str, q: &Message) -> Message {
    let mut c = Catalog::new();
    c.insert(Zone::parse_master(text, "z", None).unwrap());
    let mut stats = ServerStats::default();
    Message::parse(&answer(&q.emit().unwrap(), &c, &mut stats).unwrap()).unwrap()
}

fn query(n: &str, t: RecordType) -> Message {
    Message::query(0x4242, Question::new(name(n), t))
}

fn rtypes(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::rtype).collect()
}

#[test]
fn apex_a_is_answered_authoritatively() {
    let (r, stats) = ask(&query("demo.test", RecordType::A));
    assert_eq!(
        (
            r.header.id,
            r.header.qr,
            r.header.aa,
            r.header.rd,
            r.header.ra
        ),
        (0x4242, true, true, true, false)
    );
    assert_eq!(r.rcode(), Rcode::NOERROR);
    assert_eq!(
        r.questions,
        vec![Question::new(name("demo.test"), RecordType::A)]
    );
    assert_eq!(
        r.answers,
        vec![Record::new(name("demo.test"), 300, RData::A(STACK))]
    );
    assert_eq!((stats.queries, stats.answered), (1, 1));
}

#[test]
fn cname_is_followed_inside_the_zone() {
    let (r, _) = ask(&query("www.demo.test", RecordType::A));
    assert_eq!(
        r.answers,
        vec![
            Record::new(name("www.demo.test"), 300, RData::Cname(name("demo.test"))),
            Record::new(name("demo.test"), 300, RData::A(STACK)),
        ]
    );
    assert!(r.header.aa);
}

#[test]
fn cname_query_returns_the_cname_only() {
    let (r, _) = ask(&query("www.demo.test", RecordType::CNAME));
    assert_eq!(rtypes(&r.answers), vec![RecordType::CNAME]);
}

#[test]
fn cname_loop_and_out_of_zone_target_stop_the_chain() {
    let (r, _) = ask(&query("loop.big.test", RecordType::A));
    assert_eq!(
        rtypes(&r.answers),
        vec![RecordType::CNAME, RecordType::CNAME]
    );
    assert_eq!(r.rcode(), Rcode::NOERROR);
    let (r, _) = ask(&query("out.big.test", RecordType::A));
    assert_eq!(
        r.answers,
        vec![Record::new(
            name("out.big.test"),
            60,
            RData::Cname(name("www.elsewhere.test"))
        )]
    );
}

#[test]
fn missing_name_is_nxdomain_with_the_soa() {
    let (r, stats) = ask(&query("nope.demo.test", RecordType::A));
    assert_eq!(r.rcode(), Rcode::NXDOMAIN);
    assert!(r.header.aa);
    assert!(r.answers.is_empty());
    assert_eq!(rtypes(&r.authorities), vec![RecordType::SOA]);
    assert_eq!(r.authorities[0].name, name("demo.test"));
    // RFC 2308 §3: min(SOA TTL 300, MINIMUM 60).
    assert_eq!(r.authorities[0].ttl, 60);
    assert_eq!(stats.nxdomain, 1);
}

#[test]
fn missing_type_is_nodata_with_the_soa() {
    let (r, stats) = ask(&query("demo.test", RecordType::SRV));
    assert_eq!(r.rcode(), Rcode::NOERROR);
    assert!(r.answers.is_empty());
    assert_eq!(rtypes(&r.authorities), vec![RecordType::SOA]);
    assert_eq!(stats.nodata, 1);
}

#[test]
fn empty_non_terminal_is_nodata_not_nxdomain() {
    let zone = "$ORIGIN e.test.\n$TTL 9\n@ SOA ns h 1 2 3 4 5\na.b A 192.0.2.1\n";
    let r = ask_zone(zone, &query("b.e.test", RecordType::A));
    assert_eq!(r.rcode(), Rcode::NOERROR);
    assert_eq!(rtypes(&r.authorities), vec![RecordType::SOA]);
}

#[test]
fn cname_to_a_missing_name_is_nxdomain_after_the_cname() {
    let zone = "$ORIGIN e.test.\n$TTL 9\n@ SOA ns h 1 2 3 4 5\nc CNAME gone\n";
    let r = ask_zone(zone, &query("c.e.test", RecordType::A));
    assert_eq!(r.rcode(), Rcode::NXDOMAIN);
    assert_eq!(rtypes(&r.answers), vec![RecordType::CNAME]);
    assert_eq!(rtypes(&r.authorities), vec![RecordType::SOA]);
}

#[test]
fn name_outside_every_zone_is_refused() {
    let (r, stats) = ask(&query("example.com", RecordType::A));
    assert_eq!(r.rcode(), Rcode::REFUSED);
    assert!(!r.header.aa);
    assert!(r.answers.is_empty() && r.authorities.is_empty());
    assert_eq!(stats.refused, 1);
}

#[test]
fn malformed_query_is_formerr_with_its_id() {
    let mut bytes = query("demo.test", RecordType::A).emit().unwrap();
    bytes.truncate(bytes.len() - 1);
    let mut stats = ServerStats::default();
    let r = Message::parse(&answer(&bytes, &catalog(), &mut stats).unwrap()).unwrap();
    assert_eq!(
        (r.header.id, r.header.qr, r.rcode()),
        (0x4242, true, Rcode::FORMERR)
    );
    assert!(r.questions.is_empty());
    assert_eq!(stats.formerr, 1);
}

#[test]
fn query_without_exactly_one_question_is_formerr() {
    let mut q = query("demo.test", RecordType::A);
    q.questions
        .push(Question::new(name("www.demo.test"), RecordType::A));
    assert_eq!(ask(&q).0.rcode(), Rcode::FORMERR);
    q.questions.clear();
    assert_eq!(ask(&q).0.rcode(), Rcode::FORMERR);
}

#[test]
fn short_datagrams_and_responses_are_dropped() {
    let mut stats = ServerStats::default();
    assert_eq!(answer(&[0; 11], &catalog(), &mut stats), None);
    let mut q = query("demo.test", RecordType::A);
    q.header.qr = true;
    assert_eq!(answer(&q.emit().unwrap(), &catalog(), &mut stats), None);
    assert_eq!(
        (stats.queries, stats.dropped_short, stats.dropped_responses),
        (2, 1, 1)
    );
}

#[test]
fn other_opcodes_and_zone_transfers_are_notimp() {
    let mut q = query("demo.test", RecordType::A);
    q.header.opcode = Opcode::UPDATE;
    assert_eq!(ask(&q).0.rcode(), Rcode::NOTIMP);
    assert_eq!(
        ask(&query("demo.test", RecordType::AXFR)).0.rcode(),
        Rcode::NOTIMP
    );
}

#[test]
fn other_classes_are_refused() {
    let mut q = query("demo.test", RecordType::A);
    q.questions[0].qclass = Class::CH;
    assert_eq!(ask(&q).0.rcode(), Rcode::REFUSED);
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let mut q = query("demo.test", RecordType::A);
    q.edns = Some(Edns {
        version: 1,
        ..Edns::new(4096)
    });
    let (r, stats) = ask(&q);
    assert_eq!(r.rcode(), Rcode::BADVERS);
    assert_eq!(r.edns.unwrap().version, 0);
    assert_eq!(stats.badvers, 1);
}

#[test]
fn edns_query_gets_our_opt_back() {
    let mut q = query("demo.test", RecordType::A);
    q.edns = Some(Edns::new(4096));
    let (r, _) = ask(&q);
    assert_eq!(r.edns, Some(Edns::new(EDNS_PAYLOAD_SIZE)));
    assert!(ask(&query("demo.test", RecordType::A)).0.edns.is_none());
}

#[test]
fn answer_over_512_without_edns_is_truncated() {
    let (r, stats) = ask(&query("many.big.test", RecordType::TXT));
    assert!(r.header.tc);
    assert!(r.answers.is_empty());
    assert_eq!(r.questions.len(), 1);
    assert_eq!(stats.truncated, 1);
}

#[test]
fn answer_over_the_edns_size_is_truncated_and_under_it_is_not() {
    // 40 TXT records of ~60 octets: ~2,400 octets, over our 1232 cap whatever the client says.
    let mut q = query("many.big.test", RecordType::TXT);
    q.edns = Some(Edns::new(4096));
    let (r, _) = ask(&q);
    assert!(r.header.tc);
    // The SOA query (well under 512) is never truncated.
    let mut q = query("big.test", RecordType::SOA);
    q.edns = Some(Edns::new(512));
    assert!(!ask(&q).0.header.tc);
}

#[test]
fn medium_answer_fits_with_edns_but_not_without() {
    let mut zone = "$ORIGIN m.test.\n$TTL 9\n@ SOA ns h 1 2 3 4 5\n".to_string();
    for i in 0..10 {
        zone.push_str(&format!("t TXT \"{i} {}\"\n", "y".repeat(60)));
    }
    let mut q = query("t.m.test", RecordType::TXT);
    assert!(ask_zone(&zone, &q).header.tc);
    q.edns = Some(Edns::new(1232));
    let r = ask_zone(&zone, &q);
    assert!(!r.header.tc);
    assert_eq!(r.answers.len(), 10);
}

#[test]
fn mx_answer_carries_the_exchange_address() {
    let (r, _) = ask(&query("demo.test", RecordType::MX));
    assert_eq!(rtypes(&r.answers), vec![RecordType::MX]);
    assert_eq!(
        r.additionals,
        vec![Record::new(name("mail.demo.test"), 300, RData::A(STACK))]
    );
}

#[test]
fn name_below_a_zone_cut_gets_a_referral() {
    let (r, stats) = ask(&query("host.sub.big.test", RecordType::A));
    assert!(!r.header.aa);
    assert_eq!(r.rcode(), Rcode::NOERROR);
    assert!(r.answers.is_empty());
    assert_eq!(
        r.authorities,
        vec![Record::new(
            name("sub.big.test"),
            60,
            RData::Ns(name("ns.sub.big.test"))
        )]
    );
    assert_eq!(
        r.additionals,
        vec![Record::new(
            name("ns.sub.big.test"),
            60,
            RData::A(Ipv4Addr::new(192, 0, 2, 10))
        )]
    );
    assert_eq!(stats.referrals, 1);
}

#[test]
fn apex_ns_is_an_answer_not_a_referral() {
    let (r, _) = ask(&query("big.test", RecordType::NS));
    assert!(r.header.aa);
    assert_eq!(rtypes(&r.answers), vec![RecordType::NS]);
}

#[test]
fn question_case_is_kept_in_the_response() {
    let (r, _) = ask(&query("WwW.DeMo.TeSt", RecordType::A));
    assert_eq!(r.questions[0].name.to_string(), "WwW.DeMo.TeSt.");
    assert_eq!(r.answers.len(), 2);
}

#[test]
fn any_returns_one_rrset_not_every_record_at_the_name() {
    // RFC 8482 §4.1: demo.test holds six records of several types; ANY gets one RRset.
    let (r, stats) = ask(&query("demo.test", RecordType::ANY));
    let first = r.answers[0].rtype();
    assert!(!r.answers.is_empty() && r.answers.iter().all(|x| x.rtype() == first));
    assert!(r.answers.len() < 6, "{:?}", rtypes(&r.answers));
    assert_eq!(stats.any_minimal, 1);
}

#[test]
fn longest_zone_wins() {
    let mut c = catalog();
    c.insert(
        Zone::parse_master(
            "$ORIGIN sub.demo.test.\n$TTL 9\n@ SOA ns h 7 2 3 4 5\n",
            "s",
            None,
        )
        .unwrap(),
    );
    assert_eq!(
        c.find(&name("x.sub.demo.test")).unwrap().origin(),
        &name("sub.demo.test")
    );
    assert_eq!(
        c.find(&name("x.demo.test")).unwrap().origin(),
        &name("demo.test")
    );
    assert!(c.find(&name("test")).is_none());
    // Inserting the same origin again replaces the zone.
    let old = c.insert(
        Zone::parse_master(
            "$ORIGIN sub.demo.test.\n$TTL 9\n@ SOA ns h 8 2 3 4 5\n",
            "s",
            None,
        )
        .unwrap(),
    );
    assert!(old.is_some());
    assert_eq!(c.zones().len(), 3);
}

#[test]
fn stats_add_sums_every_counter() {
    let mut a = ServerStats {
        queries: 1,
        truncated: 2,
        ..ServerStats::default()
    };
    a.add(&ServerStats {
        queries: 3,
        send_errors: 4,
        ..ServerStats::default()
    });
    assert_eq!(
        a,
        ServerStats {
            queries: 4,
            truncated: 2,
            send_errors: 4,
            ..ServerStats::default()
        }
    );
}

proptest::proptest! {
    /// Whatever arrives, the server never panics, and what it sends back parses.
    #[test]
    fn random_datagrams_never_panic_the_server(bytes in proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..300)) {
        let mut stats = ServerStats::default();
        if let Some(reply) = answer(&bytes, &catalog(), &mut stats) {
            let r = Message::parse(&reply).unwrap();
            proptest::prop_assert!(r.header.qr);
        }
    }

    /// Real queries with random names and types always get a well-formed answer.
    #[test]
    fn random_questions_get_well_formed_answers(
        labels in proptest::collection::vec("[a-z0-9]{1,8}", 0..4),
        zone in proptest::sample::select(vec!["demo.test", "big.test", "other.test"]),
        t in proptest::arbitrary::any::<u16>(),
    ) {
        let mut n = labels.join(".");
        if !n.is_empty() {
            n.push('.');
        }
        n.push_str(zone);
        let (r, _) = ask(&query(&n, RecordType(t)));
        proptest::prop_assert_eq!(r.header.id, 0x4242);
        proptest::prop_assert_eq!(r.questions.len(), 1);
    }
}
