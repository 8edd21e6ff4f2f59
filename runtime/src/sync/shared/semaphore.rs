//! `shared::Semaphore`: counted permits across hubs and threads, FIFO hand-off.

use crate::sched::task::Primitive;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::SemaphoreFull;
use crate::xthread::list::WaitList;
use crate::xthread::loom::{lock, Mutex};
use crate::xthread::wait::wait_in_list;

struct State {
    permits: usize,
    waiters: WaitList,
}

/// Counted permits for greenlets of any hub and plain threads. A release with waiters
/// hands the permit straight to the first (FIFO: a newcomer cannot overtake it); a
/// waiter killed or timed out after a permit was handed to it passes it on.
///
/// ```
/// use std::sync::Arc;
/// use greenhub::sync::shared::Semaphore;
/// let rt = greenhub::Runtime::new(2).unwrap();
/// let sem = Arc::new(Semaphore::new(1));
/// let gs: Vec<_> = (0..4).map(|i| {
///     let sem = sem.clone();
///     rt.spawn(move || { let _permit = sem.acquire(); greenhub::sleep(std::time::Duration::from_millis(1)); i })
/// }).collect();
/// let sum: i32 = gs.into_iter().map(|g| g.get().unwrap()).sum();
/// assert_eq!((sum, sem.available()), (6, 1));
/// ```
pub struct Semaphore {
    state: Mutex<State>,
    limit: Option<usize>,
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("shared::Semaphore").field("available", &st.permits).field("waiters", &st.waiters.len()).finish()
    }
}

impl Semaphore {
    /// A semaphore with `permits` permits; [`Semaphore::release`] may add more.
    ///
    /// ```
    /// assert_eq!(greenhub::sync::shared::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore { state: Mutex::new(State { permits, waiters: WaitList::default() }), limit: None }
    }

    /// A semaphore that refuses releases above its initial count.
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::bounded(1);
    /// assert_eq!(s.release(), Err(greenhub::sync::SemaphoreFull));
    /// ```
    pub fn bounded(permits: usize) -> Semaphore {
        Semaphore { limit: Some(permits), ..Semaphore::new(permits) }
    }

    /// Permits available now.
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::new(2);
    /// let _p = s.acquire();
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        lock(&self.state).permits
    }

    /// Takes a permit, waiting for one; dropping the guard gives it back.
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::new(1);
    /// let permit = s.acquire();
    /// assert!(s.try_acquire().is_none());
    /// drop(permit);
    /// assert!(s.try_acquire().is_some());
    /// ```
    pub fn acquire(&self) -> SemaphoreGuard<'_> {
        self.acquire_until(None).expect("no deadline")
    }

    /// Like [`Semaphore::acquire`], for at most `timeout`.
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::new(0);
    /// assert!(s.acquire_timeout(std::time::Duration::from_millis(5)).is_none());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
        self.acquire_until(Some(crate::timeout::deadline_after(timeout)))
    }

    /// Takes a permit if one is free now (and nobody waits for one).
    ///
    /// ```
    /// assert!(greenhub::sync::shared::Semaphore::new(0).try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphoreGuard<'_>> {
        let mut st = lock(&self.state);
        Self::take_free(&mut st).then(|| SemaphoreGuard { sem: self })
    }

    /// Takes a permit, waiting for one, and keeps it (no guard): give it back with
    /// [`Semaphore::release`].
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::new(1);
    /// s.acquire_forget();
    /// assert_eq!(s.available(), 0);
    /// s.release().unwrap();
    /// ```
    pub fn acquire_forget(&self) {
        std::mem::forget(self.acquire());
    }

    /// Adds a permit (to the first waiter if there is one). Never waits.
    ///
    /// ```
    /// let s = greenhub::sync::shared::Semaphore::new(0);
    /// s.release().unwrap();
    /// assert_eq!(s.available(), 1);
    /// ```
    pub fn release(&self) -> Result<(), SemaphoreFull> {
        let st = lock(&self.state);
        if self.limit.is_some_and(|limit| st.permits >= limit) {
            return Err(SemaphoreFull);
        }
        self.give_locked(st);
        Ok(())
    }

    fn take_free(st: &mut State) -> bool {
        if st.permits > 0 && !st.waiters.has_waiting() {
            st.permits -= 1;
            true
        } else {
            false
        }
    }

    /// Hands a permit to the first waiter, or back to the pool.
    fn give(&self) {
        self.give_locked(lock(&self.state));
    }

    fn give_locked<'a>(&'a self, mut st: crate::xthread::loom::MutexGuard<'a, State>) {
        loop {
            match st.waiters.claim_first(true) {
                Some(e) => {
                    drop(st);
                    if e.waiter.wake() {
                        return;
                    }
                    // Its hub's thread has ended: the permit goes to the next waiter.
                    st = lock(&self.state);
                }
                None => {
                    st.permits += 1;
                    return;
                }
            }
        }
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphoreGuard<'_>> {
        loop {
            let mut st = lock(&self.state);
            if Self::take_free(&mut st) {
                return Some(SemaphoreGuard { sem: self });
            }
            if crate::xthread::wait::expired(deadline) {
                return None;
            }
            let how =
                wait_in_list(&self.state, st, |s| &mut s.waiters, Primitive::SharedSemaphore, deadline, || self.give());
            if how == Some(0) {
                return Some(SemaphoreGuard { sem: self }); // handed over
            }
            // Withdrawn (deadline): re-check once more.
        }
    }
}

/// A held permit of a [`Semaphore`]; dropping it releases the permit.
///
/// ```
/// let s = greenhub::sync::shared::Semaphore::new(1);
/// drop(s.acquire());
/// assert_eq!(s.available(), 1);
/// ```
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shared::SemaphoreGuard")
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        self.sem.give();
    }
}
