//! Event, AsyncResult, Semaphore, Mutex, Queue, JoinableQueue, Pool, Group: orders
//! checked against gevent 26, and kill/timeout safety (no stale waiter, no lost wake-up).

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::pool::{Group, Pool};
use greenhub::queue::{JoinableQueue, Queue};
use greenhub::sync::{AsyncResult, Event, Mutex, Semaphore, SemaphoreFull};
use greenhub::{joinall, sleep, spawn, with_timeout, yield_now, GreenletError, TimedOut};

use common::{joined, log, push};
use greenhub_testkit as common;

#[test]
fn bounded_queue_producer_consumer_order() {
    let l = log();
    let q = Rc::new(Queue::bounded(3));
    let (pq, pl) = (q.clone(), l.clone());
    let producer = spawn(move || {
        for i in 0..6 {
            pq.put(i);
            push(&pl, format!("p{i}"));
        }
    });
    let (cq, cl) = (q.clone(), l.clone());
    let consumer = spawn(move || {
        for i in 0..6 {
            assert_eq!(cq.get(), i);
            push(&cl, format!("c{i}"));
        }
    });
    joinall([&producer, &consumer]);
    assert_eq!(joined(&l), "p0 p1 p2 c0 c1 c2 p3 p4 p5 c3 c4 c5");
}

#[test]
fn event_waiters_and_setter_order() {
    let l = log();
    let ev = Rc::new(Event::new());
    let mut gs: Vec<_> = (0..3)
        .map(|i| {
            let (e, l) = (ev.clone(), l.clone());
            spawn(move || {
                push(&l, format!("w{i}"));
                e.wait();
                push(&l, format!("r{i}"));
            })
        })
        .collect();
    let (e, sl) = (ev.clone(), l.clone());
    gs.push(spawn(move || {
        push(&sl, "set");
        e.set();
        push(&sl, "after-set");
    }));
    joinall(&gs);
    assert_eq!(joined(&l), "w0 w1 w2 set after-set r0 r1 r2");
}

#[test]
fn semaphore_of_two_with_four_users() {
    let l = log();
    let sem = Rc::new(Semaphore::new(2));
    let gs: Vec<_> = (0..4u64)
        .map(|i| {
            let (s, l) = (sem.clone(), l.clone());
            spawn(move || {
                let _permit = s.acquire();
                push(&l, format!("in{i}"));
                sleep(Duration::from_millis(25 * (i + 1)));
                push(&l, format!("out{i}"));
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(joined(&l), "in0 in1 out0 in2 out1 in3 out2 out3");
    assert_eq!(sem.available(), 2);
}

#[test]
fn pool_of_two_never_runs_more_than_two_and_map_keeps_input_order() {
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let out = pool.map(vec![30u64, 5, 20, 1, 10], move |ms| {
        r.set(r.get() + 1);
        p.set(p.get().max(r.get()));
        sleep(Duration::from_millis(ms));
        r.set(r.get() - 1);
        ms * 10
    });
    assert_eq!(out, [300, 50, 200, 10, 100]);
    assert_eq!(peak.get(), 2);
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn imap_unordered_yields_in_completion_order() {
    let pool = Pool::new(4);
    let out: Vec<u64> = pool
        .imap_unordered(vec![40u64, 10, 30, 20], |ms| {
            sleep(Duration::from_millis(ms));
            ms
        })
        .collect();
    assert_eq!(out, [10, 20, 30, 40]);
}

#[test]
fn pool_spawn_waits_while_full() {
    let l = log();
    let pool = Pool::new(2);
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let gl = l.clone();
            let g = pool.spawn(move || {
                push(&gl, format!("start{i}"));
                sleep(Duration::from_millis(5));
            });
            push(&l, format!("spawned{i}"));
            g
        })
        .collect();
    joinall(&gs);
    // The third spawn waits for a free slot: the first two must have run to the end.
    assert_eq!(joined(&l), "spawned0 spawned1 start0 start1 spawned2 spawned3 start2 start3");
    pool.join();
}

#[test]
fn pool_spawn_with_waits_while_full_and_keeps_the_builders_name_and_stack() {
    let l = log();
    let pool = Pool::new(1);
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let gl = l.clone();
            // 2 MiB stacks: a 384 KiB frame would overflow the default 256 KiB one.
            let b = greenhub::Builder::new().name(format!("member{i}")).stack_size(2 << 20);
            let g = pool.spawn_with(b, move || {
                push(&gl, format!("start{i}"));
                let big = std::hint::black_box([i as u8; 384 * 1024]);
                sleep(Duration::from_millis(2));
                (greenhub::current_name(), big.iter().map(|&b| u64::from(b)).sum::<u64>())
            });
            push(&l, format!("spawned{i}"));
            g
        })
        .collect();
    joinall(&gs);
    assert_eq!(joined(&l), "spawned0 start0 spawned1 start1 spawned2 start2");
    let got: Vec<_> = gs.iter().map(|g| g.value().unwrap()).collect();
    let want: Vec<_> = (0..3u64).map(|i| (Some(format!("member{i}")), i * 384 * 1024)).collect();
    assert_eq!(got, want);
    let group = Group::new();
    let g = group.spawn_with(greenhub::Builder::new().name("in-group"), greenhub::current_name);
    assert_eq!(g.get(), Ok(Some("in-group".to_string())));
}

#[test]
fn a_panic_in_a_pooled_greenlet_does_not_break_the_pool() {
    let pool = Pool::new(1);
    let bad = pool.spawn(|| -> u8 { panic!("pooled failure") });
    assert_eq!(bad.get(), Err(GreenletError::Panicked("pooled failure".into())));
    assert_eq!(pool.free_count(), 1);
    assert_eq!(pool.map(0..3, |x| x + 1), [1, 2, 3]);
}

#[test]
fn pool_kill_and_join() {
    let pool = Pool::new(3);
    let gs: Vec<_> = (0..3).map(|_| pool.spawn(|| sleep(Duration::from_secs(60)))).collect();
    yield_now();
    pool.kill();
    assert!(pool.join_timeout(Duration::from_secs(5)));
    assert!(gs.iter().all(|g| g.error() == Some(GreenletError::Killed)));
    assert_eq!(pool.free_count(), 3);
}

#[test]
fn group_is_unbounded() {
    let group = Group::new();
    let started = Rc::new(Cell::new(0));
    for _ in 0..50 {
        let s = started.clone();
        group.spawn(move || {
            s.set(s.get() + 1);
            sleep(Duration::from_millis(5));
        });
    }
    assert_eq!(group.len(), 50);
    yield_now();
    assert_eq!(started.get(), 50);
    group.join();
    assert!(group.is_empty());
}

#[test]
fn rendezvous_queue_put_waits_for_a_getter() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::bounded(0));
    assert_eq!(q.try_put(1), Err(1));
    let g = q.clone();
    let getter = spawn(move || g.get());
    yield_now(); // the getter waits
    assert!(!q.is_full());
    assert_eq!(q.try_put(2), Ok(()));
    assert_eq!(getter.get(), Ok(2));
    assert!(q.is_empty());
    let t = Instant::now();
    assert_eq!(q.put_timeout(3, Duration::from_millis(10)), Err(3));
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[test]
fn async_result_value_and_error() {
    let r: Rc<AsyncResult<u32>> = Rc::new(AsyncResult::new());
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let r = r.clone();
            spawn(move || r.get() + i)
        })
        .collect();
    assert_eq!(r.get_timeout(Duration::from_millis(1)), None);
    r.set(10);
    joinall(&gs);
    assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).collect::<Vec<_>>(), [10, 11, 12]);
    let e: AsyncResult<u32, String> = AsyncResult::new();
    e.set_error("refused".into());
    assert_eq!(e.result(), Err("refused".to_string()));
}

#[test]
fn mutex_serves_waiters_fifo() {
    let l = log();
    let m = Rc::new(Mutex::new(0));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (m, l) = (m.clone(), l.clone());
            spawn(move || {
                let mut v = m.lock();
                push(&l, format!("l{i}"));
                sleep(Duration::from_millis(2));
                *v += 1;
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(joined(&l), "l0 l1 l2 l3");
    assert_eq!(*m.lock(), 4);
}

#[test]
fn bounded_semaphore_refuses_extra_release() {
    let one = Semaphore::new(1);
    let held = one.try_acquire();
    assert!(held.is_some());
    assert!(one.try_acquire().is_none());
    assert_eq!(one.available(), 0, "a failed try_acquire must not release anything");
    drop(held);
    assert_eq!(one.available(), 1);
    let s = Semaphore::bounded(2);
    assert_eq!(s.release(), Err(SemaphoreFull));
    s.acquire_forget();
    assert_eq!(s.release(), Ok(()));
    assert_eq!(s.available(), 2);
}

#[test]
fn joinable_queue_join_waits_for_task_done() {
    let l = log();
    let q = Rc::new(JoinableQueue::unbounded());
    for i in 0..3 {
        q.put(i);
    }
    let (w, wl) = (q.clone(), l.clone());
    let _worker = spawn(move || loop {
        let job = w.get();
        sleep(Duration::from_millis(2));
        push(&wl, format!("done{job}"));
        w.task_done().unwrap();
    });
    q.join();
    push(&l, "joined");
    assert_eq!(joined(&l), "done0 done1 done2 joined");
}

// ---- kill and timeout safety: one test per primitive -------------------------------

#[test]
fn event_waiter_killed_or_timed_out_leaves_no_trace() {
    let ev = Rc::new(Event::new());
    let e = ev.clone();
    let dead = spawn(move || e.wait());
    let e = ev.clone();
    let timed = spawn(move || e.wait_timeout(Duration::from_millis(5)));
    yield_now();
    dead.kill();
    assert_eq!(timed.get(), Ok(false));
    let e = ev.clone();
    let live = spawn(move || e.wait());
    yield_now();
    ev.set();
    assert_eq!(live.get(), Ok(()));
    assert_eq!(dead.get(), Err(GreenletError::Killed));
}

#[test]
fn semaphore_permit_handed_to_a_killed_waiter_is_passed_on() {
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s = sem.clone();
    let victim = spawn(move || {
        let _p = s.acquire();
        unreachable!("killed before it runs");
    });
    let s = sem.clone();
    let next = spawn(move || {
        let _p = s.acquire();
        "got it"
    });
    yield_now(); // both wait, victim first
    drop(held); // hands the permit to the victim...
    victim.kill(); // ...which dies before using it
    assert_eq!(next.get(), Ok("got it"));
    assert_eq!(victim.get(), Err(GreenletError::Killed));
    assert_eq!(sem.available(), 1);
}

#[test]
fn semaphore_acquire_timeout_leaves_no_stale_waiter() {
    let sem = Rc::new(Semaphore::new(1));
    let held = sem.acquire();
    let s = sem.clone();
    let timed = spawn(move || s.acquire_timeout(Duration::from_millis(5)).is_some());
    assert_eq!(timed.get(), Ok(false));
    drop(held);
    assert_eq!(sem.available(), 1, "the release was not lost to the timed-out waiter");
    let r = with_timeout(Duration::from_millis(5), || {
        let _a = sem.acquire();
        let _b = sem.acquire(); // waits: the outer timeout unwinds it
    });
    assert_eq!(r, Err(TimedOut));
    assert_eq!(sem.available(), 1);
}

#[test]
fn mutex_waiter_killed_leaves_the_lock_usable() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let guard = m.lock();
    let mm = m.clone();
    let victim = spawn(move || mm.lock().push("victim"));
    let mm = m.clone();
    let next = spawn(move || mm.lock().push("next"));
    yield_now();
    victim.kill();
    drop(guard);
    next.join();
    assert_eq!(*m.lock(), ["next"]);
}

#[test]
fn queue_item_announced_to_a_killed_getter_goes_to_the_next() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::unbounded());
    let qq = q.clone();
    let victim = spawn(move || qq.get());
    let qq = q.clone();
    let next = spawn(move || qq.get());
    yield_now(); // both wait
    q.put(7); // wakes the victim...
    victim.kill(); // ...which dies before taking it
    assert_eq!(next.get(), Ok(7));
    assert_eq!(victim.get(), Err(GreenletError::Killed));
    assert!(q.is_empty());
}

#[test]
fn queue_get_and_put_timeouts() {
    let q: Rc<Queue<u32>> = Rc::new(Queue::bounded(1));
    assert_eq!(q.get_timeout(Duration::from_millis(3)), None);
    q.put(1);
    assert_eq!(q.put_timeout(2, Duration::from_millis(3)), Err(2));
    let qq = q.clone();
    let timed_getter = spawn(move || with_timeout(Duration::from_millis(3), || qq.get()));
    assert_eq!(timed_getter.get(), Ok(Ok(1)));
    let qq = q.clone();
    let timed_out = spawn(move || with_timeout(Duration::from_millis(3), || qq.get()));
    assert_eq!(timed_out.get(), Ok(Err(TimedOut)));
    q.put(3);
    assert_eq!(q.try_get(), Some(3), "the item was not lost to the timed-out getter");
}

#[test]
fn pool_spawner_killed_while_waiting_for_a_slot() {
    let pool = Pool::new(1);
    let busy = pool.spawn(|| sleep(Duration::from_millis(10)));
    let p = pool.clone();
    let waiting_spawner = spawn(move || p.spawn(|| "never").get());
    let p = pool.clone();
    let next_spawner = spawn(move || p.spawn(|| "ran").get());
    yield_now();
    waiting_spawner.kill();
    assert_eq!(next_spawner.get(), Ok(Ok("ran")));
    busy.join();
    assert_eq!(waiting_spawner.get().unwrap_err(), GreenletError::Killed);
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn joinable_queue_join_timeout() {
    let q = JoinableQueue::unbounded();
    q.put(1);
    assert!(!q.join_timeout(Duration::from_millis(2)));
    q.get();
    q.task_done().unwrap();
    assert!(q.join_timeout(Duration::from_millis(2)));
}

#[test]
fn group_has_the_pools_methods_and_never_waits() {
    let group = greenhub::pool::Group::new();
    assert!(!group.full());
    assert_eq!(group.free_count(), usize::MAX);
    assert_eq!(group.wait_available(), usize::MAX, "returns at once");
    let g = group.spawn_timeout(std::time::Duration::ZERO, || 4).unwrap_or_else(|_| panic!("a group always has room"));
    assert_eq!(group.len(), 1);
    assert_eq!(group.map(0..3, |i| i * 10), [0, 10, 20]);
    assert_eq!(group.apply(|| 6), 6);
    group.join();
    assert!(group.is_empty());
    assert_eq!(g.get(), Ok(4));
    assert_eq!(group.as_pool().len(), 0);
}
