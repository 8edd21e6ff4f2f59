//! 20 GETs of a page that takes 200 ms, with libcurl (the system `libcurl.so.4`, through
//! the `curl` crate), one after another and then in 20 greenlets after
//! `greenhub::monkey::patch_all()`:
//!
//! `cargo run --release -p greenhub-c-libs --features monkey --example monkey_curl`

use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn get(url: &str) -> usize {
    let mut easy = curl::easy::Easy::new();
    easy.url(url).expect("a valid url");
    let mut n = 0;
    {
        let mut t = easy.transfer();
        t.write_function(|d| {
            n += d.len();
            Ok(d.len())
        })
        .expect("a write callback");
        if let Err(e) = t.perform() {
            eprintln!("{url}: {e}");
        }
    }
    n
}

fn main() {
    greenhub::monkey::patch_all();
    let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |mut c: greenhub::net::TcpStream, _| {
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf);
        greenhub::sleep(Duration::from_millis(200));
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    })
    .expect("bind")
    .start()
    .expect("start");
    let url = format!("http://{}/", server.local_addr());
    let t = Instant::now();
    let sync: usize = (0..20)
        .map(|_| {
            greenhub::spawn({
                let u = url.clone();
                move || get(&u)
            })
            .get()
            .unwrap_or(0)
        })
        .sum();
    let sync_t = t.elapsed();
    let t = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|_| {
            greenhub::spawn({
                let u = url.clone();
                move || get(&u)
            })
        })
        .collect();
    greenhub::joinall(&gs);
    let async_t = t.elapsed();
    let async_bytes: usize = gs.into_iter().map(|g| g.get().unwrap_or(0)).sum();
    println!("one at a time: {} bytes in {:.2}s", sync, sync_t.as_secs_f64());
    println!("20 greenlets:  {} bytes in {:.2}s", async_bytes, async_t.as_secs_f64());
    println!("speedup: {:.1}x", sync_t.as_secs_f64() / async_t.as_secs_f64());
    server.stop(Duration::ZERO);
}
