//! Cooperative `std::thread` functions.

use std::time::Duration;

/// Parks the calling greenlet for at least `d` (std's `thread::sleep`, cooperative).
///
/// ```
/// let t = std::time::Instant::now();
/// greenhub::thread::sleep(std::time::Duration::from_millis(5));
/// assert!(t.elapsed() >= std::time::Duration::from_millis(5));
/// ```
pub fn sleep(d: Duration) {
    greenhub_runtime::sleep(d)
}

/// Lets the other ready greenlets run (std's `thread::yield_now`, cooperative).
///
/// ```
/// greenhub::thread::yield_now();
/// ```
pub fn yield_now() {
    greenhub_runtime::yield_now()
}
