//! What `netstackd` and the command-line tools share: flag parsers, opening and configuring the
//! device, and the built-in services. Only this crate wires services onto the stack.

pub mod args;
pub mod device;
pub mod services;
pub mod tool;
