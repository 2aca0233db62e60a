//! Two stacks joined by the in-memory link: what the in-process, stress and benchmark tiers
//! start from. Stack A is 192.0.2.2, stack B is 192.0.2.3, both /24.

use std::net::Ipv4Addr;
use std::sync::Arc;

use netstack_link::device::memory::{Impairments, MemoryLink, MemoryLinkConfig};
use netstack_runtime::{Stack, StackBuilder};

pub const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);

/// Two stacks over a link with the same seeded `impairments` both ways, each with two
/// network and two transport workers, so the tests exercise the sharding (fragments of one
/// datagram meeting in one reassembly shard, sockets on different workers).
pub fn impaired_pair(impairments: Impairments, seed: u64) -> (Stack, Stack) {
    let cfg = MemoryLinkConfig {
        a_to_b: impairments.clone(),
        b_to_a: impairments,
        seed,
        ..MemoryLinkConfig::default()
    };
    pair_with(cfg, Some((2, 2))).expect("two stacks over the in-memory link")
}

/// Two stacks over a link built from `cfg`, with `(network, transport)` workers each when
/// given. An error names the stack that failed.
pub fn pair_with(
    cfg: MemoryLinkConfig,
    workers: Option<(usize, usize)>,
) -> Result<(Stack, Stack), String> {
    pair_built(cfg, |b| match workers {
        Some((n, t)) => b.workers(n, t),
        None => b,
    })
}

/// Two stacks over a link built from `cfg`, each builder adjusted by `adjust` first.
pub fn pair_built(
    cfg: MemoryLinkConfig,
    adjust: impl Fn(StackBuilder) -> StackBuilder,
) -> Result<(Stack, Stack), String> {
    let (da, db) = MemoryLink::pair(cfg);
    let build = |dev, cidr: &str| {
        let b = Stack::builder(Arc::new(dev), cidr.parse().expect("a literal CIDR"));
        adjust(b)
            .build()
            .map_err(|e| format!("building the {cidr} stack: {e}"))
    };
    Ok((build(da, "192.0.2.2/24")?, build(db, "192.0.2.3/24")?))
}

/// `len` bytes of a xorshift stream seeded by `seed`: data a test sends and checks byte for
/// byte (a different seed per connection catches crossed streams).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
