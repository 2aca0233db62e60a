//! A sans-IO stub resolver: a [`Lookup`] state machine per question, driven with `now`,
//! sharing a [`Resolver`] (configuration, cache, ID generator, stats).
//!
//! Policy, in one place:
//! - RFC 5452: every query has a fresh random ID; the driver sends each new question from a
//!   fresh socket (random source port) and reuses it for that question's retries, so a late
//!   answer to an earlier try still counts. A response is accepted only when its ID is one we
//!   sent for the current question, it comes from the server we sent that ID to, and it
//!   echoes the question (name compared without case).
//! - Tries: `attempts` rounds over the server list, one try per server per round; the timeout
//!   doubles each round (1 s, 2 s, … by default). SERVFAIL, REFUSED, NOTIMP and FORMERR move
//!   on to the next try at once. With one silent server and the defaults: tries at 0 s and
//!   1 s, `Timeout` at 3 s.
//! - TC set (RFC 1035 §4.2.2, RFC 7766 §5): the same question goes again, with a fresh ID,
//!   to the same server over TCP ([`Step::SendTcp`]); the driver makes that exchange and feeds
//!   the answer to [`Lookup::on_tcp_response`], which checks it as a UDP answer is checked (ID,
//!   question) and also refuses TC. A failed retry (no connection, a timeout, a close, a
//!   mismatched answer) ends the lookup with [`ResolveError::Truncated`], which carries the
//!   truncated answer. `tcp_timeout: None` ends it there without trying TCP.
//! - CNAMEs are followed, from the response or by asking again for the target, at most
//!   `max_cname_chain` of them; a name seen twice is a loop.
//! - Only records on the chain from the question are cached (never unrelated records a
//!   server adds, counted as `records_not_cached`); a CNAME target outside the configured
//!   `bailiwick` is asked for on its own, its records in the same response unused and counted
//!   too. Negative answers per RFC 2308. The cache is bounded in bytes.
//! - A UDP answer larger than the size the query advertised (512 octets without EDNS, else
//!   our EDNS size) is dropped and counted (`responses_oversize`), as if never received: a
//!   server honouring our size never sends one.

use super::cache::{Cache, Cached, DEFAULT_CACHE_BYTES};
use super::{
    Class, Edns, Message, Name, Question, RData, Rcode, Record, RecordType, EDNS_PAYLOAD_SIZE,
    MAX_UDP_PAYLOAD,
};
use log::debug;
use netstack_link::prng::SplitMix64;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// How a resolver behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    pub servers: Vec<SocketAddr>,
    /// The first round's timeout; each later round doubles it.
    pub timeout: Duration,
    /// Rounds over the server list.
    pub attempts: u32,
    pub max_cname_chain: usize,
    /// The cache's bound in bytes (see [`Cache`]); default [`DEFAULT_CACHE_BYTES`].
    pub cache_bytes: usize,
    /// The names the servers are trusted for: records for a CNAME target outside it that come
    /// in the same response are not used or cached, the target is asked for on its own.
    /// The root (the default) trusts a full-service recursive upstream for every name.
    pub bailiwick: Name,
    /// The EDNS0 payload size to advertise; `None` sends plain RFC 1035 queries.
    pub edns_payload: Option<u16>,
    /// How long a retry over TCP after a truncated answer may take, connecting included;
    /// `None`: no retry, a truncated answer is [`ResolveError::Truncated`].
    pub tcp_timeout: Option<Duration>,
}

/// The default bound on a retry over TCP: connect, send, and read the whole answer.
pub const DEFAULT_TCP_TIMEOUT: Duration = Duration::from_secs(5);

impl ResolverConfig {
    pub fn new(servers: Vec<SocketAddr>) -> ResolverConfig {
        ResolverConfig {
            servers,
            timeout: Duration::from_secs(1),
            attempts: 2,
            max_cname_chain: 8,
            cache_bytes: DEFAULT_CACHE_BYTES,
            bailiwick: Name::root(),
            edns_payload: Some(EDNS_PAYLOAD_SIZE),
            tcp_timeout: Some(DEFAULT_TCP_TIMEOUT),
        }
    }
}

super::counters! {
    /// Resolver activity; every ignored response is counted by cause.
    pub struct ResolverStats {
        lookups,
        /// Lookups answered entirely from the cache.
        cache_answers,
        queries_sent,
        /// Queries that were a retry of the same question.
        retries,
        timeouts,
        responses_accepted,
        responses_malformed,
        /// QR clear: a query, not a response.
        responses_not_response,
        /// An ID we have no query outstanding for.
        responses_unknown_id,
        /// The right ID from another address than the one we asked.
        responses_wrong_server,
        /// The right ID and server but another question.
        responses_wrong_question,
        /// Larger than the size our query advertised (512, or our EDNS size): dropped.
        responses_oversize,
        /// Records in accepted answers that were neither used nor cached: off the question's
        /// CNAME chain, or at a CNAME target outside the servers' bailiwick.
        records_not_cached,
        /// SERVFAIL, REFUSED, NOTIMP, FORMERR and the like.
        server_failures,
        /// Accepted UDP answers with TC set.
        truncated,
        /// Questions asked again over TCP after a truncated answer.
        tcp_retries,
        /// TCP retries that got no usable answer (each also counted by its cause below, or
        /// as a rejected response above).
        tcp_failures,
        /// TCP retries that did not finish within `tcp_timeout`.
        tcp_timeouts,
        /// TCP retries whose connection failed or closed before the answer.
        tcp_errors,
        /// Answers over TCP with TC set (RFC 7766 §8 leaves TCP no reason to truncate).
        tcp_truncated,
        cnames_followed,
    }
}

/// Query IDs and other unpredictable choices. [`IdRng::from_os`] draws them from the
/// operating system's random source (getrandom), 64 bytes at a time, which is what a server
/// uses (RFC 5452 §9.2); [`IdRng::new`] is SplitMix64 over a seed, so a state machine under
/// test stays deterministic.
#[derive(Debug, Clone)]
pub struct IdRng {
    state: SplitMix64,
    /// Bytes from the OS not yet used, when drawing from the OS.
    os: Option<([u8; 64], usize)>,
}

impl IdRng {
    pub fn new(seed: u64) -> IdRng {
        IdRng {
            state: SplitMix64::new(seed),
            os: None,
        }
    }

    /// Numbers from the OS random source; should it ever fail, SplitMix64 over a seed from
    /// std's OS-seeded hash keys takes over.
    pub fn from_os() -> IdRng {
        IdRng {
            state: SplitMix64::new(super::socket::random_seed()),
            os: Some(([0; 64], 64)),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        if let Some((buf, used)) = &mut self.os {
            if *used + 8 > buf.len() && getrandom::fill(buf).is_ok() {
                *used = 0;
            }
            if *used + 8 <= buf.len() {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[*used..*used + 8]);
                *used += 8;
                return u64::from_ne_bytes(b);
            }
        }
        self.state.next_u64()
    }

    pub fn next_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }
}

/// The shared part of resolving: configuration, cache, IDs, counters.
#[derive(Debug, Clone)]
pub struct Resolver {
    config: ResolverConfig,
    cache: Cache,
    rng: IdRng,
    stats: ResolverStats,
}

impl Resolver {
    /// A resolver whose query IDs come from SplitMix64 over `seed` (deterministic, for tests
    /// and tools); servers use [`Resolver::with_os_ids`].
    pub fn new(config: ResolverConfig, seed: u64) -> Resolver {
        Resolver::with_rng(config, IdRng::new(seed))
    }

    /// A resolver whose query IDs come from the OS random source ([`IdRng::from_os`]).
    pub fn with_os_ids(config: ResolverConfig) -> Resolver {
        Resolver::with_rng(config, IdRng::from_os())
    }

    fn with_rng(config: ResolverConfig, rng: IdRng) -> Resolver {
        let cache = Cache::new(config.cache_bytes);
        Resolver {
            config,
            cache,
            rng,
            stats: ResolverStats::default(),
        }
    }

    pub fn config(&self) -> &ResolverConfig {
        &self.config
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn stats(&self) -> ResolverStats {
        self.stats
    }

    /// Starts resolving (`name`, `qtype`), class IN.
    pub fn lookup(&mut self, name: Name, qtype: RecordType) -> Lookup {
        self.stats.lookups += 1;
        Lookup {
            question: Question::new(name.clone(), qtype),
            current: name.clone(),
            visited: vec![name],
            chain: Vec::new(),
            tries: 0,
            outstanding: Vec::new(),
            deadline: None,
            last_failure: None,
            tcp: None,
            from_cache: true,
            done: None,
        }
    }
}

/// The outcome of a lookup that got an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupAnswer {
    /// The question asked.
    pub question: Question,
    /// NOERROR, or NXDOMAIN for the last name of the chain.
    pub rcode: Rcode,
    /// The CNAMEs from the question's name to the final name, in order.
    pub cnames: Vec<Record>,
    /// The records of the asked type at the final name; empty for NXDOMAIN and NODATA.
    pub records: Vec<Record>,
    /// The SOA of a negative answer, when the server sent one.
    pub soa: Option<Record>,
    /// True when no query was needed.
    pub from_cache: bool,
    /// The last response the answer came from (what a dig-like tool prints); `None` when the
    /// cache answered.
    pub response: Option<Box<Message>>,
}

impl LookupAnswer {
    /// The CNAME chain followed by the records, as an answer section lists them.
    pub fn answers(&self) -> impl Iterator<Item = &Record> {
        self.cnames.iter().chain(&self.records)
    }

    /// The addresses among the records.
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.records
            .iter()
            .filter_map(|r| match r.data {
                RData::A(a) => Some(IpAddr::V4(a)),
                RData::Aaaa(a) => Some(IpAddr::V6(a)),
                _ => None,
            })
            .collect()
    }
}

/// Why a lookup produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The configuration lists no server.
    NoServers,
    /// Every try timed out.
    Timeout {
        tries: u32,
    },
    /// The last try that got an answer got this error code, and no try did better.
    ServerFailure {
        rcode: Rcode,
        server: SocketAddr,
    },
    /// The response had TC set and asking again over TCP did not get the answer (or
    /// `tcp_timeout` is `None`). `question` is the question `server` truncated the answer to;
    /// `response` is that truncated answer and `cnames` the chain followed before it, so a
    /// forwarder can relay what it got with TC set.
    Truncated {
        server: SocketAddr,
        question: Question,
        cnames: Vec<Record>,
        response: Box<Message>,
    },
    /// A CNAME chain that comes back to a name it passed.
    CnameLoop(Name),
    CnameChainTooLong,
    /// The blocking driver's socket failed (not a timeout).
    Io(std::io::ErrorKind),
}

impl core::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResolveError::NoServers => f.write_str("no DNS server configured"),
            ResolveError::Timeout { tries } => write!(f, "no response after {tries} tries"),
            ResolveError::ServerFailure { rcode, server } => write!(f, "{server} answered {rcode}"),
            ResolveError::Truncated { server, .. } => {
                write!(
                    f,
                    "{server} truncated the answer and TCP did not get it whole"
                )
            }
            ResolveError::CnameLoop(n) => write!(f, "CNAME loop at {n}"),
            ResolveError::CnameChainTooLong => f.write_str("CNAME chain too long"),
            ResolveError::Io(kind) => write!(f, "socket error: {kind}"),
        }
    }
}

impl std::error::Error for ResolveError {}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub server: SocketAddr,
    pub payload: Vec<u8>,
    /// Send from a new socket with a new random port: true for the first query of each
    /// question; retries go out of the same socket.
    pub fresh_socket: bool,
}

/// A question to ask over TCP: one length-prefixed query on a new connection to `server`
/// (RFC 7766 §6.2.1), its answer fed to [`Lookup::on_tcp_response`], or its failure to
/// [`Lookup::on_tcp_failure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpTransmit {
    pub server: SocketAddr,
    /// The query, without the two-octet length.
    pub payload: Vec<u8>,
    /// The whole exchange (connect, write, read) ends by this instant.
    pub deadline: Instant,
}

/// What a lookup wants next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Send(Transmit),
    /// Ask over TCP after a truncated answer; nothing else happens until its outcome is fed.
    SendTcp(TcpTransmit),
    /// Feed responses until this instant, then poll again.
    Wait(Instant),
    Done(Result<LookupAnswer, ResolveError>),
}

/// One question being resolved.
#[derive(Debug, Clone)]
pub struct Lookup {
    question: Question,
    /// The name being asked now (the question's, or a CNAME target).
    current: Name,
    visited: Vec<Name>,
    chain: Vec<Record>,
    /// Queries sent for `current`.
    tries: u32,
    /// (ID, server) of every query sent for `current`.
    outstanding: Vec<(u16, SocketAddr)>,
    deadline: Option<Instant>,
    last_failure: Option<ResolveError>,
    /// The retry over TCP after a truncated answer, while there is one.
    tcp: Option<TcpRetry>,
    from_cache: bool,
    done: Option<Result<LookupAnswer, ResolveError>>,
}

/// A retry over TCP: the truncated answer it replaces, and the query once it is sent.
#[derive(Debug, Clone)]
struct TcpRetry {
    server: SocketAddr,
    truncated: Box<Message>,
    /// The ID of the query over TCP, once [`Step::SendTcp`] went out.
    sent: Option<u16>,
}

impl Lookup {
    pub fn question(&self) -> &Question {
        &self.question
    }

    /// What to do next at `now`.
    pub fn poll(&mut self, resolver: &mut Resolver, now: Instant) -> Step {
        loop {
            if let Some(done) = &self.done {
                return Step::Done(done.clone());
            }
            if let Some(tcp) = &self.tcp {
                if tcp.sent.is_none() {
                    return self.send_tcp(resolver, now);
                }
                match self.deadline {
                    Some(deadline) if now < deadline => return Step::Wait(deadline),
                    _ => {
                        resolver.stats.tcp_timeouts += 1;
                        self.tcp_failed(resolver);
                        continue;
                    }
                }
            }
            match self.deadline {
                Some(deadline) if now < deadline => return Step::Wait(deadline),
                Some(_) => {
                    resolver.stats.timeouts += 1;
                    self.deadline = None;
                }
                None => {}
            }
            if self.tries == 0 && self.answer_from_cache(resolver, now) {
                continue;
            }
            return self.transmit(resolver, now);
        }
    }

    /// Sends the retry over TCP: the same question with a fresh ID (RFC 5452).
    fn send_tcp(&mut self, resolver: &mut Resolver, now: Instant) -> Step {
        let Some(tcp) = &mut self.tcp else {
            return Step::Wait(now);
        };
        let id = resolver.rng.next_u16();
        tcp.sent = Some(id);
        let server = tcp.server;
        resolver.stats.tcp_retries += 1;
        resolver.stats.queries_sent += 1;
        let timeout = resolver.config.tcp_timeout.unwrap_or(DEFAULT_TCP_TIMEOUT);
        let deadline = now + timeout;
        self.deadline = Some(deadline);
        Step::SendTcp(TcpTransmit {
            server,
            payload: self.query(resolver, id),
            deadline,
        })
    }

    /// Answers `current` from the cache if it can. Returns true when it made progress
    /// (finished, or followed a cached CNAME).
    fn answer_from_cache(&mut self, resolver: &mut Resolver, now: Instant) -> bool {
        let qtype = self.question.qtype;
        match resolver.cache.get(now, &self.current, qtype) {
            Some(Cached::Records(records)) => {
                self.finish(resolver, Rcode::NOERROR, records, None);
                return true;
            }
            Some(Cached::NxDomain(soa)) => {
                self.finish(resolver, Rcode::NXDOMAIN, vec![], Some(soa));
                return true;
            }
            Some(Cached::NoData(soa)) => {
                self.finish(resolver, Rcode::NOERROR, vec![], Some(soa));
                return true;
            }
            None => {}
        }
        if qtype == RecordType::CNAME {
            return false;
        }
        match resolver.cache.get(now, &self.current, RecordType::CNAME) {
            Some(Cached::Records(mut rs)) if !rs.is_empty() => {
                let cname = rs.swap_remove(0);
                self.follow(resolver, cname);
                true
            }
            _ => false,
        }
    }

    fn transmit(&mut self, resolver: &mut Resolver, now: Instant) -> Step {
        let servers = &resolver.config.servers;
        if servers.is_empty() {
            self.done = Some(Err(ResolveError::NoServers));
            return Step::Done(Err(ResolveError::NoServers));
        }
        let rounds = resolver.config.attempts.max(1);
        let per_round = servers.len() as u32;
        if self.tries >= rounds.saturating_mul(per_round) {
            let err = self
                .last_failure
                .clone()
                .unwrap_or(ResolveError::Timeout { tries: self.tries });
            self.done = Some(Err(err.clone()));
            return Step::Done(Err(err));
        }
        let server = servers[(self.tries % per_round) as usize];
        let round = (self.tries / per_round).min(16);
        let timeout = resolver.config.timeout.saturating_mul(1 << round);
        let id = resolver.rng.next_u16();
        let payload = self.query(resolver, id);
        let fresh_socket = self.tries == 0;
        if !fresh_socket {
            resolver.stats.retries += 1;
        }
        resolver.stats.queries_sent += 1;
        self.from_cache = false;
        self.tries += 1;
        self.outstanding.push((id, server));
        self.deadline = Some(now + timeout);
        Step::Send(Transmit {
            server,
            payload,
            fresh_socket,
        })
    }

    /// The query for `current` under `id`, with EDNS as configured.
    fn query(&self, resolver: &Resolver, id: u16) -> Vec<u8> {
        let mut query =
            Message::query(id, Question::new(self.current.clone(), self.question.qtype));
        query.edns = resolver.config.edns_payload.map(Edns::new);
        // A query with one question of a bounded name always emits.
        query.emit().unwrap_or_default()
    }

    /// Feeds a datagram that arrived from `from` on this lookup's socket.
    pub fn on_response(
        &mut self,
        resolver: &mut Resolver,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        if self.done.is_some() {
            return;
        }
        let advertised = resolver
            .config
            .edns_payload
            .map_or(MAX_UDP_PAYLOAD, |size| {
                usize::from(size).max(MAX_UDP_PAYLOAD)
            });
        if bytes.len() > advertised {
            resolver.stats.responses_oversize += 1;
            return;
        }
        let Some(m) = self.check_response(resolver, from, bytes, &self.outstanding) else {
            return;
        };
        self.outstanding.clear();
        self.deadline = None;
        if m.header.tc {
            resolver.stats.truncated += 1;
            if resolver.config.tcp_timeout.is_some() {
                // RFC 7766 §5: ask the same server the same question over TCP (poll sends).
                self.tcp = Some(TcpRetry {
                    server: from,
                    truncated: Box::new(m),
                    sent: None,
                });
            } else {
                self.done = Some(Err(self.truncated_error(from, m)));
            }
            return;
        }
        self.on_accepted(resolver, now, from, m);
    }

    /// Feeds the answer that came back over TCP for [`Step::SendTcp`]. It is checked as a
    /// UDP answer is (ID, server, question); one that fails, or has TC set, fails the retry.
    pub fn on_tcp_response(&mut self, resolver: &mut Resolver, now: Instant, bytes: &[u8]) {
        let Some(TcpRetry {
            server,
            sent: Some(id),
            ..
        }) = self.tcp
        else {
            return;
        };
        if self.done.is_some() {
            return;
        }
        let Some(m) = self.check_response(resolver, server, bytes, &[(id, server)]) else {
            self.tcp_failed(resolver);
            return;
        };
        if m.header.tc {
            resolver.stats.tcp_truncated += 1;
            self.tcp_failed(resolver);
            return;
        }
        self.tcp = None;
        self.deadline = None;
        self.on_accepted(resolver, now, server, m);
    }

    /// The TCP exchange for [`Step::SendTcp`] failed with `kind` (a timeout, a refused or
    /// reset connection, a close before the answer).
    pub fn on_tcp_failure(&mut self, resolver: &mut Resolver, kind: io::ErrorKind) {
        if self.done.is_some() || self.tcp.as_ref().is_none_or(|t| t.sent.is_none()) {
            return;
        }
        if matches!(kind, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
            resolver.stats.tcp_timeouts += 1;
        } else {
            resolver.stats.tcp_errors += 1;
        }
        self.tcp_failed(resolver);
    }

    /// Ends the lookup with the truncated answer the retry was for (counted as a failure).
    fn tcp_failed(&mut self, resolver: &mut Resolver) {
        resolver.stats.tcp_failures += 1;
        self.deadline = None;
        if let Some(tcp) = self.tcp.take() {
            debug!("dns: retry over TCP to {} failed", tcp.server);
            self.done = Some(Err(self.truncated_error(tcp.server, *tcp.truncated)));
        }
    }

    fn truncated_error(&self, server: SocketAddr, response: Message) -> ResolveError {
        ResolveError::Truncated {
            server,
            question: Question::new(self.current.clone(), self.question.qtype),
            cnames: self.chain.clone(),
            response: Box::new(response),
        }
    }

    /// RFC 5452 §9.1: a response counts when it parses, is a response, carries an ID we sent
    /// to `from` (`sent`) and echoes the question. Every other one is counted by cause.
    fn check_response(
        &self,
        resolver: &mut Resolver,
        from: SocketAddr,
        bytes: &[u8],
        sent: &[(u16, SocketAddr)],
    ) -> Option<Message> {
        let stats = &mut resolver.stats;
        let Ok(m) = Message::parse(bytes) else {
            stats.responses_malformed += 1;
            return None;
        };
        if !m.header.qr {
            stats.responses_not_response += 1;
            return None;
        }
        let Some(&(_, server)) = sent.iter().find(|(id, _)| *id == m.header.id) else {
            stats.responses_unknown_id += 1;
            return None;
        };
        if server != from {
            stats.responses_wrong_server += 1;
            return None;
        }
        let expected = Question::new(self.current.clone(), self.question.qtype);
        if m.questions != [expected] {
            stats.responses_wrong_question += 1;
            return None;
        }
        stats.responses_accepted += 1;
        Some(m)
    }

    /// A checked, complete response from `from`: an answer, or an error code to move on from.
    fn on_accepted(&mut self, resolver: &mut Resolver, now: Instant, from: SocketAddr, m: Message) {
        match m.rcode() {
            Rcode::NOERROR | Rcode::NXDOMAIN => {
                self.on_answer(resolver, now, &m);
                if let Some(Ok(answer)) = &mut self.done {
                    answer.response = Some(Box::new(m));
                }
            }
            rcode => {
                debug!("dns: {from} answered {rcode} for {}", self.current);
                resolver.stats.server_failures += 1;
                // Next try at once, from the same socket.
                self.last_failure = Some(ResolveError::ServerFailure {
                    rcode,
                    server: from,
                });
            }
        }
    }

    fn on_answer(&mut self, resolver: &mut Resolver, now: Instant, m: &Message) {
        let total = m.answers.len() + m.authorities.len() + m.additionals.len();
        let used = self.use_answer(resolver, now, m);
        resolver.stats.records_not_cached += total.saturating_sub(used) as u64;
    }

    /// Takes from `m` the records on the chain from `current`, caching them; returns how
    /// many records of `m` it used.
    fn use_answer(&mut self, resolver: &mut Resolver, now: Instant, m: &Message) -> usize {
        let qtype = self.question.qtype;
        let asked = self.current.clone();
        let mut used = 0;
        loop {
            let name = self.current.clone();
            if name != asked && !name.is_subdomain_of(&resolver.config.bailiwick) {
                // A CNAME target outside the servers' bailiwick: whatever this response says
                // about it is not used; poll asks for it on its own.
                return used;
            }
            let at_name = |t: RecordType| -> Vec<Record> {
                m.answers
                    .iter()
                    .filter(|r| {
                        r.name == name
                            && r.class == Class::IN
                            && (r.rtype() == t || t == RecordType::ANY)
                    })
                    .cloned()
                    .collect()
            };
            let records = at_name(qtype);
            if !records.is_empty() {
                used += records.len();
                if qtype != RecordType::ANY {
                    resolver
                        .cache
                        .insert_rrset(now, &name, qtype, records.clone());
                }
                self.finish(resolver, Rcode::NOERROR, records, None);
                return used;
            }
            let cname = at_name(RecordType::CNAME).into_iter().next();
            match cname {
                Some(cname) if qtype != RecordType::CNAME => {
                    used += 1;
                    resolver
                        .cache
                        .insert_rrset(now, &name, RecordType::CNAME, vec![cname.clone()]);
                    if !self.follow(resolver, cname) {
                        return used;
                    }
                }
                _ => break,
            }
        }
        // No data for `current` in this response.
        let soa = m
            .authorities
            .iter()
            .find(|r| r.rtype() == RecordType::SOA && self.current.is_subdomain_of(&r.name))
            .cloned();
        let nxdomain = m.rcode() == Rcode::NXDOMAIN;
        if nxdomain || self.current == asked || soa.is_some() {
            // RFC 2308 §2.1, RFC 6604: the rcode and the SOA speak of the last name.
            if let Some(soa) = &soa {
                used += 1;
                resolver
                    .cache
                    .insert_negative(now, &self.current, qtype, nxdomain, soa.clone());
            }
            let rcode = if nxdomain {
                Rcode::NXDOMAIN
            } else {
                Rcode::NOERROR
            };
            self.finish(resolver, rcode, vec![], soa);
        }
        // Otherwise the chain left the server's data: ask again for the target (poll sends).
        used
    }

    /// Adds a CNAME to the chain and moves on to its target; false when that ends the lookup.
    fn follow(&mut self, resolver: &mut Resolver, cname: Record) -> bool {
        let Some(target) = cname.data.target().cloned() else {
            return false;
        };
        resolver.stats.cnames_followed += 1;
        self.chain.push(cname);
        if self.visited.contains(&target) {
            self.done = Some(Err(ResolveError::CnameLoop(target)));
            return false;
        }
        if self.chain.len() > resolver.config.max_cname_chain {
            self.done = Some(Err(ResolveError::CnameChainTooLong));
            return false;
        }
        self.visited.push(target.clone());
        self.current = target;
        self.tries = 0;
        self.outstanding.clear();
        self.deadline = None;
        self.last_failure = None;
        self.tcp = None;
        true
    }

    fn finish(
        &mut self,
        resolver: &mut Resolver,
        rcode: Rcode,
        records: Vec<Record>,
        soa: Option<Record>,
    ) {
        if self.from_cache {
            resolver.stats.cache_answers += 1;
        }
        self.done = Some(Ok(LookupAnswer {
            question: self.question.clone(),
            rcode,
            cnames: core::mem::take(&mut self.chain),
            records,
            soa,
            from_cache: self.from_cache,
            // Set by on_response when a response (not the cache) finished the lookup.
            response: None,
        }));
    }
}

#[cfg(test)]
mod tests;
