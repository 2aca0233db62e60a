//! UDP (RFC 768): the wire format and the socket demultiplexing table.

mod packet;
mod table;

pub use packet::{UdpError, UdpPacket, UdpRepr, HEADER_LEN, MAX_PAYLOAD};
pub use table::{BindError, SocketId, SocketTable, EPHEMERAL_PORTS};
