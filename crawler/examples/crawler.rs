//! gevent's concurrent web crawler, greenhub's main demo.
//!
//! `cargo run --release --example crawler` starts an embedded site (an index and 20
//! pages, each answered after 200 ms), crawls it sequentially and then concurrently,
//! and prints `sync: X.XXs  async: Y.YYs  speedup: Z.Zx`.
//!
//! `cargo run --release --example crawler -- https://example.com/ --depth 1
//! --concurrency 10 --per-host 4 --max-pages 500 --timeout 10` crawls real sites
//! (`--urls-file F` reads URLs from a file; `--all-hosts` follows links off the seeds'
//! hosts). On a terminal a progress bar shows fetched/queued/errors/rate, elsewhere one
//! line per URL; `--quiet` shows neither. The results end the run: a table and a
//! summary (`--output table`), or one JSON object per URL per line (`json`), or CSV.
//! `--help` lists everything. Exit status: 0 when every URL answered 2xx, 1 otherwise,
//! 2 for a usage error.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(greenhub_crawler::cli::main(&args));
}
