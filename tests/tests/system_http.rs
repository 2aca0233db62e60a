//! System tests for HTTP/1.1: Linux's curl, ab and wrk inside a throwaway namespace talk to
//! netstackd's HTTP server over a TAP: a 10 MiB static file byte for byte, three URLs over one
//! kept-alive connection, a chunked upload echoed back, and load from ab and wrk with no error.
//!
//! Gated by `require_system` like the other system tests; needs `cargo build --workspace --bins`.

use std::time::Duration;

use netstack_tests::netns::{NetNs, Netstackd};
use netstack_tests::system::ScratchDir;

const STACK_IP: &str = "192.0.2.2";
const PEER_DEADLINE: Duration = Duration::from_secs(90);

fn stat(end: &netstack_tests::netns::Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("no `stat {name}`: {:?}", end.stats))
}

/// A web root with `big.bin` (10 MiB of varied bytes) and `index.html`; its path as text.
fn web_root() -> (ScratchDir, String) {
    let dir = ScratchDir::new("http-root");
    let big: Vec<u8> = (0..10u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("index.html"), b"<p>netstack root</p>\n").unwrap();
    let path = dir.path().to_string_lossy().into_owned();
    (dir, path)
}

fn sh(ns: &NetNs, script: &str) -> netstack_tests::netns::Finished {
    ns.run("sh", &["-c", script], PEER_DEADLINE)
}

#[test]
fn curl_gets_a_ten_mebibyte_static_file_byte_for_byte() {
    let (root, root_path) = web_root();
    let Some((ns, stack)) = Netstackd::start_gated(&["curl", "sha256sum"], &["--root", &root_path])
    else {
        return;
    };
    let done = sh(
        &ns,
        &format!(
            "curl -sS --fail --max-time 60 http://{STACK_IP}/big.bin | sha256sum; sha256sum < {root_path}/big.bin"
        ),
    );
    let sums: Vec<&str> = done
        .stdout
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(sums.len(), 2, "{}", done.describe());
    assert_eq!(
        sums[0],
        sums[1],
        "the file came back different: {}",
        done.describe()
    );
    let end = stack.stop_ok();
    assert!(stat(&end, "service.http.requests") >= 1);
    drop(root);
}

#[test]
fn curl_reuses_one_kept_alive_connection_for_three_urls() {
    let (root, root_path) = web_root();
    let Some((ns, stack)) = Netstackd::start_gated(&["curl"], &["--root", &root_path]) else {
        return;
    };
    let done = sh(
        &ns,
        &format!(
            "curl -sS -v --fail --max-time 30 -o /dev/null -o /dev/null -o /dev/null \
             http://{STACK_IP}/ http://{STACK_IP}/stats http://{STACK_IP}/index.html 2>&1"
        ),
    );
    assert!(done.status.success(), "{}", done.describe());
    let out = done.stdout.to_ascii_lowercase();
    let reuses = out.matches("re-using existing connection").count()
        + out.matches("reusing existing connection").count();
    assert_eq!(
        reuses,
        2,
        "curl did not reuse the connection twice: {}",
        done.describe()
    );
    assert_eq!(
        out.matches("connected to").count(),
        1,
        "{}",
        done.describe()
    );
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.http.requests"), 3);
    assert_eq!(stat(&end, "service.http.connections_accepted"), 1);
    drop(root);
}

#[test]
fn a_chunked_upload_is_echoed_back_whole() {
    let Some((ns, stack)) = Netstackd::start_gated(&["curl", "cmp", "head"], &[]) else {
        return;
    };
    let scratch = ScratchDir::new("http-upload");
    let file = scratch.path().join("upload.bin");
    let file = file.to_string_lossy();
    let done = sh(
        &ns,
        &format!(
            "head -c 3000000 /dev/urandom > {file} && \
             curl -sS --fail --max-time 60 -H 'Transfer-Encoding: chunked' --data-binary @{file} \
             -o {file}.back http://{STACK_IP}/echo && cmp {file} {file}.back && echo same"
        ),
    );
    assert_eq!(done.stdout.trim(), "same", "{}", done.describe());
    stack.stop_ok();
}

#[test]
fn ab_keep_alive_two_thousand_requests_without_an_error() {
    let Some((ns, stack)) = Netstackd::start_gated(&["ab"], &[]) else {
        return;
    };
    let done = ns.run(
        "ab",
        // A fixed-size answer: ab counts a body whose length differs from the first as failed.
        &[
            "-k",
            "-n",
            "2000",
            "-c",
            "8",
            "-s",
            "20",
            &format!("http://{STACK_IP}/echo"),
        ],
        PEER_DEADLINE,
    );
    assert!(done.status.success(), "{}", done.describe());
    let field = |name: &str| -> Option<u64> {
        done.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        field("Complete requests:"),
        Some(2000),
        "{}",
        done.describe()
    );
    assert_eq!(field("Failed requests:"), Some(0), "{}", done.describe());
    assert_eq!(
        field("Keep-Alive requests:"),
        Some(2000),
        "{}",
        done.describe()
    );
    assert!(!done.stdout.contains("Non-2xx"), "{}", done.describe());
    println!("{}", done.stdout);
    stack.stop_ok();
}

#[test]
fn wrk_with_a_hundred_connections_for_five_seconds_sees_no_error() {
    let Some((ns, stack)) = Netstackd::start_gated(&["wrk"], &[]) else {
        return;
    };
    let done = ns.run(
        "wrk",
        &[
            "-t",
            "2",
            "-c",
            "100",
            "-d",
            "5s",
            "--timeout",
            "10s",
            &format!("http://{STACK_IP}/stats"),
        ],
        PEER_DEADLINE,
    );
    assert!(done.status.success(), "{}", done.describe());
    println!("{}", done.stdout);
    assert!(
        !done.stdout.contains("Socket errors") && !done.stdout.contains("Non-2xx"),
        "wrk saw errors: {}",
        done.describe()
    );
    assert!(done.stdout.contains("Requests/sec"), "{}", done.describe());
    let end = stack.stop_ok();
    assert!(stat(&end, "service.http.requests") > 100);
}
