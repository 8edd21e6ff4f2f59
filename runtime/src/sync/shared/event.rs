//! `shared::Event`: a flag that greenlets on any hub and threads can wait for.

use crate::sched::task::Primitive;
use std::fmt;
use std::time::{Duration, Instant};

use crate::xthread::list::WaitList;
use crate::xthread::loom::{lock, Mutex};
use crate::xthread::wait::wait_in_list;

struct State {
    set: bool,
    waiters: WaitList,
}

/// A flag that greenlets of any hub and plain threads can wait for; `set` wakes every
/// waiter. `Send + Sync`: share it through an `Arc`.
///
/// ```
/// use std::sync::Arc;
/// let ev = Arc::new(greenhub::sync::shared::Event::new());
/// let e = ev.clone();
/// let t = std::thread::spawn(move || e.wait());
/// ev.set();
/// t.join().unwrap();
/// ```
pub struct Event {
    state: Mutex<State>,
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("shared::Event").field("set", &st.set).field("waiters", &st.waiters.len()).finish()
    }
}

impl Event {
    /// A cleared event.
    ///
    /// ```
    /// assert!(!greenhub::sync::shared::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event { state: Mutex::new(State { set: false, waiters: WaitList::default() }) }
    }

    /// Sets the flag and wakes every waiter. Never waits.
    ///
    /// ```
    /// let ev = greenhub::sync::shared::Event::new();
    /// ev.set();
    /// ev.wait(); // returns at once
    /// ```
    pub fn set(&self) {
        let mut st = lock(&self.state);
        st.set = true;
        let woken = st.waiters.claim_all();
        drop(st);
        for e in woken {
            e.waiter.wake();
        }
    }

    /// Clears the flag.
    ///
    /// ```
    /// let ev = greenhub::sync::shared::Event::new();
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// ```
    pub fn clear(&self) {
        lock(&self.state).set = false;
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// assert!(!greenhub::sync::shared::Event::new().is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        lock(&self.state).set
    }

    /// Waits until the flag is set (returns at once if it is). A waiter woken by `set`
    /// returns even if the flag was cleared again before it ran.
    ///
    /// ```
    /// let ev = greenhub::sync::shared::Event::new();
    /// ev.set();
    /// ev.wait();
    /// ```
    pub fn wait(&self) {
        self.wait_until(None);
    }

    /// Like [`Event::wait`], for at most `timeout`; whether the flag was set.
    ///
    /// ```
    /// let ev = greenhub::sync::shared::Event::new();
    /// assert!(!ev.wait_timeout(std::time::Duration::from_millis(5)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_until(Some(crate::timeout::deadline_after(timeout)))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            let st = lock(&self.state);
            if st.set {
                return true;
            }
            if crate::xthread::wait::expired(deadline) {
                return false;
            }
            if wait_in_list(&self.state, st, |s| &mut s.waiters, Primitive::SharedEvent, deadline, || {}).is_some() {
                return true; // woken by `set`
            }
        }
    }
}
