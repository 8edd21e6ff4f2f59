//! The remote queue: how other OS threads reach a hub.
//!
//! Other threads push `Send` closures onto a lock-free `SegQueue`; the hub runs them on
//! its own thread once per loop iteration. If the hub is asleep in `epoll_wait` it is
//! woken through a `mio::Waker` (an eventfd). The waker is only written when the hub
//! may be sleeping (the [`Doorbell`] handshake), so a busy hub receives completions
//! without any syscall on either side.
//!
//! When the hub's thread ends, the queue is closed: jobs pushed later, and jobs still
//! queued, are dropped (on the pushing thread) instead of waiting forever; the things
//! they carry say so in their `Drop` (a remote greenlet that never ran reports that it
//! was abandoned).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use std::io;

use crate::sched::hub::{self, Hub};
use crate::sched::park::Token;
use crate::sched::task::Wake;
use crate::xthread::doorbell::Doorbell;

/// A closure to run on the hub thread.
pub(crate) type RemoteJob = Box<dyn FnOnce() + Send>;

/// One hub's inbox.
pub(crate) struct RemoteQueue {
    queue: SegQueue<RemoteJob>,
    waker: mio::Waker,
    doorbell: Doorbell,
    closed: AtomicBool,
}

impl RemoteQueue {
    pub(crate) fn new(waker: mio::Waker) -> RemoteQueue {
        RemoteQueue { queue: SegQueue::new(), waker, doorbell: Doorbell::new(), closed: AtomicBool::new(false) }
    }

    /// Hands `job` to the hub thread (callable from any thread). If the hub's thread has
    /// ended, `job` is dropped here and `false` returned.
    pub(crate) fn push(&self, job: RemoteJob) -> bool {
        self.queue.push(job);
        if self.closed.load(Ordering::SeqCst) {
            self.drain_closed();
            return false;
        }
        if self.doorbell.must_ring() {
            // A failed wake (eventfd full) still leaves an event pending.
            let _ = self.waker.wake();
        }
        true
    }

    pub(crate) fn pop(&self) -> Option<RemoteJob> {
        self.queue.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The hub is about to sleep in its poller (it re-checks [`RemoteQueue::is_empty`]
    /// next) or has woken up.
    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        if sleeping {
            self.doorbell.going_to_sleep();
        } else {
            self.doorbell.awake();
        }
    }

    /// The hub's thread is ending: nothing will run these jobs any more.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.drain_closed();
    }

    /// Drops every queued job. (A push that raced with `close` sees `closed` after its
    /// own push — both are `SeqCst` — and drains too, so no job stays queued.)
    fn drain_closed(&self) {
        while let Some(job) = self.queue.pop() {
            drop(job);
        }
    }
}

/// Whether `queue` is the calling thread's own hub's queue (never creates a hub: a
/// plain thread that wakes a greenlet stays a plain thread).
pub(crate) fn is_local(queue: &Arc<RemoteQueue>) -> bool {
    hub::if_exists(|h| h.reactor_if_any().is_some_and(|r| Arc::ptr_eq(r.remote(), queue))).unwrap_or(false)
}

/// A `Send` reference to one wait of one greenlet of some hub.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendToken {
    pub(crate) slot: u32,
    pub(crate) id: u64,
    pub(crate) epoch: u32,
}

/// Wakes a parked greenlet from any thread, exactly once: when fired or dropped.
///
/// While it exists, its hub counts work outstanding on another thread, so the hub
/// never reports LoopExit while a completion can still arrive.
pub(crate) struct RemoteWaker {
    queue: Option<Arc<RemoteQueue>>,
    target: SendToken,
}

impl fmt::Debug for RemoteWaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWaker").field("target", &self.target).finish()
    }
}

impl RemoteWaker {
    pub(crate) fn new(queue: Arc<RemoteQueue>, target: SendToken) -> RemoteWaker {
        RemoteWaker { queue: Some(queue), target }
    }

    /// Makes the waker do nothing (see `Hub::disarm_remote`, which also stops counting
    /// it as outstanding work).
    pub(crate) fn disarm(mut self) {
        self.queue = None;
    }
}

impl RemoteWaker {
    /// Wakes the greenlet now: directly when called on its own hub's thread, else
    /// through the remote queue. `false` if its hub's thread has ended (the greenlet
    /// will never run again).
    pub(crate) fn wake(mut self) -> bool {
        let Some(queue) = self.queue.take() else { return true };
        let target = self.target;
        if is_local(&queue) {
            hub::with(|h| h.remote_wake(target));
            true
        } else {
            queue.push(Box::new(move || {
                hub::with(|h| h.remote_wake(target));
            }))
        }
    }
}

impl Drop for RemoteWaker {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            let target = self.target;
            queue.push(Box::new(move || {
                hub::with(|h| h.remote_wake(target));
            }));
        }
    }
}

/// The hub's side of remote wakers: every armed waker is counted in the hub's
/// `remote_jobs` until it fires or is disarmed, so the loop knows another thread can
/// still wake it (no LoopExit meanwhile).
impl Hub {
    /// A waker for the current wait that another thread can fire.
    pub(crate) fn remote_waker(&self) -> io::Result<RemoteWaker> {
        let reactor = self.reactor()?;
        let task = self.current();
        let target = SendToken { slot: task.slot(), id: task.id(), epoch: task.epoch() };
        self.remote_jobs().up();
        Ok(RemoteWaker::new(reactor.remote().clone(), target))
    }

    /// Withdraws a [`RemoteWaker`] that will never fire (its job never ran).
    pub(crate) fn disarm_remote(&self, waker: RemoteWaker) {
        waker.disarm();
        self.remote_jobs().down();
    }

    /// Runs on the hub thread when a [`RemoteWaker`] fires.
    pub(crate) fn remote_wake(&self, target: SendToken) {
        self.remote_jobs().down();
        let task = if target.id == 0 { Some(self.root().clone()) } else { self.live_task(target.slot, target.id) };
        if let Some(task) = task {
            Token { task, epoch: target.epoch }.unpark(self, Wake::Notify);
        }
    }
}
