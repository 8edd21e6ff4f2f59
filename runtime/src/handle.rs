//! `HubHandle`: spawn greenlets on another thread's hub.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::remote_greenlet::RemoteGreenlet;
use crate::sched::hub;
use crate::sched::remote::RemoteQueue;

/// A `Send + Sync` handle to one thread's hub, for other threads: [`HubHandle::spawn`]
/// runs a closure as a new greenlet on that hub's thread, through its remote queue (the
/// hub is woken if it sleeps in its poller), and returns a [`RemoteGreenlet`] to join,
/// get or kill it from anywhere. A [`Runtime`](crate::Runtime) keeps one hub per core
/// alive and hands out these handles ([`Runtime::hub`](crate::Runtime::hub)).
///
/// ```
/// let rt = greenhub::Runtime::new(1).unwrap();
/// let hub = rt.hub(0).clone();
/// let r = std::thread::spawn(move || hub.spawn(greenhub::Runtime::current_hub).get()).join().unwrap();
/// assert_eq!(r, Ok(Some(0))); // it ran as a greenlet on the runtime's hub 0
/// ```
#[derive(Clone)]
pub struct HubHandle {
    queue: Arc<RemoteQueue>,
    thread: Arc<str>,
}

impl fmt::Debug for HubHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubHandle").field("thread", &self.thread).finish()
    }
}

impl HubHandle {
    /// A handle to the calling thread's hub (created, with its poller, if needed).
    ///
    /// ```
    /// let h = greenhub::HubHandle::current().unwrap();
    /// println!("{h:?}");
    /// ```
    pub fn current() -> io::Result<HubHandle> {
        hub::with(|h| {
            let queue = h.reactor()?.remote().clone();
            let thread = std::thread::current().name().unwrap_or("<unnamed>").into();
            Ok(HubHandle { queue, thread })
        })
    }

    /// Runs `f` as a new greenlet on the handle's hub; the returned handle joins, gets
    /// or kills it from any thread. Never waits. If that thread has exited (or exits
    /// before `f` ran), `f` is dropped without running and the handle reports a
    /// `Panicked("greenlet abandoned ...")` error.
    ///
    /// ```
    /// let h = greenhub::HubHandle::current().unwrap();
    /// let g = h.spawn(|| 6 * 7); // from this very thread, too
    /// assert_eq!(g.get(), Ok(42)); // parks this thread's greenlet zero: the hub runs it
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> RemoteGreenlet<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::remote_greenlet::spawn(&self.queue, None, f)
    }

    pub(crate) fn queue(&self) -> &Arc<RemoteQueue> {
        &self.queue
    }
}
