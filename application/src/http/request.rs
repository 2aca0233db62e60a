//! The message head of RFC 9112: an incremental scanner that finds where a head ends (and
//! rejects bare CR or LF line ends and oversized heads as the bytes arrive), the request-line
//! and status-line parsers, the field-line grammar shared by requests, responses and chunked
//! trailers, and a request emitter (for the client and for round-trip tests).
//!
//! Everything here is sans-IO: it works on byte slices and never blocks. Every limit is in
//! [`Limits`]; every rejection is a [`ParseError`] naming its cause and the status to answer.

use super::body::BodyFraming;
use super::{Headers, Method, Request, Version};

/// The bounds a parser enforces on what a peer sends (RFC 9112 §2.3, §3, §5; RFC 9110 §15.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest request line (or status line), CRLF excluded; longer gets 414.
    pub max_request_line: usize,
    /// The longest head (start line and every field line, with their CRLFs); longer gets 431.
    pub max_head: usize,
    /// The most field lines in a head (or in a trailer section); more gets 431.
    pub max_fields: usize,
    /// The largest body accepted; larger gets 413.
    pub max_body: u64,
}

impl Limits {
    /// The request line limit: 8 KiB.
    pub const DEFAULT_REQUEST_LINE: usize = 8 * 1024;
    /// The head limit: 64 KiB.
    pub const DEFAULT_HEAD: usize = 64 * 1024;
    /// The field count limit: 100.
    pub const DEFAULT_FIELDS: usize = 100;
    /// The body limit: 8 MiB.
    pub const DEFAULT_BODY: u64 = 8 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_line: Limits::DEFAULT_REQUEST_LINE,
            max_head: Limits::DEFAULT_HEAD,
            max_fields: Limits::DEFAULT_FIELDS,
            max_body: Limits::DEFAULT_BODY,
        }
    }
}

/// Why a message was rejected. Each cause maps to one status ([`ParseError::status`]) and one
/// counter in the server's stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The request line is longer than [`Limits::max_request_line`] (414).
    RequestLineTooLong,
    /// The head is longer than [`Limits::max_head`] (431).
    HeadTooLarge,
    /// The head has more fields than [`Limits::max_fields`] (431).
    TooManyFields,
    /// A CR not followed by LF, or an LF not preceded by CR (RFC 9112 §2.2).
    BareLineEnd,
    /// A field line starting with whitespace: obsolete line folding (RFC 9112 §5.2).
    ObsFold,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    SpaceBeforeColon,
    /// A field line without a colon, or with a name that is not a token (RFC 9110 §5.1).
    InvalidFieldName,
    /// A field value with NUL, CR, LF or another control character (RFC 9110 §5.5).
    InvalidFieldValue,
    /// A malformed request line: wrong number of parts, bad method token, bad target
    /// (RFC 9112 §3).
    InvalidRequestLine,
    /// A malformed status line (RFC 9112 §4).
    InvalidStatusLine,
    /// A version that is not `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3).
    InvalidVersion,
    /// A well-formed version whose major number is not 1 (505, RFC 9110 §15.6.6).
    UnsupportedVersion,
    /// A method token this server does not implement (501, RFC 9110 §9.1).
    UnknownMethod,
    /// An HTTP/1.1 request without Host, or any request with more than one (RFC 9112 §3.2).
    BadHost,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.1: smuggling).
    ContentLengthWithTransferEncoding,
    /// A Content-Length that is not digits, overflows, or whose values differ (RFC 9112 §6.3,
    /// RFC 9110 §8.6).
    InvalidContentLength,
    /// A Transfer-Encoding whose final coding is not chunked, that names chunked twice, or
    /// that is sent in an HTTP/1.0 request (RFC 9112 §6.1).
    InvalidTransferEncoding,
    /// A transfer coding other than chunked, which this server does not decode (501, RFC 9112
    /// §6.1).
    UnsupportedTransferCoding,
    /// An `Expect` other than `100-continue` (417, RFC 9110 §10.1.1).
    UnsupportedExpectation,
    /// A malformed chunked body: bad size, overflowing size, bad extension, missing CRLF after
    /// the data, bad trailer (RFC 9112 §7.1).
    InvalidChunk,
    /// A body larger than [`Limits::max_body`] (413).
    BodyTooLarge,
}

impl ParseError {
    /// Every cause, in the order of the server's counters.
    pub const ALL: [ParseError; 21] = [
        ParseError::RequestLineTooLong,
        ParseError::HeadTooLarge,
        ParseError::TooManyFields,
        ParseError::BareLineEnd,
        ParseError::ObsFold,
        ParseError::SpaceBeforeColon,
        ParseError::InvalidFieldName,
        ParseError::InvalidFieldValue,
        ParseError::InvalidRequestLine,
        ParseError::InvalidStatusLine,
        ParseError::InvalidVersion,
        ParseError::UnsupportedVersion,
        ParseError::UnknownMethod,
        ParseError::BadHost,
        ParseError::ContentLengthWithTransferEncoding,
        ParseError::InvalidContentLength,
        ParseError::InvalidTransferEncoding,
        ParseError::UnsupportedTransferCoding,
        ParseError::UnsupportedExpectation,
        ParseError::InvalidChunk,
        ParseError::BodyTooLarge,
    ];

    /// This cause's index in [`ParseError::ALL`].
    pub fn index(self) -> usize {
        ParseError::ALL.iter().position(|&e| e == self).unwrap_or(0)
    }

    /// The status a server answers this cause with (RFC 9110 §15).
    pub fn status(self) -> u16 {
        match self {
            ParseError::RequestLineTooLong => 414,
            ParseError::HeadTooLarge | ParseError::TooManyFields => 431,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnknownMethod | ParseError::UnsupportedTransferCoding => 501,
            ParseError::UnsupportedExpectation => 417,
            ParseError::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for ParseError {}

/// Finds the end of a message head as bytes arrive, in time linear in the bytes: call
/// [`HeadScanner::scan`] with the whole buffer each time more has been read. It checks line
/// ends (CRLF only, RFC 9112 §2.2), the start-line and head limits and the field count;
/// the full grammar is checked once the head is complete.
#[derive(Debug, Clone, Default)]
pub struct HeadScanner {
    /// Where the head starts (past empty lines before a request line, RFC 9112 §2.2).
    start: usize,
    /// The next byte to look at.
    pos: usize,
    /// Where the current line starts.
    line_start: usize,
    /// Lines ended so far (the start line included).
    lines: usize,
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSpan {
    /// Where the head starts in the buffer.
    pub start: usize,
    /// One past the CRLF that ends the head.
    pub end: usize,
}

impl HeadScanner {
    /// A scanner at the start of a buffer.
    pub fn new() -> HeadScanner {
        HeadScanner::default()
    }

    /// Scans what `buf` holds past the previous call. `Ok(None)`: the head is not complete
    /// yet; `Ok(Some(span))`: it is `buf[span.start..span.end]`.
    pub fn scan(&mut self, buf: &[u8], limits: &Limits) -> Result<Option<HeadSpan>, ParseError> {
        while self.pos < buf.len() {
            let b = buf[self.pos];
            if b == b'\r' {
                match buf.get(self.pos + 1) {
                    None => break,
                    Some(b'\n') => {}
                    Some(_) => return Err(ParseError::BareLineEnd),
                }
                let line_len = self.pos - self.line_start;
                self.pos += 2;
                if line_len == 0 {
                    if self.lines == 0 {
                        // RFC 9112 §2.2: empty lines before the request line are ignored,
                        // within the request line's limit.
                        self.start = self.pos;
                        self.line_start = self.pos;
                        if self.start > limits.max_request_line {
                            return Err(ParseError::RequestLineTooLong);
                        }
                        continue;
                    }
                    return Ok(Some(HeadSpan {
                        start: self.start,
                        end: self.pos,
                    }));
                }
                self.lines += 1;
                if self.lines > limits.max_fields + 1 {
                    return Err(ParseError::TooManyFields);
                }
                self.line_start = self.pos;
                continue;
            }
            if b == b'\n' {
                return Err(ParseError::BareLineEnd);
            }
            self.pos += 1;
            if self.lines == 0 && self.pos - self.line_start > limits.max_request_line {
                return Err(ParseError::RequestLineTooLong);
            }
            if self.pos - self.start > limits.max_head {
                return Err(ParseError::HeadTooLarge);
            }
        }
        if self.pos - self.start > limits.max_head {
            return Err(ParseError::HeadTooLarge);
        }
        Ok(None)
    }
}

/// tchar (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True when `s` is a token (RFC 9110 §5.6.2): one or more tchar.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Splits a complete head (ending with the empty line) into its lines, without CRLFs.
/// The scanner has already proved every line end is a CRLF.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// Parses field lines (RFC 9112 §5): `field-name ":" OWS field-value OWS`, names tokens with no
/// whitespace before the colon, values without CTLs other than HTAB, no obs-fold.
pub(crate) fn parse_field_line(line: &[u8], headers: &mut Headers) -> Result<(), ParseError> {
    if line.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        // RFC 9112 §5.2: obs-fold is rejected with 400 in a request.
        return Err(ParseError::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseError::InvalidFieldName)?;
    let name = &line[..colon];
    if name.last().is_some_and(|&b| b == b' ' || b == b'\t') {
        // RFC 9112 §5.1: no whitespace between the name and the colon, answered with 400.
        return Err(ParseError::SpaceBeforeColon);
    }
    if !is_token(name) {
        return Err(ParseError::InvalidFieldName);
    }
    let value = trim_ows(&line[colon + 1..]);
    // RFC 9110 §5.5: field-vchar is VCHAR or obs-text, with SP and HTAB inside; NUL, CR and LF
    // (and every other control) are rejected.
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::InvalidFieldValue);
    }
    // A name of tchar is ASCII, so it is valid UTF-8.
    let name = std::str::from_utf8(name).map_err(|_| ParseError::InvalidFieldName)?;
    headers.append(name, value);
    Ok(())
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Parses `HTTP/DIGIT.DIGIT` (RFC 9112 §2.3). A 1.x above 1.1 is served as 1.1 (RFC 9110
/// §6.2); another major version is [`ParseError::UnsupportedVersion`].
pub(crate) fn parse_version(v: &[u8]) -> Result<Version, ParseError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', _) => Ok(Version::Http11),
                _ => Err(ParseError::UnsupportedVersion),
            }
        }
        _ => Err(ParseError::InvalidVersion),
    }
}

/// A parsed request head: the request without its body, and how its body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Method, target, version and fields; `body` is empty and `remote` is `None`.
    pub request: Request,
    /// How the body that follows is delimited (RFC 9112 §6.3).
    pub framing: BodyFraming,
    /// True when the client sent `Expect: 100-continue` in an HTTP/1.1 request.
    pub expect_continue: bool,
}

/// Parses a complete request head, as found by a [`HeadScanner`] (the start line through the
/// empty line). Applies every request rule of RFC 9112 §3 and §6: see [`ParseError`].
pub fn parse_request_head_bytes(head: &[u8], limits: &Limits) -> Result<RequestHead, ParseError> {
    let mut lines = lines(head);
    let line = lines.next().ok_or(ParseError::InvalidRequestLine)?;
    if line.len() > limits.max_request_line {
        return Err(ParseError::RequestLineTooLong);
    }
    // RFC 9112 §3: method SP request-target SP HTTP-version, single spaces.
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(ParseError::InvalidRequestLine);
    };
    let version = match (parts.next(), parts.next()) {
        (Some(v), None) => parse_version(v)?,
        // A request line without a version (HTTP/0.9 style) or with extra parts.
        _ => return Err(ParseError::InvalidRequestLine),
    };
    if !is_token(method) {
        return Err(ParseError::InvalidRequestLine);
    }
    if target.is_empty() || target.iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
        return Err(ParseError::InvalidRequestLine);
    }
    let method = Method::from_token(method).ok_or(ParseError::UnknownMethod)?;
    let target = std::str::from_utf8(target).map_err(|_| ParseError::InvalidRequestLine)?;
    let (path, query) = split_target(method, target)?;

    let mut headers = Headers::new();
    for line in lines {
        parse_field_line(line, &mut headers)?;
        if headers.len() > limits.max_fields {
            return Err(ParseError::TooManyFields);
        }
    }

    // RFC 9112 §3.2: a 1.1 request has exactly one Host; no request has two.
    let hosts = headers.count("host");
    if hosts > 1 || (version == Version::Http11 && hosts == 0) {
        return Err(ParseError::BadHost);
    }
    let framing = request_framing(&headers, version)?;
    if let BodyFraming::Length(n) = framing {
        if n > limits.max_body {
            return Err(ParseError::BodyTooLarge);
        }
    }
    // RFC 9110 §10.1.1: only 100-continue is defined; a 1.0 request's Expect is ignored.
    let mut expect_continue = false;
    if version == Version::Http11 {
        for e in headers.tokens("expect") {
            if e.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(ParseError::UnsupportedExpectation);
            }
        }
    }

    Ok(RequestHead {
        request: Request {
            method,
            target: target.to_string(),
            path,
            query,
            version,
            headers,
            body: Vec::new(),
            remote: None,
        },
        framing,
        expect_continue,
    })
}

/// The path and query of a request target (RFC 9112 §3.2): origin form `/p?q`, absolute form
/// `scheme://authority/p?q`, authority form for CONNECT, `*` for OPTIONS.
fn split_target(method: Method, target: &str) -> Result<(String, Option<String>), ParseError> {
    let split = |t: &str| match t.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (t.to_string(), None),
    };
    if target.starts_with('/') {
        return Ok(split(target));
    }
    if method == Method::Connect {
        return Ok((target.to_string(), None));
    }
    if target == "*" {
        return if method == Method::Options {
            Ok(("*".to_string(), None))
        } else {
            Err(ParseError::InvalidRequestLine)
        };
    }
    if let Some((scheme, rest)) = target.split_once("://") {
        if is_token(scheme.as_bytes()) && !rest.is_empty() {
            let at = rest.find(['/', '?']).unwrap_or(rest.len());
            let (p, q) = split(&rest[at..]);
            let p = if p.is_empty() { "/".to_string() } else { p };
            return Ok((p, q));
        }
    }
    Err(ParseError::InvalidRequestLine)
}

/// The Content-Length of a message: every value of every field, in comma lists, must be the
/// same run of digits that fits a u64 (RFC 9110 §8.6, RFC 9112 §6.3 rule 5).
pub(crate) fn content_length(headers: &Headers) -> Result<Option<u64>, ParseError> {
    let mut found: Option<u64> = None;
    for value in headers.get_all("content-length") {
        for part in value.split(|&b| b == b',') {
            let part = trim_ows(part);
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return Err(ParseError::InvalidContentLength);
            }
            let mut n: u64 = 0;
            for &d in part {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or(ParseError::InvalidContentLength)?;
            }
            match found {
                Some(m) if m != n => return Err(ParseError::InvalidContentLength),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// True when the Transfer-Encoding list ends in chunked, checked per RFC 9112 §6.1: chunked
/// at most once and last; codings are tokens. `Ok(false)` when there is no such field.
pub(crate) fn transfer_encoding_chunked(headers: &Headers) -> Result<bool, ParseError> {
    if !headers.contains("transfer-encoding") {
        return Ok(false);
    }
    let codings: Vec<&[u8]> = headers
        .get_all("transfer-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(trim_ows)
        .collect();
    let Some((last, before)) = codings.split_last() else {
        return Err(ParseError::InvalidTransferEncoding);
    };
    for c in &codings {
        // A coding may carry parameters (`gzip;q=...` is not allowed here, but tolerate the
        // grammar by taking the token before any ';').
        let name = c.split(|&b| b == b';').next().unwrap_or(&[]);
        if !is_token(trim_ows(name)) {
            return Err(ParseError::InvalidTransferEncoding);
        }
    }
    if !last.eq_ignore_ascii_case(b"chunked")
        || before.iter().any(|c| c.eq_ignore_ascii_case(b"chunked"))
    {
        return Err(ParseError::InvalidTransferEncoding);
    }
    if !before.is_empty() {
        // gzip, deflate, ... before chunked: this server decodes none of them.
        return Err(ParseError::UnsupportedTransferCoding);
    }
    Ok(true)
}

/// How a request's body is framed (RFC 9112 §6.3): Transfer-Encoding chunked, Content-Length,
/// or none. Both fields together, any Transfer-Encoding in 1.0, or a bad value are rejected.
fn request_framing(headers: &Headers, version: Version) -> Result<BodyFraming, ParseError> {
    let has_te = headers.contains("transfer-encoding");
    let has_cl = headers.contains("content-length");
    if has_te && has_cl {
        return Err(ParseError::ContentLengthWithTransferEncoding);
    }
    if has_te {
        if version == Version::Http10 {
            // RFC 9112 §6.1: a server MUST NOT apply chunked to a 1.0 message; a 1.0 request
            // with Transfer-Encoding is treated as faulty framing.
            return Err(ParseError::InvalidTransferEncoding);
        }
        transfer_encoding_chunked(headers)?;
        return Ok(BodyFraming::Chunked);
    }
    match content_length(headers)? {
        Some(0) | None => Ok(BodyFraming::None),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// Whether a message of `version` with `headers` lets its connection carry another exchange
/// (RFC 9112 §9.3): 1.1 unless `Connection: close`, 1.0 only with `Connection: keep-alive`.
pub fn persistent(version: Version, headers: &Headers) -> bool {
    match version {
        Version::Http11 => !headers.has_token("connection", "close"),
        Version::Http10 => headers.has_token("connection", "keep-alive"),
    }
}

/// A parsed response head (RFC 9112 §4), for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The version the server sent.
    pub version: Version,
    /// The status code, 100..=999.
    pub status: u16,
    /// The reason phrase (may be empty; never to be relied on, RFC 9112 §4).
    pub reason: String,
    /// The header fields in the order received.
    pub headers: Headers,
}

impl ResponseHead {
    /// How this response's body is framed, given the method of the request it answers
    /// (RFC 9112 §6.3): none for HEAD, 1xx, 204 and 304 (and 2xx to CONNECT); chunked;
    /// Content-Length; else until the connection closes.
    pub fn framing(&self, request_method: Method) -> Result<BodyFraming, ParseError> {
        if request_method == Method::Head
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
            || (request_method == Method::Connect && (200..300).contains(&self.status))
        {
            return Ok(BodyFraming::None);
        }
        if self.headers.contains("transfer-encoding") {
            // RFC 9112 §6.3 rule 3: Transfer-Encoding overrides Content-Length; a final
            // coding other than chunked reads until close. We reject both to stay strict.
            if self.headers.contains("content-length") {
                return Err(ParseError::ContentLengthWithTransferEncoding);
            }
            transfer_encoding_chunked(&self.headers)?;
            return Ok(BodyFraming::Chunked);
        }
        match content_length(&self.headers)? {
            Some(n) => Ok(BodyFraming::Length(n)),
            None => Ok(BodyFraming::UntilClose),
        }
    }

    /// True when the connection may carry another request after this response (RFC 9112
    /// §9.3): 1.1 unless `Connection: close`, 1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        persistent(self.version, &self.headers)
    }
}

/// Parses a response head from the start of `buf`: `Ok(None)` when it is not complete yet,
/// else the head and the number of bytes it took. Same field grammar and limits as requests.
pub fn parse_response_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(ResponseHead, usize)>, ParseError> {
    let mut scanner = HeadScanner::new();
    let span = match scanner.scan(buf, limits) {
        Ok(Some(span)) => span,
        Ok(None) => return Ok(None),
        Err(ParseError::RequestLineTooLong) => return Err(ParseError::HeadTooLarge),
        Err(e) => return Err(e),
    };
    let head = &buf[span.start..span.end];
    let mut lines = lines(head);
    let line = lines.next().ok_or(ParseError::InvalidStatusLine)?;
    // RFC 9112 §4: HTTP-version SP 3DIGIT SP [ reason-phrase ].
    let mut parts = line.splitn(3, |&b| b == b' ');
    let version = parse_version(parts.next().unwrap_or(&[]))?;
    let code = parts.next().ok_or(ParseError::InvalidStatusLine)?;
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return Err(ParseError::InvalidStatusLine);
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let reason = parts.next().unwrap_or(&[]);
    if reason
        .iter()
        .any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(ParseError::InvalidStatusLine);
    }
    let mut headers = Headers::new();
    for line in lines {
        parse_field_line(line, &mut headers)?;
        if headers.len() > limits.max_fields {
            return Err(ParseError::TooManyFields);
        }
    }
    Ok(Some((
        ResponseHead {
            version,
            status,
            reason: String::from_utf8_lossy(reason).into_owned(),
            headers,
        },
        span.end,
    )))
}

/// Parses a request head from the start of `buf` in one go: `Ok(None)` when it is not complete
/// yet, else the head and the number of bytes it took (empty lines before it included).
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, ParseError> {
    let mut scanner = HeadScanner::new();
    match scanner.scan(buf, limits)? {
        None => Ok(None),
        Some(span) => {
            let head = parse_request_head_bytes(&buf[span.start..span.end], limits)?;
            Ok(Some((head, span.end)))
        }
    }
}

/// Parses a whole request (head and body) from the start of `buf`: `Ok(None)` when it is not
/// complete yet, else the request and the number of bytes it took. For tests and tools; the
/// server reads bodies incrementally.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Option<(Request, usize)>, ParseError> {
    let Some((head, used)) = parse_request_head(buf, limits)? else {
        return Ok(None);
    };
    let mut request = head.request;
    match head.framing {
        BodyFraming::None => Ok(Some((request, used))),
        BodyFraming::Length(n) => {
            let rest = &buf[used..];
            if (rest.len() as u64) < n {
                return Ok(None);
            }
            let n = n as usize;
            request.body = rest[..n].to_vec();
            Ok(Some((request, used + n)))
        }
        BodyFraming::Chunked => {
            let mut decoder = super::body::ChunkedDecoder::new(limits);
            let (consumed, done) = decoder.decode(&buf[used..], &mut request.body)?;
            if done {
                Ok(Some((request, used + consumed)))
            } else {
                Ok(None)
            }
        }
        BodyFraming::UntilClose => Err(ParseError::InvalidRequestLine),
    }
}

/// Writes `req` as an HTTP/1.x request (RFC 9112 §3): the request line with its target and
/// version, its fields as they are, and its body. When the body is not empty and no
/// Content-Length or Transfer-Encoding field is present, a Content-Length is added.
pub fn emit_request(req: &Request, out: &mut Vec<u8>) {
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    req.headers.emit(out);
    let framed =
        req.headers.contains("content-length") || req.headers.contains("transfer-encoding");
    if !req.body.is_empty() && !framed {
        out.extend_from_slice(format!("Content-Length: {}\r\n", req.body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&req.body);
}
