//! `monkey::patch_all()`: std and a third-party blocking crate (ureq) made cooperative
//! inside greenlets. Run with `cargo test --features monkey --test monkey`.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use greenhub::{joinall, spawn, yield_now};

fn patched() {
    greenhub::monkey::patch_all();
    assert!(greenhub::monkey::is_patched());
}

#[test]
fn fifty_greenlets_in_std_sleep_run_at_once() {
    patched();
    let t = Instant::now();
    let gs: Vec<_> = (0..50).map(|_| spawn(|| std::thread::sleep(Duration::from_millis(200)))).collect();
    joinall(&gs);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200));
    assert!(took < Duration::from_millis(600), "std::thread::sleep blocked the hub: {took:?}");
}

#[test]
fn threads_without_a_hub_really_sleep_and_greenlet_zero_runs_the_hub() {
    patched();
    // A plain thread (no hub) blocks, as std does.
    let t = Instant::now();
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(greenhub::stats().greenlets, 0);
    })
    .join()
    .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(50));
    // Greenlet zero of a thread with a hub: its std sleep runs the hub meanwhile, as in
    // gevent, where the main program is a greenlet too.
    std::thread::spawn(|| {
        let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
        let tk = ticks.clone();
        let ticker = spawn(move || loop {
            tk.set(tk.get() + 1);
            greenhub::sleep(Duration::from_millis(1));
        });
        let t = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert!(ticks.get() >= 5, "the hub ran during greenlet zero's std sleep: {}", ticks.get());
        ticker.kill();
        ticker.join();
    })
    .join()
    .unwrap();
}

// gevent/tests/test__greenness.py: a blocking HTTP client in the main program, against a
// server greenlet of the same thread.
#[test]
fn a_blocking_client_on_the_threads_own_stack_talks_to_a_server_greenlet() {
    patched();
    std::thread::spawn(|| {
        let site = greenhub_crawler::Site::start(Duration::from_millis(5)).unwrap();
        let body = ureq::get(&site.url("/page/1")).call().unwrap().into_string().unwrap();
        assert_eq!(body.as_bytes(), greenhub_crawler::site::page_body(1));
        // And std::net directly: connect, write, read on greenlet zero.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let echo = spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        });
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        echo.join();
        site.stop();
    })
    .join()
    .unwrap();
}

#[test]
fn std_net_echo_between_greenlets_of_one_thread() {
    patched();
    let gs = std::thread::spawn(|| {
        let listener = spawn(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).get().unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..10 {
                let (mut s, _) = listener.accept().unwrap();
                handlers.push(spawn(move || {
                    let mut buf = [0u8; 1024];
                    loop {
                        let n = s.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        s.write_all(&buf[..n]).unwrap();
                    }
                }));
            }
            joinall(&handlers);
        });
        let clients: Vec<_> = (0..10u8)
            .map(|i| {
                spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    let msg = vec![i; 3000];
                    s.write_all(&msg).unwrap();
                    let mut back = vec![0u8; 3000];
                    s.read_exact(&mut back).unwrap();
                    back == msg
                })
            })
            .collect();
        joinall(&clients);
        server.join();
        clients.into_iter().map(|c| c.get().unwrap()).collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(gs, vec![true; 10]);
}

#[test]
fn a_user_nonblocking_socket_keeps_returning_would_block() {
    patched();
    let r = spawn(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        c.set_nonblocking(true).unwrap();
        let t = Instant::now();
        let read = c.read(&mut [0u8; 8]).unwrap_err().kind();
        let idle = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // nobody connects
        idle.set_nonblocking(true).unwrap();
        let accept = idle.accept().map(|_| ()).unwrap_err().kind();
        let quick = t.elapsed();
        // And back to blocking: the read waits (here: until the timeout).
        c.set_nonblocking(false).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let t2 = Instant::now();
        let blocked = c.read(&mut [0u8; 8]).unwrap_err().kind();
        (read, accept, quick, blocked, t2.elapsed())
    })
    .get()
    .unwrap();
    assert_eq!((r.0, r.1), (ErrorKind::WouldBlock, ErrorKind::WouldBlock));
    assert!(r.2 < Duration::from_millis(30), "non-blocking calls returned at once");
    assert_eq!(r.3, ErrorKind::WouldBlock);
    assert!(r.4 >= Duration::from_millis(30), "blocking again after set_nonblocking(false)");
}

#[test]
fn so_rcvtimeo_is_honoured_and_other_greenlets_run_meanwhile() {
    patched();
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let tk = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..10 {
            greenhub::sleep(Duration::from_millis(5));
            tk.set(tk.get() + 1);
        }
    });
    let reader = spawn(|| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_server_side, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let t = Instant::now();
        let kind = c.read(&mut [0u8; 8]).unwrap_err().kind();
        (kind, t.elapsed())
    });
    let (kind, took) = reader.get().unwrap();
    ticker.join();
    // std maps the SO_RCVTIMEO expiry (EAGAIN) to WouldBlock on Linux.
    assert_eq!(kind, ErrorKind::WouldBlock);
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(1), "{took:?}");
    assert_eq!(ticks.get(), 10, "the hub ran while the reader waited");
}

#[test]
fn connect_timeout_and_refused_keep_their_errors() {
    patched();
    let port =
        spawn(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).get().unwrap();
    let kinds = spawn(move || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let a = std::net::TcpStream::connect(addr).map(|_| ()).unwrap_err().kind();
        let b = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(|_| ()).unwrap_err().kind();
        (a, b)
    })
    .get()
    .unwrap();
    assert_eq!(kinds, (ErrorKind::ConnectionRefused, ErrorKind::ConnectionRefused));
}

#[test]
fn name_resolution_runs_off_the_hub() {
    patched();
    let g = spawn(|| {
        use std::net::ToSocketAddrs;
        ("localhost", 80).to_socket_addrs().map(|a| a.count()).unwrap_or(0)
    });
    let other = spawn(|| 1);
    assert!(g.get().unwrap() >= 1);
    assert_eq!(other.get(), Ok(1));
}

#[test]
fn a_third_party_blocking_http_client_fetches_concurrently() {
    patched();
    let site = greenhub_crawler::Site::start(Duration::from_millis(300)).unwrap();
    let urls: Vec<String> = (1..=20).map(|n| site.url(&format!("/page/{n}"))).collect();
    let t = Instant::now();
    let gs: Vec<_> = urls
        .into_iter()
        .map(|u| {
            spawn(move || ureq::get(&u).call().map(|r| r.into_string().map(|s| s.len()).unwrap_or(0)).unwrap_or(0))
        })
        .collect();
    joinall(&gs);
    let took = t.elapsed();
    let sizes: Vec<usize> = gs.into_iter().map(|g| g.get().unwrap()).collect();
    let want: Vec<usize> = (1..=20).map(|n| greenhub_crawler::site::page_body(n).len()).collect();
    assert_eq!(sizes, want);
    assert!(took < Duration::from_millis(600), "20 pages of 300 ms took {took:?}");
    site.stop();
    yield_now();
}
