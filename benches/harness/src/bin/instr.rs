//! Instruction counts of the hot paths, for `benches/instr.sh` (valgrind): does `N`
//! operations of one kind, so that the difference between two runs with different `N`
//! divided by their difference is the cost of one operation, start-up excluded.
//!
//! usage: instr switch|spawn|event|queue N

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let n: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    match what.as_str() {
        // two greenlets yielding to each other: 2n switches
        "switch" => {
            let a = greenhub::spawn(move || (0..n).for_each(|_| greenhub::yield_now()));
            let b = greenhub::spawn(move || (0..n).for_each(|_| greenhub::yield_now()));
            greenhub::joinall([&a, &b]);
        }
        // n spawn+join of a no-op, in batches of 1,000 after a warm-up batch
        "spawn" => {
            let batch = |k: u32| {
                let gs: Vec<_> = (0..k).map(|_| greenhub::spawn(|| ())).collect();
                greenhub::joinall(&gs);
            };
            batch(1000);
            (0..n / 1000).for_each(|_| batch(1000));
        }
        // greenlet zero and a greenlet waking each other through two events: 2n wake-ups
        "event" => {
            use std::rc::Rc;
            let (go, done) = (Rc::new(greenhub::sync::Event::new()), Rc::new(greenhub::sync::Event::new()));
            let (g, d) = (go.clone(), done.clone());
            let waiter = greenhub::spawn(move || {
                for _ in 0..n {
                    g.wait();
                    g.clear();
                    d.set();
                }
            });
            for _ in 0..n {
                go.set();
                done.wait();
                done.clear();
            }
            waiter.join();
        }
        // greenlet zero and a greenlet passing an item through two queues: 2n hand-offs
        "queue" => {
            use std::rc::Rc;
            let (ping, pong) =
                (Rc::new(greenhub::queue::Queue::unbounded()), Rc::new(greenhub::queue::Queue::unbounded()));
            let (p1, p2) = (ping.clone(), pong.clone());
            let echo = greenhub::spawn(move || {
                for _ in 0..n {
                    let v: u32 = p1.get();
                    p2.put(v + 1);
                }
            });
            for i in 0..n {
                ping.put(i);
                assert_eq!(pong.get(), i + 1);
            }
            echo.join();
        }
        _ => {
            eprintln!("usage: instr switch|spawn|event|queue N");
            std::process::exit(64);
        }
    }
}
