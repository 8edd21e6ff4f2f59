//! `Semaphore`: counted permits with FIFO hand-off (gevent.lock.Semaphore).

use crate::sched::task::Primitive;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sched::hub::{self, Hub};
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::Wait;

/// Counted permits. A release with waiters hands the permit straight to the first
/// waiter (strict FIFO: a newcomer cannot overtake it); a waiter that dies before using
/// a handed-over permit passes it on.
///
/// ```
/// use std::rc::Rc;
/// use greenhub::{joinall, sleep, spawn, sync::Semaphore};
/// let sem = Rc::new(Semaphore::new(2));
/// let gs: Vec<_> = (0..4).map(|_| {
///     let s = sem.clone();
///     spawn(move || { let _permit = s.acquire(); sleep(std::time::Duration::from_millis(1)); })
/// }).collect();
/// joinall(&gs);
/// assert_eq!(sem.available(), 2);
/// ```
pub struct Semaphore {
    permits: Cell<usize>,
    limit: Option<usize>,
    waiters: WaitQueue,
}

/// The error of releasing a bounded semaphore above its initial count.
///
/// ```
/// let s = greenhub::sync::Semaphore::bounded(1);
/// assert_eq!(s.release(), Err(greenhub::sync::SemaphoreFull));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("semaphore released too many times")]
pub struct SemaphoreFull;

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.permits.get())
            .field("waiters", &self.waiters.len())
            .finish()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits; [`Semaphore::release`] may add more.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore { permits: Cell::new(permits), limit: None, waiters: WaitQueue::new() }
    }

    /// A semaphore that refuses to be released above `permits` (gevent's
    /// `BoundedSemaphore`).
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::bounded(1);
    /// assert_eq!(s.release(), Err(greenhub::sync::SemaphoreFull));
    /// ```
    pub fn bounded(permits: usize) -> Semaphore {
        Semaphore { permits: Cell::new(permits), limit: Some(permits), waiters: WaitQueue::new() }
    }

    /// Permits available right now.
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(1);
    /// let g = s.acquire();
    /// assert_eq!(s.available(), 0);
    /// drop(g);
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.permits.get()
    }

    /// Waits for a permit (FIFO); the guard gives it back when dropped.
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(1);
    /// let _permit = s.acquire();
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.acquire_until(None).expect("no deadline")
    }

    /// Waits at most `timeout` for a permit.
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(1);
    /// let held = s.acquire();
    /// assert!(s.acquire_timeout(std::time::Duration::from_millis(2)).is_none());
    /// drop(held);
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.acquire_until(Instant::now().checked_add(timeout))
    }

    /// Takes a permit if one is free and nobody waits for one.
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(1);
    /// let a = s.try_acquire();
    /// assert!(a.is_some() && s.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        self.take_free().then(|| SemaphoreGuard { sem: self })
    }

    /// Waits for a permit that is not given back automatically (pair with
    /// [`Semaphore::release`]).
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(1);
    /// s.acquire_forget();
    /// assert_eq!(s.available(), 0);
    /// s.release().unwrap();
    /// ```
    pub fn acquire_forget(&self) {
        std::mem::forget(self.acquire());
    }

    /// Adds a permit (to the first waiter if there is one). Never switches.
    ///
    /// ```
    /// let s = greenhub::sync::Semaphore::new(0);
    /// s.release().unwrap();
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn release(&self) -> Result<(), SemaphoreFull> {
        if let Some(limit) = self.limit {
            if self.permits.get() >= limit {
                return Err(SemaphoreFull);
            }
        }
        hub::with(|h| self.give(h));
        Ok(())
    }

    fn take_free(&self) -> bool {
        let n = self.permits.get();
        if n > 0 && !self.waiters.has_live() {
            self.permits.set(n - 1);
            true
        } else {
            false
        }
    }

    /// Hands a permit to the first waiter, or puts it back in the pool.
    fn give(&self, h: &Hub) {
        if !self.waiters.wake_one(h) {
            self.permits.set(self.permits.get() + 1);
        }
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        if self.take_free() {
            return Some(SemaphoreGuard { sem: self });
        }
        let granted = hub::with(|h| {
            wait_in(h, &self.waiters, Wait::Sync(Primitive::Semaphore, deadline), deadline, || {
                hub::with(|h| self.give(h))
            })
        });
        granted.then(|| SemaphoreGuard { sem: self })
    }
}

/// A held permit; dropping it releases the permit.
///
/// ```
/// let s = greenhub::sync::Semaphore::new(1);
/// {
///     let _permit = s.acquire();
///     assert_eq!(s.available(), 0);
/// }
/// assert_eq!(s.available(), 1);
/// ```
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        hub::try_with(|h| self.sem.give(h));
    }
}
