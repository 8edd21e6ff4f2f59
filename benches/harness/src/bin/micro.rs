//! Micro benchmarks next to the peers, in one process and one run: a switch (two tasks
//! yielding to each other) and spawn + join of no-op tasks, for greenhub, may (one
//! worker), tokio's current-thread runtime, raw corosensei (the floor: no scheduler)
//! and `std::thread`. Prints `BENCH<TAB>IMPL<TAB>NS` lines, each the median of
//! `--repeat` runs after one warm-up run; `benches/micro.sh` adds gevent and Go and
//! makes the table.

use std::hint::black_box;
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::Coroutine;

/// Switch and spawn costs of greenhub and its peers.
#[derive(clap::Parser)]
struct Args {
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Yields per task in the switch benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    yields: u32,
    /// Tasks per spawn batch (std::thread uses a tenth).
    #[arg(long, default_value_t = 100_000)]
    spawns: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Nanoseconds per operation of `f`, which does `ops` operations.
fn per_op(ops: u32, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / f64::from(ops)
}

fn greenhub_switch(n: u32) -> f64 {
    per_op(2 * n, || {
        let a = greenhub::spawn(move || (0..n).for_each(|_| greenhub::yield_now()));
        let b = greenhub::spawn(move || (0..n).for_each(|_| greenhub::yield_now()));
        greenhub::joinall([&a, &b]);
    })
}

fn greenhub_spawn(n: u32) -> f64 {
    per_op(n, || {
        let gs: Vec<_> = (0..n).map(|_| greenhub::spawn(|| ())).collect();
        greenhub::joinall(&gs);
    })
}

fn may_switch(n: u32) -> f64 {
    per_op(2 * n, || {
        let body = move || (0..n).for_each(|_| may::coroutine::yield_now());
        // SAFETY: may's spawn is unsafe because a coroutine must not block its worker
        // thread outside may or keep thread-local borrows across yields; these bodies
        // only call may's yield_now.
        let (a, b) = unsafe { (may::coroutine::spawn(body), may::coroutine::spawn(body)) };
        a.join().expect("may coroutine");
        b.join().expect("may coroutine");
    })
}

fn may_spawn(n: u32) -> f64 {
    per_op(n, || {
        // SAFETY: as in may_switch; the body does nothing at all.
        let hs: Vec<_> = (0..n).map(|_| unsafe { may::coroutine::spawn(|| ()) }).collect();
        hs.into_iter().for_each(|h| h.join().expect("may coroutine"));
    })
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime")
}

fn tokio_switch(rt: &tokio::runtime::Runtime, n: u32) -> f64 {
    per_op(2 * n, || {
        rt.block_on(async move {
            let task = move || async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
            };
            let (a, b) = (tokio::spawn(task()), tokio::spawn(task()));
            a.await.expect("tokio task");
            b.await.expect("tokio task");
        })
    })
}

fn tokio_spawn(rt: &tokio::runtime::Runtime, n: u32) -> f64 {
    per_op(n, || {
        rt.block_on(async move {
            let hs: Vec<_> = (0..n).map(|_| tokio::spawn(async {})).collect();
            for h in hs {
                h.await.expect("tokio task");
            }
        })
    })
}

/// One resume + suspend pair of a bare corosensei coroutine.
fn corosensei_switch(n: u32) -> f64 {
    let mut co: Coroutine<(), (), ()> = Coroutine::new(|y, ()| loop {
        y.suspend(());
    });
    per_op(n, || {
        for _ in 0..n {
            black_box(co.resume(()));
        }
    })
}

/// Create a coroutine on a fresh 16 KiB `DefaultStack`, run it to the end, drop it.
fn corosensei_spawn(n: u32) -> f64 {
    per_op(n, || {
        for _ in 0..n {
            let stack = DefaultStack::new(16 * 1024).expect("stack");
            let mut co: Coroutine<(), (), (), DefaultStack> = Coroutine::with_stack(stack, |_, ()| ());
            black_box(co.resume(()));
        }
    })
}

fn thread_spawn(n: u32) -> f64 {
    per_op(n, || {
        let hs: Vec<_> = (0..n).map(|_| std::thread::spawn(|| ())).collect();
        hs.into_iter().for_each(|h| h.join().expect("thread"));
    })
}

fn main() {
    let args: Args = clap::Parser::parse();
    may::config().set_workers(1);
    let rt = tokio_rt();
    let (y, s, r) = (args.yields, args.spawns, args.repeat.max(1));
    let mut results: Vec<(&str, &str, Vec<f64>)> = Vec::new();
    let mut add = |bench: &'static str, imp: &'static str, v: f64| match results
        .iter_mut()
        .find(|(b, i, _)| *b == bench && *i == imp)
    {
        Some((_, _, vs)) => vs.push(v),
        None => results.push((bench, imp, vec![v])),
    };
    // Round 0 is a warm-up, not reported (fresh stacks, pools and allocator arenas:
    // every implementation gets its steady state). Rounds interleave the
    // implementations, so slow phases of the machine hit all of them.
    for round in 0..=r {
        let mut add = |bench, imp, v| {
            if round > 0 {
                add(bench, imp, v)
            }
        };
        add("switch", "greenhub", greenhub_switch(y));
        add("switch", "corosensei", corosensei_switch(y));
        add("switch", "may", may_switch(y));
        add("switch", "tokio-ct", tokio_switch(&rt, y));
        add("spawn", "greenhub", greenhub_spawn(s));
        add("spawn", "corosensei", corosensei_spawn(s));
        add("spawn", "may", may_spawn(s));
        add("spawn", "tokio-ct", tokio_spawn(&rt, s));
        add("spawn", "std-thread", thread_spawn((s / 10).max(1)));
    }
    for (bench, imp, vs) in results {
        println!("{bench}\t{imp}\t{:.1}", median(vs));
    }
}
