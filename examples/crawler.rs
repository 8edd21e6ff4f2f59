//! gevent's concurrent web crawler, greenhub's main demo.
//!
//! `cargo run --release --example crawler` starts an embedded site (an index and 20
//! pages, each answered after 200 ms), crawls it sequentially and then concurrently,
//! and prints `sync: X.XXs  async: Y.YYs  speedup: Z.Zx`.
//!
//! `cargo run --release --example crawler -- https://example.com/ --depth 1
//! --concurrency 10 --timeout 10` crawls real sites (`--urls-file F` reads URLs from a
//! file). Every failure is a line, and a table of url, status, bytes and time ends the run.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(greenhub_crawler::cli::main(&args));
}
