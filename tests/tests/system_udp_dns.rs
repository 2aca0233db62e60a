//! System tests for UDP and DNS: Linux's own tools, inside a throwaway network namespace, talk
//! to netstackd over a TAP. `dig` and `kdig` query the built-in demo.test zone and a `--zone`
//! file, dnsmasq on the kernel side is the upstream netstackd forwards to, `nc -u` and python3
//! sockets exercise the echo service, ICMP port unreachable and fragmentation.
//!
//! Each test is gated by `require_system` (root, /dev/net/tun, `ip` and the tools it names):
//! skipped loudly without them, failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1. They need
//! `cargo build --workspace --bins` first (netstackd, same target dir and profile):
//! ```text
//! cargo build --workspace --bins && cargo test -p netstack-tests --test system_udp_dns
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use netstack_application::dns::demo_zone;
use netstack_tests::dig::DigResponse;
use netstack_tests::netns::{NetNs, Netstackd, Shutdown};
use netstack_tests::system::{require_system, ScratchDir};

const STACK_IP: &str = "192.0.2.2";
const KERNEL_IP: &str = "192.0.2.1";
/// How long one dig or kdig run may take: two tries of 2 s each, and slack.
const DIG_DEADLINE: Duration = Duration::from_secs(10);
/// How long a python3 or nc peer may take; their own timeouts are shorter.
const PEER_DEADLINE: Duration = Duration::from_secs(15);

/// The www.demo.test CNAME every answer below starts with.
const WWW_CNAME: &str = "www.demo.test. 300 IN CNAME demo.test.";

/// The apex records of the built-in zone (application/src/dns/zone.rs `demo_zone`) as dig
/// prints them; `expected_answers_are_the_records_of_the_demo_zone` checks them against it.
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

/// The MX answer's additional section: the exchange's address.
const MAIL_A: &str = "mail.demo.test. 300 IN A 192.0.2.2";

/// Passes the system gate for `tools`, then starts netstackd with `args` in a new namespace;
/// `None` when the gate skipped the test.
fn netstackd_with(tools: &[&str], args: &[&str]) -> Option<(NetNs, Netstackd)> {
    if !require_system(tools) {
        return None;
    }
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, args);
    Some((ns, stack))
}

/// SIGINT; asserts netstackd exited 0 and returns its counters.
fn stop(stack: Netstackd) -> Shutdown {
    let end = stack.interrupt();
    assert_eq!(
        end.exit.status.and_then(|s| s.code()),
        Some(0),
        "netstackd did not exit 0 after SIGINT (None: killed at the deadline): {:?}",
        end.exit
    );
    end
}

fn stat(end: &Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("netstackd printed no `stat {name}`: {:?}", end.stats))
}

/// The two resolvers the tests drive.
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

    /// Two tries of 2 s each, in each tool's spelling.
    fn retry_args(self) -> [&'static str; 2] {
        match self {
            Tool::Dig => ["+tries=2", "+time=2"],
            Tool::Kdig => ["+retry=1", "+timeout=2"],
        }
    }
}

/// Runs `tool @server name rtype` in `ns` and reads its answer; panics with the tool's output
/// when it printed none.
fn query(ns: &NetNs, tool: Tool, server: &str, name: &str, rtype: &str) -> DigResponse {
    let at = format!("@{server}");
    let [a, b] = tool.retry_args();
    let args = [a, b, &at, name, rtype];
    let done = ns.run(tool.program(), &args, DIG_DEADLINE);
    println!("$ {} {}\n{}", tool.program(), args.join(" "), done.stdout);
    DigResponse::parse(&done.stdout).unwrap_or_else(|| {
        panic!(
            "{} {} printed no response: {}",
            tool.program(),
            args.join(" "),
            done.describe()
        )
    })
}

/// A, AAAA, MX, TXT and SOA for www.demo.test: each authoritative, the CNAME then the apex
/// record the zone holds; the MX with the exchange's address in ADDITIONAL.
fn assert_demo_answers(ns: &NetNs, tool: Tool) {
    for (rtype, record) in DEMO_APEX {
        let r = query(ns, tool, STACK_IP, "www.demo.test", rtype);
        assert_eq!(r.status, "NOERROR", "{tool:?} www.demo.test {rtype}: {r:?}");
        assert!(r.has_flag("aa"), "{tool:?} {rtype}: no AA: {r:?}");
        assert_eq!(
            r.answer,
            [WWW_CNAME, record],
            "{tool:?} www.demo.test {rtype}"
        );
        assert!(r.authority.is_empty(), "{tool:?} {rtype}: {r:?}");
        if rtype == "MX" {
            assert_eq!(r.additional, [MAIL_A], "{tool:?} MX additional");
        }
    }
}

/// A name the zone does not hold: NXDOMAIN, authoritative, nothing in ANSWER, the SOA in
/// AUTHORITY (RFC 2308 §3).
fn assert_missing_name_is_nxdomain(ns: &NetNs, tool: Tool) {
    let r = query(ns, tool, STACK_IP, "missing.demo.test", "A");
    assert_eq!(r.status, "NXDOMAIN", "{tool:?}: {r:?}");
    assert!(r.has_flag("aa"), "{tool:?}: {r:?}");
    assert!(r.answer.is_empty(), "{tool:?}: {r:?}");
    assert_eq!(r.authority, [NEGATIVE_SOA], "{tool:?} authority");
}

#[test]
fn expected_answers_are_the_records_of_the_demo_zone() {
    // Not a system test: it proves the expected strings above are what netstackd serves.
    let zone = demo_zone(Ipv4Addr::new(192, 0, 2, 2));
    let spaced = |r: &dyn std::fmt::Display| {
        r.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut from_zone: Vec<(String, String)> = zone
        .records_at(zone.origin())
        .iter()
        .filter(|r| r.rtype().to_string() != "NS")
        .map(|r| (r.rtype().to_string(), spaced(r)))
        .collect();
    from_zone.sort();
    let mut expected: Vec<(String, String)> = DEMO_APEX
        .iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect();
    expected.sort();
    assert_eq!(from_zone, expected);
    let soa = spaced(zone.soa());
    assert_eq!(soa, DEMO_APEX[4].1);
    assert_eq!(NEGATIVE_SOA.replacen(" 60 ", " 300 ", 1), soa);
    let all: Vec<String> = zone.records().map(|r| spaced(r)).collect();
    assert!(all.iter().any(|r| r == WWW_CNAME), "{all:?}");
    assert!(all.iter().any(|r| r == MAIL_A), "{all:?}");
}

#[test]
fn dig_gets_each_demo_record_through_the_www_cname() {
    let Some((ns, stack)) = netstackd_with(&["dig"], &[]) else {
        return;
    };
    assert_demo_answers(&ns, Tool::Dig);
    let end = stop(stack);
    assert!(stat(&end, "service.dns.answered") >= 5, "{:?}", end.stats);
}

#[test]
fn dig_missing_name_is_nxdomain_with_the_soa_in_authority() {
    let Some((ns, stack)) = netstackd_with(&["dig"], &[]) else {
        return;
    };
    assert_missing_name_is_nxdomain(&ns, Tool::Dig);
    let end = stop(stack);
    assert_eq!(stat(&end, "service.dns.nxdomain"), 1, "{:?}", end.stats);
}

#[test]
fn kdig_gets_the_same_answers_and_nxdomain() {
    let Some((ns, stack)) = netstackd_with(&["kdig"], &[]) else {
        return;
    };
    assert_demo_answers(&ns, Tool::Kdig);
    assert_missing_name_is_nxdomain(&ns, Tool::Kdig);
    stop(stack);
}

#[test]
fn zone_file_given_with_zone_is_served_beside_demo_test() {
    if !require_system(&["dig"]) {
        return;
    }
    let dir = ScratchDir::new("nst-zone");
    let file = dir.path().join("lab.test.zone");
    std::fs::write(
        &file,
        "; a small zone for the system test\n\
         $ORIGIN lab.test.\n\
         $TTL 120\n\
         @      IN SOA ns hostmaster ( 7 3600 600 86400 30 )\n\
         @      IN NS   ns\n\
         ns     IN A    192.0.2.2\n\
         host   IN A    192.0.2.50\n\
         alias  IN CNAME host\n\
         _echo._udp IN SRV 0 5 7 host\n",
    )
    .unwrap();
    let ns = NetNs::new();
    let stack = Netstackd::start(
        &ns,
        &["--zone", file.to_str().expect("temp paths are UTF-8")],
    );

    let r = query(&ns, Tool::Dig, STACK_IP, "alias.lab.test", "A");
    assert_eq!(
        (r.status.as_str(), r.has_flag("aa")),
        ("NOERROR", true),
        "{r:?}"
    );
    assert_eq!(
        r.answer,
        [
            "alias.lab.test. 120 IN CNAME host.lab.test.",
            "host.lab.test. 120 IN A 192.0.2.50"
        ]
    );
    let r = query(&ns, Tool::Dig, STACK_IP, "_echo._udp.lab.test", "SRV");
    assert_eq!(
        r.answer,
        ["_echo._udp.lab.test. 120 IN SRV 0 5 7 host.lab.test."]
    );
    let r = query(&ns, Tool::Dig, STACK_IP, "nothing.lab.test", "A");
    assert_eq!(r.status, "NXDOMAIN", "{r:?}");
    assert_eq!(
        r.authority,
        ["lab.test. 30 IN SOA ns.lab.test. hostmaster.lab.test. 7 3600 600 86400 30"]
    );
    // The built-in zone is still there.
    let r = query(&ns, Tool::Dig, STACK_IP, "demo.test", "A");
    assert_eq!(r.answer, [DEMO_APEX[0].1]);
    stop(stack);
}

/// dnsmasq on the kernel side of the TAP, answering svc.test with 192.0.2.77 and logging every
/// query it gets to its stdout. `--local-ttl` gives the answer a TTL (dnsmasq's default for
/// `--address` is 0, which no cache keeps).
fn start_dnsmasq(ns: &NetNs, scratch: &ScratchDir) -> netstack_tests::netns::NsChild {
    let pid_file = scratch.path().join("dnsmasq.pid");
    let script = format!(
        "exec dnsmasq --no-daemon --conf-file=/dev/null --pid-file={} --no-resolv --no-hosts \
         --bind-interfaces --listen-address={KERNEL_IP} --address=/svc.test/192.0.2.77 --port 53 \
         --local-ttl=300 --log-queries --log-facility=- 2>&1",
        pid_file.display()
    );
    let mut dnsmasq = ns.spawn("sh", &["-c", &script]);
    // dnsmasq logs `started` once its sockets are bound.
    dnsmasq.wait_for_line("dnsmasq's `started` line", Duration::from_secs(10), |l| {
        l.contains("dnsmasq") && l.contains("started")
    });
    dnsmasq
}

#[test]
fn forwarding_to_dnsmasq_answers_svc_test_and_the_repeat_comes_from_the_cache() {
    let Some((ns, stack)) =
        netstackd_with(&["dig", "dnsmasq", "sh"], &["--dns-upstream", KERNEL_IP])
    else {
        return;
    };
    let scratch = ScratchDir::new("nst-dnsmasq");
    // netstackd has given the kernel side 192.0.2.1, so dnsmasq can bind it now.
    let mut dnsmasq = start_dnsmasq(&ns, &scratch);
    // The upstream answers on its own.
    let direct = query(&ns, Tool::Dig, KERNEL_IP, "direct.svc.test", "A");
    assert_eq!(direct.answer, ["direct.svc.test. 300 IN A 192.0.2.77"]);

    let first = query(&ns, Tool::Dig, STACK_IP, "svc.test", "A");
    let second = query(&ns, Tool::Dig, STACK_IP, "svc.test", "A");
    for r in [&first, &second] {
        assert_eq!(r.status, "NOERROR", "{r:?}");
        // A forwarder offers recursion and is not the authority for what it forwards.
        assert!(r.has_flag("ra") && !r.has_flag("aa"), "{r:?}");
        assert_eq!(r.answer.len(), 1, "{r:?}");
        let words: Vec<&str> = r.answer[0].split_whitespace().collect();
        assert_eq!(
            (words[0], words[2], words[3], words[4]),
            ("svc.test.", "IN", "A", "192.0.2.77"),
            "{r:?}"
        );
        let ttl: u32 = words[1].parse().unwrap();
        assert!((1..=300).contains(&ttl), "TTL {ttl}: {r:?}");
    }

    let end = stop(stack);
    let log = dnsmasq.interrupt(Duration::from_secs(2)).stdout;
    let upstream_saw = log
        .iter()
        .filter(|l| l.contains("query[A] svc.test from 192.0.2.2"))
        .count();
    assert_eq!(
        upstream_saw,
        1,
        "dnsmasq should see svc.test once, the repeat answered from netstackd's cache:\n{}",
        log.join("\n")
    );
    assert_eq!(stat(&end, "service.dns.forwarded"), 2, "{:?}", end.stats);
    assert_eq!(stat(&end, "service.dns.servfail"), 0, "{:?}", end.stats);
}

#[test]
fn nc_udp_round_trip_through_the_echo_service() {
    let Some((ns, stack)) = netstackd_with(&["nc", "sh"], &[]) else {
        return;
    };
    let payload = "netstack echo 862";
    let script = format!("printf '{payload}' | nc -u -w1 {STACK_IP} 7");
    let done = ns.run("sh", &["-c", &script], PEER_DEADLINE);
    assert_eq!(done.stdout, payload, "nc -u: {}", done.describe());
    let end = stop(stack);
    assert_eq!(
        stat(&end, "service.echo.udp_datagrams"),
        1,
        "{:?}",
        end.stats
    );
}

/// Runs `script` with python3 in `ns` (argv: the stack's address, then `args`) and asserts it
/// exited 0 having printed exactly `want`.
fn assert_python_says(ns: &NetNs, script: &str, args: &[&str], want: &str) {
    let argv: Vec<&str> = ["-c", script, STACK_IP]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let done = ns.run("python3", &argv, PEER_DEADLINE);
    assert_eq!(
        (done.status.code(), done.stdout.trim()),
        (Some(0), want),
        "python3 {}: {}",
        args.join(" "),
        done.describe()
    );
}

/// A connected socket sends to a port nobody serves, up to 5 times, and reports what its
/// recv saw: `refused <errno>`, `reply`, or `timeout` for each silent try.
const CONNECTED_TO_CLOSED_PORT: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
s.connect((sys.argv[1], int(sys.argv[2])))
for _ in range(5):
    s.send(b"anyone there?")
    try:
        s.recv(64)
        print("reply")
        sys.exit(1)
    except ConnectionRefusedError as e:
        print("refused", e.errno)
        sys.exit(0)
    except socket.timeout:
        print("timeout")
sys.exit(2)
"#;

#[test]
fn connected_linux_socket_sending_to_a_closed_port_sees_connection_refused() {
    let Some((ns, stack)) = netstackd_with(&["python3"], &[]) else {
        return;
    };
    // ECONNREFUSED is 111 on Linux: the kernel turned our ICMP port unreachable into it.
    assert_python_says(&ns, CONNECTED_TO_CLOSED_PORT, &["4444"], "refused 111");
    let end = stop(stack);
    assert!(stat(&end, "udp.rx_no_socket") >= 1, "{:?}", end.stats);
    assert!(stat(&end, "ipv4.icmp_tx_errors") >= 1, "{:?}", end.stats);
}

/// Sends `size` patterned bytes to the echo service (retrying up to 3 times on silence) and
/// prints `echoed <len> <same>`.
const BIG_ECHO: &str = r#"
import socket, sys
size = int(sys.argv[3])
data = bytes((i * 7 + 3) % 256 for i in range(size))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
s.connect((sys.argv[1], int(sys.argv[2])))
for _ in range(3):
    s.send(data)
    try:
        got = s.recv(65535)
    except socket.timeout:
        print("timeout")
        continue
    print("echoed", len(got), got == data)
    sys.exit(0 if got == data else 1)
sys.exit(2)
"#;

#[test]
fn datagrams_of_8000_bytes_are_fragmented_both_ways_and_echoed_whole() {
    let Some((ns, stack)) = netstackd_with(&["python3"], &[]) else {
        return;
    };
    assert_python_says(&ns, BIG_ECHO, &["7", "8000"], "echoed 8000 True");
    let end = stop(stack);
    // 8,000 bytes of UDP payload need 6 fragments at MTU 1500, in each direction.
    assert!(
        stat(&end, "ipv4.reassembly.reassembled") >= 1,
        "{:?}",
        end.stats
    );
    assert!(
        stat(&end, "ipv4.reassembly.fragments") >= 6,
        "{:?}",
        end.stats
    );
    assert!(stat(&end, "ipv4.tx_fragmented") >= 1, "{:?}", end.stats);
    assert!(
        stat(&end, "service.echo.udp_datagrams") >= 1,
        "{:?}",
        end.stats
    );
}
