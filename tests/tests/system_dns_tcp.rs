//! System tests for DNS over TCP (RFC 7766): `dig +tcp` and `kdig +tcp`, inside a throwaway
//! network namespace, ask netstackd over a TAP for the built-in demo.test zone, a zone whose
//! answer does not fit a UDP datagram, and (through dnsmasq on the kernel side) a forwarded
//! name; `kdig +keepopen` sends several queries on one connection.
//!
//! Gated by `require_system` like the other system tests; needs `cargo build --workspace --bins`
//! first (netstackd, same target dir and profile):
//! ```text
//! cargo build --workspace --bins && cargo test -p netstack-tests --test system_dns_tcp
//! ```

use std::time::Duration;

use netstack_tests::dig::DigResponse;
use netstack_tests::netns::{NetNs, Netstackd, NsChild, Shutdown};
use netstack_tests::system::{require_system, ScratchDir};

const STACK_IP: &str = "192.0.2.2";
const KERNEL_IP: &str = "192.0.2.1";
/// How long one dig or kdig run may take: two tries of 2 s each, and slack.
const DIG_DEADLINE: Duration = Duration::from_secs(10);

/// The www.demo.test CNAME every answer below starts with.
const WWW_CNAME: &str = "www.demo.test. 300 IN CNAME demo.test.";

/// The apex records of the built-in zone as dig prints them (system_udp_dns.rs checks these
/// strings against `demo_zone`).
const DEMO_APEX: [(&str, &str); 5] = [
    ("A", "demo.test. 300 IN A 192.0.2.2"),
    ("AAAA", "demo.test. 300 IN AAAA 2001:db8::2"),
    ("MX", "demo.test. 300 IN MX 10 mail.demo.test."),
    ("TXT", "demo.test. 300 IN TXT \"netstack demo zone\""),
    (
        "SOA",
        "demo.test. 300 IN SOA ns.demo.test. hostmaster.demo.test. 2026112501 3600 600 86400 60",
    ),
];

/// RFC 2308 §3: the SOA of a negative answer carries min(SOA TTL, SOA MINIMUM) = 60.
const NEGATIVE_SOA: &str =
    "demo.test. 60 IN SOA ns.demo.test. hostmaster.demo.test. 2026112501 3600 600 86400 60";

fn stat(end: &Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("netstackd printed no `stat {name}`: {:?}", end.stats))
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Dig,
    Kdig,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            Tool::Dig => "dig",
            Tool::Kdig => "kdig",
        }
    }

    /// Over TCP, two tries of 2 s each, in each tool's spelling.
    fn tcp_args(self) -> [&'static str; 3] {
        match self {
            Tool::Dig => ["+tcp", "+tries=2", "+time=2"],
            Tool::Kdig => ["+tcp", "+retry=1", "+timeout=2"],
        }
    }
}

/// Runs `tool +tcp @server args…` in `ns` and returns its stdout (printed for the test log).
fn run_tcp(ns: &NetNs, tool: Tool, server: &str, args: &[&str]) -> String {
    let at = format!("@{server}");
    let mut all: Vec<&str> = tool.tcp_args().to_vec();
    all.push(&at);
    all.extend_from_slice(args);
    let done = ns.run(tool.program(), &all, DIG_DEADLINE);
    println!("$ {} {}\n{}", tool.program(), all.join(" "), done.stdout);
    assert!(
        done.status.success(),
        "{} {} failed: {}",
        tool.program(),
        all.join(" "),
        done.describe()
    );
    done.stdout
}

/// One query over TCP; panics with the tool's output when it printed no response.
fn query_tcp(ns: &NetNs, tool: Tool, server: &str, name: &str, rtype: &str) -> DigResponse {
    let out = run_tcp(ns, tool, server, &[name, rtype]);
    assert!(
        tcp_was_used(tool, &out),
        "{tool:?} did not say it used TCP:\n{out}"
    );
    DigResponse::parse(&out).unwrap_or_else(|| panic!("{tool:?} printed no response:\n{out}"))
}

/// dig ends with `;; SERVER: 192.0.2.2#53(192.0.2.2) (TCP)`, kdig with `… over TCP`.
fn tcp_was_used(tool: Tool, out: &str) -> bool {
    match tool {
        Tool::Dig => out.contains("(TCP)"),
        Tool::Kdig => out.contains("TCP"),
    }
}

/// Each response in the output of one run that asked several questions.
fn responses(out: &str) -> Vec<DigResponse> {
    out.split("->>HEADER<<-")
        .skip(1)
        .map(|part| {
            DigResponse::parse(&format!(";; ->>HEADER<<-{part}"))
                .unwrap_or_else(|| panic!("an unreadable response in:\n{out}"))
        })
        .collect()
}

fn assert_demo_answers_over_tcp(ns: &NetNs, tool: Tool) {
    for (rtype, record) in DEMO_APEX {
        let r = query_tcp(ns, tool, STACK_IP, "www.demo.test", rtype);
        assert_eq!(r.status, "NOERROR", "{tool:?} www.demo.test {rtype}: {r:?}");
        assert!(r.has_flag("aa"), "{tool:?} {rtype}: no AA: {r:?}");
        assert_eq!(
            r.answer,
            [WWW_CNAME, record],
            "{tool:?} www.demo.test {rtype}"
        );
    }
    let r = query_tcp(ns, tool, STACK_IP, "missing.demo.test", "A");
    assert_eq!(r.status, "NXDOMAIN", "{tool:?}: {r:?}");
    assert!(r.answer.is_empty(), "{tool:?}: {r:?}");
    assert_eq!(r.authority, [NEGATIVE_SOA], "{tool:?} authority");
}

#[test]
fn dig_over_tcp_gets_each_demo_record_through_the_www_cname() {
    let Some((ns, stack)) = Netstackd::start_gated(&["dig"], &[]) else {
        return;
    };
    assert_demo_answers_over_tcp(&ns, Tool::Dig);
    let end = stack.stop_ok();
    end.print_stats();
    assert_eq!(stat(&end, "service.dns.queries"), 6);
    assert_eq!(stat(&end, "service.dns.tcp_connections"), 6);
    assert_eq!(stat(&end, "service.dns.tcp_connections_refused"), 0);
    assert_eq!(stat(&end, "service.dns.tcp_connections_open"), 0);
}

#[test]
fn kdig_over_tcp_gets_the_same_answers_and_nxdomain() {
    let Some((ns, stack)) = Netstackd::start_gated(&["kdig"], &[]) else {
        return;
    };
    assert_demo_answers_over_tcp(&ns, Tool::Kdig);
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.dns.tcp_connections"), 6);
}

#[test]
fn kdig_keepopen_asks_several_names_on_one_connection() {
    let Some((ns, stack)) = Netstackd::start_gated(&["kdig"], &[]) else {
        return;
    };
    let out = run_tcp(
        &ns,
        Tool::Kdig,
        STACK_IP,
        &[
            "+keepopen",
            "www.demo.test",
            "demo.test",
            "MX",
            "missing.demo.test",
            "mail.demo.test",
        ],
    );
    let got = responses(&out);
    let summary: Vec<(&str, usize)> = got
        .iter()
        .map(|r| (r.status.as_str(), r.answer.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("NOERROR", 2),
            ("NOERROR", 1),
            ("NXDOMAIN", 0),
            ("NOERROR", 1)
        ],
        "{out}"
    );
    assert_eq!(got[1].answer, [DEMO_APEX[2].1]);
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.dns.queries"), 4);
    assert_eq!(
        stat(&end, "service.dns.tcp_connections"),
        1,
        "kdig +keepopen should ask everything on one connection"
    );
}

/// A zone whose `big` name holds 40 TXT records of about 100 octets: over 4 KB of answer.
fn big_zone(dir: &ScratchDir) -> String {
    let mut text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns hostmaster 1 3600 600 86400 60\n\
                    @ NS ns\nns A 192.0.2.2\n"
        .to_string();
    for i in 0..40 {
        text.push_str(&format!("big TXT \"{i:02} {}\"\n", "x".repeat(100)));
    }
    let file = dir.path().join("big.test.zone");
    std::fs::write(&file, text).unwrap();
    file.to_str().expect("temp paths are UTF-8").to_string()
}

#[test]
fn an_answer_that_udp_truncates_comes_whole_over_tcp() {
    if !require_system(&["dig"]) {
        return;
    }
    let dir = ScratchDir::new("nst-bigzone");
    let zone = big_zone(&dir);
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, &["--zone", &zone]);
    // Over UDP without EDNS the limit is 512 octets: TC set, and dig is told not to retry.
    let done = ns.run(
        "dig",
        &[
            "+noedns",
            "+ignore",
            "+tries=2",
            "+time=2",
            "@192.0.2.2",
            "big.big.test",
            "TXT",
        ],
        DIG_DEADLINE,
    );
    let udp = DigResponse::parse(&done.stdout)
        .unwrap_or_else(|| panic!("dig printed no response: {}", done.describe()));
    assert!(udp.has_flag("tc"), "UDP answer not truncated: {udp:?}");
    let tcp = query_tcp(&ns, Tool::Dig, STACK_IP, "big.big.test", "TXT");
    assert_eq!(tcp.status, "NOERROR", "{tcp:?}");
    assert!(!tcp.has_flag("tc"), "{tcp:?}");
    assert_eq!(tcp.answer.len(), 40, "{tcp:?}");
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.dns.truncated"), 1);
}

/// dnsmasq on the kernel side of the TAP, answering svc.test with 192.0.2.77 (over UDP, which
/// is how netstackd's resolver asks) and logging every query to its stdout.
fn start_dnsmasq(ns: &NetNs, scratch: &ScratchDir) -> NsChild {
    let pid_file = scratch.path().join("dnsmasq.pid");
    let script = format!(
        "exec dnsmasq --no-daemon --conf-file=/dev/null --pid-file={} --no-resolv --no-hosts \
         --bind-interfaces --listen-address={KERNEL_IP} --address=/svc.test/192.0.2.77 --port 53 \
         --local-ttl=300 --log-queries --log-facility=- 2>&1",
        pid_file.display()
    );
    let mut dnsmasq = ns.spawn("sh", &["-c", &script]);
    dnsmasq.wait_for_line("dnsmasq's `started` line", Duration::from_secs(10), |l| {
        l.contains("dnsmasq") && l.contains("started")
    });
    dnsmasq
}

#[test]
fn a_forwarded_name_is_answered_over_tcp_beside_the_local_zone() {
    let Some((ns, stack)) =
        Netstackd::start_gated(&["kdig", "dnsmasq", "sh"], &["--dns-upstream", KERNEL_IP])
    else {
        return;
    };
    let scratch = ScratchDir::new("nst-dnsmasq-tcp");
    let _dnsmasq = start_dnsmasq(&ns, &scratch);
    // One connection: the forwarded name and a local one.
    let out = run_tcp(
        &ns,
        Tool::Kdig,
        STACK_IP,
        &["+keepopen", "svc.test", "demo.test"],
    );
    let got = responses(&out);
    assert_eq!(got.len(), 2, "{out}");
    let forwarded = &got[0];
    assert_eq!(forwarded.status, "NOERROR", "{out}");
    assert!(
        forwarded.has_flag("ra") && !forwarded.has_flag("aa"),
        "{out}"
    );
    let words: Vec<&str> = forwarded.answer[0].split_whitespace().collect();
    assert_eq!(
        (words[0], words[3], words[4]),
        ("svc.test.", "A", "192.0.2.77"),
        "{out}"
    );
    assert!(got[1].has_flag("aa") && got[1].has_flag("ra"), "{out}");
    assert_eq!(got[1].answer, [DEMO_APEX[0].1], "{out}");
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.dns.forwarded"), 1);
    assert_eq!(stat(&end, "service.dns.servfail"), 0);
    assert_eq!(stat(&end, "service.dns.tcp_connections"), 1);
}
