//! The load generator as `benches/interleave.py` drives it: stopped and continued in the
//! middle of a paced run, the run goes on (an interrupted `epoll_wait` is no error of the
//! run) and the connections keep their phases instead of all sending at once when it
//! continues; with `--go-on-stdin` the window opens when stdin says so.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A thread-per-connection echo server that notes when each message arrived.
fn echo_server(arrivals: Arc<Mutex<Vec<Instant>>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let arrivals = arrivals.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    arrivals.lock().unwrap().push(Instant::now());
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success();
    assert!(ok, "kill {sig} {pid}");
}

fn field(json: &str, key: &str) -> String {
    let at = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    json[at..].split([',', '}']).next().unwrap().to_string()
}

#[test]
fn a_paced_run_survives_a_stop_and_keeps_its_phases() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let port = echo_server(arrivals.clone());
    // 20 connections at 200 msgs/s: each sends every 100 ms, the 20 spread over it.
    let child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--conns", "20", "--rate", "200"])
        .args(["--warmup", "0.2", "--duration", "1.6", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped for 0.5 s inside the measured window (it starts ≈ 0.2 s in).
    std::thread::sleep(Duration::from_millis(700));
    signal(child.id(), "-STOP");
    std::thread::sleep(Duration::from_millis(500));
    let resumed = Instant::now();
    signal(child.id(), "-CONT");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let json = String::from_utf8(out.stdout).unwrap();
    assert_eq!(field(&json, "errors"), "0", "{json}");
    assert_eq!(field(&json, "mismatches"), "0", "{json}");
    // 200 messages per second for the 1.1 s of the window it ran: 220, less a few for
    // the stop's edges and a slow machine's late starts.
    let msgs: u64 = field(&json, "msgs").parse().unwrap();
    assert!((160..=240).contains(&msgs), "{msgs} messages: {json}");
    // Every connection was due during the stop. Resuming from the stop keeps them spread
    // over the period (≈ 3 in its first 15 ms); taking them as overdue would send all 20
    // at once.
    let arrivals = arrivals.lock().unwrap();
    let burst = arrivals.iter().filter(|&&t| t >= resumed && t < resumed + Duration::from_millis(15)).count();
    let period = arrivals.iter().filter(|&&t| t >= resumed && t < resumed + Duration::from_millis(100)).count();
    assert!(burst <= 10, "{burst} of the first period's {period} messages in its first 15 ms");
    assert!((15..=25).contains(&period), "{period} messages in the first period after the stop");
}

/// CLOCK_MONOTONIC in seconds (the clock the load generator reports its window on).
fn monotonic() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the one we pass, which lives for
    // the whole call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[test]
fn the_window_opens_when_stdin_says_go() {
    let port = echo_server(Arc::new(Mutex::new(Vec::new())));
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--conns", "3", "--duration", "0.5"])
        .args(["--go-on-stdin", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "connected 3\n");
    // Warming up until told: still running well past its duration.
    std::thread::sleep(Duration::from_millis(800));
    assert!(child.try_wait().unwrap().is_none(), "it ended before the go");
    let go = monotonic();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut json = String::new();
    out.read_to_string(&mut json).unwrap();
    assert!(child.wait().unwrap().success(), "{json}");
    assert_eq!(field(&json, "errors"), "0", "{json}");
    assert_eq!(field(&json, "connected"), "3", "{json}");
    assert!(field(&json, "msgs").parse::<u64>().unwrap() > 0, "{json}");
    let start: f64 = field(&json, "window_start_mono_s").parse().unwrap();
    let end: f64 = field(&json, "window_end_mono_s").parse().unwrap();
    assert!(start >= go && start < go + 0.5, "window opened at {start}, go at {go}");
    assert!(end - start >= 0.5 && end - start < 1.0, "window {start}..{end}");
}

#[test]
fn go_on_stdin_refuses_a_stdin_it_cannot_watch() {
    let port = echo_server(Arc::new(Mutex::new(Vec::new())));
    // A regular file: epoll refuses it (EPERM).
    let file = std::fs::File::open(env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &format!("127.0.0.1:{port}"), "--conns", "1", "--go-on-stdin"])
        .stdin(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--go-on-stdin needs a pipe"), "{err}");
}
