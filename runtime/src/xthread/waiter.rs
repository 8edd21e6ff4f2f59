//! One wait of one greenlet or thread on a cross-thread object (a channel, a shared
//! event or semaphore, a remote greenlet's completion).
//!
//! A [`Waiter`] is registered in the object's [`WaitList`](super::list::WaitList)s
//! (several, for a `select`) while the object's lock is held. Whoever ends the wait
//! *claims* it first: an atomic transition out of `WAITING`, which happens at most once
//! — to the index of the case that served it (an item or a permit was handed over), to
//! [`WOKEN`] (re-check the object: it was closed or set), or to `WITHDRAWN` (the waiter
//! gave up: deadline, kill). Only the claimant fires the waiter's unparker, after
//! releasing the lock. So a waiter is served at most once even when it waits on several
//! objects, and a waiter that gives up can tell whether something was handed to it
//! meanwhile (then it must take it, or pass it on).
//!
//! A greenlet (or a thread's greenlet zero, whose hub runs meanwhile) parks on its hub
//! and is woken through the hub's remote queue — directly, without the queue, when the
//! claimant runs on the same hub. A thread without a hub blocks in `thread::park`.

use crate::sched::task::Primitive;
use std::fmt;
use std::time::Instant;

use super::loom::{lock, thread, Arc, AtomicUsize, Mutex, Ordering};
use crate::sched::remote::RemoteWaker;
use crate::sched::task::Wait;

/// The waiter still waits.
const WAITING: usize = usize::MAX;
/// The waiter gave up (deadline, kill) before anyone claimed it.
const WITHDRAWN: usize = usize::MAX - 1;
/// Claimed without anything handed over: the waiter re-checks the object.
pub(crate) const WOKEN: usize = usize::MAX - 2;

/// How a claimed waiter is woken.
enum Unparker {
    /// A greenlet or greenlet zero parked on its hub.
    Hub(RemoteWaker),
    /// A thread without a hub, blocked in `thread::park`.
    Thread(thread::Thread),
    /// An async task (a `RemoteGreenlet` awaited as a future).
    Task(std::task::Waker),
}

/// One wait (see the module docs).
pub(crate) struct Waiter {
    state: AtomicUsize,
    /// Taken by whoever ends the wait: the claimant (fires it) or the waiter when it
    /// withdraws (disarms it).
    unparker: Mutex<Option<Unparker>>,
    /// Whether the waiter parks on a hub (else it blocks its thread).
    on_hub: bool,
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter").field("state", &self.state.load(Ordering::Relaxed)).finish()
    }
}

impl Waiter {
    /// A waiter for the caller's next wait: parks on the hub where the caller can
    /// (a greenlet, or a thread's own stack when it has a hub), else blocks the thread.
    pub(crate) fn new() -> Arc<Waiter> {
        let unparker = match Self::hub_waker() {
            Some(w) => Unparker::Hub(w),
            None => Unparker::Thread(thread::current()),
        };
        let on_hub = matches!(unparker, Unparker::Hub(_));
        Arc::new(Waiter { state: AtomicUsize::new(WAITING), unparker: Mutex::new(Some(unparker)), on_hub })
    }

    /// A waiter that wakes an async task: its wait is the task's `Pending`.
    pub(crate) fn for_task(waker: std::task::Waker) -> Arc<Waiter> {
        Arc::new(Waiter {
            state: AtomicUsize::new(WAITING),
            unparker: Mutex::new(Some(Unparker::Task(waker))),
            on_hub: false,
        })
    }

    #[cfg(not(loom))]
    fn hub_waker() -> Option<RemoteWaker> {
        // A hub that cannot create its poller (out of fds) cannot be woken from another
        // thread, and inside `ffi::no_unwind` with a kill or timeout pending every park
        // returns at once: block the thread instead (no spinning; a deadline still ends
        // a timed wait).
        if !crate::ffi::can_park() {
            return None;
        }
        crate::sched::hub::with(|h| {
            if crate::ffi::pending(&h.current()).is_some() {
                return None;
            }
            h.remote_waker().ok()
        })
    }

    #[cfg(loom)]
    fn hub_waker() -> Option<RemoteWaker> {
        None // loom's model threads have no hub
    }

    /// Claims the waiter with `how` (a case index or [`WOKEN`]); `false` if someone else
    /// ended the wait first. The claimant must call [`Waiter::wake`] once it has
    /// released the object's lock.
    pub(crate) fn try_claim(&self, how: usize) -> bool {
        debug_assert!(how != WAITING && how != WITHDRAWN);
        self.state.compare_exchange(WAITING, how, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether the wait can still be claimed.
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Ends the wait from the waiter's side. `None`: withdrawn, nobody will wake it (its
    /// entries must still be removed from the lists). `Some(how)`: it was claimed first,
    /// with `how`. Calling it again gives the same answer.
    pub(crate) fn withdraw(&self) -> Option<usize> {
        match self.state.compare_exchange(WAITING, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire) {
            Err(WITHDRAWN) => None,
            Ok(_) => {
                let unparker = lock(&self.unparker).take();
                if let Some(Unparker::Hub(w)) = unparker {
                    // Never fires now: stop counting it as outstanding work of our hub.
                    crate::sched::hub::with(|h| h.disarm_remote(w));
                }
                None
            }
            Err(how) => Some(how),
        }
    }

    /// Fires the unparker (by the claimant, after releasing the object's lock).
    /// `false` if the waiter is a greenlet whose hub's thread has ended: it will never
    /// take what it was handed, so the claimant must pass that on.
    pub(crate) fn wake(&self) -> bool {
        debug_assert!(!self.is_waiting());
        let unparker = lock(&self.unparker).take();
        match unparker {
            Some(Unparker::Hub(w)) => w.wake(),
            Some(Unparker::Thread(t)) => {
                t.unpark();
                true
            }
            Some(Unparker::Task(w)) => {
                w.wake();
                true
            }
            None => {
                debug_assert!(false, "a waiter is woken once");
                true
            }
        }
    }

    /// Waits until claimed or `deadline` (or, on a hub, a kill or timeout, which unwinds
    /// from here). May return early; the caller then calls [`Waiter::withdraw`] to find
    /// out whether it was claimed.
    pub(crate) fn wait(&self, what: Primitive, deadline: Option<Instant>) {
        if self.on_hub {
            self.park_on_hub(what, deadline);
            return;
        }
        while self.is_waiting() {
            let timeout = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(t) if !t.is_zero() => Some(t),
                    _ => return,
                },
                None => None,
            };
            super::loom::park_timeout(timeout);
        }
    }

    fn park_on_hub(&self, what: Primitive, deadline: Option<Instant>) {
        crate::sched::hub::with(|h| {
            // The remote waker was made for the current wait epoch (nothing ran since
            // `Waiter::new`): it and this timer are the tokens of this park. It parks
            // even if already claimed: the claimant's wake-up is then on its way, and
            // only the park's wake-up advances the epoch so that this wake-up can never
            // end a later, unrelated wait.
            let token = h.token();
            let _timer = crate::sched::timer::TimerGuard::wake_at(h, deadline, &token);
            drop(token);
            h.park(Wait::Sync(what, deadline));
        });
    }
}
