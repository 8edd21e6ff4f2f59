//! gevent's TCP echo server: one greenlet per connection.
//!
//! ```python
//! from gevent.server import StreamServer
//! def echo(sock, address):
//!     while data := sock.recv(4096): sock.sendall(data)
//! StreamServer(('127.0.0.1', 8001), echo).serve_forever()
//! ```
//!
//! `cargo run --release --example echo_server -- --port 8001 [--host 127.0.0.1] [--verbose]`
//! (the port may also be the first argument). Prints nothing per message unless
//! `--verbose`.

use std::io::{Read, Write};
use std::net::SocketAddr;

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

fn main() {
    let mut port = 8001u16;
    let mut host = "127.0.0.1".to_string();
    let mut verbose = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or_else(|| usage()),
            "--host" => host = args.next().unwrap_or_else(|| usage()),
            "--verbose" | "-v" => verbose = true,
            p if p.parse::<u16>().is_ok() => port = p.parse().unwrap_or(port),
            _ => usage(),
        }
    }
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
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo_server: cannot listen on {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("echo_server listening on {}", server.local_addr().map(|a| a.to_string()).unwrap_or_default());
    if let Err(e) = server.serve_forever() {
        eprintln!("echo_server: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: echo_server [PORT] [--port PORT] [--host HOST] [--verbose]");
    std::process::exit(2);
}

/// Raises the soft fd limit to the hard one (1,000+ connections need it on some hosts).
fn raise_fd_limit() {
    let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}
