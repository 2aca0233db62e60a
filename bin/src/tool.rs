//! What the command-line tools (`nsdig`, `nsudp`) share: the device flags, opening the device
//! and building a small stack on it, running the tool's work until it ends or Ctrl-C, and
//! waiting for a datagram to leave before the stack (and a device the tool created) goes.

use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack_runtime::config::{Ipv4Cidr, MacAddr};
use netstack_runtime::{Stack, StackHandle, StackStats};

use crate::args::{parse_cidr, parse_ifname, parse_ip, parse_level, parse_mac};
use crate::device::{self, default_host_addr, DeviceOptions};
use netstack_runtime::config::device::tap::TapOptions;

/// The TAP a tool attaches to unless told otherwise: not netstackd's `tap0`, so a tool can run
/// beside it.
pub const DEFAULT_TAP: &str = "nstap0";
/// How long a tool's stack may take to stop.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(1500);
/// Exit status after Ctrl-C interrupted a one-shot job (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The device and stack flags every tool takes. They are global, so they may come before or
/// after a subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArgs {
    /// TAP device to attach to; created (and removed again on exit) when missing
    #[arg(long, value_name = "NAME", default_value = DEFAULT_TAP, value_parser = parse_ifname,
          global = true)]
    pub tap: String,

    /// The tool's own stack address and prefix (not the kernel's)
    #[arg(long, value_name = "CIDR", default_value = "192.0.2.3/24", value_parser = parse_cidr,
          global = true)]
    pub addr: Ipv4Cidr,

    /// Address for the kernel side of the TAP, set and brought up by the tool [default: the
    /// first free host of --addr's subnet, e.g. 192.0.2.1/24, when the tool created the TAP;
    /// an existing TAP is left as it is]
    #[arg(long, value_name = "CIDR", value_parser = parse_cidr, global = true)]
    pub host_addr: Option<Ipv4Cidr>,

    /// Default gateway for destinations outside --addr's subnet (must be inside it)
    #[arg(long, value_name = "IP", value_parser = parse_ip, global = true)]
    pub gateway: Option<Ipv4Addr>,

    /// The stack's MAC address [default: a locally administered one derived from --addr]
    #[arg(long, value_name = "MAC", value_parser = parse_mac, global = true)]
    pub mac: Option<MacAddr>,

    /// Capture every frame in and out to this pcap file (tshark/Wireshark read it)
    #[arg(long, value_name = "FILE", global = true)]
    pub pcap: Option<PathBuf>,

    /// Log to stderr at this level: error, warn, info, debug, trace or off
    #[arg(long, value_name = "LEVEL", default_value = "warn", value_parser = parse_level,
          global = true)]
    pub log_level: log::LevelFilter,
}

impl DeviceArgs {
    /// Checks that need more than one flag; the error names the flags and the fix.
    pub fn check(&self) -> Result<(), String> {
        check_addresses(self.addr, self.host_addr, self.gateway)
    }

    /// The kernel side of the TAP: --host-addr, else the default the device layer gives a TAP
    /// it creates. On an existing TAP this is a guess (the first host of the subnet).
    pub fn kernel_side(&self) -> Ipv4Cidr {
        self.host_addr
            .unwrap_or_else(|| default_host_addr(self.addr))
    }
}

/// The cross-flag rules of --addr, --host-addr and --gateway (the same as netstackd's).
pub fn check_addresses(
    addr: Ipv4Cidr,
    host: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
) -> Result<(), String> {
    if let Some(gw) = gateway {
        if !addr.contains(gw) {
            return Err(format!(
                "--gateway {gw}: not inside --addr {addr}; give a gateway on that subnet"
            ));
        }
    }
    if let Some(host) = host {
        if host.addr == addr.addr {
            return Err(format!(
                "--host-addr {host}: the same address as --addr; give the kernel side another address, e.g. 192.0.2.1/24"
            ));
        }
        if !host.contains(addr.addr) {
            return Err(format!(
                "--host-addr {host}: --addr {addr} is not on that subnet, so the kernel could not reach the stack; use the same subnet"
            ));
        }
    }
    Ok(())
}

/// Sends log records to stderr at `level`.
pub fn init_logging(level: log::LevelFilter) {
    let _ = simplelog::TermLogger::init(
        level,
        simplelog::Config::default(),
        simplelog::TerminalMode::Stderr,
        simplelog::ColorChoice::Auto,
    );
}

/// Opens (or creates) the TAP and starts a small stack on it: one network and one transport
/// worker are plenty for a tool.
pub fn start_stack(d: &DeviceArgs) -> io::Result<Stack> {
    let opened = device::open(&DeviceOptions {
        name: d.tap.clone(),
        tun: false,
        stack_addr: d.addr,
        host_addr: d.host_addr,
        mtu: None,
        pcap: d.pcap.clone(),
        // A tool moves little data: plain frames.
        tap: TapOptions::plain(),
    })?;
    let mut builder = Stack::builder(opened.device, d.addr).workers(1, 1);
    if let Some(gw) = d.gateway {
        builder = builder.gateway(gw);
    }
    if let Some(mac) = d.mac {
        builder = builder.mac(mac);
    }
    builder.build()
}

/// How a tool's work ended.
pub enum Ended<T> {
    /// The work returned; the stack is still running, for the caller to shut down.
    Done(T, Stack),
    /// Ctrl-C (SIGINT or SIGTERM) came first; the stack has been shut down, which woke the
    /// work's blocked socket calls.
    Interrupted,
}

/// Runs `work` on its own thread until it returns or a signal arrives. A second signal exits
/// at once with [`EXIT_INTERRUPTED`].
pub fn run_until_interrupted<T, F>(stack: Stack, work: F) -> io::Result<Ended<T>>
where
    T: Send + 'static,
    F: FnOnce(StackHandle) -> T + Send + 'static,
{
    let (sig_tx, sig_rx) = crossbeam_channel::bounded::<()>(1);
    let signals = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        if signals.fetch_add(1, Ordering::SeqCst) >= 1 {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        let _ = sig_tx.try_send(());
    })
    .map_err(|e| io::Error::other(format!("installing the signal handler: {e}")))?;

    let (done_tx, done_rx) = crossbeam_channel::bounded::<T>(1);
    let handle = stack.handle();
    let worker = std::thread::Builder::new()
        .name("tool".into())
        .spawn(move || {
            let _ = done_tx.send(work(handle));
        })?;
    crossbeam_channel::select! {
        recv(done_rx) -> got => {
            let _ = worker.join();
            match got {
                Ok(t) => Ok(Ended::Done(t, stack)),
                Err(_) => Err(io::Error::other("the tool's worker thread panicked")),
            }
        }
        recv(sig_rx) -> _ => {
            log::info!("interrupted; shutting down");
            let result = stack.shutdown(SHUTDOWN_DEADLINE);
            // Closed sockets fail every blocked call, so the work ends promptly; if it does
            // not, the process exits without it.
            if done_rx.recv_timeout(SHUTDOWN_DEADLINE).is_ok() {
                let _ = worker.join();
            }
            result.map(|()| Ended::Interrupted)
        }
    }
}

/// Starts the tool's stack on `device`, runs `work` on it until it returns, then shuts the
/// stack down: the work's result, or `None` when a signal came first.
pub fn run_on_stack<T, F>(device: &DeviceArgs, work: F) -> io::Result<Option<T>>
where
    T: Send + 'static,
    F: FnOnce(StackHandle) -> T + Send + 'static,
{
    let stack = start_stack(device)?;
    match run_until_interrupted(stack, work)? {
        Ended::Done(t, stack) => {
            stack.shutdown(SHUTDOWN_DEADLINE)?;
            Ok(Some(t))
        }
        Ended::Interrupted => Ok(None),
    }
}

/// A tool's exit status from what its run returned: the code, or 1 with the error on stderr
/// as `tool: error: …`.
pub fn exit_code(tool: &str, result: io::Result<u8>) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("{tool}: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// IPv4 frames written to the device so far: every frame but ARP's.
fn ip_frames_out(s: &StackStats) -> u64 {
    s.link
        .frames_out
        .saturating_sub(s.link.arp_requests_out + s.link.arp_replies_out)
}

/// Packets given up on because their next hop never answered ARP.
fn unresolved(s: &StackStats) -> u64 {
    s.runtime.tx_host_unreachable + s.link.arp_unresolved_drops
}

/// What the stack's counters say about the datagrams handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// As many IPv4 frames left through the device as UDP sent datagrams.
    Left,
    /// A next hop never answered ARP: what waited for it was dropped.
    NextHopUnresolved,
    /// IPv4 refused a datagram (no route, too large for it).
    NotSent,
    /// Datagrams still waiting when the deadline passed.
    Pending,
}

/// Waits until the `datagrams` the tool handed to its sockets have left the device, or were
/// given up on. Shutting down sooner would drop a datagram still waiting for its next hop's
/// ARP reply (link TX drains its queue on shutdown, not the ARP queue). A UDP send is built by
/// the sending thread and queued for link TX directly, so the device's frame count is what
/// tells that it left.
///
/// Frames are compared with datagrams, so other IPv4 output (ICMP, further fragments) can
/// make this answer early: good enough for a tool that has just sent, not an exact count.
pub fn wait_sent(stack: &Stack, datagrams: u64, deadline: Duration) -> Departure {
    let until = Instant::now() + deadline;
    loop {
        let s = stack.stats();
        let handled = s.udp.tx_datagrams + s.udp.tx_errors >= datagrams;
        if handled && s.udp.tx_errors > 0 {
            return Departure::NotSent;
        }
        if unresolved(&s) > 0 {
            return Departure::NextHopUnresolved;
        }
        if handled && ip_frames_out(&s) >= s.udp.tx_datagrams {
            return Departure::Left;
        }
        if Instant::now() >= until {
            return Departure::Pending;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How long [`wait_sent`] may wait: long enough for ARP's three tries a second apart, which
/// give up after 3 s.
pub const SEND_DEADLINE: Duration = Duration::from_secs(4);

/// Seconds as a duration: a positive decimal number of at most an hour (`0.5`, `2`).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err("use a number of seconds above 0 and at most 3600, e.g. 2 or 0.5".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn gateway_outside_the_subnet_is_named_with_the_fix() {
        let e = check_addresses(
            cidr("192.0.2.3/24"),
            None,
            Some("198.51.100.1".parse().unwrap()),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "--gateway 198.51.100.1: not inside --addr 192.0.2.3/24; give a gateway on that subnet"
        );
    }

    #[test]
    fn host_address_must_differ_and_share_the_subnet() {
        let addr = cidr("192.0.2.3/24");
        let same = check_addresses(addr, Some(cidr("192.0.2.3/24")), None).unwrap_err();
        assert!(same.contains("the same address as --addr"), "{same}");
        let other = check_addresses(addr, Some(cidr("198.51.100.1/24")), None).unwrap_err();
        assert!(other.contains("not on that subnet"), "{other}");
        assert_eq!(
            check_addresses(addr, Some(cidr("192.0.2.1/24")), None),
            Ok(())
        );
    }

    #[test]
    fn seconds_accept_decimals_and_reject_zero_negative_and_words() {
        assert_eq!(parse_seconds("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        for bad in ["0", "-1", "x", "NaN", "inf", "3601"] {
            let e = parse_seconds(bad).unwrap_err();
            assert!(e.contains("e.g. 2 or 0.5"), "{bad}: {e}");
        }
    }

    /// Two stacks, 192.0.2.2 and 192.0.2.3, over the in-memory link; ARP gives up after three
    /// tries 50 ms apart.
    fn linked_stacks() -> (Stack, Stack) {
        use netstack_runtime::config::device::memory::{MemoryLink, MemoryLinkConfig};
        use netstack_runtime::config::NeighborConfig;
        let (da, db) = MemoryLink::pair(MemoryLinkConfig::default());
        let fast_arp = NeighborConfig {
            retry_interval: Duration::from_millis(50),
            ..NeighborConfig::default()
        };
        let build = |d, addr: &str| {
            Stack::builder(Arc::new(d), cidr(addr))
                .neighbor(fast_arp.clone())
                .build()
                .unwrap()
        };
        (build(da, "192.0.2.2/24"), build(db, "192.0.2.3/24"))
    }

    fn send_one(stack: &Stack, to: &str) {
        let s = netstack_runtime::UdpSocket::bind(stack, "0.0.0.0:0").unwrap();
        s.send_to(b"one", to).unwrap();
    }

    #[test]
    fn wait_sent_sees_the_datagram_leave_once_arp_resolves() {
        let (a, _b) = linked_stacks();
        send_one(&a, "192.0.2.3:9");
        assert_eq!(wait_sent(&a, 1, SEND_DEADLINE), Departure::Left);
        assert_eq!(a.stats().udp.tx_datagrams, 1);
    }

    #[test]
    fn wait_sent_reports_a_next_hop_that_never_answers_arp() {
        let (a, _b) = linked_stacks();
        send_one(&a, "192.0.2.50:9");
        let started = Instant::now();
        assert_eq!(
            wait_sent(&a, 1, SEND_DEADLINE),
            Departure::NextHopUnresolved
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn wait_sent_gives_up_at_its_deadline_while_arp_is_still_trying() {
        let (a, _b) = linked_stacks();
        send_one(&a, "192.0.2.50:9");
        // Three tries 50 ms apart outlast a 20 ms deadline.
        assert_eq!(
            wait_sent(&a, 1, Duration::from_millis(20)),
            Departure::Pending
        );
    }

    #[test]
    fn the_kernel_side_defaults_to_the_first_host_of_the_subnet() {
        let d = DeviceArgs {
            tap: DEFAULT_TAP.into(),
            addr: cidr("192.0.2.3/24"),
            host_addr: None,
            gateway: None,
            mac: None,
            pcap: None,
            log_level: log::LevelFilter::Warn,
        };
        assert_eq!(d.kernel_side(), cidr("192.0.2.1/24"));
        let given = DeviceArgs {
            host_addr: Some(cidr("192.0.2.9/24")),
            ..d
        };
        assert_eq!(given.kernel_side(), cidr("192.0.2.9/24"));
    }
}
