//! UDP (RFC 768): the wire format, the socket demultiplexing table, the sans-IO endpoint that
//! decides what received datagrams and ICMP errors call for, and the counters.

pub mod endpoint;
mod packet;
mod stats;
mod table;

pub use crate::ports::EPHEMERAL_PORTS;
pub use endpoint::{icmp_error, receive, IcmpReport, Input};
pub use packet::{UdpError, UdpPacket, UdpRepr, HEADER_LEN, MAX_PAYLOAD};
pub use stats::UdpStats;
pub use table::{BindError, SocketId, SocketTable};
