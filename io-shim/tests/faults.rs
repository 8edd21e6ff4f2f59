//! Faults: resets mid-write, silent clients, fd exhaustion during accept, and kills
//! that must leave no registration, timer or waiter behind.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::net::TcpStream;
use greenhub::pool::Pool;
use greenhub::queue::Queue;
use greenhub::server::StreamServer;
use greenhub::sync::Event;
use greenhub::{joinall, sleep, spawn, stats, wait_readable, yield_now, GreenletError};

fn echo(mut conn: TcpStream, _: SocketAddr) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

fn echo_once(addr: SocketAddr, byte: u8) -> u8 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&[byte]).unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    b[0]
}

#[test]
fn a_peer_reset_mid_write_is_an_error_on_that_socket_only() {
    let results = Rc::new(std::cell::RefCell::new(Vec::new()));
    let r = results.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut b = [0u8; 1];
        if conn.read(&mut b).unwrap_or(0) == 0 {
            return;
        }
        if b[0] == b'f' {
            // A flood the client will reset in the middle of.
            let chunk = vec![b'x'; 64 * 1024];
            let err = loop {
                if let Err(e) = conn.write_all(&chunk) {
                    break e;
                }
            };
            r.borrow_mut().push(err.kind());
        } else {
            let _ = conn.write_all(&b);
        }
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = server.local_addr();
    // The resetting client: reads a little, then closes with SO_LINGER 0 (RST).
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.write_all(b"f").unwrap();
    let victim = spawn(move || {
        let c = greenhub::net::TcpStream::from_std(c).unwrap();
        let mut buf = [0u8; 1024];
        (&c).read_exact(&mut buf).unwrap();
        socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO)).unwrap();
        drop(c);
    });
    victim.join();
    sleep(Duration::from_millis(50));
    assert_eq!(results.borrow().len(), 1, "the server's write failed");
    let kind = results.borrow()[0];
    assert!(matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe), "{kind:?}");
    // Still alive (no SIGPIPE), and other connections work.
    assert_eq!(echo_once(addr, b'k'), b'k');
    server.stop(Duration::from_secs(1));
}

#[test]
fn a_silent_client_does_not_disturb_the_others() {
    let server = StreamServer::bind("127.0.0.1:0", echo).unwrap().start().unwrap();
    let addr = server.local_addr();
    let _silent = TcpStream::connect(addr).unwrap(); // connects and never sends
    let clients: Vec<_> = (0..20u8).map(|i| spawn(move || echo_once(addr, i))).collect();
    joinall(&clients);
    assert_eq!(clients.into_iter().map(|c| c.get().unwrap()).collect::<Vec<_>>(), (0..20).collect::<Vec<u8>>());
    server.stop(Duration::from_millis(10));
}

#[test]
fn kills_leave_no_registration_timer_or_waiter_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let before = stats();
        let listener = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        drop(listener);
        let q: Rc<Queue<u8>> = Rc::new(Queue::bounded(1));
        let ev = Rc::new(Event::new());
        let pool = Pool::new(1);
        let busy = pool.spawn(|| sleep(Duration::from_secs(60)));
        let (pair_a, _pair_b) = std::os::unix::net::UnixStream::pair().unwrap();
        pair_a.set_nonblocking(true).unwrap();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&pair_a);
        let (q2, ev2, p2) = (q.clone(), ev.clone(), pool.clone());
        let victims = vec![
            spawn(move || {
                let mut b = [0u8; 1];
                let _ = (&conn).read(&mut b); // parked on I/O
            }),
            spawn(|| sleep(Duration::from_secs(60))), // on a timer
            spawn(move || {
                let _ = q2.get();
            }), // on a queue
            spawn(move || ev2.wait()),                // on an event
            spawn(move || drop(p2.spawn(|| ()).get())), // waiting for a pool slot
            spawn(move || wait_readable(raw, Some(std::time::Instant::now() + Duration::from_secs(60))).unwrap()),
        ];
        yield_now();
        let during = stats();
        greenhub::killall(&victims);
        busy.kill();
        joinall(&victims);
        busy.join();
        greenhub::deregister(raw);
        drop(pair_a);
        let after = stats();
        let all_killed = victims.iter().all(|v| v.error() == Some(GreenletError::Killed));
        tx.send((before, during, after, all_killed, format!("{q:?}"), pool.free_count())).unwrap();
    });
    let (before, during, after, all_killed, queue, free) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(all_killed);
    assert_eq!(during.greenlets, 7);
    assert_eq!(during.io_waits, 2);
    assert!(during.timers >= 3, "{during:?}");
    assert_eq!(after.greenlets, 0);
    assert_eq!(after.timers, 0);
    assert_eq!(after.io_waits, 0);
    assert_eq!(after.registered_fds, before.registered_fds, "the killed reader's socket was deregistered");
    assert!(queue.contains("getters: 0") && queue.contains("putters: 0"), "{queue}");
    assert_eq!(free, 1);
}

/// Child: an fd limit low enough that accept hits EMFILE while a python client holds
/// 60 connections; the server must back off (little CPU) and catch up when fds free up.
#[test]
fn child_emfile_server() {
    if !greenhub_testkit::is_child() {
        return;
    }
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = 40;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
    }
    let served = Rc::new(std::cell::Cell::new(0));
    let s = served.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |mut conn: TcpStream, _| {
        let mut b = [0u8; 1];
        if conn.read_exact(&mut b).is_ok() && conn.write_all(&b).is_ok() {
            s.set(s.get() + 1);
        }
        sleep(Duration::from_millis(300)); // hold the fd a while
    })
    .unwrap()
    .start()
    .unwrap();
    let port = server.local_addr().port();
    let script = format!(
        "import resource, socket, time\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n\
         socks = [socket.create_connection(('127.0.0.1', {port}), timeout=20) for _ in range(60)]\n\
         for s in socks: s.sendall(b'x')\n\
         print(sum(1 for s in socks if s.recv(1) == b'x'))\n"
    );
    let cpu = || {
        // SAFETY: an all-zero rusage is a valid value; getrusage fills the struct we pass.
        let u = unsafe {
            let mut u: libc::rusage = std::mem::zeroed();
            libc::getrusage(libc::RUSAGE_SELF, &mut u);
            u
        };
        Duration::new(u.ru_utime.tv_sec as u64, u.ru_utime.tv_usec as u32 * 1000)
            + Duration::new(u.ru_stime.tv_sec as u64, u.ru_stime.tv_usec as u32 * 1000)
    };
    let (cpu0, t0) = (cpu(), Instant::now());
    let out = greenhub::threadpool::spawn_blocking(move || Command::new("python3").arg("-c").arg(script).output())
        .expect("python3 runs");
    let (cpu_used, wall) = (cpu() - cpu0, t0.elapsed());
    println!(
        "python: {} err: {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    println!(
        "served {} cpu {:.0}% of {:.2}s",
        served.get(),
        100.0 * cpu_used.as_secs_f64() / wall.as_secs_f64(),
        wall.as_secs_f64()
    );
    server.stop(Duration::from_secs(1));
}

#[test]
fn running_out_of_fds_during_accept_backs_off_and_recovers() {
    let out = greenhub_testkit::child("child_emfile_server", Duration::from_secs(120));
    let stdout = &out.stdout;
    out.assert_ok();
    assert!(stdout.contains("python: 60 err: \n") || stdout.contains("python: 60 err: "), "{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("served ")).expect("summary line");
    assert!(line.starts_with("served 60 "), "{line}");
    let pct: f64 = line.split("cpu ").nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
    assert!(pct < 50.0, "the accept loop spun: {line}");
}
