//! This thread's hub: the thread-locals that find it at every point of a thread's life
//! (including thread-local teardown, where a leaked "late" hub takes over), and the
//! `in_greenlet` flag that libc hooks read.

use std::cell::Cell;
use std::ptr;

use super::Hub;

thread_local! {
    static HUB: Hub = Hub::new();
    /// `HUB` once it is initialised, until its destructor starts (null before and after):
    /// what `with` reads first, one load instead of the lazy thread-local's state check.
    static HUB_PTR: Cell<*const Hub> = const { Cell::new(ptr::null()) };
    /// Whether a greenlet (not greenlet zero) runs now. Const-initialised and without a
    /// destructor, so it can be read anywhere: before `main`, in libc hooks, during
    /// thread-local teardown.
    static IN_GREENLET: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread has created its hub.
    static HAS_HUB: Cell<bool> = const { Cell::new(false) };
    /// The hub used once `HUB` has been destroyed (greenhub called from another
    /// thread-local's destructor, or after `main` returned): created on demand and
    /// leaked, so it never goes away while this thread can still run code.
    static LATE_HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
}

/// Whether the caller runs inside a greenlet (`false` on a thread's own stack).
#[inline]
pub(crate) fn in_greenlet() -> bool {
    IN_GREENLET.with(Cell::get)
}

/// Whether this thread has a hub (without creating one).
#[inline]
pub(crate) fn has_hub() -> bool {
    HAS_HUB.with(Cell::get)
}

/// Runs `f` with this thread's hub (creating it on first use).
///
/// Works at every point of a thread's life: during thread-local teardown, after the
/// hub's own destructor ran, `f` gets the thread's late hub instead (see `LATE_HUB`).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let hub = HUB_PTR.with(Cell::get);
    if hub.is_null() {
        return with_slow(f);
    }
    // SAFETY: a non-null `HUB_PTR` is this thread's `HUB`, set by `with_slow` once it is
    // initialised and cleared first thing in its destructor (`forget_hub`), so the hub is
    // alive; `Hub` is `!Sync` and the pointer never leaves this thread.
    f(unsafe { &*hub })
}

#[cold]
#[inline(never)]
fn with_slow<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut f = Some(f);
    match HUB.try_with(|h| {
        HUB_PTR.with(|p| p.set(h));
        f.take().map(|f| f(h))
    }) {
        Ok(Some(r)) => r,
        _ => late(f.take().expect("not called when the hub is gone")),
    }
}

/// The hub `hub` is being destroyed: `with` no longer finds it (from `Hub::drop`; the
/// late hub, if one is needed from here on, takes over).
pub(super) fn forget_hub(hub: &Hub) {
    HUB_PTR.with(|p| {
        if std::ptr::eq(p.get(), hub) {
            p.set(ptr::null());
        }
    });
}

#[cold]
fn late<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut hub = LATE_HUB.with(Cell::get);
    if hub.is_null() {
        hub = Box::into_raw(Box::new(Hub::new()));
        LATE_HUB.with(|l| l.set(hub));
    }
    // SAFETY: the pointer comes from `Box::into_raw` above and is never freed (the late
    // hub is leaked), so it stays valid for the rest of the process; it is only stored
    // in this thread's `LATE_HUB`, and `Hub` is `!Sync`, so only this thread uses it.
    f(unsafe { &*hub })
}

/// Like [`with`], but `None` while the thread's hub is being torn down (for `Drop`s
/// that only clean up what a hub holds: nothing to do if it is gone).
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    HUB.try_with(f).ok()
}

/// Like [`try_with`], but never creates a hub: `None` if this thread has none (for the
/// panic hook and the stack overflow handler, which must not allocate one).
#[inline]
pub(crate) fn if_exists<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    if !has_hub() {
        return None;
    }
    let late = LATE_HUB.with(Cell::get);
    if !late.is_null() {
        // SAFETY: as in `late`: a leaked hub of this thread.
        return Some(f(unsafe { &*late }));
    }
    try_with(f)
}

/// Marks this thread as having created its hub (from `Hub::new`).
pub(super) fn mark_has_hub() {
    HAS_HUB.with(|h| h.set(true));
}

/// Records whether a greenlet (not greenlet zero) runs now (from the hub loop, around
/// its switches to greenlets: `Hub::run_loop`).
#[inline]
pub(super) fn set_in_greenlet(yes: bool) {
    IN_GREENLET.with(|g| g.set(yes));
}
