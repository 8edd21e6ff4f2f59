//! `Runtime`: one hub per OS thread, for all cores; greenlets never migrate.
//!
//! Each worker thread creates its hub and parks its greenlet zero on the runtime's stop
//! event, so the hub runs whatever it is given until shutdown (no keep-alive tricks: a
//! cross-thread wait counts as outstanding work, so an idle hub sleeps in `epoll_wait`
//! instead of reporting LoopExit). Work reaches a hub through its remote queue.
//!
//! Shutdown: the stop event is set; each hub lets its greenlets finish until the grace
//! deadline, then kills the rest and runs them while they unwind (bounded: a greenlet
//! that waits forever in a `Drop` is abandoned — its stack leaked — when its thread
//! exits); then the threads are joined. Their fds (epoll, eventfd) close with the hubs.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::handle::HubHandle;
use crate::remote_greenlet::RemoteGreenlet;
use crate::sync::shared::Event;

/// How long greenlets killed at shutdown get to unwind before their thread exits.
const UNWIND_BOUND: Duration = Duration::from_secs(2);

thread_local! {
    /// The index of the runtime hub this thread runs, if it is a runtime worker.
    static HUB_INDEX: Cell<Option<usize>> = const { Cell::new(None) };
}

/// What the workers share with the runtime handle.
struct Shared {
    stop: Event,
    /// When the grace period ends (set before `stop`).
    grace_until: Mutex<Option<Instant>>,
}

/// N hubs on N OS threads (one per core by default). Greenlets are placed on a hub when
/// spawned and stay there; handles and channels work across hubs.
///
/// ```
/// let rt = greenhub::Runtime::builder().threads(2).name("worker").build().unwrap();
/// // One body per hub, results in hub order:
/// let names = rt.run(|i| (i, std::thread::current().name().unwrap().to_string()));
/// assert_eq!(names, [(0, "worker-0".to_string()), (1, "worker-1".to_string())]);
/// let g = rt.spawn(|| 2 + 2);
/// assert_eq!(g.get(), Ok(4));
/// rt.shutdown(std::time::Duration::from_secs(1));
/// ```
pub struct Runtime {
    hubs: Vec<HubHandle>,
    workers: Vec<thread::JoinHandle<()>>,
    next: AtomicUsize,
    stack_size: Option<usize>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("threads", &self.hubs.len()).finish()
    }
}

/// Configures a [`Runtime`].
///
/// ```
/// let rt = greenhub::Runtime::builder().threads(1).stack_size(256 * 1024).build().unwrap();
/// assert_eq!(rt.threads(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    threads: Option<usize>,
    name: Option<String>,
    stack_size: Option<usize>,
}

impl RuntimeBuilder {
    /// Number of hubs (OS threads); default: the available parallelism.
    ///
    /// ```
    /// let rt = greenhub::Runtime::builder().threads(2).build().unwrap();
    /// assert_eq!(rt.threads(), 2);
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Thread name prefix: threads are named `{prefix}-{index}` (default `greenhub`).
    ///
    /// ```
    /// let rt = greenhub::Runtime::builder().threads(1).name("io").build().unwrap();
    /// assert_eq!(rt.run(|_| std::thread::current().name().map(String::from)), [Some("io-0".into())]);
    /// ```
    pub fn name(mut self, prefix: impl Into<String>) -> Self {
        self.name = Some(prefix.into());
        self
    }

    /// Stack size of the greenlets the runtime spawns (default
    /// [`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
    ///
    /// ```
    /// let rt = greenhub::Runtime::builder().threads(1).stack_size(1 << 20).build().unwrap();
    /// assert_eq!(rt.spawn(|| 1).get(), Ok(1));
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// Starts the threads and their hubs. Fails if `threads(0)` was asked for, or a
    /// thread or hub (its epoll instance) cannot be created; then nothing is left
    /// running.
    ///
    /// ```
    /// let e = greenhub::Runtime::builder().threads(0).build().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn build(self) -> io::Result<Runtime> {
        let n = match self.threads {
            Some(0) => return Err(io::Error::new(io::ErrorKind::InvalidInput, "a runtime needs at least one thread")),
            Some(n) => n,
            None => thread::available_parallelism().map_or(1, |n| n.get()),
        };
        let prefix = self.name.unwrap_or_else(|| "greenhub".into());
        let shared = Arc::new(Shared { stop: Event::new(), grace_until: Mutex::new(None) });
        let mut rt = Runtime {
            hubs: Vec::new(),
            workers: Vec::new(),
            next: AtomicUsize::new(0),
            stack_size: self.stack_size,
            shared,
        };
        for i in 0..n {
            let (tx, rx) = mpsc::channel();
            let shared = rt.shared.clone();
            let worker = thread::Builder::new().name(format!("{prefix}-{i}")).spawn(move || worker(i, &shared, tx))?;
            rt.workers.push(worker);
            match rx.recv() {
                Ok(Ok(h)) => rt.hubs.push(h),
                Ok(Err(e)) => return Err(e), // `rt` drops: the started workers stop
                Err(_) => return Err(io::Error::other("greenhub: a runtime worker died while starting")),
            }
        }
        Ok(rt)
    }
}

/// A worker thread's life: publish the hub, serve until stopped, drain.
fn worker(i: usize, shared: &Shared, ready: mpsc::Sender<io::Result<HubHandle>>) {
    HUB_INDEX.with(|h| h.set(Some(i)));
    let handle = HubHandle::current();
    let queue = match &handle {
        Ok(h) => h.queue().clone(),
        Err(_) => {
            let _ = ready.send(handle);
            return;
        }
    };
    let _ = ready.send(handle);
    shared.stop.wait(); // greenlet zero parks; the hub runs the greenlets meanwhile
                        // Everything pushed before the stop (spawns, kills) runs first: the queue is FIFO,
                        // so once this marker has run, so have they.
    let drained = Arc::new(Event::new());
    let d = drained.clone();
    queue.push(Box::new(move || d.set()));
    drained.wait();
    let grace_until = *shared.grace_until.lock().unwrap_or_else(|e| e.into_inner());
    let left = grace_until.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
    if !crate::run_timeout(left) {
        let until = Instant::now() + UNWIND_BOUND;
        loop {
            crate::sched::hub::with(|h| h.kill_all());
            let slice = until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            if crate::run_timeout(slice) || Instant::now() >= until {
                break;
            }
        }
    }
}

impl Runtime {
    /// A runtime of `threads` hubs with default settings.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// assert_eq!(rt.threads(), 2);
    /// ```
    pub fn new(threads: usize) -> io::Result<Runtime> {
        Runtime::builder().threads(threads).build()
    }

    /// A [`RuntimeBuilder`].
    ///
    /// ```
    /// let rt = greenhub::Runtime::builder().build().unwrap(); // one hub per core
    /// assert!(rt.threads() >= 1);
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Number of hubs.
    ///
    /// ```
    /// assert_eq!(greenhub::Runtime::new(3).unwrap().threads(), 3);
    /// ```
    pub fn threads(&self) -> usize {
        self.hubs.len()
    }

    /// The index of the runtime hub the caller runs on (`None` outside a runtime's
    /// threads).
    ///
    /// ```
    /// assert_eq!(greenhub::Runtime::current_hub(), None);
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// assert_eq!(rt.spawn_on(1, greenhub::Runtime::current_hub).get(), Ok(Some(1)));
    /// ```
    pub fn current_hub() -> Option<usize> {
        HUB_INDEX.with(Cell::get)
    }

    /// The handle of hub `i` (to spawn on it with [`HubHandle::spawn`]).
    ///
    /// # Panics
    /// If `i >= self.threads()`.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// assert_eq!(rt.hub(0).spawn(|| 5).get(), Ok(5));
    /// ```
    pub fn hub(&self, i: usize) -> &HubHandle {
        &self.hubs[i]
    }

    /// Spawns `f` as a greenlet on the next hub in round-robin order (a shared counter:
    /// spawns from all threads spread evenly; there is no load balancing and no
    /// migration). Never waits.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// let hubs: Vec<_> = (0..4).map(|_| rt.spawn(greenhub::Runtime::current_hub)).collect();
    /// let hubs: Vec<_> = hubs.into_iter().map(|g| g.get().unwrap().unwrap()).collect();
    /// assert_eq!(hubs, [0, 1, 0, 1]);
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> RemoteGreenlet<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.hubs.len();
        self.spawn_on(i, f)
    }

    /// Spawns `f` as a greenlet on hub `hub`. Never waits.
    ///
    /// # Panics
    /// If `hub >= self.threads()`.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// assert_eq!(rt.spawn_on(0, greenhub::Runtime::current_hub).get(), Ok(Some(0)));
    /// ```
    pub fn spawn_on<F, T>(&self, hub: usize, f: F) -> RemoteGreenlet<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        assert!(hub < self.hubs.len(), "greenhub: spawn_on({hub}) on a runtime of {} hubs", self.hubs.len());
        crate::remote_greenlet::spawn(self.hubs[hub].queue(), self.stack_size, f)
    }

    /// Runs `f(i)` as a greenlet on every hub `i` and waits for all of them; the results
    /// come back in hub order.
    ///
    /// # Panics
    /// If a body panicked or was killed (after all of them have finished), with its
    /// hub's index and message.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(2).unwrap();
    /// assert_eq!(rt.run(|i| i * 10), [0, 10]);
    /// ```
    pub fn run<F, T>(&self, f: F) -> Vec<T>
    where
        F: Fn(usize) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let gs: Vec<RemoteGreenlet<T>> = (0..self.hubs.len())
            .map(|i| {
                let f = f.clone();
                self.spawn_on(i, move || f(i))
            })
            .collect();
        let results: Vec<_> = gs.into_iter().map(RemoteGreenlet::get).collect();
        results
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.unwrap_or_else(|e| panic!("greenhub: Runtime::run: the body on hub {i} failed: {e}")))
            .collect()
    }

    /// Stops the runtime: greenlets get until `grace` has passed to finish, then the
    /// rest are killed (and unwind, running their destructors); the threads are joined.
    /// Dropping the runtime is `shutdown(Duration::ZERO)`.
    ///
    /// Called from one of the runtime's own hubs, it cannot join that thread: it stops
    /// every hub and joins the others only.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// let g = rt.spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// rt.shutdown(Duration::from_millis(10));
    /// assert_eq!(g.get(), Err(greenhub::GreenletError::Killed));
    /// ```
    pub fn shutdown(mut self, grace: Duration) {
        self.stop(grace);
    }

    fn stop(&mut self, grace: Duration) {
        if self.workers.is_empty() {
            return;
        }
        *self.shared.grace_until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::timeout::deadline_after(grace));
        self.shared.stop.set();
        let me = thread::current().id();
        for w in self.workers.drain(..) {
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop(Duration::ZERO);
    }
}
