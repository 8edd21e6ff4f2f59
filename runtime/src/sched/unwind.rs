//! Per-greenlet unwinding state, and throwing kills and timeouts into greenlets.
//!
//! `std::thread::panicking()` is per OS thread, but one thread runs many greenlets: while
//! greenlet A unwinds and parks in a `Drop` (a `BufWriter` flushing, a lock taken in
//! cleanup), greenlet B runs with `thread::panicking() == true` although nothing unwinds
//! *its* stack. So the hub keeps its own count per greenlet of the panics in flight on
//! that greenlet's stack:
//!
//! - a panic starts: our panic hook (user panics) or [`throw`] (kills and timeouts)
//!   calls [`begin`];
//! - a catch point of ours (the greenlet body, `with_timeout`) catches it: [`end`];
//! - a panic caught by the user's own `catch_unwind` leaves the count stale; it heals at
//!   the next park that finds `thread::panicking()` false (then nothing unwinds on this
//!   thread at all).
//!
//! What may be thrown into a greenlet at a park ([`deliverable`]):
//! - nothing inside `ffi::no_unwind` (an `extern "C"` hook: unwinding out of it aborts),
//!   nor while the greenlet runs the panic hook (std aborts a panic that starts then);
//! - while it unwinds, no kill (it would escape the `Drop` it parks in, which aborts),
//!   but the expiry of a `with_timeout` scope opened during that unwind (its catch point
//!   lies inside the same `Drop`);
//! - otherwise the kill, else the pending timeout.
//!
//! If the thread panics and the hub knows of no greenlet that unwinds (a panic started
//! with `resume_unwind` by user code, which runs no hook), the parking greenlet is
//! assumed to be the one unwinding: nothing is thrown into it.

use std::panic;

use crate::error::{KillSignal, TimeoutSignal};
use crate::sched::hub::Hub;
use crate::sched::task::{Signal, Task};

/// A panic of `task` starts unwinding its stack.
pub(crate) fn begin(hub: &Hub, task: &Task) {
    let (depth, floor) = task.unwinding();
    if depth == 0 {
        hub.unwinders().up();
        task.set_unwinding(1, hub.peek_scope_id());
    } else {
        task.set_unwinding(depth + 1, floor);
    }
}

/// A catch point of ours caught a panic of `task`.
pub(crate) fn end(hub: &Hub, task: &Task) {
    match task.unwinding() {
        (0, _) => {}
        (1, _) => reset(hub, task),
        (d, floor) => task.set_unwinding(d - 1, floor),
    }
}

/// Forgets every panic of `task` (it finished, or its count was stale).
pub(crate) fn reset(hub: &Hub, task: &Task) {
    if task.unwinding().0 > 0 {
        task.set_unwinding(0, 0);
        hub.unwinders().down();
    }
}

/// The first scope id whose expiry may be thrown into `task` while it unwinds, or
/// `None` when it does not unwind.
fn floor(hub: &Hub, task: &Task) -> Option<u64> {
    if !std::thread::panicking() {
        reset(hub, task); // nothing unwinds on this thread: a stale count
        return None;
    }
    if let (1.., floor) = task.unwinding() {
        Some(floor)
    } else if hub.unwinders().get() == 0 {
        Some(u64::MAX) // an unknown panic unwinds: assume it is this greenlet's
    } else {
        None // another greenlet unwinds, not this one
    }
}

/// The pending cancellation that may be thrown into `task` now, if any.
pub(crate) fn deliverable(hub: &Hub, task: &Task) -> Option<Signal> {
    let cancel = task.cancel();
    if cancel.is_none() || task.nothrow() > 0 || hub.in_panic_hook(task) {
        return None;
    }
    let floor = floor(hub, task);
    if cancel.kill() && floor.is_none() {
        return Some(Signal::Kill);
    }
    match cancel.timeout() {
        Some(id) if floor.is_none_or(|f| id >= f) => Some(Signal::Timeout(id)),
        _ => None,
    }
}

/// Throws `signal` into the running `task` (withdrawing it from the pending set).
///
/// # Panics
/// Always: that is how it unwinds. Under `panic = "abort"` the panic says why greenhub
/// cannot kill or time out a greenlet there (the process then aborts).
pub(crate) fn throw(hub: &Hub, task: &Task, signal: Signal) -> ! {
    task.withdraw_cancel(signal);
    if cfg!(panic = "abort") {
        let what = match signal {
            Signal::Kill => "kill",
            Signal::Timeout(_) => "with_timeout expiry",
        };
        panic!(
            "greenhub: cannot deliver a {what} to greenlet '{}': kill, with_timeout and \
             ServerHandle::stop unwind the greenlet's stack, which needs panic = \"unwind\" \
             (this program is built with panic = \"abort\")",
            task.name()
        );
    }
    begin(hub, task);
    match signal {
        Signal::Kill => panic::resume_unwind(Box::new(KillSignal)),
        Signal::Timeout(id) => panic::resume_unwind(Box::new(TimeoutSignal(id))),
    }
}

/// Resumes a caught panic of `task` (a catch point that found it was not its own).
pub(crate) fn rethrow(hub: &Hub, task: &Task, payload: Box<dyn std::any::Any + Send>) -> ! {
    begin(hub, task);
    panic::resume_unwind(payload)
}
