//! Many concurrent echo clients as greenlets (the seed's 100/500-client gevent script):
//! each sends pseudo-random messages, verifies every echoed byte, and the run prints
//! messages per second.
//!
//! `cargo run --release --example echo_client -- [--addr 127.0.0.1:8001] [--clients 100]
//!  [--seconds 5] [--size 64]`; `--spawn-server` runs greenhub's echo server in-process
//! on a free port, so the client needs nothing else.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;
use greenhub::{joinall, spawn};

/// Many concurrent echo clients as greenlets; prints messages per second.
#[derive(clap::Parser)]
struct Opts {
    /// The echo server's address.
    #[arg(long, default_value = "127.0.0.1:8001")]
    addr: String,
    /// Concurrent clients (greenlets).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// How long to run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Bytes per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Run greenhub's echo server in-process on a free port.
    #[arg(long)]
    spawn_server: bool,
}

fn opts() -> Opts {
    <Opts as clap::Parser>::parse()
}

/// A small xorshift stream so every client sends different bytes.
fn fill(seed: &mut u64, buf: &mut [u8]) {
    for b in buf {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *b = *seed as u8;
    }
}

fn main() {
    let o = opts();
    let mut server = None;
    let addr: SocketAddr = if o.spawn_server {
        let s = StreamServer::bind("127.0.0.1:0", |mut c: TcpStream, _| {
            let mut buf = [0u8; 4096];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 || c.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        })
        .and_then(|s| s.start())
        .unwrap_or_else(|e| {
            eprintln!("echo_client: cannot start the in-process server: {e}");
            std::process::exit(1)
        });
        let a = s.local_addr();
        server = Some(s);
        a
    } else {
        match greenhub::net::ToSocketAddrs::to_socket_addrs(o.addr.as_str()).ok().and_then(|mut a| a.next()) {
            Some(a) => a,
            None => {
                eprintln!("echo_client: cannot resolve {}", o.addr);
                std::process::exit(1)
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs_f64(o.seconds);
    let size = o.size;
    let start = Instant::now();
    let clients: Vec<_> = (0..o.clients)
        .map(|i| {
            spawn(move || -> Result<(u64, u64), String> {
                let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
                let (mut out, mut back) = (vec![0u8; size], vec![0u8; size]);
                let (mut msgs, mut bytes) = (0u64, 0u64);
                while Instant::now() < deadline {
                    fill(&mut seed, &mut out);
                    s.write_all(&out).map_err(|e| format!("write: {e}"))?;
                    s.read_exact(&mut back).map_err(|e| format!("read: {e}"))?;
                    if back != out {
                        return Err(format!("client {i}: echoed bytes differ"));
                    }
                    msgs += 1;
                    bytes += size as u64;
                }
                Ok((msgs, bytes))
            })
        })
        .collect();
    joinall(&clients);
    let elapsed = start.elapsed().as_secs_f64();
    let (mut msgs, mut bytes, mut errors) = (0u64, 0u64, 0usize);
    for c in clients {
        match c.get() {
            Ok(Ok((m, b))) => {
                msgs += m;
                bytes += b;
            }
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("{e}");
            }
            Err(e) => {
                errors += 1;
                eprintln!("client failed: {e}");
            }
        }
    }
    println!(
        "{} clients, {:.1}s: {} messages, {:.0} messages/s, {} bytes verified, {} errors",
        o.clients,
        elapsed,
        msgs,
        msgs as f64 / elapsed,
        bytes,
        errors
    );
    if let Some(s) = server {
        s.stop(Duration::from_secs(1));
    }
    if errors > 0 {
        std::process::exit(1);
    }
}
