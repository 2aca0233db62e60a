//! What `netstackd` and the command-line tools share: flag parsers, opening and configuring the
//! device, running a tool. The services themselves live in `netstack_application::services`;
//! only this crate wires them onto a stack.

pub mod args;
pub mod device;
pub mod tool;
