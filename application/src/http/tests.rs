//! Codec tests: every rejection of RFC 9112 the server makes, the chunked edge cases, the
//! response writer's framing rules, and property tests (no panic on any input, parse(emit(x))
//! == x, httparse as an oracle).

use super::body::{encode_chunked, BodyFraming, ChunkedDecoder};
use super::request::{
    emit_request, parse_request, parse_request_head, parse_response_head, HeadScanner, Limits,
    ParseError,
};
use super::response::{write_response, ResponseContext};
use super::{Body, Method, Request, Response, Version};

fn limits() -> Limits {
    Limits::default()
}

/// Parses a whole request, expecting it to be complete.
fn parse(raw: &[u8]) -> Result<Request, ParseError> {
    match parse_request(raw, &limits())? {
        Some((req, used)) => {
            assert_eq!(used, raw.len(), "the request used every byte");
            Ok(req)
        }
        None => panic!("incomplete: {:?}", String::from_utf8_lossy(raw)),
    }
}

fn rejected(raw: &[u8]) -> ParseError {
    match parse_request(raw, &limits()) {
        Err(e) => e,
        Ok(x) => panic!("accepted {:?}: {x:?}", String::from_utf8_lossy(raw)),
    }
}

fn status_of(raw: &[u8]) -> u16 {
    rejected(raw).status()
}

#[test]
fn a_simple_get_is_parsed_with_path_query_and_fields() {
    let req =
        parse(b"GET /a/b?x=1&y HTTP/1.1\r\nHost: example.test\r\nAccept:  */* \r\n\r\n").unwrap();
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.target, "/a/b?x=1&y");
    assert_eq!(req.path, "/a/b");
    assert_eq!(req.query.as_deref(), Some("x=1&y"));
    assert_eq!(req.version, Version::Http11);
    assert_eq!(req.headers.get("accept"), Some(&b"*/*"[..]), "OWS trimmed");
    assert!(req.body.is_empty());
}

#[test]
fn absolute_form_asterisk_form_and_authority_form_targets() {
    // RFC 9112 §3.2.2-§3.2.4.
    let req = parse(b"GET http://h.test/p?q HTTP/1.1\r\nHost: h.test\r\n\r\n").unwrap();
    assert_eq!((req.path.as_str(), req.query.as_deref()), ("/p", Some("q")));
    let req = parse(b"GET http://h.test HTTP/1.1\r\nHost: h.test\r\n\r\n").unwrap();
    assert_eq!(req.path, "/");
    let req = parse(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(req.path, "*");
    let req = parse(b"CONNECT h.test:443 HTTP/1.1\r\nHost: h.test:443\r\n\r\n").unwrap();
    assert_eq!(req.path, "h.test:443");
    assert_eq!(status_of(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET relative HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
}

#[test]
fn empty_lines_before_the_request_line_are_ignored() {
    // RFC 9112 §2.2.
    let req = parse(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(req.path, "/");
}

#[test]
fn request_line_over_8_kib_gets_414() {
    let mut raw = b"GET /".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 8 * 1024));
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(rejected(&raw), ParseError::RequestLineTooLong);
    assert_eq!(status_of(&raw), 414);
    // Detected before the line ends: the scanner stops at the limit.
    let mut partial = b"GET /".to_vec();
    partial.extend(std::iter::repeat_n(b'a', 9000));
    assert_eq!(
        HeadScanner::new().scan(&partial, &limits()),
        Err(ParseError::RequestLineTooLong)
    );
    // Just under the limit is fine.
    let mut ok = b"GET /".to_vec();
    ok.extend(std::iter::repeat_n(b'a', 8 * 1024 - 5 - 9));
    ok.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(parse(&ok).is_ok());
}

#[test]
fn header_section_over_64_kib_gets_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..20 {
        raw.extend_from_slice(format!("X-{i}: ").as_bytes());
        raw.extend(std::iter::repeat_n(b'v', 4000));
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(rejected(&raw), ParseError::HeadTooLarge);
    assert_eq!(status_of(&raw), 431);
}

#[test]
fn more_than_100_fields_gets_431() {
    let head = |n: usize| {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 1..n {
            raw.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        raw
    };
    assert!(parse(&head(100)).is_ok(), "100 fields are allowed");
    assert_eq!(rejected(&head(101)), ParseError::TooManyFields);
    assert_eq!(status_of(&head(101)), 431);
}

#[test]
fn body_over_the_limit_gets_413_for_content_length_and_chunked() {
    let small = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
    assert_eq!(parse_request(raw, &small), Err(ParseError::BodyTooLarge));
    assert_eq!(ParseError::BodyTooLarge.status(), 413);
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n";
    assert_eq!(parse_request(raw, &small), Err(ParseError::BodyTooLarge));
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nhelloworld";
    assert_eq!(
        parse_request(raw, &small).unwrap().unwrap().0.body,
        b"helloworld"
    );
}

#[test]
fn content_length_with_transfer_encoding_is_rejected_400() {
    // RFC 9112 §6.1: the classic smuggling vector.
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(rejected(raw), ParseError::ContentLengthWithTransferEncoding);
    assert_eq!(status_of(raw), 400);
}

#[test]
fn invalid_negative_overflowing_and_differing_content_lengths_are_rejected_400() {
    for cl in [
        "abc",
        "-1",
        "+5",
        "5 5",
        "0x10",
        "",
        "5,",
        "99999999999999999999",
        "18446744073709551616",
    ] {
        let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {cl}\r\n\r\n");
        assert_eq!(
            rejected(raw.as_bytes()),
            ParseError::InvalidContentLength,
            "Content-Length: {cl:?}"
        );
        assert_eq!(status_of(raw.as_bytes()), 400);
    }
    let two = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    assert_eq!(rejected(two), ParseError::InvalidContentLength);
    let list = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\nhello!";
    assert_eq!(rejected(list), ParseError::InvalidContentLength);
}

#[test]
fn identical_repeated_content_lengths_are_accepted() {
    // RFC 9110 §8.6: a list of identical values may be taken as that value.
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(parse(raw).unwrap().body, b"hello");
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\nhello";
    assert_eq!(parse(raw).unwrap().body, b"hello");
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_rejected_400() {
    for te in ["gzip", "chunked, gzip", "chunked, chunked", "", "chu nked"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            rejected(raw.as_bytes()),
            ParseError::InvalidTransferEncoding,
            "Transfer-Encoding: {te:?}"
        );
        assert_eq!(status_of(raw.as_bytes()), 400);
    }
    // A coding we do not decode before chunked: 501 (RFC 9112 §6.1).
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(status_of(raw), 501);
    // Case-insensitive, and across fields.
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n";
    assert!(parse(raw).is_ok());
}

#[test]
fn any_transfer_encoding_in_an_http_1_0_request_is_rejected_400() {
    let raw = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_eq!(rejected(raw), ParseError::InvalidTransferEncoding);
    assert_eq!(status_of(raw), 400);
}

#[test]
fn whitespace_between_field_name_and_colon_is_rejected_400() {
    // RFC 9112 §5.1.
    for raw in [
        &b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A\t: 1\r\n\r\n",
    ] {
        assert_eq!(rejected(raw), ParseError::SpaceBeforeColon);
        assert_eq!(status_of(raw), 400);
    }
}

#[test]
fn obs_fold_is_rejected_400() {
    // RFC 9112 §5.2.
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n\ttwo\r\n\r\n",
    ] {
        assert_eq!(rejected(raw), ParseError::ObsFold);
        assert_eq!(status_of(raw), 400);
    }
}

#[test]
fn bare_cr_or_lf_as_a_line_end_is_rejected_400() {
    // RFC 9112 §2.2: we accept only CRLF.
    for raw in [
        &b"GET / HTTP/1.1\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\rHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
    ] {
        assert_eq!(
            rejected(raw),
            ParseError::BareLineEnd,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(status_of(raw), 400);
    }
}

#[test]
fn nul_cr_lf_or_controls_inside_a_value_are_rejected_400() {
    // RFC 9110 §5.5.
    let nul = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    assert_eq!(rejected(nul), ParseError::InvalidFieldValue);
    let ctl = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n";
    assert_eq!(rejected(ctl), ParseError::InvalidFieldValue);
    let del = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n";
    assert_eq!(rejected(del), ParseError::InvalidFieldValue);
    // A CR or LF inside a value is a bare line end to the scanner.
    let cr = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n";
    assert_eq!(status_of(cr), 400);
    let lf = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nb\r\n\r\n";
    assert_eq!(status_of(lf), 400);
    for raw in [&nul[..], ctl, del] {
        assert_eq!(status_of(raw), 400);
    }
    // HTAB, SP and obs-text are allowed.
    let ok = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\tb c\xe9\r\n\r\n";
    assert_eq!(
        parse(ok).unwrap().headers.get("x-a"),
        Some(&b"a\tb c\xe9"[..])
    );
}

#[test]
fn invalid_characters_in_a_field_name_are_rejected_400() {
    // RFC 9110 §5.1: field-name = token.
    for name in [
        "X(A", "X A", "X\"A", "X/A", "X@A", "Xé", "", "X{A}", "X\x01",
    ] {
        let mut raw = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": v\r\n\r\n");
        assert_eq!(
            rejected(&raw),
            ParseError::InvalidFieldName,
            "name {name:?}"
        );
        assert_eq!(status_of(&raw), 400);
    }
    let no_colon = b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n";
    assert_eq!(status_of(no_colon), 400);
    let ok = b"GET / HTTP/1.1\r\nHost: h\r\nX-!#$%&'*+-.^_`|~09az: v\r\n\r\n";
    assert!(parse(ok).is_ok());
}

#[test]
fn missing_or_repeated_host_in_1_1_is_rejected_400() {
    // RFC 9112 §3.2.
    let missing = b"GET / HTTP/1.1\r\nX: y\r\n\r\n";
    assert_eq!(rejected(missing), ParseError::BadHost);
    assert_eq!(status_of(missing), 400);
    let twice = b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n";
    assert_eq!(rejected(twice), ParseError::BadHost);
    let twice_10 = b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n";
    assert_eq!(rejected(twice_10), ParseError::BadHost);
    // HTTP/1.0 needs no Host.
    assert!(parse(b"GET / HTTP/1.0\r\n\r\n").is_ok());
}

#[test]
fn request_line_without_version_or_with_unknown_version_is_rejected_400() {
    for raw in [
        &b"GET /\r\n\r\n"[..],
        b"GET / \r\nHost: h\r\n\r\n",
        b"GET / FOO/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1.1\r\nHost: h\r\n\r\n",
        b"GET / http/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/11\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 x\r\nHost: h\r\n\r\n",
        b"\r\nGET\r\n\r\n",
    ] {
        assert_eq!(
            status_of(raw),
            400,
            "{:?} -> {:?}",
            String::from_utf8_lossy(raw),
            rejected(raw)
        );
    }
}

#[test]
fn well_formed_unsupported_major_versions_get_505() {
    for v in ["HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"] {
        let raw = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_eq!(
            rejected(raw.as_bytes()),
            ParseError::UnsupportedVersion,
            "{v}"
        );
        assert_eq!(status_of(raw.as_bytes()), 505);
    }
    // A higher 1.x minor is served as 1.1 (RFC 9110 §6.2).
    let req = parse(b"GET / HTTP/1.7\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(req.version, Version::Http11);
}

#[test]
fn unknown_method_gets_501_and_an_invalid_method_token_400() {
    let raw = b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(rejected(raw), ParseError::UnknownMethod);
    assert_eq!(status_of(raw), 501);
    // Methods are case-sensitive (RFC 9110 §9.1).
    assert_eq!(status_of(b"get / HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
    assert_eq!(status_of(b"GE(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    for m in Method::ALL {
        let target = match m {
            Method::Connect => "h:1",
            _ => "/",
        };
        let raw = format!("{m} {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(parse(raw.as_bytes()).unwrap().method, m);
    }
}

#[test]
fn unsupported_expectation_gets_417_and_100_continue_is_flagged() {
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx";
    assert_eq!(rejected(raw), ParseError::UnsupportedExpectation);
    assert_eq!(status_of(raw), 417);
    let raw = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx";
    let (head, _) = parse_request_head(raw, &limits()).unwrap().unwrap();
    assert!(head.expect_continue);
    // RFC 9110 §10.1.1: ignored in HTTP/1.0.
    let raw = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx";
    let (head, _) = parse_request_head(raw, &limits()).unwrap().unwrap();
    assert!(!head.expect_continue);
}

#[test]
fn a_request_fed_one_byte_at_a_time_is_read_whole() {
    let raw: &[u8] = b"POST /up?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
    let whole = parse(raw).unwrap();
    // Every prefix is incomplete, never an error; the scanner sees each byte once.
    let mut scanner = HeadScanner::new();
    let mut buf = Vec::new();
    let mut span = None;
    for &b in raw {
        buf.push(b);
        if span.is_none() {
            span = scanner.scan(&buf, &limits()).unwrap();
        }
    }
    let span = span.expect("head found");
    assert!(span.end < raw.len());
    for cut in 0..raw.len() {
        assert_eq!(
            parse_request(&raw[..cut], &limits()),
            Ok(None),
            "cut at {cut}"
        );
    }
    // The chunked body, one byte per call.
    let (head, used) = parse_request_head(raw, &limits()).unwrap().unwrap();
    assert_eq!(head.framing, BodyFraming::Chunked);
    let mut dec = ChunkedDecoder::new(&limits());
    let mut body = Vec::new();
    let mut done = false;
    for &b in &raw[used..] {
        assert!(!done);
        let (n, d) = dec.decode(&[b], &mut body).unwrap();
        assert_eq!(n, 1);
        done = d;
    }
    assert!(done);
    assert_eq!(body, whole.body);
    assert_eq!(body, b"hello world");
}

fn decode_all(raw: &[u8]) -> Result<(Vec<u8>, usize, bool), ParseError> {
    let mut dec = ChunkedDecoder::new(&limits());
    let mut out = Vec::new();
    let (n, done) = dec.decode(raw, &mut out)?;
    Ok((out, n, done))
}

#[test]
fn chunked_body_with_extensions_and_trailers_decodes_and_drops_them() {
    // RFC 9112 §7.1.1, §7.1.2.
    let raw = b"4;name=value;q=\"a b;c\"\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0;last\r\nExpires: never\r\nX-T: 1\r\n\r\nNEXT";
    let (body, used, done) = decode_all(raw).unwrap();
    assert!(done);
    assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(
        &raw[used..],
        b"NEXT",
        "bytes past the body are not consumed"
    );
}

#[test]
fn chunk_size_hex_overflow_is_rejected_400() {
    let raw = b"10000000000000000\r\n";
    assert_eq!(decode_all(raw), Err(ParseError::InvalidChunk));
    assert_eq!(ParseError::InvalidChunk.status(), 400);
    // The largest u64 parses (and then exceeds the body limit).
    assert_eq!(
        decode_all(b"ffffffffffffffff\r\n"),
        Err(ParseError::BodyTooLarge)
    );
}

#[test]
fn missing_crlf_after_chunk_data_is_rejected_400() {
    assert_eq!(
        decode_all(b"5\r\nhelloX\r\n0\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
    assert_eq!(
        decode_all(b"5\r\nhello\rX0\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
    assert_eq!(
        decode_all(b"5\r\nhello\n0\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
}

#[test]
fn malformed_chunk_size_lines_and_extensions_are_rejected_400() {
    for raw in [
        &b"\r\n"[..],
        b"x\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"-5\r\n",
        b"5\n",
        b"5\rX",
        b"5;a\x01b\r\n",
        b"5;a\nb\r\n",
        b" 5\r\n",
    ] {
        assert_eq!(
            decode_all(raw),
            Err(ParseError::InvalidChunk),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // An endless extension is bounded.
    let mut long = b"5;".to_vec();
    long.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(decode_all(&long), Err(ParseError::InvalidChunk));
}

#[test]
fn malformed_trailers_are_rejected_and_the_trailer_section_is_bounded() {
    assert_eq!(
        decode_all(b"0\r\nBad Name: x\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
    assert_eq!(
        decode_all(b"0\r\n folded\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
    assert_eq!(
        decode_all(b"0\r\nX: a\nb\r\n\r\n"),
        Err(ParseError::InvalidChunk)
    );
    assert_eq!(decode_all(b"0\r\n\rX"), Err(ParseError::InvalidChunk));
    let mut many = b"0\r\n".to_vec();
    for i in 0..101 {
        many.extend_from_slice(format!("T{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(decode_all(&many), Err(ParseError::TooManyFields));
}

#[test]
fn chunked_encoding_round_trips_through_the_decoder() {
    let mut out = Vec::new();
    encode_chunked(b"hello world", &mut out);
    assert_eq!(out, b"b\r\nhello world\r\n0\r\n\r\n");
    assert_eq!(
        decode_all(&out).unwrap(),
        (b"hello world".to_vec(), out.len(), true)
    );
    let mut enc = super::body::ChunkedEncoder::new(Vec::new());
    std::io::Write::write_all(&mut enc, b"abc").unwrap();
    std::io::Write::write_all(&mut enc, b"").unwrap();
    std::io::Write::write_all(&mut enc, &[b'z'; 300]).unwrap();
    let wire = enc.finish().unwrap();
    let (body, _, done) = decode_all(&wire).unwrap();
    assert!(done);
    assert_eq!(body.len(), 303);
}

// --- Response writing --------------------------------------------------------------------

fn written(resp: Response, version: Version, head: bool, keep_alive: bool) -> (String, bool) {
    let mut resp = resp;
    let mut out = Vec::new();
    let ka = write_response(
        &mut out,
        &mut resp,
        ResponseContext {
            version,
            head,
            keep_alive,
        },
    )
    .unwrap();
    (String::from_utf8(out).unwrap(), ka)
}

fn reader(data: &'static [u8], len: Option<u64>) -> Body {
    Body::Reader {
        reader: Box::new(data),
        len,
    }
}

#[test]
fn a_response_has_a_status_line_date_and_content_length() {
    let (wire, ka) = written(Response::text(200, "hi"), Version::Http11, false, true);
    assert!(wire.starts_with("HTTP/1.1 200 OK\r\n"), "{wire}");
    assert!(wire.contains("\r\nContent-Length: 2\r\n"));
    assert!(wire.contains("\r\nDate: "));
    assert!(!wire.contains("Connection"));
    assert!(wire.ends_with("\r\n\r\nhi"));
    assert!(ka);
    let date = wire.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap();
    assert!(
        httpdate::parse_http_date(date).is_ok(),
        "IMF-fixdate: {date}"
    );
}

#[test]
fn head_responses_carry_the_length_but_no_body() {
    // RFC 9110 §9.3.2.
    let (wire, _) = written(Response::text(200, "hello"), Version::Http11, true, true);
    assert!(wire.contains("Content-Length: 5\r\n"));
    assert!(wire.ends_with("\r\n\r\n"));
    let (wire, _) = written(
        Response {
            body: reader(b"xyz", None),
            ..Response::new(200)
        },
        Version::Http11,
        true,
        true,
    );
    assert!(wire.contains("Transfer-Encoding: chunked\r\n"));
    assert!(wire.ends_with("\r\n\r\n"), "no chunks: {wire:?}");
    // A handler's Content-Length on a bodiless HEAD answer is kept.
    let (wire, _) = written(
        Response::new(200).header("Content-Length", "1234"),
        Version::Http11,
        true,
        true,
    );
    assert!(wire.contains("Content-Length: 1234\r\n"));
}

#[test]
fn status_1xx_204_and_304_have_no_body_and_1xx_204_no_content_length() {
    // RFC 9110 §6.4.1, §8.6.
    for status in [204, 304] {
        let (wire, ka) = written(
            Response::text(status, "ignored"),
            Version::Http11,
            false,
            true,
        );
        assert!(!wire.contains("Content-Length"), "{status}: {wire}");
        assert!(wire.ends_with("\r\n\r\n"), "{status}: {wire}");
        assert!(ka);
    }
    let (wire, _) = written(Response::new(103), Version::Http11, false, true);
    assert_eq!(wire, "HTTP/1.1 103 \r\n\r\n");
    let (wire, _) = written(
        Response::new(304).header("Content-Length", "10"),
        Version::Http11,
        false,
        true,
    );
    assert!(wire.contains("Content-Length: 10\r\n"));
}

#[test]
fn unknown_length_bodies_are_chunked_to_1_1_and_closed_to_1_0() {
    let (wire, ka) = written(
        Response {
            body: reader(b"hello", None),
            ..Response::new(200)
        },
        Version::Http11,
        false,
        true,
    );
    assert!(ka);
    assert!(wire.contains("Transfer-Encoding: chunked\r\n"));
    assert!(
        wire.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        "{wire:?}"
    );
    let (wire, ka) = written(
        Response {
            body: reader(b"hello", None),
            ..Response::new(200)
        },
        Version::Http10,
        false,
        true,
    );
    assert!(!ka, "the body ends at close");
    assert!(wire.contains("Connection: close\r\n"));
    assert!(!wire.contains("Transfer-Encoding"));
    assert!(wire.ends_with("\r\n\r\nhello"));
}

#[test]
fn known_length_readers_are_sent_exactly_and_short_readers_fail() {
    let (wire, _) = written(
        Response {
            body: reader(b"hello world", Some(5)),
            ..Response::new(200)
        },
        Version::Http11,
        false,
        true,
    );
    assert!(wire.contains("Content-Length: 5\r\n"));
    assert!(wire.ends_with("\r\n\r\nhello"));
    let mut resp = Response {
        body: reader(b"hi", Some(5)),
        ..Response::new(200)
    };
    let ctx = ResponseContext {
        version: Version::Http11,
        head: false,
        keep_alive: true,
    };
    let err = write_response(&mut Vec::new(), &mut resp, ctx).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn connection_fields_follow_the_keep_alive_decision() {
    let (wire, ka) = written(Response::text(200, "x"), Version::Http11, false, false);
    assert!(!ka);
    assert!(wire.contains("Connection: close\r\n"));
    let (wire, ka) = written(Response::text(200, "x"), Version::Http10, false, true);
    assert!(ka);
    assert!(wire.contains("Connection: keep-alive\r\n"));
    // A handler asking for close gets it.
    let (wire, ka) = written(
        Response::text(200, "x").header("Connection", "close"),
        Version::Http11,
        false,
        true,
    );
    assert!(!ka);
    assert_eq!(wire.matches("Connection").count(), 1);
    // Framing fields set by a handler are replaced.
    let (wire, _) = written(
        Response::text(200, "abc")
            .header("Content-Length", "99")
            .header("Transfer-Encoding", "chunked"),
        Version::Http11,
        false,
        true,
    );
    assert!(wire.contains("Content-Length: 3\r\n"));
    assert!(!wire.contains("99") && !wire.contains("Transfer-Encoding"));
}

#[test]
fn written_responses_parse_back_with_parse_response_head() {
    let (wire, _) = written(
        Response::text(404, "nope").header("X-A", "b"),
        Version::Http11,
        false,
        true,
    );
    let (head, used) = parse_response_head(wire.as_bytes(), &limits())
        .unwrap()
        .unwrap();
    assert_eq!(head.status, 404);
    assert_eq!(head.reason, "Not Found");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.headers.get("x-a"), Some(&b"b"[..]));
    assert_eq!(head.framing(Method::Get), Ok(BodyFraming::Length(4)));
    assert_eq!(head.framing(Method::Head), Ok(BodyFraming::None));
    assert!(head.keep_alive());
    assert_eq!(&wire.as_bytes()[used..], b"nope");
}

#[test]
fn response_heads_are_checked_like_request_heads() {
    let l = limits();
    assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\n", &l), Ok(None));
    let (h, _) = parse_response_head(b"HTTP/1.0 200\r\n\r\n", &l)
        .unwrap()
        .unwrap();
    assert_eq!((h.status, h.reason.as_str()), (200, ""));
    assert_eq!(h.framing(Method::Get), Ok(BodyFraming::UntilClose));
    assert!(!h.keep_alive());
    let (h, _) = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &l)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing(Method::Get), Ok(BodyFraming::Chunked));
    let (h, _) = parse_response_head(b"HTTP/1.1 204 No Content\r\n\r\n", &l)
        .unwrap()
        .unwrap();
    assert_eq!(h.framing(Method::Get), Ok(BodyFraming::None));
    for bad in [
        &b"HTTP/1.1 20 OK\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        b"HTTP/1.1 200 OK\nX: y\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
        b"FOO 200 OK\r\n\r\n",
    ] {
        assert!(
            parse_response_head(bad, &l).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse_response_head(b"HTTP/2.0 200 OK\r\n\r\n", &l),
        Err(ParseError::UnsupportedVersion)
    );
    let (h, _) = parse_response_head(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        &l,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        h.framing(Method::Get),
        Err(ParseError::InvalidContentLength)
    );
}

#[test]
fn emit_adds_content_length_and_parses_back() {
    let mut req = Request::new(Method::Post, "/p?q=1");
    req.headers.append("Host", "h.test");
    req.body = b"data".to_vec();
    let mut wire = Vec::new();
    emit_request(&req, &mut wire);
    assert_eq!(
        wire,
        b"POST /p?q=1 HTTP/1.1\r\nHost: h.test\r\nContent-Length: 4\r\n\r\ndata"
    );
    let back = parse(&wire).unwrap();
    assert_eq!(back.body, b"data");
    assert_eq!(back.path, "/p");
}

// --- Property tests ----------------------------------------------------------------------

mod props {
    use super::*;
    use proptest::prelude::*;

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    fn value() -> impl Strategy<Value = Vec<u8>> {
        // field-vchar with inner SP/HTAB; surrounding whitespace is not part of a value.
        proptest::collection::vec(
            prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff, Just(b' '), Just(b'\t')],
            0..24,
        )
        .prop_map(|v| {
            let ws = |b: &u8| *b == b' ' || *b == b'\t';
            let start = v.iter().position(|b| !ws(b)).unwrap_or(v.len());
            let end = v.iter().rposition(|b| !ws(b)).map_or(start, |e| e + 1);
            v[start..end].to_vec()
        })
    }

    fn target() -> impl Strategy<Value = String> {
        (
            "(/[A-Za-z0-9._~%!$&'()*+,;=:@-]{0,10}){1,4}",
            proptest::option::of("[A-Za-z0-9=&%/?-]{0,12}"),
        )
            .prop_map(|(p, q)| match q {
                Some(q) => format!("{p}?{q}"),
                None => p,
            })
    }

    prop_compose! {
        fn request()(
            method in proptest::sample::select(
                Method::ALL.into_iter().filter(|m| *m != Method::Connect).collect::<Vec<_>>()
            ),
            target in target(),
            v11 in any::<bool>(),
            host in "[a-z0-9.-]{1,20}",
            fields in proptest::collection::vec((token(), value()), 0..10),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) -> Request {
            let mut req = Request::new(method, &target);
            req.version = if v11 { Version::Http11 } else { Version::Http10 };
            req.headers.append("Host", &host);
            for (name, value) in fields {
                let lower = name.to_ascii_lowercase();
                if ["host", "content-length", "transfer-encoding", "expect"].contains(&lower.as_str()) {
                    continue;
                }
                req.headers.append(&name, value);
            }
            if !body.is_empty() {
                req.headers.append("Content-Length", body.len().to_string());
            }
            req.body = body;
            req
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_request_parser_never_panics_on_arbitrary_bytes(
            raw in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let _ = parse_request(&raw, &limits());
            let _ = parse_response_head(&raw, &limits());
            let _ = decode_all(&raw);
        }

        #[test]
        fn the_request_parser_never_panics_on_near_requests(
            req in request(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut wire = Vec::new();
            emit_request(&req, &mut wire);
            for (at, byte, op) in edits {
                let i = at.index(wire.len());
                match op {
                    0 => wire[i] = byte,
                    1 => wire.insert(i, byte),
                    _ => { wire.remove(i); }
                }
            }
            let _ = parse_request(&wire, &limits());
        }

        #[test]
        fn parse_of_emit_is_the_identity(req in request()) {
            let mut wire = Vec::new();
            emit_request(&req, &mut wire);
            let (back, used) = parse_request(&wire, &limits()).unwrap().unwrap();
            prop_assert_eq!(used, wire.len());
            prop_assert_eq!(back, req);
        }

        #[test]
        fn httparse_agrees_on_every_valid_request(req in request()) {
            let mut wire = Vec::new();
            emit_request(&req, &mut wire);
            let mut fields = [httparse::EMPTY_HEADER; 128];
            let mut theirs = httparse::Request::new(&mut fields);
            let status = theirs.parse(&wire).unwrap();
            let httparse::Status::Complete(their_len) = status else {
                panic!("httparse: partial");
            };
            let (ours, our_len) = parse_request_head(&wire, &limits()).unwrap().unwrap();
            prop_assert_eq!(their_len, our_len);
            prop_assert_eq!(theirs.method, Some(ours.request.method.as_str()));
            prop_assert_eq!(theirs.path, Some(ours.request.target.as_str()));
            prop_assert_eq!(theirs.version, Some(match ours.request.version { Version::Http10 => 0, Version::Http11 => 1 }));
            let their_fields: Vec<(String, Vec<u8>)> = theirs.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect();
            let our_fields: Vec<(String, Vec<u8>)> = ours.request.headers.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect();
            prop_assert_eq!(their_fields, our_fields);
        }

        #[test]
        fn what_we_accept_httparse_accepts_the_same_way(
            req in request(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..3),
        ) {
            // Mutated requests: whenever our stricter parser takes one, httparse (lenient) must
            // take it too, with the same method, target and fields.
            let mut wire = Vec::new();
            emit_request(&req, &mut wire);
            for (at, byte, op) in edits {
                let i = at.index(wire.len());
                match op {
                    0 => wire[i] = byte,
                    1 => wire.insert(i, byte),
                    _ => { wire.remove(i); }
                }
            }
            // A 1.x above 1.1 is served as 1.1 by us (RFC 9110 §6.2), refused by httparse.
            let line_end = wire.iter().position(|&b| b == b'\r').unwrap_or(wire.len());
            let line = &wire[..line_end];
            if !(line.ends_with(b" HTTP/1.0") || line.ends_with(b" HTTP/1.1")) {
                return Ok(());
            }
            if let Ok(Some((ours, our_len))) = parse_request_head(&wire, &limits()) {
                let mut fields = [httparse::EMPTY_HEADER; 128];
                let mut theirs = httparse::Request::new(&mut fields);
                let status = theirs.parse(&wire);
                prop_assert!(matches!(status, Ok(httparse::Status::Complete(n)) if n == our_len), "httparse: {:?} on {:?}", status, String::from_utf8_lossy(&wire));
                prop_assert_eq!(theirs.method, Some(ours.request.method.as_str()));
                prop_assert_eq!(theirs.path, Some(ours.request.target.as_str()));
                prop_assert_eq!(theirs.headers.len(), ours.request.headers.len());
            }
        }

        #[test]
        fn chunked_bodies_decode_whatever_the_split(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 0..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            let mut expect = Vec::new();
            for c in &chunks {
                wire.extend_from_slice(format!("{:X};e=1\r\n", c.len()).as_bytes());
                wire.extend_from_slice(c);
                wire.extend_from_slice(b"\r\n");
                expect.extend_from_slice(c);
            }
            wire.extend_from_slice(b"0\r\nT: x\r\n\r\n");
            let cut = cut.index(wire.len());
            let mut dec = ChunkedDecoder::new(&limits());
            let mut out = Vec::new();
            let (n1, d1) = dec.decode(&wire[..cut], &mut out).unwrap();
            prop_assert_eq!(n1, cut);
            prop_assert!(!d1);
            let (n2, d2) = dec.decode(&wire[cut..], &mut out).unwrap();
            prop_assert_eq!(n1 + n2, wire.len());
            prop_assert!(d2);
            prop_assert_eq!(out, expect);
        }
    }
}
