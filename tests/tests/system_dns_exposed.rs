//! System tests for netstackd's DNS exposed to a network: `--dns-allow` (recursion only for
//! the listed client networks), `--dns-rate` (responses rate-limited per client /24 with
//! slip), and ANY answered minimally (RFC 8482). dig and python3 in a throwaway namespace talk
//! to netstackd over a TAP; no upstream is needed, since refused and limited queries never
//! reach one.
//!
//! Gated by `require_system` (root, /dev/net/tun, `ip` and the tools each test names): skipped
//! loudly without them, failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1. They need
//! `cargo build --workspace --bins` first (netstackd, same target dir and profile):
//! ```text
//! cargo build --workspace --bins && cargo test -p netstack-tests --test system_dns_exposed
//! ```

use std::time::Duration;

use netstack_tests::dig::DigResponse;
use netstack_tests::netns::{NetNs, Netstackd, Shutdown};

const STACK_IP: &str = "192.0.2.2";
const KERNEL_IP: &str = "192.0.2.1";
/// How long one dig run may take: two tries of 2 s each, and slack.
const DIG_DEADLINE: Duration = Duration::from_secs(10);
/// How long the python3 client may take; its own timeouts are shorter.
const PEER_DEADLINE: Duration = Duration::from_secs(15);

fn stat(end: &Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("netstackd printed no `stat {name}`: {:?}", end.stats))
}

/// `dig @192.0.2.2 name rtype` in `ns`, two tries of 2 s.
fn dig(ns: &NetNs, name: &str, rtype: &str) -> DigResponse {
    let at = format!("@{STACK_IP}");
    let args = ["+tries=2", "+time=2", &at, name, rtype];
    let done = ns.run("dig", &args, DIG_DEADLINE);
    println!("$ dig {}\n{}", args.join(" "), done.stdout);
    DigResponse::parse(&done.stdout)
        .unwrap_or_else(|| panic!("dig printed no response: {}", done.describe()))
}

#[test]
fn recursion_is_refused_outside_dns_allow_while_the_zones_are_still_served() {
    // The kernel side (192.0.2.1) is outside 198.51.100.0/24.
    let Some((ns, stack)) = Netstackd::start_gated(
        &["dig"],
        &[
            "--dns-upstream",
            KERNEL_IP,
            "--dns-allow",
            "198.51.100.0/24",
        ],
    ) else {
        return;
    };
    let refused = dig(&ns, "example.test", "A");
    assert_eq!(refused.status, "REFUSED", "{refused:?}");
    let zone = dig(&ns, "demo.test", "A");
    assert_eq!(zone.status, "NOERROR", "{zone:?}");
    assert_eq!(zone.answer, ["demo.test. 300 IN A 192.0.2.2"]);
    // RFC 8482: ANY at the apex (six records of five types) gets one RRset.
    let any = dig(&ns, "demo.test", "ANY");
    assert_eq!(any.status, "NOERROR", "{any:?}");
    let types: Vec<&str> = any
        .answer
        .iter()
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert!(
        !types.is_empty() && types.iter().all(|t| *t == types[0]),
        "{any:?}"
    );
    let end = stack.stop_ok();
    assert_eq!(
        stat(&end, "service.dns.refused_recursion"),
        1,
        "{:?}",
        end.stats
    );
    assert_eq!(stat(&end, "service.dns.forwarded"), 0, "{:?}", end.stats);
    assert_eq!(stat(&end, "service.dns.any_minimal"), 1, "{:?}", end.stats);
}

/// Sends 20 queries for demo.test A from one socket at once, then reads the replies for a
/// second and prints `full truncated`.
const BURST: &str = r#"
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
qname = b"\x04demo\x04test\x00"
for i in range(20):
    s.sendto(struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1),
             (sys.argv[1], 53))
full = truncated = 0
while True:
    try:
        data, _ = s.recvfrom(2048)
    except socket.timeout:
        break
    if data[2] & 0x02:
        truncated += 1
    else:
        full += 1
print(full, truncated)
"#;

#[test]
fn responses_past_dns_rate_slip_truncated_or_are_dropped_and_counted() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &["--dns-rate", "5"]) else {
        return;
    };
    let done = ns.run("python3", &["-c", BURST, STACK_IP], PEER_DEADLINE);
    assert_eq!(done.status.code(), Some(0), "{}", done.describe());
    let counts: Vec<u64> = done
        .stdout
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let [full, truncated] = counts[..] else {
        panic!("python3 printed {:?}", done.stdout);
    };
    // Five tokens, and at most a couple more refilled while the burst arrived.
    assert!(
        (5..=7).contains(&full),
        "full {full}, truncated {truncated}"
    );
    assert!(truncated >= 5, "full {full}, truncated {truncated}");
    let end = stack.stop_ok();
    let slipped = stat(&end, "service.dns.rate_limited_slipped");
    let dropped = stat(&end, "service.dns.rate_limited_dropped");
    assert_eq!(slipped, truncated, "{:?}", end.stats);
    assert_eq!(full + slipped + dropped, 20, "{:?}", end.stats);
}
