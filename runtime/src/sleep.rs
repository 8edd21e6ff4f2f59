//! [`sleep`] and [`yield_now`].

use std::time::{Duration, Instant};

use crate::sched::hub;
use crate::sched::task::Wait;
use crate::sched::timer::TimerGuard;

/// Parks the caller for at least `d`, letting other greenlets run.
///
/// `sleep(Duration::ZERO)` is [`yield_now`]. Sleepers with equal deadlines wake in the
/// order they went to sleep; expired timers fire after the ready greenlets have run.
/// On a thread's own stack (outside any greenlet) the hub runs meanwhile.
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let gs: Vec<_> = (0..100).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_millis(50)))).collect();
/// greenhub::joinall(&gs);
/// assert!(t.elapsed() < Duration::from_secs(2)); // concurrently, not 5 s
/// ```
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return yield_now();
    }
    let deadline = Instant::now().checked_add(d);
    hub::with(|h| {
        let token = h.token();
        let _timer = TimerGuard::wake_at(h, deadline, &token);
        drop(token);
        h.park(Wait::Sleep(deadline));
    })
}

/// Puts the caller behind every greenlet that is already ready, and runs them.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let log = Rc::new(RefCell::new(String::new()));
/// let l = log.clone();
/// let _g = greenhub::spawn(move || l.borrow_mut().push('g'));
/// greenhub::yield_now();
/// log.borrow_mut().push('m');
/// assert_eq!(*log.borrow(), "gm");
/// ```
pub fn yield_now() {
    hub::with(|h| h.yield_now())
}
