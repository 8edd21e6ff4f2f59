//! greenhub: gevent for Rust.
//!
//! Write plain blocking code — `sleep()`, `join()`, socket reads — and run thousands of
//! such flows as *greenlets* (stackful coroutines) on one OS thread. Every call that
//! would block switches to another greenlet through the thread's *hub*; the thread's own
//! stack (`main`) is greenlet zero and runs the hub whenever it waits.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use greenhub::{joinall, sleep, spawn, with_timeout};
//!
//! // gevent: gevent.joinall([gevent.spawn(task, i) for i in range(10)])
//! let t = Instant::now();
//! let tasks: Vec<_> = (0..10)
//!     .map(|i| spawn(move || { sleep(Duration::from_millis(100)); i * i }))
//!     .collect();
//! joinall(&tasks);
//! assert!(t.elapsed() < Duration::from_millis(900)); // all ten slept at once
//! assert_eq!(tasks.into_iter().map(|g| g.get().unwrap()).sum::<i32>(), 285);
//!
//! // gevent.Timeout: unwind a wait that takes too long.
//! assert!(with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(60))).is_err());
//! ```
//!
//! # Where things are
//!
//! | | |
//! |---|---|
//! | the root | the gevent-shaped API: [`spawn`], [`spawn_later`], [`Builder`], [`Greenlet`], [`joinall`], [`killall`], [`sleep`], [`yield_now`], [`with_timeout`], [`run`], [`wait`]/[`iwait`], [`greenlet_local!`], [`dump`], [`wait_readable`]/[`wait_writable`] |
//! | [`Runtime`], [`RemoteGreenlet`] | all cores: one hub per thread, `Send` greenlet handles (docs/multicore.md) |
//! | [`channel`] | cross-hub MPMC channels (`bounded`, `unbounded`, `rendezvous`, `Select`) |
//! | [`sync`] | `Event`, `AsyncResult`, `Semaphore`, `Mutex`, `RLock`; `sync::shared::{Event, Semaphore}` across hubs |
//! | [`queue`] | `Queue` (bounded, unbounded, rendezvous), `LifoQueue`, `PriorityQueue`, `JoinableQueue` |
//! | [`pool`] | `Pool`, `Group` |
//! | [`net`], [`os`], [`thread`] | std-shaped cooperative sockets, Unix sockets, name resolution, `sleep` ("patch by import") |
//! | [`server`] | `StreamServer`, `DatagramServer` |
//! | [`select`] | `select::select` over fds |
//! | [`threadpool`] | `spawn_blocking`, `ThreadPool` |
//! | [`raw`] | greenlet-module switching (`raw::Greenlet`), generators |
//! | [`monkey`] | feature `monkey`: `patch_all()` makes `std::net`, sleeps, DNS and C libraries cooperative |
//! | [`io`] | lower-level extension points: `Registration`, `Interest`, `wait_fd`, `wait_any`, `retry_fd`, `deregister`, `HubHandle` |
//! | [`diag`] | diagnostics: `stats`, `dump`, the blocking detector's settings, stack figures |
//! | [`ffi`] | waiting from code that must not unwind (`extern "C"` hooks) |
//! | [`block_on`], `tokio` | async interop: run futures from greenlets (feature `tokio` for tokio-based crates); `RemoteGreenlet` is a `Future` (docs/async-interop.md) |
//!
//! # Features
//!
//! - `monkey` (off by default): libc interposition, see [`monkey`] and docs/monkey.md.
//! - `tracing` (off by default): greenlet spawn/finish/kill events (id, name) and
//!   greenhub's reports (a greenlet's panic, the blocking detector, LoopExit) as `tracing`
//!   events; with a subscriber installed the reports go there instead of stderr.
//! - `tokio` (off by default): `greenhub::tokio::block_on` runs futures that need a tokio
//!   runtime (reqwest, hyper, tonic, sqlx) from greenlets; docs/async-interop.md.
//!
//! # Platforms
//!
//! Linux on x86-64 and aarch64 (epoll through mio, Linux stack mappings, a SIGSEGV
//! handler for stack overflow reports). Other targets stop at compile time saying so.
//!
//! # Coming from gevent
//!
//! The semantics are gevent's (spawn never switches; FIFO waiters; LoopExit instead of a
//! hang; kill and timeouts unwind the greenlet from where it waits, running its
//! destructors). The differences are Rust's: greenlets never move between threads
//! (handles are `!Send`, so `Rc` and `thread_local!` are fine inside them), values come
//! back as `Result`s instead of exceptions, kills carry no payload, and a kill or timeout
//! that arrives where unwinding is not allowed (inside a monkey-patched C call, inside a
//! `Drop` during unwinding) waits for the next point where it is. The guide, the gevent
//! migration table (every gevent name, including the absent ones), troubleshooting and
//! the performance report are in the repository's `docs/`: `guide.md`,
//! `gevent-migration.md`, `troubleshooting.md`, `performance.md`.
//!
//! Depend on this crate; `greenhub-runtime` and `greenhub-io` are its parts.

// ---- the gevent-shaped API ----------------------------------------------------------

pub use greenhub_runtime::{
    block_on, current_name, dump, greenlet_local, iwait, joinall, joinall_timeout, killall, run, run_timeout, sleep,
    spawn, spawn_later, wait, wait_readable, wait_writable, with_timeout, yield_now, Builder, Greenlet, GreenletError,
    GreenletId, GreenletLocal, Iwait, Join, LinkId, TimedOut, Waitable,
};

// ---- all cores ------------------------------------------------------------------------

pub use greenhub_runtime::{channel, RemoteGreenlet, Runtime, RuntimeBuilder};

pub use greenhub_runtime::{ffi, pool, queue, raw, sync, threadpool};

#[cfg(feature = "tokio")]
pub use greenhub_runtime::tokio;

#[cfg(feature = "monkey")]
pub use greenhub_io::monkey;
pub use greenhub_io::{net, os, select, server, thread};

/// Lower-level extension points: fd readiness for code that brings its own sockets,
/// and reaching a hub from another thread.
///
/// ```
/// use std::os::fd::AsFd;
/// use greenhub::io::{Interest, Registration};
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let reg = Registration::new(a.as_fd()).unwrap();
/// reg.wait(Interest::WRITABLE, None).unwrap();
/// ```
pub mod io {
    pub use greenhub_runtime::{
        deregister, in_greenlet, retry_fd, wait_any, wait_fd, wait_readable, wait_writable, HubHandle, Interest,
        Registration, WaitSlot,
    };
}

/// Diagnostics: hub counters, the greenlet dump, the blocking detector, stack figures.
///
/// ```
/// let s = greenhub::diag::stats();
/// assert_eq!(s.io_waits, 0);
/// greenhub::diag::set_max_blocking(None);
/// assert!(greenhub::diag::dump().contains("greenlet zero"));
/// ```
pub mod diag {
    pub use greenhub_runtime::{
        dump, max_blocking, set_max_blocking, stack_guard_method, stack_slabs, stats, GuardMethod, HubStats,
        DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE,
    };
}

// Kept importable from the root for code written against the first release (the
// documented homes are `io` and `diag` above).
#[doc(hidden)]
pub use greenhub_runtime::{
    deregister, in_greenlet, max_blocking, retry_fd, set_max_blocking, stack_guard_method, stack_slabs, stats,
    wait_any, wait_fd, HubHandle, HubStats, Interest, Registration, WaitSlot, DEFAULT_STACK_SIZE, MIN_STACK_SIZE,
};
