//! `RemoteGreenlet<T>`: the `Send` handle of a greenlet spawned on some hub, usable
//! from any hub or thread.
//!
//! The greenlet itself lives on its hub like any other (greenlets never migrate); its
//! outcome is moved into a shared [`Completion`] when it ends, and waiters on any
//! thread are woken through the cross-thread waiters (`xthread`). A kill from another
//! thread travels to the hub through its remote queue. The outcome is always reported,
//! even when the greenlet never runs or its hub's thread exits first: a guard in the
//! spawned closure reports a greenlet that never ran, and a thread-local registry of
//! the running ones reports those abandoned at thread exit (their stacks are leaked,
//! never unwound — see `Coro::abandon`).

use crate::sched::task::Primitive;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::GreenletError;
use crate::sched::hub;
use crate::sched::remote::RemoteQueue;
use crate::xthread::list::WaitList;
use crate::xthread::loom::{lock, Mutex};
use crate::xthread::wait::wait_in_list;

struct State<T> {
    /// Taken by `get`.
    outcome: Option<Result<T, GreenletError>>,
    done: bool,
    /// The greenlet's slot and id on its hub, once it was spawned there.
    target: Option<(u32, u64)>,
    /// A kill was requested (before the greenlet was spawned on its hub, the spawn job
    /// acts on it; a greenlet killed before it started reports `Killed`).
    kill_requested: bool,
    joiners: WaitList,
}

/// Where a remote greenlet's outcome meets its handle.
pub(crate) struct Completion<T> {
    state: Mutex<State<T>>,
    hub: Arc<RemoteQueue>,
}

impl<T> Completion<T> {
    /// A completion for a greenlet on the hub behind `hub`, not yet spawned there.
    fn new(hub: Arc<RemoteQueue>) -> Arc<Completion<T>> {
        let state =
            State { outcome: None, done: false, target: None, kill_requested: false, joiners: WaitList::default() };
        Arc::new(Completion { state: Mutex::new(state), hub })
    }

    /// Records the outcome (the first report wins) and wakes every joiner.
    fn report(&self, outcome: Result<T, GreenletError>) {
        let mut st = lock(&self.state);
        if st.done {
            return;
        }
        st.outcome = Some(outcome);
        st.done = true;
        let woken = st.joiners.claim_all();
        drop(st);
        for e in woken {
            e.waiter.wake();
        }
    }
}

/// A completion that can be reported as abandoned without knowing `T`.
trait Abandon {
    fn abandon(&self, why: &str);
}

impl<T: Send> Abandon for Completion<T> {
    fn abandon(&self, why: &str) {
        self.report(Err(GreenletError::Panicked(why.into())));
    }
}

/// The running remote greenlets of this thread, by greenlet id: reported as abandoned
/// when the thread exits before they finish.
struct Running(RefCell<HashMap<u64, Arc<dyn Abandon + Send + Sync>>>);

impl Drop for Running {
    fn drop(&mut self) {
        for (_, c) in self.0.get_mut().drain() {
            c.abandon("greenlet abandoned: the thread of its hub exited before it finished");
        }
    }
}

thread_local! {
    static RUNNING: Running = Running(RefCell::new(HashMap::new()));
}

/// Reports a remote greenlet that never ran (its closure was dropped unrun: the hub's
/// thread exited first, or its stack could not be allocated).
struct NeverRan<T: Send>(Option<Arc<Completion<T>>>);

impl<T: Send> Drop for NeverRan<T> {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            if lock(&c.state).kill_requested {
                c.report(Err(GreenletError::Killed)); // killed before it started
            } else {
                c.abandon(
                    "greenlet abandoned before it ran: the thread of its hub exited, or its \
                     stack could not be allocated",
                );
            }
        }
    }
}

/// Spawns `f` as a greenlet on the hub behind `queue`; the handle works from anywhere.
pub(crate) fn spawn<F, T>(queue: &Arc<RemoteQueue>, stack_size: Option<usize>, f: F) -> RemoteGreenlet<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let completion = Completion::new(queue.clone());
    let never_ran = NeverRan(Some(completion.clone()));
    let c = completion.clone();
    queue.push(Box::new(move || {
        let body = move || run(never_ran, f);
        let mut b = crate::Builder::new();
        if let Some(s) = stack_size {
            b = b.stack_size(s);
        }
        if let Ok(g) = b.try_spawn(body) {
            let task = &g.task;
            let mut st = lock(&c.state);
            st.target = Some((task.slot(), task.id()));
            let kill = st.kill_requested;
            drop(st);
            if kill {
                g.kill(); // never started: it never runs
            }
        } // else: `body` was dropped unrun, and `NeverRan` reported it
    }));
    RemoteGreenlet { completion, polled: None }
}

/// The body of a remote greenlet: runs `f`, reports its outcome exactly as a local
/// greenlet's would be (then lets a panic or kill go on unwinding into the greenlet's
/// own bookkeeping).
fn run<F, T>(mut never_ran: NeverRan<T>, f: F)
where
    F: FnOnce() -> T,
    T: Send + 'static,
{
    let c = never_ran.0.take().expect("runs once");
    let id = hub::with(|h| h.current().id());
    RUNNING.with(|r| r.0.borrow_mut().insert(id, c.clone() as Arc<dyn Abandon + Send + Sync>));
    struct Finished(u64);
    impl Drop for Finished {
        fn drop(&mut self) {
            let _ = RUNNING.try_with(|r| r.0.borrow_mut().remove(&self.0));
        }
    }
    let finished = Finished(id);
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => {
            // As for a local greenlet: a kill that could not be thrown decides.
            if hub::with(|h| h.current().cancel().kill()) {
                drop(v);
                c.report(Err(GreenletError::Killed));
            } else {
                c.report(Ok(v));
            }
            drop(finished);
        }
        Err(payload) => {
            c.report(Err(crate::builder::classify(&*payload)));
            drop(finished);
            panic::resume_unwind(payload);
        }
    }
}

/// The `Send + Sync` handle of a greenlet running on some hub, from
/// [`Runtime::spawn`](crate::Runtime::spawn), [`Runtime::spawn_on`](crate::Runtime::spawn_on) or
/// [`HubHandle::spawn`](crate::HubHandle::spawn). Its methods work from a greenlet on
/// any hub (which parks, letting its hub run) and from a plain thread (which blocks).
/// Dropping it detaches the greenlet, which runs on.
///
/// ```
/// let rt = greenhub::Runtime::new(2).unwrap();
/// let g = rt.spawn_on(1, || greenhub::Runtime::current_hub());
/// assert_eq!(g.get(), Ok(Some(1)));
/// ```
pub struct RemoteGreenlet<T> {
    completion: Arc<Completion<T>>,
    /// The registration of the last `poll` that returned `Pending` (key, waiter).
    polled: Option<(u64, crate::xthread::loom::Arc<crate::xthread::waiter::Waiter>)>,
}

impl<T> fmt::Debug for RemoteGreenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.completion.state);
        f.debug_struct("RemoteGreenlet").field("ready", &st.done).finish()
    }
}

impl<T: Send> RemoteGreenlet<T> {
    /// Waits until the greenlet has finished.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// let g = rt.spawn(|| greenhub::sleep(std::time::Duration::from_millis(1)));
    /// g.join();
    /// assert!(g.ready());
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Like [`RemoteGreenlet::join`], for at most `timeout`; whether it finished.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// let g = rt.spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    /// assert!(!g.join_timeout(std::time::Duration::from_millis(5)));
    /// g.kill();
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Some(crate::timeout::deadline_after(timeout)))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        loop {
            let st = lock(&self.completion.state);
            if st.done {
                return true;
            }
            if crate::xthread::wait::expired(deadline) {
                return false;
            }
            wait_in_list(&self.completion.state, st, |s| &mut s.joiners, Primitive::RemoteJoin, deadline, || {});
        }
    }

    /// Whether the greenlet has finished.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// let g = rt.spawn(|| 1);
    /// g.join();
    /// assert!(g.ready());
    /// ```
    pub fn ready(&self) -> bool {
        lock(&self.completion.state).done
    }

    /// Waits for the greenlet and returns its value, or how it failed.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// assert_eq!(rt.spawn(|| 6 * 7).get(), Ok(42));
    /// let e = rt.spawn(|| -> u8 { panic!("boom") }).get().unwrap_err();
    /// assert_eq!(e, greenhub::GreenletError::Panicked("boom".into()));
    /// ```
    pub fn get(self) -> Result<T, GreenletError> {
        self.join();
        lock(&self.completion.state).outcome.take().expect("a finished greenlet's outcome is taken once")
    }

    /// Kills the greenlet (it unwinds from where it waits, on its own hub). Never
    /// waits: join to know it is gone. A greenlet that has not started never runs.
    ///
    /// ```
    /// let rt = greenhub::Runtime::new(1).unwrap();
    /// let g = rt.spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    /// g.kill();
    /// assert_eq!(g.get(), Err(greenhub::GreenletError::Killed));
    /// ```
    pub fn kill(&self) {
        let c = &self.completion;
        let mut st = lock(&c.state);
        if st.done {
            return;
        }
        // Seen by the spawn job if the greenlet is not spawned on its hub yet, and by
        // `NeverRan` if it is dropped unstarted.
        st.kill_requested = true;
        let Some((slot, id)) = st.target else { return };
        drop(st);
        let kill = move || hub::with(|h| h.kill_slot(slot, id));
        if crate::sched::remote::is_local(&c.hub) {
            kill();
        } else {
            c.hub.push(Box::new(kill));
        }
    }
}

/// For the loom model: a handle and the report its greenlet would make.
#[cfg(all(test, loom))]
pub(crate) fn model_pair<T: Send + 'static>() -> (RemoteGreenlet<T>, impl FnOnce(T) + Send) {
    let poll = mio::Poll::new().expect("epoll");
    let waker = mio::Waker::new(poll.registry(), mio::Token(0)).expect("eventfd");
    let completion = Completion::new(Arc::new(RemoteQueue::new(waker)));
    let c = completion.clone();
    (RemoteGreenlet { completion, polled: None }, move |v| c.report(Ok(v)))
}

impl<T> RemoteGreenlet<T> {
    /// Withdraws the registration of an earlier `Pending` poll.
    fn unpoll(&mut self) {
        if let Some((key, waiter)) = self.polled.take() {
            if waiter.withdraw().is_none() {
                lock(&self.completion.state).joiners.remove(key);
            }
        }
    }
}

impl<T> Drop for RemoteGreenlet<T> {
    fn drop(&mut self) {
        self.unpoll();
    }
}

/// Awaiting a remote greenlet from async code (a tokio task, an axum handler): ready
/// with its outcome when it has finished; the task's waker is woken from the greenlet's
/// hub. Like [`RemoteGreenlet::get`], it takes the outcome: poll it to completion once.
///
/// ```
/// let rt = greenhub::Runtime::new(1).unwrap();
/// let g = rt.spawn(|| { greenhub::sleep(std::time::Duration::from_millis(1)); 7 });
/// // Any executor; here greenhub's own.
/// assert_eq!(greenhub::block_on(async move { g.await }), Ok(7));
/// ```
impl<T: Send> std::future::Future for RemoteGreenlet<T> {
    type Output = Result<T, GreenletError>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        // Each poll registers afresh (the task's waker may have changed).
        this.unpoll();
        let mut st = lock(&this.completion.state);
        if let Some(outcome) = Self::take_if_done(&mut st) {
            return std::task::Poll::Ready(outcome);
        }
        let waiter = crate::xthread::waiter::Waiter::for_task(cx.waker().clone());
        let key = st.joiners.push(waiter.clone(), 0, ());
        drop(st);
        this.polled = Some((key, waiter));
        std::task::Poll::Pending
    }
}

impl<T: Send> RemoteGreenlet<T> {
    fn take_if_done(st: &mut State<T>) -> Option<Result<T, GreenletError>> {
        if st.done {
            Some(st.outcome.take().expect("a remote greenlet's outcome is taken once (polled after Ready?)"))
        } else {
            None
        }
    }
}
