//! Tests of the static-file handler against a real temporary directory tree, with a secret
//! file just outside the root and symbolic links leading out of it.

use super::*;
use crate::http::router::Router;
use std::sync::atomic::{AtomicUsize, Ordering};

const SECRET: &[u8] = b"the secret outside the root";

/// A temporary tree, removed when dropped (links are removed, never followed):
///
/// ```text
/// base/secret.txt                     SECRET
/// base/root2/secret.txt               SECRET (a sibling whose name starts like the root's)
/// base/root/hello.txt                 "hello, world\n"
/// base/root/data.bin                  bytes 0..100
/// base/root/empty.txt                 ""
/// base/root/site/index.html           "<h1>site</h1>"
/// base/root/docs/a&b<c>"d'.txt        "x"
/// base/root/docs/sub/                 (directory)
/// base/root/link-in -> hello.txt      (relative link inside the root)
/// base/root/link-out -> base/secret.txt
/// base/root/rel-out -> ../secret.txt
/// base/root/dir-out -> base
/// base/root/sneaky -> ../root2/secret.txt
/// base/root/trap/index.html -> base/secret.txt
/// ```
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let base = std::env::temp_dir().join(format!(
            "netstack-files-test-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let root = base.join("root");
        fs::create_dir_all(root.join("site")).unwrap();
        fs::create_dir_all(root.join("docs/sub")).unwrap();
        fs::create_dir_all(root.join("trap")).unwrap();
        fs::create_dir_all(base.join("root2")).unwrap();
        fs::write(base.join("secret.txt"), SECRET).unwrap();
        fs::write(base.join("root2/secret.txt"), SECRET).unwrap();
        fs::write(root.join("hello.txt"), "hello, world\n").unwrap();
        fs::write(root.join("data.bin"), (0u8..100).collect::<Vec<u8>>()).unwrap();
        fs::write(root.join("empty.txt"), "").unwrap();
        fs::write(root.join("site/index.html"), "<h1>site</h1>").unwrap();
        fs::write(root.join("docs/a&b<c>\"d'.txt"), "x").unwrap();
        let tree = Tree { base };
        #[cfg(unix)]
        {
            use std::os::unix::fs::symlink;
            symlink("hello.txt", root.join("link-in")).unwrap();
            symlink(tree.base.join("secret.txt"), root.join("link-out")).unwrap();
            symlink("../secret.txt", root.join("rel-out")).unwrap();
            symlink(&tree.base, root.join("dir-out")).unwrap();
            symlink("../root2/secret.txt", root.join("sneaky")).unwrap();
            symlink(tree.base.join("secret.txt"), root.join("trap/index.html")).unwrap();
        }
        tree
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    fn files(&self) -> Files {
        Files::new(self.root())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // remove_dir_all removes links themselves and does not follow them.
        let _ = fs::remove_dir_all(&self.base);
    }
}

fn request(method: Method, target: &str, headers: &[(&str, &str)]) -> Request {
    let mut req = Request::new(method, target);
    for (n, v) in headers {
        req.headers.append(n, v);
    }
    req
}

fn get(h: &impl Handler, target: &str, headers: &[(&str, &str)]) -> Response {
    h.handle(request(Method::Get, target, headers))
}

/// The body's bytes; a reader body must yield exactly its declared length.
fn body(resp: Response) -> Vec<u8> {
    match resp.body {
        Body::Empty => Vec::new(),
        Body::Bytes(b) => b,
        Body::Reader { mut reader, len } => {
            let mut out = Vec::new();
            reader.read_to_end(&mut out).unwrap();
            assert_eq!(Some(out.len() as u64), len, "reader length");
            out
        }
    }
}

fn header<'a>(resp: &'a Response, name: &str) -> Option<&'a str> {
    resp.headers.get_str(name)
}

#[test]
fn a_file_is_served_streamed_with_type_length_and_validators() {
    let t = Tree::new();
    let resp = get(&t.files(), "/hello.txt", &[]);
    assert_eq!(resp.status, 200);
    assert!(
        matches!(resp.body, Body::Reader { len: Some(13), .. }),
        "{:?}",
        resp.body
    );
    assert_eq!(
        header(&resp, "Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(header(&resp, "Accept-Ranges"), Some("bytes"));
    let etag = header(&resp, "ETag").unwrap();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "{etag}"
    );
    let modified = fs::metadata(t.root().join("hello.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let lm = httpdate::parse_http_date(header(&resp, "Last-Modified").unwrap()).unwrap();
    assert_eq!(
        httpdate::fmt_http_date(lm),
        httpdate::fmt_http_date(modified)
    );
    assert_eq!(body(resp), b"hello, world\n");
}

#[test]
fn the_etag_changes_when_the_file_does() {
    let t = Tree::new();
    let first = get(&t.files(), "/hello.txt", &[]);
    let first = header(&first, "ETag").unwrap().to_string();
    fs::write(t.root().join("hello.txt"), "hello, world, again\n").unwrap();
    let second = get(&t.files(), "/hello.txt", &[]);
    assert_ne!(header(&second, "ETag").unwrap(), first);
}

#[test]
fn head_gets_the_get_head_and_length() {
    let t = Tree::new();
    let resp = t.files().handle(request(
        Method::Head,
        "/data.bin",
        &[("Range", "bytes=0-9")],
    ));
    // RFC 9110 §14.2: Range is defined for GET only, so HEAD gets the 200 head.
    assert_eq!(resp.status, 200);
    assert_eq!(
        header(&resp, "Content-Type"),
        Some("application/octet-stream")
    );
    assert!(matches!(resp.body, Body::Reader { len: Some(100), .. }));
}

#[test]
fn content_types_follow_the_extension_case_insensitively() {
    let cases = [
        ("a.html", "text/html; charset=utf-8"),
        ("a.HTM", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json"),
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.PNG", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.svg", "image/svg+xml"),
        ("favicon.ico", "image/x-icon"),
        ("a.wasm", "application/wasm"),
        ("a.pdf", "application/pdf"),
        ("a.xml", "application/xml"),
        ("a.tar.gz", "application/octet-stream"),
        ("Makefile", "application/octet-stream"),
        ("a.", "application/octet-stream"),
    ];
    for (name, ty) in cases {
        assert_eq!(content_type(name), ty, "{name}");
    }
}

#[test]
fn methods_other_than_get_and_head_get_405_with_allow() {
    let t = Tree::new();
    for m in [
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Patch,
    ] {
        let resp = t.files().handle(request(m, "/hello.txt", &[]));
        assert_eq!(resp.status, 405, "{m}");
        assert_eq!(header(&resp, "Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn if_none_match_with_our_tag_or_star_gets_304_with_validators() {
    // RFC 9110 §13.1.2: weak comparison, a list, or `*`.
    let t = Tree::new();
    let files = t.files();
    let first = get(&files, "/hello.txt", &[]);
    let etag = header(&first, "ETag").unwrap().to_string();
    let weak = format!("W/{etag}");
    let list = format!("\"other\", {weak} , \"x\"");
    for value in [etag.as_str(), "*", weak.as_str(), list.as_str()] {
        let resp = get(&files, "/hello.txt", &[("If-None-Match", value)]);
        assert_eq!(resp.status, 304, "{value}");
        assert_eq!(header(&resp, "ETag"), Some(etag.as_str()));
        assert!(header(&resp, "Last-Modified").is_some());
        assert!(matches!(resp.body, Body::Empty));
    }
    for value in ["\"other\"", "W/\"other\", \"x\"", "garbage", ""] {
        let resp = get(&files, "/hello.txt", &[("If-None-Match", value)]);
        assert_eq!(resp.status, 200, "{value}");
    }
    // Also across several fields.
    let resp = get(
        &files,
        "/hello.txt",
        &[("If-None-Match", "\"a\""), ("If-None-Match", &etag)],
    );
    assert_eq!(resp.status, 304);
}

#[test]
fn if_modified_since_gets_304_unless_the_file_is_newer_or_the_date_bad() {
    let t = Tree::new();
    let files = t.files();
    let first = get(&files, "/hello.txt", &[]);
    let lm = header(&first, "Last-Modified").unwrap().to_string();
    let at = httpdate::parse_http_date(&lm).unwrap();
    let later = httpdate::fmt_http_date(at + Duration::from_secs(3600));
    let earlier = httpdate::fmt_http_date(at - Duration::from_secs(1));
    assert_eq!(
        get(&files, "/hello.txt", &[("If-Modified-Since", &lm)]).status,
        304
    );
    assert_eq!(
        get(&files, "/hello.txt", &[("If-Modified-Since", &later)]).status,
        304
    );
    assert_eq!(
        get(&files, "/hello.txt", &[("If-Modified-Since", &earlier)]).status,
        200
    );
    // RFC 9110 §13.1.3: an invalid date is ignored.
    assert_eq!(
        get(&files, "/hello.txt", &[("If-Modified-Since", "yesterday")]).status,
        200
    );
}

#[test]
fn if_none_match_takes_precedence_over_if_modified_since() {
    // RFC 9110 §13.2.2 step 3 before step 4; §13.1.3: ignored when If-None-Match is present.
    let t = Tree::new();
    let files = t.files();
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    let resp = get(
        &files,
        "/hello.txt",
        &[
            ("If-None-Match", "\"stale\""),
            ("If-Modified-Since", &later),
        ],
    );
    assert_eq!(resp.status, 200);
}

fn range(files: &Files, value: &str) -> (u16, Option<String>, Vec<u8>) {
    let resp = get(files, "/data.bin", &[("Range", value)]);
    let cr = header(&resp, "Content-Range").map(str::to_string);
    (resp.status, cr, body(resp))
}

#[test]
fn a_single_satisfiable_range_gets_206_with_content_range() {
    // RFC 9110 §14.1.2 forms; last positions past the end are clamped.
    let t = Tree::new();
    let f = t.files();
    let all: Vec<u8> = (0u8..100).collect();
    let cases: [(&str, u64, u64); 8] = [
        ("bytes=0-9", 0, 9),
        ("bytes=10-10", 10, 10),
        ("bytes=90-", 90, 99),
        ("bytes=95-1000", 95, 99),
        ("bytes=-5", 95, 99),
        ("bytes=-1000", 0, 99),
        ("BYTES = 1-2", 1, 2),
        ("bytes=0-99999999999999999999999", 0, 99),
    ];
    for (value, first, last) in cases {
        let (status, cr, got) = range(&f, value);
        assert_eq!(status, 206, "{value}");
        assert_eq!(cr, Some(format!("bytes {first}-{last}/100")), "{value}");
        assert_eq!(got, &all[first as usize..=last as usize], "{value}");
    }
}

#[test]
fn an_unsatisfiable_range_gets_416_with_the_length() {
    // RFC 9110 §15.5.17: Content-Range: bytes */length.
    let t = Tree::new();
    let f = t.files();
    for value in [
        "bytes=100-",
        "bytes=100-200",
        "bytes=-0",
        "bytes=99999999999999999999999-",
    ] {
        let (status, cr, _) = range(&f, value);
        assert_eq!(status, 416, "{value}");
        assert_eq!(cr.as_deref(), Some("bytes */100"), "{value}");
    }
    let resp = get(&f, "/empty.txt", &[("Range", "bytes=0-")]);
    assert_eq!(resp.status, 416);
    assert_eq!(header(&resp, "Content-Range"), Some("bytes */0"));
}

#[test]
fn several_ranges_other_units_and_malformed_ranges_get_the_whole_file() {
    // RFC 9110 §14.2: a server may ignore Range.
    let t = Tree::new();
    let f = t.files();
    for value in [
        "bytes=0-1,5-6",
        "bytes=0-1, -3",
        "items=0-1",
        "bytes=5-2",
        "bytes=a-b",
        "bytes=",
        "bytes 0-1",
        "bytes=--1",
        "bytes=1",
    ] {
        let (status, cr, got) = range(&f, value);
        assert_eq!((status, cr), (200, None), "{value}");
        assert_eq!(got.len(), 100, "{value}");
    }
}

#[test]
fn if_range_keeps_the_range_only_for_our_strong_tag_or_exact_date() {
    // RFC 9110 §13.1.5: strong comparison for tags, exact match for dates.
    let t = Tree::new();
    let f = t.files();
    let first = get(&f, "/data.bin", &[]);
    let etag = header(&first, "ETag").unwrap().to_string();
    let lm = header(&first, "Last-Modified").unwrap().to_string();
    let at = httpdate::parse_http_date(&lm).unwrap();
    let other_date = httpdate::fmt_http_date(at - Duration::from_secs(10));
    let weak = format!("W/{etag}");
    let status = |if_range: &str| {
        get(
            &f,
            "/data.bin",
            &[("Range", "bytes=0-0"), ("If-Range", if_range)],
        )
        .status
    };
    assert_eq!(status(&etag), 206);
    assert_eq!(status(&lm), 206);
    assert_eq!(status(&weak), 200);
    assert_eq!(status("\"other\""), 200);
    assert_eq!(status(&other_date), 200);
    assert_eq!(status("not a date"), 200);
}

#[test]
fn a_directory_is_served_by_its_index() {
    let t = Tree::new();
    let resp = get(&t.files(), "/site/", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        header(&resp, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(body(resp), b"<h1>site</h1>");
}

#[test]
fn a_directory_without_its_slash_is_redirected_with_301() {
    let t = Tree::new();
    let resp = get(&t.files(), "/site?x=1", &[]);
    assert_eq!(resp.status, 301);
    assert_eq!(header(&resp, "Location"), Some("/site/?x=1"));
    let resp = get(&t.files(), "/docs/sub", &[]);
    assert_eq!(header(&resp, "Location"), Some("/docs/sub/"));
    // A file asked for as a directory is not there.
    assert_eq!(get(&t.files(), "/hello.txt/", &[]).status, 404);
}

#[test]
fn a_directory_without_index_gets_a_listing_with_escaped_names() {
    let t = Tree::new();
    let resp = get(&t.files(), "/docs/", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(
        header(&resp, "Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8(body(resp)).unwrap();
    assert!(
        html.contains("<a href=\"a%26b%3Cc%3E%22d%27.txt\">a&amp;b&lt;c&gt;&quot;d&#39;.txt</a>")
    );
    assert!(html.contains("<a href=\"sub/\">sub/</a>"), "{html}");
    assert!(!html.contains("<c>"));
    // The listing's link works.
    assert_eq!(
        body(get(&t.files(), "/docs/a%26b%3Cc%3E%22d%27.txt", &[])),
        b"x"
    );
    // Listings can be turned off.
    assert_eq!(get(&t.files().listing(false), "/docs/", &[]).status, 404);
}

#[cfg(unix)]
#[test]
fn a_symlink_inside_the_root_is_served() {
    let t = Tree::new();
    let resp = get(&t.files(), "/link-in", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(body(resp), b"hello, world\n");
}

/// Every way out of the root is refused with 404 (never 200, never the secret).
fn assert_refused(files: &Files, target: &str) {
    let resp = get(files, target, &[]);
    let status = resp.status;
    let got = body(resp);
    assert!(status == 404 || status == 400, "{target}: status {status}");
    assert!(
        !got.windows(SECRET.len()).any(|w| w == SECRET),
        "{target}: leaked the secret"
    );
}

#[test]
fn dot_dot_segments_plain_or_encoded_are_refused() {
    let t = Tree::new();
    let f = t.files();
    // The secret is reachable as ../secret.txt from the root: check it is there.
    assert_eq!(fs::read(t.root().join("../secret.txt")).unwrap(), SECRET);
    for target in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/docs/%2e%2e/%2e%2e/secret.txt",
        "/./hello.txt",
        "/%2e/hello.txt",
    ] {
        assert_refused(&f, target);
    }
}

#[test]
fn encoded_slashes_and_backslashes_are_refused() {
    let t = Tree::new();
    let f = t.files();
    for target in [
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/docs%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/..%5Csecret.txt",
        "/..\\secret.txt",
        "/docs\\..\\..\\secret.txt",
        "/site%2Findex.html",
    ] {
        assert_refused(&f, target);
    }
}

#[test]
fn nul_absolute_paths_and_drive_prefixes_are_refused() {
    let t = Tree::new();
    let f = t.files();
    let abs = t.base.join("secret.txt");
    let abs = abs.to_str().unwrap();
    let double = format!("/{abs}");
    let encoded = format!("/{}", abs.replace('/', "%2f"));
    for target in [
        "/hello.txt%00",
        "/hello.txt%00.html",
        "/%00/secret.txt",
        double.as_str(),
        encoded.as_str(),
        "//etc/passwd",
        "/docs//sub/",
        "/C:/secret.txt",
        "/c:%5csecret.txt",
        "/C%3A/secret.txt",
        "relative/hello.txt",
        "*",
        "/site\r\nSet-Cookie: a=b",
        "/hello .txt",
        "/h\u{e9}llo.txt",
    ] {
        assert_refused(&f, target);
    }
}

#[cfg(unix)]
#[test]
fn symlinks_leading_outside_the_root_are_refused() {
    let t = Tree::new();
    let f = t.files();
    for target in [
        "/link-out",
        "/rel-out",
        "/dir-out/secret.txt",
        // root2 starts like root, but is not under it (components compare, not strings).
        "/sneaky",
    ] {
        assert_refused(&f, target);
    }
    // An index.html that is a link out is not served; the directory is listed instead.
    let resp = get(&f, "/trap/", &[]);
    assert_eq!(resp.status, 200);
    let html = body(resp);
    assert!(!html.windows(SECRET.len()).any(|w| w == SECRET));
    // The listing of a link to a directory outside is refused as well.
    assert_refused(&f, "/dir-out/");
    // What counts is where the path ends: through the link out and back in is inside.
    assert_eq!(get(&f, "/dir-out/root/hello.txt", &[]).status, 200);
}

#[test]
fn a_mounted_tree_strips_its_prefix_and_refuses_the_rest() {
    let t = Tree::new();
    for prefix in ["/static", "/static/"] {
        let f = t.files().under(prefix);
        assert_eq!(body(get(&f, "/static/hello.txt", &[])), b"hello, world\n");
        assert_eq!(body(get(&f, "/st%61tic/hello.txt", &[])), b"hello, world\n");
        assert_eq!(get(&f, "/hello.txt", &[]).status, 404);
        assert_eq!(get(&f, "/statichello.txt", &[]).status, 404);
        let resp = get(&f, "/static", &[]);
        assert_eq!(resp.status, 301);
        assert_eq!(header(&resp, "Location"), Some("/static/"));
        assert_eq!(get(&f, "/static/", &[]).status, 200);
        let resp = get(&f, "/static/site", &[]);
        assert_eq!(header(&resp, "Location"), Some("/static/site/"));
        assert_refused(&f, "/static/../secret.txt");
        assert_refused(&f, "/static/%2e%2e/secret.txt");
        assert_refused(&f, "/static%2f..%2fsecret.txt");
        assert_refused(&f, "/static/..%2fsecret.txt");
        assert_refused(&f, "/static//etc/passwd");
    }
}

#[test]
fn files_behind_a_router_answer_get_and_head_and_refuse_escapes() {
    let t = Tree::new();
    let router = Router::new()
        .route(Method::Get, "/", |_req: Request| {
            Response::text(200, "home")
        })
        .prefix(Method::Get, "/static", t.files().under("/static"));
    assert_eq!(
        body(get(&router, "/static/hello.txt", &[])),
        b"hello, world\n"
    );
    let head = router.handle(request(Method::Head, "/static/hello.txt", &[]));
    assert_eq!(head.status, 200);
    assert!(matches!(head.body, Body::Reader { len: Some(13), .. }));
    assert_eq!(
        router
            .handle(request(Method::Post, "/static/hello.txt", &[]))
            .status,
        405
    );
    assert_eq!(get(&router, "/static/%zz", &[]).status, 400);
    let resp = get(&router, "/static/../secret.txt", &[]);
    assert_eq!(resp.status, 404);
}

#[test]
fn a_missing_file_or_root_is_404() {
    let t = Tree::new();
    assert_eq!(get(&t.files(), "/nope.txt", &[]).status, 404);
    assert_eq!(
        get(&Files::new(t.base.join("no-such-root")), "/", &[]).status,
        404
    );
}

#[test]
fn range_parsing_matches_the_rfc_forms() {
    use RangeAsk::*;
    assert_eq!(parse_range("bytes=0-0", 1), Part { first: 0, last: 0 });
    assert_eq!(parse_range("bytes=-1", 1), Part { first: 0, last: 0 });
    assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
    assert_eq!(parse_range("bytes= 2 - 3 ", 10), Part { first: 2, last: 3 });
    assert_eq!(parse_range("bytes=2-3,", 10), Part { first: 2, last: 3 });
    assert_eq!(parse_range("bytes=+2-3", 10), Whole);
}

#[test]
fn entity_tag_lists_parse_or_fail_whole() {
    assert_eq!(parse_etags(b" * "), Some(EtagList::Any));
    assert_eq!(
        parse_etags(b"\"a\", W/\"b\",,\"\""),
        Some(EtagList::Tags(vec![
            EntityTag {
                weak: false,
                opaque: b"\"a\""
            },
            EntityTag {
                weak: true,
                opaque: b"\"b\""
            },
            EntityTag {
                weak: false,
                opaque: b"\"\""
            },
        ]))
    );
    assert_eq!(parse_etags(b"a"), None);
    assert_eq!(parse_etags(b"\"a\" \"b\""), None);
    assert_eq!(parse_etags(b"\"a b\""), None);
    assert_eq!(parse_etags(b"\"unterminated"), None);
    assert_eq!(parse_etags(b"w/\"a\""), None, "W/ is case-sensitive");
}

#[cfg(unix)]
#[test]
fn a_raw_control_character_never_reaches_a_location_field() {
    // A directory whose name holds a line feed: asked for raw, it would put the LF into the
    // Location of the redirect (a header injection); only the percent-encoded form is taken.
    let t = Tree::new();
    fs::create_dir(t.root().join("x\ny")).unwrap();
    assert_eq!(get(&t.files(), "/x\ny", &[]).status, 404);
    let resp = get(&t.files(), "/x%0Ay", &[]);
    assert_eq!(resp.status, 301);
    assert_eq!(header(&resp, "Location"), Some("/x%0Ay/"));
}

#[cfg(target_os = "linux")]
#[test]
fn an_opened_file_is_checked_against_the_root_by_what_the_kernel_opened() {
    let t = Tree::new();
    let root = fs::canonicalize(t.root()).unwrap();
    let inside = File::open(root.join("hello.txt")).unwrap();
    assert!(opened_under(&inside, &root));
    // Opened through a link leading out: the kernel names the real file, outside.
    let through_link = File::open(root.join("link-out")).unwrap();
    assert!(!opened_under(&through_link, &root));
    let sibling = File::open(root.join("sneaky")).unwrap();
    assert!(!opened_under(&sibling, &root));
}

proptest::proptest! {
    #[test]
    fn no_request_path_maps_outside_the_root(
        path in proptest::collection::vec(
            proptest::sample::select(vec![
                "/", "..", ".", "%2e", "%2E", "%2f", "%2F", "%5c", "\\", "%00", "C:", "a", "b.txt",
                "%", "%zz", "static", "~", "%7e", "//",
            ]),
            0..12,
        ),
        prefix in proptest::sample::select(vec!["", "/static", "/static/"]),
    ) {
        // Whatever the path, what the handler looks up is a plain relative path: only normal
        // components, none of them `.` or `..`, no root, no drive, no separator inside a name.
        let path: String = path.concat();
        let files = Files::new("/nonexistent").under(prefix);
        if let Some((rel, _)) = files.relative(&path) {
            for c in rel.components() {
                let std::path::Component::Normal(name) = c else {
                    return Err(proptest::test_runner::TestCaseError::fail(format!("{path}: {c:?}")));
                };
                let name = name.to_str().unwrap();
                proptest::prop_assert!(segment_is_safe(name), "{}: {:?}", path, name);
            }
        }
    }

    #[test]
    fn a_parsed_range_lies_inside_the_file(value in "(bytes|BYTES|items)=[0-9,\\- ]{0,12}", len in 0u64..50) {
        match parse_range(&value, len) {
            RangeAsk::Part { first, last } => proptest::prop_assert!(first <= last && last < len),
            RangeAsk::Whole | RangeAsk::Unsatisfiable => {}
        }
    }
}
