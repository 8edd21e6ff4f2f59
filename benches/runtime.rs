//! Micro benchmarks of the runtime's hot paths, with raw corosensei as the floor.
//!
//! `cargo bench --bench runtime` (criterion). Each measurement reports time per
//! operation: one yield (switch), one spawn + join, one timer, one raw resume+suspend.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

/// Two greenlets ping-ponging with `yield_now`: time per yield.
fn switch(c: &mut Criterion) {
    c.bench_function("switch/yield_now ping-pong (per yield)", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(2);
            let t = Instant::now();
            let a = greenhub::spawn(move || (0..per).for_each(|_| greenhub::yield_now()));
            let b2 = greenhub::spawn(move || (0..per).for_each(|_| greenhub::yield_now()));
            greenhub::joinall([&a, &b2]);
            t.elapsed()
        })
    });
    // The same, but both greenlets yield from one call site: each switch then returns to
    // the code the other one left, so the CPU's return-address prediction (which a
    // switch of stacks defeats when the two call sites differ, as above) holds. The gap
    // between the two is that misprediction, not the scheduler.
    #[inline(never)]
    fn yield_times(n: u64) {
        (0..n).for_each(|_| greenhub::yield_now());
    }
    c.bench_function("switch/yield_now ping-pong, one call site (per yield)", |b| {
        b.iter_custom(|iters| {
            let per = iters.div_ceil(2);
            let t = Instant::now();
            let a = greenhub::spawn(move || yield_times(per));
            let b2 = greenhub::spawn(move || yield_times(per));
            greenhub::joinall([&a, &b2]);
            t.elapsed()
        })
    });
}

/// N greenlets yielding round-robin (each switch goes to a greenlet that last ran N
/// switches ago, on its own stack): time per switch as the number of live greenlets
/// grows, the scheduler's share of "cost that does not grow with idle state".
fn switch_among_many(c: &mut Criterion) {
    let mut g = c.benchmark_group("switch among N greenlets (per yield)");
    for n in [1_000u64, 5_000, 9_000] {
        g.bench_function(n.to_string(), |b| {
            b.iter_custom(|iters| {
                let rounds = iters.div_ceil(n).max(2);
                let gs: Vec<_> =
                    (0..n).map(|_| greenhub::spawn(move || (0..rounds).for_each(|_| greenhub::yield_now()))).collect();
                greenhub::yield_now(); // all started: each has its stack and a parked frame
                let t = Instant::now();
                greenhub::joinall(&gs);
                t.elapsed() * (iters as u32) / ((rounds - 1) * n) as u32
            })
        });
    }
    g.finish();
}

/// Raw corosensei resume + suspend (a pair): the floor for a switch.
fn raw_corosensei(c: &mut Criterion) {
    use corosensei_floor::*;
    c.bench_function("floor/corosensei resume+suspend", |b| {
        let mut co = new_coroutine();
        b.iter(|| black_box(co.resume(())));
    });
}

mod corosensei_floor {
    use greenhub::raw::Generator;
    /// A generator is a bare corosensei coroutine on a pooled stack.
    pub fn new_coroutine() -> Generator<(), ()> {
        Generator::new(|y, ()| loop {
            y.suspend(());
        })
    }
}

/// Spawn no-op greenlets in batches of 1,000 and of 100,000, joining each batch: time
/// per greenlet (the targets of docs/performance.md: 100 ns and 150 ns).
fn spawn_join(c: &mut Criterion) {
    for (batch, label) in [(1_000, "1k"), (100_000, "100k")] {
        c.bench_function(&format!("spawn+join no-op (per greenlet, {label} batch)"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(batch);
                    left -= n;
                    let t = Instant::now();
                    let gs: Vec<_> = (0..n).map(|_| greenhub::spawn(|| ())).collect();
                    greenhub::joinall(&gs);
                    total += t.elapsed();
                }
                total
            })
        });
    }
}

/// 100k greenlets sleeping at once (1 ms): time per greenlet, spawn to wake-up.
fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timers");
    g.sample_size(10);
    g.bench_function("100k concurrent 1 ms sleeps (per greenlet)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters.div_ceil(100_000) {
                let t = Instant::now();
                let gs: Vec<_> =
                    (0..100_000).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_millis(1)))).collect();
                greenhub::joinall(&gs);
                total += t.elapsed();
            }
            total / 100_000 * (iters.min(100_000) as u32)
        })
    });
    g.bench_function("with_timeout that finishes in time", |b| {
        b.iter(|| greenhub::with_timeout(Duration::from_secs(1), || black_box(1)))
    });
    g.finish();
}

/// Two greenlets passing one item back and forth through two rendezvous-free queues:
/// time per hand-off (put + get + switch).
fn queue_ping_pong(c: &mut Criterion) {
    use greenhub::queue::Queue;
    use std::rc::Rc;
    c.bench_function("queue ping-pong (per hand-off)", |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (Rc::new(Queue::unbounded()), Rc::new(Queue::unbounded()));
            let (p1, p2) = (ping.clone(), pong.clone());
            let t = Instant::now();
            let echo = greenhub::spawn(move || {
                for _ in 0..iters {
                    let v: u64 = p1.get();
                    p2.put(v + 1);
                }
            });
            for i in 0..iters {
                ping.put(i);
                black_box(pong.get());
            }
            echo.join();
            t.elapsed() / 2
        })
    });
}

/// One greenlet waiting on an Event, another setting it: time per wake-up.
fn event_wake(c: &mut Criterion) {
    use greenhub::sync::Event;
    use std::rc::Rc;
    c.bench_function("event wake-up (set -> waiter runs)", |b| {
        b.iter_custom(|iters| {
            let (go, done) = (Rc::new(Event::new()), Rc::new(Event::new()));
            let (g, d) = (go.clone(), done.clone());
            let t = Instant::now();
            let waiter = greenhub::spawn(move || {
                for _ in 0..iters {
                    g.wait();
                    g.clear();
                    d.set();
                }
            });
            for _ in 0..iters {
                go.set();
                done.wait();
                done.clear();
            }
            waiter.join();
            t.elapsed() / 2
        })
    });
}

criterion_group!(benches, switch, switch_among_many, raw_corosensei, spawn_join, timers, queue_ping_pong, event_wake);
criterion_main!(benches);
