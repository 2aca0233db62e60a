//! netstack link layer.
