//! `spawn_blocking`: run blocking code on a pool of OS threads while the caller parks.
//!
//! The pool is process-wide and grows on demand: a job that finds no idle worker starts
//! a new thread, up to [`MAX_THREADS`] (or `GREENHUB_THREADPOOL_MAX`); workers idle for
//! [`IDLE_TIMEOUT`] exit. The caller's hub learns of completion through its remote queue,
//! so a busy hub pays no syscall for it and a sleeping one is woken by its eventfd.

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crate::sched::hub;
use crate::sched::remote::RemoteWaker;
use crate::sched::task::Wait;

mod sized;
pub use sized::{Job, ThreadPool};

/// Default upper bound on worker threads.
///
/// ```
/// assert!(greenhub::threadpool::MAX_THREADS >= 200);
/// ```
pub const MAX_THREADS: usize = 512;
/// How long an idle worker waits for a job before it exits.
///
/// ```
/// assert_eq!(greenhub::threadpool::IDLE_TIMEOUT.as_secs(), 10);
/// ```
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Work = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Work>,
    threads: usize,
    idle: usize,
}

struct Workers {
    state: Mutex<State>,
    ready: Condvar,
    max: usize,
}

fn pool() -> &'static Arc<Workers> {
    static POOL: OnceLock<Arc<Workers>> = OnceLock::new();
    POOL.get_or_init(|| {
        let max = std::env::var("GREENHUB_THREADPOOL_MAX")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(MAX_THREADS);
        Arc::new(Workers {
            state: Mutex::new(State { jobs: VecDeque::new(), threads: 0, idle: 0 }),
            ready: Condvar::new(),
            max,
        })
    })
}

impl Workers {
    /// Queues `job`; gives it back if no worker exists and none could be started.
    fn submit(self: &Arc<Workers>, job: Work) -> Result<(), Work> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.idle > st.jobs.len() || st.threads >= self.max {
            st.jobs.push_back(job);
            drop(st);
            self.ready.notify_one();
            return Ok(());
        }
        st.threads += 1;
        drop(st);
        let pool = self.clone();
        let spawned = thread::Builder::new().name("greenhub-blocking".into()).spawn(move || pool.work());
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if spawned.is_err() {
            // Out of threads: a busy worker takes the job later, if there is one.
            st.threads -= 1;
            if st.threads == 0 {
                return Err(job);
            }
        }
        st.jobs.push_back(job);
        drop(st);
        self.ready.notify_one();
        Ok(())
    }

    fn work(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job();
                st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.idle += 1;
            let (guard, timeout) = self.ready.wait_timeout(st, IDLE_TIMEOUT).unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if timeout.timed_out() && st.jobs.is_empty() {
                st.threads -= 1;
                return;
            }
        }
    }
}

/// Where a job's result meets its caller. The caller normally parks and is woken
/// through its hub's remote queue; it blocks on the condvar instead where it cannot
/// park (its hub has no poller, or it was interrupted inside `ffi::no_unwind`). If the
/// caller is gone first, the result is dropped by the worker with the last reference.
struct Done<T> {
    state: Mutex<DoneState<T>>,
    cond: Condvar,
}

struct DoneState<T> {
    result: Option<thread::Result<T>>,
    /// Wakes the parked caller; `None` if it blocks instead, or once disarmed.
    waker: Option<RemoteWaker>,
    /// A caller blocks on `cond` (the worker notifies only then: no futex call otherwise).
    blocked: bool,
}

impl<T> Done<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, DoneState<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn take(&self) -> Option<thread::Result<T>> {
        self.lock().result.take()
    }

    /// The worker's side: stores the result, then wakes the caller.
    fn store(&self, r: thread::Result<T>) {
        let mut st = self.lock();
        st.result = Some(r);
        if st.blocked {
            self.cond.notify_one();
        }
        let waker = st.waker.take();
        drop(st);
        drop(waker);
    }

    /// Blocks the OS thread until the result is there.
    fn block(&self) -> thread::Result<T> {
        let mut st = self.lock();
        st.blocked = true;
        loop {
            if let Some(r) = st.result.take() {
                return r;
            }
            st = self.cond.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Why a job gave no result to its caller.
enum Failed {
    /// It could not be started; why.
    Start(io::Error),
    /// The caller was killed or timed out inside `ffi::no_unwind` while it ran.
    Interrupted(crate::ffi::Interrupt),
}

/// Runs `f` on the pool and waits for it: parked on the hub, or blocking the thread
/// where the hub cannot be woken (no poller) and `block` allows it.
fn run<F, T>(f: F, block: bool) -> Result<thread::Result<T>, Failed>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let waker = match hub::with(|h| h.remote_waker()) {
        Ok(w) => Some(w),
        Err(_) if block => None, // no poller (out of fds): block for the job instead
        Err(e) => return Err(Failed::Start(e)),
    };
    let parks = waker.is_some();
    let done =
        Arc::new(Done { state: Mutex::new(DoneState { result: None, waker, blocked: false }), cond: Condvar::new() });
    let result = done.clone();
    let job: Work = Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        result.store(r);
    });
    if let Err(job) = pool().submit(job) {
        // Never ran: withdraw the wake-up (it must not wake a later wait), drop `f`.
        if let Some(w) = done.lock().waker.take() {
            hub::with(|h| h.disarm_remote(w));
        }
        drop(job);
        return Err(Failed::Start(io::Error::other("greenhub threadpool: cannot start a worker thread")));
    }
    if !parks {
        return Ok(done.block());
    }
    // The waker targets this wait only: the first wake-up is either the job's end or a
    // kill/timeout, which unwinds from the park, or inside `ffi::no_unwind` ends it.
    hub::with(|h| h.park(Wait::Blocking));
    match done.take() {
        Some(r) => Ok(r),
        None => match crate::ffi::interrupted() {
            Some(i) if !block => Err(Failed::Interrupted(i)),
            _ => Ok(done.block()),
        },
    }
}

/// Runs `f` on a pool thread and parks the calling greenlet (or thread, as greenlet
/// zero) until it returns; other greenlets run meanwhile. A panic in `f` is resumed in
/// the caller. If the caller is killed while waiting, `f` still runs to completion and
/// its result is dropped (on the pool thread).
///
/// Never fails: where the caller cannot park (its hub cannot create a poller, say out of
/// fds) it blocks its thread until `f` is done, and where no pool thread can be started
/// at all `f` runs on the calling thread. [`try_spawn_blocking`] reports those cases.
///
/// ```
/// let h = greenhub::spawn(|| {
///     greenhub::threadpool::spawn_blocking(|| std::thread::current().name().map(String::from))
/// });
/// assert_eq!(h.get().unwrap().as_deref(), Some("greenhub-blocking"));
/// ```
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let f = std::sync::Arc::new(Mutex::new(Some(f)));
    let g = f.clone();
    let job = move || (g.lock().unwrap_or_else(|e| e.into_inner()).take().expect("runs once"))();
    match run(job, true) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => hub::with(|h| crate::sched::unwind::rethrow(h, &h.current(), payload)),
        Err(_) => {
            // No worker could run it: `f` is still here (the job never ran).
            let f = f.lock().unwrap_or_else(|e| e.into_inner()).take().expect("the job never ran");
            f()
        }
    }
}

/// Like [`spawn_blocking`], but reports instead of degrading: an `Err` if the caller's
/// hub cannot create its poller (`EMFILE` when out of fds) or no pool thread can be
/// started; inside `ffi::no_unwind`, an `Err` of kind `TimedOut` or raw os error
/// `ECANCELED` if the caller is timed out or killed meanwhile (`f` runs on, its result
/// is dropped).
///
/// ```
/// let r = greenhub::threadpool::try_spawn_blocking(|| 1 + 1);
/// assert_eq!(r.unwrap(), 2);
/// ```
pub fn try_spawn_blocking<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match run(f, false) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(payload)) => hub::with(|h| crate::sched::unwind::rethrow(h, &h.current(), payload)),
        Err(Failed::Start(e)) => Err(e),
        Err(Failed::Interrupted(i)) => Err(i.into()),
    }
}
