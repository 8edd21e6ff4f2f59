//! The corosensei wrapper: a greenlet's coroutine on a pooled stack.
//!
//! Everything that touches corosensei's raw pieces (the yielder pointer, abandoning a
//! suspended stack) lives here, behind a small safe-to-call surface.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::error::GreenletError;
use crate::sched::stack::PooledStack;

/// How a greenlet's body ended: its boxed value, or why it has none.
pub(crate) type Outcome = Result<Box<dyn Any>, GreenletError>;

/// The yielder of a hub greenlet: it suspends back to the hub loop.
pub(crate) type HubYielder = Yielder<(), ()>;

/// A greenlet's coroutine.
///
/// It returns nothing through corosensei: the body hands its outcome to its `CoroSlot`
/// (`CoroSlot::store_outcome`) as its last act, so every switch moves only a flag.
pub(crate) struct Coro {
    co: Coroutine<(), (), (), PooledStack>,
}

impl Coro {
    /// Prepares `body` to run on `stack`; it receives the yielder that suspends it, and
    /// stores its outcome in its slot before it returns.
    pub(crate) fn new<F>(stack: PooledStack, body: F) -> Coro
    where
        F: FnOnce(&HubYielder) + 'static,
    {
        Coro { co: Coroutine::with_stack(stack, move |y: &HubYielder, ()| body(y)) }
    }

    /// Runs the coroutine until it suspends (`false`) or finishes (`true`).
    ///
    /// The body catches its own panics, so a panic never crosses this call.
    #[inline]
    pub(crate) fn resume(&mut self) -> bool {
        matches!(self.co.resume(()), CoroutineResult::Return(()))
    }

    /// Gives up a suspended coroutine for good: nothing runs on its stack again, and
    /// the stack is leaked, never returned to the pool.
    ///
    /// This is how the hub abandons unfinished greenlets when its thread exits. Their
    /// frames cannot be unwound then (that would run user code, which may wait, during
    /// thread teardown), and the memory under them cannot be reused either: a frame may
    /// have lent a buffer to code that outlives the greenlet (a scoped thread writing
    /// into a local array, a pool thread filling a result), and another greenlet's
    /// frames written over that buffer would be a use-after-free. So the objects on the
    /// stack and the stack itself are leaked together (slabs are never unmapped, so the
    /// memory stays valid for whatever still points into it).
    pub(crate) fn abandon(mut self) {
        // SAFETY: corosensei's contract for force_reset: "This can only be done safely
        // if there are no objects currently on the coroutine's stack that need to
        // execute Drop code." Skipping a destructor is a leak, which is memory safe as
        // long as the objects' memory stays valid for as long as anything may still use
        // it: below, the stack is never freed nor handed out again. Nothing inside
        // greenhub points into it either: the task is marked done before this is called,
        // so its yielder pointer is never used again.
        unsafe { self.co.force_reset() };
        std::mem::forget(self.co.into_stack());
    }
}
/// Suspends the running greenlet back to whoever resumed it (the hub loop).
///
/// The caller may execute on a nested coroutine's stack: a `raw::Generator` or raw
/// greenlet body that the greenlet resumed and that now blocks on the hub. That is
/// sound with corosensei 0.3 for these reasons (checked against its source):
/// - A `Yielder` is the greenlet coroutine's *parent link*, a slot at the base of its
///   stack that holds the resumer's stack pointer. `suspend` saves the current stack
///   pointer, whatever stack it lies on, as the coroutine's resume point and switches to
///   the parent; `resume` switches back to exactly that point and rewrites the parent
///   link. The nested coroutine's own parent link points into a frame of the greenlet's
///   stack, which is untouched while the greenlet is suspended, so when the nested body
///   later yields or returns it lands in a live frame.
/// - While the greenlet is suspended through it, the nested coroutine cannot be resumed,
///   moved or dropped by anyone else: `Generator::resume` and the raw trampoline move the
///   coroutine into a local of their frame on the greenlet's stack for the duration of
///   the resume, so no other code can reach it.
/// - A kill or timeout thrown at the park unwinds the nested body to its root, where
///   corosensei catches the panic and resumes it in the resumer's frame, on the
///   greenlet's stack, which unwinds on to the greenlet body: an ordinary nested unwind.
/// - If the greenlet is abandoned (thread exit), the nested coroutine is leaked with the
///   frame that owns it, so its stack is never reused either.
///
/// # Safety
/// `yielder` must be the yielder of the greenlet coroutine that is currently being
/// resumed on this thread, as stored by that coroutine's body when it started.
#[inline]
pub(crate) unsafe fn suspend(yielder: *const HubYielder) {
    // SAFETY: per this function's contract the yielder is the parent link at the base of
    // the resumed greenlet's stack, which stays mapped while that coroutine exists, and
    // suspending it from a nested coroutine's stack is sound for the reasons above.
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
    /// The finished body's outcome, until the hub takes it.
    outcome: Cell<Option<Outcome>>,
}

impl CoroSlot {
    pub(crate) const fn empty() -> CoroSlot {
        CoroSlot { coro: UnsafeCell::new(None), running: Cell::new(false), outcome: Cell::new(None) }
    }

    /// The body's last act: its outcome, for the hub to take once the coroutine returned.
    pub(crate) fn store_outcome(&self, outcome: Outcome) {
        debug_assert!(self.running.get(), "only the running body stores its outcome");
        self.outcome.set(Some(outcome));
    }

    /// The outcome stored by the finished body.
    pub(crate) fn take_outcome(&self) -> Option<Outcome> {
        self.outcome.take()
    }

    /// Installs a coroutine.
    pub(crate) fn set(&self, coro: Coro) {
        assert!(!self.running.get(), "greenhub: a running coroutine cannot be replaced");
        // SAFETY: not running (checked), so no `&mut` from `resume` is alive, and the
        // slot is only reachable from this thread.
        unsafe { *self.coro.get() = Some(coro) };
    }

    /// Whether the coroutine runs now (it is the greenlet executing this code, or one
    /// that the executing code runs nested inside).
    pub(crate) fn is_running(&self) -> bool {
        self.running.get()
    }

    /// Whether a coroutine is installed (debug checks of the task's invariants).
    pub(crate) fn is_present(&self) -> bool {
        // A running coroutine is present; only otherwise is the slot read.
        // SAFETY: not running, so no `&mut` from `resume` is alive, and the slot is only
        // reachable from this thread.
        self.running.get() || unsafe { (*self.coro.get()).is_some() }
    }

    /// Removes the coroutine (to drop or abandon it).
    pub(crate) fn take(&self) -> Option<Coro> {
        assert!(!self.running.get(), "greenhub: a running coroutine cannot be taken");
        // SAFETY: as in `set`.
        unsafe { (*self.coro.get()).take() }
    }

    /// Resumes the coroutine in place: `false` when it suspended, `true` when it
    /// finished (the finished coroutine stays in the slot until taken, its outcome until
    /// `take_outcome`).
    #[inline]
    pub(crate) fn resume(&self) -> bool {
        assert!(!self.running.replace(true), "greenhub: a coroutine cannot resume itself");
        // SAFETY: `running` was false, so this is the only live reference into the slot
        // (set/take refuse to run meanwhile, and resume cannot re-enter for the same
        // slot); the slot is only reachable from this thread.
        let coro = unsafe { (*self.coro.get()).as_mut() }.expect("a ready greenlet owns its coroutine");
        let done = coro.resume();
        self.running.set(false);
        done
    }
}
