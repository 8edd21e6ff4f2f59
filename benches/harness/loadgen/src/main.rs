//! Echo load generator (one thread, mio), loopback only.
//!
//! Echo mode: `--conns N` connections each ping-pong `--size` bytes: write a message,
//! read back exactly that many bytes, verify them byte for byte against the connection's
//! own pseudo-random stream, repeat. After `--warmup` seconds it counts round trips for
//! `--duration` seconds and reports msgs/s, round-trip p50/p99/max, connect failures,
//! errors, mismatches and bytes verified; with `--server-pid` also the server's CPU % and
//! **server CPU µs per message** over the measured window (and its own CPU %).
//!
//! With `--go-on-stdin` it prints `connected N` once connected and warms up until stdin
//! has a line (or closes); `benches/interleave.py` uses that to open every load
//! generator's window at once, and stops and continues them (SIGSTOP / SIGCONT): an
//! interrupted `epoll_wait` is an empty poll, and a paced schedule moves on by a stall
//! instead of sending the stalled time's messages at once. The window's bounds are in
//! the JSON on CLOCK_MONOTONIC (`window_start_mono_s`, `window_end_mono_s`).
//!
//! Storm mode (`--connect-storm N`): N short connections, `--storm-concurrency` at once,
//! each one message then close; reports conns/s and, with `--server-pid`, the server's
//! CPU µs per completed connection (over the whole storm; clock-tick resolution).
//!
//! Exit status: 0, 2 if any echoed byte was wrong, 3 if nothing connected, 64 bad usage
//! (also `--go-on-stdin` with a stdin epoll cannot watch).
//!
//! ```sh
//! loadgen --addr 127.0.0.1:7000 --conns 100 --size 64 --duration 5 --warmup 1 --json
//! loadgen --addr 127.0.0.1:7000 --connect-storm 5000
//! ```

mod cpu;
mod echo;
mod exchange;
mod pattern;
mod stats;
mod storm;
mod wait;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Echo load generator: verified ping-pong or a connect storm against 127.0.0.1.
#[derive(Parser)]
struct Args {
    /// Server address (loopback only).
    #[arg(long)]
    addr: SocketAddr,
    /// Concurrent connections (echo mode).
    #[arg(long, default_value_t = 100)]
    conns: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    size: u32,
    /// Measured seconds (echo mode); the whole storm's time limit in storm mode.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of traffic before measuring (echo mode).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// The server's PID, to report its CPU use over the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print one JSON object instead of a line of text.
    #[arg(long)]
    json: bool,
    /// Storm mode: this many short connections instead of the echo run.
    #[arg(long)]
    connect_storm: Option<usize>,
    /// Storm connections in flight at once.
    #[arg(long, default_value_t = 100)]
    storm_concurrency: usize,
    /// Echo mode, paced: at most this many messages per second in all (each connection
    /// waits `conns / rate` seconds between the starts of its messages); default: a
    /// closed loop, each message right after the last echo.
    #[arg(long)]
    rate: Option<f64>,
    /// Echo mode: once connected, print `connected N` and warm up until stdin has a
    /// line or closes, then measure for `--duration` (for benches/interleave.py).
    #[arg(long)]
    go_on_stdin: bool,
}

/// What a run reports.
pub struct Outcome {
    pub json: String,
    pub human: String,
    pub mismatches: u64,
    pub connected: u64,
}

fn seconds(s: f64) -> Option<Duration> {
    (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        eprintln!("loadgen: refusing {}: loopback addresses only", args.addr);
        return ExitCode::from(64);
    }
    let (Some(duration), Some(warmup)) = (seconds(args.duration), seconds(args.warmup)) else {
        eprintln!("loadgen: --duration and --warmup must be seconds >= 0");
        return ExitCode::from(64);
    };
    let size = args.size as usize;
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        eprintln!("loadgen: --rate must be messages per second > 0");
        return ExitCode::from(64);
    }
    let outcome = match args.connect_storm {
        Some(total) => storm::run(&storm::Config {
            addr: args.addr,
            total,
            concurrency: args.storm_concurrency.max(1),
            size,
            limit: duration,
            server_pid: args.server_pid,
        }),
        None => echo::run(&echo::Config {
            addr: args.addr,
            conns: args.conns,
            size,
            warmup,
            duration,
            server_pid: args.server_pid,
            rate: args.rate,
            go_on_stdin: args.go_on_stdin,
        }),
    };
    println!("{}", if args.json { &outcome.json } else { &outcome.human });
    if outcome.mismatches > 0 {
        ExitCode::from(2)
    } else if outcome.connected == 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}
