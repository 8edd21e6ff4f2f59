//! [`with_timeout`]: a deadline on any blocking code, by unwinding.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::{KillSignal, TimedOut, TimeoutSignal};
use crate::sched::hub;
use crate::sched::task::{Signal, Task};
use crate::sched::timer::{TimerAction, TimerGuard};
use crate::sched::unwind;

/// Runs `f`; if it is still waiting when `timeout` has passed, it is unwound from its
/// wait (its destructors run) and `Err(TimedOut)` is returned.
///
/// Like gevent's `Timeout`, expiry is delivered at a switch: code that never waits is
/// not interrupted. Nested timeouts each catch only their own expiry (an outer one
/// unwinds through inner ones), and a timeout whose `f` returned never fires later.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, with_timeout, TimedOut};
/// assert_eq!(with_timeout(Duration::from_millis(50), || 7), Ok(7));
/// let outer = with_timeout(Duration::from_secs(5), || {
///     with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(60)))
/// });
/// assert_eq!(outer, Ok(Err(TimedOut)));
/// ```
pub fn with_timeout<F, T>(timeout: Duration, f: F) -> Result<T, TimedOut>
where
    F: FnOnce() -> T,
{
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        return Ok(f());
    };
    let scope = hub::with(|h| {
        let id = h.next_scope_id();
        let task = h.current();
        let timer = TimerGuard::arm(h, deadline, TimerAction::Timeout { task: task.clone(), id });
        Scope { id, task, _timer: timer }
    });
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    // Our expiry may also have come while `f` could not be unwound (inside a monkey
    // hook, which then returned ETIMEDOUT): it is still pending, and decides the result.
    let expired = scope.task.cancel().timeout() == Some(scope.id);
    match r {
        Ok(_) if expired => Err(TimedOut),
        Ok(v) => Ok(v),
        Err(payload) => hub::with(|h| {
            unwind::end(h, &scope.task);
            let ours = match payload.downcast_ref::<TimeoutSignal>() {
                Some(TimeoutSignal(id)) => *id == scope.id,
                // A panic that the undelivered expiry caused (the hook's error unwrapped):
                None => expired && !payload.is::<KillSignal>(),
            };
            if ours {
                Err(TimedOut)
            } else {
                unwind::rethrow(h, &scope.task, payload)
            }
        }),
    }
}

/// Disarms the scope's timer and withdraws an expiry that was not delivered.
struct Scope {
    id: u64,
    task: Rc<Task>,
    _timer: TimerGuard,
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.task.withdraw_cancel(Signal::Timeout(self.id));
    }
}

/// `now + timeout`, saturating (a huge timeout means "practically never").
pub(crate) fn deadline_after(timeout: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + std::time::Duration::from_secs(u32::MAX.into()))
}
