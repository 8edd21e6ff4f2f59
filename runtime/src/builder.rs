//! Spawning greenlets: [`spawn`], [`spawn_later`] and [`Builder`].

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::error::{panic_message, GreenletError, KillSignal, TimeoutSignal};
use crate::greenlet::Greenlet;
use crate::sched::body::Outcome;
use crate::sched::hub;
use crate::sched::stack::DEFAULT_STACK_SIZE;

/// Spawns a greenlet running `f` on this thread's hub.
///
/// Spawning never switches: the new greenlet is put at the back of the run queue and
/// first runs when the spawner next waits or yields (greenlets start in spawn order).
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// let g = greenhub::spawn(move || l.borrow_mut().push("greenlet"));
/// log.borrow_mut().push("spawner");
/// g.join();
/// assert_eq!(*log.borrow(), ["spawner", "greenlet"]);
/// ```
///
/// # Panics
/// If no stack can be allocated (the system is out of memory); see
/// [`Builder::try_spawn`] for the fallible form.
pub fn spawn<F, T>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn(f)
}

/// Spawns a greenlet that starts after `delay` (gevent's `spawn_later`).
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let g = greenhub::spawn_later(Duration::from_millis(20), || "late");
/// assert_eq!(g.get(), Ok("late"));
/// assert!(t.elapsed() >= Duration::from_millis(20));
/// ```
pub fn spawn_later<F, T>(delay: Duration, f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new().spawn_later(delay, f)
}

/// Configures a greenlet before spawning it.
///
/// ```
/// let g = greenhub::Builder::new()
///     .name("worker-1")
///     .stack_size(64 * 1024)
///     .spawn(|| greenhub::current_name());
/// assert_eq!(g.get(), Ok(Some("worker-1".to_string())));
/// ```
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: no name (`greenlet-<id>`), a
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE) stack.
    ///
    /// ```
    /// let g = greenhub::Builder::new().spawn(|| 1);
    /// assert_eq!(g.get(), Ok(1));
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown by `dump()`, panic messages and `current_name()`).
    ///
    /// ```
    /// let g = greenhub::Builder::new().name("fetcher").spawn(|| ());
    /// assert_eq!(g.name(), "fetcher");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes (rounded up to whole pages, at least 16 KiB).
    ///
    /// ```
    /// let g = greenhub::Builder::new().stack_size(1 << 20).spawn(|| {
    ///     let big = [1u8; 512 * 1024]; // needs a bigger stack than the default
    ///     big.iter().map(|&b| b as u32).sum::<u32>()
    /// });
    /// assert_eq!(g.get(), Ok(512 * 1024));
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the greenlet; see [`spawn`].
    ///
    /// ```
    /// let g = greenhub::Builder::new().name("x").spawn(|| 2);
    /// assert_eq!(g.get(), Ok(2));
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated; see [`Builder::try_spawn`].
    #[inline]
    pub fn spawn<F, T>(self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.try_spawn_at(None, f).unwrap_or_else(|e| panic!("greenhub: cannot allocate a greenlet stack: {e}"))
    }

    /// Spawns the greenlet, or reports why no stack could be allocated.
    ///
    /// ```
    /// let g = greenhub::Builder::new().try_spawn(|| 3).unwrap();
    /// assert_eq!(g.get(), Ok(3));
    /// ```
    pub fn try_spawn<F, T>(self, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.try_spawn_at(None, f)
    }

    /// Spawns the greenlet to start after `delay`; see [`spawn_later`].
    ///
    /// ```
    /// let g = greenhub::Builder::new().name("later")
    ///     .spawn_later(std::time::Duration::from_millis(1), || 4);
    /// assert_eq!(g.get(), Ok(4));
    /// ```
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let at = crate::timeout::deadline_after(delay);
        self.try_spawn_at(Some(at), f).unwrap_or_else(|e| panic!("greenhub: cannot allocate a greenlet stack: {e}"))
    }

    fn try_spawn_at<F, T>(self, start_at: Option<Instant>, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        crate::diag::panic::install_hook();
        let name = self.name.map(String::into_boxed_str);
        let stack = self.stack_size.unwrap_or(DEFAULT_STACK_SIZE);
        let task = hub::with(|h| h.spawn_task(name, stack, start_at, body(f)))?;
        Ok(Greenlet::from_task(task))
    }
}

/// Wraps `f` so that its value, panic or kill becomes the greenlet's outcome.
///
/// Everything the greenlet's end runs of user code runs here, on the greenlet's own
/// stack, where it may wait and where a panic is caught: the value's `Drop` when the
/// handle is already gone (nobody can read it), and the panic payload's `Drop`. The hub
/// loop then only records the outcome.
fn body<F, T>(f: F) -> impl FnOnce() -> Outcome + 'static
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        let task = hub::with(|h| h.current());
        // Its greenlet-locals drop here, in the greenlet (a Drop may wait; a panic is
        // caught and dropped).
        // (A local's Drop may touch another local and create it anew: a few rounds.)
        for _ in 0..4 {
            match task.take_locals() {
                Some(locals) if !locals.is_empty() => {
                    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(locals)));
                }
                _ => break,
            }
        }
        let outcome = match r {
            Ok(v) if task.is_detached() && !task.linked() => {
                match panic::catch_unwind(AssertUnwindSafe(move || drop(v))) {
                    Ok(()) => Ok(Box::new(()) as Box<dyn Any>),
                    Err(payload) => Err(failure(payload)),
                }
            }
            Ok(v) => Ok(Box::new(v) as Box<dyn Any>),
            Err(payload) => {
                hub::with(|h| crate::sched::unwind::end(h, &task));
                Err(failure(payload))
            }
        };
        // A kill that could not be thrown (it came inside a monkey hook, or while the
        // greenlet unwound) decides the outcome: whatever the body did after it was a
        // consequence of the kill (an ECANCELED unwrapped, a cleanup that went on).
        if task.cancel().kill() {
            return Err(GreenletError::Killed);
        }
        outcome
    }
}

/// The error of a body that unwound with `payload` (which is dropped here).
/// The error a greenlet ends with when its body unwinds with `payload`.
pub(crate) fn classify(payload: &(dyn Any + Send)) -> GreenletError {
    if payload.is::<KillSignal>() {
        GreenletError::Killed
    } else if payload.is::<TimeoutSignal>() {
        GreenletError::Panicked("a with_timeout expiry escaped its scope".into())
    } else {
        GreenletError::Panicked(panic_message(payload))
    }
}

fn failure(payload: Box<dyn Any + Send>) -> GreenletError {
    let err = classify(&*payload);
    // A payload whose Drop panics must not take the hub down.
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
    err
}
