//! Async interop, measured: `greenhub::block_on` of a ready future (overhead per call)
//! and a cross-thread wake round trip, next to `futures::executor::block_on` and to
//! tokio's `spawn` + `await` — in one run, medians of `--repeat` runs.

use std::time::Instant;

/// greenhub's async bridge next to its peers.
#[derive(clap::Parser)]
struct Args {
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Calls per overhead run.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u32,
    /// Round trips per wake run.
    #[arg(long, default_value_t = 50_000)]
    round_trips: u32,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn per_op(n: u32, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn ready_greenhub(n: u32) -> f64 {
    greenhub::spawn(move || per_op(n, || (0..n).for_each(|i| assert_eq!(greenhub::block_on(async { i }), i))))
        .get()
        .unwrap()
}

fn ready_futures(n: u32) -> f64 {
    per_op(n, || (0..n).for_each(|i| assert_eq!(futures::executor::block_on(async { i }), i)))
}

fn ready_tokio(n: u32) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async move {
        let t = Instant::now();
        for i in 0..n {
            assert_eq!(tokio::spawn(async move { i }).await.unwrap(), i);
        }
        t.elapsed().as_nanos() as f64 / f64::from(n)
    })
}

/// A ping-pong with a thread through a pair of async channels: each round trip is two
/// cross-thread wake-ups of the measured side.
fn wake_greenhub(n: u32) -> f64 {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = echo_thread(ping_rx, pong_tx);
    let r = greenhub::spawn(move || {
        per_op(n, || {
            for i in 0..n {
                greenhub::block_on(ping_tx.send(i)).unwrap();
                assert_eq!(greenhub::block_on(pong_rx.recv()), Some(i));
            }
        })
    })
    .get()
    .unwrap();
    echo.join().unwrap();
    r
}

fn wake_futures(n: u32) -> f64 {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = echo_thread(ping_rx, pong_tx);
    let r = per_op(n, || {
        for i in 0..n {
            futures::executor::block_on(ping_tx.send(i)).unwrap();
            assert_eq!(futures::executor::block_on(pong_rx.recv()), Some(i));
        }
    });
    drop(ping_tx);
    echo.join().unwrap();
    r
}

fn wake_tokio(n: u32) -> f64 {
    let (ping_tx, ping_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let (pong_tx, mut pong_rx) = tokio::sync::mpsc::channel::<u32>(1);
    let echo = echo_thread(ping_rx, pong_tx);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let r = rt.block_on(async move {
        let t = Instant::now();
        for i in 0..n {
            ping_tx.send(i).await.unwrap();
            assert_eq!(pong_rx.recv().await, Some(i));
        }
        t.elapsed().as_nanos() as f64 / f64::from(n)
    });
    echo.join().unwrap();
    r
}

/// The other side: a plain thread echoing through the channels.
fn echo_thread(
    mut ping: tokio::sync::mpsc::Receiver<u32>,
    pong: tokio::sync::mpsc::Sender<u32>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Some(v) = ping.blocking_recv() {
            if pong.blocking_send(v).is_err() {
                break;
            }
        }
    })
}

/// A named measurement.
type Case = (&'static str, fn(u32) -> f64);

fn main() {
    let a = <Args as clap::Parser>::parse();
    let r = a.repeat.max(1);
    let ready: [Case; 3] = [
        ("greenhub::block_on (in a greenlet)", ready_greenhub),
        ("futures::executor::block_on", ready_futures),
        ("tokio current-thread: spawn + await", ready_tokio),
    ];
    let wake: [Case; 3] = [
        ("greenhub::block_on (in a greenlet)", wake_greenhub),
        ("futures::executor::block_on", wake_futures),
        ("tokio current-thread runtime", wake_tokio),
    ];
    let mut ready_ns = vec![Vec::new(); ready.len()];
    let mut wake_ns = vec![Vec::new(); wake.len()];
    for _ in 0..r {
        for (i, (_, f)) in ready.iter().enumerate() {
            ready_ns[i].push(f(a.calls));
        }
        for (i, (_, f)) in wake.iter().enumerate() {
            wake_ns[i].push(f(a.round_trips));
        }
    }
    println!("# greenhub async interop ({r} runs each, medians; 2-core machine)\n");
    println!("## A ready future, {} calls\n\n| executor | ns per call | greenhub is |\n|---|---|---|", a.calls);
    let ready_ns: Vec<f64> = ready_ns.into_iter().map(median).collect();
    for (i, (name, _)) in ready.iter().enumerate() {
        println!("| {name} | {:.1} | {:.2}x the time |", ready_ns[i], ready_ns[0] / ready_ns[i]);
    }
    println!(
        "\n## Cross-thread wake round trip (tokio mpsc ping-pong with a plain thread), {} round trips\n\n| executor | ns per round trip | greenhub is |\n|---|---|---|",
        a.round_trips
    );
    let wake_ns: Vec<f64> = wake_ns.into_iter().map(median).collect();
    for (i, (name, _)) in wake.iter().enumerate() {
        println!("| {name} | {:.0} | {:.2}x the time |", wake_ns[i], wake_ns[0] / wake_ns[i]);
    }
}
