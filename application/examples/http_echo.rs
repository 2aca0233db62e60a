//! An HTTP/1.1 echo server over `std::net`: any method on any path is answered `200` with the
//! request body (chunked request bodies arrive decoded). For trying the server with curl, ab
//! or wrk without a TAP device:
//!
//! ```sh
//! cargo run -p netstack-application --example http_echo -- [--addr 127.0.0.1:8080]
//! curl -d hello http://127.0.0.1:8080/anything
//! ```
//!
//! Runs until killed; prints the server's counters every ten seconds when they change.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use netstack_application::http::{Request, Response, Server, ServerConfig};

fn main() -> ExitCode {
    let mut addr: SocketAddr = ([127, 0, 0, 1], 8080).into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next().and_then(|a| a.parse().ok()) {
                Some(a) => addr = a,
                None => {
                    eprintln!("--addr needs IP:PORT, e.g. --addr 127.0.0.1:8080");
                    return ExitCode::from(2);
                }
            },
            "-h" | "--help" => {
                println!("usage: http_echo [--addr IP:PORT]   (default 127.0.0.1:8080)");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}; usage: http_echo [--addr IP:PORT]");
                return ExitCode::from(2);
            }
        }
    }
    let echo = |req: Request| {
        let content_type = req
            .headers
            .get("content-type")
            .map(|v| v.to_vec())
            .unwrap_or_else(|| b"application/octet-stream".to_vec());
        let mut resp = Response::new(200);
        resp.headers.set("Content-Type", content_type);
        resp.body = netstack_application::http::Body::Bytes(req.body);
        resp
    };
    let server = match Server::bind_std(addr, echo, ServerConfig::default()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "echoing HTTP on http://{} (try: curl -d hello http://{}/)",
        server.local_addr().unwrap_or(addr),
        server.local_addr().unwrap_or(addr)
    );
    let mut last = server.stats();
    loop {
        std::thread::sleep(Duration::from_secs(10));
        let now = server.stats();
        if now != last {
            println!("{now:?}");
            last = now;
        }
    }
}
