//! A router: dispatches a [`Request`] to a handler by method and path.
//!
//! Routes are exact paths (`/about`) or prefixes (`/static/`), each for one method or for any
//! method. How a request finds its handler:
//!
//! 1. The path must be origin-form (start with `/`) and its percent-encoding valid, and so must
//!    the query's (RFC 3986 §2.1); otherwise 400. Handlers read the decoded query with
//!    [`Request::query_pairs`].
//! 2. The path is compared in normalized form (RFC 3986 §6.2.2): escapes of unreserved
//!    characters are decoded, others kept with upper-case hex, so `/st%61tic` matches a route
//!    `/static` and `%2F` never counts as a separator. Patterns are normalized the same way when
//!    added.
//! 3. Among the routes whose method accepts the request's method, an exact route beats any
//!    prefix route and a longer prefix beats a shorter one. A HEAD request also matches GET
//!    routes (RFC 9110 §9.3.2: the server drops the body); the handler sees `Method::Head`.
//!    Among equally specific routes, one for exactly the request's method wins over an
//!    any-method route, which wins over a GET route taking a HEAD request.
//! 4. A path that some route matches, but none for this method, is answered 405 with an `Allow`
//!    field listing the methods those routes take (RFC 9110 §15.5.6). A path no route matches
//!    is answered 404 (or by the handler set with [`Router::not_found`]).
//!
//! A prefix matches at segment boundaries: `/static/` matches `/static/a.css`; `/static`
//! matches `/static`, `/static/` and `/static/a.css` but not `/statics`.
//!
//! The handler gets the request unchanged (path still percent-encoded and unstripped); a
//! handler mounted under a prefix, such as [`Files`](super::files::Files), strips the prefix
//! itself.

use super::percent::{self, PercentError};
use super::{Handler, Method, Request, Response};

/// Whether a route's pattern is the whole path or a prefix of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exact,
    Prefix,
}

struct Route {
    /// `None`: any method.
    method: Option<Method>,
    kind: Kind,
    /// Normalized (see [`percent::normalize_path`]).
    pattern: String,
    handler: Box<dyn Handler>,
}

impl Route {
    fn matches_path(&self, path: &str) -> bool {
        match self.kind {
            Kind::Exact => path == self.pattern,
            Kind::Prefix => prefix_matches(&self.pattern, path),
        }
    }

    /// True when this route serves `method`; HEAD is served by GET routes too.
    fn accepts(&self, method: Method) -> bool {
        match self.method {
            None => true,
            Some(m) => m == method || (method == Method::Head && m == Method::Get),
        }
    }
}

/// True when `prefix` matches `path` at a segment boundary.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

/// Dispatches requests to handlers by method and path; see the [module documentation](self)
/// for the matching rules. A `Router` is itself a [`Handler`], so routers nest and a server
/// takes one as its handler.
///
/// ```
/// use netstack_application::http::{Method, Request, Response, Router, Handler};
///
/// let router = Router::new()
///     .route(Method::Get, "/", |_req: Request| Response::text(200, "home"))
///     .route(Method::Get, "/hello", |req: Request| {
///         let pairs = req.query_pairs().unwrap_or_default();
///         let name = pairs.iter().find(|(n, _)| n == "name").map_or("world", |(_, v)| v);
///         Response::text(200, format!("hello, {name}"))
///     })
///     .prefix_any("/api/", |req: Request| Response::text(200, req.path));
///
/// assert_eq!(router.handle(Request::new(Method::Get, "/hello?name=a+b")).status, 200);
/// assert_eq!(router.handle(Request::new(Method::Post, "/hello")).status, 405);
/// assert_eq!(router.handle(Request::new(Method::Get, "/nowhere")).status, 404);
/// ```
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    not_found: Option<Box<dyn Handler>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for r in &self.routes {
            let method = r.method.map_or("*", Method::as_str);
            let star = if r.kind == Kind::Prefix { "*" } else { "" };
            list.entry(&format_args!("{method} {}{star}", r.pattern));
        }
        list.finish()
    }
}

impl Router {
    /// A router without routes: it answers 404 to everything.
    pub fn new() -> Router {
        Router::default()
    }

    fn add(mut self, method: Option<Method>, kind: Kind, pattern: &str, h: impl Handler) -> Self {
        // A pattern that is not valid percent-encoding is a programming error of the caller.
        let pattern = percent::normalize_path(pattern)
            .unwrap_or_else(|e| panic!("route pattern {pattern:?}: {e}"));
        self.routes.push(Route {
            method,
            kind,
            pattern,
            handler: Box::new(h),
        });
        self
    }

    /// Routes requests with `method` and exactly `path` to `handler` (and HEAD requests too,
    /// when `method` is GET). Panics if `path` holds an invalid percent-escape.
    pub fn route(self, method: Method, path: &str, handler: impl Handler) -> Router {
        self.add(Some(method), Kind::Exact, path, handler)
    }

    /// Routes requests with any method and exactly `path` to `handler`.
    pub fn route_any(self, path: &str, handler: impl Handler) -> Router {
        self.add(None, Kind::Exact, path, handler)
    }

    /// Routes requests with `method` whose path starts with `prefix` (at a segment boundary)
    /// to `handler`. Panics if `prefix` holds an invalid percent-escape.
    pub fn prefix(self, method: Method, prefix: &str, handler: impl Handler) -> Router {
        self.add(Some(method), Kind::Prefix, prefix, handler)
    }

    /// Routes requests with any method whose path starts with `prefix` to `handler`.
    pub fn prefix_any(self, prefix: &str, handler: impl Handler) -> Router {
        self.add(None, Kind::Prefix, prefix, handler)
    }

    /// Answers requests no route's path matches with `handler` instead of a plain 404.
    pub fn not_found(mut self, handler: impl Handler) -> Router {
        self.not_found = Some(Box::new(handler));
        self
    }

    /// The route that serves `method` on the normalized `path`: exact first, then the longest
    /// prefix; among those equally specific, one for exactly this method before one for any
    /// method or a GET route taking a HEAD request; among equals, the one added first.
    fn find(&self, method: Method, path: &str) -> Option<&Route> {
        let rank = |r: &Route| {
            let method_rank = match r.method {
                Some(m) if m == method => 2,
                None => 1,
                Some(_) => 0, // GET serving HEAD
            };
            (r.kind == Kind::Exact, r.pattern.len(), method_rank)
        };
        let mut best: Option<(&Route, _)> = None;
        for r in self.routes.iter() {
            if !(r.accepts(method) && r.matches_path(path)) {
                continue;
            }
            let key = rank(r);
            if best.as_ref().is_none_or(|(_, k)| key > *k) {
                best = Some((r, key));
            }
        }
        best.map(|(r, _)| r)
    }

    /// The methods of the routes matching `path`, in [`Method::ALL`] order, HEAD included
    /// where GET is (for the `Allow` field of a 405).
    fn allowed(&self, path: &str) -> Vec<Method> {
        let matching: Vec<&Route> = self
            .routes
            .iter()
            .filter(|r| r.matches_path(path))
            .collect();
        Method::ALL
            .into_iter()
            .filter(|&m| matching.iter().any(|r| r.accepts(m)))
            .collect()
    }
}

fn bad_request(what: &str, e: PercentError) -> Response {
    Response::text(400, format!("Bad Request: {what}: {e}\n"))
}

impl Handler for Router {
    fn handle(&self, req: Request) -> Response {
        if !req.path.starts_with('/') {
            return Response::text(400, "Bad Request: the path must start with '/'\n");
        }
        let path = match percent::normalize_path(&req.path) {
            Ok(p) => p,
            Err(e) => return bad_request("path", e),
        };
        if let Some(q) = &req.query {
            if let Err(e) = percent::parse_query(q) {
                return bad_request("query", e);
            }
        }
        if let Some(route) = self.find(req.method, &path) {
            return route.handler.handle(req);
        }
        let allowed = self.allowed(&path);
        if !allowed.is_empty() {
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            return Response::text(405, "Method Not Allowed\n").header("Allow", allow.join(", "));
        }
        match &self.not_found {
            Some(h) => h.handle(req),
            None => Response::text(404, "Not Found\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;

    fn tag(name: &'static str) -> impl Handler {
        move |_req: Request| Response::text(200, name)
    }

    fn body_of(resp: &Response) -> String {
        match &resp.body {
            Body::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
            Body::Empty => String::new(),
            Body::Reader { .. } => panic!("unexpected reader body"),
        }
    }

    fn get(router: &Router, target: &str) -> (u16, String) {
        call(router, Method::Get, target)
    }

    fn call(router: &Router, method: Method, target: &str) -> (u16, String) {
        let resp = router.handle(Request::new(method, target));
        (resp.status, body_of(&resp))
    }

    fn sample() -> Router {
        Router::new()
            .route(Method::Get, "/", tag("root"))
            .route(Method::Get, "/static/special.txt", tag("exact"))
            .route(Method::Post, "/form", tag("post-form"))
            .route(Method::Put, "/form", tag("put-form"))
            .prefix(Method::Get, "/static/", tag("static"))
            .prefix(Method::Get, "/static/img/", tag("img"))
            .prefix_any("/api", tag("api"))
            .route_any("/any", tag("any"))
    }

    #[test]
    fn exact_routes_match_the_whole_path_only() {
        let r = sample();
        assert_eq!(get(&r, "/"), (200, "root".into()));
        assert_eq!(get(&r, "/?x=1").1, "root");
        assert_eq!(get(&r, "/any"), (200, "any".into()));
        assert_eq!(get(&r, "/any/more").0, 404);
        assert_eq!(get(&r, "/anything").0, 404);
    }

    #[test]
    fn exact_beats_prefix_and_the_longest_prefix_wins() {
        let r = sample();
        assert_eq!(get(&r, "/static/special.txt").1, "exact");
        assert_eq!(get(&r, "/static/a.css").1, "static");
        assert_eq!(get(&r, "/static/img/logo.png").1, "img");
        assert_eq!(get(&r, "/static/imgs").1, "static");
        // Order of addition does not matter for the length rule.
        let r = Router::new()
            .prefix(Method::Get, "/a/b/", tag("long"))
            .prefix(Method::Get, "/a/", tag("short"));
        assert_eq!(get(&r, "/a/b/c").1, "long");
        assert_eq!(get(&r, "/a/c").1, "short");
    }

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        let r = sample();
        assert_eq!(get(&r, "/api").1, "api");
        assert_eq!(get(&r, "/api/").1, "api");
        assert_eq!(get(&r, "/api/v1/users").1, "api");
        assert_eq!(get(&r, "/apiary").0, 404);
        // `/static/` (with the slash) does not match `/static`.
        assert_eq!(get(&r, "/static").0, 404);
    }

    #[test]
    fn any_method_routes_take_every_method() {
        let r = sample();
        for m in Method::ALL {
            assert_eq!(call(&r, m, "/api/x"), (200, "api".into()), "{m}");
            assert_eq!(call(&r, m, "/any"), (200, "any".into()), "{m}");
        }
    }

    #[test]
    fn a_path_that_matches_only_other_methods_gets_405_with_allow() {
        // RFC 9110 §15.5.6: a 405 carries Allow with the methods the target supports.
        let r = sample();
        let resp = r.handle(Request::new(Method::Get, "/form"));
        assert_eq!(resp.status, 405);
        assert_eq!(resp.headers.get_str("Allow"), Some("POST, PUT"));
        let resp = r.handle(Request::new(Method::Delete, "/"));
        assert_eq!(resp.status, 405);
        assert_eq!(resp.headers.get_str("Allow"), Some("GET, HEAD"));
        // A prefix route that matches gives its method too.
        let resp = r.handle(Request::new(Method::Post, "/static/special.txt"));
        assert_eq!(resp.status, 405);
        assert_eq!(resp.headers.get_str("Allow"), Some("GET, HEAD"));
        assert_eq!(call(&r, Method::Post, "/form").1, "post-form");
        assert_eq!(call(&r, Method::Put, "/form").1, "put-form");
    }

    #[test]
    fn a_path_no_route_matches_gets_404_or_the_fallback() {
        let r = sample();
        assert_eq!(get(&r, "/nothing").0, 404);
        assert_eq!(call(&r, Method::Post, "/nothing").0, 404);
        let r = sample().not_found(|req: Request| Response::text(404, format!("no {}", req.path)));
        assert_eq!(get(&r, "/nothing"), (404, "no /nothing".into()));
        // The fallback is for unmatched paths only; a method mismatch is still 405.
        assert_eq!(get(&r, "/form").0, 405);
    }

    #[test]
    fn head_falls_back_to_get_routes_and_the_handler_sees_head() {
        let r = Router::new().route(Method::Get, "/x", |req: Request| {
            Response::text(200, req.method.as_str())
        });
        assert_eq!(call(&r, Method::Head, "/x"), (200, "HEAD".into()));
        // A HEAD-only route takes HEAD, and GET is then not allowed.
        let r = r.route(Method::Head, "/y", tag("head-y"));
        assert_eq!(call(&r, Method::Head, "/y").1, "head-y");
        assert_eq!(get(&r, "/y").0, 405);
    }

    #[test]
    fn a_route_for_exactly_the_method_beats_a_fallback_of_equal_specificity() {
        // Whatever the order of addition: explicit HEAD over GET, explicit method over any.
        for flip in [false, true] {
            let (a, b) = (
                Router::new().route(Method::Get, "/z", tag("get")),
                Router::new().route(Method::Head, "/z", tag("head")),
            );
            let r = if flip {
                b.route(Method::Get, "/z", tag("get"))
                    .route_any("/z", tag("any"))
            } else {
                a.route_any("/z", tag("any"))
                    .route(Method::Head, "/z", tag("head"))
            };
            assert_eq!(call(&r, Method::Head, "/z").1, "head", "flip {flip}");
            assert_eq!(get(&r, "/z").1, "get", "flip {flip}");
            assert_eq!(call(&r, Method::Post, "/z").1, "any", "flip {flip}");
        }
        // Specificity comes first: an exact any-method route beats a GET prefix.
        let r = Router::new()
            .prefix(Method::Get, "/p/", tag("prefix"))
            .route_any("/p/x", tag("exact"));
        assert_eq!(get(&r, "/p/x").1, "exact");
    }

    #[test]
    fn paths_compare_after_normalizing_unreserved_escapes() {
        // RFC 3986 §6.2.2.2: %61 is `a`, so /st%61tic/ is /static/.
        let r = sample();
        assert_eq!(get(&r, "/st%61tic/a.css").1, "static");
        assert_eq!(get(&r, "/%61ny").1, "any");
        // An encoded slash is not a separator: /static%2Fa is one segment, no route.
        assert_eq!(get(&r, "/static%2Fimg/x").0, 404);
        // Patterns are normalized too.
        let r = Router::new().route(Method::Get, "/caf%C3%A9%20au%20lait", tag("cafe"));
        assert_eq!(get(&r, "/caf%c3%a9%20au%20lait").1, "cafe");
    }

    #[test]
    fn invalid_percent_encoding_in_path_or_query_is_400() {
        let r = sample();
        assert_eq!(get(&r, "/static/%zz").0, 400);
        assert_eq!(get(&r, "/static/a%2").0, 400);
        assert_eq!(get(&r, "/?a=%").0, 400);
        assert_eq!(get(&r, "/?a=%4").0, 400);
        assert_eq!(get(&r, "/?a=%ff").0, 400, "not UTF-8");
        assert_eq!(get(&r, "*").0, 400, "not origin-form");
    }

    #[test]
    fn handlers_read_the_decoded_query() {
        let r = Router::new().route(Method::Get, "/q", |req: Request| {
            let pairs = req.query_pairs().unwrap();
            let text: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            Response::text(200, text.join("|"))
        });
        assert_eq!(get(&r, "/q?a=1+2&b=%26%3D&c").1, "a=1 2|b=&=|c=");
        assert_eq!(get(&r, "/q").1, "");
    }

    #[test]
    fn routers_nest_because_a_router_is_a_handler() {
        let inner = Router::new().route(Method::Get, "/v1/users", tag("users"));
        let outer = Router::new().prefix_any("/v1/", inner);
        assert_eq!(get(&outer, "/v1/users").1, "users");
        assert_eq!(get(&outer, "/v1/other").0, 404);
        assert_eq!(format!("{outer:?}"), "[* /v1/*]");
    }

    #[test]
    #[should_panic(expected = "route pattern")]
    fn an_invalid_pattern_is_a_programming_error() {
        let _ = Router::new().route(Method::Get, "/%zz", tag("x"));
    }
}
