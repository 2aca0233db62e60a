//! netstack runtime layer.
