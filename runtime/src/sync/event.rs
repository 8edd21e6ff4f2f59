//! `Event`: a flag greenlets can wait for (gevent.event.Event).

use crate::sched::task::Primitive;
use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sched::hub;
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::Wait;

/// A flag that greenlets wait for; `set` wakes every waiter, in the order they came.
///
/// ```
/// use std::rc::Rc;
/// use greenhub::{spawn, sync::Event};
/// let ev = Rc::new(Event::new());
/// let e = ev.clone();
/// let waiter = spawn(move || { e.wait(); "woken" });
/// ev.set(); // never switches
/// assert_eq!(waiter.get(), Ok("woken"));
/// ```
#[derive(Default)]
pub struct Event {
    flag: Cell<bool>,
    waiters: WaitQueue,
    /// Waiters that `set` woke and that have not returned from `wait` yet.
    notifying: Cell<usize>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event").field("set", &self.flag.get()).field("waiters", &self.waiters.len()).finish()
    }
}

impl Event {
    /// A cleared event.
    ///
    /// ```
    /// assert!(!greenhub::sync::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Sets the flag and makes every waiter ready (FIFO). Does not switch.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// ev.set();
    /// assert!(ev.is_set());
    /// ev.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        self.flag.set(true);
        let woken = hub::with(|h| self.waiters.wake_all(h));
        self.notifying.set(self.notifying.get() + woken);
    }

    /// Clears the flag.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        self.flag.set(false);
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!greenhub::sync::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.flag.get()
    }

    /// Waits until the flag is set (returns at once if it is).
    ///
    /// ```
    /// use std::rc::Rc;
    /// let ev = Rc::new(greenhub::sync::Event::new());
    /// let e = ev.clone();
    /// let _setter = greenhub::spawn(move || e.set());
    /// ev.wait();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Waits at most `timeout`; returns whether the flag was set.
    ///
    /// ```
    /// let ev = greenhub::sync::Event::new();
    /// assert!(!ev.wait_timeout(std::time::Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// The waiters' queue (for `wait`/`iwait`).
    pub(crate) fn wait_queue(&self) -> &WaitQueue {
        &self.waiters
    }

    /// A waiter that `set` woke has seen it (for `wait`/`iwait`).
    pub(crate) fn seen_wake(&self) {
        self.notifying.set(self.notifying.get().saturating_sub(1));
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.flag.get() {
            if self.notifying.get() > 0 {
                // `set` woke waiters that have not run yet: they go first (gevent issue
                // 1520), so this waiter lines up behind them.
                crate::yield_now();
            }
            return true;
        }
        // Woken through the queue means `set` ran while we waited, even if the flag
        // was cleared again before we got to run (gevent's semantics).
        let woken = hub::with(|h| {
            wait_in(h, &self.waiters, Wait::Sync(Primitive::Event, deadline), deadline, || {
                self.notifying.set(self.notifying.get().saturating_sub(1)); // woken, but unwinds
            })
        });
        if woken {
            self.notifying.set(self.notifying.get().saturating_sub(1));
        }
        woken || self.flag.get()
    }
}
