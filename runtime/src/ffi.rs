//! For code that must never unwind: `extern "C"` functions such as the monkey hooks.
//!
//! Kill and `with_timeout` are delivered by unwinding the greenlet from the point where
//! it waits. Unwinding out of an `extern "C"` function aborts the process, so a hook
//! that waits on the hub does it inside [`no_unwind`]: there, nothing is thrown; a kill
//! or expiry instead ends the wait early and stays pending, `no_unwind` reports it as an
//! [`Interrupt`], and the hook returns an error its caller can carry (`ECANCELED`,
//! `ETIMEDOUT`). While it stays pending every further wait inside `no_unwind` returns at
//! once (so a retry loop in the caller's C or Rust code cannot hang), and it is thrown at
//! the greenlet's next wait outside a hook; if none comes, it decides the outcome: the
//! greenlet ends as killed, the `with_timeout` returns `Err(TimedOut)`.
//!
//! ```
//! use std::time::Duration;
//! use greenhub::ffi::{no_unwind, Interrupt};
//! let r = greenhub::with_timeout(Duration::from_millis(10), || {
//!     // Inside a hook: the expiry cannot unwind, the sleep ends early instead.
//!     let r = no_unwind(|| greenhub::sleep(Duration::from_secs(10)));
//!     assert_eq!(r, Err(Interrupt::TimedOut));
//!     "what the hook's caller did with the error"
//! });
//! assert_eq!(r, Err(greenhub::TimedOut)); // the pending expiry decided
//! ```

use std::io;

use crate::sched::hub;
use crate::sched::task::Task;

/// A kill or timeout pending for the running greenlet, which could not be thrown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// The greenlet was killed.
    Killed,
    /// A `with_timeout` around the greenlet's current code expired.
    TimedOut,
}

impl Interrupt {
    /// The errno a hook reports it as: `ECANCELED` or `ETIMEDOUT`.
    ///
    /// ```
    /// assert_eq!(greenhub::ffi::Interrupt::Killed.errno(), libc::ECANCELED);
    /// ```
    pub fn errno(self) -> i32 {
        match self {
            Interrupt::Killed => libc::ECANCELED,
            Interrupt::TimedOut => libc::ETIMEDOUT,
        }
    }
}

impl From<Interrupt> for io::Error {
    /// ```
    /// let e: std::io::Error = greenhub::ffi::Interrupt::TimedOut.into();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    fn from(i: Interrupt) -> io::Error {
        io::Error::from_raw_os_error(i.errno())
    }
}

/// Whether the caller may wait on the hub: inside a greenlet, or on a thread's own stack
/// (greenlet zero) when the thread has a hub and the caller is not the hub's own loop
/// (whose syscalls must reach the kernel untouched: its poll, its timer sleep). Cheap;
/// never creates a hub.
///
/// ```
/// assert!(greenhub::spawn(greenhub::ffi::can_park).get().unwrap());
/// std::thread::spawn(|| assert!(!greenhub::ffi::can_park())).join().unwrap(); // no hub
/// ```
pub fn can_park() -> bool {
    hub::in_greenlet() || (hub::has_hub() && hub::if_exists(|h| !h.in_loop()).unwrap_or(false))
}

/// The kill or timeout pending for the running greenlet (or greenlet zero), if any.
///
/// ```
/// assert_eq!(greenhub::ffi::interrupted(), None);
/// ```
pub fn interrupted() -> Option<Interrupt> {
    if !hub::has_hub() {
        return None;
    }
    hub::with(|h| of(&h.current()))
}

fn of(task: &Task) -> Option<Interrupt> {
    let c = task.cancel();
    if c.kill() {
        Some(Interrupt::Killed)
    } else {
        c.timeout().map(|_| Interrupt::TimedOut)
    }
}

/// What ends a wait of `task` inside [`no_unwind`] early: its pending kill or timeout.
/// (`None` outside `no_unwind`, where those are thrown instead.)
pub(crate) fn pending(task: &Task) -> Option<Interrupt> {
    if task.nothrow() == 0 {
        return None;
    }
    of(task)
}

/// Runs `f`, in which no kill or timeout is thrown: waits of a greenlet that is killed
/// or timed out meanwhile end early, and the pending cancellation is returned as `Err`
/// (the value `f` returned is dropped then).
///
/// Inside, fd waits ([`crate::wait_fd`], [`crate::retry_fd`], sockets) report the
/// interruption as an `io::Error` (`ECANCELED`, or `TimedOut`), `sleep` returns early,
/// and [`crate::threadpool::try_spawn_blocking`] returns an error; waits that have no
/// error to return (a `Semaphore::acquire`) must not be used there.
///
/// ```
/// let g = greenhub::spawn(|| {
///     greenhub::ffi::no_unwind(|| greenhub::sleep(std::time::Duration::from_secs(60)))
/// });
/// greenhub::yield_now(); // it starts and sleeps
/// g.kill();
/// // The sleep ended early with Err(Killed), and the pending kill decided the outcome.
/// assert_eq!(g.get(), Err(greenhub::GreenletError::Killed));
/// ```
pub fn no_unwind<R>(f: impl FnOnce() -> R) -> Result<R, Interrupt> {
    struct Depth(std::rc::Rc<crate::sched::task::Task>);
    impl Drop for Depth {
        fn drop(&mut self) {
            self.0.leave_nothrow();
        }
    }
    let task = hub::with(|h| h.current());
    task.enter_nothrow();
    let depth = Depth(task);
    let r = f();
    drop(depth);
    match interrupted() {
        Some(i) => Err(i),
        None => Ok(r),
    }
}
