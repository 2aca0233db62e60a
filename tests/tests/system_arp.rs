//! System tests for static ARP entries (`netstackd --arp IP=MAC`, issue 10): the kernel side
//! of the TAP is made a peer that never speaks ARP (its ARP output dropped by nftables, the
//! stack's MAC given to it as a permanent neighbour), so netstackd can reach it only through
//! its static entry. Gated by `require_system` (root, /dev/net/tun, `ip`, `ping`, `nft`):
//! skipped loudly without them, failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1. Needs
//! `cargo build --workspace --bins` first.

use std::time::Duration;

use netstack_tests::netns::{NetNs, Netstackd};
use netstack_tests::peers::ping;

const TAP: &str = "tap0";
const STACK_IP: &str = "192.0.2.2";
const STACK_MAC: &str = "02:00:00:00:00:02";
const PEER_MAC: &str = "02:00:00:00:00:01";
const DEADLINE: Duration = Duration::from_secs(10);

/// The kernel side becomes a peer that answers no ARP and asks none: a known MAC, the stack's
/// MAC as a permanent neighbour, every ARP packet it would send dropped.
fn silence_kernel_arp(ns: &NetNs) {
    ns.run_ok("ip", &["link", "set", TAP, "address", PEER_MAC], DEADLINE);
    ns.run_ok(
        "ip",
        &[
            "neigh",
            "replace",
            STACK_IP,
            "lladdr",
            STACK_MAC,
            "dev",
            TAP,
            "nud",
            "permanent",
        ],
        DEADLINE,
    );
    ns.run_ok("nft", &["add", "table", "arp", "silent"], DEADLINE);
    ns.run_ok(
        "nft",
        &[
            "add",
            "chain",
            "arp",
            "silent",
            "out",
            "{ type filter hook output priority 0; policy drop; }",
        ],
        DEADLINE,
    );
}

#[test]
fn netstackd_with_a_static_arp_entry_answers_a_peer_that_never_answers_arp() {
    let arp = format!("192.0.2.1={PEER_MAC}");
    let args = ["--mac", STACK_MAC, "--arp", &arp];
    let Some((ns, stack)) = Netstackd::start_gated(&["ping", "nft"], &args) else {
        return;
    };
    silence_kernel_arp(&ns);
    let s = ping(&ns, STACK_IP, 5, 56);
    println!("ping with --arp: {s:?}");
    let end = stack.stop_ok();
    end.print_stats();
    assert_eq!(
        (s.transmitted, s.received),
        (5, 5),
        "netstackd did not answer through its static entry"
    );
    assert_eq!(end.stats["link.arp_replies_in"], 0, "the peer answered ARP");
    assert_eq!(
        end.stats["link.arp_unresolved_drops"], 0,
        "netstackd waited on ARP despite its static entry"
    );
}

#[test]
fn without_a_static_entry_a_peer_that_never_answers_arp_goes_unanswered() {
    // The control: the same peer, no --arp. netstackd asks and never hears back.
    let Some((ns, stack)) = Netstackd::start_gated(&["ping", "nft"], &["--mac", STACK_MAC]) else {
        return;
    };
    silence_kernel_arp(&ns);
    let s = ping(&ns, STACK_IP, 3, 56);
    println!("ping without --arp: {s:?}");
    let end = stack.stop_ok();
    end.print_stats();
    // With no reply ping keeps sending until its own deadline.
    assert!(s.transmitted >= 3 && s.received == 0, "{s:?}");
    assert!(end.stats["link.arp_requests_out"] >= 1);
    assert_eq!(end.stats["link.arp_replies_in"], 0);
}
