//! `nsdig`: a dig-like DNS lookup that runs over its own user-space stack on a TAP.
//!
//! One query, retried on timeout from the same socket (as dig does), printed in dig's layout.
//! Unlike the resolver it does not follow CNAMEs or hide error codes: it shows the server's
//! response as it came, which is what a diagnostic tool is for.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use netstack_application::dns::{
    random_seed, Edns, IdRng, Message, Name, Question, RecordType, EDNS_PAYLOAD_SIZE,
};
use netstack_bin::args::{parse_ip, parse_port};
use netstack_bin::tool::{self, DeviceArgs, EXIT_INTERRUPTED};
use netstack_runtime::{StackHandle, UdpSocket};

/// dig's exit status when no server answered.
const EXIT_NO_REPLY: u8 = 9;
/// The record types nsdig asks for, as TYPE accepts them.
const TYPES: [RecordType; 10] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::PTR,
    RecordType::ANY,
];
/// The largest response read (a UDP payload is at most 65,507 octets).
const RECV_BUFFER: usize = 65_536;

/// A dig-like DNS lookup over netstack's own user-space TCP/IP stack on a TAP device.
///
/// nsdig attaches to the TAP (creating it, with the kernel side at the subnet's first host,
/// when it is missing), asks one question of one server over UDP and prints the response in
/// dig's layout. It does not follow CNAMEs: the response is shown as the server sent it.
///
/// Exit status: 0 when a response arrived (whatever its status: NXDOMAIN is an answer),
/// 9 when no server answered (as dig), 1 when the device or stack could not be set up,
/// 2 for a usage error, 130 when interrupted.
#[derive(Debug, Parser)]
#[command(
    name = "nsdig",
    version,
    about,
    after_help = "Examples (as root):\n  \
                  nsdig svc.test MX @192.0.2.1 --short     ask a server on the kernel side of nstap0\n  \
                  nsdig example.test --timeout 1 --tries 2 give up after about 2 s\n  \
                  nsdig --addr 198.51.100.2/24 --gateway 198.51.100.1 www.demo.test @192.0.2.2\n    \
                  ask netstackd (on tap0, run with --gateway 192.0.2.1) through the kernel, which\n    \
                  routes between the TAPs once net.ipv4.ip_forward=1 (a TAP has one user at a time)"
)]
struct Args {
    /// NAME to look up, then optionally TYPE (A, AAAA, CNAME, NS, MX, TXT, SOA, SRV, PTR or ANY;
    /// default A) and @SERVER (an IPv4 address; default: the kernel side of the TAP, --host-addr
    /// or the first host of --addr's subnet), in any order after NAME. dig's +short also works.
    #[arg(value_name = "NAME [TYPE] [@SERVER]", required = true, num_args = 1..)]
    words: Vec<String>,

    /// Print only the data of the answer records, one per line (dig's +short)
    #[arg(long)]
    short: bool,

    /// The server's UDP port
    #[arg(long, short = 'p', value_name = "PORT", default_value_t = 53, value_parser = parse_port)]
    port: u16,

    /// Seconds to wait for a response to each try (decimals allowed)
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = tool::parse_seconds)]
    timeout: Duration,

    /// How many times to send the query before giving up (dig's +tries)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = parse_tries)]
    tries: u32,

    /// Send a plain RFC 1035 query, without the EDNS0 OPT record (dig's +noedns)
    #[arg(long)]
    no_edns: bool,

    #[command(flatten)]
    device: DeviceArgs,
}

fn parse_tries(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if (1..=10).contains(&n) => Ok(n),
        _ => Err("use a number of tries from 1 to 10, e.g. 3".into()),
    }
}

/// What the words after the flags ask.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    name: Name,
    qtype: RecordType,
    server: Option<Ipv4Addr>,
    short: bool,
}

/// Sorts NAME, TYPE, @SERVER and +short out of the positional words.
fn classify(words: &[String]) -> Result<Query, String> {
    let mut name = None;
    let mut qtype = None;
    let mut server = None;
    let mut short = false;
    for w in words {
        if let Some(ip) = w.strip_prefix('@') {
            if server.is_some() {
                return Err(format!("{w}: a second @SERVER; nsdig asks one server"));
            }
            server = Some(parse_ip(ip).map_err(|e| format!("@SERVER {ip}: {e}"))?);
        } else if w.eq_ignore_ascii_case("+short") {
            short = true;
        } else if w.starts_with('+') {
            return Err(format!(
                "{w}: of dig's +options only +short is understood; the others are --flags (see --help)"
            ));
        } else if name.is_none() {
            name = Some(parse_name(w)?);
        } else if qtype.is_none() {
            qtype = Some(parse_type(w)?);
        } else {
            return Err(format!(
                "{w}: unexpected; write NAME [TYPE] [@SERVER], e.g. svc.test MX @192.0.2.1"
            ));
        }
    }
    Ok(Query {
        name: name.ok_or("NAME is missing; write e.g. nsdig svc.test @192.0.2.1")?,
        qtype: qtype.unwrap_or(RecordType::A),
        server,
        short,
    })
}

fn parse_name(s: &str) -> Result<Name, String> {
    s.parse::<Name>()
        .map_err(|e| format!("NAME {s}: {e}; write a domain name such as www.example.test"))
}

fn parse_type(s: &str) -> Result<RecordType, String> {
    TYPES
        .iter()
        .copied()
        .find(|t| t.mnemonic().is_some_and(|m| m.eq_ignore_ascii_case(s)))
        .ok_or_else(|| {
            let valid: Vec<String> = TYPES.iter().map(ToString::to_string).collect();
            format!(
                "TYPE {s}: not a type nsdig asks for; use one of {}",
                valid.join(", ")
            )
        })
}

/// A response that passed the checks.
struct Reply {
    message: Message,
    size: usize,
    rtt: Duration,
}

/// Why a try got no usable response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TryFailure {
    TimedOut,
    /// ICMP port unreachable: nothing listens on the server's port.
    Refused,
    /// The server (or the gateway) never answered ARP, or an ICMP unreachable said so.
    Unreachable,
}

/// How the whole query ended, with a line per failed try (dig's "communications error").
struct Outcome {
    reply: Option<Reply>,
    failures: Vec<TryFailure>,
}

struct Plan {
    question: Question,
    server: SocketAddr,
    timeout: Duration,
    tries: u32,
    edns: bool,
}

/// Sends the query up to `tries` times from one socket and returns the first response whose
/// ID is one we sent and whose question is ours (RFC 5452 §9.1; the connected socket already
/// drops datagrams from any other address).
fn ask(stack: &StackHandle, plan: &Plan) -> io::Result<Outcome> {
    let socket = UdpSocket::bind(stack, "0.0.0.0:0")?;
    // Connected, so an ICMP port unreachable surfaces as ConnectionRefused (RFC 1122 §4.1.3.3).
    socket.connect(plan.server)?;
    let mut ids = IdRng::new(random_seed());
    let mut sent = Vec::new();
    let mut failures = Vec::new();
    let mut buf = vec![0u8; RECV_BUFFER];
    for _ in 0..plan.tries {
        let id = ids.next_u16();
        sent.push(id);
        let mut query = Message::query(id, plan.question.clone());
        query.edns = plan.edns.then(|| Edns::new(EDNS_PAYLOAD_SIZE));
        let bytes = query
            .emit()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let started = Instant::now();
        socket.send(&bytes)?;
        let until = started + plan.timeout;
        let failure = loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break TryFailure::TimedOut;
            }
            socket.set_read_timeout(Some(left))?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break TryFailure::TimedOut,
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    break TryFailure::Refused
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable
                    ) =>
                {
                    break TryFailure::Unreachable
                }
                Err(e) => return Err(e),
            };
            match Message::parse(&buf[..n]) {
                Ok(m)
                    if m.header.qr
                        && sent.contains(&m.header.id)
                        && m.questions == [plan.question.clone()] =>
                {
                    let reply = Reply {
                        message: m,
                        size: n,
                        rtt: started.elapsed(),
                    };
                    return Ok(Outcome {
                        reply: Some(reply),
                        failures,
                    });
                }
                Ok(m) => log::warn!(
                    "ignored a response that does not match the query (id {}, qr {}, {} questions)",
                    m.header.id,
                    m.header.qr,
                    m.questions.len()
                ),
                Err(e) => log::warn!("ignored a malformed response ({n} bytes): {e}"),
            }
        };
        failures.push(failure);
    }
    Ok(Outcome {
        reply: None,
        failures,
    })
}

/// dig's `server#port` form.
fn server_text(server: SocketAddr) -> String {
    format!("{}#{}", server.ip(), server.port())
}

/// A line for each failed try, as dig 9.18 prints them.
fn render_tries(out: &mut String, server: SocketAddr, failures: &[TryFailure]) {
    for f in failures {
        let what = match f {
            TryFailure::TimedOut => "timed out",
            TryFailure::Refused => "connection refused",
            TryFailure::Unreachable => "host unreachable",
        };
        let _ = writeln!(
            out,
            ";; communications error to {}: {what}",
            server_text(server)
        );
    }
}

/// The lines for each failed try, then for giving up (what dig prints).
fn render_failures(out: &mut String, server: SocketAddr, failures: &[TryFailure]) {
    render_tries(out, server, failures);
    if failures.last() == Some(&TryFailure::TimedOut) {
        out.push_str(";; connection timed out; no servers could be reached\n");
    } else {
        out.push_str(";; no servers could be reached\n");
    }
}

/// The response in dig's layout (or only the answers' data with `short`).
fn render_reply(
    out: &mut String,
    words: &str,
    server: SocketAddr,
    reply: &Reply,
    when: SystemTime,
    short: bool,
) {
    let m = &reply.message;
    if short {
        for r in &m.answers {
            let _ = writeln!(out, "{}", r.data);
        }
    } else {
        let _ = writeln!(
            out,
            "\n; <<>> nsdig {} <<>> {words}\n;; Got answer:",
            env!("CARGO_PKG_VERSION")
        );
        let _ = write!(out, "{m}");
        let _ = writeln!(
            out,
            "\n;; Query time: {} msec\n;; SERVER: {}({}) (UDP)\n;; WHEN: {}\n;; MSG SIZE  rcvd: {}\n",
            reply.rtt.as_millis(),
            server_text(server),
            server.ip(),
            dig_date(when),
            reply.size
        );
    }
    if m.header.tc {
        // dig retries over TCP here; netstack has no TCP yet, so say what is missing.
        out.push_str(
            ";; Truncated: the full answer needs DNS over TCP, which nsdig cannot do yet; \
             shown as received\n",
        );
    }
}

/// `Wed Nov 25 19:30:00 UTC 2026`, as dig's `;; WHEN:` line (in UTC).
fn dig_date(t: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {} {d:2} {:02}:{:02}:{:02} UTC {y}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01, by Howard Hinnant's
/// proleptic Gregorian algorithm.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let query = match classify(&args.words).and_then(|q| {
        args.device.check()?;
        check_server(&args, &q)?;
        Ok(q)
    }) {
        Ok(q) => q,
        Err(msg) => {
            eprintln!("nsdig: error: {msg}");
            return ExitCode::from(2);
        }
    };
    tool::init_logging(args.device.log_level);
    tool::exit_code("nsdig", run(&args, &query))
}

fn server_of(args: &Args, q: &Query) -> Ipv4Addr {
    q.server.unwrap_or_else(|| args.device.kernel_side().addr)
}

/// A server off the stack's subnet is reachable only through a gateway.
fn check_server(args: &Args, q: &Query) -> Result<(), String> {
    let server = server_of(args, q);
    if server == args.device.addr.addr {
        return Err(format!(
            "@{server}: that is nsdig's own stack address (--addr); ask the kernel side or another host"
        ));
    }
    if !args.device.addr.contains(server) && args.device.gateway.is_none() {
        return Err(format!(
            "@{server}: outside --addr {}; give --gateway IP to reach it, or ask a server on that subnet",
            args.device.addr
        ));
    }
    Ok(())
}

fn run(args: &Args, q: &Query) -> io::Result<u8> {
    let server = SocketAddr::from((server_of(args, q), args.port));
    let plan = Plan {
        question: Question::new(q.name.clone(), q.qtype),
        server,
        timeout: args.timeout,
        tries: args.tries,
        edns: !args.no_edns,
    };
    let short = args.short || q.short;
    let Some(outcome) = tool::run_on_stack(&args.device, move |h| ask(&h, &plan))? else {
        return Ok(EXIT_INTERRUPTED);
    };
    let outcome = outcome?;
    let mut out = String::new();
    let code = match &outcome.reply {
        Some(reply) => {
            render_tries(&mut out, server, &outcome.failures);
            let words = format!("{} {} @{}", q.name, q.qtype, server.ip());
            render_reply(&mut out, &words, server, reply, SystemTime::now(), short);
            0
        }
        None => {
            render_failures(&mut out, server, &outcome.failures);
            EXIT_NO_REPLY
        }
    };
    let mut stdout = io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netstack_application::dns::{RData, Record};

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    fn parse(a: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("nsdig").chain(a.iter().copied()))
    }

    #[test]
    fn name_type_and_server_come_in_any_order_after_the_name() {
        let q = classify(&words(&["@192.0.2.1", "svc.test", "mx"])).unwrap();
        assert_eq!(q.name, "svc.test".parse::<Name>().unwrap());
        assert_eq!(q.qtype, RecordType::MX);
        assert_eq!(q.server, Some(Ipv4Addr::new(192, 0, 2, 1)));
        let q = classify(&words(&["svc.test", "+short"])).unwrap();
        assert_eq!((q.qtype, q.server, q.short), (RecordType::A, None, true));
    }

    #[test]
    fn every_listed_type_is_accepted_in_any_case() {
        for t in TYPES {
            let lower = t.to_string().to_ascii_lowercase();
            assert_eq!(parse_type(&lower), Ok(t));
        }
    }

    #[test]
    fn an_unknown_type_names_the_valid_ones() {
        let e = classify(&words(&["svc.test", "AXFR"])).unwrap_err();
        assert_eq!(
            e,
            "TYPE AXFR: not a type nsdig asks for; use one of A, AAAA, CNAME, NS, MX, TXT, SOA, SRV, PTR, ANY"
        );
    }

    #[test]
    fn word_rejections_name_the_word_and_the_fix() {
        for (w, needle) in [
            (
                &["svc.test", "@300.1.1.1"][..],
                "@SERVER 300.1.1.1: not an IPv4 address",
            ),
            (
                &["svc.test", "@192.0.2.1", "@192.0.2.9"][..],
                "a second @SERVER",
            ),
            (
                &["svc.test", "+trace"][..],
                "+trace: of dig's +options only +short",
            ),
            (&["a..b"][..], "NAME a..b:"),
            (&["@192.0.2.1"][..], "NAME is missing"),
            (&["svc.test", "A", "extra"][..], "extra: unexpected"),
        ] {
            let e = classify(&words(w)).unwrap_err();
            assert!(e.contains(needle), "{w:?}: {e}");
        }
    }

    #[test]
    fn flag_rejections_name_the_flag_and_the_fix() {
        for (a, needle) in [
            (&["x", "--tries", "0"][..], "from 1 to 10"),
            (&["x", "--timeout", "0"][..], "e.g. 2 or 0.5"),
            (&["x", "--port", "0"][..], "1 to 65535"),
            (
                &["x", "--tap", "a-name-longer-than-15"][..],
                "1 to 15 bytes",
            ),
            (&["x", "--addr", "192.0.2.0/24"][..], "network or broadcast"),
        ] {
            let msg = parse(a).unwrap_err().to_string();
            assert!(msg.contains(needle), "{a:?}: {msg}");
        }
        assert!(parse(&[]).is_err(), "NAME is required");
    }

    #[test]
    fn the_default_server_is_the_kernel_side_and_off_subnet_needs_a_gateway() {
        let a = parse(&["svc.test"]).unwrap();
        let q = classify(&a.words).unwrap();
        assert_eq!(server_of(&a, &q), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(a.device.tap, "nstap0");
        let a = parse(&["svc.test", "@198.51.100.53"]).unwrap();
        let q = classify(&a.words).unwrap();
        assert!(check_server(&a, &q).unwrap_err().contains("give --gateway"));
        let a = parse(&["svc.test", "@192.0.2.3"]).unwrap();
        let q = classify(&a.words).unwrap();
        assert!(check_server(&a, &q)
            .unwrap_err()
            .contains("own stack address"));
    }

    fn reply(tc: bool) -> Reply {
        let q = Question::new("svc.test".parse().unwrap(), RecordType::A);
        let mut m = Message::query(0x1234, q.clone());
        m.header.qr = true;
        m.header.ra = true;
        m.header.tc = tc;
        m.answers.push(Record::new(
            "svc.test".parse().unwrap(),
            0,
            RData::A(Ipv4Addr::new(192, 0, 2, 77)),
        ));
        Reply {
            message: m,
            size: 42,
            rtt: Duration::from_millis(3),
        }
    }

    fn server() -> SocketAddr {
        "192.0.2.1:53".parse().unwrap()
    }

    #[test]
    fn a_reply_is_printed_in_digs_layout() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_099_000);
        let mut out = String::new();
        render_reply(
            &mut out,
            "svc.test A @192.0.2.1",
            server(),
            &reply(false),
            when,
            false,
        );
        let expected = format!(
            "\n; <<>> nsdig {} <<>> svc.test A @192.0.2.1\n;; Got answer:\n\
             ;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4660\n\
             ;; flags: qr rd ra; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0\n\
             \n;; QUESTION SECTION:\n;svc.test.\t\tIN\tA\n\
             \n;; ANSWER SECTION:\nsvc.test.\t0\tIN\tA\t192.0.2.77\n\
             \n;; Query time: 3 msec\n;; SERVER: 192.0.2.1#53(192.0.2.1) (UDP)\n\
             ;; WHEN: Tue Nov 25 19:30:00 UTC 2025\n;; MSG SIZE  rcvd: 42\n\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn short_prints_only_the_answer_data_and_truncation_is_reported() {
        let mut out = String::new();
        render_reply(
            &mut out,
            "",
            server(),
            &reply(true),
            SystemTime::now(),
            true,
        );
        assert_eq!(
            out,
            "192.0.2.77\n;; Truncated: the full answer needs DNS over TCP, which nsdig cannot \
             do yet; shown as received\n"
        );
    }

    #[test]
    fn no_reply_is_reported_as_dig_does() {
        let mut out = String::new();
        render_failures(
            &mut out,
            server(),
            &[TryFailure::TimedOut, TryFailure::TimedOut],
        );
        assert_eq!(
            out,
            ";; communications error to 192.0.2.1#53: timed out\n\
             ;; communications error to 192.0.2.1#53: timed out\n\
             ;; connection timed out; no servers could be reached\n"
        );
        let mut out = String::new();
        render_failures(
            &mut out,
            server(),
            &[TryFailure::Refused, TryFailure::Unreachable],
        );
        assert_eq!(
            out,
            ";; communications error to 192.0.2.1#53: connection refused\n\
             ;; communications error to 192.0.2.1#53: host unreachable\n\
             ;; no servers could be reached\n"
        );
    }

    #[test]
    fn dates_are_digs_when_line_in_utc() {
        assert_eq!(
            dig_date(SystemTime::UNIX_EPOCH),
            "Thu Jan  1 00:00:00 UTC 1970"
        );
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(dig_date(leap), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
