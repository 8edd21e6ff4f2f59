//! gevent's synchronous vs asynchronous demo: ten tasks that each wait 0.5 s, run
//! one after another (~5 s), then as ten greenlets (~0.5 s).
//!
//! `cargo run --release --example sync_vs_async`

use std::time::{Duration, Instant};

use greenhub::{joinall, sleep, spawn};

fn task(pid: u32) {
    // gevent: gevent.sleep(random.randint(0, 2) * 0.001) in the tutorial; a fixed
    // 0.5 s here makes the difference visible.
    sleep(Duration::from_millis(500));
    println!("Task {pid} done");
}

#[derive(clap::Parser)]
#[command(about = "The same tasks one after another, then concurrently, timed.")]
struct Args {}

fn main() {
    let Args {} = <Args as clap::Parser>::parse();
    println!("Synchronous:");
    let t = Instant::now();
    for i in 0..10 {
        task(i);
    }
    let sync = t.elapsed();

    println!("Asynchronous:");
    let t = Instant::now();
    let threads: Vec<_> = (0..10).map(|i| spawn(move || task(i))).collect();
    joinall(&threads);
    let asynchronous = t.elapsed();

    println!("synchronous: {:.2}s  asynchronous: {:.2}s", sync.as_secs_f64(), asynchronous.as_secs_f64());
}
