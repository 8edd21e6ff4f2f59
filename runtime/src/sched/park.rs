//! Park and unpark: the one mechanism every wait is built on.
//!
//! A greenlet that must wait takes a [`Token`] for itself, registers it wherever the
//! wake-up will come from (a timer, an fd, a [`WaitQueue`], another greenlet's
//! completion), and parks. Unparking with a token makes the greenlet ready (back of the
//! run queue) only if it is still parked in the same *epoch*: every time a greenlet
//! becomes ready its epoch advances, so every other token of that wait turns stale and
//! can never wake a later, unrelated wait. Registrations are removed by guards'
//! `Drop`, so kills and timeouts that unwind through a wait leave nothing behind.

use crate::sched::hub::Hub;
use crate::sched::task::Wake;
pub(crate) use crate::sched::task::{Token, WaitQueue, Waiting};

impl Token {
    /// Makes the greenlet ready if it is still parked in this token's wait.
    #[inline]
    pub(crate) fn unpark(&self, hub: &Hub, why: Wake) -> bool {
        // The run queue needs a count of its own: the clone is that count.
        self.can_unpark() && self.clone().unpark_owned(hub, why)
    }

    /// [`Token::unpark`] for a token no longer needed: its count of the task goes to the
    /// run queue (no count taken and released).
    #[inline]
    pub(crate) fn unpark_owned(self, hub: &Hub, why: Wake) -> bool {
        if self.can_unpark() {
            self.task.set_woken(why);
            hub.make_ready_owned(self.task);
            true
        } else {
            false
        }
    }
}

/// Waking the waiters of a [`WaitQueue`] (the queue itself is in `task.rs`, beside the
/// task that owns one for its joiners).
impl WaitQueue {
    /// Wakes the first waiter that can still be woken, removing it from the queue;
    /// returns whether one was. Waiters that were already made ready by something else
    /// (their timeout, a kill) stay registered: their own guard withdraws them, and so
    /// they know they were *not* woken through this queue.
    pub(crate) fn wake_one(&self, hub: &Hub) -> bool {
        let token = {
            let mut w = self.waiters.borrow_mut();
            let Some(i) = w.iter().position(|(_, t)| t.can_unpark()) else { return false };
            // Mostly the first (`VecDeque::remove` moves elements even for index 0).
            if i == 0 { w.pop_front() } else { w.remove(i) }.expect("index from position").1
        };
        token.unpark_owned(hub, Wake::Notify)
    }

    /// Wakes every waiter that can be woken, in order; returns how many were woken.
    /// (Unparking only touches the run queue, so this runs with the waiter list borrowed
    /// and allocates nothing.) Each waiter is taken off the front once; the ones that
    /// stay go to the back in their order, so the list stays in key order.
    #[inline]
    pub(crate) fn wake_all(&self, hub: &Hub) -> usize {
        if self.waiters.borrow().is_empty() {
            return 0; // mostly, for a finished greenlet's joiners
        }
        self.wake_all_present(hub)
    }

    fn wake_all_present(&self, hub: &Hub) -> usize {
        let mut waiters = self.waiters.borrow_mut();
        let mut woken = 0;
        for _ in 0..waiters.len() {
            let (key, token) = waiters.pop_front().expect("counted");
            if token.can_unpark() {
                token.unpark_owned(hub, Wake::Notify);
                woken += 1;
            } else {
                waiters.push_back((key, token));
            }
        }
        woken
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
    // (Dropped after `guard` when unwinding: which of the two withdraws first does not
    // matter, neither switches.)
    let _timer = crate::sched::timer::TimerGuard::wake_at(hub, deadline, &token);
    let mut guard = Guard { waiting: Some(queue.push(token)), pass_on: Some(pass_on) };
    hub.park(what);
    guard.pass_on = None;
    !guard.waiting.take().expect("set above").cancel()
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::sched::hub;
    use crate::sched::task::Wait;
    use crate::sched::task::{State, Task};

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

    #[test]
    fn wake_all_keeps_the_waiters_woken_elsewhere_in_order() {
        hub::with(|h| {
            let q = WaitQueue::new();
            let (a, b, c, d) = (parked(1), parked(2), parked(3), parked(4));
            let (wa, wb, wc, wd) = (q.push(a.clone()), q.push(b.clone()), q.push(c.clone()), q.push(d.clone()));
            assert!(b.unpark(h, Wake::Timer) && d.unpark(h, Wake::Timer), "woken elsewhere first");
            assert_eq!(q.wake_all(h), 2, "a and c");
            assert_eq!((a.task.woken(), c.task.woken()), (Wake::Notify, Wake::Notify));
            let left: Vec<u64> = q.waiters.borrow().iter().map(|(_, t)| t.task.id()).collect();
            assert_eq!(left, [2, 4], "b and d stay, in their order");
            assert!(!wa.cancel() && !wc.cancel(), "woken through the queue: already gone");
            assert!(wd.cancel(), "found behind b (the list is still in key order)");
            assert!(wb.cancel());
            assert_eq!(q.len(), 0);
        });
    }
}
