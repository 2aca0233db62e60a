//! netstack transport layer.
