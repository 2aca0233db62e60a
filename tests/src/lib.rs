//! Shared helpers for the integration, system and stress tests.
//!
//! The system tier (real Linux peers, root): [`system`] gates a test on root and the tools it
//! needs, [`netns`] runs things in throwaway network namespaces, [`peers`] reads what ping,
//! arping and netstackd print, and [`rawframe`] builds the frames the tools in `src/bin` send.

pub mod netns;
pub mod peers;
pub mod rawframe;
pub mod system;
