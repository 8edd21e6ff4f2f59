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

use crate::sched::hub::Hub;
use crate::sched::task::{State, Task, Wake};

/// Permission to wake one particular wait of one greenlet.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) task: Rc<Task>,
    pub(crate) epoch: u32,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}, epoch {})", self.task.id(), self.epoch)
    }
}

impl Token {
    /// Whether [`Token::unpark`] would wake the greenlet now.
    #[inline]
    pub(crate) fn can_unpark(&self) -> bool {
        self.task.state() == State::Parked && self.task.epoch() == self.epoch
    }

    /// Makes the greenlet ready if it is still parked in this token's wait.
    #[inline]
    pub(crate) fn unpark(&self, hub: &Hub, why: Wake) -> bool {
        let t = &self.task;
        if self.can_unpark() {
            t.set_woken(why);
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

    /// Whether a waiter could be woken now.
    pub(crate) fn has_live(&self) -> bool {
        self.waiters.borrow().iter().any(|(_, t)| t.can_unpark())
    }

    /// Wakes the first waiter that can still be woken, removing it from the queue;
    /// returns whether one was. Waiters that were already made ready by something else
    /// (their timeout, a kill) stay registered: their own guard withdraws them, and so
    /// they know they were *not* woken through this queue.
    pub(crate) fn wake_one(&self, hub: &Hub) -> bool {
        let token = {
            let mut w = self.waiters.borrow_mut();
            let Some(i) = w.iter().position(|(_, t)| t.can_unpark()) else { return false };
            w.remove(i).expect("index from position").1
        };
        token.unpark(hub, Wake::Notify)
    }

    /// Wakes every waiter that can be woken, in order; returns how many were woken.
    /// (Unparking only touches the run queue, so this runs with the waiter list borrowed
    /// and allocates nothing.)
    pub(crate) fn wake_all(&self, hub: &Hub) -> usize {
        let mut woken = 0;
        self.waiters.borrow_mut().retain(|(_, t)| {
            if t.unpark(hub, Wake::Notify) {
                woken += 1;
                false
            } else {
                true
            }
        });
        woken
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

/// Parks the current task in `queue` until woken through it (`true`) or until
/// `deadline` (`false`). If the task was woken through the queue but unwinds instead
/// of returning (killed, or an outer timeout), `pass_on` runs, so that whatever the wake
/// announced (an item, a permit) is not lost to the dead waiter.
pub(crate) fn wait_in<F: FnOnce()>(
    hub: &Hub,
    queue: &WaitQueue,
    what: crate::sched::task::Wait,
    deadline: Option<std::time::Instant>,
    pass_on: F,
) -> bool {
    struct Guard<'a, F: FnOnce()> {
        waiting: Option<Waiting<'a>>,
        pass_on: Option<F>,
    }
    impl<F: FnOnce()> Drop for Guard<'_, F> {
        fn drop(&mut self) {
            if let Some(w) = self.waiting.take() {
                if !w.cancel() {
                    if let Some(f) = self.pass_on.take() {
                        f();
                    }
                }
            }
        }
    }
    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
        return false;
    }
    let token = hub.token();
    let mut guard = Guard { waiting: Some(queue.push(token.clone())), pass_on: Some(pass_on) };
    let _timer = crate::sched::timer::TimerGuard::wake_at(hub, deadline, &token);
    drop(token);
    hub.park(what);
    guard.pass_on = None;
    !guard.waiting.take().expect("set above").cancel()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sched::hub;
    use crate::sched::task::Wait;

    /// A task parked in its first wait, and a token for that wait. (Never resumed: the
    /// tests only look at the run queue's bookkeeping, on their own thread's hub.)
    fn parked(id: u64) -> Token {
        let task = Rc::new(Task::new(id, None, 0));
        task.park(Wait::Nothing);
        Token { epoch: task.epoch(), task }
    }

    #[test]
    fn wake_one_is_fifo_and_skips_waiters_woken_elsewhere() {
        hub::with(|h| {
            let q = WaitQueue::new();
            let (a, b, c) = (parked(1), parked(2), parked(3));
            let _wa = q.push(a.clone());
            let wb = q.push(b.clone());
            let _wc = q.push(c.clone());
            assert!(q.wake_one(h));
            assert_eq!(a.task.state(), State::Ready);
            assert_eq!(a.task.woken(), Wake::Notify);
            assert!(b.unpark(h, Wake::Timer), "b's own timer wakes it first");
            assert!(q.wake_one(h), "b is skipped: c is woken");
            assert_eq!(c.task.state(), State::Ready);
            assert_eq!(q.len(), 1, "b stays registered until its guard withdraws it");
            assert!(wb.cancel(), "not woken through the queue");
            assert_eq!(q.len(), 0);
            assert!(!q.wake_one(h));
        });
    }

    #[test]
    fn stale_tokens_never_wake_and_guards_withdraw() {
        hub::with(|h| {
            let q = WaitQueue::new();
            let a = parked(1);
            let stale = Token { task: a.task.clone(), epoch: a.epoch.wrapping_sub(1) };
            assert!(!stale.unpark(h, Wake::Notify), "a token of an older wait");
            {
                let _w = q.push(a.clone());
                assert!(q.has_live());
            }
            assert_eq!(q.len(), 0, "the guard's drop withdrew it");
            let (b, c) = (parked(2), parked(3));
            let (_wb, _wc) = (q.push(b.clone()), q.push(c.clone()));
            assert_eq!(q.wake_all(h), 2);
            assert_eq!((b.task.state(), c.task.state()), (State::Ready, State::Ready));
            assert!(!q.has_live());
        });
    }
}
