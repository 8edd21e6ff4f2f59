//! The remote queue: how other OS threads reach a hub.
//!
//! Other threads push `Send` closures onto a lock-free `SegQueue`; the hub runs them on
//! its own thread once per loop iteration. If the hub is asleep in `epoll_wait` it is
//! woken through a `mio::Waker` (an eventfd). The waker is only written when the hub
//! says it is sleeping (both sides use `SeqCst`, so a push is never missed), so a busy
//! hub receives completions without any syscall on either side.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use crate::hub;

/// A closure to run on the hub thread.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// One hub's inbox.
pub(crate) struct RemoteQueue {
    queue: SegQueue<Job>,
    waker: mio::Waker,
    sleeping: AtomicBool,
}

impl RemoteQueue {
    pub(crate) fn new(waker: mio::Waker) -> RemoteQueue {
        RemoteQueue { queue: SegQueue::new(), waker, sleeping: AtomicBool::new(false) }
    }

    /// Hands `job` to the hub thread (callable from any thread).
    pub(crate) fn push(&self, job: Job) {
        self.queue.push(job);
        if self.sleeping.load(Ordering::SeqCst) {
            // A failed wake (eventfd full) still leaves an event pending.
            let _ = self.waker.wake();
        }
    }

    pub(crate) fn pop(&self) -> Option<Job> {
        self.queue.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(crate) fn set_sleeping(&self, sleeping: bool) {
        self.sleeping.store(sleeping, Ordering::SeqCst);
    }
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
