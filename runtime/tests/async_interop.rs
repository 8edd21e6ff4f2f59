//! `block_on` and `RemoteGreenlet` as a `Future`: ordering, wake-ups from other threads,
//! cancellation (kill and `with_timeout` drop the future; a late wake does nothing), and
//! panics inside the future.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use greenhub::{block_on, spawn, with_timeout, yield_now, GreenletError, Runtime, TimedOut};

/// A future completed by hand: `fire()` from anywhere makes it ready. Counts its polls
/// and drops.
#[derive(Clone, Default)]
struct Manual {
    inner: Arc<Mutex<(bool, Option<Waker>)>>,
    polls: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

struct ManualFut(Manual);

impl Manual {
    fn fut(&self) -> ManualFut {
        ManualFut(self.clone())
    }
    fn fire(&self) {
        let w = {
            let mut g = self.inner.lock().unwrap();
            g.0 = true;
            g.1.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }
    /// Wakes without making it ready (a spurious wake-up).
    fn nudge(&self) {
        let w = self.inner.lock().unwrap().1.clone();
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl Future for ManualFut {
    type Output = &'static str;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
        self.0.polls.fetch_add(1, Ordering::SeqCst);
        let mut g = self.0.inner.lock().unwrap();
        if g.0 {
            Poll::Ready("fired")
        } else {
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl Drop for ManualFut {
    fn drop(&mut self) {
        self.0.drops.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_greenlet_in_block_on_does_not_stop_the_others() {
    let m = Manual::default();
    let (m1, m2) = (m.clone(), m.clone());
    let waiting = spawn(move || block_on(m1.fut()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let other = spawn(move || {
        for i in 0..3 {
            l.lock().unwrap().push(i);
            yield_now();
        }
        m2.fire(); // same hub: the waiting greenlet is made ready directly
    });
    assert_eq!(waiting.get(), Ok("fired"));
    other.get().unwrap();
    assert_eq!(*log.lock().unwrap(), [0, 1, 2]);
    assert_eq!(m.polls.load(Ordering::SeqCst), 2, "one poll to park, one after the wake");
    assert_eq!(m.drops.load(Ordering::SeqCst), 1);
}

#[test]
fn wake_ups_from_another_thread_and_many_futures_on_one_hub() {
    let ms: Vec<Manual> = (0..100).map(|_| Manual::default()).collect();
    let gs: Vec<_> = ms
        .iter()
        .map(|m| {
            let m = m.clone();
            spawn(move || block_on(m.fut()))
        })
        .collect();
    yield_now(); // all park
    let firing = ms.clone();
    let t = std::thread::spawn(move || {
        for m in firing.iter().rev() {
            m.fire();
        }
    });
    for g in gs {
        assert_eq!(g.get(), Ok("fired"));
    }
    t.join().unwrap();
    for m in &ms {
        assert_eq!(m.polls.load(Ordering::SeqCst), 2);
    }
    // From greenlet zero: the hub runs while it waits.
    let m = Manual::default();
    let m2 = m.clone();
    let helper = spawn(move || m2.fire());
    assert_eq!(block_on(m.fut()), "fired");
    helper.get().unwrap();
}

#[test]
fn a_spurious_wake_polls_once_more_and_parks_again() {
    let m = Manual::default();
    let m1 = m.clone();
    let g = spawn(move || block_on(m1.fut()));
    yield_now();
    m.nudge();
    yield_now(); // polled again: still pending, parks again
    assert!(!g.ready());
    assert_eq!(m.polls.load(Ordering::SeqCst), 2);
    m.fire();
    assert_eq!(g.get(), Ok("fired"));
    assert_eq!(m.polls.load(Ordering::SeqCst), 3);
}

#[test]
fn kill_and_timeout_drop_the_future_and_a_late_wake_does_nothing() {
    let m = Manual::default();
    let m1 = m.clone();
    let g = spawn(move || block_on(m1.fut()));
    yield_now();
    g.kill();
    assert_eq!(g.get(), Err(GreenletError::Killed));
    assert_eq!(m.drops.load(Ordering::SeqCst), 1, "the future was dropped by the kill");
    m.fire(); // the waker it left is dead: nothing is resurrected
    yield_now();
    assert_eq!(m.polls.load(Ordering::SeqCst), 1);

    let m = Manual::default();
    let m1 = m.clone();
    let r = with_timeout(Duration::from_millis(5), move || block_on(m1.fut()));
    assert_eq!(r, Err(TimedOut));
    assert_eq!(m.drops.load(Ordering::SeqCst), 1);
    m.fire();
    // The next, unrelated wait of this greenlet is not ended by that late wake.
    let t = std::time::Instant::now();
    greenhub::sleep(Duration::from_millis(20));
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_panic_inside_the_future_reaches_get() {
    let g = spawn(|| block_on(async { panic!("inside the future") }));
    assert_eq!(g.get(), Err(GreenletError::Panicked("inside the future".into())));
}

#[test]
fn a_remote_greenlet_is_a_future() {
    let rt = Runtime::new(2).unwrap();
    let gs: Vec<_> = (0..4u32)
        .map(|i| {
            rt.spawn(move || {
                greenhub::sleep(Duration::from_millis(2));
                i * 10
            })
        })
        .collect();
    let sum = block_on(async move {
        let mut sum = 0;
        for g in gs {
            sum += g.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, 60);
    // Dropping a polled-but-unfinished one withdraws its waker (nothing fires later).
    let slow = rt.spawn(|| greenhub::sleep(Duration::from_millis(20)));
    let r = with_timeout(Duration::from_millis(1), move || block_on(slow));
    assert_eq!(r, Err(TimedOut));
}

#[test]
fn runtime_agnostic_futures_channels() {
    // futures' oneshot and mpsc, completed from a plain thread.
    let (tx, rx) = futures_channel::oneshot::channel::<u32>();
    let g = spawn(move || block_on(rx));
    yield_now();
    std::thread::spawn(move || tx.send(5).unwrap()).join().unwrap();
    assert_eq!(g.get(), Ok(Ok(5)));

    let (mut tx, mut rx) = futures_channel::mpsc::channel::<u32>(1);
    let consumer = spawn(move || {
        let mut got = Vec::new();
        while let Some(v) = block_on(std::future::poll_fn(|cx| Pin::new(&mut rx).poll_next(cx))) {
            got.push(v);
        }
        got
    });
    let t = std::thread::spawn(move || {
        for i in 0..20 {
            loop {
                match tx.try_send(i) {
                    Ok(()) => break,
                    Err(e) if e.is_full() => std::thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        }
    });
    assert_eq!(consumer.get(), Ok((0..20).collect::<Vec<_>>())); // the hub runs meanwhile
    t.join().unwrap();
}
