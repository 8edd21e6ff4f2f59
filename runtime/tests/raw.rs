//! Manual switching and generators.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use greenhub::raw::{Generator, Greenlet};

type Slot<V> = Rc<RefCell<Option<Greenlet<V>>>>;

#[test]
fn greenlet_module_demo_prints_12_56_34_then_78() {
    let out = Rc::new(RefCell::new(Vec::new()));
    let gr1: Slot<()> = Rc::default();
    let gr2: Slot<()> = Rc::default();
    let (o, g2) = (out.clone(), gr2.clone());
    *gr1.borrow_mut() = Some(Greenlet::new(move |()| {
        o.borrow_mut().push(12);
        g2.borrow().clone().unwrap().switch(());
        o.borrow_mut().push(34);
    }));
    let (o, g1) = (out.clone(), gr1.clone());
    *gr2.borrow_mut() = Some(Greenlet::new(move |()| {
        o.borrow_mut().push(56);
        g1.borrow().clone().unwrap().switch(());
        o.borrow_mut().push(78);
    }));
    let (a, b) = (gr1.borrow().clone().unwrap(), gr2.borrow().clone().unwrap());
    a.switch(());
    assert_eq!(*out.borrow(), [12, 56, 34]);
    assert!(a.is_dead() && !b.is_dead());
    b.switch(());
    assert_eq!(*out.borrow(), [12, 56, 34, 78]);
    assert!(b.is_dead());
    *gr1.borrow_mut() = None;
    *gr2.borrow_mut() = None;
}

#[test]
fn values_pass_through_switch_and_return_goes_to_the_parent() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let play: Slot<String> = Rc::default();
    let (l, p) = (log.clone(), play.clone());
    let eat = Greenlet::new(move |food: String| {
        l.borrow_mut().push(format!("eat {food}"));
        let drink = p.borrow().clone().unwrap().switch("ball".into());
        l.borrow_mut().push(format!("drink {drink}"));
        "full".to_string()
    });
    let (l, e) = (log.clone(), eat.clone());
    *play.borrow_mut() = Some(Greenlet::new(move |toy: String| {
        l.borrow_mut().push(format!("play with {toy}"));
        e.switch("juice".into())
    }));
    // eat's parent is this test (the root): its return value comes back here.
    assert_eq!(eat.switch("apple".into()), "full");
    assert_eq!(*log.borrow(), ["eat apple", "play with ball", "drink juice"]);
    *play.borrow_mut() = None;
}

#[test]
fn a_child_returns_to_the_greenlet_that_first_switched_into_it() {
    let child = Greenlet::new(|v: u32| v * 2);
    let c = child.clone();
    let parent = Greenlet::new(move |v: u32| {
        let doubled = c.switch(v + 1); // child finishes: back here, its parent
        doubled + 1000
    });
    assert_eq!(parent.switch(4), 1010);
    assert!(child.is_dead() && parent.is_dead());
    // Switching to a dead greenlet passes the value on to its parent (the root here).
    assert_eq!(parent.switch(7), 7);
}

#[test]
fn a_panic_in_a_raw_greenlet_reaches_the_switcher() {
    let g = Greenlet::new(|_: ()| -> () { panic!("raw boom") });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g.switch(())));
    assert!(r.is_err());
    assert!(g.is_dead());
}

#[test]
fn raw_greenlets_inside_hub_greenlets_keep_separate_state() {
    // Two hub greenlets each run a pair of raw greenlets that switch between each
    // other and sleep on the hub in between: the hub interleaves the two hub greenlets
    // while each one's raw greenlets keep their own current/parent state.
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|k| {
            let log = log.clone();
            greenhub::spawn(move || {
                let pong: Slot<u32> = Rc::default();
                let (p, l) = (pong.clone(), log.clone());
                let ping = Greenlet::new(move |mut v: u32| {
                    for _ in 0..3 {
                        l.borrow_mut().push(format!("{k}-ping{v}"));
                        greenhub::sleep(Duration::from_millis(2));
                        v = p.borrow().clone().unwrap().switch(v + 1);
                    }
                    v
                });
                let (pi, l) = (ping.clone(), log.clone());
                *pong.borrow_mut() = Some(Greenlet::new(move |mut v: u32| loop {
                    l.borrow_mut().push(format!("{k}-pong{v}"));
                    v = pi.switch(v + 1);
                }));
                let result = ping.switch(0);
                *pong.borrow_mut() = None;
                result
            })
        })
        .collect();
    greenhub::joinall(&gs);
    assert_eq!(gs.into_iter().map(|g| g.get().unwrap()).collect::<Vec<_>>(), [6, 6]);
    let log = log.borrow();
    let of = |k: &str| log.iter().filter(|e| e.starts_with(k)).cloned().collect::<Vec<_>>().join(" ");
    assert_eq!(of("a-"), "a-ping0 a-pong1 a-ping2 a-pong3 a-ping4 a-pong5");
    assert_eq!(of("b-"), "b-ping0 b-pong1 b-ping2 b-pong3 b-ping4 b-pong5");
    // The sleeps interleaved the two hub greenlets.
    assert_eq!(&log[..2], ["a-ping0", "b-ping0"]);
}

#[test]
fn generator_yields_and_receives() {
    let mut g = Generator::new(|y, first: i32| {
        let mut acc = first;
        loop {
            let next = y.suspend(acc);
            if next == 0 {
                break;
            }
            acc += next;
        }
    });
    assert_eq!(g.resume(1), Some(1));
    assert_eq!(g.resume(2), Some(3));
    assert_eq!(g.resume(3), Some(6));
    assert_eq!(g.resume(0), None);
    assert!(g.is_done());
    assert_eq!(g.resume(5), None);
}

#[test]
fn generator_iterates_and_a_dropped_one_unwinds() {
    let dropped = Rc::new(std::cell::Cell::new(false));
    struct Flag(Rc<std::cell::Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let d = dropped.clone();
    let mut fib = Generator::new(move |y, ()| {
        let _f = Flag(d);
        let (mut a, mut b) = (0u64, 1u64);
        loop {
            y.suspend(a);
            (a, b) = (b, a + b);
        }
    });
    assert_eq!(fib.by_ref().take(10).collect::<Vec<_>>(), [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]);
    drop(fib);
    assert!(dropped.get());
}

#[test]
fn a_generator_body_may_block_on_the_hub() {
    let g = greenhub::spawn(|| {
        let mut ticks = Generator::new(|y, ()| {
            for i in 0..3 {
                greenhub::sleep(Duration::from_millis(2));
                y.suspend(i);
            }
        });
        ticks.by_ref().collect::<Vec<_>>()
    });
    let other = greenhub::spawn(|| 5);
    assert_eq!(g.get(), Ok(vec![0, 1, 2]));
    assert_eq!(other.get(), Ok(5));
}

/// A greenlet killed while it waits inside a generator's body (on the generator's
/// stack): the kill unwinds the generator's frames, then the greenlet's, running the
/// drops of both in order, and the other greenlets go on.
#[test]
fn a_kill_at_a_wait_inside_a_generator_unwinds_both_stacks() {
    struct Note(&'static str, Rc<RefCell<Vec<&'static str>>>);
    impl Drop for Note {
        fn drop(&mut self) {
            self.1.borrow_mut().push(self.0);
        }
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let g = greenhub::spawn(move || {
        let _outer = Note("greenlet frame", l.clone());
        let l2 = l.clone();
        let mut gen = Generator::new(move |y, ()| {
            let _inner = Note("generator frame", l2.clone());
            y.suspend(1);
            greenhub::sleep(Duration::from_secs(60)); // killed here, on the generator's stack
            y.suspend(2);
        });
        let first = gen.next();
        l.borrow_mut().push(if first == Some(1) { "got 1" } else { "wrong" });
        gen.next();
        l.borrow_mut().push("not reached");
    });
    let bystander = greenhub::spawn(|| {
        greenhub::sleep(Duration::from_millis(5));
        7
    });
    greenhub::sleep(Duration::from_millis(1));
    g.kill();
    assert_eq!(g.get(), Err(greenhub::GreenletError::Killed));
    assert_eq!(*log.borrow(), ["got 1", "generator frame", "greenlet frame"]);
    assert_eq!(bystander.get(), Ok(7));
}

/// A backtrace taken inside a greenlet (and inside a generator inside it) walks its
/// frames and ends cleanly at the greenlet's entry: the top of a greenlet stack holds
/// a zero return address, not whatever was there before.
#[test]
fn backtraces_in_a_greenlet_end_at_its_entry() {
    fn capture() -> String {
        std::backtrace::Backtrace::force_capture().to_string()
    }
    let g = greenhub::spawn(|| {
        greenhub::yield_now();
        let direct = capture();
        let mut gen = Generator::new(|y, ()| {
            greenhub::yield_now();
            y.suspend(capture());
        });
        (direct, gen.next().unwrap())
    });
    let (direct, nested) = g.get().unwrap();
    for bt in [&direct, &nested] {
        assert!(bt.contains("greenlet_entry"), "{bt}");
        let last = bt.lines().rev().find(|l| !l.trim_start().starts_with("at ")).unwrap();
        assert!(last.contains("greenlet_entry"), "the walk ends at the entry: {bt}");
    }
}
