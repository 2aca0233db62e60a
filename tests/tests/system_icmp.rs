//! System tests: Linux itself, inside a throwaway network namespace, pings, arpings, captures
//! and floods netstackd over a TAP. Each test is gated by `require_system` (root, /dev/net/tun,
//! `ip` and the tools it names): skipped loudly without them, failed under
//! NETSTACK_REQUIRE_SYSTEM_TESTS=1.
//!
//! The `harness_*` tests run the same harness against `tap-echo-floor`, so the harness is
//! proven without netstackd. The netstackd tests need `cargo build --workspace --bins` first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use netstack_link::{EtherType, MacAddr};
use netstack_tests::netns::{list_namespaces, Daemon, NetNs, Netstackd, Shutdown, FLOOR_READY};
use netstack_tests::peers::{
    drops_caused, ping, tshark_read, write_pcap, ArpingSummary, PingSummary,
};
use netstack_tests::rawframe::{ethernet, icmp_echo_request, ipv4_icmp};
use netstack_tests::system::{require_system, ScratchDir};

const STACK_IP: &str = "192.0.2.2";
const TAP: &str = "tap0";

fn floor_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tap-echo-floor"))
}

fn nsflood_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nsflood"))
}

fn floor(ns: &NetNs) -> Daemon {
    Daemon::start(ns, &floor_path(), &[], FLOOR_READY)
}

/// Pings the stack `count` times with `size`-byte payloads and asserts every one came back.
fn assert_ping_loses_nothing(ns: &NetNs, count: u32, size: usize) -> PingSummary {
    let s = ping(ns, STACK_IP, count, size);
    println!("ping -s {size}: {s:?}");
    assert_eq!(
        (s.transmitted, s.received, s.errors),
        (u64::from(count), u64::from(count), 0),
        "ping -c {count} -s {size} to {STACK_IP} lost replies"
    );
    s
}

fn arping(ns: &NetNs, count: u32) -> ArpingSummary {
    let c = count.to_string();
    let args = ["-c", &c, "-w", "5", "-I", TAP, STACK_IP];
    let done = ns.run("arping", &args, Duration::from_secs(15));
    ArpingSummary::parse(&done.stdout)
        .unwrap_or_else(|| panic!("arping printed no summary: {}", done.describe()))
}

fn nsflood(ns: &NetNs, dst_mac: &str, count: u64, seed: u64) -> String {
    let (count, seed) = (count.to_string(), seed.to_string());
    let args = [
        "--iface",
        TAP,
        "--dst-mac",
        dst_mac,
        "--count",
        &count,
        "--seed",
        &seed,
        "--rate",
        "50000",
    ];
    let done = ns.run_ok(nsflood_path(), &args, Duration::from_secs(120));
    println!("{}", done.stdout);
    done.stdout
}

/// The `nsflood total sent N …` figure.
fn flood_sent(report: &str) -> u64 {
    report
        .lines()
        .find_map(|l| {
            l.strip_prefix("nsflood total sent ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no total in nsflood's report:\n{report}"))
}

fn stack_mac(ns: &NetNs) -> String {
    assert_ping_loses_nothing(ns, 1, 56);
    ns.neighbor_mac(STACK_IP, TAP)
        .unwrap_or_else(|| panic!("the kernel learned no MAC for {STACK_IP} after a ping"))
}

fn assert_capture_clean(pcap: &Path, at_least: usize) {
    let report = tshark_read(pcap);
    println!("tshark read {} frames", report.lines.len());
    assert!(
        report.malformed.is_empty(),
        "tshark found malformed frames:\n{}",
        report.malformed.join("\n")
    );
    assert!(
        report.lines.len() >= at_least,
        "only {} frames:\n{}",
        report.lines.len(),
        report.lines.join("\n")
    );
    assert!(
        report
            .lines
            .iter()
            .any(|l| l.contains("ICMP") && l.contains("Echo (ping) reply")),
        "no ICMP echo reply in the capture:\n{}",
        report.lines.join("\n")
    );
}

// ---- the harness, proven against tap-echo-floor ----

#[test]
fn harness_floor_answers_ping_and_arping_then_exits_with_its_counters() {
    if !require_system(&["ping", "arping"]) {
        return;
    }
    let ns = NetNs::new();
    let floor = floor(&ns);
    assert_ping_loses_nothing(&ns, 20, 56);
    assert_ping_loses_nothing(&ns, 20, 1472);
    let a = arping(&ns, 3);
    assert_eq!((a.sent, a.received), (3, 3), "arping to the floor");
    let end = floor.interrupt();
    end.print_stats();
    assert_eq!(
        end.exit.status.and_then(|s| s.code()),
        Some(0),
        "{:?}",
        end.exit
    );
    assert!(end.stats["floor.echo_replies"] >= 40, "{:?}", end.stats);
    assert!(end.stats["floor.arp_replies"] >= 3, "{:?}", end.stats);
}

#[test]
fn harness_flood_reaches_the_floor_which_still_answers() {
    if !require_system(&["ping"]) {
        return;
    }
    let ns = NetNs::new();
    let floor = floor(&ns);
    let mac = stack_mac(&ns);
    assert_eq!(mac, "02:00:00:00:00:02");
    let report = nsflood(&ns, &mac, 20_000, 7);
    assert_eq!(flood_sent(&report), 20_000);
    assert_ping_loses_nothing(&ns, 3, 56);
    let end = floor.interrupt();
    end.print_stats();
    // The floor ignores what it cannot answer; most of the flood is that.
    assert!(end.stats["floor.ignored"] >= 10_000, "{:?}", end.stats);
}

#[test]
fn harness_removes_the_namespace_and_its_processes_after_a_panicking_test_body() {
    if !require_system(&["sleep"]) {
        return;
    }
    let seen = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(|| {
        let ns = NetNs::new();
        // A process no guard owns, so only the namespace's own cleanup can end it.
        ns.run_ok(
            "sh",
            &["-c", "sleep 600 >/dev/null 2>&1 &"],
            Duration::from_secs(5),
        );
        let pids = ns.pids();
        assert_eq!(
            pids.len(),
            1,
            "the background sleep should be the only process: {pids:?}"
        );
        *seen.lock().unwrap() = Some((ns.name().to_string(), pids[0]));
        panic!("deliberate panic: the namespace must still be removed");
    });
    assert!(outcome.is_err());
    let (name, pid) = seen.lock().unwrap().clone().expect("the body ran");
    assert!(
        !list_namespaces().contains(&name),
        "{name} is still listed by `ip netns list`"
    );
    assert!(process_gone(pid), "pid {pid} from {name} is still running");
}

/// True once `pid` no longer runs (gone, or a zombie waiting for its reaper), within 2 s.
fn process_gone(pid: i32) -> bool {
    let until = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        // The state is the first field after the parenthesised command name.
        let zombie = state
            .as_deref()
            .and_then(|s| s.rsplit(')').next())
            .map(|rest| rest.trim_start().starts_with('Z'));
        if zombie != Some(false) {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn harness_tshark_check_flags_a_truncated_ipv4_frame_as_malformed() {
    if !require_system(&["tshark"]) {
        return;
    }
    let dir = ScratchDir::new("nst-pcap");
    let (kernel, stack) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
    let msg = icmp_echo_request(1, 1, &[0; 56]);
    let packet =
        ipv4_icmp([192, 0, 2, 1].into(), [192, 0, 2, 2].into(), 1, msg.len()).to_bytes(&msg);
    let good = ethernet(stack, kernel, EtherType::Ipv4, &packet);
    // Six bytes of the IPv4 header.
    let truncated = ethernet(stack, kernel, EtherType::Ipv4, &packet[..6]);

    let clean = dir.path().join("clean.pcap");
    write_pcap(&clean, std::slice::from_ref(&good)).unwrap();
    let report = tshark_read(&clean);
    assert_eq!(report.lines.len(), 1, "{:?}", report.lines);
    assert!(report.malformed.is_empty(), "{:?}", report.lines);

    let bad = dir.path().join("bad.pcap");
    write_pcap(&bad, &[good, truncated]).unwrap();
    let report = tshark_read(&bad);
    assert_eq!(report.malformed.len(), 1, "{:?}", report.lines);
}

// ---- netstackd ----

/// Passes the system gate for `tools`, then starts netstackd with `args` in a new namespace;
/// `None` when the gate skipped the test.
fn assert_exited_0(end: &Shutdown) {
    assert_eq!(
        end.exit.status.and_then(|s| s.code()),
        Some(0),
        "netstackd did not exit 0 within 2 s of SIGINT (None: killed at the deadline): {:?}",
        end.exit
    );
}

#[test]
fn ping_56_bytes_loses_nothing() {
    let Some((ns, _stack)) = Netstackd::start_gated(&["ping"], &[]) else {
        return;
    };
    assert_ping_loses_nothing(&ns, 20, 56);
}

#[test]
fn ping_1472_bytes_fills_the_mtu_and_loses_nothing() {
    let Some((ns, _stack)) = Netstackd::start_gated(&["ping"], &[]) else {
        return;
    };
    assert_ping_loses_nothing(&ns, 20, 1472);
}

#[test]
fn ping_4000_bytes_is_fragmented_both_ways_and_loses_nothing() {
    let Some((ns, _stack)) = Netstackd::start_gated(&["ping"], &[]) else {
        return;
    };
    assert_ping_loses_nothing(&ns, 20, 4000);
}

#[test]
fn over_a_tun_device_ping_of_every_size_loses_nothing_and_ipv6_is_counted() {
    let Some((ns, stack)) =
        Netstackd::start_gated(&["ping"], &["--tun", "tun0", "--pcap", "/dev/null"])
    else {
        return;
    };
    for size in [56, 1472, 4000] {
        assert_ping_loses_nothing(&ns, 5, size);
    }
    let end = stack.stop_ok();
    // A TUN carries bare IP: no ARP ever, and the kernel's IPv6 chatter is named as such.
    assert_eq!(
        end.stats.get("link.arp_requests_out"),
        Some(&0),
        "{:?}",
        end.stats
    );
    assert_eq!(
        end.stats.get("ipv4.rx_bad_version"),
        Some(&0),
        "{:?}",
        end.stats
    );
}

#[test]
fn arping_gets_replies() {
    let Some((ns, _stack)) = Netstackd::start_gated(&["arping"], &[]) else {
        return;
    };
    let a = arping(&ns, 3);
    assert_eq!((a.sent, a.received), (3, 3), "arping -c 3 {STACK_IP}");
}

#[test]
fn pcap_written_during_a_run_opens_in_tshark_without_malformed_packets() {
    let dir = ScratchDir::new("nst-pcap");
    let pcap = dir.path().join("netstackd.pcap");
    let pcap_arg = pcap.to_str().expect("temp paths are UTF-8");
    let tools = ["ping", "arping", "tshark"];
    let Some((ns, stack)) = Netstackd::start_gated(&tools, &["--pcap", pcap_arg]) else {
        return;
    };
    assert_ping_loses_nothing(&ns, 5, 56);
    assert_ping_loses_nothing(&ns, 3, 4000);
    arping(&ns, 2);
    let end = stack.interrupt();
    assert_exited_0(&end);
    // 5 + 3×3 fragments each way, and ARP.
    assert_capture_clean(&pcap, 28);
}

#[test]
fn netstackd_exits_0_within_2_s_of_sigint() {
    let Some((ns, stack)) = Netstackd::start_gated(&["ping"], &[]) else {
        return;
    };
    assert_ping_loses_nothing(&ns, 3, 56);
    let end = stack.interrupt();
    println!(
        "netstackd exited {:?} after {:?}",
        end.exit.status, end.exit.elapsed
    );
    end.print_stats();
    assert_exited_0(&end);
    assert!(
        end.exit.elapsed < Duration::from_secs(2),
        "{:?}",
        end.exit.elapsed
    );
}

#[test]
fn malformed_flood_leaves_netstackd_answering_with_drops_counted_by_reason() {
    if !require_system(&["ping"]) {
        return;
    }
    // The baseline: the same pings without the flood, so counters that the kernel's own
    // chatter moves are not taken for the flood's.
    let baseline = {
        let ns = NetNs::new();
        let stack = Netstackd::start(&ns, &[]);
        stack_mac(&ns);
        assert_ping_loses_nothing(&ns, 3, 56);
        let end = stack.interrupt();
        assert_exited_0(&end);
        end.stats
    };
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, &[]);
    let mac = stack_mac(&ns);
    let report = nsflood(&ns, &mac, 100_000, 1);
    assert_eq!(flood_sent(&report), 100_000);
    assert_ping_loses_nothing(&ns, 3, 56);
    let end = stack.interrupt();
    end.print_stats();
    assert_exited_0(&end);
    let caused = drops_caused(&baseline, &end.stats);
    println!("drop counters the flood moved: {caused:#?}");
    assert!(
        caused.len() >= 4,
        "want at least 4 distinct drop-reason counters that the flood moved (nonzero now, zero \
         without it), got {caused:?}\nall counters after the flood: {:#?}\nbaseline: {baseline:#?}",
        end.stats
    );
}
