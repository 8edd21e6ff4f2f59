//! The corosensei wrapper: a greenlet's coroutine on a pooled stack.
//!
//! Everything that touches corosensei's raw pieces (the yielder pointer, abandoning a
//! suspended stack) lives here, behind a small safe-to-call surface.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::GreenletError;
use crate::stack::PooledStack;

/// How a greenlet's body ended: its boxed value, or why it has none.
pub(crate) type Outcome = Result<Box<dyn Any>, GreenletError>;

/// The yielder of a hub greenlet: it suspends back to the hub loop.
pub(crate) type HubYielder = Yielder<(), ()>;

/// A greenlet's coroutine.
pub(crate) struct Coro {
    co: Coroutine<(), (), Outcome, PooledStack>,
}

impl Coro {
    /// Prepares `body` to run on `stack`; it receives the yielder that suspends it.
    pub(crate) fn new<F>(stack: PooledStack, body: F) -> Coro
    where
        F: FnOnce(&HubYielder) -> Outcome + 'static,
    {
        Coro { co: Coroutine::with_stack(stack, move |y: &HubYielder, ()| body(y)) }
    }

    /// Runs the coroutine until it suspends (`None`) or finishes (`Some(outcome)`).
    ///
    /// The body catches its own panics, so a panic never crosses this call.
    #[inline]
    pub(crate) fn resume(&mut self) -> Option<Outcome> {
        match self.co.resume(()) {
            CoroutineResult::Yield(()) => None,
            CoroutineResult::Return(outcome) => Some(outcome),
        }
    }

    /// Frees the stack of a suspended coroutine without running anything on it.
    ///
    /// Objects living on that stack are leaked, never dropped: this is how the hub
    /// abandons unfinished greenlets when its thread exits.
    pub(crate) fn abandon(mut self) {
        // SAFETY: force_reset skips the destructors of the objects on the coroutine's
        // stack, which leaks them; leaking is memory safe. Nothing outside the stack
        // points into it: the task's yielder pointer is never used again because the
        // task is marked done before this is called, and greenhub keeps no intrusive
        // references to greenlet stack frames.
        unsafe { self.co.force_reset() };
        drop(self);
    }
}

/// Suspends the running greenlet back to whoever resumed it (the hub loop).
///
/// # Safety
/// `yielder` must be the yielder of the coroutine currently executing on this thread,
/// as stored by that coroutine's body when it started.
#[inline]
pub(crate) unsafe fn suspend(yielder: *const HubYielder) {
    // SAFETY: per this function's contract the yielder lives at the base of the running
    // coroutine's stack, which stays mapped while the coroutine runs.
    unsafe { (*yielder).suspend(()) }
}

/// A task's coroutine, resumed in place (no move in and out per switch).
///
/// Invariant: the coroutine is only touched on its hub's thread (the slot is `!Sync`),
/// and `take`/`set` are never called while `resume` runs it — which the `running` flag
/// checks.
pub(crate) struct CoroSlot {
    coro: UnsafeCell<Option<Coro>>,
    running: Cell<bool>,
}

impl CoroSlot {
    pub(crate) const fn empty() -> CoroSlot {
        CoroSlot { coro: UnsafeCell::new(None), running: Cell::new(false) }
    }

    /// Installs a coroutine.
    pub(crate) fn set(&self, coro: Coro) {
        assert!(!self.running.get(), "greenhub: a running coroutine cannot be replaced");
        // SAFETY: not running (checked), so no `&mut` from `resume` is alive, and the
        // slot is only reachable from this thread.
        unsafe { *self.coro.get() = Some(coro) };
    }

    /// Removes the coroutine (to drop or abandon it).
    pub(crate) fn take(&self) -> Option<Coro> {
        assert!(!self.running.get(), "greenhub: a running coroutine cannot be taken");
        // SAFETY: as in `set`.
        unsafe { (*self.coro.get()).take() }
    }

    /// Resumes the coroutine in place: `None` when it suspended, its outcome when it
    /// finished (the finished coroutine stays in the slot until taken).
    #[inline]
    pub(crate) fn resume(&self) -> Option<Outcome> {
        assert!(!self.running.replace(true), "greenhub: a coroutine cannot resume itself");
        // SAFETY: `running` was false, so this is the only live reference into the slot
        // (set/take refuse to run meanwhile, and resume cannot re-enter for the same
        // slot); the slot is only reachable from this thread.
        let coro = unsafe { (*self.coro.get()).as_mut() }.expect("a ready greenlet owns its coroutine");
        let outcome = coro.resume();
        self.running.set(false);
        outcome
    }
}
