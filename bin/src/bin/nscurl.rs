//! `nscurl`: a curl-like HTTP/1.1 client that runs over its own user-space stack on a TAP.
//!
//! The requests go through `netstack_application::http::Client` over the stack's TCP, names are
//! resolved by the stack's own DNS resolver, and several URLs in one run share the client, so a
//! kept-alive connection to the same host is reused (shown with `-v`).

use std::fs::File;
use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use netstack_application::http::{
    Client, ClientBody, ClientConfig, ClientRequest, ClientResponse, Headers, Method, Url,
};
use netstack_application::stack_socket::http_connector;
use netstack_bin::tool::{self, DeviceArgs, EXIT_INTERRUPTED};
use netstack_runtime::StackHandle;

/// curl's exit statuses that nscurl uses.
mod exit {
    /// A name could not be resolved.
    pub const RESOLVE: u8 = 6;
    /// The connection could not be made.
    pub const CONNECT: u8 = 7;
    /// `--fail` and a status of 400 or more.
    pub const HTTP_ERROR: u8 = 22;
    /// Writing the output failed.
    pub const WRITE: u8 = 23;
    /// Reading the upload or data file failed.
    pub const READ: u8 = 26;
    /// `--max-time` passed, or the server went silent.
    pub const TIMEOUT: u8 = 28;
    /// More redirects than `--max-redirs`.
    pub const REDIRECTS: u8 = 47;
    /// Any other failure while sending or receiving.
    pub const RECV: u8 = 56;
}

/// How long past --max-time the backstop waits for the run to end by itself.
const MAX_TIME_GRACE: Duration = Duration::from_secs(1);

/// A curl-like HTTP/1.1 client over netstack's own user-space TCP/IP stack on a TAP device.
///
/// nscurl attaches to the TAP (creating it, with the kernel side at the subnet's first host,
/// when it is missing), fetches each URL in turn over one client (a kept-alive connection to
/// the same host and port is reused) and writes the bodies to stdout or the -o files. Names
/// are resolved by the stack's DNS resolver asking --dns. Only http:// (no TLS).
///
/// Exit status (curl's numbers): 0 success; 6 a name did not resolve; 7 no connection;
/// 22 --fail and a status >= 400; 23 writing the output failed; 26 reading a -T/--data file
/// failed; 28 --max-time or a silent server; 47 too many redirects;
/// 56 any other transfer error; 1 the device or stack could not be set up; 2 a usage error;
/// 130 interrupted. With several URLs, the status of the last one that failed.
#[derive(Debug, Parser)]
#[command(
    name = "nscurl",
    version,
    about,
    after_help = "Examples (as root):\n  \
                  nscurl http://192.0.2.1:8000/index.html -o index.html\n  \
                  nscurl -v http://svc.test/a http://svc.test/b        two URLs, one connection\n  \
                  nscurl -d 'a=1&b=2' http://192.0.2.1:8000/form        POST a form\n  \
                  nscurl -T big.iso http://192.0.2.1:8000/up            PUT a file, chunked\n  \
                  nscurl --dns 192.0.2.53 -L --fail http://www.demo.test/"
)]
struct Args {
    /// The http:// URLs to fetch, in order, over one client
    #[arg(value_name = "URL", required = true, num_args = 1..)]
    urls: Vec<String>,

    /// The request method [default: GET; POST with -d/--data-binary; PUT with -T; HEAD with -I]
    #[arg(short = 'X', long = "request", value_name = "METHOD", value_parser = parse_method)]
    method: Option<Method>,

    /// A request header field, `Name: value` (repeatable; replaces the default of that name)
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = parse_header)]
    headers: Vec<(String, String)>,

    /// Body data, sent with Content-Length (repeatable: joined with '&'); @FILE reads the file
    /// with its CR and LF removed, as curl does. Implies POST and a form Content-Type.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    data: Vec<String>,

    /// Body data sent exactly as given; @FILE reads the file byte for byte. Implies POST.
    #[arg(long = "data-binary", value_name = "DATA")]
    data_binary: Vec<String>,

    /// Send FILE as the body with chunked transfer coding (streamed, not read into memory).
    /// Implies PUT.
    #[arg(short = 'T', long = "upload-file", value_name = "FILE",
          conflicts_with_all = ["data", "data_binary"])]
    upload_file: Option<PathBuf>,

    /// Write the body to FILE instead of stdout (repeatable: the n-th -o is for the n-th URL)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Vec<PathBuf>,

    /// Print the response head (status line and fields) before the body
    #[arg(short = 'i', long = "include")]
    include: bool,

    /// Send HEAD and print the response head only
    #[arg(short = 'I', long = "head")]
    head: bool,

    /// Print the request and response heads and connection reuse on stderr
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,

    /// Follow redirects (301, 302, 303, 307, 308); without it the redirect is shown as the
    /// response, as curl does
    #[arg(short = 'L', long = "location")]
    location: bool,

    /// The most redirects -L follows for one URL
    #[arg(long = "max-redirs", value_name = "N", default_value_t = 50, value_parser = parse_redirs)]
    max_redirs: usize,

    /// Give up after SECONDS (decimals allowed) with exit 28, as curl: each connect and read
    /// waits at most this long, and the whole run ends at most a second later
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS", value_parser = tool::parse_seconds)]
    max_time: Option<Duration>,

    /// Exit 22 without writing the body when the status is 400 or more
    #[arg(short = 'f', long = "fail")]
    fail: bool,

    /// The DNS server that resolves names in the URLs, IP or IP:PORT [default: the kernel
    /// side of the TAP, --host-addr or the first host of --addr's subnet, port 53]
    #[arg(long = "dns", value_name = "IP[:PORT]", value_parser = parse_dns)]
    dns: Option<SocketAddr>,

    #[command(flatten)]
    device: DeviceArgs,
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_token(s.as_bytes()).ok_or_else(|| {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
        format!(
            "not a method nscurl sends; use one of {} (upper case)",
            names.join(", ")
        )
    })
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err("write a header as `Name: value`, e.g. 'Accept: text/plain'".into());
    };
    let name = name.trim();
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(is_tchar) {
        return Err(format!(
            "`{name}` is not a field name (letters, digits and !#$%&'*+-.^_`|~); e.g. 'X-Test: 1'"
        ));
    }
    let value = value.trim();
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err("a field value cannot hold CR, LF or NUL; give it on one line".into());
    }
    Ok((name.to_string(), value.to_string()))
}

fn parse_redirs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= 1000 => Ok(n),
        _ => Err("use a number of redirects from 0 to 1000, e.g. 10".into()),
    }
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

/// The body every request of the run sends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum BodySource {
    None,
    Bytes(Vec<u8>),
    Upload(PathBuf),
}

/// What the flags ask for, checked.
#[derive(Debug)]
struct Plan {
    urls: Vec<Url>,
    method: Method,
    headers: Headers,
    body: BodySource,
    outputs: Vec<PathBuf>,
    include: bool,
    verbose: bool,
    fail: bool,
    config: ClientConfig,
    dns: SocketAddr,
}

/// Reads `-d`/`--data-binary` values (`@FILE` or literal); `strip` removes CR and LF from
/// files as curl's `-d` does.
fn data_value(flag: &str, v: &str, strip: bool) -> Result<Vec<u8>, String> {
    let Some(path) = v.strip_prefix('@') else {
        return Ok(v.as_bytes().to_vec());
    };
    let mut bytes = std::fs::read(path)
        .map_err(|e| format!("{flag} @{path}: cannot read the file: {e}; give a readable file"))?;
    if strip {
        bytes.retain(|b| *b != b'\r' && *b != b'\n');
    }
    Ok(bytes)
}

fn plan(args: &Args) -> Result<Plan, String> {
    args.device.check()?;
    let mut urls = Vec::new();
    for u in &args.urls {
        let url = Url::parse(u).map_err(|e| format!("URL {u}: {e}"))?;
        urls.push(url);
    }
    if args.output.len() > urls.len() {
        return Err(format!(
            "-o/--output: {} given for {} URL(s); give at most one per URL",
            args.output.len(),
            urls.len()
        ));
    }
    let mut data: Option<Vec<u8>> = None;
    let mut form = false;
    // curl joins every -d and --data-binary value with `&`, in that order.
    for (flag, values, strip) in [
        ("-d/--data", &args.data, true),
        ("--data-binary", &args.data_binary, false),
    ] {
        for d in values {
            let v = data_value(flag, d, strip)?;
            form = true;
            match &mut data {
                Some(have) => {
                    have.push(b'&');
                    have.extend_from_slice(&v);
                }
                None => data = Some(v),
            }
        }
    }
    let body = match (&args.upload_file, data) {
        (Some(path), _) => {
            File::open(path).map_err(|e| {
                format!(
                    "-T/--upload-file {}: cannot open it: {e}; give a readable file",
                    path.display()
                )
            })?;
            BodySource::Upload(path.clone())
        }
        (None, Some(bytes)) => BodySource::Bytes(bytes),
        (None, None) => BodySource::None,
    };
    if args.head && body != BodySource::None {
        return Err(
            "-I/--head sends HEAD, which carries no body; drop -d/--data-binary/-T or -I".into(),
        );
    }
    let method = match (args.method, args.head, &body) {
        (Some(m), _, _) => m,
        (None, true, _) => Method::Head,
        (None, false, BodySource::Upload(_)) => Method::Put,
        (None, false, BodySource::Bytes(_)) => Method::Post,
        (None, false, BodySource::None) => Method::Get,
    };
    let mut headers = Headers::new();
    for (name, value) in &args.headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            return Err(format!(
                "-H {name}: nscurl frames the body itself; drop this header"
            ));
        }
        headers.append(name, value);
    }
    if form && !headers.contains("content-type") {
        headers.set("Content-Type", "application/x-www-form-urlencoded");
    }
    let mut config = ClientConfig {
        // Without -L a redirect is the response, as curl shows it.
        follow_redirects: args.location,
        max_redirects: args.max_redirs,
        ..ClientConfig::default()
    };
    if let Some(t) = args.max_time {
        config.connect_timeout = config.connect_timeout.min(t);
        config.io_timeout = config.io_timeout.min(t);
    }
    let dns = args
        .dns
        .unwrap_or_else(|| SocketAddr::from((args.device.kernel_side().addr, 53)));
    Ok(Plan {
        urls,
        method,
        headers,
        body,
        outputs: args.output.clone(),
        include: args.include || args.head,
        verbose: args.verbose,
        fail: args.fail,
        config,
        dns,
    })
}

/// The request head as the client sends it (the fields it adds itself included), for `-v`.
fn request_head_text(req: &ClientRequest) -> String {
    let mut out = format!("> {} {} HTTP/1.1\n", req.method, req.url.target);
    if !req.headers.contains("host") {
        out.push_str(&format!("> Host: {}\n", req.url.authority()));
    }
    if !req.headers.contains("user-agent") {
        out.push_str(&format!(
            "> User-Agent: netstack/{}\n",
            env!("CARGO_PKG_VERSION")
        ));
    }
    for (name, value) in req.headers.iter() {
        out.push_str(&format!("> {name}: {}\n", String::from_utf8_lossy(value)));
    }
    match &req.body {
        ClientBody::Empty if matches!(req.method, Method::Post | Method::Put | Method::Patch) => {
            out.push_str("> Content-Length: 0\n");
        }
        ClientBody::Empty => {}
        ClientBody::Bytes(b) => out.push_str(&format!("> Content-Length: {}\n", b.len())),
        ClientBody::Chunked(_) => out.push_str("> Transfer-Encoding: chunked\n"),
    }
    out.push_str(">\n");
    out
}

/// The response head as received, CRLF line ends (what `-i` prints).
fn response_head_text(resp: &ClientResponse) -> String {
    let mut out = format!("{} {} {}\r\n", resp.version, resp.status, resp.reason);
    for (name, value) in resp.headers.iter() {
        out.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(value)));
    }
    out.push_str("\r\n");
    out
}

/// The exit status for a failed transfer, from what the error says.
fn failure_code(e: &io::Error) -> u8 {
    let text = e.to_string();
    if text.contains("redirects; the last pointed to") {
        return exit::REDIRECTS;
    }
    match e.kind() {
        _ if text.starts_with("resolving ") || text.contains("DNS") => exit::RESOLVE,
        io::ErrorKind::NotFound => exit::RESOLVE,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => exit::TIMEOUT,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => exit::CONNECT,
        _ => exit::RECV,
    }
}

/// Fetches every URL in turn; returns the exit status.
fn fetch_all(stack: &StackHandle, plan: &Plan) -> u8 {
    let connector = http_connector(stack, Some(plan.dns));
    let mut client = Client::new(connector, plan.config.clone());
    let mut status = 0;
    for (i, url) in plan.urls.iter().enumerate() {
        let code = fetch_one(&mut client, plan, url, plan.outputs.get(i));
        if code != 0 {
            status = code;
        }
    }
    if plan.verbose {
        let s = client.stats();
        eprintln!(
            "* {} connection(s) opened, {} request(s) on a reused connection",
            s.connections_opened, s.connections_reused
        );
    }
    status
}

fn fetch_one<C: netstack_application::http::Connector>(
    client: &mut Client<C>,
    plan: &Plan,
    url: &Url,
    output: Option<&PathBuf>,
) -> u8 {
    let body = match &plan.body {
        BodySource::None => ClientBody::Empty,
        BodySource::Bytes(b) => ClientBody::Bytes(b.clone()),
        BodySource::Upload(path) => match File::open(path) {
            Ok(f) => ClientBody::Chunked(Box::new(f)),
            Err(e) => {
                eprintln!("nscurl: (26) cannot read {}: {e}", path.display());
                return exit::READ;
            }
        },
    };
    let req = ClientRequest {
        method: plan.method,
        url: url.clone(),
        headers: plan.headers.clone(),
        body,
    };
    if plan.verbose {
        eprint!(
            "* Trying {}:{} ...\n{}",
            url.host,
            url.port,
            request_head_text(&req)
        );
    }
    let resp = match client.send(req) {
        Ok(r) => r,
        Err(e) => {
            let code = failure_code(&e);
            eprintln!("nscurl: ({code}) {e}");
            return code;
        }
    };
    if plan.verbose {
        for r in &resp.redirects {
            eprintln!("* Followed a redirect to {r}");
        }
        if resp.reused_connection {
            eprintln!("* reused connection to {}:{}", resp.url.host, resp.url.port);
        } else {
            eprintln!("* new connection to {}:{}", resp.url.host, resp.url.port);
        }
        for line in response_head_text(&resp).lines() {
            eprintln!("< {line}");
        }
    }
    if plan.fail && resp.status >= 400 {
        eprintln!(
            "nscurl: (22) The requested URL returned error: {} ({})",
            resp.status, resp.url
        );
        return exit::HTTP_ERROR;
    }
    let mut out: Vec<u8> = Vec::new();
    if plan.include {
        out.extend_from_slice(response_head_text(&resp).as_bytes());
    }
    if plan.method != Method::Head {
        out.extend_from_slice(&resp.body);
    }
    let written = match output {
        Some(path) => std::fs::write(path, &out).map_err(|e| (path.display().to_string(), e)),
        None => {
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(&out)
                .and_then(|()| stdout.flush())
                .map_err(|e| ("stdout".to_string(), e))
        }
    };
    match written {
        Ok(()) => 0,
        Err((to, e)) => {
            eprintln!("nscurl: (23) writing to {to}: {e}");
            exit::WRITE
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("nscurl: error: {msg}");
            return ExitCode::from(2);
        }
    };
    tool::init_logging(args.device.log_level);
    if let Some(limit) = args.max_time {
        // curl's --max-time bounds the whole run, resolving and connecting included. The
        // client's own connect and read timeouts are --max-time too, so one silent exchange
        // ends cleanly; this backstop ends a run whose URLs together take longer, a second
        // late at most. Exiting closes the TAP, which removes a TAP the tool created.
        std::thread::spawn(move || {
            std::thread::sleep(limit + MAX_TIME_GRACE);
            eprintln!(
                "nscurl: (28) Operation timed out after {} ms (--max-time)",
                limit.as_millis()
            );
            std::process::exit(i32::from(exit::TIMEOUT));
        });
    }
    let ran = tool::run_on_stack(&args.device, move |h| fetch_all(&h, &plan));
    tool::exit_code("nscurl", ran.map(|code| code.unwrap_or(EXIT_INTERRUPTED)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("nscurl").chain(a.iter().copied()))
    }

    fn planned(a: &[&str]) -> Result<Plan, String> {
        plan(&parse(a).unwrap())
    }

    #[test]
    fn data_implies_post_with_a_form_type_and_joins_with_ampersands() {
        let p = planned(&["http://192.0.2.1/", "-d", "a=1", "-d", "b=2"]).unwrap();
        assert_eq!(p.method, Method::Post);
        assert_eq!(p.body, BodySource::Bytes(b"a=1&b=2".to_vec()));
        assert_eq!(
            p.headers.get_str("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let p = planned(&[
            "http://192.0.2.1/",
            "-d",
            "x",
            "-X",
            "PUT",
            "-H",
            "Content-Type: text/plain",
        ])
        .unwrap();
        assert_eq!(p.method, Method::Put);
        assert_eq!(p.headers.get_str("content-type"), Some("text/plain"));
    }

    #[test]
    fn data_files_are_read_binary_kept_and_dash_d_strips_line_ends() {
        let dir = std::env::temp_dir().join(format!("nscurl-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("body");
        std::fs::write(&f, b"a\r\nb\n\x00c").unwrap();
        let at = format!("@{}", f.display());
        let p = planned(&["http://192.0.2.1/", "--data-binary", &at]).unwrap();
        assert_eq!(p.body, BodySource::Bytes(b"a\r\nb\n\x00c".to_vec()));
        let p = planned(&["http://192.0.2.1/", "-d", &at]).unwrap();
        assert_eq!(p.body, BodySource::Bytes(b"ab\x00c".to_vec()));
        let p = planned(&["http://192.0.2.1/", "-T", &f.display().to_string()]).unwrap();
        assert_eq!(
            (p.method, p.body),
            (Method::Put, BodySource::Upload(f.clone()))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn head_and_method_defaults() {
        let p = planned(&["http://192.0.2.1/"]).unwrap();
        assert_eq!((p.method, p.include), (Method::Get, false));
        let p = planned(&["-I", "http://192.0.2.1/"]).unwrap();
        assert_eq!((p.method, p.include), (Method::Head, true));
        assert!(
            !p.config.follow_redirects,
            "no -L: redirects are not followed"
        );
        let p = planned(&["-L", "--max-redirs", "3", "http://192.0.2.1/"]).unwrap();
        assert!(p.config.follow_redirects);
        assert_eq!(p.config.max_redirects, 3);
    }

    #[test]
    fn the_default_dns_server_is_the_kernel_side_of_the_tap() {
        let p = planned(&["http://svc.test/"]).unwrap();
        assert_eq!(p.dns, "192.0.2.1:53".parse().unwrap());
        let p = planned(&["http://svc.test/", "--dns", "192.0.2.9:5353"]).unwrap();
        assert_eq!(p.dns, "192.0.2.9:5353".parse().unwrap());
    }

    #[test]
    fn flag_rejections_name_the_flag_the_value_and_the_fix() {
        for (a, needle) in [
            (&["http://x/", "-X", "get"][..], "upper case"),
            (&["http://x/", "-H", "NoColon"][..], "`Name: value`"),
            (&["http://x/", "-H", "Bad Name: v"][..], "not a field name"),
            (&["http://x/", "--max-redirs", "1001"][..], "from 0 to 1000"),
            (&["http://x/", "--max-time", "0"][..], "e.g. 2 or 0.5"),
            (&["http://x/", "--dns", "nameserver"][..], "e.g. 192.0.2.1"),
            (
                &["http://x/", "-T", "f", "-d", "x"][..],
                "cannot be used with",
            ),
        ] {
            let msg = parse(a).unwrap_err().to_string();
            assert!(msg.contains(needle), "{a:?}: {msg}");
        }
        for (a, needle) in [
            (&["https://x/"][..], "URL https://x/"),
            (&["-I", "-d", "x", "http://x/"][..], "carries no body"),
            (
                &["-o", "a", "-o", "b", "http://x/"][..],
                "at most one per URL",
            ),
            (
                &["-H", "Content-Length: 3", "http://x/"][..],
                "frames the body itself",
            ),
            (
                &["-d", "@/nonexistent/nscurl", "http://x/"][..],
                "-d/--data @/nonexistent/nscurl",
            ),
            (
                &["-T", "/nonexistent/nscurl", "http://x/"][..],
                "-T/--upload-file /nonexistent",
            ),
        ] {
            let msg = planned(a).unwrap_err();
            assert!(msg.contains(needle), "{a:?}: {msg}");
        }
    }

    #[test]
    fn failures_map_to_curls_exit_codes() {
        let e = |k, m: &str| io::Error::new(k, m.to_string());
        assert_eq!(
            failure_code(&e(io::ErrorKind::NotFound, "resolving x: NXDOMAIN")),
            6
        );
        assert_eq!(
            failure_code(&e(io::ErrorKind::ConnectionRefused, "refused")),
            7
        );
        assert_eq!(failure_code(&e(io::ErrorKind::TimedOut, "slow")), 28);
        assert_eq!(
            failure_code(&e(
                io::ErrorKind::Other,
                "http://x/: more than 0 redirects; the last pointed to /y"
            )),
            47
        );
        assert_eq!(failure_code(&e(io::ErrorKind::InvalidData, "bad head")), 56);
    }

    #[test]
    fn the_verbose_request_head_shows_the_fields_the_client_adds() {
        let mut req = ClientRequest::new(
            Method::Post,
            Url::parse("http://svc.test:8080/p?q").unwrap(),
        );
        req.headers.set("Accept", "*/*");
        req.body = ClientBody::Bytes(b"abc".to_vec());
        let text = request_head_text(&req);
        assert!(
            text.starts_with("> POST /p?q HTTP/1.1\n> Host: svc.test:8080\n"),
            "{text}"
        );
        assert!(
            text.contains("> Accept: */*\n> Content-Length: 3\n>\n"),
            "{text}"
        );
    }
}
