//! The network layer: IPv4 (RFC 791) with fragmentation and reassembly, ICMPv4 (RFC 792)
//! and routing. Sans-IO: nothing here owns a thread, a socket or a clock.
//!
//! Map:
//! - [`wire`]: zero-copy views and `Repr`s: IPv4 (`Ipv4Packet`, `Ipv4Repr`, `Ipv4Cidr`) and
//!   ICMPv4 (`Icmpv4Packet`, `Icmpv4Repr`); [`checksum`]: RFC 1071 sums.
//! - [`fragment`]: splitting to an MTU; [`ident`]: the Identification field (RFC 6864/7739);
//!   [`reassembly`]: the bounded, overlap-intolerant reassembler.
//! - [`icmp`]: when an ICMP error may be sent and the rate limit; [`route`]: the routing table.
//! - [`endpoint`]: `Ipv4Endpoint`, which the runtime's network workers each own (one
//!   reassembly shard and one rate-limiter share per worker); [`endpoint::shard_key`] sends
//!   every fragment of a datagram to the same worker.

/// Declares a stats struct of `u64` counters (plus nested stats structs after `;`) with
/// `add`, which the runtime uses to sum the workers, and `for_each`, which names them.
#[macro_export]
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

            /// Calls `f` with every counter's name and value, nested ones as `outer.inner`.
            pub fn for_each(&self, f: &mut dyn FnMut(&str, u64)) {
                $( f(stringify!($f), self.$f); )*
                $( $(
                    self.$n.for_each(&mut |name, v| f(&format!("{}.{name}", stringify!($n)), v));
                )* )?
            }
        }
    };
}

pub mod checksum;
pub mod endpoint;
pub mod fragment;
pub mod icmp;
pub mod ident;
pub mod reassembly;
pub mod route;
pub mod wire;
