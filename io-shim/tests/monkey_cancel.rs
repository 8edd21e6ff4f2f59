//! kill and with_timeout through monkey-patched calls: the hooks never unwind (that
//! aborted the process); the cancelled call fails (`ECANCELED`/`ETIMEDOUT`, a sleep
//! returns early), later hook calls fail fast, and the kill or expiry decides the
//! outcome. Each case runs in a child process, since the bug aborted it.

use std::io::{ErrorKind, Read, Write};
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use greenhub::{sleep, spawn, with_timeout, yield_now, GreenletError, TimedOut};

use common::{child, is_child};
use greenhub_testkit as common;

const T: Duration = Duration::from_secs(30);

fn patched() {
    greenhub::monkey::patch_all();
}

/// A std listener whose backlog is full: connecting to it hangs (the SYN is dropped).
fn full_listener() -> (std::net::TcpListener, std::net::SocketAddr, std::net::TcpStream) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    s.listen(0).unwrap();
    let l: std::net::TcpListener = s.into();
    let addr = l.local_addr().unwrap();
    let first = std::net::TcpStream::connect(addr).unwrap(); // fills the backlog
    (l, addr, first)
}

/// Runs `body` in a greenlet, kills it while it waits inside a hook, and checks that it
/// ends killed, promptly, although its code goes on calling hooks after the error.
fn kill_inside(what: &str, body: impl FnOnce() -> String + 'static) {
    let g = spawn(move || {
        let r = body();
        // A later hooked call fails fast while the kill is pending:
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(10));
        format!("{r}; then slept {:?}", t.elapsed().as_secs())
    });
    sleep(Duration::from_millis(30)); // it starts and parks inside the hook
    assert!(!g.ready(), "{what}: still waiting");
    let t = Instant::now();
    g.kill();
    assert_eq!(g.get(), Err(GreenletError::Killed), "{what}");
    assert!(t.elapsed() < Duration::from_secs(5), "{what}: the kill took {:?}", t.elapsed());
    println!("{what}: killed");
}

/// Runs `body` under a 30 ms `with_timeout` in a greenlet; it must give `Err(TimedOut)`
/// and the greenlet must go on working normally afterwards.
fn time_out_inside(what: &str, body: impl FnOnce() -> String + 'static) {
    let g = spawn(move || {
        let r = with_timeout(Duration::from_millis(30), body);
        sleep(Duration::from_millis(1)); // no stray cancellation left behind
        std::thread::sleep(Duration::from_millis(1));
        r
    });
    let t = Instant::now();
    assert_eq!(g.get(), Ok(Err(TimedOut)), "{what}");
    assert!(t.elapsed() < Duration::from_secs(5), "{what}: took {:?}", t.elapsed());
    println!("{what}: timed out");
}

#[test]
fn child_sleep_accept_read_connect() {
    if !is_child() {
        return;
    }
    patched();
    // std::thread::sleep
    kill_inside("sleep", || {
        std::thread::sleep(Duration::from_secs(60));
        "sleep returned early".into()
    });
    time_out_inside("sleep", || {
        std::thread::sleep(Duration::from_secs(60));
        "sleep returned early".into()
    });
    // TcpListener::accept
    let l = std::rc::Rc::new(spawn(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).get().unwrap());
    let l2 = l.clone();
    kill_inside("accept", move || format!("{:?}", l2.accept().map(|_| ()).map_err(|e| e.raw_os_error())));
    let l3 = l.clone();
    time_out_inside("accept", move || format!("{:?}", l3.accept().map(|_| ())));
    // TcpStream::read
    let addr = l.local_addr().unwrap();
    let conn = spawn(move || std::net::TcpStream::connect(addr).unwrap()).get().unwrap();
    let (peer, _) = spawn(move || l.accept().unwrap()).get().unwrap();
    let c = std::rc::Rc::new(conn);
    let c2 = c.clone();
    kill_inside("read", move || {
        let mut b = [0u8; 1];
        let e = (&*c2).read(&mut b).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECANCELED), "{e}");
        e.to_string()
    });
    let c3 = c.clone();
    time_out_inside("read", move || {
        let mut b = [0u8; 1];
        let e = (&*c3).read(&mut b).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        e.to_string()
    });
    // The socket still works after both.
    (&peer).write_all(b"!").unwrap();
    let mut b = [0u8; 1];
    let c4 = c.clone();
    assert_eq!(spawn(move || (&*c4).read(&mut b).map(|n| (n, b[0]))).get().unwrap().unwrap(), (1, b'!'));
    // TcpStream::connect to a full backlog
    let (_l, addr, _first) = full_listener();
    kill_inside("connect", move || format!("{:?}", std::net::TcpStream::connect(addr).map(|_| ())));
    time_out_inside("connect", move || format!("{:?}", std::net::TcpStream::connect(addr).map(|_| ())));
}

#[test]
fn kill_and_timeout_through_patched_sleep_accept_read_and_connect() {
    let c = child("child_sleep_accept_read_connect", T);
    c.assert_ok();
    for what in ["sleep", "accept", "read", "connect"] {
        assert!(c.stdout.contains(&format!("{what}: killed")), "{}", c.stdout);
        assert!(c.stdout.contains(&format!("{what}: timed out")), "{}", c.stdout);
    }
}

#[test]
fn child_dns_and_ureq() {
    if !is_child() {
        return;
    }
    patched();
    kill_inside("dns", || format!("{:?}", ("localhost", 80).to_socket_addrs().map(|a| a.count())));
    time_out_inside("dns", || {
        // Busy past the deadline first: the expiry comes while the lookup waits.
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(40) {
            std::hint::spin_loop();
        }
        format!("{:?}", ("localhost", 80).to_socket_addrs().map(|a| a.count()))
    });
    // Name resolution still works afterwards.
    let n = spawn(|| ("localhost", 80).to_socket_addrs().map(|a| a.count()).unwrap_or(0)).get().unwrap();
    assert!(n >= 1);
    // A third-party blocking HTTP client against a slow local site.
    let site = greenhub_crawler::Site::start(Duration::from_secs(20)).unwrap();
    let url = site.url("/page/1");
    let u = url.clone();
    kill_inside("ureq", move || format!("{:?}", ureq::get(&u).call().map(|_| ()).map_err(|e| e.to_string())));
    let u = url.clone();
    time_out_inside("ureq", move || format!("{:?}", ureq::get(&u).call().map(|_| ()).map_err(|e| e.to_string())));
    site.stop();
}

#[test]
fn kill_and_timeout_through_patched_name_resolution_and_ureq() {
    let c = child("child_dns_and_ureq", T);
    c.assert_ok();
    for what in ["dns", "ureq"] {
        assert!(c.stdout.contains(&format!("{what}: killed")), "{}", c.stdout);
        assert!(c.stdout.contains(&format!("{what}: timed out")), "{}", c.stdout);
    }
}

#[test]
fn child_server_stop_and_pool_kill() {
    if !is_child() {
        return;
    }
    patched();
    // A server whose handlers wait in patched calls; stop(grace) kills them there.
    let server = greenhub::server::StreamServer::bind("127.0.0.1:0", |conn: greenhub::net::TcpStream, _| {
        std::thread::sleep(Duration::from_secs(60));
        drop(conn);
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = server.local_addr();
    let clients: Vec<_> =
        (0..3).map(|_| spawn(move || std::net::TcpStream::connect(addr).unwrap())).map(|g| g.get().unwrap()).collect();
    sleep(Duration::from_millis(30));
    assert_eq!(server.connections(), 3);
    let t = Instant::now();
    server.stop(Duration::from_millis(20));
    assert!(t.elapsed() < Duration::from_secs(5));
    for mut c in clients {
        let mut b = [0u8; 1];
        let n = spawn(move || c.read(&mut b)).get().unwrap();
        assert!(matches!(n, Ok(0)) || n.is_err(), "the handler's connection was closed: {n:?}");
    }
    println!("server stopped");
    // Pool::kill of members inside patched sleeps.
    let pool = greenhub::pool::Pool::new(3);
    let members: Vec<_> = (0..3).map(|_| pool.spawn(|| std::thread::sleep(Duration::from_secs(60)))).collect();
    yield_now();
    pool.kill();
    pool.join();
    assert!(members.iter().all(|g| g.error() == Some(GreenletError::Killed)));
    println!("pool killed");
}

#[test]
fn server_stop_and_pool_kill_on_patched_code() {
    let c = child("child_server_stop_and_pool_kill", T);
    c.assert_ok();
    assert!(c.stdout.contains("server stopped") && c.stdout.contains("pool killed"), "{}", c.stdout);
}

#[test]
fn child_poll_for_either_direction() {
    if !is_child() {
        return;
    }
    patched();
    let g = spawn(|| {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // Writable, not readable: a poll for either returns at once with POLLOUT.
        let mut p =
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&a), events: libc::POLLIN | libc::POLLOUT, revents: 0 };
        let t = Instant::now();
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 5000) };
        (r, p.revents & libc::POLLOUT != 0, t.elapsed())
    });
    let (r, out, took) = g.get().unwrap();
    assert_eq!((r, out), (1, true));
    assert!(took < Duration::from_secs(2), "{took:?}");
    println!("ok");
}

#[test]
fn the_poll_hook_waits_for_either_direction() {
    child("child_poll_for_either_direction", T).assert_ok();
}

#[test]
fn child_std_socket_closed_on_another_thread() {
    if !is_child() {
        return;
    }
    patched();
    // A std socket waits through this hub once (registering its fd number), then is
    // closed on another thread; the next socket with that number must not hang.
    let u = spawn(|| {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(u.recv(&mut b).unwrap_err().kind(), ErrorKind::WouldBlock);
        u
    })
    .get()
    .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&u);
    std::thread::spawn(move || drop(u)).join().unwrap();
    let g = spawn(move || {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&l), fd, "the fd number is reused");
        let addr = l.local_addr().unwrap();
        let c = spawn(move || std::net::TcpStream::connect(addr).map(|_| ()));
        let accepted = l.accept().map(|_| ());
        (accepted.is_ok(), c.get().unwrap().is_ok())
    });
    let t = Instant::now();
    assert!(g.join_timeout(Duration::from_secs(5)), "the accept hung on a stale registration");
    assert_eq!(g.get(), Ok((true, true)));
    assert!(t.elapsed() < Duration::from_secs(5));
    println!("ok");
}

#[test]
fn a_std_socket_closed_on_another_thread_leaves_no_stale_registration() {
    child("child_std_socket_closed_on_another_thread", T).assert_ok();
}

#[test]
fn child_selective_patching() {
    if !is_child() {
        return;
    }
    // Only sleeps: std::thread::sleep cooperates, sockets stay plain libc sockets.
    greenhub::monkey::patch_time();
    assert!(greenhub::monkey::is_time_patched() && !greenhub::monkey::is_socket_patched());
    assert!(!greenhub::monkey::is_patched());
    let t = Instant::now();
    let gs: Vec<_> = (0..10).map(|_| spawn(|| std::thread::sleep(Duration::from_millis(50)))).collect();
    greenhub::joinall(&gs);
    assert!(t.elapsed() < Duration::from_millis(400), "{:?}", t.elapsed());
    let u = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // A socket of an unpatched part is blocking as std made it (no O_NONBLOCK added).
    // SAFETY: F_GETFL on our own open socket.
    let fl = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&u), libc::F_GETFL) };
    assert_eq!(fl & libc::O_NONBLOCK, 0);
    // select through the hub.
    greenhub::monkey::patch_select();
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fa = std::os::fd::AsRawFd::as_raw_fd(&a);
    let writer = spawn(move || {
        greenhub::sleep(Duration::from_millis(10));
        (&b).write_all(b"s").unwrap();
        b
    });
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let tk = ticks.clone();
    let _ticker = spawn(move || loop {
        tk.set(tk.get() + 1);
        greenhub::sleep(Duration::from_millis(1));
    });
    let g = spawn(move || {
        // SAFETY: an fd_set we own, zeroed then filled with one open fd.
        unsafe {
            let mut set: libc::fd_set = std::mem::zeroed();
            libc::FD_ZERO(&mut set);
            libc::FD_SET(fa, &mut set);
            let mut tv = libc::timeval { tv_sec: 5, tv_usec: 0 };
            let n = libc::select(fa + 1, &mut set, std::ptr::null_mut(), std::ptr::null_mut(), &mut tv);
            (n, libc::FD_ISSET(fa, &set))
        }
    });
    let t = Instant::now();
    assert_eq!(g.get(), Ok((1, true)));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(ticks.get() >= 3, "other greenlets ran while select waited");
    drop(writer.get());
    println!("ok");
}

#[test]
fn selective_patching_and_the_select_hook() {
    child("child_selective_patching", T).assert_ok();
}
