//! What every peer echo server has in common, so that they differ only in their runtime:
//! the port is the first argument, the server binds 127.0.0.1:PORT, sets TCP_NODELAY on
//! each accepted socket, echoes through a 4 KiB per-connection buffer and prints nothing
//! per message (one "listening" line on stderr at start). Started by `benches/peers.sh`,
//! which raises the fd limit and stops them with SIGTERM.

use std::io::{Read, Write};
use std::net::SocketAddr;

mod tokio;

pub use self::tokio::tokio_echo;

/// Per-connection echo buffer.
pub const BUF: usize = 4096;

/// 127.0.0.1 and the port given as the first argument; exits 64 with a usage line if
/// it is missing or not a port.
pub fn addr_from_args() -> SocketAddr {
    let mut args = std::env::args();
    let name = args.next().unwrap_or_default();
    match args.next().map(|p| p.parse::<u16>()) {
        Some(Ok(port)) => SocketAddr::from(([127, 0, 0, 1], port)),
        _ => {
            eprintln!("usage: {name} PORT [OPTIONS]  (an echo server on 127.0.0.1:PORT)");
            std::process::exit(64)
        }
    }
}

/// The value of `--flag N` among the arguments after the port, or `default`.
pub fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().skip(2).collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => {
                eprintln!("{name} needs a number");
                std::process::exit(64)
            }
        },
    }
}

/// The one line a peer prints.
pub fn listening(what: &str, addr: SocketAddr) {
    eprintln!("{what} echo listening on {addr}");
}

/// Echoes `stream` with blocking-style calls until the peer closes or an error: the
/// body of the thread-per-connection and may peers.
pub fn echo_blocking(stream: &mut (impl Read + Write)) {
    let mut buf = [0u8; BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}
