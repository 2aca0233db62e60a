//! Shared helpers for the integration, system and stress tests.

pub mod bench_mem;
