//! Multi-worker servers: `SO_REUSEPORT` listeners on every hub, both accepting, and a
//! graceful stop across all workers that loses no in-flight echo.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::server::StreamServer;

fn echo(mut c: TcpStream, _peer: SocketAddr) {
    let mut buf = [0u8; 256];
    while let Ok(n) = c.read(&mut buf) {
        if n == 0 || c.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn round_trip(c: &mut StdStream, msg: &[u8]) {
    c.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

#[test]
fn both_workers_accept_and_a_graceful_stop_loses_no_echo() {
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap().workers(2).unwrap().start().unwrap();
    let addr = server.local_addr();
    assert_eq!(server.workers(), 2);
    // 64 connections, each with one echo; kept open (in flight).
    let mut conns: Vec<StdStream> = (0..64u8)
        .map(|i| {
            let mut c = StdStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            round_trip(&mut c, &[i; 16]);
            c
        })
        .collect();
    let per_worker = server.accepted();
    assert_eq!(per_worker.iter().sum::<usize>(), 64, "{per_worker:?}");
    // The kernel hashes connections over the listeners: with 64, both get some
    // (the chance that one gets none is 2^-63).
    assert!(per_worker.iter().all(|&n| n > 0), "{per_worker:?}");
    assert_eq!(server.connections(), 64);

    // Stop from another thread with a long grace; the open connections keep working
    // until their clients close them, then the stop returns (well before the grace).
    let (done_tx, done_rx) = mpsc::channel();
    let stopper = std::thread::spawn(move || {
        let t = Instant::now();
        server.stop(Duration::from_secs(60));
        done_tx.send(t.elapsed()).unwrap();
    });
    // The listeners close first: new connections are refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while StdStream::connect(addr).is_ok() {
        assert!(Instant::now() < deadline, "the listeners did not close");
        std::thread::sleep(Duration::from_millis(2));
    }
    for (i, c) in conns.iter_mut().enumerate() {
        round_trip(c, format!("in flight {i}").as_bytes());
    }
    assert!(done_rx.try_recv().is_err(), "the stop waits for in-flight connections");
    drop(conns);
    let took = done_rx.recv_timeout(Duration::from_secs(30)).expect("stop returns once the handlers end");
    assert!(took < Duration::from_secs(30), "{took:?}");
    stopper.join().unwrap();
}

#[test]
fn the_grace_period_ends_with_a_kill() {
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap().workers(2).unwrap().start().unwrap();
    let mut c = StdStream::connect(server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    round_trip(&mut c, b"x");
    server.stop(Duration::from_millis(20)); // the client never closes: its handler is killed
    let mut buf = [0u8; 1];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "the killed handler closed the connection");
}

#[test]
fn child_workers_with_big_handler_stacks() {
    if !greenhub_testkit::is_child() {
        return;
    }
    let deep = |mut c: TcpStream, _peer: SocketAddr| {
        let mut b = [0u8; 1];
        if c.read_exact(&mut b).is_ok() {
            let _ = c.write_all(&greenhub_testkit::sum_on_stack(b[0]).to_le_bytes());
        }
    };
    let server =
        StreamServer::bind("127.0.0.1:0", deep).unwrap().stack_size(4 << 20).workers(2).unwrap().start().unwrap();
    let sums: Vec<u64> = (1..=8u8)
        .map(|seed| {
            let mut c = StdStream::connect(server.local_addr()).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c.write_all(&[seed]).unwrap();
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            u64::from_le_bytes(b)
        })
        .collect();
    assert_eq!(sums, (1..=8u64).map(|k| k * 384 * 1024).collect::<Vec<_>>());
    assert_eq!(server.accepted().iter().sum::<usize>(), 8);
    server.stop(Duration::from_secs(1));
    println!("workers served on 4 MiB stacks");
}

#[test]
fn workers_run_each_handler_on_the_stack_size_given() {
    // In a child: were the size lost on the way to the workers, a handler would overflow.
    let out = greenhub_testkit::child("child_workers_with_big_handler_stacks", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("workers served on 4 MiB stacks"), "{}", out.stderr);
}
