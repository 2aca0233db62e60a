//! The benchmarks' shared parts, which `netstack-bench` (issue 9's suite) and `bench-http`
//! run: [`run`] (namespaces, signals, progress, medians, JSON helpers), the TCP loops and
//! servers in [`tcp`], smoltcp as a reference in [`smoltcp`], the in-process cases in
//! [`inproc`], UDP in [`udp`], ICMP in [`icmp`], the table and JSON lines in [`report`], the
//! SVG charts in [`chart`] and the scenarios themselves in [`suite`].
//! Reported, never asserted.

pub mod chart;
pub mod icmp;
pub mod inproc;
pub mod report;
pub mod run;
pub mod smoltcp;
pub mod suite;
pub mod tcp;
pub mod udp;
