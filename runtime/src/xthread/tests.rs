//! Model checks of the cross-thread parts with loom, which runs each body under every
//! interleaving (up to a preemption bound) and fails on a deadlock, a lost wake-up or a
//! failed assertion. Run: `RUSTFLAGS="--cfg loom" cargo test -p greenhub-runtime --lib
//! --release xthread` (in `.ci/run`). Only plain-thread waiters exist under loom (its
//! model threads have no hub); the greenlet side of a wake-up is the remote queue, whose
//! doorbell handshake is checked here on its own.

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use super::doorbell::Doorbell;
use crate::channel::{self, RecvError};
use crate::sync::shared::{Event, Semaphore};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// An eventfd: a counter the consumer sleeps on.
#[derive(Default)]
struct EventFd {
    count: Mutex<u32>,
    cond: Condvar,
}

impl EventFd {
    fn write(&self) {
        *self.count.lock().unwrap() += 1;
        self.cond.notify_one();
    }
    fn wait(&self) {
        let mut c = self.count.lock().unwrap();
        while *c == 0 {
            c = self.cond.wait(c).unwrap();
        }
        *c = 0;
    }
}

/// The remote queue's handshake: a producer that skips the eventfd write while the
/// consumer is awake never leaves the consumer asleep with a job queued. The queue is
/// modelled by its length with the orderings a lock-free queue gives (release on push,
/// acquire on the emptiness check), so only the doorbell's fences order the two sides.
#[test]
fn xthread_doorbell_never_strands_a_push() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    model(|| {
        let queue = Arc::new(AtomicUsize::new(0));
        let bell = Arc::new(Doorbell::new());
        let fd = Arc::new(EventFd::default());
        let (q, b, f) = (queue.clone(), bell.clone(), fd.clone());
        let producer = thread::spawn(move || {
            q.fetch_add(1, Ordering::Release);
            if b.must_ring() {
                f.write();
            }
        });
        // The hub's loop: until it has the job, announce sleep, re-check, sleep.
        loop {
            if queue.load(Ordering::Acquire) == 1 {
                break;
            }
            bell.going_to_sleep();
            if queue.load(Ordering::Acquire) == 0 {
                fd.wait();
            }
            bell.awake();
        }
        producer.join().unwrap();
    });
}

#[test]
fn xthread_channel_hand_off_in_order() {
    model(|| {
        let (tx, rx) = channel::bounded::<u32>(1);
        let sender = thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError)); // the sender is gone
        sender.join().unwrap();
    });
}

#[test]
fn xthread_rendezvous_hand_off() {
    model(|| {
        let (tx, rx) = channel::rendezvous::<u32>();
        let receiver = thread::spawn(move || rx.recv());
        tx.send(7).unwrap();
        assert_eq!(receiver.join().unwrap(), Ok(7));
    });
}

#[test]
fn xthread_channel_close_wakes_a_waiting_receiver() {
    model(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let receiver = thread::spawn(move || (rx.recv(), rx.recv()));
        tx.send(1).unwrap();
        drop(tx);
        assert_eq!(receiver.join().unwrap(), (Ok(1), Err(RecvError)));
    });
}

#[test]
fn xthread_two_receivers_one_item_each() {
    model(|| {
        let (tx, rx) = channel::unbounded::<u32>();
        let rx2 = rx.clone();
        let other = thread::spawn(move || rx2.recv().unwrap());
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let mine = rx.recv().unwrap();
        let theirs = other.join().unwrap();
        assert_eq!(mine + theirs, 3);
        assert_ne!(mine, theirs);
    });
}

#[test]
fn xthread_shared_event() {
    model(|| {
        let ev = Arc::new(Event::new());
        let e = ev.clone();
        let waiter = thread::spawn(move || e.wait());
        ev.set();
        waiter.join().unwrap();
        assert!(ev.is_set());
    });
}

#[test]
fn xthread_shared_semaphore_hands_over() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let s = sem.clone();
        let waiter = thread::spawn(move || drop(s.acquire()));
        sem.release().unwrap();
        waiter.join().unwrap();
        assert_eq!(sem.available(), 1);
    });
}

#[test]
fn xthread_remote_greenlet_completion() {
    model(|| {
        let (handle, report) = crate::remote_greenlet::model_pair::<u32>();
        let finisher = thread::spawn(move || report(5));
        assert_eq!(handle.get(), Ok(5));
        finisher.join().unwrap();
    });
}
