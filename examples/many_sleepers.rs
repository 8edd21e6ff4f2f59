//! Memory per idle greenlet: N greenlets sleeping at once (default 100,000).
//!
//! `cargo run --release --example many_sleepers -- [N] [SLEEP_MS]` prints the peak RSS
//! growth per greenlet and the number alive at once. With N = 1,000,000 it shows that a
//! million concurrent greenlets fit on an unmodified Linux (`vm.max_map_count` 65530):
//! stacks come from 32 MiB slabs whose guard pages split no mapping.

use std::time::{Duration, Instant};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// N greenlets sleeping at once; prints the memory each costs.
#[derive(clap::Parser)]
struct Args {
    /// Greenlets.
    #[arg(default_value_t = 100_000)]
    n: usize,
    /// How long each sleeps, in ms.
    #[arg(default_value_t = 2_000)]
    sleep_ms: u64,
}

fn main() {
    let a = <Args as clap::Parser>::parse();
    let (n, sleep_ms) = (a.n, a.sleep_ms);
    let base = rss_kib("VmRSS:");
    let t = Instant::now();
    let gs: Vec<_> =
        (0..n).map(|_| greenhub::spawn(move || greenhub::sleep(Duration::from_millis(sleep_ms)))).collect();
    greenhub::yield_now(); // every greenlet starts and parks
    let alive = greenhub::stats().greenlets;
    let spawned = t.elapsed();
    let peak = rss_kib("VmRSS:");
    let maps = std::fs::read_to_string("/proc/self/maps").map(|m| m.lines().count()).unwrap_or(0);
    greenhub::joinall(&gs);
    println!(
        "{n} greenlets: {alive} alive at once, {:.2} KiB RSS each ({} MiB total), {maps} mappings, \
         spawned+started in {:.2}s, all done in {:.2}s",
        (peak.saturating_sub(base)) as f64 / n as f64,
        (peak.saturating_sub(base)) / 1024,
        spawned.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}
