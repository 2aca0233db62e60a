//! Authoritative answering (RFC 1034 §4.3.2, RFC 2308 for negative answers): a pure function
//! from query bytes to response bytes, over a catalog of zones.
//!
//! Policy, in one place:
//! - Fewer than 12 bytes, or a message with QR set: dropped (never answer a response, so two
//!   servers cannot bounce errors at each other). Counted.
//! - Unparseable query: FORMERR echoing the ID (RFC 1035 §4.1.1). Not one question: FORMERR.
//!   Opcode other than QUERY, AXFR/IXFR over UDP: NOTIMP. EDNS version above 0: BADVERS
//!   (RFC 6891 §6.1.3). Class other than IN: REFUSED.
//! - Outside every zone: REFUSED (the forwarder may send it upstream instead).
//! - Inside a zone: AA set; CNAMEs followed within the zone (at most [`MAX_CNAME_CHAIN`]);
//!   NXDOMAIN and NODATA carry the zone's SOA in the authority section with the TTL RFC 2308
//!   §3 asks for; a name with descendants but no records is NODATA (RFC 8020); below a zone
//!   cut the answer is a referral (AA clear, NS in authority, glue in additional). No
//!   wildcards.
//! - Size: 512 octets without EDNS0, else the client's size capped at what we advertise
//!   ([`EDNS_PAYLOAD_SIZE`]); a larger answer goes out with TC set and no records.

use super::{
    Class, Edns, HeaderRepr, Message, Name, Opcode, Question, RData, Rcode, Record, RecordType,
    Zone, EDNS_PAYLOAD_SIZE, MAX_UDP_PAYLOAD,
};
use log::debug;

/// How many CNAMEs one answer follows inside a zone.
pub const MAX_CNAME_CHAIN: usize = 8;

super::counters! {
    /// What the server did with queries, one counter per outcome and drop cause.
    pub struct ServerStats {
        /// Datagrams received.
        queries,
        /// Dropped: shorter than a header.
        dropped_short,
        /// Dropped: QR set, a response and not a query.
        dropped_responses,
        /// NOERROR with records in the answer section.
        answered,
        nodata,
        nxdomain,
        referrals,
        refused,
        formerr,
        notimp,
        badvers,
        /// SERVFAIL: a response we could not emit, or an upstream that failed.
        servfail,
        /// Responses sent with TC because the answer did not fit.
        truncated,
        /// Queries handed to the upstream resolver.
        forwarded,
        /// Datagrams the server socket failed to send.
        send_errors,
        /// Queries for names outside the zones from clients outside the networks offered
        /// recursion (`--dns-allow`): REFUSED.
        refused_recursion,
        /// ANY queries answered minimally (RFC 8482): one RRset, or a synthesized HINFO.
        any_minimal,
        /// Forwarded queries dropped because `max_in_flight` lookups were already waiting.
        forward_dropped,
        /// Responses over the per-prefix rate sent truncated (RRL slip).
        rate_limited_slipped,
        /// Responses over the per-prefix rate dropped.
        rate_limited_dropped,
        /// Rate-limiter prefixes evicted from a full table.
        rrl_evictions,
        /// Upstream answers larger than the size our query advertised: dropped.
        upstream_oversize,
        /// Upstream records not cached: off the question's CNAME chain or outside the
        /// upstream's bailiwick.
        records_not_cached,
        /// Cache entries evicted to stay within the cache's byte bound.
        cache_evictions,
    }
}

/// The zones a server answers for.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    zones: Vec<Zone>,
}

impl Catalog {
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Adds a zone, replacing (and returning) one with the same origin.
    pub fn insert(&mut self, zone: Zone) -> Option<Zone> {
        let old = self
            .zones
            .iter()
            .position(|z| z.origin() == zone.origin())
            .map(|i| self.zones.remove(i));
        self.zones.push(zone);
        old
    }

    /// The zone with the longest origin that `name` is in.
    pub fn find(&self, name: &Name) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| name.is_subdomain_of(z.origin()))
            .max_by_key(|z| z.origin().label_count())
    }

    pub fn zones(&self) -> &[Zone] {
        &self.zones
    }
}

/// A query that passed the checks and has one question.
#[derive(Debug, Clone)]
pub struct IncomingQuery {
    pub message: Message,
    pub question: Question,
    /// The largest response this client takes over UDP.
    pub limit: usize,
}

/// The transport a query came over, which sets how large the response may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 512 octets (RFC 1035 §4.2.1), or the client's EDNS0 size capped at ours; TC beyond.
    Udp,
    /// RFC 1035 §4.2.2: any size up to 65,535 octets, never truncated.
    Tcp,
}

pub(crate) enum Triage {
    Drop,
    Reply(Vec<u8>),
    Query(IncomingQuery),
}

/// Checks a datagram and answers everything that is not a plain query with an error.
pub(crate) fn triage(bytes: &[u8], transport: Transport, stats: &mut ServerStats) -> Triage {
    stats.queries += 1;
    let header = match super::Header::new_checked(bytes) {
        Ok(h) => HeaderRepr::parse(&h),
        Err(_) => {
            stats.dropped_short += 1;
            return Triage::Drop;
        }
    };
    if header.qr {
        stats.dropped_responses += 1;
        return Triage::Drop;
    }
    let message = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            debug!("dns: FORMERR for query {:#06x}: {e}", header.id);
            return Triage::Reply(formerr(header, stats));
        }
    };
    let limit = match (transport, &message.edns) {
        (Transport::Tcp, _) => super::tcp::MAX_TCP_MESSAGE,
        (Transport::Udp, None) => MAX_UDP_PAYLOAD,
        (Transport::Udp, Some(e)) => {
            usize::from(e.udp_payload_size.min(EDNS_PAYLOAD_SIZE)).max(MAX_UDP_PAYLOAD)
        }
    };
    let reply = |question: Option<&Question>, rcode: Rcode| {
        let mut r = skeleton(&message, question);
        r.set_rcode(rcode);
        // A header, at most one question and an empty OPT always fit and always emit.
        Triage::Reply(r.emit().unwrap_or_default())
    };
    let question = match &message.questions[..] {
        [q] => q.clone(),
        _ => {
            stats.formerr += 1;
            return reply(None, Rcode::FORMERR);
        }
    };
    if message.header.opcode != Opcode::QUERY
        || matches!(question.qtype, RecordType::AXFR | RecordType::IXFR)
    {
        stats.notimp += 1;
        return reply(Some(&question), Rcode::NOTIMP);
    }
    if message.edns.as_ref().is_some_and(|e| e.version > 0) {
        stats.badvers += 1;
        return reply(None, Rcode::BADVERS);
    }
    if question.qclass != Class::IN && question.qclass != Class::ANY {
        stats.refused += 1;
        return reply(Some(&question), Rcode::REFUSED);
    }
    Triage::Query(IncomingQuery {
        message,
        question,
        limit,
    })
}

/// RFC 1035 §4.1.1: FORMERR echoing the ID; the question is not trusted enough to echo.
fn formerr(header: HeaderRepr, stats: &mut ServerStats) -> Vec<u8> {
    stats.formerr += 1;
    let m = Message {
        header: HeaderRepr {
            id: header.id,
            qr: true,
            opcode: header.opcode,
            rd: header.rd,
            rcode: Rcode::FORMERR,
            ..HeaderRepr::default()
        },
        ..Message::default()
    };
    // Emitting a header-only message cannot fail.
    m.emit().unwrap_or_default()
}

/// The skeleton of a response: ID, opcode, RD and CD copied, the question, our EDNS if the
/// client used EDNS.
fn skeleton(query: &Message, question: Option<&Question>) -> Message {
    let h = &query.header;
    Message {
        header: HeaderRepr {
            id: h.id,
            qr: true,
            opcode: h.opcode,
            rd: h.rd,
            cd: h.cd,
            ..HeaderRepr::default()
        },
        questions: question.cloned().into_iter().collect(),
        edns: query.edns.as_ref().map(|_| Edns::new(EDNS_PAYLOAD_SIZE)),
        ..Message::default()
    }
}

pub(crate) fn response_to(q: &IncomingQuery) -> Message {
    skeleton(&q.message, Some(&q.question))
}

/// Emits a response within the client's size limit; SERVFAIL if it cannot be emitted.
pub(crate) fn finish(q: &IncomingQuery, response: Message, stats: &mut ServerStats) -> Vec<u8> {
    match response.emit_limited(q.limit) {
        Ok(bytes) => {
            if bytes.get(2).is_some_and(|flags| flags & 0x02 != 0) {
                stats.truncated += 1;
            }
            bytes
        }
        Err(e) => {
            debug!(
                "dns: cannot emit response to {:#06x}: {e}",
                q.message.header.id
            );
            stats.servfail += 1;
            let mut r = response_to(q);
            r.set_rcode(Rcode::SERVFAIL);
            r.emit().unwrap_or_default()
        }
    }
}

/// Answers a query from the catalog: the function the server loop calls for each datagram.
/// `None`: drop the datagram (too short, or a response).
pub fn answer(query: &[u8], catalog: &Catalog, stats: &mut ServerStats) -> Option<Vec<u8>> {
    answer_over(Transport::Udp, query, catalog, stats)
}

/// [`answer`] for a query that came over `transport` (the DNS-over-TCP server uses
/// [`Transport::Tcp`]).
pub fn answer_over(
    transport: Transport,
    query: &[u8],
    catalog: &Catalog,
    stats: &mut ServerStats,
) -> Option<Vec<u8>> {
    match triage(query, transport, stats) {
        Triage::Drop => None,
        Triage::Reply(bytes) => Some(bytes),
        Triage::Query(q) => Some(answer_query(&q, catalog, stats)),
    }
}

/// Answers a checked query from the zones, or REFUSED when no zone holds it.
pub(crate) fn answer_query(
    q: &IncomingQuery,
    catalog: &Catalog,
    stats: &mut ServerStats,
) -> Vec<u8> {
    let mut r = response_to(q);
    match catalog.find(&q.question.name) {
        Some(zone) => authoritative(zone, &q.question, &mut r, stats),
        None => {
            stats.refused += 1;
            r.set_rcode(Rcode::REFUSED);
        }
    }
    finish(q, r, stats)
}

/// RFC 2308 §3: the SOA in a negative answer has the smaller of its TTL and MINIMUM.
fn negative_soa(zone: &Zone) -> Record {
    let mut soa = zone.soa().clone();
    if let RData::Soa(s) = &soa.data {
        soa.ttl = soa.ttl.min(s.minimum);
    }
    soa
}

/// The highest zone cut strictly below the origin at or above `name`.
fn delegation<'z>(zone: &'z Zone, name: &Name) -> Option<&'z [Record]> {
    let mut cuts = Vec::new();
    let mut at = Some(name.clone());
    while let Some(n) = at.filter(|n| n != zone.origin()) {
        at = n.parent();
        cuts.push(n);
    }
    cuts.iter()
        .rev()
        .map(|n| zone.records_at(n))
        .find(|rs| rs.iter().any(|r| r.rtype() == RecordType::NS))
}

fn authoritative(zone: &Zone, question: &Question, r: &mut Message, stats: &mut ServerStats) {
    r.header.aa = true;
    let mut name = question.name.clone();
    let mut visited = vec![name.clone()];
    loop {
        if let Some(cut) = delegation(zone, &name) {
            if r.answers.is_empty() {
                r.header.aa = false;
                let ns: Vec<Record> = cut
                    .iter()
                    .filter(|x| x.rtype() == RecordType::NS)
                    .cloned()
                    .collect();
                add_glue(zone, &ns, r);
                r.authorities = ns;
                stats.referrals += 1;
            } else {
                stats.answered += 1;
            }
            return;
        }
        let records = zone.records_at(&name);
        if records.is_empty() {
            // RFC 6604 §2: the rcode is about the last name of the chain.
            if zone.name_exists(&name) {
                stats.nodata += 1;
            } else {
                stats.nxdomain += 1;
                r.set_rcode(Rcode::NXDOMAIN);
            }
            r.authorities.push(negative_soa(zone));
            return;
        }
        let cname = records.iter().find(|x| x.rtype() == RecordType::CNAME);
        if let (Some(cname), false) = (
            cname,
            matches!(question.qtype, RecordType::CNAME | RecordType::ANY),
        ) {
            r.answers.push(cname.clone());
            let target = cname.data.target().cloned().unwrap_or_else(Name::root);
            // Out of zone, looping or too long: the client's resolver takes it from here.
            if !target.is_subdomain_of(zone.origin())
                || visited.contains(&target)
                || visited.len() > MAX_CNAME_CHAIN
            {
                stats.answered += 1;
                return;
            }
            visited.push(target.clone());
            name = target;
            continue;
        }
        // RFC 8482 §4.1: ANY gets one RRset, the first at the name, not all of them.
        let wanted = match question.qtype {
            RecordType::ANY => {
                stats.any_minimal += 1;
                records[0].rtype()
            }
            t => t,
        };
        let matching: Vec<Record> = records
            .iter()
            .filter(|x| x.rtype() == wanted)
            .cloned()
            .collect();
        if matching.is_empty() {
            stats.nodata += 1;
            r.authorities.push(negative_soa(zone));
            return;
        }
        add_glue(zone, &matching, r);
        r.answers.extend(matching);
        stats.answered += 1;
        return;
    }
}

/// RFC 1034 §4.3.2 step 6: addresses of the hosts that NS, MX and SRV records name, when the
/// zone has them.
fn add_glue(zone: &Zone, records: &[Record], r: &mut Message) {
    for record in records {
        let Some(target) = record.data.target() else {
            continue;
        };
        if matches!(record.data, RData::Cname(_) | RData::Ptr(_)) {
            continue;
        }
        for glue in zone.records_at(target) {
            if matches!(glue.rtype(), RecordType::A | RecordType::AAAA)
                && !r.additionals.contains(glue)
            {
                r.additionals.push(glue.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests;
