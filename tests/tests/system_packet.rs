//! System tests for the AF_PACKET device: netstackd attached with `--packet` to one end of a
//! veth pair whose kernel side has no address, Linux in a second namespace on the other end
//! (ping, TCP to discard and from chargen with byte counts checked, DNS and HTTP once), with
//! offloads off, on, and on with two queues (a PACKET_FANOUT group).
//!
//! Gated by `require_system` like the other system tests; needs `cargo build --workspace --bins`.
//! Addresses: the peer 198.51.100.1/24, the stack 198.51.100.2/24.

use std::time::{Duration, Instant};

use netstack_tests::netns::{NetNs, Netstackd, Shutdown};
use netstack_tests::peers::ping;
use netstack_tests::system::require_system;

const STACK_IP: &str = "198.51.100.2";
const PEER_CIDR: &str = "198.51.100.1/24";
const PEER_DEADLINE: Duration = Duration::from_secs(60);
/// Bytes sent to discard and read from chargen in each direction.
const TRANSFER: usize = 8 << 20;

/// Sends `size` bytes to the discard service (port 9) and waits for its FIN after ours;
/// prints "sent N SECONDS".
const DISCARD: &str = r#"
import socket, sys, time
ip, size = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((ip, 9), timeout=30)
chunk = b"x" * 65536
t = time.monotonic()
left = size
while left:
    n = s.send(chunk[:min(left, len(chunk))])
    left -= n
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print("sent %d %.6f" % (size, time.monotonic() - t))
"#;

/// Reads `size` bytes from the chargen service (port 19), checking they are its text; prints
/// "got N SECONDS" or what went wrong.
const CHARGEN: &str = r#"
import socket, sys, time
ip, size = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((ip, 19), timeout=30)
t = time.monotonic()
got = 0
bad = 0
while got < size:
    b = s.recv(min(262144, size - got))
    if not b:
        break
    bad += sum(1 for c in b[:64] if not (c in (10, 13) or 32 <= c < 127))
    got += len(b)
dt = time.monotonic() - t
s.close()
print("got %d %.6f" % (got, dt) if bad == 0 else "not chargen text")
"#;

fn stat(end: &Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("no `stat {name}`: {:?}", end.stats))
}

/// The rate of `bytes` in `secs`, in Gbit/s.
fn gbits(bytes: usize, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e9
}

/// The two namespaces joined by a veth pair: the stack's end `pkv0` up with no address (and
/// IPv6 off, so the kernel side keeps quiet), the peer's end `pkv1` with 198.51.100.1/24.
fn veth_namespaces() -> (NetNs, NetNs) {
    let short = Duration::from_secs(5);
    let stack_ns = NetNs::new();
    let peer_ns = NetNs::new();
    stack_ns.add_veth("pkv0", &peer_ns, "pkv1");
    stack_ns.run_ok(
        "sysctl",
        &["-qw", "net.ipv6.conf.pkv0.disable_ipv6=1"],
        short,
    );
    stack_ns.run_ok("ip", &["link", "set", "pkv0", "up"], short);
    peer_ns.run_ok("ip", &["addr", "add", PEER_CIDR, "dev", "pkv1"], short);
    peer_ns.run_ok("ip", &["link", "set", "pkv1", "up"], short);
    (stack_ns, peer_ns)
}

/// netstackd `--packet pkv0 --offload OFFLOAD --queues QUEUES`, then every check from the
/// peer's namespace. Returns the rates seen (to discard, from chargen) in Gbit/s.
fn packet_device_serves_linux(offload: &str, queues: &str) -> Option<(f64, f64)> {
    if !require_system(&["python3", "ping", "dig", "curl", "sysctl"]) {
        return None;
    }
    let (stack_ns, peer_ns) = veth_namespaces();
    let mut stack = Netstackd::start(
        &stack_ns,
        &[
            "--packet",
            "pkv0",
            "--addr",
            "198.51.100.2/24",
            "--offload",
            offload,
            "--queues",
            queues,
        ],
    );
    // The log line comes before the ready line, on the other stream: give it a moment.
    let until = Instant::now() + Duration::from_secs(2);
    let mut ready = stack.child().stderr();
    while !ready.contains("AF_PACKET pkv0: attached") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
        ready = stack.child().stderr();
    }
    assert!(
        ready.contains("AF_PACKET pkv0: attached"),
        "no attach line: {ready}"
    );
    let negotiated = if offload == "on" {
        "offloads: virtio-net header"
    } else {
        "offloads: none"
    };
    assert!(ready.contains(negotiated), "{negotiated}: {ready}");

    let p = ping(&peer_ns, STACK_IP, 5, 56);
    assert_eq!(p.lost(), 0, "ping over the packet device: {p:?}");
    let p = ping(&peer_ns, STACK_IP, 3, 4000);
    assert_eq!(p.lost(), 0, "fragmented ping over the packet device: {p:?}");

    let size = TRANSFER.to_string();
    let sent = peer_ns.run("python3", &["-c", DISCARD, STACK_IP, &size], PEER_DEADLINE);
    let words: Vec<&str> = sent.stdout.split_whitespace().collect();
    assert_eq!(
        words.get(..2),
        Some(&["sent", &size[..]][..]),
        "{}",
        sent.describe()
    );
    let to_discard = gbits(TRANSFER, words[2].parse().unwrap());

    let got = peer_ns.run("python3", &["-c", CHARGEN, STACK_IP, &size], PEER_DEADLINE);
    let words: Vec<&str> = got.stdout.split_whitespace().collect();
    assert_eq!(
        words.get(..2),
        Some(&["got", &size[..]][..]),
        "{}",
        got.describe()
    );
    let from_chargen = gbits(TRANSFER, words[2].parse().unwrap());

    let dig = peer_ns.run_ok(
        "dig",
        &[
            "+short",
            "+time=2",
            "+tries=3",
            "@198.51.100.2",
            "demo.test",
        ],
        PEER_DEADLINE,
    );
    assert_eq!(dig.stdout.trim(), STACK_IP, "{}", dig.describe());
    let curl = peer_ns.run_ok(
        "curl",
        &["-sS", "--max-time", "10", "http://198.51.100.2/stats"],
        PEER_DEADLINE,
    );
    assert!(curl.stdout.contains("\"counters\""), "{}", curl.describe());

    // The discard service may still be reading when asked to stop: give it a moment.
    let settle = Instant::now() + Duration::from_millis(200);
    while Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(20));
    }
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.discard.tcp_bytes"), TRANSFER as u64);
    assert!(stat(&end, "service.chargen.tcp_bytes") >= TRANSFER as u64);
    if offload == "on" {
        assert!(
            stat(&end, "link.rx_coalesced") > 0,
            "a veth peer hands up large segments: {:?}",
            end.stats
        );
    }
    eprintln!(
        "packet device, offload {offload}, {queues} queue(s): to discard {to_discard:.2} Gbit/s, \
         from chargen {from_chargen:.2} Gbit/s ({} MiB each way)",
        TRANSFER >> 20
    );
    drop(peer_ns);
    drop(stack_ns);
    Some((to_discard, from_chargen))
}

#[test]
fn netstackd_on_a_veth_end_serves_linux_with_offloads_off() {
    packet_device_serves_linux("off", "1");
}

#[test]
fn netstackd_on_a_veth_end_serves_linux_with_offloads_on() {
    packet_device_serves_linux("on", "1");
}

#[test]
fn netstackd_on_a_veth_end_serves_linux_over_two_fanout_queues() {
    packet_device_serves_linux("on", "2");
}

#[test]
fn netstackd_refuses_a_missing_or_down_interface_naming_the_fix() {
    if !require_system(&["sysctl"]) {
        return;
    }
    let (stack_ns, _peer_ns) = veth_namespaces();
    let netstackd = netstack_tests::netns::netstackd_path();
    let missing = stack_ns.run(
        &netstackd,
        &["--packet", "nothere0", "--addr", "198.51.100.2/24"],
        PEER_DEADLINE,
    );
    assert!(!missing.status.success());
    assert!(
        missing.stderr.contains("no interface nothere0"),
        "{}",
        missing.describe()
    );
    stack_ns.run_ok("ip", &["link", "set", "pkv0", "down"], PEER_DEADLINE);
    let down = stack_ns.run(
        &netstackd,
        &["--packet", "pkv0", "--addr", "198.51.100.2/24"],
        PEER_DEADLINE,
    );
    assert!(!down.status.success());
    assert!(
        down.stderr.contains("ip link set pkv0 up"),
        "{}",
        down.describe()
    );
}
