//! UDP (RFC 768): the wire format, the socket demultiplexing table and the counters.

mod packet;
mod stats;
mod table;

pub use packet::{UdpError, UdpPacket, UdpRepr, HEADER_LEN, MAX_PAYLOAD};
pub use stats::UdpStats;
pub use table::{BindError, SocketId, SocketTable, EPHEMERAL_PORTS};
