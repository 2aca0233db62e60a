//! System tests of the command-line tools `nsdig` and `nsudp`, each running its own user-space
//! stack on a TAP inside a throwaway namespace, with Linux programs on the kernel side: dnsmasq
//! as the DNS server, nc and socat as UDP peers, and netstackd as a second user-space stack.
//!
//! Each test is gated by `require_system` (root, /dev/net/tun, `ip` and the tools it names):
//! skipped loudly without them, failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1. The tools are
//! binaries of netstack-bin, which this crate does not depend on, so build them first:
//! ```text
//! cargo build -p netstack-bin --bins && cargo test -p netstack-tests --test system_tools
//! ```
//! (`NSDIG`, `NSUDP` and `NETSTACKD` may point at the binaries instead.)
//!
//! Devices: the DNS tests create the TAP beforehand (`ip tuntap add`, kernel side 192.0.2.1/24)
//! so dnsmasq can bind 192.0.2.1 before any nsdig runs, and every nsdig run attaches to it and
//! leaves it as it is. The nsudp tests let nsudp create the TAP itself, which also covers
//! the tool configuring the kernel side (and the TAP going away when the tool exits).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use netstack_tests::dig::DigResponse;
use netstack_tests::netns::{run_with_deadline, Finished, NetNs, Netstackd, NsChild};
use netstack_tests::system::{find_workspace_binary, require_system};

/// The tools' default TAP and stack address, and the kernel side they default to.
const TAP: &str = "nstap0";
const TOOL_IP: &str = "192.0.2.3";
const KERNEL_IP: &str = "192.0.2.1";
/// How long a tool run that should succeed may take (start a stack, ask, shut down).
const RUN_DEADLINE: Duration = Duration::from_secs(15);
/// How long a long-lived peer may take to bind its socket or print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long the tools may take to exit after SIGINT (netstackd's promise too).
const SIGINT_DEADLINE: Duration = Duration::from_secs(2);

fn tool(name: &str, var: &str) -> PathBuf {
    find_workspace_binary(name, var).unwrap_or_else(|e| panic!("{e}"))
}

fn nsdig_path() -> PathBuf {
    tool("nsdig", "NSDIG")
}

fn nsudp_path() -> PathBuf {
    tool("nsudp", "NSUDP")
}

/// A namespace whose TAP already exists (persistent) with the kernel side at 192.0.2.1/24.
fn namespace_with_tap() -> NetNs {
    let ns = NetNs::new();
    let d = Duration::from_secs(5);
    ns.run_ok("ip", &["tuntap", "add", "dev", TAP, "mode", "tap"], d);
    ns.run_ok("ip", &["addr", "add", "192.0.2.1/24", "dev", TAP], d);
    ns.run_ok("ip", &["link", "set", TAP, "up"], d);
    ns
}

/// dnsmasq on the kernel side: svc.test is 192.0.2.77 (with a TXT and an MX), alias.test a
/// CNAME to host.test (192.0.2.78), big.test a 600-byte TXT (more than a plain 512-byte UDP
/// response holds), and any other name under test. is NXDOMAIN (--local).
fn start_dnsmasq(ns: &NetNs) -> NsChild {
    let script = format!(
        "exec dnsmasq --no-daemon --conf-file=/dev/null --pid-file= --no-resolv --no-hosts \
         --bind-interfaces --listen-address={KERNEL_IP} --port 53 --local=/test/ \
         --address=/svc.test/192.0.2.77 --txt-record=svc.test,\"hello world\" \
         --mx-host=svc.test,mail.svc.test,10 --host-record=host.test,192.0.2.78 \
         --cname=alias.test,host.test --txt-record=big.test,{big},{big},{big} \
         --log-queries --log-facility=- 2>&1",
        big = "x".repeat(200)
    );
    let mut dnsmasq = ns.spawn("sh", &["-c", &script]);
    // dnsmasq logs `started` once its sockets are bound.
    dnsmasq.wait_for_line("dnsmasq's `started` line", READY_DEADLINE, |l| {
        l.contains("dnsmasq") && l.contains("started")
    });
    dnsmasq
}

/// Runs a tool in `ns` with `args` and returns what it printed and how long it took.
fn run_tool(ns: &NetNs, path: &PathBuf, args: &[&str], deadline: Duration) -> (Finished, Duration) {
    let started = Instant::now();
    let done = ns.run(path, args, deadline);
    (done, started.elapsed())
}

fn nsdig(ns: &NetNs, args: &[&str]) -> Finished {
    run_tool(ns, &nsdig_path(), args, RUN_DEADLINE).0
}

fn exit_code(f: &Finished) -> Option<i32> {
    f.status.code()
}

/// nsdig's response, read with the parser the dig tests use (nsdig prints dig's layout).
fn response(f: &Finished) -> DigResponse {
    assert_eq!(exit_code(f), Some(0), "nsdig failed: {}", f.describe());
    DigResponse::parse(&f.stdout)
        .unwrap_or_else(|| panic!("no response in nsdig's output: {}", f.describe()))
}

/// Waits until a process in `ns` has a UDP socket bound to `local` (as `ss` prints it).
fn wait_udp_bound(ns: &NetNs, local: &str) {
    let until = Instant::now() + READY_DEADLINE;
    loop {
        let out = ns.run_ok("ss", &["-H", "-u", "-l", "-n"], Duration::from_secs(5));
        if out.stdout.split_whitespace().any(|w| w == local) {
            return;
        }
        assert!(
            Instant::now() < until,
            "no UDP socket bound to {local} within {READY_DEADLINE:?}:\n{}",
            out.stdout
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the child's stderr holds `needle` (the tools print their status there).
fn wait_stderr(child: &NsChild, needle: &str) {
    let until = Instant::now() + READY_DEADLINE;
    while !child.stderr().contains(needle) {
        assert!(
            Instant::now() < until,
            "`{needle}` never appeared on stderr within {READY_DEADLINE:?}:\n{}",
            child.stderr()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `sh -c script` in `ns`, which must exit 0; its stdout.
fn sh(ns: &NetNs, script: &str) -> String {
    ns.run_ok("sh", &["-c", script], RUN_DEADLINE).stdout
}

/// SIGINT, then the exit status within [`SIGINT_DEADLINE`] (asserted). Stderr is read by
/// another thread: poll it with [`wait_stderr`] afterwards for the last lines.
fn interrupt(child: &mut NsChild) -> Option<i32> {
    let end = child.interrupt(SIGINT_DEADLINE);
    assert!(
        end.status.is_some(),
        "still running {:?} after SIGINT (killed): {}",
        SIGINT_DEADLINE,
        end.stderr
    );
    end.status.and_then(|s| s.code())
}

/// A namespace with the TAP and, on 192.0.2.1:5300, a server that reads every query and never
/// answers; `None` when the system tests cannot run here.
fn silent_server() -> Option<(NetNs, NsChild)> {
    if !require_system(&["socat"]) {
        return None;
    }
    let ns = namespace_with_tap();
    let silent = ns.spawn(
        "socat",
        &["-u", "UDP4-RECV:5300,bind=192.0.2.1", "OPEN:/dev/null"],
    );
    wait_udp_bound(&ns, "192.0.2.1:5300");
    Some((ns, silent))
}

// ---- nsdig against dnsmasq ----

#[test]
fn nsdig_prints_dnsmasqs_a_record_in_the_answer_section() {
    if !require_system(&["dnsmasq", "sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _dnsmasq = start_dnsmasq(&ns);
    let out = nsdig(&ns, &["svc.test", "@192.0.2.1"]);
    let r = response(&out);
    assert_eq!(r.status, "NOERROR", "{}", out.stdout);
    assert!(r.has_flag("qr") && r.has_flag("aa"), "{r:?}");
    assert_eq!(r.answer, ["svc.test. 0 IN A 192.0.2.77"], "{}", out.stdout);
    assert!(
        out.stdout
            .contains(";; SERVER: 192.0.2.1#53(192.0.2.1) (UDP)\n"),
        "{}",
        out.stdout
    );
    assert!(out
        .stdout
        .contains(";; QUESTION SECTION:\n;svc.test.\t\tIN\tA\n"));
    assert!(out.stdout.contains(";; Query time: "), "{}", out.stdout);
    // Nothing went to stderr: no warning about ignored responses or the device.
    assert_eq!(out.stderr, "", "{}", out.describe());
}

#[test]
fn nsdig_reports_nxdomain_for_a_missing_name_and_exits_0() {
    if !require_system(&["dnsmasq", "sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _dnsmasq = start_dnsmasq(&ns);
    // No @SERVER: the default is the kernel side of the TAP, 192.0.2.1.
    let out = nsdig(&ns, &["missing.test"]);
    let r = response(&out);
    assert_eq!(r.status, "NXDOMAIN", "{}", out.stdout);
    assert!(r.answer.is_empty(), "{}", out.stdout);
    assert!(!out.stdout.contains("ANSWER SECTION"), "{}", out.stdout);
}

#[test]
fn nsdig_short_prints_the_cname_chain_and_each_type_asked_for() {
    if !require_system(&["dnsmasq", "sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _dnsmasq = start_dnsmasq(&ns);
    for (args, want) in [
        (&["alias.test", "--short"][..], "host.test.\n192.0.2.78\n"),
        (
            &["svc.test", "mx", "+short", "@192.0.2.1"][..],
            "10 mail.svc.test.\n",
        ),
        (&["svc.test", "TXT", "--short"][..], "\"hello world\"\n"),
        // NODATA: an answer with nothing in it.
        (&["svc.test", "AAAA", "--short"][..], ""),
    ] {
        let out = nsdig(&ns, args);
        assert_eq!(exit_code(&out), Some(0), "{args:?}: {}", out.describe());
        assert_eq!(out.stdout, want, "{args:?}: {}", out.describe());
    }
}

#[test]
fn nsdig_reports_a_truncated_response_without_edns() {
    if !require_system(&["dnsmasq", "sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _dnsmasq = start_dnsmasq(&ns);
    // Without EDNS0 a UDP response holds 512 bytes (RFC 1035 §4.2.1): dnsmasq sets TC.
    let out = nsdig(&ns, &["big.test", "TXT", "--no-edns"]);
    let r = response(&out);
    assert!(r.has_flag("tc"), "{}", out.stdout);
    assert!(
        out.stdout.ends_with(
            ";; Truncated: the full answer needs DNS over TCP, which nsdig cannot do yet; \
             shown as received\n"
        ),
        "{}",
        out.stdout
    );
    // With EDNS0's 1232 bytes the whole record fits.
    let out = nsdig(&ns, &["big.test", "TXT"]);
    let r = response(&out);
    assert!(!r.has_flag("tc"), "{}", out.stdout);
    assert_eq!(r.answer.len(), 1, "{}", out.stdout);
    assert!(!out.stdout.contains("Truncated"), "{}", out.stdout);
}

#[test]
fn nsdig_against_a_silent_server_times_out_after_its_tries_with_exit_9() {
    let Some((ns, _silent)) = silent_server() else {
        return;
    };
    let args = [
        "svc.test",
        "@192.0.2.1",
        "-p",
        "5300",
        "--timeout",
        "1",
        "--tries",
        "2",
    ];
    let (out, took) = run_tool(&ns, &nsdig_path(), &args, RUN_DEADLINE);
    assert_eq!(exit_code(&out), Some(9), "{}", out.describe());
    assert_eq!(
        out.stdout,
        ";; communications error to 192.0.2.1#5300: timed out\n\
         ;; communications error to 192.0.2.1#5300: timed out\n\
         ;; connection timed out; no servers could be reached\n",
        "{}",
        out.describe()
    );
    // Two tries of 1 s each, plus starting and stopping the stack.
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "took {took:?}, want 2 s of tries plus little"
    );
}

#[test]
fn nsdig_to_a_closed_port_fails_each_try_at_once_with_exit_9() {
    if !require_system(&[]) {
        return;
    }
    let ns = namespace_with_tap();
    // Nothing listens on 192.0.2.1:5301: Linux answers ICMP port unreachable.
    let args = ["svc.test", "-p", "5301", "--timeout", "5", "--tries", "2"];
    let (out, took) = run_tool(&ns, &nsdig_path(), &args, RUN_DEADLINE);
    assert_eq!(exit_code(&out), Some(9), "{}", out.describe());
    assert_eq!(
        out.stdout,
        ";; communications error to 192.0.2.1#5301: connection refused\n\
         ;; communications error to 192.0.2.1#5301: connection refused\n\
         ;; no servers could be reached\n"
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}: the timeouts were waited out"
    );
}

#[test]
fn nsdig_usage_errors_name_the_value_and_exit_2_before_touching_a_device() {
    // No root needed: nothing is opened.
    for (args, needle) in [
        (
            &["svc.test", "BOGUS"][..],
            "use one of A, AAAA, CNAME, NS, MX, TXT, SOA, SRV, PTR, ANY",
        ),
        (
            &["svc.test", "@192.0.2.300"][..],
            "@SERVER 192.0.2.300: not an IPv4 address",
        ),
        (&["svc.test", "@198.51.100.1"][..], "give --gateway"),
        (&["svc.test", "--timeout", "0"][..], "--timeout"),
    ] {
        let mut c = Command::new(nsdig_path());
        c.args(args);
        let out = run_with_deadline(c, RUN_DEADLINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(exit_code(&out), Some(2), "{args:?}: {}", out.describe());
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.describe());
    }
}

// ---- nsudp with Linux peers; nsudp creates the TAP ----

#[test]
fn nsudp_echo_returns_what_nc_sends_and_exits_0_on_sigint() {
    if !require_system(&["nc", "sh"]) {
        return;
    }
    let ns = NetNs::new();
    let mut echo = ns.spawn(nsudp_path(), &["echo", "7"]);
    wait_stderr(&echo, "nsudp: echoing on udp 192.0.2.3:7");
    let got = sh(
        &ns,
        &format!("printf 'hello nsudp\\n' | nc -u -w1 {TOOL_IP} 7"),
    );
    assert_eq!(got, "hello nsudp\n");
    // nsudp created the TAP and gave its kernel side 192.0.2.1/24.
    let addr = ns.run_ok("ip", &["-br", "addr", "show", TAP], Duration::from_secs(5));
    assert!(addr.stdout.contains("192.0.2.1/24"), "{}", addr.stdout);
    assert_eq!(interrupt(&mut echo), Some(0), "{}", echo.stderr());
    wait_stderr(&echo, "nsudp: echoed 1 datagrams (12 bytes)");
}

#[test]
fn nsudp_send_reaches_a_linux_listener_from_the_argument_and_from_stdin() {
    if !require_system(&["socat", "sh"]) {
        return;
    }
    let ns = NetNs::new();
    // Bound to every address, so it can start before the TAP (which nsudp creates) exists.
    let mut listener = ns.spawn("socat", &["-u", "UDP4-RECV:9999", "STDOUT"]);
    wait_udp_bound(&ns, "0.0.0.0:9999");
    let out = ns.run(
        nsudp_path(),
        &["send", "192.0.2.1:9999", "hello linux\n"],
        RUN_DEADLINE,
    );
    assert_eq!(exit_code(&out), Some(0), "{}", out.describe());
    assert!(
        out.stderr
            .starts_with("nsudp: sent 12 bytes to 192.0.2.1:9999 from 192.0.2.3:"),
        "{}",
        out.describe()
    );
    listener.wait_for_line("the first datagram", READY_DEADLINE, |l| l == "hello linux");
    let script = format!(
        "printf 'from stdin\\n' | {} send 192.0.2.1:9999",
        nsudp_path().display()
    );
    sh(&ns, &script);
    listener.wait_for_line("the datagram read from stdin", READY_DEADLINE, |l| {
        l == "from stdin"
    });
    // The TAP went away with the nsudp that made it.
    let links = ns.run_ok("ip", &["-br", "link"], Duration::from_secs(5));
    assert!(!links.stdout.contains(TAP), "{}", links.stdout);
}

#[test]
fn nsudp_send_wait_prints_the_reply_and_a_closed_port_is_refused() {
    if !require_system(&["socat"]) {
        return;
    }
    let ns = namespace_with_tap();
    // A Linux UDP echo server.
    let _echo = ns.spawn("socat", &["UDP4-LISTEN:7007,bind=192.0.2.1,fork", "PIPE"]);
    wait_udp_bound(&ns, "192.0.2.1:7007");
    let args = [
        "send",
        "192.0.2.1:7007",
        "ping\n",
        "--wait",
        "--timeout",
        "5",
    ];
    let out = ns.run(nsudp_path(), &args, RUN_DEADLINE);
    assert_eq!(exit_code(&out), Some(0), "{}", out.describe());
    assert_eq!(
        out.stdout,
        "192.0.2.1:7007 5 bytes: ping\\n\n",
        "{}",
        out.describe()
    );

    let args = ["send", "192.0.2.1:7008", "x", "--wait", "--timeout", "5"];
    let (out, took) = run_tool(&ns, &nsudp_path(), &args, RUN_DEADLINE);
    assert_eq!(exit_code(&out), Some(1), "{}", out.describe());
    assert!(
        out.stderr
            .contains("192.0.2.1:7008: nothing listens there (ICMP port unreachable)"),
        "{}",
        out.describe()
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}: waited out the timeout"
    );
}

#[test]
fn nsudp_listen_prints_each_datagram_with_its_source_then_exits_after_count() {
    if !require_system(&["socat", "sh"]) {
        return;
    }
    let ns = NetNs::new();
    let mut listen = ns.spawn(nsudp_path(), &["listen", "5000", "--count", "2"]);
    wait_stderr(&listen, "nsudp: listening on udp 192.0.2.3:5000");
    // socat sends what it read once stdin ends (`nc -w0` may quit before reading it).
    let send = |bytes: &str| {
        sh(
            &ns,
            &format!("printf '{bytes}' | socat -u STDIN UDP4-SENDTO:{TOOL_IP}:5000"),
        )
    };
    send("one");
    let first = listen.wait_for_prefix("192.0.2.1:", READY_DEADLINE);
    assert!(first.ends_with(" 3 bytes: one"), "{first}");
    send("a\\tb\\n");
    let second = listen.wait_for_prefix("192.0.2.1:", READY_DEADLINE);
    assert!(second.ends_with(" 4 bytes: a\\tb\\n"), "{second}");
    // --count 2 reached: it exits by itself, 0, with its tally.
    wait_stderr(&listen, "nsudp: received 2 datagrams (7 bytes)");
    let end = listen.interrupt(Duration::from_secs(5));
    assert_eq!(end.status.and_then(|s| s.code()), Some(0), "{:?}", end);
}

// ---- two user-space stacks through the kernel ----

#[test]
fn nsdig_and_nsudp_reach_netstackd_through_the_kernel_router() {
    if !require_system(&["sh"]) {
        return;
    }
    let ns = NetNs::new();
    // The kernel routes between netstackd's tap0 (192.0.2.0/24) and the tools' nstap0
    // (198.51.100.0/24); each stack sends off-subnet traffic to the kernel side of its TAP.
    sh(&ns, "echo 1 > /proc/sys/net/ipv4/ip_forward");
    let netstackd = Netstackd::start(&ns, &["--gateway", KERNEL_IP]);
    let via = ["--addr", "198.51.100.2/24", "--gateway", "198.51.100.1"];
    let mut args = vec!["www.demo.test", "@192.0.2.2"];
    args.extend(via);
    let r = response(&nsdig(&ns, &args));
    assert_eq!(r.status, "NOERROR");
    assert_eq!(
        r.answer,
        [
            "www.demo.test. 300 IN CNAME demo.test.",
            "demo.test. 300 IN A 192.0.2.2"
        ]
    );
    let mut args = vec!["send", "192.0.2.2:7", "across", "--wait", "--timeout", "5"];
    args.extend(via);
    let out = ns.run(nsudp_path(), &args, RUN_DEADLINE);
    assert_eq!(exit_code(&out), Some(0), "{}", out.describe());
    assert_eq!(out.stdout, "192.0.2.2:7 6 bytes: across\n");
    // netstackd holds tap0: a tool cannot attach to it too, and says why.
    let out = nsdig(
        &ns,
        &["--tap", "tap0", "--addr", "192.0.2.3/24", "demo.test"],
    );
    assert_eq!(exit_code(&out), Some(1), "{}", out.describe());
    assert!(out.stderr.contains("tap0 is busy"), "{}", out.describe());
    drop(netstackd);
}

#[test]
fn nsdig_exits_promptly_on_sigint_while_waiting_for_a_reply() {
    let Some((ns, _silent)) = silent_server() else {
        return;
    };
    let args = [
        "svc.test",
        "-p",
        "5300",
        "--timeout",
        "30",
        "--log-level",
        "info",
    ];
    let mut dig = ns.spawn(nsdig_path(), &args);
    // The stack is up (its log says so) and the query is on its way.
    wait_stderr(&dig, "stack up on nstap0");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(interrupt(&mut dig), Some(130), "{}", dig.stderr());
}
