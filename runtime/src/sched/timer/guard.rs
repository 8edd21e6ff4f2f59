//! Timers armed by waits: a [`TimerGuard`] disarms its timer when dropped, so a wait
//! that ends early or unwinds never leaves one behind.

use std::rc::Rc;
use std::time::Instant;

use super::TimerKey;
use crate::sched::hub::{self, Hub};
use crate::sched::park::Token;
use crate::sched::task::Task;

/// What an expiring timer does.
pub(crate) enum TimerAction {
    /// Unpark one wait (sleep, deadline of a wait, delayed start).
    Wake(Token),
    /// Throw the expiry of `with_timeout` scope `id` into `task`.
    Timeout { task: Rc<Task>, id: u64 },
}

/// Disarms a timer when dropped (a wait that ended early, or unwound).
pub(crate) struct TimerGuard(Option<TimerKey>);

impl TimerGuard {
    /// Arms a timer waking `token` at `deadline`, if there is a deadline.
    #[inline]
    pub(crate) fn wake_at(hub: &Hub, deadline: Option<Instant>, token: &Token) -> TimerGuard {
        TimerGuard(deadline.map(|d| hub.arm_timer(d, TimerAction::Wake(token.clone()))))
    }

    /// Arms a timer with any action.
    pub(crate) fn arm(hub: &Hub, deadline: Instant, action: TimerAction) -> TimerGuard {
        TimerGuard(Some(hub.arm_timer(deadline, action)))
    }
}

impl Drop for TimerGuard {
    #[inline] // most waits have no deadline: nothing to do, on every I/O wait
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            disarm(key);
        }
    }
}

#[inline(never)]
fn disarm(key: TimerKey) {
    hub::try_with(|h| {
        let action = h.cancel_timer(key);
        drop(action); // outside the timers' borrow: it may hold the last task
    });
}
