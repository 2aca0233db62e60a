//! The network layer: IPv4 (RFC 791) with fragmentation and reassembly, ICMPv4 (RFC 792)
//! and routing. Sans-IO: nothing here owns a thread, a socket or a clock.
//!
//! The runtime's network workers each own one [`endpoint::Ipv4Endpoint`]; [`endpoint::shard_key`]
//! routes every fragment of a datagram to the same worker.

/// Declares a stats struct of `u64` counters (plus nested stats structs after `;`) with
/// `add`, which the runtime uses to sum the workers.
macro_rules! counters {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            $( $(#[$fm:meta])* $f:ident, )*
            $( ; $( $(#[$nm:meta])* $n:ident : $t:ty, )* )?
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fm])* pub $f: u64, )*
            $( $( $(#[$nm])* pub $n: $t, )* )?
        }

        impl $name {
            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &$name) {
                $( self.$f += other.$f; )*
                $( $( self.$n.add(&other.$n); )* )?
            }
        }
    };
}
pub(crate) use counters;

pub mod checksum;
pub mod endpoint;
pub mod fragment;
pub mod icmp;
pub mod ident;
pub mod reassembly;
pub mod route;
pub mod wire;
