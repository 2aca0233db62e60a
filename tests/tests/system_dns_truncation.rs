//! System tests of the resolver's and the forwarder's retry over TCP (RFC 1035 §4.2.2,
//! RFC 7766 §5), over netstack's own UDP and TCP sockets, with dnsmasq on the kernel side as
//! the upstream whose UDP answers are truncated.
//!
//! The stack runs in this test process: a short-lived thread enters the test's namespace
//! (`setns`) only to open the TAP there, so the device (and every frame the stack sends) lives
//! in the namespace; the stack's own threads and the DNS code run as in netstackd. dnsmasq and
//! dig run inside the namespace, on the kernel side of the TAP.
//!
//! Each test is gated by `require_system` (root, /dev/net/tun, `ip` and the tools it names):
//! skipped loudly without them, failed under NETSTACK_REQUIRE_SYSTEM_TESTS=1.
//! ```text
//! cargo test -p netstack-tests --test system_dns_truncation
//! ```

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use netstack_application::dns::resolver::ResolverStats;
use netstack_application::dns::socket::{resolve_with_tcp, serve_forwarding_with_tcp};
use netstack_application::dns::{
    random_seed, Catalog, Name, RData, RecordType, Resolver, ResolverConfig, ServerStats,
};
use netstack_application::stack_socket::tcp_connector;
use netstack_link::device::TapDevice;
use netstack_runtime::{Stack, StackHandle, UdpSocket};
use netstack_tests::dig::DigResponse;
use netstack_tests::netns::{NetNs, NsChild};
use netstack_tests::system::require_system;

const TAP: &str = "nstrunc0";
const KERNEL_IP: &str = "192.0.2.1";
const STACK_CIDR: &str = "192.0.2.2/24";
const STACK_IP: &str = "192.0.2.2";
/// How long dnsmasq may take to print its `started` line.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long a lookup (UDP tries, then TCP) or a dig run may take.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(15);
/// How long the stack may take to shut down.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(2);

/// `count` TXT strings of `len` octets each, the ith made of the letter `a` + i.
fn strings(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| char::from(b'a' + i as u8).to_string().repeat(len))
        .collect()
}

/// big.test: one TXT record of about 800 octets, over a plain 512-octet UDP answer and under
/// EDNS0's 1232. huge.test: about 2000, over both.
fn big() -> Vec<String> {
    strings(4, 200)
}

fn huge() -> Vec<String> {
    strings(8, 250)
}

/// A namespace with a TAP (kernel side 192.0.2.1/24), dnsmasq serving big.test and huge.test
/// on it over UDP and TCP, and a stack at 192.0.2.2 attached to the TAP. Dropped, the stack
/// shuts down before dnsmasq and the namespace go.
struct Setup {
    stack: Option<Stack>,
    _dnsmasq: NsChild,
    ns: NetNs,
}

impl Setup {
    fn start() -> Setup {
        let ns = NetNs::new();
        let d = Duration::from_secs(5);
        ns.run_ok("ip", &["tuntap", "add", "dev", TAP, "mode", "tap"], d);
        ns.run_ok("ip", &["addr", "add", "192.0.2.1/24", "dev", TAP], d);
        ns.run_ok("ip", &["link", "set", TAP, "up"], d);
        let script = format!(
            "exec dnsmasq --no-daemon --conf-file=/dev/null --pid-file= --no-resolv --no-hosts \
             --bind-interfaces --listen-address={KERNEL_IP} --port 53 --local=/test/ \
             --txt-record=big.test,{} --txt-record=huge.test,{} \
             --log-queries --log-facility=- 2>&1",
            big().join(","),
            huge().join(",")
        );
        let mut dnsmasq = ns.spawn("sh", &["-c", &script]);
        dnsmasq.wait_for_line("dnsmasq's `started` line", READY_DEADLINE, |l| {
            l.contains("dnsmasq") && l.contains("started")
        });
        let tap = open_tap_in(&ns);
        let stack = Stack::builder(Arc::new(tap), STACK_CIDR.parse().expect("a literal CIDR"))
            .workers(1, 1)
            .build()
            .expect("a stack on the namespace's TAP");
        Setup {
            stack: Some(stack),
            _dnsmasq: dnsmasq,
            ns,
        }
    }

    fn handle(&self) -> StackHandle {
        self.stack.as_ref().expect("running").handle()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.take() {
            let _ = stack.shutdown(SHUTDOWN_DEADLINE);
        }
    }
}

/// Opens the TAP from a thread that first enters `ns`, so the device is the namespace's and
/// never the root namespace's; the thread ends right after.
fn open_tap_in(ns: &NetNs) -> TapDevice {
    let path = format!("/var/run/netns/{}", ns.name());
    within(10, "opening the TAP inside the namespace", move || {
        let f = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a valid namespace descriptor; CLONE_NEWNET moves only this thread.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "setns into {path}: {}",
            std::io::Error::last_os_error()
        );
        TapDevice::open(TAP).unwrap_or_else(|e| panic!("opening {TAP} in {path}: {e}"))
    })
}

/// Runs `f` on a thread and waits at most `secs` for it: a hang fails naming `what`.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

fn upstream() -> SocketAddr {
    (KERNEL_IP.parse::<Ipv4Addr>().unwrap(), 53).into()
}

/// The TXT strings of every TXT record in `records`, in order.
fn txt_strings<'a>(
    records: impl IntoIterator<Item = &'a netstack_application::dns::Record>,
) -> Vec<String> {
    records
        .into_iter()
        .flat_map(|r| match &r.data {
            RData::Txt(parts) => parts
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect(),
            _ => vec![],
        })
        .collect()
}

#[test]
fn resolver_over_the_stack_gets_a_truncated_answer_whole_over_tcp() {
    if !require_system(&["dnsmasq", "sh"]) {
        return;
    }
    let setup = Setup::start();
    let h = setup.handle();
    let (result, stats) = within(
        LOOKUP_DEADLINE.as_secs(),
        "lookup of huge.test",
        move || {
            // EDNS0 (1232 octets) on, as by default: 2000 octets still do not fit.
            let mut r = Resolver::new(ResolverConfig::new(vec![upstream()]), random_seed());
            let mut new_socket = |_| UdpSocket::bind(&h, "0.0.0.0:0");
            let result = resolve_with_tcp(
                &mut r,
                &mut new_socket,
                &mut tcp_connector(&h),
                Name::from_ascii("huge.test").unwrap(),
                RecordType::TXT,
            );
            (result, r.stats())
        },
    );
    let answer = result.unwrap_or_else(|e| panic!("lookup failed: {e}; {stats:?}"));
    assert_eq!(txt_strings(&answer.records), huge());
    assert!(!answer.response.expect("from the upstream").header.tc);
    assert_eq!(
        (stats.truncated, stats.tcp_retries, stats.tcp_failures),
        (1, 1, 0),
        "{stats:?}"
    );
}

/// A forwarder on the stack's UDP port 53 in front of dnsmasq, asking plain 512-octet
/// queries upstream (`edns_payload: None`) and retrying over TCP within `tcp_timeout`.
/// Returns its stop flag and a receiver for its resolver's counters once it stops.
fn start_forwarder(
    h: &StackHandle,
    tcp_timeout: Duration,
) -> (Arc<AtomicBool>, mpsc::Receiver<ResolverStats>) {
    let socket = UdpSocket::bind(h, (Ipv4Addr::UNSPECIFIED, 53)).expect("UDP port 53 on the stack");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (h, stop2) = (h.clone(), stop.clone());
    thread::spawn(move || {
        let config = ResolverConfig {
            edns_payload: None,
            tcp_timeout: Some(tcp_timeout),
            ..ResolverConfig::new(vec![upstream()])
        };
        let mut resolver = Resolver::new(config, random_seed());
        let stats = Mutex::new(ServerStats::default());
        let new_socket = |_| UdpSocket::bind(&h, "0.0.0.0:0");
        let r = serve_forwarding_with_tcp(
            &socket,
            &Catalog::new(),
            &mut resolver,
            new_socket,
            tcp_connector(&h),
            &stats,
            &stop2,
        );
        if let Err(e) = r {
            eprintln!("forwarder ended: {e}");
        }
        let _ = tx.send(resolver.stats());
    });
    (stop, rx)
}

fn stop_forwarder(stop: &AtomicBool, stats: &mpsc::Receiver<ResolverStats>) -> ResolverStats {
    stop.store(true, Ordering::Relaxed);
    stats
        .recv_timeout(Duration::from_secs(5))
        .expect("the forwarder did not stop within 5 s")
}

/// dig in the namespace asks the stack's forwarder for `name` TXT, once, without retrying a
/// truncated answer over TCP itself (+ignore), so what it prints is what the forwarder sent.
fn dig_forwarder(ns: &NetNs, name: &str) -> (DigResponse, String, Duration) {
    let started = Instant::now();
    let out = ns.run(
        "dig",
        &[
            &format!("@{STACK_IP}"),
            name,
            "TXT",
            "+ignore",
            "+tries=1",
            "+time=8",
        ],
        LOOKUP_DEADLINE,
    );
    let took = started.elapsed();
    let r = DigResponse::parse(&out.stdout)
        .unwrap_or_else(|| panic!("no response from the forwarder: {}", out.describe()));
    (r, out.stdout, took)
}

#[test]
fn forwarder_over_the_stack_retries_over_tcp_and_dig_gets_the_whole_answer() {
    if !require_system(&["dnsmasq", "dig", "sh"]) {
        return;
    }
    let setup = Setup::start();
    let (stop, stats) = start_forwarder(&setup.handle(), Duration::from_secs(5));
    let (r, out, _) = dig_forwarder(&setup.ns, "big.test");
    let stats = stop_forwarder(&stop, &stats);
    assert_eq!(r.status, "NOERROR", "{out}");
    assert!(!r.has_flag("tc"), "{out}");
    assert_eq!(r.answer.len(), 1, "{out}");
    for s in big() {
        assert!(r.answer[0].contains(&s), "{out}");
    }
    assert_eq!(
        (stats.truncated, stats.tcp_retries, stats.tcp_failures),
        (1, 1, 0),
        "{stats:?}"
    );
}

#[test]
fn forwarder_over_the_stack_relays_the_truncated_answer_when_tcp_is_dropped() {
    if !require_system(&["dnsmasq", "dig", "nft", "sh"]) {
        return;
    }
    let setup = Setup::start();
    // The kernel side drops every TCP segment to port 53: the retry's SYNs go unanswered.
    let d = Duration::from_secs(5);
    setup.ns.run_ok(
        "nft",
        &["add table inet dnstrunc; \
             add chain inet dnstrunc input { type filter hook input priority 0; }; \
             add rule inet dnstrunc input tcp dport 53 drop"],
        d,
    );
    let tcp_timeout = Duration::from_secs(1);
    let (stop, stats) = start_forwarder(&setup.handle(), tcp_timeout);
    let (r, out, took) = dig_forwarder(&setup.ns, "big.test");
    let stats = stop_forwarder(&stop, &stats);
    assert_eq!(r.status, "NOERROR", "{out}");
    assert!(r.has_flag("tc"), "the truncated answer, TC set: {out}");
    assert!(
        took >= tcp_timeout && took < Duration::from_secs(5),
        "the forwarder answered after {took:?}: {out}"
    );
    assert_eq!(
        (stats.tcp_retries, stats.tcp_failures, stats.tcp_timeouts),
        (1, 1, 1),
        "{stats:?}"
    );
}
