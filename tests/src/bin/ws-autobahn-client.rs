//! Drives the Autobahn testsuite's fuzzing server (`wstest -m fuzzingserver`) with netstack's
//! WebSocket client: asks `/getCaseCount`, runs each case at `/runCase?case=N&agent=A` by
//! echoing every message until the server closes, then asks `/updateReports?agent=A` so the
//! server writes its report. Over the kernel's TCP (std::net): what is under test is the
//! client's RFC 6455 code.
//!
//! `ws-autobahn-client [BASE_URL] [AGENT]` (defaults `ws://127.0.0.1:9001`, `netstack`).
//! Exit status 0 once the reports were asked for; a case that fails to open is printed and
//! counted, not fatal (the report says what happened).

use std::io;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use netstack_application::ws::{self, Message, WebSocket};

/// How long one read may block: the slowest cases (9.*) send 16 MiB messages.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

fn open(url: &str) -> io::Result<WebSocket<TcpStream>> {
    ws::connect_url(url, |host, port| {
        let s = TcpStream::connect((host, port))?;
        s.set_read_timeout(Some(READ_TIMEOUT))?;
        s.set_nodelay(true)?;
        Ok(s)
    })
}

fn run(base: &str, agent: &str) -> io::Result<u32> {
    let mut c = open(&format!("{base}/getCaseCount"))?;
    let count: u32 = match c.read_message()? {
        Message::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("case count {t:?}")))?,
        m => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("case count: {m:?}"),
            ))
        }
    };
    let _ = c.read_message();
    let mut failed_to_open = 0;
    for case in 1..=count {
        let mut w = match open(&format!("{base}/runCase?case={case}&agent={agent}")) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("case {case}: {e}");
                failed_to_open += 1;
                continue;
            }
        };
        loop {
            match w.read_message() {
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(m) => {
                    if w.send(m).is_err() {
                        break;
                    }
                }
            }
        }
    }
    let mut u = open(&format!("{base}/updateReports?agent={agent}"))?;
    let _ = u.read_message();
    println!("ran {count} cases ({failed_to_open} did not open)");
    Ok(count)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "netstack".into());
    match run(&base, &agent) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ws-autobahn-client: {e}");
            ExitCode::FAILURE
        }
    }
}
