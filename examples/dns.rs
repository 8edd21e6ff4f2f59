//! gevent's DNS demo: resolve several names at once, each in its own greenlet, and wait
//! at most 2 seconds for all of them.
//!
//! ```python
//! jobs = [gevent.spawn(gevent.socket.gethostbyname, url) for url in urls]
//! gevent.joinall(jobs, timeout=2)
//! print([job.value for job in jobs])
//! ```
//!
//! `cargo run --release --example dns [NAME...]`. Without names it resolves names that
//! work offline: `localhost`, this machine's host name, names from `/etc/hosts`, and
//! one that does not exist.

use std::time::{Duration, Instant};

use greenhub::net::gethostbyname;
use greenhub::{joinall_timeout, spawn};

fn default_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        names.push(h.trim().to_string());
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        for line in hosts.lines().map(|l| l.split('#').next().unwrap_or("")) {
            names.extend(line.split_whitespace().skip(1).map(String::from));
        }
    }
    names.push("no-such-host.invalid".to_string());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names.truncate(8);
    names
}

/// Resolves host names concurrently, each in a greenlet (gevent's dns demo).
#[derive(clap::Parser)]
struct Args {
    /// Host names to resolve (default: a few well-known ones and this host's).
    names: Vec<String>,
}

fn main() {
    let args = <Args as clap::Parser>::parse().names;
    let names = if args.is_empty() { default_names() } else { args };
    let t = Instant::now();
    let jobs: Vec<_> =
        names.iter().cloned().map(|n| spawn(move || gethostbyname(&n).map_err(|e| e.to_string()))).collect();
    let all = joinall_timeout(&jobs, Duration::from_secs(2));
    for (name, job) in names.iter().zip(&jobs) {
        match job.value() {
            Some(Ok(ip)) => println!("{name:30} {ip}"),
            Some(Err(e)) => println!("{name:30} error: {e}"),
            None => println!("{name:30} (no answer within 2 s)"),
        }
    }
    println!(
        "{} names in {:.3}s{}",
        names.len(),
        t.elapsed().as_secs_f64(),
        if all { "" } else { " (some timed out)" }
    );
}
