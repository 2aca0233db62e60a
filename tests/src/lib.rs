//! Shared helpers for the integration, system and stress tests.
//!
//! The system tier (real Linux peers, root): [`system`] gates a test on root and the tools it
//! needs, [`netns`] runs things in throwaway network namespaces, [`peers`] reads what ping,
//! arping, tshark and netstackd print, [`dig`] reads dig's and kdig's answers, and
//! [`rawframe`] builds, on the stack's wire views, the frames the tools in `src/bin` send. The benchmarks' shared parts
//! are in [`bench`] (`netstack-bench`, issue 9's suite; `docs/bench.md`) and [`bench_http`].
//! The flood and shutdown tests sample netstackd's memory and read its live counters with
//! [`flood`].
//! HTTP and WebSocket peers: [`http_peers`] runs curl, ab and wrk and reads their reports;
//! [`autobahn`] runs the Autobahn testsuite and the Python `websockets` client (installed by
//! `tests/autobahn/install.sh`, see `tests/autobahn/README.md`).
//!
//! Running them (as root; `netstackd` must be built first, in the same target dir and profile):
//! ```text
//! cargo build --workspace --bins && cargo test -p netstack-tests --test system_icmp
//! cargo build --workspace --bins && cargo test -p netstack-tests --test system_udp_dns
//! NETSTACK_REQUIRE_SYSTEM_TESTS=1 cargo test ...   # a missing privilege or tool fails
//! cargo build --release --workspace --bins && target/release/netstack-bench [--quick]
//! ```
//! `NETSTACKD=/path/to/netstackd` overrides where the tests look for it.

pub mod autobahn;
pub mod bench;
pub mod bench_http;
pub mod dig;
pub mod flood;
pub mod http_peers;
pub mod inprocess;
pub mod netns;
pub mod peers;
pub mod rawframe;
pub mod system;
