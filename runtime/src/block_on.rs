//! `block_on`: run a future to completion from a greenlet, parking it while the future
//! is pending (the other greenlets of its hub run meanwhile).
//!
//! The future is polled on the calling greenlet's own stack. Its `Waker` ends the park:
//! each park registers a fresh one-shot [`Waiter`] (a remote waker for the greenlet's
//! current wait epoch) in the waker's slot, so a wake-up from the same hub makes the
//! greenlet ready directly and one from another thread goes through the hub's remote
//! queue; a wake-up that comes while the future is being polled sets `notified`, and the
//! next park returns at once instead (no lost wake-up, no busy loop). Waking after
//! `block_on` returned, or after its greenlet is gone, finds an empty slot or a stale
//! epoch and does nothing.
//!
//! Kill and `with_timeout` unwind from the park: the guard withdraws the waiter, and the
//! future, pinned on the greenlet's stack, is dropped by the unwinding (its destructors
//! run there).

use crate::sched::task::Primitive;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::xthread::loom::Arc as WaiterArc;
use crate::xthread::waiter::{Waiter, WOKEN};

/// What the future's `Waker` points at.
#[derive(Default)]
struct Slot {
    /// A wake-up came while no park was registered: the next park returns at once.
    notified: AtomicBool,
    /// The waiter of the park in progress.
    parked: Mutex<Option<WaiterArc<Waiter>>>,
}

impl Wake for Slot {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.notified.store(true, Ordering::SeqCst);
        let parked = self.parked.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = parked {
            if w.try_claim(WOKEN) {
                w.wake();
            }
        }
    }
}

/// Withdraws the park in progress when dropped (normally, or while a kill or timeout
/// unwinds from the park).
struct Parked<'a> {
    slot: &'a Slot,
    waiter: WaiterArc<Waiter>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.slot.parked.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.waiter.withdraw();
    }
}

/// Runs `fut` to completion on the calling greenlet and returns its output. While the
/// future is pending the greenlet parks and the other greenlets of its hub run; on a
/// thread's own stack (greenlet zero) the hub's loop runs meanwhile, as in `join`. The
/// future's waker may be used from any thread.
///
/// Runtime-agnostic futures work as they are (`futures` and `async-channel` channels,
/// `event-listener`, greenhub's own `RemoteGreenlet`); futures that need a tokio context
/// go through `greenhub::tokio::block_on` (feature `tokio`).
///
/// A kill or `with_timeout` expiry while the future is pending drops the future at that
/// point (its destructors run) and unwinds as from any other wait. A panic inside the
/// future unwinds the greenlet like any panic.
///
/// ```
/// use std::time::Duration;
/// let g = greenhub::spawn(|| greenhub::block_on(async { 6 * 7 }));
/// let other = greenhub::spawn(|| "others run too");
/// assert_eq!(g.get(), Ok(42));
/// assert_eq!(other.get(), Ok("others run too"));
///
/// // A future woken from another thread:
/// let rt = greenhub::Runtime::new(1).unwrap();
/// let remote = rt.spawn(|| { greenhub::sleep(Duration::from_millis(5)); "from a hub" });
/// assert_eq!(greenhub::block_on(remote), Ok("from a hub"));
/// ```
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let slot = Arc::new(Slot::default());
    let waker = Waker::from(slot.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        if slot.notified.swap(false, Ordering::SeqCst) {
            continue; // woken while it was polled
        }
        let waiter = Waiter::new();
        *slot.parked.lock().unwrap_or_else(|e| e.into_inner()) = Some(waiter.clone());
        let parked = Parked { slot: &slot, waiter };
        // A wake-up between the poll and the registration set `notified` (the waker
        // then found no waiter, or claimed this one: either way no park).
        if !slot.notified.swap(false, Ordering::SeqCst) {
            parked.waiter.wait(Primitive::BlockOn, None);
        }
        drop(parked);
        slot.notified.store(false, Ordering::SeqCst);
    }
}
