//! The synchronisation types the cross-thread parts use: `std`'s, or `loom`'s models of
//! them when built with `--cfg loom` (the model-checking tests in `xthread/tests.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread;

/// Locks `m`, ignoring poisoning: every critical section in these modules leaves the
/// state consistent before anything that can panic (user code never runs under a lock).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parks the OS thread until unparked or `timeout` (loom has no timed park: its models
/// use no deadlines).
pub(crate) fn park_timeout(timeout: Option<std::time::Duration>) {
    #[cfg(loom)]
    {
        let _ = timeout;
        thread::park();
    }
    #[cfg(not(loom))]
    match timeout {
        Some(t) => thread::park_timeout(t),
        None => thread::park(),
    }
}
