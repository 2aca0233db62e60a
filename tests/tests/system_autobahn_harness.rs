//! Proves the WebSocket peers and their harness (`netstack_tests::autobahn`) against stand-in
//! servers, before netstackd serves `/ws`: Autobahn's own `wstest -m echoserver` and
//! `wstest -m fuzzingserver` play the server, across a veth pair between two namespaces of the
//! test's own (server 198.51.100.1, client 198.51.100.2).
//!
//! - `wstest -m fuzzingclient`, cases 1.* and 2.*, against the echo server: nothing FAILED;
//! - `tests/autobahn/ws_echo_check.py` (Python `websockets`, text and binary up to 1 MiB)
//!   against the echo server: every echo equal;
//! - `wstest -m testeeclient` against `wstest -m fuzzingserver`, cases 1.* and 2.*: the report
//!   is written and nothing FAILED.
//!
//! - and the HTTP load tools' runners (`netstack_tests::http_peers`): curl, `ab` and `wrk`
//!   against a kernel-side `python3 -m http.server`, their output read into numbers.
//!
//! Needs root, `ip`, `python3`, `bash`, the suite from `tests/autobahn/install.sh` and the
//! pinned `websockets` (both installed by `.ci/run`): skipped loudly without them, failed
//! under NETSTACK_REQUIRE_SYSTEM_TESTS=1.
//! ```text
//! tests/autobahn/install.sh && cargo test -p netstack-tests --test system_autobahn_harness -- --nocapture
//! ```

use std::time::Duration;

use netstack_tests::autobahn::wait_for_port;
use netstack_tests::autobahn::{
    require_websocket_peers, run_fuzzingclient, run_testeeclient, run_ws_echo_check,
    start_echoserver, start_fuzzingserver, TESTEE_CLIENT_AGENT,
};
use netstack_tests::http_peers::{curl_transfers, run_ab, run_wrk};
use netstack_tests::netns::NetNs;
use netstack_tests::system::{require_system, ScratchDir};

const SERVER_IP: &str = "198.51.100.1";
const CLIENT_IP: &str = "198.51.100.2";
/// How long a `wstest` server may take to start listening (Twisted's start-up included).
const READY: Duration = Duration::from_secs(20);
/// Cases 1.* and 2.* take about two seconds against a local echo server.
const RUN: Duration = Duration::from_secs(60);
const SETUP: Duration = Duration::from_secs(5);

/// Two namespaces joined by a veth pair: (server side, client side).
fn server_and_client() -> (NetNs, NetNs) {
    let server = NetNs::new();
    let client = NetNs::new();
    server.run_ok(
        "ip",
        &[
            "link",
            "add",
            "vab0",
            "type",
            "veth",
            "peer",
            "name",
            "vab1",
            "netns",
            client.name(),
        ],
        SETUP,
    );
    server.run_ok(
        "ip",
        &["addr", "add", &format!("{SERVER_IP}/24"), "dev", "vab0"],
        SETUP,
    );
    server.run_ok("ip", &["link", "set", "vab0", "up"], SETUP);
    client.run_ok(
        "ip",
        &["addr", "add", &format!("{CLIENT_IP}/24"), "dev", "vab1"],
        SETUP,
    );
    client.run_ok("ip", &["link", "set", "vab1", "up"], SETUP);
    (server, client)
}

#[test]
fn fuzzingclient_cases_1_and_2_pass_against_the_wstest_echo_server_across_a_veth() {
    if !require_websocket_peers(&["bash", "python3"], true, false) {
        return;
    }
    let (server_ns, client_ns) = server_and_client();
    let server = start_echoserver(&server_ns, SERVER_IP, 9001, READY);
    let work = ScratchDir::new("nst-autobahn-fc");
    let report = run_fuzzingclient(
        &client_ns,
        "wstest-echoserver",
        server.url(),
        &["1.*", "2.*"],
        work.path(),
        RUN,
    )
    .unwrap_or_else(|e| panic!("{e}\n--- server stderr\n{}", server.stderr()));
    eprintln!("{}", report.summary());
    // 1.* has 16 cases and 2.* 11: all of them ran.
    assert_eq!(report.cases.len(), 27, "{}", report.summary());
    report.assert_nothing_failed();
}

#[test]
fn python_websockets_echoes_text_and_binary_up_to_1_mib_through_the_wstest_echo_server() {
    if !require_websocket_peers(&["bash", "python3"], true, true) {
        return;
    }
    let (server_ns, client_ns) = server_and_client();
    let server = start_echoserver(&server_ns, SERVER_IP, 9001, READY);
    let done = run_ws_echo_check(&client_ns, server.url(), 1 << 20, RUN)
        .unwrap_or_else(|e| panic!("{e}\n--- server stderr\n{}", server.stderr()));
    let summary = done.stdout.lines().last().unwrap_or_default();
    eprintln!("ws_echo_check.py: {summary}");
    assert!(
        summary.starts_with("summary: 54 messages, 0 mismatches"),
        "{}",
        done.describe()
    );
}

#[test]
fn wstest_testeeclient_passes_cases_1_and_2_against_the_fuzzing_server_guard() {
    if !require_websocket_peers(&["bash", "python3"], true, false) {
        return;
    }
    let (server_ns, client_ns) = server_and_client();
    let work = ScratchDir::new("nst-autobahn-fs");
    let mut server = start_fuzzingserver(
        &server_ns,
        SERVER_IP,
        9002,
        &["1.*", "2.*"],
        work.path(),
        READY,
    );
    run_testeeclient(&client_ns, server.url(), RUN).unwrap_or_else(|e| panic!("{e}"));
    let report = server
        .wait_for_report(TESTEE_CLIENT_AGENT, RUN)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{}", report.summary());
    assert_eq!(report.cases.len(), 27, "{}", report.summary());
    report.assert_nothing_failed();
}

#[test]
fn curl_ab_and_wrk_runners_read_a_python_http_server_across_a_veth() {
    if !require_system(&["bash", "python3", "curl", "ab", "wrk"]) {
        return;
    }
    let (server_ns, client_ns) = server_and_client();
    let www = ScratchDir::new("nst-http-peers");
    std::fs::write(www.path().join("small.txt"), b"hello\n").unwrap();
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(www.path().join("big.bin"), &big).unwrap();
    let dir = www.path().to_string_lossy().into_owned();
    let _server = server_ns.spawn(
        "python3",
        &[
            "-m",
            "http.server",
            "8080",
            "--bind",
            SERVER_IP,
            "--directory",
            &dir,
        ],
    );
    wait_for_port(&client_ns, SERVER_IP, 8080, READY).unwrap_or_else(|e| panic!("{e}"));
    let base = format!("http://{SERVER_IP}:8080");

    let small = format!("{base}/small.txt");
    let big_url = format!("{base}/big.bin");
    let missing = format!("{base}/missing");
    let t = curl_transfers(&client_ns, &[&small, &big_url, &missing], &[], RUN)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("curl: {t:?}");
    assert_eq!((t[0].status, t[0].size), (200, 6));
    assert_eq!((t[1].status, t[1].size), (200, 1_000_000));
    assert_eq!(t[2].status, 404);

    let (ab, _) = run_ab(&client_ns, &small, 200, 4, true, RUN).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("ab: {ab:?}");
    assert_eq!((ab.complete, ab.failed, ab.non_2xx), (200, 0, 0));

    let (wrk, _) = run_wrk(&client_ns, &small, 4, 2, Duration::from_secs(1), RUN)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("wrk: {wrk:?}");
    assert!(wrk.requests > 0 && wrk.requests_per_second > 0.0, "{wrk:?}");
    assert_eq!(wrk.non_2xx_3xx, 0, "{wrk:?}");
}
