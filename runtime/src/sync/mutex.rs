//! `Mutex<T>`: data locked across switches, waiters served FIFO.

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::semaphore::{Semaphore, SemaphoreGuard};

/// Protects `T` across switches: a greenlet can hold the lock while it waits on I/O or
/// sleeps, and other greenlets that want it wait in FIFO order (gevent's `RLock`
/// without re-entrance: locking twice from one greenlet waits forever).
///
/// ```
/// use std::rc::Rc;
/// use greenhub::{joinall, sleep, spawn, sync::Mutex};
/// let m = Rc::new(Mutex::new(Vec::new()));
/// let gs: Vec<_> = (0..3).map(|i| {
///     let m = m.clone();
///     spawn(move || {
///         let mut v = m.lock();
///         v.push(i);
///         sleep(std::time::Duration::from_millis(1)); // still held
///         v.push(i);
///     })
/// }).collect();
/// joinall(&gs);
/// assert_eq!(*m.lock(), [0, 0, 1, 1, 2, 2]);
/// ```
pub struct Mutex<T> {
    sem: Semaphore,
    value: UnsafeCell<T>,
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("value", &*g).finish(),
            None => f.debug_struct("Mutex").field("value", &"<locked>").finish(),
        }
    }
}

impl<T> Mutex<T> {
    /// A mutex holding `value`.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(1);
    /// assert_eq!(*m.lock(), 1);
    /// ```
    pub fn new(value: T) -> Mutex<T> {
        Mutex { sem: Semaphore::new(1), value: UnsafeCell::new(value) }
    }

    /// Waits for the lock (FIFO).
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(0);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 1);
    /// ```
    pub fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard { mutex: self, _permit: self.sem.acquire() }
    }

    /// Waits at most `timeout` for the lock.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(0);
    /// let held = m.lock();
    /// assert!(m.lock_timeout(std::time::Duration::from_millis(1)).is_none());
    /// drop(held);
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        self.sem.acquire_timeout(timeout).map(|p| MutexGuard { mutex: self, _permit: p })
    }

    /// Takes the lock if it is free and nobody waits for it.
    ///
    /// ```
    /// let m = greenhub::sync::Mutex::new(0);
    /// let a = m.try_lock();
    /// assert!(a.is_some() && m.try_lock().is_none());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.sem.try_acquire().map(|p| MutexGuard { mutex: self, _permit: p })
    }

    /// The value, when nobody can hold the lock.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::Mutex::new(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

/// Access to a locked [`Mutex`]'s value; dropping it unlocks.
///
/// ```
/// let m = greenhub::sync::Mutex::new(vec![1]);
/// let mut guard = m.lock();
/// guard.push(2);
/// drop(guard);
/// assert_eq!(*m.lock(), [1, 2]);
/// ```
pub struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    _permit: SemaphoreGuard<'a>,
}

impl<T: fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the mutex's only permit, so no other guard exists;
        // `Mutex` is `!Sync` (its semaphore has `Cell`s), so no other thread can reach it.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the guard.
        unsafe { &mut *self.mutex.value.get() }
    }
}
