//! `nsws`: a WebSocket client (RFC 6455) that runs over its own user-space stack on a TAP.
//!
//! Lines in, messages out: each line of stdin is sent as a message, each message received is
//! printed on stdout. When stdin ends, nsws waits for the replies to stop coming (--linger),
//! then closes with 1000 and waits for the server's close.

use std::io::{self, BufRead, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::TryRecvError;
use netstack_application::http::Connector;
use netstack_application::stack_socket::http_connector;
use netstack_application::ws::{self, parse_ws_url, Message, WebSocket, WsConfig};
use netstack_bin::tool::{self, DeviceArgs, EXIT_INTERRUPTED};
use netstack_runtime::{StackHandle, TcpStream};

/// Exit statuses besides 0, 1, 2 and 130.
mod exit {
    /// The server refused the opening handshake or answered it wrongly.
    pub const HANDSHAKE: u8 = 3;
    /// The server broke the protocol; nsws failed the connection with a close code.
    pub const PROTOCOL: u8 = 4;
    /// The server closed with a code other than 1000, or without a close frame.
    pub const PEER_CLOSED: u8 = 5;
}

/// How long a read waits before nsws looks at stdin again.
const POLL: Duration = Duration::from_millis(20);
/// Lines read ahead of the socket.
const LINE_QUEUE: usize = 256;

/// A WebSocket client over netstack's own user-space TCP/IP stack on a TAP device.
///
/// nsws attaches to the TAP (creating it, with the kernel side at the subnet's first host,
/// when it is missing), opens ws://URL (a name is resolved by the stack's DNS resolver asking
/// --dns), sends each line of stdin (without its line end) as a text message, or binary with
/// --binary, and prints each message received on a line of stdout: text as it is, binary as
/// `[binary N bytes] HEX`. When stdin ends and no message came for --linger seconds, nsws
/// closes with 1000 (normal closure) and waits for the server's close.
///
/// Exit status: 0 stdin ended and the close handshake completed (or the server closed with
/// 1000); 3 the handshake was refused; 4 the server broke the protocol (the close code nsws
/// sent is named: 1002, 1007 or 1009); 5 the server closed with another code, or without a
/// close frame; 1 no connection or a stack failure; 2 a usage error; 130 interrupted.
#[derive(Debug, Parser)]
#[command(
    name = "nsws",
    version,
    about,
    after_help = "Examples (as root):\n  \
                  echo hello | nsws ws://192.0.2.1:8765/           one message, then close\n  \
                  nsws -v --protocol chat ws://echo.test/ws         type lines, Ctrl-D to close\n  \
                  printf 'a\\nb\\n' | nsws --binary ws://192.0.2.1:8765/"
)]
struct Args {
    /// The ws:// URL to connect to (no wss://: no TLS)
    #[arg(value_name = "URL")]
    url: String,

    /// Send each line as a binary message instead of text
    #[arg(long)]
    binary: bool,

    /// Offer this subprotocol (repeatable, most preferred first)
    #[arg(long = "protocol", value_name = "P", value_parser = parse_protocol)]
    protocols: Vec<String>,

    /// Report the connection, the chosen subprotocol and the close on stderr
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// After stdin ends, wait until no message has come for this long before closing
    #[arg(long, value_name = "SECS", default_value = "0.5", value_parser = tool::parse_seconds)]
    linger: Duration,

    /// How long the TCP connect and the opening handshake may take
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = tool::parse_seconds)]
    connect_timeout: Duration,

    /// The DNS server that resolves a name in the URL, IP or IP:PORT [default: the kernel side
    /// of the TAP, --host-addr or the first host of --addr's subnet, port 53]
    #[arg(long = "dns", value_name = "IP[:PORT]", value_parser = parse_dns)]
    dns: Option<SocketAddr>,

    #[command(flatten)]
    device: DeviceArgs,
}

fn parse_protocol(s: &str) -> Result<String, String> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if s.is_empty() || !s.chars().all(is_tchar) {
        return Err(
            "a subprotocol is a token (letters, digits and !#$%&'*+-.^_`|~), e.g. chat".into(),
        );
    }
    Ok(s.to_string())
}

fn parse_dns(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::from((ip, 53)));
    }
    match s.parse::<SocketAddr>() {
        Ok(a @ SocketAddr::V4(_)) if a.port() != 0 => Ok(a),
        _ => Err(
            "write an IPv4 address, optionally with a port, e.g. 192.0.2.1 or 192.0.2.1:5353"
                .into(),
        ),
    }
}

/// How a message is printed: text as it is, binary as its length and hex.
fn render(m: &Message) -> Option<String> {
    match m {
        Message::Text(t) => Some(t.clone()),
        Message::Binary(b) => {
            let mut s = format!("[binary {} bytes] ", b.len());
            for byte in b {
                s.push_str(&format!("{byte:02x}"));
            }
            Some(s)
        }
        Message::Close(_) => None,
    }
}

/// What the session's flags say, checked.
#[derive(Debug)]
struct Plan {
    url: String,
    binary: bool,
    protocols: Vec<String>,
    verbose: bool,
    linger: Duration,
    connect_timeout: Duration,
    dns: SocketAddr,
}

fn plan(args: &Args) -> Result<Plan, String> {
    args.device.check()?;
    parse_ws_url(&args.url)
        .map_err(|e| format!("URL {}: {e}; write ws://HOST[:PORT]/PATH", args.url))?;
    Ok(Plan {
        url: args.url.clone(),
        binary: args.binary,
        protocols: args.protocols.clone(),
        verbose: args.verbose,
        linger: args.linger,
        connect_timeout: args.connect_timeout,
        dns: args
            .dns
            .unwrap_or_else(|| SocketAddr::from((args.device.kernel_side().addr, 53))),
    })
}

fn open(stack: &StackHandle, plan: &Plan) -> Result<WebSocket<TcpStream>, (u8, String)> {
    let url = parse_ws_url(&plan.url).map_err(|e| (2, e.to_string()))?;
    let mut connector = http_connector(stack, Some(plan.dns));
    let stream = connector
        .connect(&url.host, url.port, plan.connect_timeout)
        .map_err(|e| (1, format!("connecting to {}:{}: {e}", url.host, url.port)))?;
    stream
        .set_read_timeout(Some(plan.connect_timeout))
        .map_err(|e| (1, e.to_string()))?;
    let protocols: Vec<&str> = plan.protocols.iter().map(String::as_str).collect();
    ws::connect(
        stream,
        &url.authority(),
        &url.target,
        &protocols,
        WsConfig::default(),
    )
    .map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::InvalidData => {
            (exit::HANDSHAKE, format!("handshake with {}: {e}", plan.url))
        }
        _ => (1, format!("handshake with {}: {e}", plan.url)),
    })
}

/// Reads stdin's lines on a thread of their own; the channel closes when stdin ends.
fn stdin_lines() -> crossbeam_channel::Receiver<Vec<u8>> {
    let (tx, rx) = crossbeam_channel::bounded(LINE_QUEUE);
    std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut lock = stdin.lock();
        loop {
            let mut line = Vec::new();
            match lock.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                        if line.last() == Some(&b'\r') {
                            line.pop();
                        }
                    }
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn print_line(s: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The session; returns the exit status.
fn session(stack: &StackHandle, plan: &Plan) -> u8 {
    let mut ws = match open(stack, plan) {
        Ok(ws) => ws,
        Err((code, msg)) => {
            eprintln!("nsws: {msg}");
            return code;
        }
    };
    if plan.verbose {
        eprintln!(
            "* connected to {} (subprotocol: {})",
            plan.url,
            ws.protocol().unwrap_or("none")
        );
    }
    let lines = stdin_lines();
    let mut stdin_open = true;
    let mut last_message = Instant::now();
    if let Err(e) = ws.get_ref().set_read_timeout(Some(POLL)) {
        eprintln!("nsws: {e}");
        return 1;
    }
    loop {
        // Send what stdin has so far.
        while stdin_open {
            match lines.try_recv() {
                Ok(line) => {
                    let sent = if plan.binary {
                        ws.send_binary(&line)
                    } else {
                        match String::from_utf8(line) {
                            Ok(text) => ws.send_text(&text),
                            Err(_) => {
                                eprintln!(
                                    "nsws: a line of stdin is not UTF-8; send it with --binary"
                                );
                                let _ = ws.close(1003, "");
                                return 1;
                            }
                        }
                    };
                    if let Err(e) = sent {
                        eprintln!("nsws: sending: {e}");
                        return exit::PEER_CLOSED;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    stdin_open = false;
                    last_message = Instant::now();
                }
            }
        }
        if !stdin_open && last_message.elapsed() >= plan.linger {
            if plan.verbose {
                eprintln!("* stdin ended; closing with 1000");
            }
            return match ws.close(1000, "") {
                Ok(()) => {
                    if plan.verbose {
                        eprintln!("* closed");
                    }
                    0
                }
                Err(e) => {
                    eprintln!("nsws: closing: {e}");
                    exit::PEER_CLOSED
                }
            };
        }
        match ws.read_message() {
            Ok(Message::Close(close)) => {
                return match close {
                    Some((1000, _)) | None => {
                        if plan.verbose {
                            eprintln!("* the server closed (normal closure)");
                        }
                        if stdin_open {
                            eprintln!("nsws: the server closed the connection before stdin ended");
                        }
                        0
                    }
                    Some((code, reason)) => {
                        eprintln!("nsws: the server closed with {code} `{reason}`");
                        exit::PEER_CLOSED
                    }
                };
            }
            Ok(m) => {
                last_message = Instant::now();
                if let Some(line) = render(&m) {
                    if let Err(e) = print_line(&line) {
                        eprintln!("nsws: writing stdout: {e}");
                        let _ = ws.close(1001, "");
                        return 1;
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let code = ws.failed_with().unwrap_or(1002);
                eprintln!(
                    "nsws: protocol error from the server: {e}; closed the connection with {code}"
                );
                return exit::PROTOCOL;
            }
            Err(e) => {
                eprintln!("nsws: the connection ended without a close frame: {e}");
                return exit::PEER_CLOSED;
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("nsws: error: {msg}");
            return ExitCode::from(2);
        }
    };
    tool::init_logging(args.device.log_level);
    let ran = tool::run_on_stack(&args.device, move |h| session(&h, &plan));
    tool::exit_code("nsws", ran.map(|code| code.unwrap_or(EXIT_INTERRUPTED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("nsws").chain(a.iter().copied()))
    }

    #[test]
    fn binary_messages_print_their_length_and_hex_and_text_as_it_is() {
        assert_eq!(
            render(&Message::Binary(vec![0, 0xab, 0x10])),
            Some("[binary 3 bytes] 00ab10".into())
        );
        assert_eq!(render(&Message::Text("héllo".into())), Some("héllo".into()));
        assert_eq!(render(&Message::Close(None)), None);
    }

    #[test]
    fn the_url_and_flags_are_checked_with_the_fix_named() {
        let p = plan(&parse(&["ws://192.0.2.1:8765/chat"]).unwrap()).unwrap();
        assert_eq!(p.dns, "192.0.2.1:53".parse().unwrap());
        assert_eq!(p.linger, Duration::from_millis(500));
        let e = plan(&parse(&["http://192.0.2.1/"]).unwrap()).unwrap_err();
        assert!(
            e.contains("URL http://192.0.2.1/") && e.contains("ws://HOST"),
            "{e}"
        );
        let e = plan(&parse(&["wss://192.0.2.1/"]).unwrap()).unwrap_err();
        assert!(e.contains("TLS"), "{e}");
        for (a, needle) in [
            (&["ws://x/", "--protocol", "a b"][..], "is a token"),
            (&["ws://x/", "--linger", "0"][..], "e.g. 2 or 0.5"),
            (&["ws://x/", "--dns", "x"][..], "e.g. 192.0.2.1"),
        ] {
            let msg = parse(a).unwrap_err().to_string();
            assert!(msg.contains(needle), "{a:?}: {msg}");
        }
        assert!(parse(&[]).is_err(), "URL is required");
    }
}
