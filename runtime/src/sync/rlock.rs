//! `RLock<T>`: a lock the greenlet holding it may take again (gevent.lock.RLock).

use std::cell::Cell;
use std::fmt;
use std::ops::Deref;
use std::time::{Duration, Instant};

use super::semaphore::Semaphore;
use crate::sched::hub;

/// A re-entrant lock around a `T`: the greenlet that holds it may `lock` it again (each
/// guard counts once); other greenlets wait, served FIFO, until every guard of the
/// holder is gone. Guards give `&T` only, since several may exist at once: put a
/// `RefCell` inside for mutation.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use greenhub::{spawn, sync::RLock};
/// let lock = Rc::new(RLock::new(RefCell::new(Vec::new())));
/// let l = lock.clone();
/// let g = spawn(move || {
///     let outer = l.lock();
///     let inner = l.lock(); // the holder takes it again: no deadlock
///     inner.borrow_mut().push("nested");
///     drop(inner);
///     outer.borrow_mut().push("outer");
/// });
/// g.join();
/// assert_eq!(*lock.lock().borrow(), ["nested", "outer"]);
/// ```
pub struct RLock<T> {
    /// One permit: taken by the first guard of a holder, given back by its last.
    sem: Semaphore,
    /// The holder's task id, while held.
    owner: Cell<Option<u64>>,
    /// Live guards of the holder.
    depth: Cell<usize>,
    value: T,
}

impl<T: Default> Default for RLock<T> {
    fn default() -> Self {
        RLock::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for RLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock").field("owner", &self.owner.get()).field("depth", &self.depth.get()).finish()
    }
}

impl<T> RLock<T> {
    /// An unlocked lock around `value`.
    ///
    /// ```
    /// let l = greenhub::sync::RLock::new(5);
    /// assert_eq!(*l.lock(), 5);
    /// ```
    pub fn new(value: T) -> RLock<T> {
        RLock { sem: Semaphore::new(1), owner: Cell::new(None), depth: Cell::new(0), value }
    }

    /// Takes the lock, waiting while another greenlet holds it.
    ///
    /// ```
    /// let l = greenhub::sync::RLock::new(());
    /// let a = l.lock();
    /// let b = l.lock();
    /// drop((a, b));
    /// ```
    pub fn lock(&self) -> RLockGuard<'_, T> {
        self.lock_until(None).expect("a lock without deadline only returns when held")
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let l = Rc::new(greenhub::sync::RLock::new(()));
    /// let held = l.lock();
    /// let l2 = l.clone();
    /// let other = greenhub::spawn(move || l2.lock_timeout(std::time::Duration::from_millis(5)).is_some());
    /// assert_eq!(other.get(), Ok(false));
    /// drop(held);
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_, T>> {
        self.lock_until(Instant::now().checked_add(timeout))
    }

    /// Takes the lock if that needs no wait (it is free, or the caller holds it).
    ///
    /// ```
    /// let l = greenhub::sync::RLock::new(1);
    /// let g = l.try_lock().unwrap();
    /// assert!(l.try_lock().is_some()); // re-entrant
    /// drop(g);
    /// ```
    pub fn try_lock(&self) -> Option<RLockGuard<'_, T>> {
        let me = current();
        if self.owner.get() == Some(me) {
            return Some(self.enter(me));
        }
        let permit = self.sem.try_acquire()?;
        std::mem::forget(permit); // given back by the last guard
        Some(self.enter(me))
    }

    /// Whether some greenlet holds the lock.
    ///
    /// ```
    /// let l = greenhub::sync::RLock::new(());
    /// assert!(!l.is_locked());
    /// let _g = l.lock();
    /// assert!(l.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.owner.get().is_some()
    }

    fn lock_until(&self, deadline: Option<Instant>) -> Option<RLockGuard<'_, T>> {
        let me = current();
        if self.owner.get() == Some(me) {
            return Some(self.enter(me));
        }
        let permit = match deadline {
            None => self.sem.acquire(),
            Some(d) => self.sem.acquire_timeout(d.saturating_duration_since(Instant::now()))?,
        };
        std::mem::forget(permit); // given back by the last guard
        Some(self.enter(me))
    }

    fn enter(&self, me: u64) -> RLockGuard<'_, T> {
        debug_assert!(self.owner.get().is_none_or(|o| o == me), "an RLock has one holder");
        self.owner.set(Some(me));
        self.depth.set(self.depth.get() + 1);
        RLockGuard { lock: self }
    }
}

/// The running task's id (greenlet zero: 0), which identifies the holder.
fn current() -> u64 {
    hub::with(|h| h.current().id())
}

/// One hold of an [`RLock`]; the lock is free again when the holder's last guard drops.
///
/// ```
/// let l = greenhub::sync::RLock::new(String::from("v"));
/// let g: greenhub::sync::RLockGuard<'_, String> = l.lock();
/// assert_eq!(g.len(), 1);
/// ```
pub struct RLockGuard<'a, T> {
    lock: &'a RLock<T>,
}

impl<T: fmt::Debug> fmt::Debug for RLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.lock.value, f)
    }
}

impl<T> Deref for RLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.lock.value
    }
}

impl<T> Drop for RLockGuard<'_, T> {
    fn drop(&mut self) {
        let l = self.lock;
        let depth = l.depth.get() - 1;
        l.depth.set(depth);
        if depth == 0 {
            l.owner.set(None);
            let _ = l.sem.release();
        }
    }
}
