//! Cases ported from gevent's and python-greenlet's own test suites (gevent 26.9,
//! greenlet 3.x): each test names its upstream file and test. gevent is the oracle.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub::{
    pool::Group, queue::Queue, sleep, spawn, sync::Event, with_timeout, yield_now, GreenletError, TimedOut,
};

use greenhub_testkit as common;

// gevent/tests/test__sleep0.py: `with Timeout(..): while True: sleep(0)` on the main
// greenlet must time out; a yield loop on the thread's own stack must not starve timers.
#[test]
fn a_sleep0_loop_on_the_threads_own_stack_lets_timers_and_io_run() {
    std::thread::spawn(|| {
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let _g = spawn(move || {
            sleep(Duration::from_millis(10));
            d.set(true);
        });
        let t = Instant::now();
        while !done.get() {
            yield_now();
            assert!(t.elapsed() < Duration::from_secs(5), "the timer never fired");
        }
        let r = with_timeout(Duration::from_millis(20), || loop {
            sleep(Duration::ZERO)
        });
        assert_eq!(r, Err(TimedOut));
        // I/O too: a reader greenlet is woken while the thread's own code yields.
        let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = greenhub::os::unix::net::UnixStream::from_std(a).unwrap();
        let got = Rc::new(Cell::new(0u8));
        let g2 = got.clone();
        let _reader = spawn(move || {
            let mut buf = [0u8; 1];
            (&a).read_exact(&mut buf).unwrap();
            g2.set(buf[0]);
        });
        yield_now(); // the reader parks on its socket
        std::thread::spawn(move || b.write_all(b"r").unwrap()).join().unwrap();
        let t = Instant::now();
        while got.get() == 0 {
            yield_now();
            assert!(t.elapsed() < Duration::from_secs(5), "the reader was never woken");
        }
        assert_eq!(got.get(), b'r');
    })
    .join()
    .unwrap();
}

// gevent/tests/test__event.py, TestEventBasics.test_wait_while_notifying (gevent issue
// 1520): a wait on an event that is set, while the waiters `set` woke have not run yet,
// runs after them.
#[test]
fn wait_on_a_set_event_does_not_overtake_the_waiters_set_woke() {
    let event = Rc::new(Event::new());
    let results = common::log();
    let wait_then_append = |e: Rc<Event>, r: common::Log, arg: &'static str| {
        move || {
            e.wait();
            common::push(&r, arg);
        }
    };
    let _a = spawn(wait_then_append(event.clone(), results.clone(), "1"));
    let _b = spawn(wait_then_append(event.clone(), results.clone(), "2"));
    yield_now(); // both wait
    event.set();
    wait_then_append(event.clone(), results.clone(), "3")();
    assert_eq!(common::joined(&results), "1 2 3");
    // Once they have run, a wait on a set event returns at once.
    let t = Instant::now();
    event.wait();
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// gevent/tests/test__greenletset.py's `Undead`: catches every kill and goes on.
fn undead(shot: Rc<Cell<u32>>) -> impl FnOnce() + 'static {
    move || loop {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sleep(Duration::from_secs(1))));
        match r {
            Ok(()) => {}
            Err(_) if shot.get() < 100 => shot.set(shot.get() + 1),
            Err(_) => return,
        }
    }
}

// gevent/tests/test__greenletset.py, test_kill_fires_once: a group sends each member one
// kill, ever; a member that survives it is not killed again by the group.
#[test]
fn group_kill_fires_once_per_member() {
    let (s1, s2) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let group = Group::new();
    let p1 = group.spawn(undead(s1.clone()));
    let p2 = group.spawn(undead(s2.clone()));
    sleep(Duration::from_millis(10));
    let check = |c1: u32, c2: u32| {
        assert!(!p1.ready() && !p2.ready());
        assert_eq!((s1.get(), s2.get()), (c1, c2));
    };
    check(0, 0);
    group.kill();
    group.kill();
    group.kill();
    check(0, 0);
    sleep(Duration::from_millis(10));
    check(1, 1);
    group.kill();
    sleep(Duration::from_millis(10));
    check(1, 1);
    // Killed directly (not through the group) they die for good: shot 100 times is the
    // Undead's limit, so kill until they are gone.
    while !(p1.ready() && p2.ready()) {
        p1.kill();
        p2.kill();
        yield_now();
    }
    assert_eq!(p1.error(), None, "Undead returns normally at its limit");
}

// gevent/tests/test__event.py, AsyncResult: `AsyncResult()` needs no type annotation
// for its error type (inferred from the value's use, as `HashMap::new`).
#[test]
fn async_result_new_infers_from_the_value_alone() {
    let a = Rc::new(greenhub::sync::AsyncResult::new());
    let a2 = a.clone();
    let g = spawn(move || a2.set(9));
    let v: i32 = a.get();
    assert_eq!(v, 9);
    g.join();
}

#[test]
fn a_rendezvous_try_get_takes_from_a_waiting_putter() {
    // gevent/tests/test__queue.py, TestChannel.test_get_nowait_unlock_channel (Channel is
    // `Queue::bounded(0)`): get_nowait takes the item of a putter already waiting.
    let q = Rc::new(Queue::bounded(0));
    assert_eq!(q.try_get(), None);
    let q2 = q.clone();
    let putter = spawn(move || q2.put(5));
    yield_now(); // the putter waits for a getter
    assert!(!putter.ready());
    assert_eq!(q.try_get(), Some(5));
    assert_eq!(q.try_get(), None);
    putter.join();
    assert!(putter.successful());
    // A putter that timed out took its item back: nothing to get.
    let q3 = q.clone();
    let late = spawn(move || q3.put_timeout(6, Duration::from_millis(5)));
    assert_eq!(late.get(), Ok(Err(6)));
    assert_eq!(q.try_get(), None);
    let _ = RefCell::new(());
    let _ = GreenletError::Killed;
}

// greenlet/tests/test_greenlet.py, test_exception: a panic in a greenlet goes to its
// parent first: the parent's pending `switch` panics there and can catch it.
#[test]
fn a_raw_greenlets_panic_goes_to_its_parent_first() {
    use greenhub::raw::Greenlet;
    let seen = common::log();
    let s = seen.clone();
    let g1 = Greenlet::new(move |()| {
        let g2 = Greenlet::new(|()| -> () { panic!("some error") });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g2.switch(())));
        let msg = r.err().and_then(|p| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
        common::push(&s, format!("g1 caught: {msg}"));
        assert!(g2.is_dead());
    });
    g1.switch(());
    assert_eq!(common::joined(&seen), "g1 caught: some error");
    assert!(g1.is_dead());
    // Uncaught in the parent, it goes on to the parent's parent (here the root), and
    // the parent is not left suspended.
    let g3 = Greenlet::new(|()| {
        let g4 = Greenlet::new(|()| -> () { panic!("deeper") });
        g4.switch(());
    });
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| g3.switch(())));
    assert!(r.is_err());
    assert!(g3.is_dead(), "the parent unwound too");
}

// greenlet/tests/test_greenlet.py, test_dealloc: dropping the last handle of a
// suspended greenlet unwinds it (greenlet raises GreenletExit in it): its destructors
// run, even though its own stack held handles while it ran.
#[test]
fn dropping_the_last_handle_of_a_suspended_raw_greenlet_unwinds_it() {
    use greenhub::raw::Greenlet;
    struct OnExit(common::Log);
    impl Drop for OnExit {
        fn drop(&mut self) {
            if std::thread::panicking() {
                common::push(&self.0, "exit");
            }
        }
    }
    let fmain = |seen: common::Log| {
        move |()| {
            let _e = OnExit(seen);
            let me = Greenlet::<()>::current(); // a handle to itself on its own stack
            assert!(!me.is_main());
            drop(me);
            Greenlet::<()>::main().switch(()); // back to the main greenlet, suspended
            panic!("some error");
        }
    };
    let seen = common::log();
    let g1 = Greenlet::new(fmain(seen.clone()));
    let g2 = Greenlet::new(fmain(seen.clone()));
    g1.switch(());
    g2.switch(());
    assert_eq!(common::joined(&seen), "");
    assert!(!g1.is_dead() && !g2.is_dead());
    drop(g1);
    assert_eq!(common::joined(&seen), "exit");
    drop(g2);
    assert_eq!(common::joined(&seen), "exit exit");
}

// greenlet/tests/test_greenlet.py, test_send / test_main: switching to the main greenlet
// from a child returns to the main program; the child resumes where it left off.
#[test]
fn switching_to_the_main_greenlet_and_back() {
    use greenhub::raw::Greenlet;
    let main = Greenlet::<i32>::main();
    let g = Greenlet::new(move |v: i32| {
        let a = main.switch(v + 1);
        let b = main.switch(a + 1);
        b + 100
    });
    assert_eq!(g.switch(1), 2);
    assert_eq!(g.switch(10), 11);
    assert_eq!(g.switch(5), 105);
    assert!(g.is_dead());
    assert!(Greenlet::<i32>::current().is_main());
}

// gevent/tests/test__queue.py, TestQueue.test_peek_empty / test_peek_multi_greenlet: peek
// waits for an item and leaves it queued; with a timeout it gives up.
#[test]
fn peek_waits_for_an_item_and_leaves_it_queued() {
    let q = Rc::new(Queue::unbounded());
    let q2 = q.clone();
    let waiter = spawn(move || q2.peek_timeout(Duration::from_millis(10)));
    assert_eq!(waiter.get(), Ok(None));
    let q3 = q.clone();
    let peeker = spawn(move || q3.peek());
    let q4 = q.clone();
    let getter = spawn(move || q4.get());
    yield_now(); // both wait
    q.put(1);
    assert_eq!(peeker.get(), Ok(1));
    assert_eq!(getter.get(), Ok(1), "the peeker passed the item on to the getter");
    assert!(q.is_empty());
    q.put(2);
    assert_eq!((q.peek(), q.try_peek(), q.len()), (2, Some(2), 1));
}

// gevent/tests/test__queue.py, TestLifoQueue / TestPriorityQueue (SubscriptMixin): the
// order items come out in, and the same waiting behaviour as Queue.
#[test]
fn lifo_and_priority_queues_hand_items_out_in_their_order() {
    let lifo = greenhub::queue::LifoQueue::unbounded();
    for i in [1, 2, 3] {
        lifo.put(i);
    }
    assert_eq!((lifo.get(), lifo.get(), lifo.get()), (3, 2, 1));
    let prio = greenhub::queue::PriorityQueue::unbounded();
    for i in [5, 1, 4, 2, 3] {
        prio.put(i);
    }
    assert_eq!((0..5).map(|_| prio.get()).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    // Bounded: a put waits for room; a getter wakes it.
    let b = Rc::new(greenhub::queue::PriorityQueue::bounded(1));
    b.put(9);
    let b2 = b.clone();
    let putter = spawn(move || b2.put(0));
    yield_now();
    assert!(!putter.ready());
    assert_eq!(b.get(), 9);
    putter.join();
    assert_eq!(b.get(), 0);
}

// gevent/tests/test__semaphore.py / lock tests (RLock): the holder re-enters; another
// greenlet waits until the holder's last guard is gone; a waiter killed meanwhile leaves
// the lock to the next one.
#[test]
fn rlock_is_reentrant_for_its_holder_only() {
    let lock = Rc::new(greenhub::sync::RLock::new(RefCell::new(Vec::<&str>::new())));
    let l1 = lock.clone();
    let holder = spawn(move || {
        let a = l1.lock();
        let b = l1.lock();
        a.borrow_mut().push("holder in");
        sleep(Duration::from_millis(5)); // others wait meanwhile
        drop(a);
        sleep(Duration::from_millis(5)); // still held through `b`
        b.borrow_mut().push("holder out");
    });
    let l2 = lock.clone();
    let doomed = spawn(move || {
        let _g = l2.lock();
        unreachable!("killed while waiting");
    });
    let l3 = lock.clone();
    let next = spawn(move || {
        let g = l3.lock();
        g.borrow_mut().push("next");
    });
    yield_now();
    assert!(lock.is_locked());
    doomed.kill();
    greenhub::joinall([&holder, &next]);
    assert_eq!(doomed.error(), Some(GreenletError::Killed));
    assert_eq!(*lock.lock().borrow(), ["holder in", "holder out", "next"]);
    assert!(!lock.is_locked());
}

// gevent/tests/test__pool.py: apply, apply_async, imap (input order), full,
// wait_available; a member's apply on its own full pool does not deadlock.
#[test]
fn pool_apply_imap_full_and_wait_available() {
    use greenhub::pool::Pool;
    let pool = Pool::new(2);
    assert_eq!(pool.apply(|| 1 + 1), 2);
    let a = pool.apply_async(|| {
        sleep(Duration::from_millis(5));
        "a"
    });
    let b = pool.apply_async(|| "b");
    assert!(pool.full());
    assert_eq!(pool.wait_available(), 1);
    assert_eq!((a.get(), b.get()), (Ok("a"), Ok("b")));
    // imap: input order though they finish in reverse, at most 2 at once.
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let out: Vec<u64> = pool
        .imap(vec![15u64, 10, 5, 1], move |ms| {
            r.set(r.get() + 1);
            p.set(p.get().max(r.get()));
            sleep(Duration::from_millis(ms));
            r.set(r.get() - 1);
            ms
        })
        .collect();
    assert_eq!(out, [15, 10, 5, 1]);
    assert_eq!(peak.get(), 2);
    // A member applying on its own full pool runs the function inline.
    let one = Pool::new(1);
    let o = one.clone();
    let member = one.spawn(move || o.apply(|| "inline"));
    assert_eq!(member.get(), Ok("inline"));
}

// gevent/tests/test__greenlet.py (link tests): callbacks run after the greenlet ends, each
// in a new greenlet, in link order; link_value only on success, link_exception only on a
// panic or kill; unlink removes one; linking a finished greenlet schedules at once.
#[test]
fn links_run_after_the_end_in_link_order() {
    let log = common::log();
    let ok = spawn(|| 7);
    let (l1, l2, l3, l4) = (log.clone(), log.clone(), log.clone(), log.clone());
    ok.link(move || common::push(&l1, "link"));
    ok.link_value(move |v: &i32| common::push(&l2, format!("value {v}")));
    ok.link_exception(move |e| common::push(&l3, format!("never {e}")));
    let gone = ok.link(move || common::push(&l4, "unlinked"));
    ok.unlink(gone);
    assert_eq!(common::joined(&log), "", "links run only after the greenlet ends");
    assert_eq!(ok.get(), Ok(7));
    assert_eq!(common::joined(&log), "link value 7");
    // A killed greenlet: link_exception sees Killed.
    let log2 = common::log();
    let doomed = spawn(|| sleep(Duration::from_secs(60)));
    let (a, b) = (log2.clone(), log2.clone());
    doomed.link_exception(move |e| common::push(&a, format!("exception {e}")));
    doomed.link_value(move |_: &()| common::push(&b, "never"));
    yield_now();
    doomed.kill();
    doomed.join();
    greenhub::run();
    assert_eq!(common::joined(&log2), "exception greenlet was killed");
    // Linking a finished greenlet: scheduled at once, runs at the next switch.
    let c = log2.clone();
    doomed.link(move || common::push(&c, "late"));
    yield_now();
    assert!(common::joined(&log2).ends_with("late"));
    // A detached greenlet's links still see its value.
    let log3 = common::log();
    let d = log3.clone();
    let detached = spawn(|| String::from("v"));
    detached.link_value(move |v: &String| common::push(&d, v.clone()));
    drop(detached);
    greenhub::run();
    assert_eq!(common::joined(&log3), "v");
}

// gevent/tests/test__iwait.py, test_noiter / test_iwait_partial (with events and greenlets
// instead of semaphores, which are not Waitable here): completion order, partial
// consumption leaves nothing registered, timeouts.
#[test]
fn wait_and_iwait_in_completion_order() {
    use greenhub::{iwait, wait, Waitable};
    let e1 = Rc::new(Event::new());
    let e2 = Event::new();
    let setter = {
        let e1 = e1.clone();
        spawn(move || e1.set())
    };
    let objs: [&dyn Waitable; 2] = [&*e1, &e2];
    assert_eq!(iwait(&objs, None).next(), Some(0));
    assert_eq!(wait(&objs, None, Some(Duration::from_millis(5))), [0], "e2 never set");
    setter.join();
    // Greenlets and an AsyncResult together.
    let ar = Rc::new(greenhub::sync::AsyncResult::new());
    let a2 = ar.clone();
    let slow = spawn(|| sleep(Duration::from_millis(20)));
    let fast = spawn(move || {
        sleep(Duration::from_millis(2));
        a2.set(1u8);
    });
    let all: [&dyn Waitable; 3] = [&slow, &*ar, &fast];
    // `fast` delivers the result and then ends: both ready at the same wake-up, by index.
    assert_eq!(wait(&all, None, None), [1, 2, 0]);
    // Partially consumed: nothing stays registered (the event can be waited on normally).
    let e3 = Rc::new(Event::new());
    let e4 = Event::new();
    let e3b = e3.clone();
    let _s = spawn(move || e3b.set());
    let objs: [&dyn Waitable; 2] = [&*e3, &e4];
    let mut it = iwait(&objs, Some(Duration::from_millis(50)));
    assert_eq!(it.next(), Some(0));
    drop(it);
    e4.set();
    e4.wait();
    assert!(e3.is_set() && e4.is_set());
}

greenhub::greenlet_local! {
    static SLOT: RefCell<Vec<&'static str>> = RefCell::new(Vec::new());
    static DROPS: DropNote = DropNote(Cell::new(None));
}

/// Notes into a log when a greenlet's local is dropped.
struct DropNote(Cell<Option<common::Log>>);
impl Drop for DropNote {
    fn drop(&mut self) {
        if let Some(l) = self.0.take() {
            sleep(Duration::from_millis(1)); // may wait: it drops inside its greenlet
            common::push(&l, "dropped");
        }
    }
}

// gevent/tests/test__local.py (test_local_basic, test_local_dicts_for_greenlets,
// test_local_with_abc-free parts): each greenlet sees its own value, initialised lazily;
// values die with their greenlet.
#[test]
fn greenlet_locals_are_per_greenlet_and_die_with_it() {
    let log = common::log();
    let gs: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let l = log.clone();
            spawn(move || {
                DROPS.with(|d| d.0.set(Some(l)));
                SLOT.with(|s| s.borrow_mut().push(name));
                yield_now(); // the other one runs in between
                SLOT.with(|s| s.borrow().clone())
            })
        })
        .collect();
    let got: Vec<_> = gs.into_iter().map(|g| g.get().unwrap()).collect();
    assert_eq!(got, [vec!["a"], vec!["b"]]);
    assert_eq!(common::joined(&log), "dropped dropped");
    // The thread's own stack has its own value too.
    SLOT.with(|s| s.borrow_mut().push("main"));
    assert_eq!(spawn(|| SLOT.with(|s| s.borrow().len())).get(), Ok(0));
    assert_eq!(SLOT.with(|s| s.borrow().clone()), ["main"]);
}

// gevent/tests/test__threadpool.py (TestPool: test_apply/test_map/test_join basics): a
// sized pool runs jobs on its threads while the caller's greenlets keep running.
#[test]
fn a_sized_thread_pool_runs_jobs_while_greenlets_run() {
    use greenhub::threadpool::ThreadPool;
    let pool = ThreadPool::new(2);
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let ticker = spawn(move || loop {
        t2.set(t2.get() + 1);
        sleep(Duration::from_millis(1));
    });
    let job = pool.spawn(|| {
        std::thread::sleep(Duration::from_millis(30)); // really blocks its own thread
        "done"
    });
    assert_eq!(job.get(), Ok("done"));
    assert!(ticks.get() >= 5, "the hub ran while the job blocked: {}", ticks.get());
    assert_eq!(pool.map(0..10u32, |x| x * x), (0..10u32).map(|x| x * x).collect::<Vec<_>>());
    let names: Vec<_> = (0..4).map(|_| pool.spawn(|| std::thread::current().name().unwrap().to_string())).collect();
    pool.join();
    let mut names: Vec<String> = names.into_iter().map(|j| j.get().unwrap()).collect();
    names.sort();
    names.dedup();
    assert!(names.iter().all(|n| n.starts_with("greenhub-pool-")) && names.len() <= 2, "{names:?}");
    let bad = pool.spawn(|| -> u8 { panic!("in the pool") });
    assert_eq!(bad.get(), Err(GreenletError::Panicked("in the pool".into())));
    ticker.kill();
    ticker.join();
}

// gevent/tests/test__select.py (test_select_many_sockets / timeout basics): select
// returns the ready fds, waits cooperatively, and times out empty.
#[test]
fn select_waits_for_the_first_ready_fd() {
    use std::os::fd::AsRawFd;
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let (c, d) = std::os::unix::net::UnixStream::pair().unwrap();
    let (fa, fc) = (a.as_raw_fd(), c.as_raw_fd());
    let t = Instant::now();
    assert_eq!(greenhub::select::select(&[fa, fc], &[], Some(Duration::from_millis(10))).unwrap(), (vec![], vec![]));
    assert!(t.elapsed() >= Duration::from_millis(9));
    let writer = spawn(move || {
        sleep(Duration::from_millis(5));
        (&d).write_all(b"!").unwrap();
        (b, d)
    });
    let ticks = Rc::new(Cell::new(0));
    let t2 = ticks.clone();
    let _ticker = spawn(move || loop {
        t2.set(t2.get() + 1);
        sleep(Duration::from_millis(1));
    });
    let (r, w) = greenhub::select::select(&[fa, fc], &[], None).unwrap();
    assert_eq!((r, w), (vec![fc], vec![]));
    assert!(ticks.get() >= 2, "other greenlets ran while select waited");
    let e = greenhub::select::select(&[9999], &[], None).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    greenhub::deregister(fa);
    greenhub::deregister(fc);
    drop((a, c, writer.get()));
}

// gevent/tests/test__server.py (TestDatagramServer basics): a handler greenlet per
// datagram answers through the socket; a slow handler does not hold up the others;
// stop closes the socket.
#[test]
fn datagram_server_answers_each_datagram_in_its_own_greenlet() {
    use greenhub::net::UdpSocket;
    use greenhub::server::DatagramServer;
    let server = DatagramServer::bind("127.0.0.1:0", |data: &[u8], peer, sock: &UdpSocket| {
        if data == b"slow" {
            sleep(Duration::from_millis(50));
        }
        let _ = sock.send_to(&[b"re:", data].concat(), peer);
    })
    .unwrap()
    .start()
    .unwrap();
    let addr = server.local_addr();
    let slow = UdpSocket::bind("127.0.0.1:0").unwrap();
    slow.send_to(b"slow", addr).unwrap();
    let fast = UdpSocket::bind("127.0.0.1:0").unwrap();
    fast.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    fast.send_to(b"fast", addr).unwrap();
    let mut buf = [0u8; 32];
    let (n, from) = fast.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"re:fast"[..], addr));
    let (n, _) = slow.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"re:slow");
    server.stop(Duration::from_secs(1));
    assert_eq!(server.connections(), 0);
}

// CPython 3.13 Lib/test/test_queue.py (shutdown tests, as the issue asks for Python's
// semantics): puts fail after shutdown; gets drain what is left then fail; immediate
// drops the items; waiting getters and putters wake.
#[test]
fn queue_shutdown_wakes_waiters_with_an_error() {
    let q = Rc::new(Queue::bounded(1));
    let q2 = q.clone();
    let getter = spawn(move || q2.get_or_shutdown());
    yield_now(); // waits on the empty queue
    q.put(1);
    let q3 = q.clone();
    let putter = spawn(move || q3.put_timeout(2, Duration::from_secs(60)));
    let q4 = q.clone();
    let blocked = spawn(move || q4.put_timeout(3, Duration::from_secs(60)));
    yield_now(); // `getter` took 1; the putter put 2; `blocked` waits for room
    assert_eq!(getter.get(), Ok(Some(1)));
    assert_eq!(putter.get(), Ok(Ok(())));
    q.shutdown(false);
    assert_eq!(blocked.get(), Ok(Err(3)), "a waiting putter wakes with its item back");
    assert_eq!(q.try_put(4), Err(4));
    assert_eq!(q.get_or_shutdown(), Some(2), "what was queued is still handed out");
    assert_eq!(q.get_or_shutdown(), None);
    assert_eq!(q.iter().count(), 0, "the iterator ends");
    let q5 = q.clone();
    let panicking = spawn(move || q5.get());
    assert!(matches!(panicking.get(), Err(GreenletError::Panicked(m)) if m.contains("shut-down")));
    // immediate: drops the items.
    let r: Queue<u8> = Queue::unbounded();
    r.put(1);
    r.shutdown(true);
    assert_eq!(r.try_get(), None);
}

// gevent.wait over a queue (gevent's Queue is waitable through its getters): ready once it
// holds an item; waiting does not take the item, and a getter still gets it.
#[test]
fn wait_on_a_queue_is_ready_when_it_holds_an_item() {
    use greenhub::{wait, Waitable};
    let q = Rc::new(Queue::unbounded());
    let q2 = q.clone();
    let getter = spawn(move || q2.get());
    let q3 = q.clone();
    let _putter = spawn(move || {
        sleep(Duration::from_millis(5));
        q3.put(11);
    });
    let e = Event::new();
    let objs: [&dyn Waitable; 2] = [&e, &*q];
    let r = wait(&objs, Some(1), Some(Duration::from_secs(5)));
    assert_eq!(getter.get(), Ok(11), "the getter got the item");
    assert_eq!(r, [1], "woken first, it passed the item on to the getter");
}

// Attacks on links: a callback that panics, and a kill of the linked greenlet before it
// starts: its links still run, and `get` never waits forever.
#[test]
fn links_that_panic_or_follow_a_kill_before_start_never_block_get() {
    let g = spawn(|| 3);
    g.link(|| panic!("in a link"));
    assert_eq!(g.get(), Ok(3));
    let k = spawn(|| 5);
    let seen = common::log();
    let s = seen.clone();
    k.link(move || common::push(&s, "ran"));
    k.kill(); // never started: finishes Killed, the link greenlet is spawned
    let t = Instant::now();
    assert_eq!(k.get(), Err(GreenletError::Killed));
    assert_eq!(common::joined(&seen), "ran");
    assert!(t.elapsed() < Duration::from_secs(5));
}
