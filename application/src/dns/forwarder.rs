//! Forwarding: queries for names in the local zones are answered from them; other queries
//! with RD set go to the upstream servers through the resolver and its cache, and the answer
//! goes back with RA set and AA clear.
//!
//! Policy: without RD a name outside the zones is REFUSED (we do not serve our cache to
//! non-recursive queries). A truncated upstream answer is asked again over TCP by the
//! resolver (RFC 7766 §5); when that retry fails, the client gets the truncated answer as it
//! came, TC set, so it can ask over TCP itself (RFC 1035 §4.2.2). Any other resolver error
//! becomes SERVFAIL.
//!
//! Exposure (see also [`super::policy`]): a query for a name outside the zones from a client
//! not offered recursion is REFUSED (`refused_recursion`); an ANY query for such a name is
//! answered at once with a synthesized HINFO "RFC8482" (RFC 8482 §4.2, `any_minimal`) and
//! never forwarded, so it cannot draw a large answer out of the upstream.

use super::authority::{
    answer_query, finish, response_to, triage, IncomingQuery, Transport, Triage,
};
use super::{
    Catalog, LookupAnswer, Message, RData, Rcode, Record, RecordType, ResolveError, ServerStats,
};

/// What to do with a datagram that reached a forwarding server.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Resolve this query upstream, then send [`forward_reply`]'s bytes back.
    Forward(IncomingQuery),
    /// Send nothing.
    Drop,
}

/// RA is bit 7 of the fourth header octet (RFC 1035 §4.1.1).
const RA_BYTE: usize = 3;
const RA_BIT: u8 = 0x80;

/// The TTL of the synthesized RFC 8482 HINFO: long, so resolvers stop asking.
pub const RFC8482_TTL: u32 = 3600;

/// Answers from the zones, or says to forward; every client is offered recursion.
pub fn answer_or_forward(query: &[u8], catalog: &Catalog, stats: &mut ServerStats) -> Outcome {
    answer_or_forward_for(query, catalog, true, stats)
}

/// Answers from the zones, or says to forward when `recursion` (the client is in an allowed
/// network, [`super::policy::recursion_allowed`]); otherwise a name outside the zones is
/// REFUSED.
pub fn answer_or_forward_for(
    query: &[u8],
    catalog: &Catalog,
    recursion: bool,
    stats: &mut ServerStats,
) -> Outcome {
    let q = match triage(query, Transport::Udp, stats) {
        Triage::Drop => return Outcome::Drop,
        Triage::Reply(bytes) => return Outcome::Reply(with_ra(bytes)),
        Triage::Query(q) => q,
    };
    if catalog.find(&q.question.name).is_some() || !q.message.header.rd {
        return Outcome::Reply(with_ra(answer_query(&q, catalog, stats)));
    }
    if !recursion {
        stats.refused += 1;
        stats.refused_recursion += 1;
        let mut r = response_to(&q);
        r.set_rcode(Rcode::REFUSED);
        return Outcome::Reply(finish(&q, r, stats));
    }
    if q.question.qtype == RecordType::ANY {
        return Outcome::Reply(any_minimal(&q, stats));
    }
    stats.forwarded += 1;
    Outcome::Forward(q)
}

/// RFC 8482 §4.2: ANY answered with one synthesized HINFO, CPU "RFC8482", OS empty.
fn any_minimal(q: &IncomingQuery, stats: &mut ServerStats) -> Vec<u8> {
    stats.any_minimal += 1;
    stats.answered += 1;
    let mut r = response_to(q);
    r.header.ra = true;
    let mut hinfo = vec![7];
    hinfo.extend_from_slice(b"RFC8482");
    hinfo.push(0);
    r.answers.push(Record::new(
        q.question.name.clone(),
        RFC8482_TTL,
        RData::Unknown {
            rtype: RecordType(13),
            data: hinfo,
        },
    ));
    finish(q, r, stats)
}

/// The RRL slip form of a response (RFC 7766's reason for TC): the header and question with
/// TC set and no records, so the client asks again over TCP. `None` when `reply` does not parse.
pub fn slip_reply(reply: &[u8]) -> Option<Vec<u8>> {
    let mut m = Message::parse(reply).ok()?;
    m.header.tc = true;
    m.answers.clear();
    m.authorities.clear();
    m.additionals.clear();
    m.emit().ok()
}

/// A forwarding server offers recursion, whatever the answer.
fn with_ra(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Some(b) = bytes.get_mut(RA_BYTE) {
        *b |= RA_BIT;
    }
    bytes
}

/// The response to a forwarded query, from what the resolver found.
pub fn forward_reply(
    q: &IncomingQuery,
    result: &Result<LookupAnswer, ResolveError>,
    stats: &mut ServerStats,
) -> Vec<u8> {
    let mut r = response_to(q);
    r.header.ra = true;
    match result {
        Ok(answer) => {
            r.answers = answer.answers().cloned().collect();
            r.authorities = answer.soa.iter().cloned().collect();
            r.set_rcode(answer.rcode);
            match (answer.rcode, r.answers.is_empty()) {
                (Rcode::NXDOMAIN, _) => stats.nxdomain += 1,
                (_, true) => stats.nodata += 1,
                _ => stats.answered += 1,
            }
        }
        Err(ResolveError::Truncated {
            cnames, response, ..
        }) => {
            log::debug!(
                "dns: relaying a truncated answer for {} with TC",
                q.question.name
            );
            // RFC 2181 §9: what fitted, marked incomplete; `finish` counts it as truncated.
            r.header.tc = true;
            r.answers = cnames.iter().chain(&response.answers).cloned().collect();
            r.authorities = response.authorities.clone();
            r.set_rcode(response.rcode());
        }
        Err(e) => {
            log::debug!("dns: forwarding {} failed: {e}", q.question.name);
            stats.servfail += 1;
            r.set_rcode(Rcode::SERVFAIL);
        }
    }
    finish(q, r, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::testutil::{name, soa};
    use crate::dns::{demo_zone, Message, Question, RData, Record, RecordType};
    use std::net::Ipv4Addr;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.insert(demo_zone(Ipv4Addr::new(192, 0, 2, 2)));
        c
    }

    fn query(n: &str, rd: bool) -> Vec<u8> {
        let mut m = Message::query(9, Question::new(name(n), RecordType::A));
        m.header.rd = rd;
        m.emit().unwrap()
    }

    fn forwarded(n: &str) -> IncomingQuery {
        match answer_or_forward(&query(n, true), &catalog(), &mut ServerStats::default()) {
            Outcome::Forward(q) => q,
            other => panic!("not forwarded: {other:?}"),
        }
    }

    #[test]
    fn local_zone_is_answered_locally_with_ra() {
        let mut stats = ServerStats::default();
        let Outcome::Reply(bytes) =
            answer_or_forward(&query("demo.test", true), &catalog(), &mut stats)
        else {
            panic!("not answered locally");
        };
        let r = Message::parse(&bytes).unwrap();
        assert!(r.header.aa && r.header.ra);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(stats.forwarded, 0);
    }

    #[test]
    fn other_names_with_rd_are_forwarded() {
        let mut stats = ServerStats::default();
        let out = answer_or_forward(&query("example.com", true), &catalog(), &mut stats);
        assert!(matches!(out, Outcome::Forward(q) if q.question.name == name("example.com")));
        assert_eq!(stats.forwarded, 1);
    }

    #[test]
    fn other_names_without_rd_are_refused() {
        let Outcome::Reply(bytes) = answer_or_forward(
            &query("example.com", false),
            &catalog(),
            &mut ServerStats::default(),
        ) else {
            panic!("forwarded without RD");
        };
        assert_eq!(Message::parse(&bytes).unwrap().rcode(), Rcode::REFUSED);
    }

    #[test]
    fn malformed_and_responses_are_handled_as_the_server_does() {
        let mut stats = ServerStats::default();
        assert!(matches!(
            answer_or_forward(&[1, 2, 3], &catalog(), &mut stats),
            Outcome::Drop
        ));
        let mut bad = query("example.com", true);
        bad.push(0);
        let Outcome::Reply(bytes) = answer_or_forward(&bad, &catalog(), &mut stats) else {
            panic!()
        };
        assert_eq!(Message::parse(&bytes).unwrap().rcode(), Rcode::FORMERR);
    }

    #[test]
    fn upstream_answer_is_relayed_with_ra_and_without_aa() {
        let q = forwarded("www.example.com");
        let answer = LookupAnswer {
            question: q.question.clone(),
            rcode: Rcode::NOERROR,
            cnames: vec![Record::new(
                name("www.example.com"),
                60,
                RData::Cname(name("example.com")),
            )],
            records: vec![Record::new(
                name("example.com"),
                60,
                RData::A(Ipv4Addr::new(192, 0, 2, 80)),
            )],
            soa: None,
            from_cache: false,
            response: None,
        };
        let mut stats = ServerStats::default();
        let r = Message::parse(&forward_reply(&q, &Ok(answer), &mut stats)).unwrap();
        assert!(r.header.ra && !r.header.aa);
        assert_eq!(r.header.id, 9);
        assert_eq!(r.answers.len(), 2);
        assert_eq!(stats.answered, 1);
    }

    #[test]
    fn upstream_nxdomain_keeps_its_soa() {
        let q = forwarded("gone.example.com");
        let answer = LookupAnswer {
            question: q.question.clone(),
            rcode: Rcode::NXDOMAIN,
            cnames: vec![],
            records: vec![],
            soa: Some(soa("example.com", 60, 60)),
            from_cache: true,
            response: None,
        };
        let mut stats = ServerStats::default();
        let r = Message::parse(&forward_reply(&q, &Ok(answer), &mut stats)).unwrap();
        assert_eq!(r.rcode(), Rcode::NXDOMAIN);
        assert_eq!(r.authorities, vec![soa("example.com", 60, 60)]);
        assert_eq!(stats.nxdomain, 1);
    }

    #[test]
    fn clients_outside_the_allowed_networks_are_refused_recursion_but_get_the_zones() {
        let mut stats = ServerStats::default();
        let Outcome::Reply(bytes) =
            answer_or_forward_for(&query("example.com", true), &catalog(), false, &mut stats)
        else {
            panic!("forwarded for a client without recursion");
        };
        assert_eq!(Message::parse(&bytes).unwrap().rcode(), Rcode::REFUSED);
        assert_eq!((stats.refused_recursion, stats.forwarded), (1, 0));
        let Outcome::Reply(bytes) =
            answer_or_forward_for(&query("demo.test", true), &catalog(), false, &mut stats)
        else {
            panic!("the zone was not answered");
        };
        assert_eq!(Message::parse(&bytes).unwrap().answers.len(), 1);
    }

    #[test]
    fn any_outside_the_zones_is_answered_with_one_synthesized_hinfo_not_forwarded() {
        let mut m = Message::query(5, Question::new(name("example.com"), RecordType::ANY));
        m.header.rd = true;
        let mut stats = ServerStats::default();
        let Outcome::Reply(bytes) =
            answer_or_forward_for(&m.emit().unwrap(), &catalog(), true, &mut stats)
        else {
            panic!("ANY was forwarded");
        };
        let r = Message::parse(&bytes).unwrap();
        assert_eq!(r.answers.len(), 1);
        assert_eq!(
            r.answers[0].rtype(),
            RecordType(13),
            "HINFO (RFC 8482 §4.2)"
        );
        assert_eq!(
            r.answers[0].data,
            RData::Unknown {
                rtype: RecordType(13),
                data: b"\x07RFC8482\x00".to_vec()
            }
        );
        assert_eq!((stats.any_minimal, stats.forwarded), (1, 0));
    }

    #[test]
    fn a_slipped_reply_keeps_id_and_question_sets_tc_and_drops_the_records() {
        let Outcome::Reply(bytes) = answer_or_forward(
            &query("demo.test", true),
            &catalog(),
            &mut ServerStats::default(),
        ) else {
            panic!()
        };
        let r = Message::parse(&slip_reply(&bytes).unwrap()).unwrap();
        assert!(r.header.tc && r.header.qr);
        assert_eq!(r.header.id, 9);
        assert_eq!(r.questions[0].name, name("demo.test"));
        assert!(r.answers.is_empty());
        assert!(slip_reply(&[1, 2]).is_none());
    }

    #[test]
    fn resolver_failure_is_servfail() {
        let q = forwarded("example.com");
        let mut stats = ServerStats::default();
        let r = Message::parse(&forward_reply(
            &q,
            &Err(ResolveError::Timeout { tries: 2 }),
            &mut stats,
        ))
        .unwrap();
        assert_eq!(r.rcode(), Rcode::SERVFAIL);
        assert_eq!(stats.servfail, 1);
    }
}
