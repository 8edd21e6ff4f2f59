//! Soundness at the edges: abandoned stacks, per-greenlet unwinding, thread and process
//! exit, drops of detached values, kills from inside a pool, readiness that cannot
//! spin, resource limits, the panic hook and the blocking detector. Whatever would
//! abort or hang runs in a child process (`common::child`).

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenhub::{pool::Pool, sleep, spawn, with_timeout, yield_now, Builder, GreenletError, TimedOut};

use common::{child, child_with, is_child};
use greenhub_testkit as common;

const T: Duration = Duration::from_secs(20);

// ---- 1. abandoned stacks are never reused --------------------------------------------

/// A greenlet parked inside `std::thread::scope` lends a buffer on its stack to a
/// scoped thread; its hub's thread exits, abandoning it; greenlets of another thread
/// then run on fresh stacks. The buffer must stay what the scoped thread wrote.
#[test]
fn a_stack_abandoned_at_thread_exit_is_never_handed_to_another_greenlet() {
    static CORRUPTED: AtomicUsize = AtomicUsize::new(0);
    static WRITES: AtomicUsize = AtomicUsize::new(0);
    static STOP: AtomicBool = AtomicBool::new(false);
    let (started_tx, started_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _g = spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            std::thread::scope(|s| {
                s.spawn(|| {
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while !STOP.load(Ordering::Relaxed) && Instant::now() < deadline {
                        for b in buf.iter_mut() {
                            // SAFETY-free volatile-ish access through a plain &mut: only
                            // this thread touches `buf` while the greenlet is parked.
                            *b = 0xAB;
                        }
                        std::hint::black_box(&mut buf);
                        std::thread::yield_now();
                        if buf.iter().any(|&b| b != 0xAB) {
                            CORRUPTED.fetch_add(1, Ordering::Relaxed);
                        }
                        WRITES.fetch_add(1, Ordering::Relaxed);
                    }
                });
                started_tx.send(()).unwrap();
                sleep(Duration::MAX); // parks inside the scope, forever
            });
        });
        sleep(Duration::from_millis(20)); // the greenlet starts and parks
                                          // The thread returns: its hub abandons the parked greenlet.
    })
    .join()
    .unwrap();
    started_rx.recv().unwrap();
    // Other threads' greenlets take stacks of the same size and scribble on them.
    let scribblers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(|| {
                let gs: Vec<_> = (0..64)
                    .map(|_| {
                        spawn(|| {
                            let mut junk = [0x55u8; 32 * 1024];
                            std::hint::black_box(&mut junk);
                            sleep(Duration::from_millis(5));
                            std::hint::black_box(&mut junk);
                        })
                    })
                    .collect();
                greenhub::joinall(&gs);
            })
        })
        .collect();
    for s in scribblers {
        s.join().unwrap();
    }
    let before = WRITES.load(Ordering::Relaxed);
    let t = Instant::now();
    while WRITES.load(Ordering::Relaxed) < before + 10 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(1));
    }
    STOP.store(true, Ordering::Relaxed);
    assert!(WRITES.load(Ordering::Relaxed) > before, "the scoped thread kept running");
    assert_eq!(CORRUPTED.load(Ordering::Relaxed), 0, "another greenlet's frames overwrote the buffer");
}

/// A generator whose body blocks on the hub: killing the greenlet unwinds through the
/// generator's stack too (its destructors run), and the greenlet ends killed.
#[test]
fn killing_a_greenlet_blocked_inside_a_generator_unwinds_both_stacks() {
    struct Flag(Rc<Cell<u32>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let g = spawn(move || {
        let _outer = Flag(d.clone());
        let mut gen = greenhub::raw::Generator::new(move |y, ()| {
            let _inner = Flag(d);
            y.suspend(1);
            sleep(Duration::from_secs(60)); // blocks on the hub from the generator's stack
            y.suspend(2);
        });
        assert_eq!(gen.resume(()), Some(1));
        gen.resume(())
    });
    yield_now();
    assert!(!g.ready());
    g.kill();
    assert_eq!(g.get(), Err(GreenletError::Killed));
    assert_eq!(drops.get(), 2, "both the generator's and the greenlet's locals dropped");
}

// ---- 3. per-greenlet unwinding state -------------------------------------------------

/// Waits on the hub in its Drop (a BufWriter flushing, a lock taken in cleanup).
struct SlowCleanup(Duration, Rc<RefCell<Vec<&'static str>>>);
impl Drop for SlowCleanup {
    fn drop(&mut self) {
        sleep(self.0);
        self.1.borrow_mut().push("cleanup done");
    }
}

#[test]
fn child_others_stay_killable_while_one_greenlet_unwinds_and_waits() {
    if !is_child() {
        return;
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let dying = Builder::new().name("dying").spawn(move || {
        let _c = SlowCleanup(Duration::from_millis(150), l);
        panic!("first");
    });
    let sleeper = spawn(|| sleep(Duration::from_secs(60)));
    let timed = spawn(|| with_timeout(Duration::from_millis(20), || sleep(Duration::from_secs(60))));
    let sem = Rc::new(greenhub::sync::Semaphore::new(0));
    let s2 = sem.clone();
    let waiter = spawn(move || {
        let _permit = s2.acquire();
    });
    sleep(Duration::from_millis(30)); // `dying` is now parked in its Drop, unwinding
    assert!(!dying.ready());
    let t = Instant::now();
    sleeper.kill();
    waiter.kill();
    assert_eq!(sleeper.get(), Err(GreenletError::Killed));
    assert_eq!(waiter.get(), Err(GreenletError::Killed));
    assert_eq!(timed.get(), Ok(Err(TimedOut)));
    assert!(t.elapsed() < Duration::from_millis(100), "kills were delivered at once");
    // A second kill of the unwinding greenlet does not cut its cleanup short.
    dying.kill();
    dying.kill();
    dying.join();
    assert_eq!(*log.borrow(), ["cleanup done"]);
    assert_eq!(dying.get(), Err(GreenletError::Killed), "a kill pending at its end decides");
    println!("ok");
}

#[test]
fn others_stay_killable_while_one_greenlet_unwinds_and_waits() {
    let c = child("child_others_stay_killable_while_one_greenlet_unwinds_and_waits", T);
    c.assert_ok();
    assert!(c.stdout.contains("ok"), "{}", c.stdout);
}

#[test]
fn child_kill_and_timeout_during_a_cleanup_that_waits() {
    if !is_child() {
        return;
    }
    // Killed, then killed again and timed out while its Drop waits on a semaphore.
    let sem = Rc::new(greenhub::sync::Semaphore::new(0));
    let log = Rc::new(RefCell::new(Vec::new()));
    struct TakesPermit(Rc<greenhub::sync::Semaphore>, Rc<RefCell<Vec<String>>>);
    impl Drop for TakesPermit {
        fn drop(&mut self) {
            let got = with_timeout(Duration::from_millis(30), || self.0.acquire_forget());
            self.1.borrow_mut().push(format!("inner timeout: {got:?}"));
            let _p = self.0.acquire();
            self.1.borrow_mut().push("permit".into());
        }
    }
    let (s, l) = (sem.clone(), log.clone());
    let g = spawn(move || {
        let _t = TakesPermit(s, l);
        sleep(Duration::from_secs(60));
    });
    yield_now();
    g.kill(); // unwinds into the Drop, which waits
    sleep(Duration::from_millis(5));
    g.kill(); // a second kill while it waits there
    sleep(Duration::from_millis(50)); // the Drop's own with_timeout fires meanwhile
    g.kill();
    sem.release().unwrap();
    g.join();
    assert_eq!(*log.borrow(), ["inner timeout: Err(TimedOut)", "permit"]);
    assert_eq!(g.get(), Err(GreenletError::Killed));
    println!("ok");
}

#[test]
fn kill_and_timeout_during_a_cleanup_that_waits() {
    let c = child("child_kill_and_timeout_during_a_cleanup_that_waits", T);
    c.assert_ok();
    assert!(c.stdout.contains("ok"), "{}", c.stdout);
}

#[test]
fn child_a_panic_hook_that_waits_while_another_greenlet_panics() {
    if !is_child() {
        return;
    }
    static HOOKED: AtomicUsize = AtomicUsize::new(0);
    // A user hook installed before greenhub's (which chains to it) that waits on the hub.
    std::panic::set_hook(Box::new(|_| {
        sleep(Duration::from_millis(20));
        HOOKED.fetch_add(1, Ordering::SeqCst);
    }));
    let a = spawn(|| -> () { panic!("a") });
    let b = spawn(|| -> () { panic!("b") });
    let c = spawn(|| sleep(Duration::from_secs(60)));
    let killer = spawn({
        let c = Rc::new(c);
        let c2 = c.clone();
        move || {
            c2.kill();
            c
        }
    });
    assert_eq!(a.get(), Err(GreenletError::Panicked("a".into())));
    assert_eq!(b.get(), Err(GreenletError::Panicked("b".into())));
    let c = killer.get().unwrap();
    c.join();
    assert_eq!(c.error(), Some(GreenletError::Killed));
    assert_eq!(HOOKED.load(Ordering::SeqCst), 2, "the user's hook ran for both greenlet panics");
    println!("ok");
}

#[test]
fn a_panic_hook_that_waits_while_another_greenlet_panics_does_not_abort() {
    let c = child("child_a_panic_hook_that_waits_while_another_greenlet_panics", T);
    c.assert_ok();
    assert!(c.stdout.contains("ok"), "{}", c.stdout);
    assert!(c.stderr.contains("greenlet 'greenlet-1' (#1) panicked"), "{}", c.stderr);
}

#[test]
fn child_a_panic_hook_that_yields_runs_no_other_greenlet() {
    if !is_child() {
        return;
    }
    static OTHER_RAN: AtomicUsize = AtomicUsize::new(0);
    static SEEN_IN_HOOK: AtomicUsize = AtomicUsize::new(usize::MAX);
    // Yields inside the hook, more than one switch interval's worth: the greenlet that is
    // ready meanwhile must not run until the hook returns (it is deferred on the
    // switch path, not only in the loop).
    std::panic::set_hook(Box::new(|_| {
        for _ in 0..200 {
            greenhub::yield_now();
        }
        SEEN_IN_HOOK.store(OTHER_RAN.load(Ordering::SeqCst), Ordering::SeqCst);
    }));
    let a = spawn(|| -> () { panic!("a") });
    let b = spawn(|| OTHER_RAN.fetch_add(1, Ordering::SeqCst));
    assert_eq!(a.get(), Err(GreenletError::Panicked("a".into())));
    b.join();
    assert_eq!(SEEN_IN_HOOK.load(Ordering::SeqCst), 0, "no other greenlet ran while the hook yielded");
    assert_eq!(OTHER_RAN.load(Ordering::SeqCst), 1, "and the deferred one ran after it");
    println!("ok");
}

#[test]
fn a_panic_hook_that_yields_runs_no_other_greenlet() {
    let c = child("child_a_panic_hook_that_yields_runs_no_other_greenlet", T);
    c.assert_ok();
    assert!(c.stdout.contains("ok"), "{}", c.stdout);
}

// ---- 4. thread exit and process exit -------------------------------------------------

#[test]
fn child_process_exit_inside_a_greenlet() {
    if !is_child() {
        return;
    }
    let _parked = spawn(|| sleep(Duration::from_secs(60)));
    let g = spawn(|| std::process::exit(3));
    g.join();
    unreachable!("exit returned");
}

#[test]
fn process_exit_inside_a_greenlet_exits_with_its_code() {
    let c = child("child_process_exit_inside_a_greenlet", T);
    assert!(!c.hung);
    assert_eq!(c.code, Some(3), "{}", c.stderr);
}

thread_local! {
    /// Taken before the hub exists, so destroyed after it (reverse order): the handle
    /// outlives its hub.
    static ABANDONED: RefCell<Option<greenhub::Greenlet<u32>>> = const { RefCell::new(None) };
}

/// Calls greenhub from its Drop.
struct UsesGreenhub(&'static str);
impl Drop for UsesGreenhub {
    fn drop(&mut self) {
        let g = spawn(|| 7);
        sleep(Duration::from_millis(1));
        let r = g.get();
        let _ = with_timeout(Duration::from_millis(5), || sleep(Duration::from_millis(1)));
        let _ = greenhub::dump();
        println!("{}: {:?}", self.0, r);
    }
}

thread_local! {
    static LATE_USER: UsesGreenhub = const { UsesGreenhub("thread-local drop") };
}

#[test]
fn child_greenhub_calls_during_thread_teardown() {
    if !is_child() {
        return;
    }
    struct Report;
    impl Drop for Report {
        fn drop(&mut self) {
            let r = ABANDONED.with(|a| a.borrow_mut().take().map(|g| g.get()));
            println!("abandoned handle: {r:?}");
        }
    }
    thread_local! { static REPORT: Report = const { Report }; }
    std::thread::spawn(|| {
        // Registered before the hub, so destroyed after it (reverse order): this handle
        // outlives its hub.
        ABANDONED.with(|_| {});
        REPORT.with(|_| {});
        let parked = spawn(|| {
            sleep(Duration::from_secs(60));
            1u32
        });
        yield_now();
        ABANDONED.with(|a| *a.borrow_mut() = Some(parked));
        // Registered after the hub: destroyed before it, and uses it.
        LATE_USER.with(|_| {});
        // An unstarted spawn_later whose closure's captures call greenhub when the hub
        // drops them (its thread-local is being destroyed then: the late hub serves).
        let captured = UsesGreenhub("unstarted closure");
        let _later = greenhub::spawn_later(Duration::from_secs(60), move || drop(captured));
    })
    .join()
    .unwrap();
    // And on this (the test's) thread, and after `main` returns, from an atexit handler.
    LATE_USER.with(|_| {});
    extern "C" fn at_exit() {
        let r = std::panic::catch_unwind(|| spawn(|| 8).get());
        println!("atexit: {r:?}");
    }
    // SAFETY: registers a handler that never unwinds (it catches every panic).
    assert_eq!(unsafe { libc::atexit(at_exit) }, 0);
    println!("main returns");
}

#[test]
fn greenhub_calls_during_thread_teardown_and_after_main_never_abort() {
    let c = child("child_greenhub_calls_during_thread_teardown", T);
    c.assert_ok();
    let out = &c.stdout;
    assert!(out.contains("unstarted closure: Ok(7)"), "{out}");
    assert_eq!(out.matches("thread-local drop: Ok(7)").count(), 2, "{out}");
    assert!(out.contains("atexit: Ok(Ok(8))"), "{out}");
    assert!(
        out.contains(
            "abandoned handle: Some(Err(Panicked(\"greenlet abandoned: the thread of its hub exited before it finished\")))"
        ),
        "{out}"
    );
}

#[test]
fn child_segfault_on_a_thread_without_hub() {
    if !is_child() {
        return;
    }
    spawn(|| ()).join(); // installs greenhub's fault handler
    std::thread::spawn(|| {
        // SAFETY: deliberately not: the fault is the point of this child.
        unsafe { std::ptr::read_volatile(std::ptr::null::<u8>()) };
    })
    .join()
    .unwrap();
}

#[test]
fn a_fault_on_a_thread_without_hub_is_passed_on_without_creating_one() {
    let c = child("child_segfault_on_a_thread_without_hub", T);
    assert!(!c.hung);
    assert_eq!(c.signal, Some(libc::SIGSEGV), "{c:?}");
    assert!(!c.stderr.contains("overflowed"), "{}", c.stderr);
}

// ---- 5. drops of detached values -----------------------------------------------------

#[test]
fn a_detached_greenlets_value_drops_in_that_greenlet() {
    struct Blocks(Rc<RefCell<Vec<String>>>);
    impl Drop for Blocks {
        fn drop(&mut self) {
            sleep(Duration::from_millis(5)); // waits: fine, it runs in its own greenlet
            self.0.borrow_mut().push(greenhub::current_name().unwrap_or_default());
        }
    }
    struct Panics;
    impl Drop for Panics {
        fn drop(&mut self) {
            panic!("value drop");
        }
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    drop(Builder::new().name("producer").spawn(move || Blocks(l)));
    drop(spawn(|| Panics));
    let other = spawn(|| 5);
    assert_eq!(other.get(), Ok(5), "an unrelated join sees neither the wait nor the panic");
    assert!(greenhub::run_timeout(Duration::from_secs(5)), "no zombie task is left");
    assert_eq!(*log.borrow(), ["producer"]);
    assert_eq!(greenhub::stats().greenlets, 0);
}

// ---- 6. pool kill from a member ------------------------------------------------------

#[test]
fn pool_kill_by_a_member_kills_the_others_then_the_caller() {
    let pool = Rc::new(Pool::new(5));
    let log = common::log();
    let mut gs = Vec::new();
    for i in 0..3 {
        let l = log.clone();
        gs.push(pool.spawn(move || {
            struct Note(common::Log, usize);
            impl Drop for Note {
                fn drop(&mut self) {
                    common::push(&self.0, format!("{}", self.1));
                }
            }
            let _n = Note(l, i);
            sleep(Duration::from_secs(60));
        }));
    }
    let (p, l) = (pool.clone(), log.clone());
    let killer = pool.spawn(move || {
        struct Note(common::Log);
        impl Drop for Note {
            fn drop(&mut self) {
                common::push(&self.0, "killer");
            }
        }
        let _n = Note(l);
        yield_now();
        p.kill();
        common::push(&common::log(), "unreachable");
    });
    pool.join();
    assert_eq!(killer.error(), Some(GreenletError::Killed));
    for g in &gs {
        assert_eq!(g.error(), Some(GreenletError::Killed));
    }
    // The caller unwinds at once; the others unwind when the hub next resumes them.
    assert_eq!(common::joined(&log), "killer 0 1 2");
}

#[test]
fn killall_by_one_of_them_kills_every_one() {
    let gs: Rc<RefCell<Vec<greenhub::Greenlet<()>>>> = Rc::default();
    let g2 = gs.clone();
    gs.borrow_mut().push(spawn(move || {
        yield_now();
        let all = g2.borrow();
        greenhub::killall(all.iter());
    }));
    for _ in 0..3 {
        gs.borrow_mut().push(spawn(|| sleep(Duration::from_secs(60))));
    }
    let t = Instant::now();
    assert!(greenhub::joinall_timeout(gs.borrow().iter(), Duration::from_secs(10)));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(gs.borrow().iter().all(|g| g.error() == Some(GreenletError::Killed)));
}

// ---- 7. readiness that cannot spin ---------------------------------------------------

#[test]
fn child_udp_recv_after_an_icmp_error_parks() {
    if !is_child() {
        return;
    }
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let s = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    s.send(b"x").unwrap();
    let mut buf = [0u8; 8];
    let first = s.recv(&mut buf).unwrap_err();
    assert_eq!(first.kind(), ErrorKind::ConnectionRefused);
    let t = Instant::now();
    let again = s.recv(&mut buf).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::TimedOut, "{again}");
    assert!(t.elapsed() >= Duration::from_millis(90));
    println!("ok");
}

#[test]
fn udp_recv_after_an_icmp_error_parks_instead_of_spinning() {
    child("child_udp_recv_after_an_icmp_error_parks", T).assert_ok();
}

#[test]
fn deregistering_a_greenhub_socket_by_number_leaves_it_working() {
    let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = spawn(move || l.accept().unwrap().0);
    let mut s = greenhub::net::TcpStream::connect(addr).unwrap();
    let mut p = peer.get().unwrap();
    greenhub::deregister(s.as_raw_fd()); // not this function's registration: untouched
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap_err().kind(), ErrorKind::TimedOut);
    p.write_all(b"z").unwrap();
    assert_eq!(s.read(&mut b).unwrap(), 1);
    assert_eq!(&b, b"z");
}

#[test]
fn child_a_fd_closed_on_another_thread_leaves_no_stale_entry() {
    if !is_child() {
        return;
    }
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    // Registers `fd` with this thread's hub (the free functions' implicit registration).
    let r = greenhub::wait_readable(fd, Some(Instant::now() + Duration::from_millis(5)));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    // Closed on another thread: this hub is not told.
    std::thread::spawn(move || drop(a)).join().unwrap();
    // The next socket gets the same number.
    let (c, d) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd2 = if c.as_raw_fd() == fd { c.as_raw_fd() } else { d.as_raw_fd() };
    assert_eq!(fd2, fd, "the fd number is reused");
    let (reader, mut writer) = if c.as_raw_fd() == fd { (c, d) } else { (d, c) };
    reader.set_nonblocking(true).unwrap();
    let w = spawn(move || {
        sleep(Duration::from_millis(10));
        writer.write_all(b"k").unwrap();
        writer
    });
    let t = Instant::now();
    greenhub::wait_readable(fd, Some(Instant::now() + Duration::from_secs(5))).unwrap();
    assert!(t.elapsed() < Duration::from_secs(4), "woken by the new socket's data");
    let mut buf = [0u8; 1];
    assert_eq!((&reader).read(&mut buf).unwrap(), 1);
    greenhub::deregister(fd);
    drop(w.get());
    println!("ok");
}

#[test]
fn a_fd_closed_on_another_thread_leaves_no_stale_entry() {
    child("child_a_fd_closed_on_another_thread_leaves_no_stale_entry", T).assert_ok();
}

// ---- 8. resource limits --------------------------------------------------------------

/// Lowers `RLIMIT_NOFILE` so that exactly `free` more fds can be opened (the limit is
/// on fd numbers: the `free` lowest unused numbers stay usable).
fn limit_fds_to(free: usize) {
    // SAFETY: dup/close of our own stdin; the dups are the lowest unused numbers.
    let probes: Vec<i32> = (0..=free).map(|_| unsafe { libc::dup(0) }).collect();
    let limit = *probes.last().unwrap() as u64;
    for fd in probes {
        // SAFETY: closing the dups made above.
        unsafe { libc::close(fd) };
    }
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur = limit;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &r), 0);
    }
}

#[test]
fn child_first_io_under_fd_limit() {
    if !is_child() {
        return;
    }
    std::thread::spawn(|| {
        // Room for the socket, none for the hub's poller.
        limit_fds_to(1);
        let e = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap_err();
        println!("first io: {:?}", e.raw_os_error());
        let e = greenhub::threadpool::try_spawn_blocking(|| 1).unwrap_err();
        println!("try_spawn_blocking: {:?}", e.raw_os_error());
        println!("spawn_blocking: {}", greenhub::threadpool::spawn_blocking(|| 2));
        let e = greenhub::net::lookup_host("localhost").unwrap_err();
        println!("dns: {:?}", e.raw_os_error());
    })
    .join()
    .unwrap();
}

#[test]
fn out_of_fds_the_first_io_spawn_blocking_and_dns_give_errors() {
    let c = child("child_first_io_under_fd_limit", T);
    c.assert_ok();
    let emfile = format!("Some({})", libc::EMFILE);
    assert!(c.stdout.contains(&format!("first io: {emfile}")), "{}", c.stdout);
    assert!(c.stdout.contains(&format!("try_spawn_blocking: {emfile}")), "{}", c.stdout);
    assert!(c.stdout.contains("spawn_blocking: 2"), "degrades to blocking, never panics: {}", c.stdout);
    assert!(c.stdout.contains(&format!("dns: {emfile}")), "{}", c.stdout);
}

#[test]
fn an_absurd_stack_size_is_an_error_not_a_wrapped_size() {
    for size in [usize::MAX, usize::MAX / 2, 1 << 60] {
        let e = Builder::new().stack_size(size).try_spawn(|| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{size}: {e}");
    }
    let p = std::panic::catch_unwind(|| Builder::new().stack_size(usize::MAX).spawn(|| ())).unwrap_err();
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("stack"), "{msg}");
    assert_eq!(Builder::new().stack_size(1 << 20).spawn(|| 1).get(), Ok(1));
}

/// Under an address-space limit, spawning greenlets that have not started yet fails
/// with an error once their stacks cannot be had (a stack is claimed at spawn even
/// though it is only taken when the greenlet starts), and every greenlet spawned before
/// the error runs to the end (its claimed stack is there when it starts).
#[test]
fn child_spawn_under_an_address_space_limit() {
    if !is_child() {
        return;
    }
    std::thread::spawn(|| {
        // SAFETY: plain getrlimit/setrlimit on our own process.
        unsafe {
            let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::getrlimit(libc::RLIMIT_AS, &mut r);
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let vm_kb: u64 = status
                .lines()
                .find_map(|l| l.strip_prefix("VmSize:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap();
            r.rlim_cur = (vm_kb * 1024 + (256 << 20)).min(r.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &r), 0);
        }
        let ran = Rc::new(Cell::new(0u32));
        let mut gs = Vec::new();
        let err = loop {
            let ran = ran.clone();
            match Builder::new().try_spawn(move || ran.set(ran.get() + 1)) {
                Ok(g) => gs.push(g),
                Err(e) => break e,
            }
            assert!(gs.len() < 100_000, "256 MiB cannot hold this many 256 KiB stacks");
        };
        println!("spawned {} then: {:?}", gs.len(), err.kind());
        assert!(!gs.is_empty());
        let n = gs.len() as u32;
        greenhub::joinall(&gs);
        assert!(gs.into_iter().all(|g| g.get() == Ok(())), "every spawned greenlet ran to the end");
        assert_eq!(ran.get(), n);
        // The claims were redeemed and the stacks came back: spawning works again.
        assert_eq!(Builder::new().try_spawn(|| 5).unwrap().get(), Ok(5));
        println!("all {n} ran");
    })
    .join()
    .unwrap();
}

#[test]
fn out_of_address_space_spawn_is_an_error_and_spawned_greenlets_still_run() {
    let c = child("child_spawn_under_an_address_space_limit", T);
    c.assert_ok();
    assert!(c.stdout.contains("then: OutOfMemory"), "{}", c.stdout);
    assert!(c.stdout.contains(" ran"), "{}", c.stdout);
}

// ---- 9. the panic hook and the blocking detector -------------------------------------

#[test]
fn child_panic_hook_chains_to_the_users() {
    if !is_child() {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("USER HOOK: {}", greenhub::current_name().unwrap_or_else(|| "thread".into()));
        previous(info);
    }));
    let g = Builder::new().name("boom").spawn(|| -> () { panic!("kaboom") });
    assert_eq!(g.get(), Err(GreenletError::Panicked("kaboom".into())));
}

#[test]
fn the_panic_hook_chains_to_the_hook_installed_before_it() {
    let c = child("child_panic_hook_chains_to_the_users", T);
    c.assert_ok();
    assert!(c.stderr.contains("greenlet 'boom' (#1) panicked at"), "{}", c.stderr);
    assert!(c.stderr.contains("USER HOOK: boom"), "{}", c.stderr);
}

#[test]
fn child_greenlet_panics_with_a_closed_stderr() {
    if !is_child() {
        return;
    }
    for i in 0..3 {
        let g = spawn(move || -> () { panic!("panic {i} with a long message {}", "x".repeat(4096)) });
        g.join();
    }
    println!("survived");
}

#[test]
fn greenlet_panics_with_a_closed_stderr_do_not_abort() {
    let c = child_with("child_greenlet_panics_with_a_closed_stderr", T, |cmd| {
        // stderr: a pipe whose reading end is already closed (EPIPE on every write).
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the array we pass with two new fds we then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both fds were just created and are owned by nothing else.
        let (r, w) = unsafe { (std::os::fd::OwnedFd::from_raw_fd(fds[0]), std::os::fd::OwnedFd::from_raw_fd(fds[1])) };
        drop(r);
        cmd.stderr(std::process::Stdio::from(w));
    });
    c.assert_ok();
    assert!(c.stdout.contains("survived"), "{}", c.stdout);
}

#[test]
fn child_blocking_detector_watches_only_hubs_with_greenlets() {
    if !is_child() {
        return;
    }
    greenhub::set_max_blocking(Some(Duration::from_millis(40)));
    // A thread that merely panicked once (its hub, if any, has no greenlets) and then
    // computes for a while: nothing to report.
    std::thread::Builder::new()
        .name("lonely".into())
        .spawn(|| {
            let _ = std::panic::catch_unwind(|| panic!("once"));
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(300) {
                std::hint::spin_loop();
            }
        })
        .unwrap()
        .join()
        .unwrap();
    // A named thread whose own code blocks a live greenlet.
    std::thread::Builder::new()
        .name("busy-worker".into())
        .spawn(|| {
            let g = spawn(|| sleep(Duration::from_millis(1)));
            yield_now();
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(300) {
                std::hint::spin_loop();
            }
            g.join();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_blocking_detector_watches_only_hubs_with_greenlets_and_names_the_thread() {
    let c = child("child_blocking_detector_watches_only_hubs_with_greenlets", T);
    c.assert_ok();
    assert!(!c.stderr.contains("on thread 'lonely'"), "{}", c.stderr);
    assert!(
        c.stderr.contains("greenhub: greenlet zero 'busy-worker' has run for"),
        "the label is the thread's name: {}",
        c.stderr
    );
    assert!(!c.stderr.contains("'main'"), "{}", c.stderr);
}

#[test]
fn send_and_sync_of_handles_stay_as_they_were() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<GreenletError>();
    send_sync::<TimedOut>();
    send_sync::<greenhub::ffi::Interrupt>();
    send_sync::<greenhub::Interest>();
    let _ = Arc::new(());
}
