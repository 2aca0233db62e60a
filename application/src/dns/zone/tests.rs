use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn parse(text: &str) -> Result<Zone, ZoneError> {
    Zone::parse_master(text, "test.zone", None)
}

fn err(text: &str) -> (usize, ZoneErrorKind) {
    let e = parse(text).unwrap_err();
    assert_eq!(e.file, "test.zone");
    (e.line, e.kind)
}

const EXAMPLE: &str = r#"; A zone with every feature the parser supports.
$ORIGIN example.test.
$TTL 1h
@   IN  SOA ns1 hostmaster.example.test. (
            2026112501 ; serial
            3600       ; refresh
            15m        ; retry
            1w         ; expire
            300 )      ; minimum
    IN  NS  ns1
    IN  NS  ns2.example.test.
    IN  MX  10 mail
ns1 60 IN A 192.0.2.53
ns2 IN 60 A 192.0.2.54
mail    A   192.0.2.25
        AAAA 2001:db8::25
www     CNAME @
txt     TXT "hello world" plain "semi;colon" "quote\"d" "\065\066"
_sip._udp SRV 1 2 5060 sip
1.2.0.192.in-addr.arpa. PTR mail
deep.a.b TXT "empty non-terminals above me"
opaque  TYPE65280 \# 3 abcdef
"#;

#[test]
fn master_file_with_every_feature_parses() {
    let z = parse(EXAMPLE);
    // The PTR owner is outside example.test.: the zone refuses it with its line.
    assert_eq!(z.unwrap_err().line, 20);
    let text = EXAMPLE.replace(
        "1.2.0.192.in-addr.arpa. PTR mail",
        "ptr PTR mail.example.test.",
    );
    let z = parse(&text).unwrap();
    assert_eq!(z.origin(), &name("example.test"));
    let RData::Soa(soa) = &z.soa().data else {
        panic!("not an SOA")
    };
    assert_eq!(
        (soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum),
        (2026112501, 3600, 900, 604800, 300)
    );
    assert_eq!(soa.mname, name("ns1.example.test"));
    assert_eq!(z.soa().ttl, 3600);
    let apex = z.records_at(&name("example.test"));
    assert_eq!(apex.len(), 4, "SOA, two NS, MX: the blank owner repeats @");
    assert!(apex.contains(&Record::new(
        name("example.test"),
        3600,
        RData::Mx {
            preference: 10,
            exchange: name("mail.example.test")
        }
    )));
    assert_eq!(z.records_at(&name("ns1.example.test"))[0].ttl, 60);
    assert_eq!(z.records_at(&name("ns2.example.test"))[0].ttl, 60);
    assert_eq!(z.records_at(&name("mail.example.test")).len(), 2);
    assert_eq!(
        z.records_at(&name("www.example.test")),
        &[Record::new(
            name("www.example.test"),
            3600,
            RData::Cname(name("example.test"))
        )]
    );
    assert_eq!(
        z.records_at(&name("txt.example.test"))[0].data,
        RData::Txt(vec![
            b"hello world".to_vec(),
            b"plain".to_vec(),
            b"semi;colon".to_vec(),
            b"quote\"d".to_vec(),
            b"AB".to_vec()
        ])
    );
    assert_eq!(
        z.records_at(&name("_sip._udp.example.test"))[0].data,
        RData::Srv {
            priority: 1,
            weight: 2,
            port: 5060,
            target: name("sip.example.test")
        }
    );
    assert_eq!(
        z.records_at(&name("opaque.example.test"))[0].data,
        RData::Unknown {
            rtype: RecordType(65280),
            data: vec![0xab, 0xcd, 0xef]
        }
    );
    assert!(z.name_exists(&name("a.b.example.test")));
    assert!(z.name_exists(&name("b.example.test")));
    assert!(z.records_at(&name("b.example.test")).is_empty());
    assert!(!z.name_exists(&name("c.example.test")));
}

#[test]
fn demo_zone_has_what_netstackd_promises() {
    let z = demo_zone(Ipv4Addr::new(192, 0, 2, 2));
    let apex = name("demo.test");
    assert_eq!(z.origin(), &apex);
    let types: Vec<RecordType> = z.records_at(&apex).iter().map(Record::rtype).collect();
    for t in [
        RecordType::SOA,
        RecordType::NS,
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
    ] {
        assert!(types.contains(&t), "apex lacks {t}");
    }
    assert!(z.records_at(&apex).contains(&Record::new(
        apex.clone(),
        300,
        RData::A(Ipv4Addr::new(192, 0, 2, 2))
    )));
    assert_eq!(
        z.records_at(&name("www.demo.test"))[0].data,
        RData::Cname(apex)
    );
}

#[test]
fn origin_can_come_from_the_caller() {
    let z = Zone::parse_master(
        "@ 60 SOA ns h 1 2 3 4 5\nwww 60 A 192.0.2.1\n",
        "f",
        Some(&name("given.test")),
    )
    .unwrap();
    assert_eq!(z.origin(), &name("given.test"));
    assert_eq!(z.records_at(&name("www.given.test")).len(), 1);
}

#[test]
fn last_explicit_ttl_applies_before_any_ttl_directive() {
    let z = parse("$ORIGIN t.\n@ 77 SOA ns h 1 2 3 4 5\na A 192.0.2.1\n").unwrap();
    assert_eq!(z.records_at(&name("a.t"))[0].ttl, 77);
}

#[test]
fn errors_name_file_and_line() {
    let e = parse("$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\nbad A 192.0.2.300\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.zone:4: bad A data: \"192.0.2.300\" is not a IPv4 address"
    );
}

#[test]
fn error_inside_parentheses_gives_the_line_of_the_bad_token() {
    let text = "$ORIGIN t.\n$TTL 60\n@ SOA ns h (\n 1\n 2\n x\n 4 5 )\n";
    let (line, kind) = err(text);
    assert_eq!(line, 6);
    assert!(matches!(
        kind,
        ZoneErrorKind::BadRdata {
            rtype: RecordType::SOA,
            ..
        }
    ));
}

#[test]
fn each_syntax_error_is_reported() {
    let head = "$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n";
    let case = |tail: &str| err(&format!("{head}{tail}"));
    assert_eq!(
        case("a TXT \"open\n"),
        (4, ZoneErrorKind::UnterminatedQuote)
    );
    assert_eq!(
        case("a A 192.0.2.1 )\n"),
        (4, ZoneErrorKind::UnbalancedParenthesis)
    );
    assert_eq!(
        case("a MX ( 10\n"),
        (4, ZoneErrorKind::UnbalancedParenthesis)
    );
    assert_eq!(
        case("a BOGUS x\n"),
        (4, ZoneErrorKind::UnknownType("BOGUS".into()))
    );
    assert_eq!(
        case("a CH A 192.0.2.1\n"),
        (4, ZoneErrorKind::ClassNotSupported("CH".into()))
    );
    assert_eq!(
        case("a 5x A 192.0.2.1\n"),
        (4, ZoneErrorKind::BadTtl("5x".into()))
    );
    assert_eq!(
        case("a 4294967295 A 192.0.2.1\n"),
        (4, ZoneErrorKind::BadTtl("4294967295".into()))
    );
    assert_eq!(
        case("$INCLUDE other\n"),
        (4, ZoneErrorKind::IncludeNotSupported)
    );
    assert_eq!(
        case("$GENERATE 1-2 a A 1.2.3.4\n"),
        (4, ZoneErrorKind::UnknownDirective("$GENERATE".into()))
    );
    assert_eq!(
        case("a..b A 192.0.2.1\n"),
        (4, ZoneErrorKind::BadName(NameError::EmptyLabel))
    );
    assert_eq!(case("a\n"), (4, ZoneErrorKind::MissingType));
    assert_eq!(
        case("other.test. A 192.0.2.1\n"),
        (4, ZoneErrorKind::OutOfZone(name("other.test")))
    );
    assert_eq!(
        case("\n\n@ SOA ns h 1 2 3 4 5\n"),
        (6, ZoneErrorKind::MultipleSoa)
    );
    assert_eq!(
        case("w CNAME a\nw A 192.0.2.1\n"),
        (5, ZoneErrorKind::CnameAndOtherData(name("w.t")))
    );
    assert_eq!(
        case("w A 192.0.2.1\nw CNAME a\n"),
        (5, ZoneErrorKind::CnameAndOtherData(name("w.t")))
    );
    let rdata = |tail: &str| match case(tail) {
        (4, ZoneErrorKind::BadRdata { .. }) => {}
        other => panic!("{tail:?}: {other:?}"),
    };
    rdata("a A\n");
    rdata("a A 192.0.2.1 192.0.2.2\n");
    rdata("a AAAA 192.0.2.1\n");
    rdata("a MX 70000 mail\n");
    rdata("a SRV 1 2 mail\n");
    rdata("a TXT\n");
    rdata(&format!("a TXT \"{}\"\n", "x".repeat(256)));
    rdata("a TXT \"\\999\"\n");
    rdata("a TYPE65280 abcd\n");
    rdata("a TYPE65280 \\# 3 abcd\n");
    rdata("a TYPE65280 \\# 2 abc\n");
    rdata("a AXFR 1\n");
}

#[test]
fn records_before_an_origin_or_ttl_are_reported() {
    assert_eq!(
        err("www A 192.0.2.1\n"),
        (1, ZoneErrorKind::BadName(NameError::RelativeWithoutOrigin))
    );
    assert_eq!(err("www.t. A 192.0.2.1\n"), (1, ZoneErrorKind::MissingTtl));
    assert_eq!(err("  A 192.0.2.1\n"), (1, ZoneErrorKind::MissingOwner));
}

#[test]
fn zone_without_soa_is_reported_at_the_end() {
    assert_eq!(err("$TTL 5\na.t. A 192.0.2.1\n"), (2, ZoneErrorKind::NoSoa));
}

#[test]
fn repeated_records_are_kept_once() {
    let z =
        parse("$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\na A 192.0.2.1\na A 192.0.2.1\n").unwrap();
    assert_eq!(z.records_at(&name("a.t")).len(), 1);
    let z = parse("$ORIGIN t.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\nw CNAME a\nw CNAME a\n").unwrap();
    assert_eq!(z.records_at(&name("w.t")).len(), 1);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let e = Zone::load(Path::new("/nonexistent/zone.db"), None).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("/nonexistent/zone.db", 0));
    assert!(matches!(e.kind, ZoneErrorKind::Io(_)));
}

#[test]
fn ttl_units_add_up() {
    assert_eq!(parse_ttl("1h30m"), Some(5400));
    assert_eq!(parse_ttl("2147483647"), Some(i32::MAX as u32));
    assert_eq!(parse_ttl("2147483648"), None);
    assert_eq!(parse_ttl("h"), None);
    assert_eq!(parse_ttl("1hh"), None);
    assert_eq!(parse_ttl("1y"), None);
}

proptest::proptest! {
    /// Arbitrary text is parsed or rejected with a line inside the text, never a panic.
    #[test]
    fn random_text_never_panics_the_zone_parser(text in "[$@a-zA-Z0-9 .;()\"\\\\\t\n]{0,200}") {
        if let Err(e) = parse(&text) {
            proptest::prop_assert!(e.line <= text.lines().count().max(1));
        }
    }

    /// Lines built from real pieces, shuffled: same guarantee.
    #[test]
    fn random_record_lines_never_panic_the_zone_parser(
        lines in proptest::collection::vec(
            proptest::collection::vec(proptest::sample::select(vec![
                "@", "www", "$ORIGIN", "$TTL", "t.", "60", "1h", "IN", "CH", "A", "AAAA", "MX", "TXT",
                "SOA", "SRV", "CNAME", "PTR", "NS", "TYPE65280", "\\#", "2", "abcd", "192.0.2.1",
                "2001:db8::1", "\"q s\"", "(", ")", ";c", "10", "\\065",
            ]), 0..9),
            0..8,
        ),
    ) {
        let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
        if let Err(e) = parse(&text) {
            proptest::prop_assert!(e.line <= text.lines().count().max(1));
        }
    }
}
