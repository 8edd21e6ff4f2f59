//! Connect-storm mode: `total` short connections, at most `concurrency` at once; each
//! connects, sends one message, verifies the echo and closes. Measures how fast a server
//! accepts, serves and lets go of connections.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::exchange::{connected, Exchange, Progress};
use crate::pattern::Pattern;
use crate::stats::{Json, Latencies};
use crate::{cpu, wait, Outcome};

pub struct Config {
    pub addr: SocketAddr,
    pub total: usize,
    pub concurrency: usize,
    pub size: usize,
    /// The whole storm gives up after this long (`timed_out`, `unfinished`).
    pub limit: Duration,
    /// The server's PID, to report its CPU time per completed connection.
    pub server_pid: Option<u32>,
}

struct Short {
    stream: TcpStream,
    connecting: bool,
    started: Instant,
    pattern: Pattern,
    exchange: Exchange,
}

#[derive(Default)]
struct Tally {
    launched: usize,
    completed: u64,
    connect_failures: u64,
    errors: u64,
    mismatches: u64,
    bytes_verified: u64,
    first_error: String,
    latencies: Latencies,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.first_error.is_empty() {
            self.first_error = what;
        }
    }
}

pub fn run(cfg: &Config) -> Outcome {
    let mut poll = Poll::new().expect("epoll_create");
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Short>> = (0..cfg.concurrency.max(1)).map(|_| None).collect();
    let mut t = Tally::default();
    let mut scratch = vec![0u8; 64 * 1024];
    let server0 = cfg.server_pid.and_then(|pid| cpu::process(pid).ok());
    let start = Instant::now();
    let deadline = start + cfg.limit;
    let mut last = start;

    for slot in 0..slots.len() {
        launch(&mut poll, &mut slots, slot, cfg, &mut t);
    }
    let mut timed_out = false;
    while slots.iter().any(Option::is_some) {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        wait::poll(&mut poll, &mut events, Some(deadline - now));
        for ev in events.iter() {
            let slot = ev.token().0;
            let Some(short) = slots[slot].as_mut() else {
                continue; // an event of a connection already finished
            };
            if short.connecting {
                match connected(&short.stream) {
                    Ok(false) => continue,
                    Ok(true) => {
                        let _ = short.stream.set_nodelay(true);
                        short.connecting = false;
                        short.exchange.start(&mut short.pattern);
                    }
                    Err(e) => {
                        t.connect_failures += 1;
                        t.fail(format!("connect: {e}"));
                        finish(&mut poll, &mut slots, slot, cfg, &mut t, &mut last);
                        continue;
                    }
                }
            }
            let progress = short.exchange.drive(&mut short.stream, &mut scratch, &mut t.bytes_verified);
            match progress {
                Progress::Pending => continue,
                Progress::Done => {
                    t.completed += 1;
                    t.latencies.record(short.started.elapsed());
                }
                Progress::Closed => {
                    t.errors += 1;
                    t.fail("server closed a connection mid-echo".into());
                }
                Progress::Mismatch => {
                    t.mismatches += 1;
                    t.fail("echoed bytes differ from the bytes sent".into());
                }
                Progress::Failed(e) => {
                    t.errors += 1;
                    t.fail(format!("io: {e}"));
                }
            }
            finish(&mut poll, &mut slots, slot, cfg, &mut t, &mut last);
        }
    }
    let server1 = cfg.server_pid.and_then(|pid| cpu::process(pid).ok());
    let server_cpu = server0.zip(server1).map(|(a, b)| b.saturating_sub(a));
    let per_conn = server_cpu.filter(|_| t.completed > 0).map(|d| d.as_secs_f64() * 1e6 / t.completed as f64);
    let in_flight = slots.iter().filter(|s| s.is_some()).count();
    let unfinished = in_flight + (cfg.total - t.launched);
    let elapsed = last.duration_since(start).as_secs_f64();
    let (p50, p99, max) = t.latencies.summary();
    let rate = if elapsed > 0.0 { t.completed as f64 / elapsed } else { 0.0 };
    let json = Json::default()
        .str("mode", "storm")
        .str("addr", &cfg.addr.to_string())
        .num("total", cfg.total)
        .num("concurrency", cfg.concurrency)
        .num("size", cfg.size)
        .num("completed", t.completed)
        .float("elapsed_s", elapsed, 3)
        .float("conns_per_s", rate, 1)
        .float("p50_us", p50, 1)
        .float("p99_us", p99, 1)
        .float("max_us", max, 1)
        .num("connect_failures", t.connect_failures)
        .num("errors", t.errors)
        .num("mismatches", t.mismatches)
        .num("bytes_verified", t.bytes_verified)
        .bool("timed_out", timed_out)
        .num("unfinished", unfinished)
        .opt_float("server_cpu_us_per_conn", per_conn, 2)
        .str("first_error", &t.first_error)
        .finish();
    let human = format!(
        "storm {}/{} completed ({} at once): {rate:.0} conn/s, p50 {p50:.0} µs p99 {p99:.0} µs; \
         connect failures {}, errors {}, mismatches {}, unfinished {unfinished}; server CPU {} µs/conn",
        t.completed,
        cfg.total,
        cfg.concurrency,
        t.connect_failures,
        t.errors,
        t.mismatches,
        per_conn.map(|us| format!("{us:.2}")).unwrap_or_else(|| "-".into()),
    );
    Outcome { json, human, mismatches: t.mismatches, connected: t.completed + t.errors + t.mismatches }
}

/// Opens the next connection of the storm in `slot` (if any are left).
fn launch(poll: &mut Poll, slots: &mut [Option<Short>], slot: usize, cfg: &Config, t: &mut Tally) {
    while t.launched < cfg.total {
        t.launched += 1;
        let started = Instant::now();
        match TcpStream::connect(cfg.addr) {
            Ok(mut stream) => {
                poll.registry()
                    .register(&mut stream, Token(slot), Interest::READABLE | Interest::WRITABLE)
                    .expect("epoll_ctl");
                slots[slot] = Some(Short {
                    stream,
                    connecting: true,
                    started,
                    pattern: Pattern::new(t.launched as u64),
                    exchange: Exchange::new(cfg.size),
                });
                return;
            }
            Err(e) => {
                t.connect_failures += 1;
                t.fail(format!("connect: {e}"));
            }
        }
    }
}

/// Closes the connection in `slot` and starts the next one there.
fn finish(poll: &mut Poll, slots: &mut [Option<Short>], slot: usize, cfg: &Config, t: &mut Tally, last: &mut Instant) {
    if let Some(mut short) = slots[slot].take() {
        let _ = poll.registry().deregister(&mut short.stream);
    }
    *last = Instant::now();
    launch(poll, slots, slot, cfg, t);
}
