//! A greenlet's execution context: the stack pointer it resumes at while it is
//! suspended (`sys::switch` does the switching).
//!
//! Greenlets switch symmetrically: the one that parks or yields switches straight to
//! the next ready one (`hub/run.rs`), so a hand-over is one stack switch.
//!
//! A greenlet may switch away while executing on the stack of a nested coroutine: a
//! `raw::Generator` or raw greenlet (corosensei) that it resumed and that now blocks on
//! the hub. That is sound:
//! - the saved stack pointer is simply a point on the nested coroutine's stack; the
//!   switch back lands there, and the nested coroutine's own parent link (corosensei
//!   keeps it at the base of the nested stack) points into a frame of the greenlet's
//!   stack, which is untouched while the greenlet is suspended;
//! - while the greenlet is suspended, nobody else can resume, move or drop the nested
//!   coroutine: `Generator::resume` and the raw trampoline move it into a local of their
//!   frame on the greenlet's stack for the duration of the resume;
//! - a kill or timeout thrown at the park unwinds the nested body to its root, where
//!   corosensei catches it and resumes the unwind in the resumer's frame, on the
//!   greenlet's stack: an ordinary nested unwind;
//! - if the greenlet is abandoned (thread exit), its stack is leaked, and the nested
//!   one with the frame that owns it, so neither is reused.

use std::cell::Cell;
use std::ptr;

use crate::sched::stack::PooledStack;
use crate::sys;

/// Where a suspended context resumes.
///
/// Invariant: `sp` is where the context resumes while it is suspended (saved by a
/// switch away from it) or prepared (a fresh stack, not yet run); it is null for a task
/// that has no stack yet or has finished. While the context runs `sp` is stale, and
/// nothing reads it: only a suspended context is switched to (a task's state says so:
/// see `Task`), and the prefetch looks only at queued tasks, which do not run. Debug
/// builds clear it at each resume, so that their assertions can check this.
pub(crate) struct Context {
    sp: Cell<*mut u8>,
}

impl Context {
    pub(crate) const fn new() -> Context {
        Context { sp: Cell::new(ptr::null_mut()) }
    }

    /// Whether the context can be resumed (it is suspended or prepared); only
    /// meaningful in debug builds, where a resumed context's `sp` is cleared.
    #[inline]
    pub(crate) fn is_suspended(&self) -> bool {
        !self.sp.get().is_null()
    }

    /// Prepares the context to run `entry` on `stack` at its first resume.
    ///
    /// # Safety
    /// Nothing runs on `stack`, and it stays mapped until the context is done with it.
    pub(crate) unsafe fn prepare(&self, stack: &PooledStack, entry: extern "C" fn() -> !) {
        debug_assert!(!self.is_suspended(), "a context is prepared once");
        // SAFETY: a pooled stack's start is 16-byte aligned with at least `size` mapped
        // bytes below it (`PooledStack::start`), unused (this function's contract).
        self.sp.set(unsafe { sys::switch::prepare(stack.start() as *mut u8, entry) });
    }

    /// Prefetches the frames a switch to this context reads first (see
    /// `ReadyQueue::prefetch_front`); nothing for a context that is not suspended.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let sp = self.sp.get();
        if !sp.is_null() {
            sys::switch::prefetch(sp);
            sys::switch::prefetch(sp.wrapping_add(64));
            sys::switch::prefetch(sp.wrapping_add(128));
        }
    }

    /// Forgets where a context resumes (a finished or abandoned one is never resumed).
    #[inline]
    pub(crate) fn clear(&self) {
        self.sp.set(ptr::null_mut());
    }
}

/// Suspends the running context `from` and resumes `to`, handing it `pass`; returns
/// when a later switch resumes `from`, with that switch's `pass`.
///
/// # Safety
/// `from` is the context executing this call; `to` is suspended or prepared, on a stack
/// that is still mapped; both `Context`s stay at their addresses and alive until
/// `from` is resumed (they live in tasks kept alive by the hub, see `hub/run.rs`).
#[inline(always)]
pub(crate) unsafe fn switch(from: &Context, to: &Context, pass: *const u8) -> *const u8 {
    debug_assert!(!ptr::eq(from, to), "a context does not switch to itself");
    debug_assert!(!from.is_suspended(), "the running context has no saved stack pointer");
    let resume = to.sp.get(); // `to` runs from now on: its `sp` is stale (see `Context`)
    debug_assert!(!resume.is_null(), "only a suspended context is resumed");
    if cfg!(debug_assertions) {
        to.sp.set(ptr::null_mut());
    }
    // SAFETY: `from.sp` is written through its `Cell` (interior mutability) and read by
    // nobody until `from` is resumed, which is what storing it there means; `resume` is
    // `to`'s saved or prepared stack pointer, and nobody else resumes it: `to` is
    // suspended (this function's contract), and once it runs it is not switched to
    // again before it has switched away, which saves a fresh one.
    unsafe { sys::switch::switch(from.sp.as_ptr(), resume, pass) }
}
