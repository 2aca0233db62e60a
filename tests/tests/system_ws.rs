//! System tests for WebSocket (RFC 6455): netstackd's `/ws` echo over a TAP, against Python
//! `websockets` (text and binary messages up to 1 MiB) and the Autobahn testsuite's fuzzing
//! client (cases 1–7, 9, 10, 12.1, 13.1: nothing FAILED); and netstack's WebSocket client
//! (`ws-autobahn-client`) against the Autobahn fuzzing server on the same cases.
//!
//! Needs root, the suite from `tests/autobahn/install.sh` and the pinned `websockets` (both
//! installed by `.ci/run`): skipped loudly without them, failed under
//! NETSTACK_REQUIRE_SYSTEM_TESTS=1. Needs `cargo build --workspace --bins`.

use std::time::Duration;

use netstack_tests::autobahn::{
    require_websocket_peers, run_fuzzingclient, run_ws_echo_check, start_fuzzingserver,
    CONFORMANCE_CASES,
};
use netstack_tests::netns::{NetNs, Netstackd};
use netstack_tests::system::{find_workspace_binary, ScratchDir};

const WS_URL: &str = "ws://192.0.2.2/ws";
/// The conformance cases take about a minute each way on this machine (9.* most of it).
const CONFORMANCE_DEADLINE: Duration = Duration::from_secs(900);
const ECHO_DEADLINE: Duration = Duration::from_secs(120);
const READY: Duration = Duration::from_secs(30);

/// Where `.ci/run` wants the Autobahn summaries kept, to print them after the tests.
const SUMMARY_DIR_VAR: &str = "NETSTACK_AUTOBAHN_SUMMARY_DIR";

/// Prints `summary` and, when `.ci/run` asks for it, keeps it as `<dir>/<agent>.txt`.
fn keep_summary(agent: &str, summary: &str) {
    println!("{summary}");
    if let Ok(dir) = std::env::var(SUMMARY_DIR_VAR) {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{agent}.txt")), summary).unwrap();
    }
}

fn stat(end: &netstack_tests::netns::Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("no `stat {name}`: {:?}", end.stats))
}

#[test]
fn python_websockets_echoes_text_and_binary_up_to_a_mebibyte_through_netstackd() {
    if !require_websocket_peers(&["python3"], false, true) {
        return;
    }
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, &[]);
    let done = run_ws_echo_check(&ns, WS_URL, 1 << 20, ECHO_DEADLINE)
        .unwrap_or_else(|e| panic!("ws_echo_check: {e}"));
    println!("{}", done.stdout);
    assert!(done.status.success(), "{}", done.describe());
    let end = stack.stop_ok();
    assert!(stat(&end, "service.http.ws_sessions") >= 1);
    assert_eq!(stat(&end, "service.http.ws_protocol_errors"), 0);
}

#[test]
fn autobahn_fuzzingclient_finds_nothing_failed_in_netstackds_websocket_server() {
    if !require_websocket_peers(&[], true, false) {
        return;
    }
    let ns = NetNs::new();
    let stack = Netstackd::start(&ns, &[]);
    let work = ScratchDir::new("autobahn-server");
    let report = run_fuzzingclient(
        &ns,
        "netstackd",
        WS_URL,
        CONFORMANCE_CASES,
        work.path(),
        CONFORMANCE_DEADLINE,
    )
    .unwrap_or_else(|e| panic!("fuzzingclient: {e}"));
    keep_summary(
        "fuzzingclient-against-netstackd",
        &format!(
            "wstest -m fuzzingclient against netstackd's /ws\n{}",
            report.summary()
        ),
    );
    report.assert_nothing_failed();
    stack.stop_ok();
}

#[test]
fn netstacks_websocket_client_passes_the_autobahn_fuzzingserver_cases() {
    if !require_websocket_peers(&[], true, false) {
        return;
    }
    let client = find_workspace_binary("ws-autobahn-client", "WS_AUTOBAHN_CLIENT")
        .unwrap_or_else(|e| panic!("{e}"));
    let ns = NetNs::new();
    ns.run_ok("ip", &["link", "set", "lo", "up"], Duration::from_secs(5));
    let work = ScratchDir::new("autobahn-client");
    let mut server = start_fuzzingserver(
        &ns,
        "127.0.0.1",
        9001,
        CONFORMANCE_CASES,
        work.path(),
        READY,
    );
    let client = client.to_string_lossy().into_owned();
    let done = ns.run(&client, &[server.url(), "netstack"], CONFORMANCE_DEADLINE);
    assert!(done.status.success(), "{}", done.describe());
    let report = server
        .wait_for_report("netstack", READY)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.stderr()));
    keep_summary(
        "netstack-client-against-fuzzingserver",
        &format!(
            "netstack's client against wstest -m fuzzingserver\n{}",
            report.summary()
        ),
    );
    report.assert_nothing_failed();
}
