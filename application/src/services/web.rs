//! netstackd's HTTP service: the status page at `/` (or static files under `--root`), the
//! counters and connection table as JSON at `/stats`, a WebSocket echo at `/ws` (RFC 6455), and
//! `/echo`, which answers any method with the request body. Served by [`crate::http::Server`]
//! over the stack's own TCP.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use netstack_runtime::{StackHandle, StackObserver, TcpListener};

use super::status::Snapshot;
use crate::http::{
    Files, Method, ParseError, Request, Response, Router, Server, ServerConfig, ServerStats,
    ShutdownHandle,
};
use crate::ws::{self, Message, WsConfig, WsStream};

/// How long a WebSocket echo connection waits in one read before it looks at the stop flag.
const WS_POLL: Duration = Duration::from_secs(1);

/// What the HTTP service serves.
#[derive(Clone)]
pub struct WebService {
    /// The TCP port.
    pub port: u16,
    /// Static files to serve at `/` instead of the status page.
    pub root: Option<PathBuf>,
    /// Where the status page and `/stats` read the stack's counters and connections.
    pub observer: StackObserver,
    /// The server's limits and timeouts.
    pub server: ServerConfig,
}

/// The WebSocket echo's counters.
#[derive(Default)]
pub(super) struct WsCounters {
    sessions: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    protocol_errors: AtomicU64,
}

/// The running HTTP service.
pub(super) struct Web {
    server: Server,
    ws: Arc<WsCounters>,
}

impl Web {
    /// Binds the port (an error names `--http`) and starts serving; `stop` ends WebSocket
    /// sessions, `services` gives the other services' counters to the status page.
    pub(super) fn start(
        stack: &StackHandle,
        cfg: WebService,
        stop: Arc<AtomicBool>,
        services: Arc<dyn Fn() -> Vec<(String, u64)> + Send + Sync>,
    ) -> io::Result<Web> {
        let listener = TcpListener::bind(stack, ("0.0.0.0", cfg.port)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("--http {}: {e}; pick another port", cfg.port),
            )
        })?;
        let ws = Arc::new(WsCounters::default());
        let handle: Arc<OnceLock<ShutdownHandle>> = Arc::new(OnceLock::new());
        let observer = cfg.observer.clone();
        let (h, w) = (handle.clone(), ws.clone());
        let snapshot = move || {
            let mut extra: Vec<(String, u64)> = services()
                .into_iter()
                .map(|(n, v)| (format!("service.{n}"), v))
                .collect();
            if let Some(h) = h.get() {
                extra.extend(
                    http_counters(&h.stats(), &w)
                        .into_iter()
                        .map(|(n, v)| (format!("service.{n}"), v)),
                );
            }
            Snapshot::take(&observer, extra)
        };
        let snapshot = Arc::new(snapshot);
        let s1 = snapshot.clone();
        let mut router = Router::new()
            .route(Method::Get, "/stats", move |_req: Request| {
                s1().json_response()
            })
            .route_any("/echo", |req: Request| {
                Response::with_body(200, "application/octet-stream", req.body)
            })
            .route(Method::Get, "/ws", {
                let (ws, stop) = (ws.clone(), stop.clone());
                move |req: Request| ws_echo(&req, ws.clone(), stop.clone())
            });
        router = match cfg.root {
            Some(root) => router.prefix(Method::Get, "/", Files::new(root)),
            None => {
                let s2 = snapshot.clone();
                router.route(Method::Get, "/", move |_req: Request| s2().html_response())
            }
        };
        let server = Server::start(listener, router, cfg.server)?;
        let _ = handle.set(server.shutdown_handle());
        Ok(Web { server, ws })
    }

    /// The counters as `http.name`.
    pub(super) fn counters(&self) -> Vec<(String, u64)> {
        http_counters(&self.server.stats(), &self.ws)
    }

    /// Stops accepting and waits up to `deadline` for connections to finish; the final
    /// counters.
    pub(super) fn stop(self, deadline: Duration) -> Vec<(String, u64)> {
        let stats = self.server.shutdown(deadline);
        http_counters(&stats, &self.ws)
    }
}

/// `/ws`: a WebSocket that sends back every message it receives, until the peer closes, the
/// connection fails, or the service stops.
fn ws_echo(req: &Request, counters: Arc<WsCounters>, stop: Arc<AtomicBool>) -> Response {
    ws::upgrade(req, WsConfig::default(), move |mut socket| {
        counters.sessions.fetch_add(1, Ordering::Relaxed);
        // The server's own read timeout is still set: poll the stop flag instead.
        let _ = socket.get_ref().set_read_timeout(Some(WS_POLL));
        loop {
            let sent = match socket.read_message() {
                Ok(Message::Text(t)) => {
                    counters.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                    socket.send_text(&t)
                }
                Ok(Message::Binary(b)) => {
                    counters.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    socket.send_binary(&b)
                }
                Ok(Message::Close(_)) => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.load(Ordering::Relaxed) {
                        // RFC 6455 §7.4.1: 1001, going away.
                        let _ = socket.close(1001, "server stopping");
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if e.kind() == io::ErrorKind::InvalidData {
                        counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            };
            counters.messages.fetch_add(1, Ordering::Relaxed);
            if sent.is_err() {
                return;
            }
        }
    })
}

/// The server's and the WebSocket echo's counters as `http.name`.
fn http_counters(s: &ServerStats, ws: &WsCounters) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = [
        ("connections_accepted", s.connections_accepted),
        ("connections_active", s.connections_active),
        ("requests", s.requests),
        ("rejected_over_limit", s.rejected_over_limit),
        ("header_timeouts", s.header_timeouts),
        ("idle_timeouts", s.idle_timeouts),
        ("body_timeouts", s.body_timeouts),
        ("handler_panics", s.handler_panics),
        ("upgrades", s.upgrades),
        ("accept_errors", s.accept_errors),
        ("ws_sessions", ws.sessions.load(Ordering::Relaxed)),
        ("ws_messages", ws.messages.load(Ordering::Relaxed)),
        ("ws_bytes", ws.bytes.load(Ordering::Relaxed)),
        (
            "ws_protocol_errors",
            ws.protocol_errors.load(Ordering::Relaxed),
        ),
    ]
    .into_iter()
    .map(|(n, v)| (format!("http.{n}"), v))
    .collect();
    for class in 1..=5u16 {
        out.push((
            format!("http.responses_{class}xx"),
            s.responses_of_class(class),
        ));
    }
    for cause in ParseError::ALL {
        out.push((
            format!("http.rejected_{}", snake(&format!("{cause:?}"))),
            s.parse_errors_of(cause),
        ));
    }
    out
}

/// `CamelCase` as `camel_case`.
fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_names_are_snake_case_per_cause_and_class() {
        assert_eq!(
            snake("ContentLengthWithTransferEncoding"),
            "content_length_with_transfer_encoding"
        );
        let c = http_counters(&ServerStats::default(), &WsCounters::default());
        let names: Vec<&str> = c.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"http.requests"));
        assert!(names.contains(&"http.responses_4xx"));
        assert!(names.contains(&"http.rejected_bare_line_end"));
        assert!(names.contains(&"http.ws_sessions"));
    }
}
