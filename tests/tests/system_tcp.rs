//! System tests for TCP: Linux's own TCP (python3 sockets, nc) inside a throwaway namespace talks
//! to netstackd's echo, discard and chargen services over a TAP, cleanly and with nftables
//! dropping a share of what the stack sends, every byte checked.
//!
//! Gated by `require_system` like the other system tests; needs `cargo build --workspace --bins`.

use std::time::Duration;

use netstack_tests::netns::{NetNs, Netstackd};

const STACK_IP: &str = "192.0.2.2";
const PEER_DEADLINE: Duration = Duration::from_secs(60);

/// Sends `size` random bytes to the echo service while reading them back; prints "ok N" when
/// every byte came back in order.
const ECHO_CHECK: &str = r#"
import os, socket, sys, threading
ip, size = sys.argv[1], int(sys.argv[2])
data = os.urandom(size)
s = socket.create_connection((ip, 7), timeout=30)
got = bytearray()
def reader():
    while True:
        b = s.recv(65536)
        if not b:
            return
        got.extend(b)
t = threading.Thread(target=reader)
t.start()
s.sendall(data)
s.shutdown(socket.SHUT_WR)
t.join(40)
print("ok %d" % size if bytes(got) == data else "mismatch: %d of %d bytes" % (len(got), size))
"#;

fn stat(end: &netstack_tests::netns::Shutdown, name: &str) -> u64 {
    *end.stats
        .get(name)
        .unwrap_or_else(|| panic!("no `stat {name}`: {:?}", end.stats))
}

fn echo_check(ns: &NetNs, size: usize) {
    let size = size.to_string();
    let done = ns.run(
        "python3",
        &["-c", ECHO_CHECK, STACK_IP, &size],
        PEER_DEADLINE,
    );
    assert_eq!(
        done.stdout.trim(),
        format!("ok {size}"),
        "{}",
        done.describe()
    );
}

#[test]
fn linux_echoes_eight_mebibytes_through_netstackd_byte_for_byte() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &[]) else {
        return;
    };
    echo_check(&ns, 8 << 20);
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.echo.tcp_bytes"), 8 << 20);
    assert!(stat(&end, "tcp.endpoint.passive_opens") >= 1);
}

#[test]
fn nc_echo_and_a_closed_port_refused() {
    let Some((ns, stack)) = Netstackd::start_gated(&["nc", "python3"], &[]) else {
        return;
    };
    let done = ns.run(
        "sh",
        &["-c", "printf 'hello tcp\\n' | nc -N -w 5 192.0.2.2 7"],
        PEER_DEADLINE,
    );
    assert_eq!(done.stdout, "hello tcp\n", "{}", done.describe());
    let refused = "import socket\ntry:\n    socket.create_connection(('192.0.2.2', 4444), timeout=5)\n    print('connected')\nexcept ConnectionRefusedError:\n    print('refused')\n";
    let done = ns.run("python3", &["-c", refused], PEER_DEADLINE);
    assert_eq!(done.stdout.trim(), "refused", "{}", done.describe());
    let end = stack.stop_ok();
    assert!(stat(&end, "tcp.endpoint.rst_sent_no_socket") >= 1);
}

#[test]
fn chargen_streams_lines_and_discard_swallows_a_mebibyte() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &[]) else {
        return;
    };
    let script = r#"
import socket
s = socket.create_connection(("192.0.2.2", 19), timeout=10)
buf = b""
while len(buf) < 1 << 20:
    buf += s.recv(65536)
s.close()
lines = buf.split(b"\r\n")[:-1]
ok = all(len(l) == 72 and all(32 <= c < 127 for c in l) for l in lines)
d = socket.create_connection(("192.0.2.2", 9), timeout=10)
d.sendall(b"x" * (1 << 20))
d.close()
print("ok" if ok and len(lines) > 1000 else "bad chargen")
"#;
    let done = ns.run("python3", &["-c", script], PEER_DEADLINE);
    assert_eq!(done.stdout.trim(), "ok", "{}", done.describe());
    // The discard service may still be reading when asked to stop: give it a moment.
    std::thread::sleep(Duration::from_millis(300));
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.discard.tcp_bytes"), 1 << 20);
}

#[test]
fn echo_survives_the_loss_of_a_tenth_of_the_data_the_stack_sends() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3", "nft"], &[]) else {
        return;
    };
    // ../shared/DESIGN.md: drop on what the stack sends, in a netdev table on tap0's ingress.
    // (A drop on the kernel's output hook is no loss for Linux's TCP: the kernel sees the
    // drop at transmit time and sends the segment again at once.) Only packets that carry
    // data are dropped (IPv4 length over 100), so every drop needs a retransmission; with
    // offloads one packet here is a large segment of up to 64 KiB, so there are few of them,
    // and a tenth of them is dropped for the loss to be certain.
    let rules = "add table netdev loss\n\
                 add chain netdev loss in { type filter hook ingress device \"tap0\" priority 0; }\n\
                 add rule netdev loss in ip length > 100 numgen random mod 100 < 10 counter drop\n";
    let done = ns.run(
        "sh",
        &["-c", &format!("printf '{rules}' | nft -f -")],
        PEER_DEADLINE,
    );
    assert!(done.status.success(), "nft: {}", done.describe());
    echo_check(&ns, 8 << 20);
    let listed = ns.run("nft", &["list", "table", "netdev", "loss"], PEER_DEADLINE);
    let dropped: u64 = listed
        .stdout
        .split("counter packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {}", listed.describe()));
    let end = stack.stop_ok();
    // The loss was real and the stack repaired it: Linux never saw the dropped segments, so
    // the stack had to send them again.
    let resent = stat(&end, "tcp.connections.retransmissions");
    println!("{dropped} packets from the stack dropped; the stack retransmitted {resent} segments");
    assert!(dropped > 0, "nothing was dropped: {}", listed.describe());
    assert!(
        resent > 0,
        "dropped {dropped} but nothing was retransmitted"
    );
    assert_eq!(stat(&end, "service.echo.tcp_bytes"), 8 << 20);
}

/// Sends 2 MiB to the chargen service on one thread while reading its lines on another, then
/// closes its sending side and reads on to the end; prints how the stream ended (`fin`, `rst`
/// or `no end`), the bytes read, and whether they were all chargen text.
const CHARGEN_CLOSE: &str = r#"
import socket, sys, threading, time
ip, size = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((ip, 19), timeout=10)
sent = []
def writer():
    try:
        s.sendall(b"x" * size)
        sent.append(size)
    except OSError as e:
        sent.append(repr(e))
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=writer)
t.start()
got, text, end = 0, True, "no end"
start = time.monotonic()
try:
    while time.monotonic() - start < 30:
        b = s.recv(65536)
        if not b:
            end = "fin"
            break
        got += len(b)
        text = text and all(32 <= c < 127 or c in (10, 13) for c in b)
except ConnectionResetError:
    end = "rst"
except socket.timeout:
    end = "timeout"
t.join(10)
print(end, "sent", sent[0] if sent else "nothing", "text" if text else "not-text", got)
"#;

#[test]
fn chargen_discards_what_linux_sends_and_closes_with_fin() {
    // RFC 864: what the client sends is thrown away, and the stream ends when the client
    // closes. A chargen that never reads lets its window fill: Linux's send stalls, and the
    // close with unread data becomes a RST.
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &[]) else {
        return;
    };
    let size = (2 << 20).to_string();
    let done = ns.run(
        "python3",
        &["-c", CHARGEN_CLOSE, STACK_IP, &size],
        PEER_DEADLINE,
    );
    let words: Vec<&str> = done.stdout.split_whitespace().collect();
    assert_eq!(
        words.get(..4),
        Some(&["fin", "sent", size.as_str(), "text"][..]),
        "{}",
        done.describe()
    );
    let received: u64 = words[4].parse().unwrap();
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.chargen.tcp_discarded_bytes"), 2 << 20);
    // Read after every service thread ended: what chargen counted is what Linux received.
    assert_eq!(stat(&end, "service.chargen.tcp_bytes"), received);
    assert_eq!(stat(&end, "service.tcp.connections_open"), 0);
}

/// SIGUSR1 prints the connection table: a connection Linux holds open shows as ESTABLISHED
/// with its addresses and counters, one line each, like `ss -ti`.
#[test]
fn sigusr1_prints_one_line_per_tcp_connection() {
    let Some((ns, mut stack)) = Netstackd::start_gated(&["python3"], &[]) else {
        return;
    };
    let script = "import socket, time\ns = socket.create_connection(('192.0.2.2', 7), timeout=5)\ns.sendall(b'x')\nassert s.recv(1) == b'x'\nprint('held', flush=True)\ntime.sleep(4)\n";
    let mut holder = ns.spawn("python3", &["-c", script]);
    holder.wait_for_prefix("held", PEER_DEADLINE);
    stack.child().signal(libc::SIGUSR1);
    let header = stack
        .child()
        .wait_for_prefix("tcp connections:", PEER_DEADLINE);
    assert!(header.starts_with("tcp connections: 1"), "{header}");
    let line = stack.child().wait_for_prefix("tcp ", PEER_DEADLINE);
    assert!(
        line.contains("Established") && line.contains("192.0.2.2:7") && line.contains("cwnd:"),
        "{line}"
    );
    stack.stop_ok();
}

/// Our client over a TAP connects to an address in its subnet that nobody holds: ARP gives up
/// after three tries and the connect fails with HostUnreachable, as Linux reports it, within
/// seconds (not TimedOut after minutes of SYN retransmissions). The client is the runtime's
/// `echo_client` example, which `cargo test` builds.
#[test]
fn our_connect_to_a_dead_host_over_the_tap_fails_with_host_unreachable() {
    if !netstack_tests::system::require_system(&[]) {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let client = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join("echo_client"))
        .filter(|p| p.exists())
        .expect("target/<profile>/examples/echo_client: run `cargo test` (it builds the examples)");
    let ns = NetNs::new();
    let start = std::time::Instant::now();
    let done = ns.run(
        &client,
        &["192.0.2.99:7", "nstap0", "192.0.2.3/24"],
        Duration::from_secs(30),
    );
    let took = start.elapsed();
    assert!(
        done.stderr.contains("HostUnreachable"),
        "{}",
        done.describe()
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Reads 4 MiB from chargen on a connection whose MSS the kernel advertises as 900 (its route
/// says so), checks the text, prints the largest segment the kernel saw (`tcpi_rcv_mss`), then
/// sends 4 MiB to discard.
const OFFLOAD_CHECK: &str = r#"
import socket, struct
s = socket.create_connection(("192.0.2.2", 19), timeout=20)
buf = bytearray()
while len(buf) < 4 << 20:
    b = s.recv(1 << 20)
    if not b:
        break
    buf += b
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
rcv_mss = struct.unpack_from("I", info, 20)[0]
s.close()
lines = bytes(buf).split(b"\r\n")[:-1]
ok = len(buf) >= 4 << 20 and all(len(l) == 72 and all(32 <= c < 127 for c in l) for l in lines)
d = socket.create_connection(("192.0.2.2", 9), timeout=20)
d.sendall(b"y" * (4 << 20))
d.close()
print("%s rcv_mss %d" % ("ok" if ok else "bad chargen", rcv_mss))
"#;

#[test]
fn offloaded_segments_are_cut_at_the_peers_mss_and_coalesced_ones_are_taken() {
    use netstack_tests::peers::tshark_read;
    use netstack_tests::system::ScratchDir;
    let dir = ScratchDir::new("nst-offload");
    let pcap = dir.path().join("offload.pcap");
    let pcap_arg = pcap.to_str().expect("temp paths are UTF-8");
    let Some((ns, stack)) = Netstackd::start_gated(
        &["python3", "ip", "tshark"],
        &["--offload", "on", "--pcap", pcap_arg],
    ) else {
        return;
    };
    // The kernel announces an MSS of 900: every segment the device cuts from the stack's large
    // ones must fit it (900 less the 12 bytes of timestamps).
    let route = ns.run(
        "ip",
        &[
            "route",
            "replace",
            "192.0.2.0/24",
            "dev",
            "tap0",
            "src",
            "192.0.2.1",
            "advmss",
            "900",
        ],
        PEER_DEADLINE,
    );
    assert!(route.status.success(), "{}", route.describe());
    let done = ns.run("python3", &["-c", OFFLOAD_CHECK], PEER_DEADLINE);
    let out = done.stdout.trim().to_string();
    let rcv_mss: u64 = out
        .strip_prefix("ok rcv_mss ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", done.describe()));
    assert!(
        (500..=888).contains(&rcv_mss),
        "the kernel saw segments of {rcv_mss} bytes, above the MSS of 888 it asked for"
    );
    std::thread::sleep(Duration::from_millis(300));
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.discard.tcp_bytes"), 4 << 20);
    assert!(
        stat(&end, "link.tx_segmentation_offloaded") > 0,
        "no large segment went to the kernel: {:?}",
        end.stats
    );
    assert!(
        stat(&end, "link.rx_coalesced") > 0,
        "the kernel handed up no coalesced segment: {:?}",
        end.stats
    );
    assert_eq!(stat(&end, "tcp.endpoint.dropped_bad_checksum"), 0);
    // The capture records the large segments whole (see `CaptureDevice`); tshark reads it
    // without a malformed frame.
    let report = tshark_read(&pcap);
    assert!(
        report.malformed.is_empty(),
        "tshark found malformed frames:\n{}",
        report.malformed.join("\n")
    );
    assert!(report.lines.len() > 100, "{} frames", report.lines.len());
}

#[test]
fn with_offloads_off_frames_stay_plain_and_software_gro_merges() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &["--offload", "off"]) else {
        return;
    };
    let done = ns.run("python3", &["-c", OFFLOAD_CHECK], PEER_DEADLINE);
    assert!(
        done.stdout.trim().starts_with("ok rcv_mss "),
        "{}",
        done.describe()
    );
    std::thread::sleep(Duration::from_millis(300));
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.discard.tcp_bytes"), 4 << 20);
    assert_eq!(stat(&end, "link.tx_segmentation_offloaded"), 0);
    assert_eq!(stat(&end, "link.rx_coalesced"), 0);
    assert!(
        stat(&end, "runtime.gro_merged") > 0,
        "no segment was coalesced in software: {:?}",
        end.stats
    );
}

#[test]
fn a_multi_queue_tap_carries_several_connections_byte_for_byte() {
    let Some((ns, stack)) = Netstackd::start_gated(&["python3"], &["--queues", "2"]) else {
        return;
    };
    // Several connections at once, so the kernel's flow hash spreads them over both queues.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| echo_check(&ns, 2 << 20));
        }
    });
    let end = stack.stop_ok();
    assert_eq!(stat(&end, "service.echo.tcp_bytes"), 4 * (2 << 20));
}
