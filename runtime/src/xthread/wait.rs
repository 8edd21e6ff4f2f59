//! The common wait of `sync::shared` and remote greenlets: register in a list under the
//! object's lock, wait, and settle — with kill and timeout safety.

use crate::sched::task::Primitive;
use std::time::Instant;

use super::list::WaitList;
use super::loom::{lock, Arc, Mutex, MutexGuard};
use super::waiter::Waiter;

/// Registers the caller in `list(&mut st)` (the caller checked under this lock that it
/// must wait), releases the lock, waits until claimed or `deadline`, and settles:
/// `Some(how)` if it was claimed (`how` is `0` when something was handed over, else
/// [`WOKEN`](super::waiter::WOKEN)), `None` if it gave up. If the wait unwinds (a kill
/// or timeout) after something was handed over, `pass_on` runs, so it is not lost.
pub(crate) fn wait_in_list<S>(
    mutex: &Mutex<S>,
    mut st: MutexGuard<'_, S>,
    list: fn(&mut S) -> &mut WaitList,
    what: Primitive,
    deadline: Option<Instant>,
    pass_on: impl FnOnce(),
) -> Option<usize> {
    struct Guard<'a, S, F: FnOnce()> {
        mutex: &'a Mutex<S>,
        list: fn(&mut S) -> &mut WaitList,
        waiter: Arc<Waiter>,
        key: u64,
        pass_on: Option<F>,
    }
    impl<S, F: FnOnce()> Guard<'_, S, F> {
        fn settle(&mut self) -> Option<usize> {
            let how = self.waiter.withdraw();
            if how.is_none() {
                (self.list)(&mut lock(self.mutex)).remove(self.key);
            }
            how
        }
    }
    impl<S, F: FnOnce()> Drop for Guard<'_, S, F> {
        fn drop(&mut self) {
            if let Some(pass_on) = self.pass_on.take() {
                // Unwinding from the wait.
                if self.settle() == Some(0) {
                    pass_on();
                }
            }
        }
    }
    let waiter = Waiter::new();
    let key = list(&mut st).push(waiter.clone(), 0, ());
    drop(st);
    let mut guard = Guard { mutex, list, waiter, key, pass_on: Some(pass_on) };
    guard.waiter.wait(what, deadline);
    guard.pass_on = None;
    guard.settle()
}

/// Whether a timed cross-thread wait must end now: its deadline has passed, or — inside
/// `ffi::no_unwind`, where a pending kill or timeout cannot be thrown — one is pending,
/// so the wait ends early and reports its timeout (as `sleep` does there). An untimed
/// wait has no error to report: it blocks its thread instead (see `Waiter::new`).
pub(crate) fn expired(deadline: Option<std::time::Instant>) -> bool {
    let Some(d) = deadline else { return false };
    std::time::Instant::now() >= d || interrupted_in_hook()
}

#[cfg(not(loom))]
fn interrupted_in_hook() -> bool {
    crate::sched::hub::if_exists(|h| crate::ffi::pending(&h.current()).is_some()).unwrap_or(false)
}

#[cfg(loom)]
fn interrupted_in_hook() -> bool {
    false
}
