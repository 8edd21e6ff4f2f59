//! `JoinableQueue<T>`: a queue whose consumers report `task_done`, and `join` waits
//! for every put item to be done (gevent.queue.JoinableQueue).

use crate::sched::task::Primitive;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use super::Queue;
use crate::sched::hub;
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::Wait;

/// A [`Queue`] that counts unfinished items: `put` adds one, `task_done` removes one,
/// `join` waits until none is left.
///
/// ```
/// use std::rc::Rc;
/// use greenhub::{spawn, queue::JoinableQueue};
/// let q = Rc::new(JoinableQueue::unbounded());
/// for job in 0..3 { q.put(job); }
/// let w = q.clone();
/// let _worker = spawn(move || loop { let _job = w.get(); w.task_done().unwrap(); });
/// q.join(); // all three done
/// assert_eq!(q.unfinished(), 0);
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
    unfinished: Cell<usize>,
    joiners: WaitQueue,
}

/// The error of calling `task_done` more often than items were put.
///
/// ```
/// let q = greenhub::queue::JoinableQueue::<u8>::unbounded();
/// assert_eq!(q.task_done(), Err(greenhub::queue::TaskDoneTooOften));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than items were put")]
pub struct TaskDoneTooOften;

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue").field("queue", &self.queue).field("unfinished", &self.unfinished.get()).finish()
    }
}

impl<T> JoinableQueue<T> {
    fn wrap(queue: Queue<T>) -> Self {
        JoinableQueue { queue, unfinished: Cell::new(0), joiners: WaitQueue::new() }
    }

    /// A joinable queue holding at most `n` items (0: rendezvous).
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::<u8>::bounded(4);
    /// assert!(q.is_empty());
    /// ```
    pub fn bounded(n: usize) -> Self {
        Self::wrap(Queue::bounded(n))
    }

    /// A joinable queue without a size limit.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::<u8>::unbounded();
    /// q.join(); // nothing unfinished
    /// ```
    pub fn unbounded() -> Self {
        Self::wrap(Queue::unbounded())
    }

    /// Puts an item (waiting while full) and counts it unfinished.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::unbounded();
    /// q.put(1);
    /// assert_eq!(q.unfinished(), 1);
    /// ```
    pub fn put(&self, item: T) {
        self.queue.put(item);
        self.unfinished.set(self.unfinished.get() + 1);
    }

    /// Puts an item if there is room now.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::bounded(0);
    /// assert_eq!(q.try_put(1), Err(1));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), T> {
        self.queue.try_put(item)?;
        self.unfinished.set(self.unfinished.get() + 1);
        Ok(())
    }

    /// Puts an item, waiting at most `timeout` for room.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::unbounded();
    /// assert_eq!(q.put_timeout(1, std::time::Duration::from_millis(1)), Ok(()));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.queue.put_timeout(item, timeout)?;
        self.unfinished.set(self.unfinished.get() + 1);
        Ok(())
    }

    /// Takes the first item, waiting while empty (see [`Queue::get`]).
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::unbounded();
    /// q.put(2);
    /// assert_eq!(q.get(), 2);
    /// ```
    pub fn get(&self) -> T {
        self.queue.get()
    }

    /// Takes the first item if there is one.
    ///
    /// ```
    /// assert_eq!(greenhub::queue::JoinableQueue::<u8>::unbounded().try_get(), None);
    /// ```
    pub fn try_get(&self) -> Option<T> {
        self.queue.try_get()
    }

    /// Takes the first item, waiting at most `timeout`.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::<u8>::unbounded();
    /// assert_eq!(q.get_timeout(std::time::Duration::from_millis(1)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.queue.get_timeout(timeout)
    }

    /// Number of queued items.
    ///
    /// ```
    /// assert_eq!(greenhub::queue::JoinableQueue::<u8>::unbounded().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no item is queued.
    ///
    /// ```
    /// assert!(greenhub::queue::JoinableQueue::<u8>::unbounded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a `put` would wait now.
    ///
    /// ```
    /// assert!(greenhub::queue::JoinableQueue::<u8>::bounded(0).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    /// Items put but not yet reported done.
    ///
    /// ```
    /// assert_eq!(greenhub::queue::JoinableQueue::<u8>::unbounded().unfinished(), 0);
    /// ```
    pub fn unfinished(&self) -> usize {
        self.unfinished.get()
    }

    /// Reports one item done; wakes `join`ers when none is left. Never switches.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::unbounded();
    /// q.put(());
    /// q.get();
    /// assert_eq!(q.task_done(), Ok(()));
    /// assert_eq!(q.task_done(), Err(greenhub::queue::TaskDoneTooOften));
    /// ```
    pub fn task_done(&self) -> Result<(), TaskDoneTooOften> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(TaskDoneTooOften);
        }
        self.unfinished.set(n - 1);
        if n == 1 {
            hub::with(|h| self.joiners.wake_all(h));
        }
        Ok(())
    }

    /// Waits until every item put has been reported done.
    ///
    /// ```
    /// greenhub::queue::JoinableQueue::<u8>::unbounded().join();
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits at most `timeout`; returns whether every item is done.
    ///
    /// ```
    /// let q = greenhub::queue::JoinableQueue::unbounded();
    /// q.put(1);
    /// assert!(!q.join_timeout(std::time::Duration::from_millis(1)));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        while self.unfinished.get() > 0 {
            if !hub::with(|h| wait_in(h, &self.joiners, Wait::Sync(Primitive::JoinableJoin, deadline), deadline, || {}))
            {
                return self.unfinished.get() == 0;
            }
        }
        true
    }
}
