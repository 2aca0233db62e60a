//! `nsudp`: send and receive UDP datagrams over its own user-space stack on a TAP: a client
//! (`send`), a receiver (`listen`) and an echo server (`echo`, RFC 862).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use netstack_bin::args::parse_port;
use netstack_bin::tool::{self, Departure, DeviceArgs, Ended, EXIT_INTERRUPTED};
use netstack_runtime::{Stack, StackHandle, UdpSocket};

/// The most payload one UDP datagram over IPv4 carries (65,535 less the IPv4 and UDP headers).
const MAX_DATAGRAM: usize = 65_507;
/// Exit status when `send --wait` got no reply (the same as nsdig's and dig's).
const EXIT_NO_REPLY: u8 = 9;

/// Send and receive UDP datagrams over netstack's own user-space TCP/IP stack on a TAP device.
///
/// nsudp attaches to the TAP (creating it, with the kernel side at the subnet's first host,
/// when it is missing; a TAP it created goes away when it exits). Received datagrams are
/// printed one per line as `SOURCE LEN bytes: PAYLOAD`, the payload escaped as in Rust's
/// escape_ascii (`\n`, `\x00`, …), unless --raw. Status lines go to stderr.
///
/// Exit status: 0 on success (listen and echo also after Ctrl-C), 9 when `send --wait` got no
/// reply, 1 when something failed (the message names it), 2 for a usage error, 130 when Ctrl-C
/// interrupted a send.
#[derive(Debug, Parser)]
#[command(
    name = "nsudp",
    version,
    about,
    after_help = "Examples (as root):\n  nsudp echo 7                                serve echo; from the kernel side: echo hi | nc -u -w1 192.0.2.3 7\n  \
                  nsudp listen 5000 --count 1                 print one datagram and exit\n  \
                  nsudp send 192.0.2.1:5000 hello             send one datagram\n  \
                  echo hi | nsudp send 192.0.2.1:7 --wait     send stdin, wait for the reply and print it"
)]
struct Args {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one datagram: MESSAGE, or all of stdin when MESSAGE is absent
    Send {
        /// Destination IPv4 address and port, e.g. 192.0.2.1:5000
        #[arg(value_name = "HOST:PORT", value_parser = parse_destination)]
        to: SocketAddrV4,
        /// The payload (stdin is read when absent)
        message: Option<String>,
        /// Wait for one reply from HOST:PORT and print it
        #[arg(long)]
        wait: bool,
        /// Seconds to wait for the reply with --wait (decimals allowed)
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = tool::parse_seconds)]
        timeout: Duration,
        /// Send from this UDP port [default: an ephemeral one]
        #[arg(long, value_name = "PORT", value_parser = parse_port)]
        source_port: Option<u16>,
        /// Print the reply's payload bytes as they are, without the source line
        #[arg(long)]
        raw: bool,
    },
    /// Print every datagram that arrives on PORT with its source, until Ctrl-C
    Listen {
        #[arg(value_name = "PORT", value_parser = parse_port)]
        port: u16,
        /// Exit after this many datagrams
        #[arg(long, value_name = "N", value_parser = parse_count)]
        count: Option<u64>,
        /// Write the payload bytes as they are, without the source line
        #[arg(long)]
        raw: bool,
    },
    /// Send every datagram that arrives on PORT back to its source (RFC 862), until Ctrl-C
    Echo {
        #[arg(value_name = "PORT", value_parser = parse_port)]
        port: u16,
        /// Exit after echoing this many datagrams
        #[arg(long, value_name = "N", value_parser = parse_count)]
        count: Option<u64>,
    },
}

fn parse_destination(s: &str) -> Result<SocketAddrV4, String> {
    let to: SocketAddrV4 = s
        .parse()
        .map_err(|_| "write an IPv4 address and a port, e.g. 192.0.2.1:5000".to_string())?;
    if to.port() == 0 {
        return Err("port 0 cannot be sent to; use a port from 1 to 65535".into());
    }
    Ok(to)
}

fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("use a number of datagrams from 1 up, e.g. 1".into()),
    }
}

/// `SOURCE LEN bytes: PAYLOAD`, the payload escaped so one datagram is one line.
fn datagram_line(from: SocketAddr, payload: &[u8]) -> String {
    format!(
        "{from} {} bytes: {}\n",
        payload.len(),
        payload.escape_ascii()
    )
}

fn write_datagram(
    out: &mut impl Write,
    from: SocketAddr,
    payload: &[u8],
    raw: bool,
) -> io::Result<()> {
    if raw {
        out.write_all(payload)?;
    } else {
        out.write_all(datagram_line(from, payload).as_bytes())?;
    }
    out.flush()
}

/// Reads stdin whole; more than one datagram holds is an error.
fn read_payload(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    input.take(MAX_DATAGRAM as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_DATAGRAM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "stdin holds more than {MAX_DATAGRAM} bytes, the most one UDP datagram carries"
            ),
        ));
    }
    Ok(buf)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(msg) = args.device.check().and_then(|()| check_route(&args)) {
        eprintln!("nsudp: error: {msg}");
        return ExitCode::from(2);
    }
    tool::init_logging(args.device.log_level);
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("nsudp: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A destination off the stack's subnet is reachable only through a gateway.
fn check_route(args: &Args) -> Result<(), String> {
    let Command::Send { to, .. } = &args.command else {
        return Ok(());
    };
    let d = &args.device;
    if !d.addr.contains(*to.ip()) && !to.ip().is_broadcast() && d.gateway.is_none() {
        return Err(format!(
            "{to}: outside --addr {}; give --gateway IP to reach it, or send on that subnet",
            d.addr
        ));
    }
    Ok(())
}

fn run(args: &Args) -> io::Result<u8> {
    // stdin first: nothing is set up while it is read, so Ctrl-C there simply ends nsudp.
    let payload = match &args.command {
        Command::Send {
            message: Some(m), ..
        } => m.clone().into_bytes(),
        Command::Send { message: None, .. } => read_payload(&mut io::stdin().lock())?,
        _ => Vec::new(),
    };
    let stack = tool::start_stack(&args.device)?;
    let where_ = format!(
        "tap {}, kernel side {}",
        args.device.tap,
        args.device.kernel_side()
    );
    match args.command {
        Command::Send {
            to,
            wait,
            timeout,
            source_port,
            raw,
            ..
        } => {
            let job = SendJob {
                to,
                payload,
                wait: wait.then_some(timeout),
                source_port,
            };
            send(stack, job, raw)
        }
        Command::Listen { port, count, raw } => {
            eprintln!(
                "nsudp: listening on udp {}:{port} ({where_}); Ctrl-C stops",
                args.device.addr.addr
            );
            serve(stack, port, count, Mode::Listen { raw })
        }
        Command::Echo { port, count } => {
            eprintln!(
                "nsudp: echoing on udp {}:{port} ({where_}); Ctrl-C stops",
                args.device.addr.addr
            );
            serve(stack, port, count, Mode::Echo)
        }
    }
}

struct SendJob {
    to: SocketAddrV4,
    payload: Vec<u8>,
    /// How long to wait for a reply, when one is wanted.
    wait: Option<Duration>,
    source_port: Option<u16>,
}

/// What a send got back.
enum Sent {
    /// Sent from this address; no reply asked for.
    From(SocketAddr),
    Reply(SocketAddr, Vec<u8>),
    NoReply(Duration),
}

fn send_once(h: &StackHandle, job: &SendJob) -> io::Result<Sent> {
    let socket = UdpSocket::bind(h, ("0.0.0.0", job.source_port.unwrap_or(0)))?;
    // Connected, so only the destination's reply counts and an ICMP port unreachable
    // surfaces as ConnectionRefused.
    socket.connect(job.to)?;
    socket.send(&job.payload)?;
    // The socket is bound to every address of the stack; the stack has one.
    let local = SocketAddr::from((h.config().addr.addr, socket.local_addr()?.port()));
    let Some(timeout) = job.wait else {
        return Ok(Sent::From(local));
    };
    socket.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => Ok(Sent::Reply(from, buf[..n].to_vec())),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Sent::NoReply(timeout)),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(io::Error::new(
            e.kind(),
            format!("{}: nothing listens there (ICMP port unreachable)", job.to),
        )),
        Err(e) if e.kind() == io::ErrorKind::HostUnreachable => Err(io::Error::new(
            e.kind(),
            format!(
                "{}: host unreachable (it, or the gateway, never answered ARP)",
                job.to
            ),
        )),
        Err(e) => Err(e),
    }
}

fn send(stack: Stack, job: SendJob, raw: bool) -> io::Result<u8> {
    let (to, len) = (job.to, job.payload.len());
    let (sent, stack) = match tool::run_until_interrupted(stack, move |h| send_once(&h, &job))? {
        Ended::Done(sent, stack) => (sent, stack),
        Ended::Interrupted => return Ok(EXIT_INTERRUPTED),
    };
    let sent = match sent {
        Ok(s) => s,
        Err(e) => {
            let _ = stack.shutdown(tool::SHUTDOWN_DEADLINE);
            return Err(e);
        }
    };
    let code = match sent {
        Sent::From(local) => match tool::wait_sent(&stack, 1, tool::SEND_DEADLINE) {
            Departure::Left => {
                eprintln!("nsudp: sent {len} bytes to {to} from {local}");
                0
            }
            other => {
                let _ = stack.shutdown(tool::SHUTDOWN_DEADLINE);
                return Err(io::Error::other(departure_error(other, to)));
            }
        },
        Sent::Reply(from, payload) => {
            write_datagram(&mut io::stdout().lock(), from, &payload, raw)?;
            0
        }
        Sent::NoReply(after) => {
            eprintln!("nsudp: no reply from {to} within {after:?}");
            EXIT_NO_REPLY
        }
    };
    stack.shutdown(tool::SHUTDOWN_DEADLINE)?;
    Ok(code)
}

fn departure_error(d: Departure, to: SocketAddrV4) -> String {
    match d {
        Departure::NextHopUnresolved => format!(
            "{to}: the next hop never answered ARP, so the datagram was dropped; is the host (or --gateway) up on the TAP?"
        ),
        Departure::NotSent => format!("{to}: the stack could not send the datagram (no route, or too large)"),
        Departure::Pending | Departure::Left => format!(
            "{to}: the datagram had not left after {:?} (still waiting for ARP)",
            tool::SEND_DEADLINE
        ),
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    Listen { raw: bool },
    Echo,
}

/// Datagrams and bytes handled by `listen` or `echo`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    datagrams: u64,
    bytes: u64,
}

/// Receives until `count` datagrams were handled or the stack shuts down (Ctrl-C). Returns the
/// tally and the error that ended it, if any other than the shutdown.
fn serve_loop(socket: &UdpSocket, count: Option<u64>, mode: Mode) -> (Tally, Option<io::Error>) {
    let mut tally = Tally::default();
    let mut buf = vec![0u8; MAX_DATAGRAM + 1];
    let mut out = io::stdout().lock();
    while count.is_none_or(|c| tally.datagrams < c) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // The stack has shut down: Ctrl-C.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => break,
            Err(e) => return (tally, Some(e)),
        };
        let result = match mode {
            Mode::Listen { raw } => write_datagram(&mut out, from, &buf[..n], raw),
            Mode::Echo => socket.send_to(&buf[..n], from).map(|_| ()),
        };
        if let Err(e) = result {
            return (tally, Some(e));
        }
        tally.datagrams += 1;
        tally.bytes += n as u64;
    }
    (tally, None)
}

fn serve(stack: Stack, port: u16, count: Option<u64>, mode: Mode) -> io::Result<u8> {
    let socket = UdpSocket::bind(&stack, ("0.0.0.0", port))?;
    let reader = socket.try_clone()?;
    let tally_of = |t: Tally| {
        let verb = match mode {
            Mode::Listen { .. } => "received",
            Mode::Echo => "echoed",
        };
        eprintln!(
            "nsudp: {verb} {} datagrams ({} bytes)",
            t.datagrams, t.bytes
        );
    };
    // The socket outlives the worker thread's clone, so the tally survives an interrupt.
    let (tally_tx, tally_rx) = crossbeam_channel::bounded(1);
    let ended = tool::run_until_interrupted(stack, move |_| {
        let (t, err) = serve_loop(&reader, count, mode);
        let _ = tally_tx.send(t);
        err
    })?;
    let tally = tally_rx.try_recv().unwrap_or_default();
    drop(socket);
    match ended {
        Ended::Done(err, stack) => {
            if matches!(mode, Mode::Echo) {
                // The last echo may still wait for ARP.
                let _ = tool::wait_sent(&stack, tally.datagrams, tool::SEND_DEADLINE);
            }
            stack.shutdown(tool::SHUTDOWN_DEADLINE)?;
            tally_of(tally);
            match err {
                Some(e) => Err(e),
                None => Ok(0),
            }
        }
        Ended::Interrupted => {
            tally_of(tally);
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("nsudp").chain(a.iter().copied()))
    }

    #[test]
    fn device_flags_go_before_or_after_the_subcommand() {
        let a = parse(&["--tap", "t1", "echo", "7"]).unwrap();
        assert_eq!(a.device.tap, "t1");
        let a = parse(&["listen", "5000", "--tap", "t2", "--addr", "192.0.2.9/24"]).unwrap();
        assert_eq!(a.device.tap, "t2");
        assert_eq!(a.device.addr.to_string(), "192.0.2.9/24");
        let a = parse(&["send", "192.0.2.1:9", "hi"]).unwrap();
        assert_eq!(a.device.tap, "nstap0");
    }

    #[test]
    fn usage_errors_name_the_value_and_the_fix() {
        for (a, needle) in [
            (&["send", "192.0.2.1"][..], "e.g. 192.0.2.1:5000"),
            (&["send", "host.test:53"][..], "e.g. 192.0.2.1:5000"),
            (&["send", "192.0.2.1:0"][..], "port 0 cannot be sent to"),
            (&["listen", "0"][..], "1 to 65535"),
            (&["echo", "7", "--count", "0"][..], "from 1 up"),
            (
                &["send", "192.0.2.1:9", "--timeout", "0"][..],
                "e.g. 2 or 0.5",
            ),
            (&["frobnicate"][..], "unrecognized subcommand"),
        ] {
            let msg = parse(a).unwrap_err().to_string();
            assert!(msg.contains(needle), "{a:?}: {msg}");
        }
    }

    #[test]
    fn off_subnet_destinations_need_a_gateway() {
        let a = parse(&["send", "198.51.100.7:9", "x"]).unwrap();
        assert!(check_route(&a).unwrap_err().contains("give --gateway"));
        let a = parse(&["send", "198.51.100.7:9", "x", "--gateway", "192.0.2.1"]).unwrap();
        assert_eq!(check_route(&a), Ok(()));
        assert_eq!(a.device.check(), Ok(()));
    }

    #[test]
    fn a_datagram_is_one_escaped_line_with_its_source() {
        let from: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert_eq!(
            datagram_line(from, b"hi\n\x00\"x"),
            "192.0.2.1:40000 6 bytes: hi\\n\\x00\\\"x\n"
        );
        let mut raw = Vec::new();
        write_datagram(&mut raw, from, b"a\nb", true).unwrap();
        assert_eq!(raw, b"a\nb");
    }

    #[test]
    fn stdin_larger_than_one_datagram_is_refused() {
        let ok = read_payload(&mut &vec![7u8; MAX_DATAGRAM][..]).unwrap();
        assert_eq!(ok.len(), MAX_DATAGRAM);
        let e = read_payload(&mut &vec![7u8; MAX_DATAGRAM + 1][..]).unwrap_err();
        assert!(e.to_string().contains("more than 65507 bytes"), "{e}");
    }
}
