//! netstack application layer.
