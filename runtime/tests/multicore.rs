//! All cores: `Runtime`, `RemoteGreenlet`, cross-hub channels and `sync::shared`, with
//! exact values and orders; kill, timeout, close and shutdown in the middle of waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use greenhub::channel::{self, RecvError, RecvTimeoutError, Select, SendTimeoutError, TryRecvError, TrySendError};
use greenhub::sync::shared::{Event, Semaphore};
use greenhub::{spawn, with_timeout, yield_now, GreenletError, Runtime, TimedOut};

use greenhub_testkit as common;

const LONG: Duration = Duration::from_secs(60);

/// Counts drops (kill and shutdown must run destructors).
struct Dropped(Arc<AtomicUsize>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn results_come_back_from_every_hub() {
    let rt = Runtime::builder().threads(2).name("mc").build().unwrap();
    assert_eq!(rt.threads(), 2);
    let gs: Vec<_> = (0..10u64)
        .map(|i| {
            rt.spawn(move || (i * i, Runtime::current_hub().unwrap(), std::thread::current().name().map(String::from)))
        })
        .collect();
    let got: Vec<_> = gs.into_iter().map(|g| g.get().unwrap()).collect();
    for (i, (sq, hub, name)) in got.into_iter().enumerate() {
        assert_eq!(sq, (i * i) as u64);
        assert_eq!(hub, i % 2, "round-robin placement");
        assert_eq!(name, Some(format!("mc-{}", i % 2)));
    }
    assert_eq!(rt.run(|i| i + 100), [100, 101]);
    // From a greenlet on one hub, join a greenlet on the other (parks, its hub runs on).
    let rt = Arc::new(rt);
    let rt2 = rt.clone();
    let outer = rt.spawn_on(0, move || {
        let inner = rt2.spawn_on(1, || {
            greenhub::sleep(Duration::from_millis(5));
            Runtime::current_hub()
        });
        let local = spawn(|| 7); // hub 0 keeps running greenlets while we wait
        let r = inner.get();
        (r, local.get())
    });
    assert_eq!(outer.get(), Ok((Ok(Some(1)), Ok(7))));
    assert!(rt.spawn(|| -> u8 { panic!("remote boom") }).get() == Err(GreenletError::Panicked("remote boom".into())));
}

#[test]
fn threads_zero_is_an_error() {
    assert_eq!(Runtime::new(0).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn kill_a_remote_greenlet_from_a_thread_and_from_another_hub() {
    let rt = Arc::new(Runtime::new(2).unwrap());
    let drops = Arc::new(AtomicUsize::new(0));
    let d = Dropped(drops.clone());
    let started = Arc::new(Event::new());
    let s = started.clone();
    let g = rt.spawn_on(1, move || {
        let _d = d;
        s.set();
        greenhub::sleep(LONG);
    });
    started.wait();
    assert!(!g.ready());
    g.kill();
    assert_eq!(g.get(), Err(GreenletError::Killed));
    assert_eq!(drops.load(Ordering::SeqCst), 1, "its destructors ran");

    // From hub 0, kill a greenlet parked on a channel on hub 1.
    let (_tx, rx) = channel::unbounded::<u8>();
    let victim = Arc::new(rt.spawn_on(1, move || rx.recv()));
    let v = victim.clone();
    let killer = rt.spawn_on(0, move || {
        greenhub::sleep(Duration::from_millis(5));
        v.kill();
        v.join();
        v.ready()
    });
    assert_eq!(killer.get(), Ok(true));
    let victim = Arc::try_unwrap(victim).unwrap();
    assert_eq!(victim.get(), Err(GreenletError::Killed));

    // Killed before it ever ran: it never runs.
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let g = rt.spawn_on(0, move || r.fetch_add(1, Ordering::SeqCst));
    g.kill();
    let out = g.get();
    assert!(out == Err(GreenletError::Killed) || out == Ok(0), "{out:?}");
    assert_eq!(ran.load(Ordering::SeqCst), usize::from(out.is_ok()));
}

#[test]
fn join_timeout_and_ready() {
    let rt = Runtime::new(1).unwrap();
    let g = rt.spawn(|| greenhub::sleep(Duration::from_millis(30)));
    assert!(!g.join_timeout(Duration::from_millis(1)));
    assert!(g.join_timeout(LONG));
    assert!(g.ready());
    assert_eq!(g.get(), Ok(()));
}

#[test]
fn hub_handle_spawn_returns_the_result_and_reports_an_exited_hub() {
    let h = greenhub::io::HubHandle::current().unwrap();
    assert_eq!(h.spawn(|| 40 + 2).get(), Ok(42));
    // A hub whose thread exits with a greenlet parked: the handle says it was abandoned.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let h = greenhub::io::HubHandle::current().unwrap();
        let parked = h.spawn(|| greenhub::sleep(LONG));
        greenhub::yield_now(); // it starts and parks
        tx.send((h, parked)).unwrap();
    })
    .join()
    .unwrap();
    let (h, parked) = rx.recv().unwrap();
    match parked.get() {
        Err(GreenletError::Panicked(m)) => assert!(m.contains("abandoned"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Spawning on a hub whose thread is gone: dropped unrun, reported.
    match h.spawn(|| 1).get() {
        Err(GreenletError::Panicked(m)) => assert!(m.contains("before it ran"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn channel_order_per_sender_and_close() {
    let (tx, rx) = channel::bounded(4);
    let senders: Vec<_> = (0..3u32)
        .map(|s| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..1000u32 {
                    tx.send((s, i)).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u32; 3];
    for (s, i) in rx.iter() {
        assert_eq!(i, next[s as usize], "sender {s} out of order");
        next[s as usize] += 1;
    }
    assert_eq!(next, [1000; 3]);
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    for s in senders {
        s.join().unwrap();
    }

    // Buffered items are received before the close is.
    let (tx, rx) = channel::unbounded();
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    drop(tx);
    assert_eq!((rx.recv(), rx.recv(), rx.recv()), (Ok(1), Ok(2), Err(RecvError)));

    // Receivers gone: a send gives its item back; buffered items are dropped.
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = channel::bounded(2);
    tx.send(Dropped(drops.clone())).unwrap();
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    let back = tx.send(Dropped(drops.clone())).unwrap_err().into_inner();
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(back);
    assert!(matches!(tx.try_send(Dropped(drops.clone())), Err(TrySendError::Disconnected(_))));
}

#[test]
fn a_blocked_sender_fails_when_the_receivers_go() {
    let rt = Runtime::new(1).unwrap();
    let (tx, rx) = channel::bounded::<u32>(1);
    tx.send(1).unwrap();
    let g = rt.spawn(move || tx.send(2).map_err(|e| e.into_inner()));
    assert!(!g.join_timeout(Duration::from_millis(10)), "it waits for room");
    drop(rx);
    assert_eq!(g.get(), Ok(Err(2)));
}

#[test]
fn timeouts_and_try_forms() {
    let (tx, rx) = channel::bounded::<u32>(1);
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    tx.send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    assert_eq!(tx.send_timeout(3, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(3)));
    assert_eq!(rx.recv_timeout(LONG), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(tx);
    assert_eq!(rx.recv_timeout(LONG), Err(RecvTimeoutError::Disconnected));

    // with_timeout around a channel wait unwinds it and leaves no stale waiter behind:
    // the next item is not lost to the dead waiter.
    let (tx, rx) = channel::unbounded::<u32>();
    let r = with_timeout(Duration::from_millis(5), || rx.recv());
    assert_eq!(r, Err(TimedOut));
    tx.send(9).unwrap();
    assert_eq!(rx.try_recv(), Ok(9));
}

#[test]
fn rendezvous_hands_over_between_thread_and_hub() {
    let rt = Runtime::new(1).unwrap();
    let (tx, rx) = channel::rendezvous::<u32>();
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)), "nobody is receiving");
    let g = rt.spawn(move || (0..5).map(|_| rx.recv().unwrap()).collect::<Vec<_>>());
    for i in 0..5 {
        tx.send(i).unwrap(); // each waits for the greenlet's receive
    }
    assert_eq!(g.get(), Ok(vec![0, 1, 2, 3, 4]));
    assert_eq!(tx.send_timeout(9, Duration::from_millis(5)), Err(SendTimeoutError::Disconnected(9)));
}

#[test]
fn an_item_handed_to_a_killed_receiver_goes_to_the_next() {
    // One hub: both receivers wait (in order); the send serves the first; it is killed
    // before it runs; its guard passes the item on to the second.
    let (tx, rx) = channel::unbounded::<u32>();
    let (rx1, rx2) = (rx.clone(), rx.clone());
    let first = spawn(move || rx1.recv());
    let second = spawn(move || rx2.recv());
    yield_now(); // both park
    tx.send(1).unwrap();
    first.kill();
    assert_eq!(first.get(), Err(GreenletError::Killed));
    assert_eq!(second.get(), Ok(Ok(1)));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "not duplicated");

    // The same for a timed-out receiver (with_timeout unwinding after the hand-over).
    let rx3 = rx.clone();
    let timed = spawn(move || with_timeout(Duration::from_millis(1), || rx3.recv()));
    yield_now();
    std::thread::sleep(Duration::from_millis(5)); // its deadline passes; the hub has not run
    tx.send(2).unwrap(); // served to it, but its timer fires first when the hub runs
    let r = timed.get().unwrap();
    match r {
        Ok(v) => assert_eq!(v, Ok(2)), // the item won
        Err(TimedOut) => assert_eq!(rx.try_recv(), Ok(2), "passed on to the channel"),
    }
}

#[test]
fn a_million_messages_across_two_hubs_nothing_lost_or_duplicated() {
    const PER: u32 = 500_000;
    let rt = Runtime::new(2).unwrap();
    let (tx, rx) = channel::bounded::<u32>(1024);
    let producers: Vec<_> = (0..2u32)
        .map(|p| {
            let tx = tx.clone();
            rt.spawn_on(p as usize, move || {
                for i in 0..PER {
                    tx.send(p * PER + i).unwrap();
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..2)
        .map(|h| {
            let rx = rx.clone();
            rt.spawn_on(h, move || {
                let mut seen = Vec::new();
                let mut last = [None::<u32>; 2];
                for v in rx.iter() {
                    let p = (v / PER) as usize;
                    assert!(last[p].is_none_or(|l| l < v), "order of producer {p}");
                    last[p] = Some(v);
                    seen.push(v);
                }
                seen
            })
        })
        .collect();
    drop(rx);
    let mut count = vec![0u8; 2 * PER as usize];
    let mut per_hub = Vec::new();
    for c in consumers {
        let seen = c.get().unwrap();
        per_hub.push(seen.len());
        for v in seen {
            count[v as usize] += 1;
        }
    }
    for p in producers {
        p.get().unwrap();
    }
    assert!(count.iter().all(|&c| c == 1), "every message exactly once");
    assert_eq!(per_hub.iter().sum::<usize>(), 2 * PER as usize);
}

#[test]
fn shutdown_kills_parked_greenlets_and_runs_their_destructors() {
    let rt = Runtime::new(2).unwrap();
    let drops = Arc::new(AtomicUsize::new(0));
    let ev = Arc::new(Event::new());
    let (_tx, rx) = channel::unbounded::<u8>();
    let mut gs = Vec::new();
    for hub in 0..2 {
        let (d1, d2, d3) = (Dropped(drops.clone()), Dropped(drops.clone()), Dropped(drops.clone()));
        gs.push(rt.spawn_on(hub, move || {
            let _d = d1;
            greenhub::sleep(LONG);
        }));
        let rx = rx.clone();
        gs.push(rt.spawn_on(hub, move || {
            let _d = d2;
            let _ = rx.recv();
        }));
        let ev = ev.clone();
        gs.push(rt.spawn_on(hub, move || {
            let _d = d3;
            ev.wait();
        }));
    }
    let quick = rt.spawn(|| {
        greenhub::sleep(Duration::from_millis(1));
        "finished in the grace period"
    });
    rt.shutdown(Duration::from_millis(50));
    assert_eq!(quick.get(), Ok("finished in the grace period"));
    for g in gs {
        assert_eq!(g.get(), Err(GreenletError::Killed));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 6);
}

#[test]
fn drop_of_the_runtime_stops_it() {
    let rt = Runtime::new(2).unwrap();
    let g = rt.spawn(|| greenhub::sleep(LONG));
    drop(rt);
    assert_eq!(g.get(), Err(GreenletError::Killed));
}

#[test]
fn shared_event_and_semaphore_across_hubs() {
    let rt = Runtime::new(2).unwrap();
    let ev = Arc::new(Event::new());
    let started = Arc::new(Semaphore::new(0));
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (ev, started) = (ev.clone(), started.clone());
            rt.spawn(move || {
                let timed_out = !ev.wait_timeout(Duration::from_millis(1));
                started.release().unwrap();
                ev.wait();
                timed_out
            })
        })
        .collect();
    for _ in 0..4 {
        started.acquire_forget(); // this plain thread blocks until all four timed out
    }
    ev.set();
    for w in waiters {
        assert_eq!(w.get(), Ok(true));
    }

    // At most two holders at a time, across hubs.
    let sem = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let gs: Vec<_> = (0..8)
        .map(|_| {
            let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
            rt.spawn(move || {
                let _p = sem.acquire();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(n, Ordering::SeqCst);
                greenhub::sleep(Duration::from_millis(2));
                inside.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for g in gs {
        g.get().unwrap();
    }
    assert_eq!(max.load(Ordering::SeqCst), 2);
    assert_eq!(sem.available(), 2);

    // A permit handed to a waiter that is killed before it runs is passed on.
    let sem = Arc::new(Semaphore::new(0));
    let (s1, s2) = (sem.clone(), sem.clone());
    let first = spawn(move || drop(s1.acquire()));
    let second = spawn(move || s2.acquire_timeout(LONG).is_some());
    yield_now();
    sem.release().unwrap(); // to `first`
    first.kill();
    assert_eq!(first.get(), Err(GreenletError::Killed));
    assert_eq!(second.get(), Ok(true));
    assert_eq!(sem.available(), 1);
    // A failed try_acquire takes nothing and adds nothing.
    let none = Semaphore::new(0);
    assert!(none.try_acquire().is_none());
    assert_eq!(none.available(), 0);
    let bounded = Semaphore::bounded(1);
    assert_eq!(bounded.release(), Err(greenhub::sync::SemaphoreFull));
}

#[test]
fn select_takes_exactly_one_ready_item() {
    let (a_tx, a) = channel::unbounded::<u32>();
    let (b_tx, b) = channel::unbounded::<&str>();
    b_tx.send("b1").unwrap();
    a_tx.send(1).unwrap();
    // Both ready: the case added first wins; the other item stays.
    let got = Select::new().recv(&a, |v| format!("a{}", v.unwrap())).recv(&b, |v| v.unwrap().to_string()).wait();
    assert_eq!(got, "a1");
    assert_eq!(b.try_recv(), Ok("b1"));
    // Nothing ready: times out, takes nothing.
    let got = Select::new().recv(&a, |_| 0).recv(&b, |_| 1).wait_timeout(Duration::from_millis(5));
    assert_eq!(got, None);
    // Ready later, from another thread.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        b_tx.send("late").unwrap();
        b_tx // keep b open
    });
    let got = Select::new().recv(&a, |_| "a".to_string()).recv(&b, |v| v.unwrap().to_string()).wait_timeout(LONG);
    assert_eq!(got.as_deref(), Some("late"));
    let b_tx = t.join().unwrap();
    // A closed channel is ready with Err.
    drop(a_tx);
    let got = Select::new().recv(&a, |v| v.is_err()).recv(&b, |_| false).wait();
    assert!(got);
    drop(b_tx);

    // A select killed after an item was handed to it passes the item on.
    let (tx, rx) = channel::unbounded::<u32>();
    let (_otx, other) = channel::unbounded::<u32>();
    let rx2 = rx.clone();
    let sel = spawn(move || Select::new().recv(&other, |_| 0).recv(&rx2, |v| v.unwrap()).wait());
    yield_now();
    tx.send(5).unwrap();
    sel.kill();
    assert_eq!(sel.get(), Err(GreenletError::Killed));
    assert_eq!(rx.try_recv(), Ok(5));
}

#[test]
fn plain_threads_block_on_channels() {
    let (tx, rx) = channel::bounded::<u32>(0);
    let t = std::thread::spawn(move || rx.recv());
    std::thread::sleep(Duration::from_millis(5));
    tx.send(3).unwrap();
    assert_eq!(t.join().unwrap(), Ok(3));
}

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn runtimes_leak_no_fds_or_threads() {
    if !common::is_child() {
        // Alone in a process: the other tests' threads and fds would blur the counts.
        common::child("runtimes_leak_no_fds_or_threads", Duration::from_secs(60)).assert_ok();
        return;
    }
    // Warm up what stays for the process's life (the threadpool, the blocking monitor).
    Runtime::new(2).unwrap().run(|_| ());
    let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
    for _ in 0..20 {
        let rt = Runtime::new(2).unwrap();
        let (tx, rx) = channel::unbounded::<u32>();
        let parked = rt.spawn_on(1, move || rx.recv());
        assert_eq!(rt.run(|i| i), [0, 1]);
        rt.shutdown(Duration::from_millis(1));
        assert_eq!(parked.get(), Err(GreenletError::Killed));
        drop(tx);
    }
    let links = || {
        let mut v: Vec<_> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .map(|e| std::fs::read_link(e.unwrap().path()).map(|p| p.display().to_string()).unwrap_or_default())
            .collect();
        v.sort();
        v
    };
    assert_eq!((count("/proc/self/fd"), count("/proc/self/task")), (fds, threads), "{:?}", links());
}

#[test]
fn an_item_or_permit_handed_to_a_greenlet_of_an_exited_hub_is_passed_on() {
    let (tx, rx) = channel::unbounded::<u32>();
    let sem = Arc::new(Semaphore::new(0));
    let (rx2, sem2) = (rx.clone(), sem.clone());
    std::thread::spawn(move || {
        // Parked on the channel and on the semaphore when the thread exits: abandoned.
        let _a = spawn(move || rx2.recv());
        let _b = spawn(move || drop(sem2.acquire()));
        yield_now();
    })
    .join()
    .unwrap();
    tx.send(7).unwrap(); // served to the dead receiver first: taken back
    assert_eq!(rx.try_recv(), Ok(7));
    sem.release().unwrap(); // handed to the dead waiter first: passed on
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_timed_channel_wait_inside_no_unwind_ends_early_at_a_kill() {
    // Inside a hook (ffi::no_unwind) a kill cannot be thrown: a timed channel wait ends
    // early with its timeout error (as `sleep` does there), later timed waits too, and
    // the pending kill decides the outcome.
    let (_tx, rx) = channel::unbounded::<u32>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let g = spawn(move || {
        let _ = greenhub::ffi::no_unwind(|| {
            let t = std::time::Instant::now();
            let first = rx.recv_timeout(LONG); // parks; the kill ends it early
            let second = rx.recv_timeout(LONG); // ends at once: the kill is pending
            s.lock().unwrap().push((first, second, t.elapsed()));
        });
    });
    yield_now();
    g.kill();
    assert_eq!(g.get(), Err(GreenletError::Killed));
    let seen = seen.lock().unwrap();
    let (first, second, took) = seen[0];
    assert_eq!((first, second), (Err(RecvTimeoutError::Timeout), Err(RecvTimeoutError::Timeout)));
    assert!(took < LONG / 2, "{took:?}: the waits did not end early");
}
