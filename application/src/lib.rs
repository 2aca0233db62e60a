//! netstack application layer.
pub mod dns;
