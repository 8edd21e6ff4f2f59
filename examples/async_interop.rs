//! Async Rust from greenlets: 1,000 greenlets on one hub each make an HTTP request with
//! async reqwest (through `greenhub::tokio::block_on`) to a local server that answers
//! after 100 ms — next to the same requests through `reqwest::blocking` called from
//! greenlets (each call blocks the whole hub: they run one after another), through
//! `threadpool::spawn_blocking`, and a pure tokio program.
//!
//! `cargo run --release --features tokio --example async_interop -- [--requests 1000] [--blocking-requests 10]`

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

/// 1,000 async reqwest requests from greenlets, next to the alternatives.
#[derive(clap::Parser)]
struct Args {
    /// Requests for the async, spawn_blocking and tokio runs.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Requests through reqwest::blocking from greenlets (they serialise: keep it small).
    #[arg(long, default_value_t = 10)]
    blocking_requests: usize,
    /// Server latency per request, in milliseconds.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
}

/// A minimal HTTP/1.1 server: every request is answered `ok` after `latency`.
fn serve(latency: Duration) -> greenhub::server::WorkersHandle {
    let handler = move |mut c: TcpStream, _peer: SocketAddr| {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let end = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("found above") + 4;
            buf.drain(..end);
            greenhub::sleep(latency);
            if c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                return;
            }
        }
    };
    StreamServer::bind("127.0.0.1:0", handler).and_then(|s| s.workers(1)).and_then(|w| w.start()).unwrap_or_else(|e| {
        eprintln!("async_interop: cannot start the local server: {e}");
        std::process::exit(1);
    })
}

/// Joins the greenlets; how many got the body `ok`.
fn count_ok<E: 'static>(gs: Vec<greenhub::Greenlet<Result<String, E>>>) -> usize {
    gs.into_iter().map(|g| g.get()).filter(|r| matches!(r, Ok(Ok(b)) if b == "ok")).count()
}

fn report(what: &str, n: usize, ok: usize, t: Duration) {
    println!("{what:<52} {n:>5} requests  {ok:>5} ok  {:>8.2?}", t);
}

#[path = "util/fd_limit.rs"]
mod fd_limit;
use fd_limit::raise_fd_limit;

fn main() {
    let a = <Args as clap::Parser>::parse();
    raise_fd_limit();
    let server = serve(Duration::from_millis(a.latency_ms));
    let url = format!("http://{}/", server.local_addr());

    // 1. Async reqwest from greenlets: one hub, the requests overlap.
    let client = reqwest::Client::new();
    let t = Instant::now();
    let gs: Vec<_> = (0..a.requests)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            greenhub::spawn(move || {
                greenhub::tokio::block_on(async move {
                    let r = client.get(&url).send().await?;
                    r.text().await
                })
            })
        })
        .collect();
    let ok = count_ok(gs);
    report("async reqwest in greenhub::tokio::block_on (1 hub)", a.requests, ok, t.elapsed());

    // 2. reqwest::blocking called from greenlets: each call blocks the hub's thread.
    let blocking = reqwest::blocking::Client::new();
    let t = Instant::now();
    let gs: Vec<_> = (0..a.blocking_requests)
        .map(|_| {
            let (client, url) = (blocking.clone(), url.clone());
            greenhub::spawn(move || client.get(&url).send().and_then(|r| r.text()))
        })
        .collect();
    let ok = count_ok(gs);
    report("reqwest::blocking from greenlets (serialised)", a.blocking_requests, ok, t.elapsed());

    // 3. reqwest::blocking on the threadpool: a thread per request in flight.
    let t = Instant::now();
    let gs: Vec<_> = (0..a.requests)
        .map(|_| {
            let (client, url) = (blocking.clone(), url.clone());
            greenhub::spawn(move || {
                greenhub::threadpool::spawn_blocking(move || client.get(&url).send().and_then(|r| r.text()))
            })
        })
        .collect();
    let ok = count_ok(gs);
    report("reqwest::blocking in threadpool::spawn_blocking", a.requests, ok, t.elapsed());

    // 4. The same in a pure tokio program.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
    let client = reqwest::Client::new(); // fresh connections, as in the first run
    let t = Instant::now();
    let ok = rt.block_on(async {
        let tasks: Vec<_> = (0..a.requests)
            .map(|_| {
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move { client.get(&url).send().await?.text().await })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if matches!(t.await, Ok(Ok(ref b)) if b == "ok") {
                ok += 1;
            }
        }
        ok
    });
    report("pure tokio (current-thread runtime, tokio::spawn)", a.requests, ok, t.elapsed());
    server.stop(Duration::from_secs(1));
}
