//! netstack transport layer.

pub mod tcp;
