//! gevent's `monkey.patch_all()` + `requests.get` crawler: an unmodified third-party
//! blocking HTTP client (ureq, which uses `std::net`) runs in greenlets, and its blocking
//! calls switch instead of blocking the thread.
//!
//! ```python
//! from gevent import monkey; monkey.patch_all()
//! import requests
//! def get_page(url):
//!     print(f"GET: {url}")
//!     print(f"{len(requests.get(url).content)} bytes received from {url}")
//! gevent.joinall([gevent.spawn(get_page, url) for url in urls])
//! ```
//!
//! `cargo run --release --features monkey --example monkey_crawler` crawls the embedded
//! site (20 pages, each answered after 200 ms) sequentially and concurrently and prints
//! `sync: X.XXs  async: Y.YYs  speedup: Z.Zx`.

use std::time::{Duration, Instant};

use greenhub_crawler::Site;

fn get_page(url: &str) -> usize {
    println!("GET: {url}");
    let body =
        ureq::get(url).call().map_err(|e| e.to_string()).and_then(|r| r.into_string().map_err(|e| e.to_string()));
    match body {
        Ok(body) => {
            println!("{} bytes received from {url}", body.len());
            body.len()
        }
        Err(e) => {
            println!("error: {url}: {e}");
            0
        }
    }
}

#[derive(clap::Parser)]
#[command(about = "The crawler on std::net and ureq, made cooperative by monkey::patch_all().")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    greenhub::monkey::patch_all();
    let site = Site::start(Duration::from_millis(200)).unwrap_or_else(|e| {
        eprintln!("monkey_crawler: cannot start the embedded site: {e}");
        std::process::exit(1)
    });
    let urls: Vec<String> = (1..=greenhub_crawler::site::PAGES).map(|n| site.url(&format!("/page/{n}"))).collect();

    // The site's handlers are greenlets of this thread, so even the sequential crawl runs
    // in a greenlet: its blocking ureq calls must let them answer.
    println!("Synchronous:");
    let list = urls.clone();
    let t = Instant::now();
    let sync_bytes = greenhub::spawn(move || list.iter().map(|u| get_page(u)).sum::<usize>()).get().unwrap_or(0);
    let sync = t.elapsed();

    println!("Asynchronous:");
    let t = Instant::now();
    let jobs: Vec<_> = urls.into_iter().map(|u| greenhub::spawn(move || get_page(&u))).collect();
    greenhub::joinall(&jobs);
    let asynchronous = t.elapsed();
    let async_bytes: usize = jobs.into_iter().map(|j| j.get().unwrap_or(0)).sum();
    site.stop();
    assert_eq!(sync_bytes, async_bytes, "both crawls fetched the same bytes");
    println!(
        "sync: {:.2}s  async: {:.2}s  speedup: {:.1}x",
        sync.as_secs_f64(),
        asynchronous.as_secs_f64(),
        sync.as_secs_f64() / asynchronous.as_secs_f64().max(1e-9)
    );
}
