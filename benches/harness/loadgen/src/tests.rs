//! The load generator against tiny std servers on 127.0.0.1: a correct echo is counted,
//! a corrupted, short or missing one is reported, never counted as a round trip.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::{echo, storm};

/// A thread-per-connection server whose reply to each read is `mangle(bytes)`.
fn server(mangle: fn(&mut Vec<u8>)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    let mut out = buf[..n].to_vec();
                    mangle(&mut out);
                    if s.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn echo_run(addr: SocketAddr, conns: usize) -> crate::Outcome {
    echo::run(&echo::Config {
        addr,
        conns,
        size: 64,
        warmup: Duration::from_millis(50),
        duration: Duration::from_millis(200),
        server_pid: Some(std::process::id()),
        rate: None,
        go_on_stdin: false,
    })
}

fn field(json: &str, key: &str) -> String {
    let at = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    json[at..].split([',', '}']).next().unwrap().to_string()
}

#[test]
fn correct_echo_is_counted_and_verified() {
    let out = echo_run(server(|_| {}), 3);
    assert_eq!(out.mismatches, 0);
    assert_eq!(out.connected, 3);
    assert_eq!(field(&out.json, "errors"), "0");
    assert_eq!(field(&out.json, "active_at_end"), "3");
    assert!(field(&out.json, "msgs").parse::<u64>().unwrap() > 0, "{}", out.json);
    assert_ne!(field(&out.json, "server_cpu_us_per_msg"), "null");
}

#[test]
fn a_flipped_byte_is_a_mismatch() {
    let out = echo_run(
        server(|b| {
            let last = b.len() - 1;
            b[last] ^= 1
        }),
        2,
    );
    assert_eq!(out.mismatches, 2, "{}", out.json);
    assert_eq!(field(&out.json, "msgs"), "0");
    assert_eq!(field(&out.json, "active_at_end"), "0");
}

#[test]
fn extra_bytes_are_a_mismatch() {
    let out = echo_run(server(|b| b.push(b'x')), 1);
    assert_eq!(out.mismatches, 1, "{}", out.json);
}

#[test]
fn a_silent_server_counts_nothing() {
    let out = echo_run(server(|b| b.clear()), 1);
    assert_eq!(out.mismatches, 0);
    assert_eq!(field(&out.json, "msgs"), "0");
    assert_eq!(field(&out.json, "active_at_end"), "1");
}

#[test]
fn a_server_that_closes_mid_echo_is_an_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 64];
            if let Ok(n @ 1..) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n / 2]); // half the echo, then close
            }
        }
    });
    let out = echo_run(addr, 1);
    assert_eq!(out.mismatches, 0);
    assert_eq!(field(&out.json, "errors"), "1", "{}", out.json);
    assert_eq!(field(&out.json, "msgs"), "0");
    assert!(field(&out.json, "first_error").contains("closed"));
}

#[test]
fn refused_connections_are_connect_failures() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = echo_run(port, 4); // the listener is gone: refused
    assert_eq!(out.connected, 0);
    assert_eq!(field(&out.json, "connect_failures"), "4");
}

#[test]
fn storm_completes_every_connection() {
    let out = storm::run(&storm::Config {
        addr: server(|_| {}),
        total: 300,
        concurrency: 20,
        size: 64,
        limit: Duration::from_secs(30),
        server_pid: Some(std::process::id()),
    });
    assert_eq!(field(&out.json, "completed"), "300", "{}", out.json);
    assert_ne!(field(&out.json, "server_cpu_us_per_conn"), "null", "{}", out.json);
    assert_eq!(field(&out.json, "unfinished"), "0");
    assert_eq!(field(&out.json, "bytes_verified"), "19200");
}

#[test]
fn a_paced_run_offers_at_most_its_rate() {
    let out = echo::run(&echo::Config {
        addr: server(|_| {}),
        conns: 4,
        size: 64,
        warmup: Duration::from_millis(100),
        duration: Duration::from_millis(500),
        server_pid: None,
        rate: Some(200.0),
        go_on_stdin: false,
    });
    assert_eq!((out.mismatches, out.connected), (0, 4));
    assert_eq!(field(&out.json, "errors"), "0");
    assert_eq!(field(&out.json, "rate"), "200");
    // 200 messages per second for 0.5 s: 100, give or take one per connection at the
    // window's edges (and a slow scheduler's late starts, never early ones).
    let msgs: u64 = field(&out.json, "msgs").parse().unwrap();
    assert!((60..=104).contains(&msgs), "{msgs} messages: {}", out.json);
}
