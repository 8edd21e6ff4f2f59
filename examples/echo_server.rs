//! gevent's TCP echo server: one greenlet per connection.
//!
//! ```python
//! from gevent.server import StreamServer
//! def echo(sock, address):
//!     while data := sock.recv(4096): sock.sendall(data)
//! StreamServer(('127.0.0.1', 8001), echo).serve_forever()
//! ```
//!
//! `cargo run --release --example echo_server -- --port 8001 [--host 127.0.0.1] [--threads N]
//! [--stack-size BYTES] [--verbose]` (the port may also be the first argument). Prints
//! nothing per message unless `--verbose`. `--threads N` serves on N hubs (OS threads),
//! each accepting on its own `SO_REUSEPORT` listener (gevent users would run N processes
//! behind one port). `--stack-size` gives each connection's greenlet a stack of that many
//! bytes instead of the default 256 KiB (this handler needs less than 16 KiB).

use std::io::{Read, Write};
use std::net::SocketAddr;

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

/// gevent's TCP echo server: one greenlet per connection.
#[derive(clap::Parser)]
struct Args {
    /// The port (also `--port`).
    #[arg(value_name = "PORT")]
    port_arg: Option<u16>,
    /// The port to listen on.
    #[arg(long, default_value_t = 8001)]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Hubs (OS threads) to serve on; 1 serves on this thread's hub.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Usable stack bytes of each connection's greenlet (default: greenhub's 256 KiB).
    #[arg(long, value_name = "BYTES")]
    stack_size: Option<usize>,
    /// Print connections and message sizes.
    #[arg(short, long)]
    verbose: bool,
}

#[path = "util/fd_limit.rs"]
mod fd_limit;
use fd_limit::raise_fd_limit;

fn main() {
    let a = <Args as clap::Parser>::parse();
    let (host, port, verbose) = (a.host, a.port_arg.unwrap_or(a.port), a.verbose);
    raise_fd_limit();
    let handler = move |mut conn: TcpStream, peer: SocketAddr| {
        let _ = conn.set_nodelay(true);
        if verbose {
            eprintln!("{peer} connected");
        }
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if verbose {
                        eprintln!("{peer}: {n} bytes");
                    }
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        if verbose {
            eprintln!("{peer} disconnected");
        }
    };
    let server = match StreamServer::bind((host.as_str(), port), handler) {
        Ok(s) => match a.stack_size {
            Some(bytes) => s.stack_size(bytes),
            None => s,
        },
        Err(e) => {
            eprintln!("echo_server: cannot listen on {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "echo_server listening on {} ({} hub{})",
        server.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        a.threads,
        if a.threads == 1 { "" } else { "s" }
    );
    let served = if a.threads == 1 {
        server.serve_forever()
    } else {
        server.workers(a.threads.into()).and_then(|w| w.serve_forever())
    };
    if let Err(e) = served {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}
