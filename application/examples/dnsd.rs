//! The DNS server over std's UDP, for trying the application crate's DNS with dig without a
//! TAP device: `cargo run -p netstack-application --example dnsd -- 127.0.0.1:5353
//! [--upstream IP:PORT] [ZONEFILE...]`, then `dig @127.0.0.1 -p 5353 www.demo.test`.
//! Serves the built-in demo.test zone (A 192.0.2.2) plus the zone files; runs until killed.

use netstack_application::dns::{
    demo_zone, random_seed, serve, serve_forwarding, std_socket_for, Catalog, Resolver,
    ResolverConfig, Zone,
};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(listen) = args.next().and_then(|a| a.parse::<SocketAddr>().ok()) else {
        eprintln!("usage: dnsd ADDR:PORT [--upstream IP:PORT] [ZONEFILE...]");
        return ExitCode::from(2);
    };
    let mut catalog = Catalog::new();
    catalog.insert(demo_zone(Ipv4Addr::new(192, 0, 2, 2)));
    let mut upstream = None;
    while let Some(arg) = args.next() {
        if arg == "--upstream" {
            match args.next().and_then(|a| a.parse::<SocketAddr>().ok()) {
                Some(addr) => upstream = Some(addr),
                None => {
                    eprintln!("--upstream needs IP:PORT");
                    return ExitCode::from(2);
                }
            }
            continue;
        }
        match Zone::load(Path::new(&arg), None) {
            Ok(zone) => {
                eprintln!("loaded {} from {arg}", zone.origin());
                catalog.insert(zone);
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        }
    }
    let socket = match UdpSocket::bind(listen) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot bind {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("serving DNS on {listen}");
    let (stats, stop) = (Mutex::default(), AtomicBool::new(false));
    let result = match upstream {
        Some(up) => {
            let mut resolver = Resolver::new(ResolverConfig::new(vec![up]), random_seed());
            serve_forwarding(
                &socket,
                &catalog,
                &mut resolver,
                std_socket_for,
                &stats,
                &stop,
            )
        }
        None => serve(&socket, &catalog, &stats, &stop),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server failed: {e}");
            ExitCode::from(1)
        }
    }
}
