//! DNS: message codec (RFC 1035, 3596, 2782, 3597, 6891), a sans-IO stub resolver with a cache
//! (RFC 2308 negative caching), an authoritative server over master-file zones, and a forwarder.
//!
//! Layout, one concept per file:
//! - [`name`]: domain names, compression on emit, checked decompression on parse.
//! - [`header`]: the fixed 12-byte header, a view plus a repr.
//! - [`rdata`]: the typed RDATA of the record types we know; unknown types kept raw (RFC 3597).
//! - [`message`]: whole messages, EDNS0 (RFC 6891), truncation to a size limit.
//! - [`zone`]: zones and the RFC 1035 §5 master-file parser.
//! - [`authority`]: the pure authoritative answering function.
//! - [`cache`], [`resolver`]: the sans-IO resolver state machine and its bounded cache.
//! - [`forwarder`]: answering from the zones or forwarding through the resolver.
//! - [`policy`]: who is offered recursion, and response rate limiting per client prefix.
//! - [`socket`]: the small blocking datagram trait and the blocking loops (resolver driver,
//!   authoritative server, forwarder) that run over it, `std::net::UdpSocket` or ours.

pub mod authority;
pub mod cache;
pub mod forwarder;
pub mod header;
pub mod message;
pub mod name;
pub mod policy;
pub mod rdata;
pub mod resolver;
pub mod socket;
pub mod tcp;
pub mod zone;

pub use authority::{answer, answer_over, Catalog, IncomingQuery, ServerStats, Transport};
pub use cache::{Cache, CacheStats};
pub use forwarder::{answer_or_forward, answer_or_forward_for, forward_reply, slip_reply, Outcome};
pub use header::{Header, HeaderRepr, HEADER_LEN};
pub use message::{Edns, EdnsOption, EmitError, Message, Question, Record};
pub use name::{Name, NameError};
pub use rdata::{RData, Soa};
pub use resolver::{
    IdRng, Lookup, LookupAnswer, ResolveError, Resolver, ResolverConfig, ResolverStats, Step,
    Transmit,
};
pub use socket::{random_seed, resolve, serve, serve_forwarding, std_socket_for, DatagramSocket};
pub use zone::{demo_zone, Zone, ZoneError, ZoneErrorKind};

use core::fmt;

/// Why a DNS message was rejected by the parser. One variant per cause, so a drop counter can
/// name the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Fewer than 12 bytes: not even a header.
    HeaderTruncated,
    /// A name runs past the end of the message.
    NameTruncated,
    /// A compression pointer points at or after itself (RFC 1035 §4.1.4: pointers refer to a
    /// *prior* occurrence).
    PointerForward,
    /// A compression pointer points back into the labels it is part of, which would loop.
    PointerLoop,
    /// A compression pointer points past the end of the message.
    PointerOutsideMessage,
    /// More compression pointers in one name than any valid name needs.
    TooManyPointers,
    /// A label type prefix of 01 or 10 (RFC 1035 §4.1.4 reserves them; RFC 6891 §5 retired
    /// the extended label types). A label length of 64 and above lands here, as 0x40 is 01.
    LabelTypeReserved,
    /// A name longer than 255 octets once decompressed (RFC 1035 §2.3.4).
    NameTooLong,
    /// A question's type or class runs past the end.
    QuestionTruncated,
    /// A record's fixed fields (type, class, TTL, RDLENGTH) run past the end.
    RecordTruncated,
    /// RDLENGTH points past the end of the message.
    RdataTruncated,
    /// The RDATA does not have the length its type requires (fixed-size fields, or names and
    /// fields that do not end exactly at RDLENGTH).
    RdataLengthMismatch,
    /// A TXT character-string's length runs past RDLENGTH.
    TxtStringTruncated,
    /// The header counts more entries than the message holds.
    CountsPastEnd,
    /// Bytes left after the last counted record.
    TrailingBytes,
    /// An OPT record outside the additional section (RFC 6891 §6.1.1).
    OptOutsideAdditional,
    /// More than one OPT record (RFC 6891 §6.1.1: FORMERR).
    MultipleOpt,
    /// An OPT record whose owner is not the root (RFC 6891 §6.1.2).
    OptNameNotRoot,
    /// An EDNS option's length runs past the OPT RDATA (RFC 6891 §6.1.2).
    EdnsOptionTruncated,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for WireError {}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident($repr:ty) { $($(#[$cdoc:meta])* $konst:ident = $val:expr, $text:expr;)* } prefix $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub $repr);

        impl $name {
            $($(#[$cdoc])* pub const $konst: $name = $name($val);)*

            /// The mnemonic, if this value has one.
            pub fn mnemonic(self) -> Option<&'static str> {
                match self.0 {
                    $($val => Some($text),)*
                    _ => None,
                }
            }

            /// Parses a mnemonic (case-insensitive) or the generic `PREFIXnnn` form (RFC 3597 §5).
            pub fn from_mnemonic(s: &str) -> Option<$name> {
                $(if s.eq_ignore_ascii_case($text) { return Some($name($val)); })*
                let digits = s.get(..$prefix.len())
                    .filter(|p| p.eq_ignore_ascii_case($prefix))
                    .and_then(|_| s.get($prefix.len()..))?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                digits.parse().ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.mnemonic() {
                    Some(m) => f.write_str(m),
                    None => write!(f, "{}{}", $prefix, self.0),
                }
            }
        }
    };
}

code_type! {
    /// A record type (RFC 1035 §3.2.2, RFC 3596, RFC 2782, RFC 6891).
    RecordType(u16) {
        A = 1, "A";
        NS = 2, "NS";
        CNAME = 5, "CNAME";
        SOA = 6, "SOA";
        PTR = 12, "PTR";
        MX = 15, "MX";
        TXT = 16, "TXT";
        AAAA = 28, "AAAA";
        SRV = 33, "SRV";
        OPT = 41, "OPT";
        IXFR = 251, "IXFR";
        AXFR = 252, "AXFR";
        ANY = 255, "ANY";
    } prefix "TYPE"
}

code_type! {
    /// A record class (RFC 1035 §3.2.4).
    Class(u16) {
        IN = 1, "IN";
        CH = 3, "CH";
        HS = 4, "HS";
        NONE = 254, "NONE";
        ANY = 255, "ANY";
    } prefix "CLASS"
}

code_type! {
    /// A header OPCODE (RFC 1035 §4.1.1, 4 bits).
    Opcode(u8) {
        QUERY = 0, "QUERY";
        IQUERY = 1, "IQUERY";
        STATUS = 2, "STATUS";
        NOTIFY = 4, "NOTIFY";
        UPDATE = 5, "UPDATE";
    } prefix "OPCODE"
}

code_type! {
    /// A response code: 4 bits in the header, extended to 12 by EDNS0 (RFC 6891 §6.1.3).
    Rcode(u16) {
        NOERROR = 0, "NOERROR";
        FORMERR = 1, "FORMERR";
        SERVFAIL = 2, "SERVFAIL";
        NXDOMAIN = 3, "NXDOMAIN";
        NOTIMP = 4, "NOTIMP";
        REFUSED = 5, "REFUSED";
        BADVERS = 16, "BADVERS";
    } prefix "RCODE"
}

/// The stats macro every layer uses (from the link crate).
pub(crate) use netstack_link::counters;

/// The largest message a plain UDP query may receive (RFC 1035 §4.2.1).
pub const MAX_UDP_PAYLOAD: usize = 512;

/// The EDNS0 payload size we advertise and accept at most. 1232 avoids IP fragmentation on any
/// path with an MTU of 1280 (the DNS flag day 2020 recommendation).
pub const EDNS_PAYLOAD_SIZE: u16 = 1232;

pub(crate) fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_mnemonics_and_generic_form_parse() {
        assert_eq!(RecordType::from_mnemonic("aaaa"), Some(RecordType::AAAA));
        assert_eq!(RecordType::from_mnemonic("TYPE99"), Some(RecordType(99)));
        assert_eq!(RecordType::from_mnemonic("type"), None);
        assert_eq!(RecordType::from_mnemonic("TYPE1x"), None);
        assert_eq!(RecordType(99).to_string(), "TYPE99");
        assert_eq!(Class::IN.to_string(), "IN");
        assert_eq!(Rcode::NXDOMAIN.to_string(), "NXDOMAIN");
    }
}

/// Helpers shared by the tests of several modules.
#[cfg(test)]
pub(crate) mod testutil {
    use super::{Name, RData, Record, Soa};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// Runs `f` on a thread and waits at most `secs` for it: a hang fails the test naming `what`.
    pub fn within<T: Send + 'static>(
        secs: u64,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
    }

    /// Whether `tool` runs. When it does not, the test is skipped loudly, or fails when
    /// NETSTACK_REQUIRE_SYSTEM_TESTS=1, as in the tests crate (CI must not pass these quietly).
    pub fn tool_present(tool: &str, version_flag: &str, package: &str) -> bool {
        if std::process::Command::new(tool)
            .arg(version_flag)
            .output()
            .is_ok()
        {
            return true;
        }
        let required = std::env::var("NETSTACK_REQUIRE_SYSTEM_TESTS").as_deref() == Ok("1");
        assert!(
            !required,
            "{tool} is required but not installed (apt: {package})"
        );
        eprintln!("SKIPPED: {tool} not installed (apt: {package})");
        false
    }

    pub fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// An SOA record for `zone` with the given TTL and MINIMUM.
    pub fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
        let data = Soa {
            mname: name("ns.test"),
            rname: name("h.test"),
            serial: 1,
            refresh: 2,
            retry: 3,
            expire: 4,
            minimum,
        };
        Record::new(name(zone), ttl, RData::Soa(data))
    }
}
