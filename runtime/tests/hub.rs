//! The hub: greenlet zero, LoopExit, several hubs at once, other threads, fd readiness.

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use greenhub::{joinall, sleep, spawn, threadpool::spawn_blocking, wait_readable, yield_now, Builder};

fn loop_exit_message(f: impl FnOnce()) -> String {
    let err = panic::catch_unwind(AssertUnwindSafe(f)).expect_err("LoopExit expected");
    err.downcast_ref::<String>().cloned().unwrap_or_default()
}

#[test]
fn loop_exit_names_the_wait_and_counts_greenlets() {
    let (tx, rx) = mpsc::channel();
    // In a thread of its own so this test's hub state does not leak into others.
    std::thread::Builder::new()
        .name("main".into())
        .spawn(move || {
            let stuck = Builder::new().name("stuck").spawn(|| sleep(Duration::MAX));
            let msg = loop_exit_message(|| stuck.join());
            let other = spawn(|| ());
            other.join(); // the hub is still usable after LoopExit
            tx.send(msg).unwrap();
        })
        .unwrap();
    let msg = rx.recv_timeout(Duration::from_secs(10)).expect("LoopExit instead of hanging");
    assert!(msg.starts_with("greenhub LoopExit: this operation would block forever"), "{msg}");
    assert!(msg.contains("waits on join of greenlet-1"), "{msg}");
    assert!(msg.contains("(1 greenlets alive, 1 parked;"), "{msg}");
    assert!(msg.contains("#1 stuck: parked on sleep forever"), "{msg}");
    assert!(msg.contains("#0 main: parked on join of greenlet-1 (greenlet zero)"), "{msg}");
}

#[test]
fn loop_exit_on_a_thread_sleeping_forever_with_nothing_else() {
    let msg = std::thread::spawn(|| loop_exit_message(|| sleep(Duration::MAX))).join().unwrap();
    assert!(msg.contains("waits on sleep forever"), "{msg}");
    assert!(msg.contains("(0 greenlets alive, 0 parked;"), "{msg}");
}

#[test]
fn hubs_on_several_threads_at_once() {
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let order = Rc::new(RefCell::new(Vec::new()));
                let gs: Vec<_> = (0..100u64)
                    .map(|i| {
                        let o = order.clone();
                        spawn(move || {
                            sleep(Duration::from_millis(20 + (i % 3)));
                            yield_now();
                            o.borrow_mut().push(i);
                            t * 1000 + i
                        })
                    })
                    .collect();
                joinall(&gs);
                let mut sorted = order.borrow().clone();
                sorted.sort();
                assert_eq!(sorted, (0..100).collect::<Vec<_>>());
                gs.into_iter().map(|g| g.get().unwrap()).sum::<u64>()
            })
        })
        .collect();
    let sums: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(sums, (0..4).map(|t| t * 100_000 + 4950).collect::<Vec<_>>());
}

#[test]
fn another_thread_wakes_a_parked_greenlet_through_the_remote_queue() {
    let (tx, rx) = mpsc::channel::<u32>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let ticks = Rc::new(RefCell::new(0u32));
    let t2 = ticks.clone();
    // While the greenlet waits for the other thread, the hub keeps running others.
    let ticker = spawn(move || {
        for _ in 0..5 {
            sleep(Duration::from_millis(2));
            *t2.borrow_mut() += 1;
        }
    });
    let waiter = spawn(move || spawn_blocking(move || rx.lock().unwrap().recv().unwrap() * 2));
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        tx.send(21).unwrap();
    });
    assert_eq!(waiter.get(), Ok(42));
    ticker.join();
    assert_eq!(*ticks.borrow(), 5);
    sender.join().unwrap();
    assert_eq!(greenhub::stats().threadpool_jobs, 0);
}

#[test]
fn spawn_blocking_from_greenlet_zero_and_in_parallel() {
    let t = Instant::now();
    // 20 blocking calls of 100 ms from 20 greenlets: the pool grows, they overlap.
    let gs: Vec<_> = (0..20u64)
        .map(|i| {
            spawn(move || {
                spawn_blocking(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    i
                })
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).sum::<u64>(), 190);
    assert!(t.elapsed() < Duration::from_millis(1000), "{:?}", t.elapsed());
    // Greenlet zero may block on the pool too.
    assert_eq!(spawn_blocking(|| 7), 7);
}

#[test]
fn a_panic_in_spawn_blocking_reaches_the_caller() {
    let g = spawn(|| spawn_blocking(|| -> u8 { panic!("in the pool") }));
    assert_eq!(g.get(), Err(greenhub::GreenletError::Panicked("in the pool".into())));
}

#[test]
fn fd_readiness_wakes_the_reader_and_others_run_meanwhile() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let reader = spawn(move || {
        let mut a = a;
        let mut buf = [0u8; 16];
        let n = loop {
            match a.read(&mut buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    l.borrow_mut().push("reader waits".to_string());
                    wait_readable(a.as_raw_fd(), None).unwrap();
                }
                Err(e) => panic!("{e}"),
            }
        };
        greenhub::deregister(a.as_raw_fd());
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let l = log.clone();
    let writer = spawn(move || {
        l.borrow_mut().push("writer sleeps".to_string());
        sleep(Duration::from_millis(20));
        (&b).write_all(b"ping").unwrap();
        l.borrow_mut().push("writer wrote".to_string());
        b
    });
    assert_eq!(reader.get(), Ok("ping".to_string()));
    drop(writer.get());
    assert_eq!(*log.borrow(), ["reader waits", "writer sleeps", "writer wrote"]);
    assert_eq!(greenhub::stats().io_waits, 0);
}

#[test]
fn fd_wait_deadline_gives_timed_out_and_leaves_no_waiter() {
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let t = Instant::now();
    let r = wait_readable(a.as_raw_fd(), Some(Instant::now() + Duration::from_millis(20)));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(t.elapsed() >= Duration::from_millis(20));
    let s = greenhub::stats();
    assert_eq!((s.io_waits, s.timers), (0, 0));
    greenhub::deregister(a.as_raw_fd());
    assert_eq!(greenhub::stats().registered_fds, 0);
}

#[test]
fn two_greenlets_waiting_on_one_fd_both_wake() {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let a = Rc::new(a);
    let got = Rc::new(RefCell::new(Vec::new()));
    let readers: Vec<_> = (0..2)
        .map(|i| {
            let (a, got) = (a.clone(), got.clone());
            spawn(move || {
                let mut buf = [0u8; 1];
                loop {
                    match (&*a).read(&mut buf) {
                        Ok(_) => break got.borrow_mut().push((i, buf[0])),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => wait_readable(a.as_raw_fd(), None).unwrap(),
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    yield_now(); // both park
    (&b).write_all(b"x").unwrap();
    sleep(Duration::from_millis(10));
    assert_eq!(got.borrow().len(), 1, "one byte, one winner; the other waits again");
    (&b).write_all(b"y").unwrap();
    joinall(&readers);
    let mut bytes: Vec<u8> = got.borrow().iter().map(|&(_, b)| b).collect();
    bytes.sort();
    assert_eq!(bytes, b"xy");
    greenhub::deregister(a.as_raw_fd());
}

#[test]
fn killing_a_greenlet_parked_on_an_fd_withdraws_its_wait() {
    let (a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let fd = a.as_raw_fd();
    let g = spawn(move || {
        let _keep = a;
        wait_readable(fd, None).unwrap();
    });
    yield_now();
    assert_eq!(greenhub::stats().io_waits, 1);
    g.kill();
    g.join();
    assert_eq!(g.error(), Some(greenhub::GreenletError::Killed));
    assert_eq!(greenhub::stats().io_waits, 0);
    greenhub::deregister(fd);
}

#[test]
fn greenlets_are_abandoned_when_their_thread_ends() {
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        for _ in 0..100 {
            spawn(|| sleep(Duration::from_secs(3600)));
        }
        sleep(Duration::from_millis(5));
        let _unstarted = spawn(|| unreachable!("never resumed"));
        tx.send(greenhub::stats().greenlets).unwrap();
        // The thread returns with 101 greenlets unfinished.
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 101);
    t.join().expect("thread exit with parked greenlets neither hangs nor crashes");
}

#[test]
fn dump_describes_each_greenlet() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let s = Builder::new().name("sleeper").spawn(|| sleep(Duration::from_secs(60)));
        let j = Builder::new().name("joiner").spawn(move || s.join());
        let r = Builder::new().name("ready-one").spawn(|| ());
        yield_now();
        let r2 = Builder::new().name("fresh").spawn(|| ());
        let d = greenhub::dump();
        drop((j, r, r2));
        tx.send(d).unwrap();
    });
    let d = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(d.contains("3 greenlets, 1 timers"), "{d}");
    assert!(d.contains("#0 <unnamed>: running (greenlet zero)"), "greenlet zero has its thread's name: {d}");
    assert!(d.contains("#1 sleeper: parked on sleep (59"), "{d}");
    assert!(d.contains("#2 joiner: parked on join of greenlet-1"), "{d}");
    assert!(d.contains("#4 fresh: ready [256 KiB stack]"), "{d}");
    assert!(!d.contains("ready-one"), "finished greenlets are not listed: {d}");
}

#[test]
fn other_threads_spawn_greenlets_on_a_hub_through_its_handle() {
    let (handle_tx, handle_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("worker-hub".into())
        .spawn(move || {
            handle_tx.send(greenhub::HubHandle::current().unwrap()).unwrap();
            spawn_blocking(move || done_rx.recv().unwrap());
            greenhub::run();
        })
        .unwrap();
    let hub = handle_rx.recv().unwrap();
    let (tx, rx) = mpsc::channel();
    let senders: Vec<_> = (0..4u32)
        .map(|t| {
            let (hub, tx) = (hub.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..25u32 {
                    let tx = tx.clone();
                    hub.spawn(move || {
                        sleep(Duration::from_millis(1)); // a real greenlet: it can park
                        let thread = std::thread::current().name().map(String::from);
                        tx.send((t * 100 + i, thread)).unwrap();
                    });
                }
            })
        })
        .collect();
    senders.into_iter().for_each(|s| s.join().unwrap());
    let mut got: Vec<(u32, Option<String>)> =
        (0..100).map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("all spawned greenlets ran")).collect();
    got.sort();
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        (0..4).flat_map(|t| (0..25).map(move |i| t * 100 + i)).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|g| g.1.as_deref() == Some("worker-hub")), "they ran on the worker's thread");
    done_tx.send(()).unwrap();
    worker.join().unwrap();
}
