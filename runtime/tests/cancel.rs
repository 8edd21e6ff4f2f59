//! Kill, timeouts and panics: unwinding from park points, isolation, exact outcomes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::{joinall, joinall_timeout, killall, sleep, spawn, with_timeout, yield_now, GreenletError, TimedOut};

/// Sets its flag when dropped.
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn kill_a_parked_greenlet_runs_its_drops_promptly() {
    let dropped = Rc::new(Cell::new(false));
    let after = Rc::new(Cell::new(false));
    let (d, a) = (dropped.clone(), after.clone());
    let g = spawn(move || {
        let _guard = DropFlag(d);
        sleep(Duration::from_secs(60));
        a.set(true);
    });
    yield_now(); // g starts and parks in sleep
    assert!(!g.ready());
    let t = Instant::now();
    g.kill();
    assert!(!dropped.get(), "kill only requests; the target unwinds when resumed");
    g.join();
    assert!(t.elapsed() < Duration::from_secs(1), "the kill was not prompt");
    assert!(dropped.get(), "the killed greenlet's destructors ran");
    assert!(!after.get());
    assert!(g.ready());
    assert!(!g.successful());
    assert_eq!(g.error(), Some(GreenletError::Killed));
    assert_eq!(g.get(), Err(GreenletError::Killed));
    assert_eq!(greenhub::stats().timers, 0, "the sleep's timer was withdrawn");
}

#[test]
fn kill_an_unstarted_greenlet_means_it_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let dropped = Rc::new(Cell::new(false));
    let (r, d) = (ran.clone(), dropped.clone());
    let guard = DropFlag(d);
    let g = spawn(move || {
        let _g = guard;
        r.set(true);
    });
    g.kill();
    assert!(g.ready(), "an unstarted greenlet dies at once");
    assert!(dropped.get(), "its closure was dropped");
    sleep(Duration::from_millis(5));
    assert!(!ran.get());
    assert_eq!(g.get(), Err(GreenletError::Killed));
}

#[test]
fn kill_a_spawn_later_greenlet_before_it_starts() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = greenhub::spawn_later(Duration::from_millis(10), move || r.set(true));
    g.kill();
    sleep(Duration::from_millis(30));
    assert!(!ran.get());
    assert_eq!(greenhub::stats().timers, 0);
    assert_eq!(g.get(), Err(GreenletError::Killed));
}

#[test]
fn kill_a_finished_greenlet_does_nothing() {
    let g = spawn(|| 3);
    g.join();
    g.kill();
    assert!(g.successful());
    assert_eq!(g.get(), Ok(3));
}

#[test]
fn killall_then_joinall() {
    let gs: Vec<_> = (0..5).map(|_| spawn(|| sleep(Duration::from_secs(30)))).collect();
    yield_now();
    killall(&gs);
    joinall(&gs);
    assert!(gs.iter().all(|g| g.error() == Some(GreenletError::Killed)));
}

#[test]
fn a_greenlet_can_kill_itself() {
    // The greenlet reaches its own handle through a shared cell.
    let after = Rc::new(Cell::new(false));
    let cell: Rc<RefCell<Option<Rc<greenhub::Greenlet<()>>>>> = Rc::default();
    let (c, a) = (cell.clone(), after.clone());
    let g = Rc::new(spawn(move || {
        let me = c.borrow().clone().unwrap();
        me.kill();
        a.set(true);
    }));
    *cell.borrow_mut() = Some(g.clone());
    g.join();
    *cell.borrow_mut() = None;
    assert!(!after.get());
    assert_eq!(g.error(), Some(GreenletError::Killed));
}

#[test]
fn with_timeout_fires_on_a_parked_body() {
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let t = Instant::now();
    let r = with_timeout(Duration::from_millis(20), move || {
        let _g = DropFlag(d);
        sleep(Duration::from_secs(60));
    });
    assert_eq!(r, Err(TimedOut));
    assert!(dropped.get());
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(greenhub::stats().timers, 0);
}

#[test]
fn nested_timeouts_only_the_inner_fires() {
    let g = spawn(|| {
        let outer = with_timeout(Duration::from_millis(300), || {
            let inner = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(60)));
            assert_eq!(inner, Err(TimedOut));
            sleep(Duration::from_millis(20));
            "outer body finished"
        });
        assert_eq!(outer, Ok("outer body finished"));
        // The outer scope finished in time: it must never fire later.
        sleep(Duration::from_millis(400));
        "survived"
    });
    assert_eq!(g.get(), Ok("survived"));
}

#[test]
fn an_outer_timeout_unwinds_through_an_inner_scope() {
    let inner_returned = Rc::new(Cell::new(false));
    let ir = inner_returned.clone();
    let r = with_timeout(Duration::from_millis(10), move || {
        let inner = with_timeout(Duration::from_secs(60), || sleep(Duration::from_secs(60)));
        ir.set(true);
        inner
    });
    assert_eq!(r, Err(TimedOut));
    assert!(!inner_returned.get());
    assert_eq!(greenhub::stats().timers, 0);
}

#[test]
fn a_finished_timeout_never_fires_later() {
    for _ in 0..3 {
        assert_eq!(with_timeout(Duration::from_millis(5), || 1), Ok(1));
    }
    // Waiting past all three deadlines is not interrupted.
    sleep(Duration::from_millis(30));
    let g = spawn(|| {
        assert_eq!(with_timeout(Duration::from_millis(5), yield_now), Ok(()));
        sleep(Duration::from_millis(30));
        "no stray timeout"
    });
    assert_eq!(g.get(), Ok("no stray timeout"));
}

#[test]
fn a_million_timeouts_leave_the_timer_heap_flat() {
    let before = greenhub::stats();
    let g = spawn(|| {
        let mut sum = 0u64;
        for i in 0..1_000_000u64 {
            sum += with_timeout(Duration::from_secs(10), || i).unwrap();
        }
        sum
    });
    assert_eq!(g.get(), Ok((0..1_000_000u64).sum()));
    let after = greenhub::stats();
    assert_eq!(after.timers, 0);
    assert!(after.timer_slots <= before.timer_slots + 1, "{before:?} -> {after:?}");
}

#[test]
fn joinall_timeout_does_not_kill_the_laggards() {
    let fast = spawn(|| 1);
    let slow = spawn(|| {
        sleep(Duration::from_millis(60));
        2
    });
    assert!(!joinall_timeout([&fast, &slow], Duration::from_millis(10)));
    assert!(fast.ready());
    assert!(!slow.ready(), "joinall_timeout gave up but must not kill");
    assert!(joinall_timeout([&fast, &slow], Duration::from_secs(5)));
    assert_eq!(slow.get(), Ok(2));
}

#[test]
fn join_timeout_reports_and_leaves_running() {
    let g = spawn(|| {
        sleep(Duration::from_millis(50));
        "done"
    });
    assert!(!g.join_timeout(Duration::from_millis(5)));
    assert!(!g.ready());
    assert!(g.join_timeout(Duration::from_secs(5)));
    assert_eq!(g.get(), Ok("done"));
}

#[test]
fn a_panicking_greenlet_does_not_disturb_the_others() {
    let count = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..6)
        .map(|i| {
            let c = count.clone();
            greenhub::Builder::new().name(format!("w{i}")).spawn(move || {
                sleep(Duration::from_millis(5));
                if i == 2 {
                    panic!("worker {i} failed");
                }
                sleep(Duration::from_millis(5));
                c.set(c.get() + 1);
                i
            })
        })
        .collect();
    joinall(&gs); // join returns normally for the panicked one too
    assert_eq!(count.get(), 5);
    let outcomes: Vec<_> = gs.into_iter().map(|g| g.get()).collect();
    assert_eq!(
        outcomes,
        vec![Ok(0), Ok(1), Err(GreenletError::Panicked("worker 2 failed".into())), Ok(3), Ok(4), Ok(5)]
    );
    // The hub still works.
    assert_eq!(spawn(|| 9).get(), Ok(9));
}

/// Runs the named test of this binary in a child process and returns its stderr.
fn child_stderr(test: &str) -> String {
    greenhub_testkit::child(test, Duration::from_secs(60)).stderr
}

#[test]
fn child_panicking_greenlet() {
    if !greenhub_testkit::is_child() {
        return;
    }
    let g = greenhub::Builder::new().name("boomer").spawn(|| -> () { panic!("kaboom {}", 42) });
    g.join();
    eprintln!("joined: {:?}", g.get());
}

#[test]
fn panic_message_is_printed_once_with_the_greenlet_name() {
    let err = child_stderr("child_panicking_greenlet");
    assert_eq!(err.matches("kaboom 42").count(), 2, "once by the hook, once in the joined line:\n{err}");
    let at = format!("greenlet 'boomer' (#1) panicked at {}:", file!());
    assert!(err.contains(&at), "{err}");
    assert!(err.contains("joined: Err(Panicked(\"kaboom 42\"))"), "{err}");
    assert!(!err.contains("thread '"), "the thread-level report is replaced:\n{err}");
}

#[test]
fn killed_greenlets_and_timeouts_print_nothing() {
    if greenhub_testkit::is_child() {
        let g = spawn(|| sleep(Duration::from_secs(5)));
        yield_now();
        g.kill();
        g.join();
        let _ = with_timeout(Duration::from_millis(1), || sleep(Duration::from_secs(5)));
        eprintln!("quiet");
        return;
    }
    let err = child_stderr("killed_greenlets_and_timeouts_print_nothing");
    assert_eq!(err.trim(), "quiet");
}

#[test]
fn a_greenlet_killed_while_it_yields_unwinds_at_its_next_turn() {
    // g yields in a loop (each yield switches straight to the next ready greenlet); k
    // kills it while it waits in the run queue. `kill` is a request (it does not wait):
    // k goes on, and g unwinds out of its `yield_now` when it is next switched to.
    let log: Rc<RefCell<Vec<&'static str>>> = Rc::default();
    struct Unwound(Rc<RefCell<Vec<&'static str>>>);
    impl Drop for Unwound {
        fn drop(&mut self) {
            self.0.borrow_mut().push("g unwound");
        }
    }
    let l = log.clone();
    let g = Rc::new(spawn(move || {
        let _unwound = Unwound(l.clone());
        loop {
            l.borrow_mut().push("g");
            yield_now();
        }
    }));
    let (g2, l2) = (g.clone(), log.clone());
    let k = spawn(move || {
        for _ in 0..2 {
            l2.borrow_mut().push("k");
            yield_now();
        }
        g2.kill();
        l2.borrow_mut().push("k killed g");
    });
    k.join();
    assert_eq!(g.error(), Some(GreenletError::Killed));
    assert_eq!(*log.borrow(), ["g", "k", "g", "k", "g", "k killed g", "g unwound"]);
}
