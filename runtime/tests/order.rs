//! Scheduling order, checked against gevent 26 (the same programs in Python print the
//! same sequences).

use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::{joinall, sleep, spawn, yield_now, Builder};

use common::{joined, log, push};
use greenhub_testkit as common;

#[test]
fn foo_bar_demo_sleeps_80_and_20_ms() {
    // gevent: foo prints ok1, sleeps 0.08, prints ok3; bar prints ok2, sleeps 0.02, ok4.
    let l = log();
    let t = Instant::now();
    let (a, b) = (l.clone(), l.clone());
    let foo = spawn(move || {
        push(&a, "ok1");
        sleep(Duration::from_millis(80));
        push(&a, "ok3");
    });
    let bar = spawn(move || {
        push(&b, "ok2");
        sleep(Duration::from_millis(20));
        push(&b, "ok4");
    });
    joinall([&foo, &bar]);
    assert_eq!(joined(&l), "ok1 ok2 ok4 ok3");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(took < Duration::from_millis(80 * 4), "the sleeps overlapped: {took:?}");
}

#[test]
fn round_robin_sleep_zero() {
    let l = log();
    let gs: Vec<_> = [("a", 3), ("b", 2), ("c", 1)]
        .into_iter()
        .map(|(name, n)| {
            let l = l.clone();
            spawn(move || {
                for i in 0..n {
                    push(&l, format!("{name}{i}"));
                    sleep(Duration::ZERO);
                }
            })
        })
        .collect();
    push(&l, "spawned");
    joinall(&gs);
    push(&l, "done");
    assert_eq!(joined(&l), "spawned a0 b0 c0 a1 b1 a2 done");
}

#[test]
fn spawn_inside_a_greenlet_goes_to_the_back_of_the_queue() {
    let l = log();
    let (p, o) = (l.clone(), l.clone());
    let parent = spawn(move || {
        push(&p, "p-start");
        let c = p.clone();
        let child = spawn(move || push(&c, "child"));
        push(&p, "p-spawned");
        yield_now();
        push(&p, "p-end");
        child
    });
    let other = spawn(move || push(&o, "other"));
    joinall([&parent as &dyn greenhub::Join, &other]);
    assert_eq!(joined(&l), "p-start p-spawned other child p-end");
    assert!(parent.get().unwrap().ready());
}

#[test]
fn spawn_does_not_switch_and_greenlets_start_in_spawn_order() {
    let l = log();
    let gs: Vec<_> = (0..5)
        .map(|i| {
            let l = l.clone();
            spawn(move || push(&l, format!("g{i}")))
        })
        .collect();
    push(&l, "spawner");
    assert!(gs.iter().all(|g| !g.ready()));
    joinall(&gs);
    assert_eq!(joined(&l), "spawner g0 g1 g2 g3 g4");
}

#[test]
fn equal_deadlines_wake_in_the_order_they_were_set() {
    let l = log();
    let deadline = Duration::from_millis(15);
    // Spawned in one go, so the three 15 ms sleeps start within microseconds of each
    // other; z sleeps 5 ms and wakes first.
    let gs: Vec<_> = [("x", deadline), ("y", deadline), ("z", Duration::from_millis(5))]
        .into_iter()
        .map(|(n, d)| {
            let l = l.clone();
            spawn(move || {
                sleep(d);
                push(&l, n);
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(joined(&l), "z x y");
}

/// The switch countdown goes on across the loop's turns: a greenlet that yields to a
/// child that exits at once, over and over, makes the loop run at every turn (to finish
/// the child) without a look at the clock of its own, and timers still fire.
#[test]
fn timers_fire_while_greenlets_churn_through_the_loop() {
    std::thread::spawn(|| {
        let fired = Rc::new(std::cell::Cell::new(false));
        let f = fired.clone();
        let _timer = spawn(move || {
            sleep(Duration::from_millis(10));
            f.set(true);
        });
        let f = fired.clone();
        let churn = spawn(move || {
            let t = Instant::now();
            let mut children = 0u64;
            while !f.get() {
                let _child = spawn(|| ());
                yield_now(); // to the child, which exits: the loop finishes it, then here
                children += 1;
                assert!(t.elapsed() < Duration::from_secs(5), "the timer never fired");
            }
            children
        });
        assert!(churn.get().unwrap() > 0);
        assert!(fired.get());
    })
    .join()
    .unwrap();
}

#[test]
fn expired_timers_fire_after_the_ready_queue_drains() {
    let l = log();
    let s = l.clone();
    let sleeper = spawn(move || {
        sleep(Duration::from_millis(1));
        push(&s, "timer");
    });
    let b = l.clone();
    let busy = spawn(move || {
        // Let the sleeper park, then burn past its deadline without waiting.
        yield_now();
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(3) {}
        push(&b, "busy-1");
        yield_now(); // the timer has expired, but ready greenlets run first
        push(&b, "busy-2");
    });
    joinall([&sleeper, &busy]);
    assert_eq!(joined(&l), "busy-1 busy-2 timer");
}

#[test]
fn join_from_inside_a_greenlet_and_value() {
    let l = log();
    let w = l.clone();
    let worker = Rc::new(spawn(move || {
        sleep(Duration::from_millis(10));
        push(&w, "worker");
        5
    }));
    let (j, wk) = (l.clone(), worker.clone());
    let joiner = spawn(move || {
        wk.join();
        push(&j, format!("joiner sees {:?}", wk.value()));
    });
    joiner.join();
    assert_eq!(joined(&l), "worker joiner sees Some(5)");
    assert!(worker.successful());
    assert_eq!(worker.value(), Some(5));
}

#[test]
fn many_joiners_wake_in_order() {
    let l = log();
    let target = Rc::new(spawn(|| sleep(Duration::from_millis(5))));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (l, t) = (l.clone(), target.clone());
            spawn(move || {
                t.join();
                push(&l, format!("j{i}"));
            })
        })
        .collect();
    joinall(&gs);
    assert_eq!(joined(&l), "j0 j1 j2 j3");
}

#[test]
fn builder_names_and_current_name() {
    assert_eq!(greenhub::current_name(), None);
    let g = Builder::new().name("worker-1").stack_size(64 * 1024).spawn(greenhub::current_name);
    assert_eq!(g.name(), "worker-1");
    assert_eq!(g.get(), Ok(Some("worker-1".to_string())));
    let anon = spawn(greenhub::current_name);
    let want = format!("greenlet-{}", anon.id());
    assert_eq!(anon.name(), want);
    assert_eq!(anon.get(), Ok(Some(want)));
}

#[test]
fn builder_stack_size_is_honoured() {
    // 900 KiB of locals: overflows the 256 KiB default, fits in 1 MiB.
    let g = Builder::new().stack_size(1024 * 1024).spawn(|| {
        let mut big = [0u8; 900 * 1024];
        for (i, b) in big.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        std::hint::black_box(&big).iter().map(|&b| b as u64).sum::<u64>()
    });
    let want: u64 = (0..900 * 1024u64).map(|i| i % 251).sum();
    assert_eq!(g.get(), Ok(want));
}

#[test]
fn spawn_later_starts_after_the_delay() {
    let t = Instant::now();
    let l = log();
    let (a, b) = (l.clone(), l.clone());
    let late = greenhub::spawn_later(Duration::from_millis(30), move || push(&a, "late"));
    let now = spawn(move || push(&b, "now"));
    joinall([&late, &now]);
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(joined(&l), "now late");
}

#[test]
fn run_waits_for_every_greenlet() {
    let l = log();
    for i in 0..3u64 {
        let l = l.clone();
        spawn(move || {
            sleep(Duration::from_millis(10 * (3 - i)));
            push(&l, format!("r{i}"));
        });
    }
    greenhub::run();
    assert_eq!(joined(&l), "r2 r1 r0");
    assert_eq!(greenhub::stats().greenlets, 0);
}

#[test]
fn ten_thousand_concurrent_sleepers() {
    let t = Instant::now();
    let gs: Vec<_> = (0..10_000)
        .map(|i| {
            spawn(move || {
                sleep(Duration::from_millis(200));
                i
            })
        })
        .collect();
    joinall(&gs);
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(200));
    assert!(took < Duration::from_millis(1500), "10,000 sleepers took {took:?}");
    let sum: u64 = gs.into_iter().map(|g| g.get().unwrap()).sum();
    assert_eq!(sum, (0..10_000).sum());
}

/// Sets its flag when dropped.
struct Dropped(Rc<std::cell::Cell<bool>>);
impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn a_finished_greenlets_value_drops_with_its_handle() {
    let flag = Rc::new(std::cell::Cell::new(false));
    let f = flag.clone();
    let g = spawn(move || Dropped(f));
    g.join();
    assert!(!flag.get(), "the value waits for its handle");
    drop(g);
    assert!(flag.get(), "dropped with the handle");
    // Task memory is reused by later spawns without touching anything else.
    let gs: Vec<_> = (0..100).map(|i| spawn(move || i)).collect();
    joinall(&gs);
    assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).sum::<i32>(), 4950);
}

#[test]
fn a_detached_greenlets_value_drops_when_it_finishes() {
    let flag = Rc::new(std::cell::Cell::new(false));
    let f = flag.clone();
    drop(spawn(move || {
        sleep(Duration::from_millis(5));
        Dropped(f)
    }));
    sleep(Duration::from_millis(30));
    assert!(flag.get(), "nobody can read it, so it is dropped at once");
}
