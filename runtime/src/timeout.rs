//! [`with_timeout`]: a deadline on any blocking code, by unwinding.

use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::{TimedOut, TimeoutSignal};
use crate::hub::{self, TimerAction, TimerGuard};
use crate::task::{Cancel, Task};

/// Runs `f`; if it is still waiting when `timeout` has passed, it is unwound from its
/// wait (its destructors run) and `Err(TimedOut)` is returned.
///
/// Like gevent's `Timeout`, expiry is delivered at a switch: code that never waits is
/// not interrupted. Nested timeouts each catch only their own expiry (an outer one
/// unwinds through inner ones), and a timeout whose `f` returned never fires later.
///
/// ```
/// use std::time::Duration;
/// use greenhub_runtime::{sleep, with_timeout, TimedOut};
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
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Ok(v),
        Err(payload) => match payload.downcast_ref::<TimeoutSignal>() {
            Some(TimeoutSignal(id)) if *id == scope.id => Err(TimedOut),
            _ => panic::resume_unwind(payload),
        },
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
        if self.task.cancel.get() == Cancel::Timeout(self.id) {
            self.task.cancel.set(Cancel::None);
        }
    }
}
