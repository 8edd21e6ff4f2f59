//! Park and unpark: the one mechanism every wait is built on.
//!
//! A greenlet that must wait takes a [`Token`] for itself, registers it wherever the
//! wake-up will come from (a timer, an fd, a [`WaitQueue`], another greenlet's
//! completion), and parks. Unparking with a token makes the greenlet ready (back of the
//! run queue) only if it is still parked in the same *epoch*: every time a greenlet
//! becomes ready its epoch advances, so every other token of that wait turns stale and
//! can never wake a later, unrelated wait. Registrations are removed by guards'
//! `Drop`, so kills and timeouts that unwind through a wait leave nothing behind.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

use crate::hub::Hub;
use crate::task::{State, Task, Wake};

/// Permission to wake one particular wait of one greenlet.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) task: Rc<Task>,
    pub(crate) epoch: u32,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}, epoch {})", self.task.id, self.epoch)
    }
}

impl Token {
    /// Makes the greenlet ready if it is still parked in this token's wait.
    #[inline]
    pub(crate) fn unpark(&self, hub: &Hub, why: Wake) -> bool {
        let t = &self.task;
        if t.state.get() == State::Parked && t.epoch.get() == self.epoch {
            t.woken.set(why);
            hub.make_ready(t);
            true
        } else {
            false
        }
    }
}

/// A FIFO of parked greenlets (the waiters of a lock, queue, event or join).
#[derive(Default)]
pub(crate) struct WaitQueue {
    waiters: RefCell<VecDeque<(u64, Token)>>,
    next_key: Cell<u64>,
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaitQueue({} waiting)", self.len())
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue { waiters: RefCell::new(VecDeque::new()), next_key: Cell::new(0) }
    }

    /// Adds a waiter at the back; the guard removes it again if it is still there.
    pub(crate) fn push(&self, token: Token) -> Waiting<'_> {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        self.waiters.borrow_mut().push_back((key, token));
        Waiting { queue: self, key }
    }

    /// Number of registered waiters.
    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Whether nobody waits.
    #[allow(dead_code)] // used by the sync primitives
    pub(crate) fn is_empty(&self) -> bool {
        self.waiters.borrow().is_empty()
    }

    /// Wakes the first waiter that can still be woken; returns whether one was.
    #[allow(dead_code)] // used by the sync primitives
    pub(crate) fn wake_one(&self, hub: &Hub) -> bool {
        loop {
            let next = self.waiters.borrow_mut().pop_front();
            match next {
                None => return false,
                Some((_, token)) => {
                    if token.unpark(hub, Wake::Other) {
                        return true;
                    }
                }
            }
        }
    }

    /// Wakes every waiter, in order; returns how many were woken.
    pub(crate) fn wake_all(&self, hub: &Hub) -> usize {
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        waiters.into_iter().filter(|(_, t)| t.unpark(hub, Wake::Other)).count()
    }

    fn remove(&self, key: u64) -> bool {
        let mut w = self.waiters.borrow_mut();
        match w.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => {
                w.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// A registration in a [`WaitQueue`]; dropping it withdraws the waiter if it was not
/// woken.
pub(crate) struct Waiting<'a> {
    queue: &'a WaitQueue,
    key: u64,
}

impl Waiting<'_> {
    /// Withdraws the waiter now; returns `true` if it was still registered (not woken).
    #[allow(dead_code)] // used by the sync primitives
    pub(crate) fn cancel(self) -> bool {
        let was = self.queue.remove(self.key);
        std::mem::forget(self);
        was
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.queue.remove(self.key);
    }
}

impl fmt::Debug for Waiting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Waiting({})", self.key)
    }
}
