//! greenhub's core runtime: greenlets on a per-thread hub.
//!
//! Code in the plain blocking style runs as cheap green threads ("greenlets"); every
//! call that would block ([`sleep`], [`Greenlet::join`], [`wait_readable`], a queue,
//! a lock) parks the greenlet and switches to the next ready one through the thread's
//! *hub*. The thread's own stack is greenlet zero: when it blocks, it runs the hub.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use greenhub::{joinall, sleep, spawn};
//!
//! // gevent: gevent.joinall([gevent.spawn(task, i) for i in range(10)])
//! let t = Instant::now();
//! let tasks: Vec<_> = (0..10)
//!     .map(|i| spawn(move || { sleep(Duration::from_millis(100)); i }))
//!     .collect();
//! joinall(&tasks);
//! assert!(t.elapsed() < Duration::from_millis(900)); // all ten slept at once
//! assert_eq!(tasks.into_iter().map(|g| g.get().unwrap()).sum::<i32>(), 45);
//! ```
//!
//! Users normally depend on the facade crate `greenhub`, which re-exports this one.

// Linux only: epoll (through mio), mmap/madvise flags for the greenlet stacks and a
// SIGSEGV handler for stack overflow reports (see README, "Platforms").
#[cfg(not(target_os = "linux"))]
compile_error!(
    "greenhub supports Linux only (x86-64 and aarch64): it drives greenlets with epoll, \
     maps their stacks with Linux mmap/madvise flags and reports overflows from a SIGSEGV handler"
);

mod block_on;
mod builder;
pub mod channel;
mod diag;
mod error;
pub mod ffi;
mod greenlet;
mod handle;
mod join;
mod link;
mod local;
pub mod pool;
pub mod queue;
pub mod raw;
mod remote_greenlet;
mod runtime;
mod sched;
mod sleep;
pub mod sync;
mod sys;
pub mod threadpool;
mod timeout;
#[cfg(feature = "tokio")]
pub mod tokio;
mod wait;
mod xthread;

pub use block_on::block_on;
pub use builder::{spawn, spawn_later, Builder};
pub use diag::monitor::{max_blocking, set_max_blocking};
pub use error::{GreenletError, TimedOut};
pub use greenlet::{Greenlet, GreenletId};
pub use handle::HubHandle;
pub use join::{joinall, joinall_timeout, killall, Join};
pub use link::LinkId;
pub use local::GreenletLocal;
pub use remote_greenlet::RemoteGreenlet;
pub use runtime::{Runtime, RuntimeBuilder};
pub use sched::reactor::{
    deregister, retry_fd, wait_any, wait_fd, wait_readable, wait_writable, Interest, Registration,
};
pub use sched::stack::{
    guard_method as stack_guard_method, stack_slabs, GuardMethod, DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE,
};
pub use sleep::{sleep, yield_now};
pub use timeout::with_timeout;
pub use wait::{iwait, wait, Iwait, WaitSlot, Waitable};

use std::time::{Duration, Instant};

use sched::hub;

/// Runs this thread's hub until no greenlet is left (from inside a greenlet: until it
/// is the only one left).
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// let done = Rc::new(Cell::new(0));
/// for _ in 0..3 {
///     let d = done.clone();
///     greenhub::spawn(move || d.set(d.get() + 1)); // handles dropped: detached
/// }
/// greenhub::run();
/// assert_eq!(done.get(), 3);
/// ```
///
/// # Panics
/// With a LoopExit message if the remaining greenlets wait on something that can never
/// happen.
pub fn run() {
    hub::with(|h| h.run_all(None));
}

/// Like [`run`], for at most `timeout`; returns whether no greenlet is left. The
/// greenlets still running are left alone.
///
/// ```
/// use std::time::Duration;
/// greenhub::spawn(|| greenhub::sleep(Duration::from_millis(1)));
/// assert!(greenhub::run_timeout(Duration::from_secs(5)));
/// let slow = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
/// assert!(!greenhub::run_timeout(Duration::from_millis(5)));
/// slow.kill();
/// ```
pub fn run_timeout(timeout: Duration) -> bool {
    hub::with(|h| h.run_all(Instant::now().checked_add(timeout)))
}

/// The running greenlet's name; `None` outside a greenlet (on the thread's own stack).
///
/// ```
/// assert_eq!(greenhub::current_name(), None);
/// let g = greenhub::spawn(greenhub::current_name);
/// let name = g.name();
/// assert_eq!(g.get(), Ok(Some(name)));
/// ```
pub fn current_name() -> Option<String> {
    hub::with(|h| h.current_identity()).map(|(_, name)| name)
}

/// Describes every live greenlet of this thread's hub: id, name, state (ready,
/// running, parked) and what a parked one waits on (gevent's `print_run_info`).
///
/// ```
/// let g = greenhub::Builder::new().name("sleeper")
///     .spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
/// greenhub::yield_now();
/// let d = greenhub::dump();
/// assert!(d.contains("sleeper: parked on sleep"), "{d}");
/// g.kill();
/// ```
pub fn dump() -> String {
    hub::with(|h| h.dump())
}

/// Whether the caller runs inside a greenlet (`false` on a thread's own stack, in
/// threads without a hub, and before `main`). Cheap and safe to call from anywhere,
/// including libc hooks.
///
/// ```
/// assert!(!greenhub::in_greenlet());
/// assert_eq!(greenhub::spawn(greenhub::in_greenlet).get(), Ok(true));
/// ```
pub fn in_greenlet() -> bool {
    hub::in_greenlet()
}

/// Counters of this thread's hub (for tests and diagnostics).
///
/// ```
/// let s: greenhub::HubStats = greenhub::stats();
/// assert_eq!(s.io_waits, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Live greenlets (greenlet zero not counted).
    pub greenlets: usize,
    /// Entries in the run queue.
    pub ready: usize,
    /// Armed timers.
    pub timers: usize,
    /// Timer slots ever allocated (stays flat when timers are cancelled and re-armed).
    pub timer_slots: usize,
    /// Waits parked on fds.
    pub io_waits: usize,
    /// Fds registered with the hub's poller.
    pub registered_fds: usize,
    /// Threadpool jobs whose completion has not come back.
    pub threadpool_jobs: usize,
}

/// This thread's hub counters.
///
/// ```
/// let s = greenhub::stats();
/// assert_eq!(s.greenlets, 0);
/// ```
pub fn stats() -> HubStats {
    hub::with(|h| h.stats())
}
