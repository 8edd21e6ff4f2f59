//! The io-shim: cooperative sockets, DNS, StreamServer. All sockets on 127.0.0.1.

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::net::{gethostbyname, lookup_host, TcpListener, TcpStream, UdpSocket};
use greenhub::os::unix::net::{UnixListener, UnixStream};
use greenhub::server::{ServerHandle, StreamServer};
use greenhub::{joinall, sleep, spawn, yield_now, GreenletError};

fn echo_handler(mut conn: TcpStream, _peer: SocketAddr) {
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn echo_server() -> ServerHandle {
    StreamServer::bind("127.0.0.1:0", echo_handler).unwrap().start().unwrap()
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Deterministic bytes for client `c`, round `r`.
fn payload(c: usize, r: usize) -> Vec<u8> {
    let len = 1 + (c * 7919 + r * 104_729) % 20_000;
    (0..len).map(|i| ((i * 31 + c * 17 + r * 13) % 251) as u8).collect()
}

#[test]
fn a_pending_read_does_not_block_other_greenlets() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ticks = Rc::new(Cell::new(0));
    let reader = spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).unwrap();
        buf
    });
    let t = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..10 {
            sleep(Duration::from_millis(2));
            t.set(t.get() + 1);
        }
    });
    let mut client = TcpStream::connect(addr).unwrap();
    ticker.join(); // ran to the end while the reader waited for data
    assert_eq!(ticks.get(), 10);
    assert!(!reader.ready());
    client.write_all(b"late").unwrap();
    assert_eq!(reader.get(), Ok(*b"late"));
}

#[test]
fn three_hundred_clients_twenty_rounds_byte_exact() {
    let server = echo_server();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..300)
        .map(|c| {
            spawn(move || -> usize {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut verified = 0;
                for r in 0..20 {
                    let out = payload(c, r);
                    let writer = s.try_clone().unwrap();
                    let data = out.clone();
                    // Write from a second greenlet so large payloads cannot deadlock
                    // against the echo filling our receive buffer.
                    let w = spawn(move || (&writer).write_all(&data).unwrap());
                    let mut back = vec![0u8; out.len()];
                    s.read_exact(&mut back).unwrap();
                    w.join();
                    assert!(back == out, "client {c} round {r}: echo differs");
                    verified += back.len();
                }
                verified
            })
        })
        .collect();
    joinall(&clients);
    let total: usize = clients.into_iter().map(|g| g.get().unwrap()).sum();
    let want: usize = (0..300).flat_map(|c| (0..20).map(move |r| payload(c, r).len())).sum();
    assert_eq!(total, want);
    server.stop(Duration::from_secs(1));
}

#[test]
fn connection_refused_has_its_kind() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there now
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let g = spawn(move || TcpStream::connect(("127.0.0.1", port)).map(|_| ()).unwrap_err().kind());
    assert_eq!(g.get(), Ok(ErrorKind::ConnectionRefused));
}

#[test]
fn unknown_host_is_not_found() {
    let err = TcpStream::connect("no-such-host.invalid:80").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(lookup_host("no-such-host.invalid").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(gethostbyname("localhost").unwrap(), std::net::IpAddr::from([127, 0, 0, 1]));
}

#[test]
fn read_timeout_and_write_timeout_give_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let t = Instant::now();
    assert_eq!(c.read(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
    // Nobody reads the other side: writes fill the buffers, then time out.
    c.set_write_timeout(Some(Duration::from_millis(20))).unwrap();
    let chunk = vec![7u8; 1 << 16];
    let err = loop {
        if let Err(e) = c.write(&chunk) {
            break e;
        }
    };
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    drop(server_side);
    assert_eq!(greenhub::stats().timers, 0);
}

#[test]
fn connect_timeout_times_out_against_a_full_backlog() {
    // A listener with backlog 0 that never accepts: once its queue is full, further
    // SYNs are dropped and connecting hangs until our deadline.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    let mut timed_out = false;
    for _ in 0..16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
                timed_out = true;
                break;
            }
        }
    }
    assert!(timed_out, "the backlog never filled up");
}

#[test]
fn udp_ping_pong() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let pong = spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..10 {
            let (n, from) = server.recv_from(&mut buf).unwrap();
            let mut reply = b"pong ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            server.send_to(&reply, from).unwrap();
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for i in 0..10 {
        client.send(format!("ping {i}").as_bytes()).unwrap();
        let mut buf = [0u8; 64];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], format!("pong ping {i}").as_bytes());
    }
    pong.join();
    assert!(pong.successful());
}

#[test]
fn unix_sockets_listener_and_pair() {
    let dir = std::env::temp_dir().join(format!("greenhub-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let server = spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..5 {
            let (mut s, _) = listener.accept().unwrap();
            handlers.push(spawn(move || {
                let mut buf = [0u8; 16];
                let n = s.read(&mut buf).unwrap();
                s.write_all(&buf[..n]).unwrap();
            }));
        }
        joinall(&handlers);
    });
    let clients: Vec<_> = (0..5u8)
        .map(|i| {
            let p = path.clone();
            spawn(move || {
                let mut s = UnixStream::connect(&p).unwrap();
                s.write_all(&[i; 3]).unwrap();
                let mut back = [0u8; 3];
                s.read_exact(&mut back).unwrap();
                back
            })
        })
        .collect();
    joinall(&clients);
    server.join();
    assert_eq!(
        clients.into_iter().map(|g| g.get().unwrap()).collect::<Vec<_>>(),
        (0..5u8).map(|i| [i; 3]).collect::<Vec<_>>()
    );
    let (a, mut b) = UnixStream::pair().unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(b.read(&mut [0u8; 4]).unwrap(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stream_server_stop_closes_the_listener_and_kills_laggards() {
    let finished = Rc::new(Cell::new(0));
    let f = finished.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut b = [0u8; 1];
        if conn.read(&mut b).unwrap_or(0) == 1 && b[0] == b'q' {
            f.set(f.get() + 1); // a quick client
            return;
        }
        sleep(Duration::from_secs(3600)); // a laggard
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = server.local_addr();
    let mut quick = TcpStream::connect(addr).unwrap();
    quick.write_all(b"q").unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"s").unwrap();
    sleep(Duration::from_millis(20));
    assert_eq!(server.connections(), 1);
    let t = Instant::now();
    server.stop(Duration::from_millis(50));
    assert!(t.elapsed() >= Duration::from_millis(50), "stop waited for the grace period");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(server.connections(), 0, "the laggard was killed");
    assert_eq!(finished.get(), 1);
    // The laggard's socket closed when it was killed: its client reads EOF.
    slow.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(slow.read(&mut [0u8; 1]).unwrap(), 0);
    // The listener is closed.
    assert_eq!(TcpStream::connect(addr).unwrap_err().kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn stream_server_connection_limit() {
    let active = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (a, p) = (active.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        a.set(a.get() + 1);
        p.set(p.get().max(a.get()));
        sleep(Duration::from_millis(10));
        let _ = conn.write_all(b"k");
        a.set(a.get() - 1);
    })
    .unwrap()
    .max_connections(3)
    .start()
    .unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> = (0..12)
        .map(|_| {
            spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                b[0]
            })
        })
        .collect();
    joinall(&clients);
    assert!(clients.iter().all(|c| c.value() == Some(b'k')));
    assert_eq!(peak.get(), 3);
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_thousand_connect_close_cycles_leak_no_fd() {
    // In a thread of its own: other tests open fds concurrently, so count only after
    // a warm-up and compare with a margin of zero on our own hub's registrations.
    let server = echo_server();
    let addr = server.local_addr();
    let warm = TcpStream::connect(addr).unwrap();
    drop(warm);
    sleep(Duration::from_millis(10));
    let regs_before = greenhub::stats().registered_fds;
    let fds_before = fd_count();
    for i in 0..1000u32 {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&i.to_le_bytes()).unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), i);
    }
    sleep(Duration::from_millis(20)); // the server's handlers see EOF and drop their sockets
    assert_eq!(greenhub::stats().registered_fds, regs_before);
    let fds_after = fd_count();
    assert!(fds_after <= fds_before + 4, "fds {fds_before} -> {fds_after}"); // other tests' noise
    server.stop(Duration::from_secs(1));
}

#[test]
fn killing_a_greenlet_blocked_in_read_closes_its_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let blocked = spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 8];
        let _ = s.read(&mut buf); // waits forever
        unreachable!("killed while reading");
    });
    let mut client = TcpStream::connect(addr).unwrap();
    sleep(Duration::from_millis(10));
    let regs = greenhub::stats().registered_fds;
    blocked.kill();
    blocked.join();
    assert_eq!(blocked.error(), Some(GreenletError::Killed));
    assert!(greenhub::stats().registered_fds < regs, "the killed greenlet's socket was deregistered");
    client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0, "peer sees the socket closed");
}

#[test]
fn a_client_nobody_here_wrote_python_socket() {
    let server = echo_server();
    let port = server.local_addr().port();
    let script = format!(
        "import socket\n\
         s = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n\
         data = bytes(range(256)) * 40\n\
         s.sendall(data)\n\
         got = b''\n\
         while len(got) < len(data):\n\
         \x20   chunk = s.recv(65536)\n\
         \x20   if not chunk: break\n\
         \x20   got += chunk\n\
         print('ok' if got == data else 'mismatch', len(got))\n"
    );
    // python3 blocks the thread in `output()`, so run it on the threadpool while this
    // thread's hub keeps serving.
    let out = greenhub::threadpool::spawn_blocking(move || Command::new("python3").arg("-c").arg(script).output());
    let out = out.expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "ok 10240", "stderr: {}", String::from_utf8_lossy(&out.stderr));
    server.stop(Duration::from_secs(1));
}

#[test]
fn two_hundred_concurrent_lookups_run_in_parallel() {
    // Lookups run on the threadpool: 200 at once must not queue behind a fixed number
    // of threads. Each "slow lookup" here is a 100 ms blocking job, like a slow DNS
    // answer; serialised on 10 threads they would take 2 s.
    let t = Instant::now();
    let jobs: Vec<_> = (0..200)
        .map(|i| {
            spawn(move || {
                greenhub::threadpool::spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    i
                })
            })
        })
        .collect();
    joinall(&jobs);
    assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    // And real lookups from 200 greenlets at once all answer.
    let names: Vec<_> = (0..200).map(|_| spawn(|| lookup_host("localhost").map(|v| v.len()))).collect();
    joinall(&names);
    assert!(names.into_iter().all(|g| matches!(g.get(), Ok(Ok(n)) if n >= 1)));
}

#[test]
fn works_from_a_plain_thread_that_never_spawned() {
    let out = std::thread::spawn(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).unwrap(); // greenlet zero parks on connect
        let (mut s, _) = listener.accept().unwrap();
        c.write_all(b"z").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        greenhub::thread::sleep(Duration::from_millis(1));
        b[0]
    })
    .join()
    .unwrap();
    assert_eq!(out, b'z');
}

#[test]
fn two_greenlets_reading_one_stream_lose_no_wakeup() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (s, got) = (server_side.try_clone().unwrap(), got.clone());
            spawn(move || {
                let mut b = [0u8; 1];
                (&s).read_exact(&mut b).unwrap();
                got.borrow_mut().push(b[0]);
            })
        })
        .collect();
    yield_now();
    client.write_all(b"a").unwrap();
    sleep(Duration::from_millis(5));
    client.write_all(b"b").unwrap();
    joinall(&readers);
    let mut v = got.borrow().clone();
    v.sort();
    assert_eq!(v, b"ab");
}

/// The fds registered in any epoll instance of this process (`tfd:` lines of the epoll
/// fds' `/proc/self/fdinfo`).
fn epoll_targets() -> Vec<i32> {
    let mut targets = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_epoll = std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy() == "anon_inode:[eventpoll]");
        if !is_epoll {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", entry.file_name().to_string_lossy()));
        for line in info.unwrap_or_default().lines() {
            if let Some(rest) = line.strip_prefix("tfd:") {
                targets.push(rest.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
    }
    targets
}

#[test]
fn child_closed_sockets_leave_epoll_and_into_std_deregisters() {
    use std::os::fd::AsRawFd;
    if !greenhub_testkit::is_child() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        for _ in 0..2 {
            let (mut c, _) = listener.accept().unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).unwrap();
            c.write_all(&b).unwrap();
        }
    });
    let round_trip = |s: &mut TcpStream| {
        s.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"x");
    };
    // Dropped: the registration skips EPOLL_CTL_DEL, closing the fd removes it.
    let mut a = TcpStream::connect(addr).unwrap();
    round_trip(&mut a);
    let fd = a.as_raw_fd();
    assert!(epoll_targets().contains(&fd), "registered while open");
    drop(a);
    assert!(!epoll_targets().contains(&fd), "gone with its close");
    // into_std: the fd lives on, so it is deregistered properly.
    let mut b = TcpStream::connect(addr).unwrap();
    round_trip(&mut b);
    let fd = b.as_raw_fd();
    let std_stream = b.into_std().unwrap();
    assert_eq!(std_stream.as_raw_fd(), fd);
    assert!(!epoll_targets().contains(&fd), "into_std deregisters");
    // And it can be taken back: registering it again works.
    let mut again = TcpStream::from_std(std_stream).unwrap();
    assert!(epoll_targets().contains(&fd));
    drop(server.get());
    let mut one = [0u8; 1];
    assert_eq!(again.read(&mut one).unwrap(), 0, "the server closed its side");
    println!("ok");
}

#[test]
fn closed_sockets_leave_epoll_and_into_std_deregisters() {
    // In a child: other tests' threads open and close fds (and epolls) meanwhile.
    let out =
        greenhub_testkit::child("child_closed_sockets_leave_epoll_and_into_std_deregisters", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("ok\n"), "{}", out.stdout);
}

/// A handler that reads one byte and answers with `sum_on_stack` of it.
fn deep_handler(mut conn: TcpStream, _peer: SocketAddr) {
    let mut b = [0u8; 1];
    if conn.read_exact(&mut b).is_ok() {
        let _ = conn.write_all(&greenhub_testkit::sum_on_stack(b[0]).to_le_bytes());
    }
}

fn ask_deep(addr: SocketAddr, seed: u8) -> u64 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[seed]).unwrap();
    let mut b = [0u8; 8];
    s.read_exact(&mut b).unwrap();
    u64::from_le_bytes(b)
}

#[test]
fn child_stream_server_with_big_handler_stacks() {
    if !greenhub_testkit::is_child() {
        return;
    }
    // Limited and unlimited handler sets both take the size.
    for max in [Some(2), None] {
        let server = StreamServer::bind("127.0.0.1:0", deep_handler).unwrap().stack_size(4 << 20);
        let server = match max {
            Some(n) => server.max_connections(n),
            None => server,
        };
        let server = server.start().unwrap();
        let addr = server.local_addr();
        let clients: Vec<_> = (1..=3u8).map(|seed| spawn(move || ask_deep(addr, seed))).collect();
        joinall(&clients);
        let sums: Vec<_> = clients.iter().map(|c| c.value()).collect();
        assert_eq!(sums, [1u64, 2, 3].map(|k| Some(k * 384 * 1024)));
        server.stop(Duration::from_secs(1));
    }
    println!("served on 4 MiB stacks");
}

#[test]
fn stream_server_runs_each_handler_on_the_stack_size_given() {
    // In a child: were the size ignored, the handler would overflow its stack and abort.
    let out = greenhub_testkit::child("child_stream_server_with_big_handler_stacks", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("served on 4 MiB stacks"), "{}", out.stderr);
}

#[test]
fn child_stream_server_with_small_handler_stacks() {
    if !greenhub_testkit::is_child() {
        return;
    }
    let server = StreamServer::bind("127.0.0.1:0", deep_handler).unwrap().stack_size(16 * 1024).start().unwrap();
    let _ = ask_deep(server.local_addr(), 1);
    eprintln!("unreachable: the handler's overflow must abort");
}

#[test]
fn a_handler_that_outgrows_a_small_stack_is_reported_and_aborts() {
    let out = greenhub_testkit::child("child_stream_server_with_small_handler_stacks", Duration::from_secs(60));
    assert_eq!(out.signal, Some(libc::SIGABRT), "{}", out.stderr);
    assert!(out.stderr.contains("overflowed its 16 KiB stack"), "{}", out.stderr);
    assert!(!out.stderr.contains("unreachable"), "{}", out.stderr);
}

#[test]
fn child_datagram_server_with_big_handler_stacks() {
    if !greenhub_testkit::is_child() {
        return;
    }
    let server = greenhub::server::DatagramServer::bind("127.0.0.1:0", |d: &[u8], peer, sock: &UdpSocket| {
        let _ = sock.send_to(&greenhub_testkit::sum_on_stack(d[0]).to_le_bytes(), peer);
    })
    .unwrap()
    .stack_size(4 << 20)
    .start()
    .unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.send_to(&[5], server.local_addr()).unwrap();
    let mut b = [0u8; 8];
    let (n, _) = c.recv_from(&mut b).unwrap();
    assert_eq!((n, u64::from_le_bytes(b)), (8, 5 * 384 * 1024));
    server.stop(Duration::from_secs(1));
    println!("datagram served on a 4 MiB stack");
}

#[test]
fn datagram_server_runs_each_handler_on_the_stack_size_given() {
    let out = greenhub_testkit::child("child_datagram_server_with_big_handler_stacks", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("datagram served on a 4 MiB stack"), "{}", out.stderr);
}

#[test]
fn a_handler_stack_size_above_the_maximum_is_refused_before_serving() {
    let too_big = greenhub::diag::MAX_STACK_SIZE + 1;
    let want =
        format!("handler stack size {too_big} is larger than the maximum of {} bytes", greenhub::diag::MAX_STACK_SIZE);
    let check = |e: std::io::Error| {
        assert_eq!((e.kind(), e.to_string()), (ErrorKind::InvalidInput, want.clone()));
    };
    check(StreamServer::bind("127.0.0.1:0", echo_handler).unwrap().stack_size(too_big).start().unwrap_err());
    check(StreamServer::bind("127.0.0.1:0", echo_handler).unwrap().stack_size(too_big).serve_forever().unwrap_err());
    check(StreamServer::bind("127.0.0.1:0", echo_handler).unwrap().stack_size(too_big).workers(2).unwrap_err());
    let udp = |_: &[u8], _: SocketAddr, _: &UdpSocket| {};
    let d = greenhub::server::DatagramServer::bind("127.0.0.1:0", udp).unwrap().stack_size(too_big);
    check(d.start().unwrap_err());
    let d = greenhub::server::DatagramServer::bind("127.0.0.1:0", udp).unwrap().stack_size(too_big);
    check(d.serve_forever().unwrap_err());
}

/// This process's address space in bytes (`VmSize`).
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// Reads with a short timeout: `Some(bytes)` if the server answered or closed (empty),
/// `None` if its handler is still waiting for us.
fn answer(c: &mut TcpStream) -> Option<Vec<u8>> {
    c.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 16];
    loop {
        match c.read(&mut b) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == ErrorKind::TimedOut && got.is_empty() => return None,
            Err(e) => panic!("read: {e} after {got:?}"),
        }
    }
}

#[test]
fn child_stream_server_out_of_stack_memory() {
    if !greenhub_testkit::is_child() {
        return;
    }
    // 1 GiB handler stacks (each its own slab) under an address-space limit 2.5 GiB above
    // what the process uses now: two handlers get a stack, later ones cannot.
    let limit = vm_size() + (5 << 29);
    let rlim = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads the struct; lowering the soft limit affects only this child.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlim) }, 0);
    let handler = |mut c: TcpStream, _| {
        let mut b = [0u8; 1];
        if c.read(&mut b).is_ok() {
            let _ = c.write_all(b"bye");
        }
    };
    let server = StreamServer::bind("127.0.0.1:0", handler).unwrap().stack_size(1 << 30).start().unwrap();
    let addr = server.local_addr();
    // Connected one after another from this thread's own stack (no client greenlet
    // needs a stack), each given time to be accepted.
    let mut clients: Vec<TcpStream> = (0..6)
        .map(|_| {
            let c = TcpStream::connect(addr).unwrap();
            sleep(Duration::from_millis(100));
            c
        })
        .collect();
    let states: Vec<_> = clients.iter_mut().map(answer).collect();
    // The first two wait in their handlers; the other four were closed unanswered.
    assert_eq!(states, [None, None, Some(vec![]), Some(vec![]), Some(vec![]), Some(vec![])]);
    for c in &mut clients[..2] {
        c.write_all(b"x").unwrap();
        assert_eq!(answer(c), Some(b"bye".to_vec()));
    }
    // Their stacks went back to the pool: a new connection is served again.
    sleep(Duration::from_millis(50));
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"x").unwrap();
    assert_eq!(answer(&mut c), Some(b"bye".to_vec()));
    server.stop(Duration::from_secs(1));
    println!("served 3, closed 4");
}

#[test]
fn a_server_out_of_stack_memory_closes_that_connection_and_goes_on() {
    let out = greenhub_testkit::child("child_stream_server_out_of_stack_memory", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("served 3, closed 4"), "{}", out.stderr);
    let reports = out.stderr.matches("greenhub: StreamServer: no stack for the handler of 127.0.0.1:").count();
    assert_eq!(
        out.stderr.matches("(Cannot allocate memory (os error 12)); connection closed").count(),
        4,
        "{}",
        out.stderr
    );
    assert_eq!(reports, 4, "{}", out.stderr);
}

#[test]
fn child_stream_server_stopped_while_out_of_stack_memory() {
    if !greenhub_testkit::is_child() {
        return;
    }
    // As above: two 1 GiB handler stacks fit, the third connection finds none and the
    // acceptor pauses; stopping the server then kills it in that pause.
    let limit = vm_size() + (5 << 29);
    let rlim = libc::rlimit { rlim_cur: limit, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads the struct; lowering the soft limit affects only this child.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlim) }, 0);
    let handler = |mut c: TcpStream, _| {
        let mut b = [0u8; 1];
        let _ = c.read(&mut b);
    };
    let server = StreamServer::bind("127.0.0.1:0", handler).unwrap().stack_size(1 << 30).start().unwrap();
    let addr = server.local_addr();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    sleep(Duration::from_millis(1)); // the third is refused its stack; the pause begins
    let t = Instant::now();
    server.stop(Duration::ZERO);
    assert!(t.elapsed() < Duration::from_millis(900), "stop waited out the pause: {:?}", t.elapsed());
    let states: Vec<_> = clients.iter_mut().map(answer).collect();
    assert_eq!(states, [Some(vec![]), Some(vec![]), Some(vec![])]);
    println!("stopped in the pause");
}

#[test]
fn stopping_a_server_in_its_out_of_memory_pause_kills_the_acceptor_there() {
    let out = greenhub_testkit::child("child_stream_server_stopped_while_out_of_stack_memory", Duration::from_secs(60));
    out.assert_ok();
    assert!(out.stdout.contains("stopped in the pause"), "{}", out.stderr);
    assert_eq!(out.stderr.matches("no stack for the handler of").count(), 1, "{}", out.stderr);
}
