//! All cores, measured: greenhub's scaling from 1 to 2 hubs on a switch-heavy workload,
//! and cross-hub channel hand-off (latency and throughput) next to `crossbeam-channel`
//! and `std::sync::mpsc` between plain threads and tokio's `mpsc` between tasks of a
//! 2-worker tokio runtime — all in one run, each figure the median of `--repeat` runs,
//! reported as ratios (this machine is shared and noisy).

use std::time::{Duration, Instant};

use greenhub::queue::Queue;
use greenhub::{channel, joinall, spawn, Runtime};

/// greenhub's multi-core figures next to its peers.
#[derive(clap::Parser)]
struct Args {
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Round trips per latency run.
    #[arg(long, default_value_t = 100_000)]
    round_trips: u32,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// One hub's share of the scaling workload: 100 pairs of greenlets ping-ponging 1,000
/// times through single-hub queues, then 20,000 spawn+join. Returns the work units done
/// (switches + spawns).
fn hub_work() -> u64 {
    const PAIRS: usize = 100;
    const ROUNDS: u32 = 1_000;
    const SPAWNS: u32 = 20_000;
    let mut gs = Vec::new();
    for _ in 0..PAIRS {
        let (ping, pong) = (std::rc::Rc::new(Queue::bounded(1)), std::rc::Rc::new(Queue::bounded(1)));
        let (p1, q1) = (ping.clone(), pong.clone());
        gs.push(spawn(move || {
            for i in 0..ROUNDS {
                p1.put(i);
                q1.get();
            }
        }));
        gs.push(spawn(move || {
            for _ in 0..ROUNDS {
                let v = ping.get();
                pong.put(v);
            }
        }));
    }
    joinall(&gs);
    for _ in 0..SPAWNS / 100 {
        let batch: Vec<_> = (0..100).map(|i| spawn(move || i)).collect();
        joinall(&batch);
    }
    (PAIRS as u64) * u64::from(ROUNDS) * 4 + u64::from(SPAWNS)
}

/// Work units per second with `hubs` hubs, each doing `hub_work`.
fn scaling(hubs: usize) -> f64 {
    let rt = Runtime::new(hubs).unwrap();
    rt.run(|_| hub_work()); // warm up: stacks pooled, tasks allocated
    let t = Instant::now();
    let units: u64 = rt.run(|_| hub_work()).into_iter().sum();
    units as f64 / t.elapsed().as_secs_f64()
}

/// The machine's own ceiling: the same comparison for plain threads doing arithmetic
/// (2 vCPUs of a shared VM rarely give 2.0x).
fn machine_scaling() -> f64 {
    fn work() -> u64 {
        let mut x = 1u64;
        for i in 0..100_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        x
    }
    let one = time(|| {
        std::hint::black_box(work());
    });
    let two = time(|| {
        let t = std::thread::spawn(work);
        std::hint::black_box(work() ^ t.join().unwrap());
    });
    2.0 * one.as_secs_f64() / two.as_secs_f64()
}

fn greenhub_latency(n: u32) -> Duration {
    let rt = Runtime::new(2).unwrap();
    let (a_tx, a_rx) = channel::bounded::<u32>(1);
    let (b_tx, b_rx) = channel::bounded::<u32>(1);
    let echo = rt.spawn_on(1, move || {
        for v in a_rx.iter() {
            b_tx.send(v).unwrap();
        }
    });
    let d = rt
        .spawn_on(0, move || {
            time(|| {
                for i in 0..n {
                    a_tx.send(i).unwrap();
                    assert_eq!(b_rx.recv().unwrap(), i);
                }
            })
        })
        .get()
        .unwrap();
    echo.get().unwrap();
    d
}

fn crossbeam_latency(n: u32) -> Duration {
    let (a_tx, a_rx) = crossbeam_channel::bounded::<u32>(1);
    let (b_tx, b_rx) = crossbeam_channel::bounded::<u32>(1);
    let echo = std::thread::spawn(move || {
        for v in a_rx.iter() {
            b_tx.send(v).unwrap();
        }
    });
    let d = time(|| {
        for i in 0..n {
            a_tx.send(i).unwrap();
            assert_eq!(b_rx.recv().unwrap(), i);
        }
    });
    drop(a_tx);
    echo.join().unwrap();
    d
}

fn std_latency(n: u32) -> Duration {
    let (a_tx, a_rx) = std::sync::mpsc::sync_channel::<u32>(1);
    let (b_tx, b_rx) = std::sync::mpsc::sync_channel::<u32>(1);
    let echo = std::thread::spawn(move || {
        for v in a_rx.iter() {
            b_tx.send(v).unwrap();
        }
    });
    let d = time(|| {
        for i in 0..n {
            a_tx.send(i).unwrap();
            assert_eq!(b_rx.recv().unwrap(), i);
        }
    });
    drop(a_tx);
    echo.join().unwrap();
    d
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap()
}

fn tokio_latency(n: u32) -> Duration {
    let rt = tokio_rt();
    rt.block_on(async move {
        let (a_tx, mut a_rx) = tokio::sync::mpsc::channel::<u32>(1);
        let (b_tx, mut b_rx) = tokio::sync::mpsc::channel::<u32>(1);
        let echo = tokio::spawn(async move {
            while let Some(v) = a_rx.recv().await {
                b_tx.send(v).await.unwrap();
            }
        });
        let d = tokio::spawn(async move {
            let t = Instant::now();
            for i in 0..n {
                a_tx.send(i).await.unwrap();
                assert_eq!(b_rx.recv().await.unwrap(), i);
            }
            t.elapsed()
        })
        .await
        .unwrap();
        echo.await.unwrap();
        d
    })
}

fn greenhub_throughput(n: u32) -> Duration {
    let rt = Runtime::new(2).unwrap();
    let (tx, rx) = channel::bounded::<u32>(1024);
    let consumer = rt.spawn_on(1, move || {
        let t = Instant::now();
        let mut sum = 0u64;
        for v in rx.iter() {
            sum += u64::from(v);
        }
        (t, sum)
    });
    rt.spawn_on(0, move || {
        for i in 0..n {
            tx.send(i).unwrap();
        }
    })
    .get()
    .unwrap();
    let (t, sum) = consumer.get().unwrap();
    assert_eq!(sum, u64::from(n) * u64::from(n - 1) / 2);
    t.elapsed()
}

fn crossbeam_throughput(n: u32) -> Duration {
    let (tx, rx) = crossbeam_channel::bounded::<u32>(1024);
    time(|| {
        let p = std::thread::spawn(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        let sum: u64 = rx.iter().map(u64::from).sum();
        p.join().unwrap();
        assert_eq!(sum, u64::from(n) * u64::from(n - 1) / 2);
    })
}

fn std_throughput(n: u32) -> Duration {
    let (tx, rx) = std::sync::mpsc::sync_channel::<u32>(1024);
    time(|| {
        let p = std::thread::spawn(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        let sum: u64 = rx.iter().map(u64::from).sum();
        p.join().unwrap();
        assert_eq!(sum, u64::from(n) * u64::from(n - 1) / 2);
    })
}

fn tokio_throughput(n: u32) -> Duration {
    let rt = tokio_rt();
    rt.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(1024);
        let t = Instant::now();
        let p = tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let c = tokio::spawn(async move {
            let mut sum = 0u64;
            while let Some(v) = rx.recv().await {
                sum += u64::from(v);
            }
            sum
        });
        p.await.unwrap();
        assert_eq!(c.await.unwrap(), u64::from(n) * u64::from(n - 1) / 2);
        t.elapsed()
    })
}

/// A named measurement: what runs, and the function timing `n` operations.
type Case = (&'static str, fn(u32) -> Duration);

fn main() {
    let a = <Args as clap::Parser>::parse();
    let r = a.repeat.max(1);
    println!("# greenhub, all cores ({} runs each, medians; 2-core machine, nothing pinned)\n", r);

    let mut one = Vec::new();
    let mut two = Vec::new();
    let mut machine = Vec::new();
    for _ in 0..r {
        // Interleaved, so that noise hits all alike.
        one.push(scaling(1));
        two.push(scaling(2));
        machine.push(machine_scaling());
    }
    let (one, two, machine) = (median(one), median(two), median(machine));
    println!("## Scaling: 100 ping-pong pairs x 1,000 rounds + 20,000 spawn/join per hub\n");
    println!("| hubs | work units/s | vs 1 hub |\n|---|---|---|");
    println!("| 1 | {:.2e} | 1.00x |", one);
    println!("| 2 | {:.2e} | {:.2}x |", two, two / one);
    println!("| (plain threads, arithmetic: the machine's ceiling) | | {:.2}x |\n", machine);

    let lat: [Case; 4] = [
        ("greenhub channel, hub 0 <-> hub 1", greenhub_latency),
        ("crossbeam-channel, thread <-> thread", crossbeam_latency),
        ("std mpsc sync_channel, thread <-> thread", std_latency),
        ("tokio mpsc, tokio-mt (2 workers) tasks", tokio_latency),
    ];
    let thr: [Case; 4] = [
        ("greenhub channel, hub 0 -> hub 1", greenhub_throughput),
        ("crossbeam-channel, thread -> thread", crossbeam_throughput),
        ("std mpsc sync_channel, thread -> thread", std_throughput),
        ("tokio mpsc, tokio-mt (2 workers) tasks", tokio_throughput),
    ];
    let mut lat_ns = vec![Vec::new(); lat.len()];
    let mut thr_rate = vec![Vec::new(); thr.len()];
    for _ in 0..r {
        for (i, (_, f)) in lat.iter().enumerate() {
            lat_ns[i].push(f(a.round_trips).as_nanos() as f64 / f64::from(a.round_trips));
        }
        for (i, (_, f)) in thr.iter().enumerate() {
            thr_rate[i].push(f64::from(a.messages) / f(a.messages).as_secs_f64());
        }
    }
    let lat_ns: Vec<f64> = lat_ns.into_iter().map(median).collect();
    let thr_rate: Vec<f64> = thr_rate.into_iter().map(median).collect();
    println!("## Hand-off latency: ping-pong over two bounded(1) channels, {} round trips\n", a.round_trips);
    println!("| pair | ns per round trip | greenhub is |\n|---|---|---|");
    for (i, (name, _)) in lat.iter().enumerate() {
        println!("| {name} | {:.0} | {:.2}x the time |", lat_ns[i], lat_ns[0] / lat_ns[i]);
    }
    println!("\n## Throughput: one producer, one consumer, bounded(1024), {} messages\n", a.messages);
    println!("| pair | messages/s | greenhub is |\n|---|---|---|");
    for (i, (name, _)) in thr.iter().enumerate() {
        println!("| {name} | {:.2e} | {:.2}x the rate |", thr_rate[i], thr_rate[0] / thr_rate[i]);
    }
}
