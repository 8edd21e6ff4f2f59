//! `spawn_blocking`: run blocking code on a pool of OS threads while the caller parks.
//!
//! The pool is process-wide and grows on demand: a job that finds no idle worker starts
//! a new thread, up to [`MAX_THREADS`] (or `GREENHUB_THREADPOOL_MAX`); workers idle for
//! [`IDLE_TIMEOUT`] exit. The caller's hub learns of completion through its remote queue,
//! so a busy hub pays no syscall for it and a sleeping one is woken by its eventfd.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use crate::hub;
use crate::task::Wait;

/// Default upper bound on worker threads.
///
/// ```
/// assert!(greenhub_runtime::threadpool::MAX_THREADS >= 200);
/// ```
pub const MAX_THREADS: usize = 512;
/// How long an idle worker waits for a job before it exits.
///
/// ```
/// assert_eq!(greenhub_runtime::threadpool::IDLE_TIMEOUT.as_secs(), 10);
/// ```
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

struct Pool {
    state: Mutex<State>,
    ready: Condvar,
    max: usize,
}

fn pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let max = std::env::var("GREENHUB_THREADPOOL_MAX")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(MAX_THREADS);
        Arc::new(Pool {
            state: Mutex::new(State { jobs: VecDeque::new(), threads: 0, idle: 0 }),
            ready: Condvar::new(),
            max,
        })
    })
}

impl Pool {
    fn submit(self: &Arc<Pool>, job: Job) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() || st.threads >= self.max {
            drop(st);
            self.ready.notify_one();
            return;
        }
        st.threads += 1;
        drop(st);
        let pool = self.clone();
        let spawned = thread::Builder::new().name("greenhub-blocking".into()).spawn(move || pool.work());
        if spawned.is_err() {
            // Out of threads: the job waits for a busy worker (if there is none, the
            // caller's hub still counts the job, so it waits rather than hangs silently).
            self.state.lock().unwrap_or_else(|e| e.into_inner()).threads -= 1;
        }
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

/// Runs `f` on a pool thread and parks the calling greenlet (or thread, as greenlet
/// zero) until it returns; other greenlets run meanwhile. A panic in `f` is resumed in
/// the caller. If the caller is killed while waiting, `f` still runs to completion and
/// its result is dropped.
///
/// ```
/// let h = greenhub_runtime::spawn(|| {
///     greenhub_runtime::threadpool::spawn_blocking(|| std::thread::current().name().map(String::from))
/// });
/// assert_eq!(h.get().unwrap().as_deref(), Some("greenhub-blocking"));
/// ```
pub fn spawn_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let result = slot.clone();
    let waker =
        hub::with(|h| h.remote_waker()).unwrap_or_else(|e| panic!("greenhub: cannot create the hub's poller: {e}"));
    pool().submit(Box::new(move || {
        let r = panic::catch_unwind(AssertUnwindSafe(f));
        *result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        waker.wake();
    }));
    hub::with(|h| h.park(Wait::Blocking));
    let r = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
    match r {
        Some(Ok(v)) => v,
        Some(Err(payload)) => panic::resume_unwind(payload),
        None => unreachable!("the threadpool wakes its caller only after storing the result"),
    }
}
