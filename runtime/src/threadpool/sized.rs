//! `ThreadPool`: a pool of a fixed number of OS threads with job handles
//! (gevent.threadpool.ThreadPool), beside the process-wide `spawn_blocking`.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use crate::error::{panic_message, GreenletError};
use crate::sched::hub;
use crate::sched::remote::RemoteWaker;
use crate::sched::task::Wait;

type Work = Box<dyn FnOnce() + Send>;

struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

struct State {
    queue: VecDeque<Work>,
    /// Jobs submitted and not finished.
    outstanding: usize,
    /// Waiters of `join`, woken when `outstanding` reaches 0.
    joiners: Vec<RemoteWaker>,
    /// The pool was dropped: workers exit once the queue is empty.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A pool of `threads` OS threads running jobs in submission order; each job's caller
/// gets a [`Job`] handle whose `get` parks the calling greenlet (other greenlets run)
/// until the job is done.
///
/// Dropping the pool lets its threads finish the queued jobs, then exit.
///
/// ```
/// use greenhub::threadpool::ThreadPool;
/// let pool = ThreadPool::new(2);
/// let job = pool.spawn(|| (1..=10).sum::<u32>());
/// assert_eq!(job.get(), Ok(55));
/// assert_eq!(pool.map(vec![1, 2, 3], |x| x * 10), [10, 20, 30]);
/// pool.join();
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
    threads: usize,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.shared.state);
        f.debug_struct("ThreadPool")
            .field("threads", &self.threads)
            .field("queued", &st.queue.len())
            .field("outstanding", &st.outstanding)
            .finish()
    }
}

impl ThreadPool {
    /// Starts a pool of `threads` threads (at least one).
    ///
    /// # Panics
    /// If no thread at all can be started.
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(4);
    /// assert_eq!(pool.threads(), 4);
    /// ```
    pub fn new(threads: usize) -> ThreadPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State { queue: VecDeque::new(), outstanding: 0, joiners: Vec::new(), closed: false }),
            ready: Condvar::new(),
        });
        let mut started = 0;
        for i in 0..threads.max(1) {
            let s = shared.clone();
            if thread::Builder::new().name(format!("greenhub-pool-{i}")).spawn(move || work(&s)).is_ok() {
                started += 1;
            }
        }
        assert!(started > 0, "greenhub: ThreadPool could not start any thread");
        ThreadPool { shared, threads: started }
    }

    /// The number of threads.
    ///
    /// ```
    /// assert_eq!(greenhub::threadpool::ThreadPool::new(1).threads(), 1);
    /// ```
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `f`; never waits.
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(1);
    /// let job = pool.spawn(|| std::thread::current().name().unwrap().to_string());
    /// assert_eq!(job.get().unwrap(), "greenhub-pool-0");
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Job<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let slot = Arc::new(Slot { state: Mutex::new((None, None)) });
        let s = slot.clone();
        let shared = self.shared.clone();
        let work: Work = Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            let waker = {
                let mut st = lock(&s.state);
                st.0 = Some(r.map_err(|p| GreenletError::Panicked(panic_message(&*p))));
                st.1.take()
            };
            drop(waker); // wakes the job's waiter, if any
            let joiners = {
                let mut st = lock(&shared.state);
                st.outstanding -= 1;
                if st.outstanding == 0 {
                    std::mem::take(&mut st.joiners)
                } else {
                    Vec::new()
                }
            };
            drop(joiners); // wakes `join`
        });
        {
            let mut st = lock(&self.shared.state);
            st.outstanding += 1;
            st.queue.push_back(work);
        }
        self.shared.ready.notify_one();
        Job { slot }
    }

    /// Runs `f` on every item on the pool's threads; returns the results in input order.
    ///
    /// # Panics
    /// If `f` panicked for an item.
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(3);
    /// assert_eq!(pool.map(["a", "bb", "ccc"], |s: &str| s.len()), [1, 2, 3]);
    /// ```
    pub fn map<I, F, T>(&self, items: I, f: F) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let jobs: Vec<Job<T>> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        jobs.into_iter().map(|j| j.get().unwrap_or_else(|e| panic!("a ThreadPool job failed: {e}"))).collect()
    }

    /// Waits until every job submitted so far has finished (parks the calling greenlet).
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(2);
    /// for _ in 0..4 { drop(pool.spawn(|| std::thread::sleep(std::time::Duration::from_millis(2)))); }
    /// pool.join();
    /// ```
    pub fn join(&self) {
        wait(|register| {
            let mut st = lock(&self.shared.state);
            if st.outstanding == 0 {
                return Poll::Ready(());
            }
            match register() {
                Some(w) => st.joiners.push(w),
                None => return Poll::NoPoller,
            }
            Poll::Waiting
        });
    }
}

/// How a wait of [`wait`] stands after a look under its lock.
enum Poll<R> {
    Ready(R),
    /// Not yet; a waker is registered for when it is.
    Waiting,
    /// Not yet, and the hub has no poller to be woken through (out of fds).
    NoPoller,
}

/// The wait of `Job::get` and `ThreadPool::join`: `poll` looks, under its own lock, whether
/// the wait is over, and if not registers the remote waker `register` makes (firing when
/// it is over); the caller parks meanwhile (or, without a poller, looks again every ms).
/// `None` when a kill or timeout ended the wait inside `ffi::no_unwind` (outside it they
/// unwind from the park instead).
fn wait<R>(mut poll: impl FnMut(&mut dyn FnMut() -> Option<RemoteWaker>) -> Poll<R>) -> Option<R> {
    loop {
        match poll(&mut || hub::with(|h| h.remote_waker()).ok()) {
            Poll::Ready(r) => return Some(r),
            Poll::NoPoller => thread::sleep(std::time::Duration::from_millis(1)),
            Poll::Waiting => {
                hub::with(|h| h.park(Wait::Blocking));
                if hub::with(|h| crate::ffi::pending(&h.current()).is_some()) {
                    return None;
                }
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    let mut st = lock(&shared.state);
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            job();
            st = lock(&shared.state);
            continue;
        }
        if st.closed {
            return;
        }
        st = shared.ready.wait(st).unwrap_or_else(|e| e.into_inner());
    }
}

/// The result once done, and the waker of a caller parked in `get`.
type SlotState<T> = (Option<Result<T, GreenletError>>, Option<RemoteWaker>);

struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

/// The handle of a [`ThreadPool`] job.
///
/// ```
/// let pool = greenhub::threadpool::ThreadPool::new(1);
/// let job: greenhub::threadpool::Job<u8> = pool.spawn(|| 1);
/// assert_eq!(job.get(), Ok(1));
/// ```
pub struct Job<T> {
    slot: Arc<Slot<T>>,
}

impl<T> fmt::Debug for Job<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("ready", &self.ready()).finish()
    }
}

impl<T> Job<T> {
    /// Whether the job has finished.
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(1);
    /// let job = pool.spawn(|| ());
    /// pool.join();
    /// assert!(job.ready());
    /// ```
    pub fn ready(&self) -> bool {
        lock(&self.slot.state).0.is_some()
    }

    /// Waits for the job (parking the calling greenlet; greenlet zero runs the hub) and
    /// gives its value, or `Panicked` with the panic message.
    ///
    /// ```
    /// let pool = greenhub::threadpool::ThreadPool::new(1);
    /// let bad = pool.spawn(|| -> u8 { panic!("job failed") });
    /// assert_eq!(bad.get(), Err(greenhub::GreenletError::Panicked("job failed".into())));
    /// ```
    pub fn get(self) -> Result<T, GreenletError> {
        let r = wait(|register| {
            let mut st = lock(&self.slot.state);
            if let Some(r) = st.0.take() {
                return Poll::Ready(r);
            }
            match register() {
                Some(w) => st.1 = Some(w),
                None => return Poll::NoPoller,
            }
            Poll::Waiting
        });
        // None: interrupted inside `ffi::no_unwind`; the job runs on, its result is dropped.
        r.unwrap_or(Err(GreenletError::Killed))
    }
}
