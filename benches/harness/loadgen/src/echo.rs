//! Echo mode: `conns` connections, each ping-ponging one `size`-byte message at a time;
//! a warm-up, then a measured window in which round trips are counted and timed and the
//! server's CPU is sampled.
//!
//! Closed loop by default (the next message leaves as soon as the echo is back, so the
//! load generator or the server sets the rate). With a `rate`, each connection starts
//! its next message no sooner than `conns / rate` seconds after its last one: the
//! offered load is at most `rate` messages per second in all, below what either side
//! can do, so the server's CPU per message is its own and not the inverse of a rate
//! both sides are saturated at.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::exchange::{connected, Exchange, Progress};
use crate::pattern::Pattern;
use crate::stats::{Json, Latencies};
use crate::{cpu, wait, Outcome};

/// Connects in flight at once while setting up (so a small accept backlog does not
/// turn into SYN retransmits that distort the setup time).
const CONNECT_BATCH: usize = 100;
/// Setup gives up on connections still not established after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A poll that returns this much later than asked, or a batch of events that takes this
/// long, means the load generator did not run (stopped, or starved by the host).
const STALL: Duration = Duration::from_millis(20);

/// `gap` if it is a stall, else zero.
fn stall(gap: Duration) -> Duration {
    if gap > STALL {
        gap
    } else {
        Duration::ZERO
    }
}

pub struct Config {
    pub addr: SocketAddr,
    pub conns: usize,
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_pid: Option<u32>,
    /// Messages per second in all (paced mode), or `None` (closed loop).
    pub rate: Option<f64>,
    /// Once connected, print `connected N` and warm up until stdin has a line (or closes)
    /// instead of for `warmup` (`benches/interleave.py` starts every window at once).
    pub go_on_stdin: bool,
}

/// The token of stdin in go-on-stdin mode (connections are `0..conns`).
const GO: Token = Token(usize::MAX);

enum State {
    Connecting,
    Connected,
    Dead,
}

struct Conn {
    stream: TcpStream,
    state: State,
    pattern: Pattern,
    exchange: Exchange,
    sent_at: Instant,
}

impl Conn {
    /// Gives up on this connection: closed now (the fd stays until the run ends, so
    /// tokens stay valid), never driven again.
    fn kill(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        self.state = State::Dead;
    }
}

#[derive(Default)]
struct Counts {
    connect_failures: u64,
    errors: u64,
    mismatches: u64,
    bytes_verified: u64,
    first_error: String,
}

impl Counts {
    fn error(&mut self, what: String) {
        if self.first_error.is_empty() {
            self.first_error = what;
        }
    }
}

pub fn run(cfg: &Config) -> Outcome {
    let mut poll = Poll::new().expect("epoll_create");
    let mut events = Events::with_capacity(1024);
    let mut counts = Counts::default();
    let mut conns: Vec<Conn> = Vec::with_capacity(cfg.conns);

    // ---- setup: connect everything, CONNECT_BATCH at a time ----------------------------
    let setup = Instant::now();
    let mut pending = 0usize;
    let mut open_failed = false;
    while (conns.len() < cfg.conns && !open_failed) || pending > 0 {
        while conns.len() < cfg.conns && pending < CONNECT_BATCH && !open_failed {
            let id = conns.len();
            match TcpStream::connect(cfg.addr) {
                Ok(mut stream) => {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    poll.registry().register(&mut stream, Token(id), interest).expect("epoll_ctl");
                    conns.push(Conn {
                        stream,
                        state: State::Connecting,
                        pattern: Pattern::new(id as u64),
                        exchange: Exchange::new(cfg.size),
                        sent_at: setup,
                    });
                    pending += 1;
                }
                Err(e) => {
                    counts.error(format!("connect: {e}"));
                    // The socket could not even be opened (no ports or fds left): stop
                    // opening more; all unopened ones count as failures below.
                    open_failed = true;
                }
            }
        }
        if setup.elapsed() > CONNECT_TIMEOUT {
            break;
        }
        wait::poll(&mut poll, &mut events, Some(Duration::from_millis(100)));
        for ev in events.iter() {
            let conn = &mut conns[ev.token().0];
            if !matches!(conn.state, State::Connecting) {
                continue;
            }
            match connected(&conn.stream) {
                Ok(false) => continue,
                Ok(true) => {
                    let _ = conn.stream.set_nodelay(true);
                    conn.state = State::Connected;
                }
                Err(e) => {
                    counts.connect_failures += 1;
                    counts.error(format!("connect: {e}"));
                    conn.kill();
                }
            }
            pending -= 1;
        }
    }
    for conn in &mut conns {
        if matches!(conn.state, State::Connecting) {
            counts.connect_failures += 1;
            counts.error("connect: timed out".into());
            conn.kill();
        }
    }
    counts.connect_failures += (cfg.conns - conns.len()) as u64;
    let setup_s = setup.elapsed().as_secs_f64();
    let connected_n = conns.iter().filter(|c| matches!(c.state, State::Connected)).count();

    // ---- ping-pong: warm-up, then the measured window ----------------------------------
    let mut scratch = vec![0u8; 64 * 1024];
    let mut latencies = Latencies::default();
    let start = Instant::now();
    // Go on stdin: the warm-up lasts until stdin is readable (`end` then follows it).
    let mut warm_end = start + cfg.warmup;
    if cfg.go_on_stdin {
        warm_end = start + Duration::from_secs(24 * 3600);
        if let Err(e) = poll.registry().register(&mut SourceFd(&0), GO, Interest::READABLE) {
            // A regular file (or nothing) cannot be watched: say so instead of a panic.
            eprintln!("loadgen: --go-on-stdin needs a pipe, socket or terminal on stdin: {e}");
            std::process::exit(64);
        }
        println!("connected {connected_n}");
        let _ = std::io::stdout().flush();
    }
    let mut end = warm_end + cfg.duration;
    let mut window: Option<(Instant, Duration, Option<Duration>)> = None;
    // The window on CLOCK_MONOTONIC, which a controller can compare with its own times.
    let mut window_mono = (0.0, 0.0);
    let mut msgs = 0u64;
    // Paced: each connection's next start, spread over one period at the beginning.
    let period = cfg.rate.filter(|r| *r > 0.0).map(|r| Duration::from_secs_f64(cfg.conns as f64 / r));
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut pace = Pace { period, due: &mut due };
    for (id, conn) in conns.iter_mut().enumerate() {
        if matches!(conn.state, State::Connected) {
            if let Some(p) = period {
                // The first messages spread over one period, not all at once (an idle
                // exchange reads nothing but an unexpected byte until it starts).
                pace.due.push(Reverse((start + p.mul_f64(id as f64 / cfg.conns as f64), id)));
                continue;
            }
            conn.exchange.start(&mut conn.pattern);
            conn.sent_at = start;
            step(conn, &mut scratch, &mut counts, &mut latencies, &mut msgs, false, &mut pace, id);
        }
    }
    msgs = 0;
    let mut now = Instant::now();
    while connected_n > 0 && now < end {
        if window.is_none() && now >= warm_end {
            end = now + cfg.duration;
            window_mono.0 = cpu::monotonic();
            let server = cfg.server_pid.and_then(|pid| cpu::process(pid).ok());
            window = Some((now, cpu::own(), server));
            msgs = 0;
        }
        let mut next = if window.is_none() { warm_end } else { end };
        if let Some(Reverse((at, _))) = pace.due.peek() {
            next = next.min(*at);
        }
        let timeout = next.saturating_duration_since(now);
        wait::poll(&mut poll, &mut events, Some(timeout));
        // Paced: woken much later than asked, or this long over the events, the process
        // was stopped (interleave.py) or starved: the schedule moves on by the stall, so
        // the connections keep their phases instead of all starting at once after it.
        let woke = Instant::now();
        pace.postpone(stall(woke.saturating_duration_since(now + timeout)));
        let measuring = window.is_some();
        for ev in events.iter() {
            if ev.token() == GO {
                warm_end = woke; // the window opens at the top of the loop
                let _ = poll.registry().deregister(&mut SourceFd(&0));
                continue;
            }
            let id = ev.token().0;
            let conn = &mut conns[id];
            if matches!(conn.state, State::Connected) {
                step(conn, &mut scratch, &mut counts, &mut latencies, &mut msgs, measuring, &mut pace, id);
            }
        }
        now = Instant::now();
        pace.postpone(stall(now - woke));
        // Paced: the connections whose next message is due leave now.
        while let Some(&Reverse((at, id))) = pace.due.peek() {
            if at > now {
                break;
            }
            pace.due.pop();
            let conn = &mut conns[id];
            if matches!(conn.state, State::Connected) {
                conn.exchange.start(&mut conn.pattern);
                conn.sent_at = now;
                step(conn, &mut scratch, &mut counts, &mut latencies, &mut msgs, measuring, &mut pace, id);
            }
        }
    }
    let stop = Instant::now();
    window_mono.1 = cpu::monotonic();
    let (w_start, own0, server0) = window.unwrap_or((stop, cpu::own(), None));
    let server1 = cfg.server_pid.and_then(|pid| cpu::process(pid).ok());
    let own1 = cpu::own();
    let secs = stop.duration_since(w_start).as_secs_f64();
    let active = conns.iter().filter(|c| matches!(c.state, State::Connected)).count();

    let pct = |d: Duration| if secs > 0.0 { d.as_secs_f64() / secs * 100.0 } else { 0.0 };
    let server_cpu = server0.zip(server1).map(|(a, b)| b.saturating_sub(a));
    let (p50, p99, max) = latencies.summary();
    let json = Json::default()
        .str("mode", "echo")
        .str("addr", &cfg.addr.to_string())
        .num("conns", cfg.conns)
        .num("size", cfg.size)
        .num("duration_s", cfg.duration.as_secs_f64())
        .opt_float("rate", cfg.rate, 0)
        .num("warmup_s", cfg.warmup.as_secs_f64())
        .float("setup_s", setup_s, 3)
        .num("connected", connected_n)
        .num("active_at_end", active)
        .num("msgs", msgs)
        .float("window_start_mono_s", window_mono.0, 6)
        .float("window_end_mono_s", window_mono.1, 6)
        .float("msgs_per_s", if secs > 0.0 { msgs as f64 / secs } else { 0.0 }, 1)
        .float("p50_us", p50, 1)
        .float("p99_us", p99, 1)
        .float("max_us", max, 1)
        .num("connect_failures", counts.connect_failures)
        .num("errors", counts.errors)
        .num("mismatches", counts.mismatches)
        .num("bytes_verified", counts.bytes_verified)
        .float("loadgen_cpu_pct", pct(own1.saturating_sub(own0)), 1)
        .opt_float("server_cpu_pct", server_cpu.map(pct), 1)
        .opt_float(
            "server_cpu_us_per_msg",
            server_cpu.filter(|_| msgs > 0).map(|d| d.as_secs_f64() * 1e6 / msgs as f64),
            2,
        )
        .str("first_error", &counts.first_error)
        .finish();
    let human = format!(
        "echo c={}: {:.0} msg/s, p50 {p50:.0} µs p99 {p99:.0} µs max {max:.0} µs; \
         connected {connected_n}, connect failures {}, errors {}, mismatches {}; \
         server CPU {} µs/msg",
        cfg.conns,
        if secs > 0.0 { msgs as f64 / secs } else { 0.0 },
        counts.connect_failures,
        counts.errors,
        counts.mismatches,
        server_cpu
            .filter(|_| msgs > 0)
            .map(|d| format!("{:.2}", d.as_secs_f64() * 1e6 / msgs as f64))
            .unwrap_or_else(|| "-".into()),
    );
    Outcome { json, human, mismatches: counts.mismatches, connected: connected_n as u64 }
}

/// When the paced connections start their next messages.
struct Pace<'a> {
    period: Option<Duration>,
    due: &'a mut BinaryHeap<Reverse<(Instant, usize)>>,
}

impl Pace<'_> {
    /// Moves every scheduled start `by` later (paced mode; a closed loop has none).
    fn postpone(&mut self, by: Duration) {
        if by.is_zero() || self.due.is_empty() {
            return;
        }
        let mut due = std::mem::take(self.due).into_vec();
        for Reverse((at, _)) in &mut due {
            *at += by;
        }
        // The same shift for all keeps the heap order.
        *self.due = BinaryHeap::from(due);
    }
}

/// Drives connection `id` as far as its socket allows, starting the next message after
/// each verified echo (paced: queueing it for one period after the last one started).
/// A connection that fails is closed and stays dead.
#[allow(clippy::too_many_arguments)]
fn step(
    conn: &mut Conn,
    scratch: &mut [u8],
    counts: &mut Counts,
    latencies: &mut Latencies,
    msgs: &mut u64,
    measuring: bool,
    pace: &mut Pace<'_>,
    id: usize,
) {
    loop {
        match conn.exchange.drive(&mut conn.stream, scratch, &mut counts.bytes_verified) {
            Progress::Pending => return,
            Progress::Done => {
                let now = Instant::now();
                if measuring {
                    latencies.record(now - conn.sent_at);
                }
                *msgs += 1;
                if let Some(p) = pace.period {
                    pace.due.push(Reverse(((conn.sent_at + p).max(now), id)));
                    return;
                }
                conn.exchange.start(&mut conn.pattern);
                conn.sent_at = now;
            }
            Progress::Closed => {
                counts.errors += 1;
                counts.error("server closed a connection mid-echo".into());
                conn.kill();
                return;
            }
            Progress::Mismatch => {
                counts.mismatches += 1;
                counts.error("echoed bytes differ from the bytes sent".into());
                conn.kill();
                return;
            }
            Progress::Failed(e) => {
                counts.errors += 1;
                counts.error(format!("io: {e}"));
                conn.kill();
                return;
            }
        }
    }
}
