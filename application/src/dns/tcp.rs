//! DNS over TCP framing (RFC 1035 §4.2.2, RFC 7766 §8): every message is preceded by its
//! length in two octets. This is the seam for DNS over TCP, which comes with TCP: the server
//! side is [`serve_connection`] over any byte stream; the resolver reports a truncated UDP
//! answer as `ResolveError::Truncated` so its caller can ask again with [`write_message`] and
//! [`read_message`].

use super::authority::{answer_over, Transport};
use super::{Catalog, ServerStats};
use std::io::{self, Read, Write};

/// The largest message a two-octet length can frame.
pub const MAX_TCP_MESSAGE: usize = 65_535;

/// Writes one length-prefixed message.
pub fn write_message<W: Write>(w: &mut W, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "DNS message over 65,535 octets",
        )
    })?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    w.write_all(&framed)
}

/// Reads one length-prefixed message. `Ok(None)`: the peer closed between messages (RFC 7766
/// §6.2.3: a clean end); a close inside a message is `UnexpectedEof`.
pub fn read_message<R: Read>(r: &mut R) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut message)?;
    Ok(Some(message))
}

/// Answers every query on one TCP connection from `catalog` until the peer closes it; the
/// DNS-over-TCP server runs this per accepted connection (with a read timeout on the stream
/// to bound idle connections, RFC 7766 §6.2.3).
pub fn serve_connection<S: Read + Write>(
    stream: &mut S,
    catalog: &Catalog,
    stats: &mut ServerStats,
) -> io::Result<()> {
    while let Some(query) = read_message(stream)? {
        if let Some(reply) = answer_over(Transport::Tcp, &query, catalog, stats) {
            write_message(stream, &reply)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::testutil::name;
    use crate::dns::{demo_zone, Message, Question, RecordType, Zone};
    use std::io::Cursor;
    use std::net::Ipv4Addr;

    #[test]
    fn frames_round_trip_and_a_clean_close_ends_the_stream() {
        let mut wire = Vec::new();
        write_message(&mut wire, b"abc").unwrap();
        write_message(&mut wire, b"").unwrap();
        assert_eq!(wire, b"\x00\x03abc\x00\x00");
        let mut r = Cursor::new(wire);
        assert_eq!(read_message(&mut r).unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_message(&mut r).unwrap(), Some(vec![]));
        assert_eq!(read_message(&mut r).unwrap(), None);
    }

    #[test]
    fn close_inside_a_frame_is_unexpected_eof() {
        for cut in [&b"\x00"[..], b"\x00\x05ab"] {
            let err = read_message(&mut Cursor::new(cut.to_vec())).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    #[test]
    fn message_over_65535_cannot_be_framed() {
        let err = write_message(&mut Vec::new(), &vec![0; 65_536]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// A byte stream: reads from `input`, writes to `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tcp_answers_are_never_truncated() {
        let mut text = "$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n".to_string();
        for i in 0..40 {
            text.push_str(&format!("t TXT \"{i} {}\"\n", "x".repeat(100)));
        }
        let mut catalog = Catalog::new();
        catalog.insert(Zone::parse_master(&text, "big", None).unwrap());
        catalog.insert(demo_zone(Ipv4Addr::new(192, 0, 2, 2)));
        let mut input = Vec::new();
        for (id, n) in [(1, "t.big.test"), (2, "demo.test")] {
            let q = Message::query(id, Question::new(name(n), RecordType::TXT));
            write_message(&mut input, &q.emit().unwrap()).unwrap();
        }
        let mut stream = Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        };
        let mut stats = ServerStats::default();
        serve_connection(&mut stream, &catalog, &mut stats).unwrap();
        let mut out = Cursor::new(stream.output);
        let big = Message::parse(&read_message(&mut out).unwrap().unwrap()).unwrap();
        assert_eq!(
            (big.header.id, big.header.tc, big.answers.len()),
            (1, false, 40)
        );
        let demo = Message::parse(&read_message(&mut out).unwrap().unwrap()).unwrap();
        assert_eq!((demo.header.id, demo.answers.len()), (2, 1));
        assert_eq!(read_message(&mut out).unwrap(), None);
        assert_eq!((stats.queries, stats.truncated), (2, 0));
    }

    #[test]
    fn dig_over_tcp_gets_the_whole_answer() {
        if !crate::dns::testutil::tool_present("dig", "-v", "bind9-dnsutils") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut catalog = Catalog::new();
            catalog.insert(demo_zone(Ipv4Addr::new(192, 0, 2, 2)));
            let mut stats = ServerStats::default();
            serve_connection(&mut stream, &catalog, &mut stats).map(|_| stats)
        });
        let out = crate::dns::testutil::within(10, "dig +tcp", move || {
            let args = [
                "@127.0.0.1",
                "-p",
                &port,
                "+tcp",
                "+tries=1",
                "+time=2",
                "www.demo.test",
            ];
            let out = std::process::Command::new("dig")
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        });
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("(TCP)"), "{out}");
        assert!(out.contains("ANSWER: 2,"), "{out}");
        let stats =
            crate::dns::testutil::within(5, "TCP server", move || server.join().unwrap()).unwrap();
        assert_eq!(stats.answered, 1);
    }
}
