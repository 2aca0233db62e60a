//! A minimal router: a few routes (a page, a greeting that reads the query, an API prefix that
//! takes any method, and the crate's examples directory as static files under `/static/`),
//! asked a few sample requests, with what it answers printed:
//! `cargo run -p netstack-application --example http_router [ROOT]`.
//! With `--serve ADDR` as the first arguments it serves the same router over std::net
//! instead (`--serve 127.0.0.1:8080`); the stack's own `TcpListener` serves it the same way.
//!
//! [`app`] builds a [`Router`], and a `Router` is a [`Handler`]: it can be asked directly, or
//! handed to `http::Server` as its handler.

use netstack_application::http::{Body, Files, Handler, Method, Request, Response, Router};
use std::io::Read;
use std::path::PathBuf;

/// The example's routes.
fn app(root: PathBuf) -> Router {
    Router::new()
        .route(Method::Get, "/", |_req: Request| {
            Response::with_body(200, "text/html; charset=utf-8", "<h1>netstack</h1>\n")
        })
        .route(Method::Get, "/hello", |req: Request| {
            // The router already answered 400 to a query that does not decode.
            let pairs = req.query_pairs().unwrap_or_default();
            let name = pairs
                .iter()
                .find(|(n, _)| n == "name")
                .map_or("world", |(_, v)| v.as_str());
            Response::text(200, format!("hello, {name}\n"))
        })
        .route(Method::Post, "/echo", |req: Request| {
            Response::with_body(200, "application/octet-stream", req.body)
        })
        .prefix_any("/api/", |req: Request| {
            Response::with_body(
                200,
                "application/json",
                format!(
                    "{{\"method\":\"{}\",\"path\":\"{}\"}}\n",
                    req.method, req.path
                ),
            )
        })
        .prefix(Method::Get, "/static", Files::new(root).under("/static"))
}

/// Prints the status line, the fields and up to 200 bytes of the body (for HEAD, only the
/// body's length: the server sends none).
fn show(resp: Response, head: bool) {
    println!(
        "  {} {}",
        resp.status,
        netstack_application::http::reason_phrase(resp.status)
    );
    for (name, value) in resp.headers.iter() {
        println!("  {name}: {}", String::from_utf8_lossy(value));
    }
    if head {
        if let Body::Reader { len: Some(len), .. } = resp.body {
            println!("  (a server sends no body to HEAD; Content-Length: {len})");
        }
        println!();
        return;
    }
    let body = match resp.body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b,
        Body::Reader { reader, .. } => {
            let mut out = Vec::new();
            // Only the start: the reader streams the file, and the example prints a taste.
            let _ = reader.take(200).read_to_end(&mut out);
            out
        }
    };
    if !body.is_empty() {
        let text = String::from_utf8_lossy(&body);
        for line in text.lines().take(6) {
            println!("  | {line}");
        }
    }
    println!();
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let serve = (args.first().map(String::as_str) == Some("--serve")).then(|| {
        let addr = args
            .get(1)
            .cloned()
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        args.drain(..args.len().min(2));
        addr
    });
    let root = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples")));
    let router = app(root);
    if let Some(addr) = serve {
        let server = netstack_application::http::Server::bind_std(
            addr.as_str(),
            router,
            netstack_application::http::ServerConfig::default(),
        )
        .unwrap_or_else(|e| panic!("--serve {addr}: {e}"));
        println!(
            "serving on http://{}/ (Ctrl-C to stop)",
            server.local_addr().unwrap()
        );
        server.wait();
        return;
    }
    println!("routes: {router:?}\n");

    let mut ranged = Request::new(Method::Get, "/static/http_router.rs");
    ranged.headers.append("Range", "bytes=0-63");
    let mut posted = Request::new(Method::Post, "/echo");
    posted.body = b"echoed back".to_vec();
    let samples = [
        Request::new(Method::Get, "/"),
        Request::new(Method::Get, "/hello?name=Ada+Lovelace"),
        Request::new(Method::Get, "/hello?name=%zz"),
        Request::new(Method::Delete, "/hello"),
        Request::new(Method::Put, "/api/v1/items/7"),
        posted,
        Request::new(Method::Head, "/static/http_router.rs"),
        ranged,
        Request::new(Method::Get, "/static"),
        Request::new(Method::Get, "/static/"),
        Request::new(Method::Get, "/static/..%2fCargo.toml"),
        Request::new(Method::Get, "/nowhere"),
    ];
    for req in samples {
        println!("{} {}", req.method, req.target);
        let head = req.method == Method::Head;
        show(router.handle(req), head);
    }
}
