//! System tests of the command-line tools `nscurl` and `nsws`, each running its own user-space
//! stack on a TAP inside a throwaway namespace, against Linux programs on the kernel side:
//! Python's `http.server` (a file tree, a 404, keep-alive, an echo of POST and chunked PUT
//! bodies), dnsmasq resolving a name, and a Python `websockets` echo server.
//!
//! Each test is gated by `require_system` (root, /dev/net/tun, `ip` and the tools it names;
//! the WebSocket tests also need the Python `websockets` package): skipped loudly without them,
//! failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1. Build the tools first:
//! ```text
//! cargo build -p netstack-bin --bins && cargo test -p netstack-tests --test system_nstools
//! ```
//! (`NSCURL` and `NSWS` may point at the binaries instead.)
//!
//! Devices: every test creates the TAP beforehand (kernel side 192.0.2.1/24), so the servers
//! bind 192.0.2.1 before a tool runs; the tools attach to it (stack 192.0.2.3) and leave it.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netstack_tests::autobahn::{pyws_dir, require_websocket_peers};
use netstack_tests::netns::{Finished, NetNs, NsChild};
use netstack_tests::system::{find_workspace_binary, require_system, ScratchDir};

const TAP: &str = "nstap0";
const KERNEL_IP: &str = "192.0.2.1";
/// How long a tool run that should succeed may take (start a stack, fetch, shut down).
const RUN_DEADLINE: Duration = Duration::from_secs(30);
/// How long a server may take to print its ready line.
const READY_DEADLINE: Duration = Duration::from_secs(10);

fn tool(name: &str, var: &str) -> PathBuf {
    find_workspace_binary(name, var).unwrap_or_else(|e| panic!("{e}"))
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

/// An HTTP/1.1 (keep-alive) `http.server` on 192.0.2.1:8000 serving `root`, which also
/// answers POST and PUT at any path with the request body (Content-Length or chunked) and
/// logs each connection it accepts as `conn` on stdout.
fn start_http_server(ns: &NetNs, root: &str) -> NsChild {
    let script = r#"
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup()
        print("conn", flush=True)
    def log_message(self, *a):
        pass
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))
    def echo(self):
        body = self.read_body()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Method", self.command)
        self.send_header("X-Content-Type", self.headers.get("Content-Type", "-"))
        self.end_headers()
        self.wfile.write(body)
    do_POST = echo
    do_PUT = echo
server = http.server.ThreadingHTTPServer(("192.0.2.1", 8000), functools.partial(H, directory=sys.argv[1]))
print("ready", flush=True)
server.serve_forever()
"#;
    let mut server = ns.spawn("python3", &["-c", script, root]);
    server.wait_for_line("http.server's ready line", READY_DEADLINE, |l| l == "ready");
    server
}

/// dnsmasq on the kernel side: svc.test is 192.0.2.1 (where the HTTP server listens), any
/// other name under test. is NXDOMAIN.
fn start_dnsmasq(ns: &NetNs) -> NsChild {
    let script = format!(
        "exec dnsmasq --no-daemon --conf-file=/dev/null --pid-file= --no-resolv --no-hosts \
         --bind-interfaces --listen-address={KERNEL_IP} --port 53 --local=/test/ \
         --address=/svc.test/{KERNEL_IP} --log-facility=- 2>&1"
    );
    let mut dnsmasq = ns.spawn("sh", &["-c", &script]);
    dnsmasq.wait_for_line("dnsmasq's `started` line", READY_DEADLINE, |l| {
        l.contains("dnsmasq") && l.contains("started")
    });
    dnsmasq
}

fn nscurl(ns: &NetNs, args: &[&str]) -> Finished {
    ns.run(tool("nscurl", "NSCURL"), args, RUN_DEADLINE)
}

/// `sh -c script` in `ns` with `$NSWS` set to the nsws binary.
fn nsws_sh(ns: &NetNs, script: &str) -> Finished {
    let path = tool("nsws", "NSWS");
    let full = format!("NSWS='{}'; {script}", path.display());
    ns.run("sh", &["-c", &full], RUN_DEADLINE)
}

fn code(f: &Finished) -> Option<i32> {
    f.status.code()
}

/// A file of `len` bytes that are not text, so a byte-for-byte comparison means something.
fn write_pattern(path: &std::path::Path, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(&bytes).unwrap();
    bytes
}

/// The gate of the nsws tests: root, `tools`, and the Python `websockets` that `.ci/run`
/// installs (in `netstack_tests::autobahn::pyws_dir()`).
fn require_websockets(tools: &[&str]) -> bool {
    require_websocket_peers(tools, false, true)
}

/// A websockets echo server on 192.0.2.1:8765: every message back as it came (text as text,
/// binary as binary), messages up to 2 MiB; picks the subprotocol `chat` when offered.
fn start_ws_echo(ns: &NetNs) -> NsChild {
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
from websockets.sync.server import serve
def echo(ws):
    for m in ws:
        ws.send(m)
def pick(conn, offered):
    return "chat" if "chat" in offered else None
with serve(echo, "192.0.2.1", 8765, max_size=2**21, select_subprotocol=pick) as s:
    print("ready", flush=True)
    s.serve_forever()
"#;
    let pyws = pyws_dir();
    let mut server = ns.spawn("python3", &["-c", script, &pyws.to_string_lossy()]);
    server.wait_for_line("the websockets server's ready line", READY_DEADLINE, |l| {
        l == "ready"
    });
    server
}

// ---- nscurl against http.server ----

#[test]
fn nscurl_fetches_a_file_byte_for_byte_into_the_output_file() {
    if !require_system(&["python3"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    let want = write_pattern(&root.path().join("blob.bin"), 300_000);
    let out = ScratchDir::new("nscurl-out");
    let dest = out.path().join("got.bin");
    let ns = namespace_with_tap();
    let _server = start_http_server(&ns, &root.path().display().to_string());
    let started = Instant::now();
    let f = nscurl(
        &ns,
        &[
            "http://192.0.2.1:8000/blob.bin",
            "-o",
            &dest.display().to_string(),
        ],
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    let got = std::fs::read(&dest).unwrap();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the file differs from the one served");
    eprintln!(
        "nscurl fetched {} bytes in {:?}",
        got.len(),
        started.elapsed()
    );
}

#[test]
fn nscurl_fail_exits_22_on_a_404_and_prints_no_body() {
    if !require_system(&["python3"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    let ns = namespace_with_tap();
    let _server = start_http_server(&ns, &root.path().display().to_string());
    let f = nscurl(&ns, &["--fail", "http://192.0.2.1:8000/missing"]);
    assert_eq!(code(&f), Some(22), "{}", f.describe());
    assert_eq!(f.stdout, "", "{}", f.describe());
    assert!(f.stderr.contains("returned error: 404"), "{}", f.describe());
    // Without --fail the 404 page is the output and the exit status 0, as curl.
    let f = nscurl(&ns, &["-i", "http://192.0.2.1:8000/missing"]);
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert!(f.stdout.starts_with("HTTP/1.1 404 "), "{}", f.describe());
}

#[test]
fn nscurl_reuses_one_kept_alive_connection_for_two_urls_on_the_same_host() {
    if !require_system(&["python3"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    std::fs::write(root.path().join("a.txt"), "first\n").unwrap();
    std::fs::write(root.path().join("b.txt"), "second\n").unwrap();
    let ns = namespace_with_tap();
    let server = start_http_server(&ns, &root.path().display().to_string());
    let f = nscurl(
        &ns,
        &[
            "-v",
            "http://192.0.2.1:8000/a.txt",
            "http://192.0.2.1:8000/b.txt",
        ],
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert_eq!(f.stdout, "first\nsecond\n");
    assert!(
        f.stderr.contains("* new connection to 192.0.2.1:8000")
            && f.stderr.contains("* reused connection to 192.0.2.1:8000"),
        "{}",
        f.describe()
    );
    assert!(
        f.stderr
            .contains("* 1 connection(s) opened, 1 request(s) on a reused connection"),
        "{}",
        f.describe()
    );
    assert!(
        f.stderr.contains("> GET /a.txt HTTP/1.1"),
        "{}",
        f.describe()
    );
    assert!(f.stderr.contains("< HTTP/1.1 200 OK"), "{}", f.describe());
    // The server accepted one connection for both requests.
    let mut server = server;
    let end = server.interrupt(Duration::from_secs(2));
    let conns = end.stdout.iter().filter(|l| l.as_str() == "conn").count();
    assert_eq!(conns, 1, "the server's lines: {:?}", end.stdout);
}

#[test]
fn nscurl_posts_data_and_puts_a_file_chunked_and_the_server_echoes_both() {
    if !require_system(&["python3"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    let upload = root.path().join("upload.bin");
    let want = write_pattern(&upload, 100_000);
    let ns = namespace_with_tap();
    let _server = start_http_server(&ns, &root.path().display().to_string());

    let f = nscurl(
        &ns,
        &["-i", "-d", "a=1", "-d", "b=2", "http://192.0.2.1:8000/form"],
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert!(f.stdout.contains("X-Method: POST\r\n"), "{}", f.describe());
    assert!(
        f.stdout
            .contains("X-Content-Type: application/x-www-form-urlencoded\r\n"),
        "{}",
        f.describe()
    );
    assert!(f.stdout.ends_with("\r\n\r\na=1&b=2"), "{}", f.describe());

    let out = ScratchDir::new("nscurl-out");
    let dest = out.path().join("echo.bin");
    let f = nscurl(
        &ns,
        &[
            "-v",
            "-T",
            &upload.display().to_string(),
            "-o",
            &dest.display().to_string(),
            "http://192.0.2.1:8000/up",
        ],
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert!(f.stderr.contains("> PUT /up HTTP/1.1"), "{}", f.describe());
    assert!(
        f.stderr.contains("> Transfer-Encoding: chunked"),
        "{}",
        f.describe()
    );
    assert!(f.stderr.contains("< X-Method: PUT"), "{}", f.describe());
    assert!(
        std::fs::read(&dest).unwrap() == want,
        "the echoed upload differs"
    );
}

#[test]
fn nscurl_resolves_a_name_through_dnsmasq_with_its_own_resolver() {
    if !require_system(&["python3", "dnsmasq", "sh"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    std::fs::write(root.path().join("hello.txt"), "hello by name\n").unwrap();
    let ns = namespace_with_tap();
    let _dnsmasq = start_dnsmasq(&ns);
    let _server = start_http_server(&ns, &root.path().display().to_string());
    // No --dns: the default is the kernel side of the TAP, 192.0.2.1:53.
    let f = nscurl(&ns, &["http://svc.test:8000/hello.txt"]);
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert_eq!(f.stdout, "hello by name\n");
    // A name dnsmasq does not know: curl's "could not resolve host", 6.
    let f = nscurl(&ns, &["--dns", "192.0.2.1", "http://nothere.test:8000/"]);
    assert_eq!(code(&f), Some(6), "{}", f.describe());
    assert!(f.stderr.contains("nothere.test"), "{}", f.describe());
}

#[test]
fn nscurl_to_a_closed_port_exits_7() {
    if !require_system(&[]) {
        return;
    }
    let ns = namespace_with_tap();
    let f = nscurl(&ns, &["http://192.0.2.1:8001/"]);
    assert_eq!(code(&f), Some(7), "{}", f.describe());
}

// ---- nsws against websockets ----

#[test]
fn nsws_sends_each_line_and_prints_the_echo_then_closes_with_1000() {
    if !require_websockets(&["sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _server = start_ws_echo(&ns);
    let f = nsws_sh(
        &ns,
        "printf 'hello\\nwörld\\n\\nlast\\n' | \"$NSWS\" -v --protocol chat ws://192.0.2.1:8765/",
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert_eq!(f.stdout, "hello\nwörld\n\nlast\n", "{}", f.describe());
    assert!(f.stderr.contains("(subprotocol: chat)"), "{}", f.describe());
    assert!(
        f.stderr.contains("closing with 1000") && f.stderr.contains("* closed"),
        "{}",
        f.describe()
    );
}

#[test]
fn nsws_binary_lines_come_back_as_binary_printed_as_hex() {
    if !require_websockets(&["sh"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _server = start_ws_echo(&ns);
    let f = nsws_sh(
        &ns,
        "printf 'abc\\n\\001\\377\\n' | \"$NSWS\" --binary ws://192.0.2.1:8765/",
    );
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert_eq!(
        f.stdout,
        "[binary 3 bytes] 616263\n[binary 2 bytes] 01ff\n",
        "{}",
        f.describe()
    );
}

#[test]
fn nsws_echoes_a_one_mebibyte_text_line() {
    if !require_websockets(&["sh", "head", "tr"]) {
        return;
    }
    let ns = namespace_with_tap();
    let _server = start_ws_echo(&ns);
    let f = nsws_sh(
        &ns,
        "{ head -c 1048576 /dev/zero | tr '\\000' 'x'; echo; } | \"$NSWS\" --linger 2 ws://192.0.2.1:8765/",
    );
    assert_eq!(code(&f), Some(0), "{}", f.stderr);
    assert_eq!(f.stdout.len(), 1_048_577, "{}", f.stderr);
    assert!(f.stdout.trim_end().bytes().all(|b| b == b'x'));
}

#[test]
fn nsws_names_the_close_code_when_the_server_breaks_the_protocol() {
    if !require_system(&["python3", "sh"]) {
        return;
    }
    // A server that answers the handshake correctly, then sends a frame with RSV1 set and no
    // extension negotiated: the client must fail the connection with 1002 (RFC 6455 §5.2).
    let script = r#"
import base64, hashlib, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.1", 8766))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
head = b""
while b"\r\n\r\n" not in head:
    head += c.recv(4096)
key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
c.sendall(b"\xc1\x02hi")
c.settimeout(5)
try:
    while c.recv(4096):
        pass
except Exception:
    pass
"#;
    let ns = namespace_with_tap();
    let mut server = ns.spawn("python3", &["-c", script]);
    server.wait_for_line("the raw server's ready line", READY_DEADLINE, |l| {
        l == "ready"
    });
    let f = nsws_sh(&ns, "sleep 3 | \"$NSWS\" ws://192.0.2.1:8766/");
    assert_eq!(code(&f), Some(4), "{}", f.describe());
    assert!(f.stderr.contains("with 1002"), "{}", f.describe());
}

#[test]
fn nscurl_follows_a_redirect_only_with_dash_l() {
    if !require_system(&["python3"]) {
        return;
    }
    let root = ScratchDir::new("nscurl-root");
    std::fs::create_dir(root.path().join("dir")).unwrap();
    std::fs::write(root.path().join("dir/index.html"), "the index\n").unwrap();
    let ns = namespace_with_tap();
    let _server = start_http_server(&ns, &root.path().display().to_string());
    // http.server answers a directory without its slash with 301 to `/dir/`.
    // Without -L the redirect is the answer, as curl shows it.
    let f = nscurl(&ns, &["-i", "http://192.0.2.1:8000/dir"]);
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert!(
        f.stdout.starts_with("HTTP/1.") && f.stdout.contains(" 301 "),
        "{}",
        f.describe()
    );
    assert!(
        f.stdout.to_ascii_lowercase().contains("location: /dir/"),
        "{}",
        f.describe()
    );
    let f = nscurl(&ns, &["-L", "-v", "http://192.0.2.1:8000/dir"]);
    assert_eq!(code(&f), Some(0), "{}", f.describe());
    assert_eq!(f.stdout, "the index\n");
    assert!(
        f.stderr
            .contains("* Followed a redirect to http://192.0.2.1:8000/dir/"),
        "{}",
        f.describe()
    );
    let f = nscurl(
        &ns,
        &["-L", "--max-redirs", "0", "http://192.0.2.1:8000/dir"],
    );
    assert_eq!(code(&f), Some(47), "{}", f.describe());
}

#[test]
fn nscurl_max_time_gives_up_on_a_silent_server_with_exit_28() {
    if !require_system(&["python3"]) {
        return;
    }
    // Accepts connections and never answers.
    let script = r#"
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.1", 8002))
s.listen(4)
print("ready", flush=True)
held = []
while True:
    c, _ = s.accept()
    held.append(c)
"#;
    let ns = namespace_with_tap();
    let mut server = ns.spawn("python3", &["-c", script]);
    server.wait_for_line("the silent server's ready line", READY_DEADLINE, |l| {
        l == "ready"
    });
    let started = Instant::now();
    let f = nscurl(&ns, &["--max-time", "1", "http://192.0.2.1:8002/"]);
    let took = started.elapsed();
    assert_eq!(code(&f), Some(28), "{}", f.describe());
    assert!(f.stderr.contains("timed out"), "{}", f.describe());
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
