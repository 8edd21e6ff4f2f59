//! `HubHandle`: spawn greenlets on another thread's hub.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::hub;
use crate::remote::RemoteQueue;

/// A `Send + Sync` handle to one thread's hub, for other threads: [`HubHandle::spawn`]
/// runs a closure as a new greenlet on that hub's thread, through its remote queue (the
/// hub is woken if it sleeps in its poller). To use several cores, run a hub per thread
/// and hand work to them this way.
///
/// ```
/// use std::sync::mpsc;
/// let (handle_tx, handle_rx) = mpsc::channel();
/// let (done_tx, done_rx) = mpsc::channel::<()>();
/// let worker = std::thread::spawn(move || {
///     handle_tx.send(greenhub::HubHandle::current().unwrap()).unwrap();
///     // Park this thread's greenlet zero until told to stop; the hub runs meanwhile.
///     greenhub::threadpool::spawn_blocking(move || done_rx.recv().unwrap());
///     greenhub::run();
/// });
/// let hub = handle_rx.recv().unwrap();
/// let (tx, rx) = mpsc::channel();
/// hub.spawn(move || tx.send(greenhub::current_name().is_some()).unwrap());
/// assert_eq!(rx.recv().unwrap(), true); // it ran as a greenlet on the worker's hub
/// done_tx.send(()).unwrap();
/// worker.join().unwrap();
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

    /// Runs `f` as a new greenlet on the handle's hub. Never waits. If that thread has
    /// exited, `f` is dropped without running.
    ///
    /// ```
    /// let h = greenhub::HubHandle::current().unwrap();
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// h.spawn(move || tx.send(42).unwrap()); // from this very thread, too
    /// greenhub::sleep(std::time::Duration::from_millis(1)); // let the hub run it
    /// assert_eq!(rx.try_recv(), Ok(42));
    /// ```
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.queue.push(Box::new(move || {
            drop(crate::spawn(f));
        }));
    }
}
