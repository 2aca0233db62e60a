//! Why a wire format was rejected. One variant per cause, so drop counters can name it.

use std::fmt;

/// A parse failure of an IPv4 or ICMPv4 wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The buffer is shorter than the fixed header.
    Truncated,
    /// RFC 791 §3.1: the version field is not 4.
    BadVersion,
    /// IHL below 5 words, or the header runs past the buffer.
    BadHeaderLength,
    /// Total length below the header length, or above the buffer.
    BadTotalLength,
    /// The header (IPv4) or message (ICMP) checksum does not verify.
    BadChecksum,
    /// An ICMP type this stack does not parse (it is counted and dropped).
    UnknownIcmpType,
    /// An ICMP code not defined for its type.
    BadIcmpCode,
    /// An ICMP error message whose quoted IPv4 header is unusable.
    BadQuotedHeader,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            WireError::Truncated => "buffer shorter than the header",
            WireError::BadVersion => "IP version is not 4",
            WireError::BadHeaderLength => "bad IPv4 header length",
            WireError::BadTotalLength => "bad IPv4 total length",
            WireError::BadChecksum => "checksum mismatch",
            WireError::UnknownIcmpType => "unsupported ICMP type",
            WireError::BadIcmpCode => "ICMP code undefined for its type",
            WireError::BadQuotedHeader => "ICMP error quotes an unusable IPv4 header",
        };
        f.write_str(s)
    }
}

impl std::error::Error for WireError {}
