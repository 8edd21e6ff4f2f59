//! The per-thread hub: run queue, timers, I/O reactor, remote queue, and the loop.
//!
//! The hub is created lazily on a thread's first use and never leaves it. The thread's
//! own stack is *greenlet zero* (the root task): when it has to wait, it runs the hub
//! loop right there, resuming greenlets one after another, until something makes it
//! ready again and the loop pops it off the run queue like any other greenlet. A
//! greenlet that waits suspends its coroutine back into that loop.
//!
//! One loop iteration: run the ready greenlets in FIFO order, including those made
//! ready meanwhile (checking the clock every 50 switches and stopping after 5 ms, as
//! gevent does, so timers and I/O are never starved) → fire expired timers → run jobs
//! pushed by other threads → poll for I/O (zero timeout if anything is ready, else until
//! the next timer) → wake the greenlets waiting on ready fds.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::panic;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coro::{self, Coro, Outcome};
use crate::error::{KillSignal, TimeoutSignal};
use crate::monitor::Heartbeat;
use crate::park::{wait_in, Token, WaitQueue};
use crate::reactor::Reactor;
use crate::remote::{RemoteWaker, SendToken};
use crate::stack::PooledStack;
use crate::task::{Cancel, State, Task, Wait, Wake};
use crate::timer::{TimerKey, Timers};

/// Switches between clock checks in one pass over the run queue (gevent's value).
const CHECK_EVERY: u32 = 50;
/// Finished tasks a hub keeps for reuse (like the stack pool, a thread keeps what its
/// largest burst needed; a task is about 300 bytes).
const SPARE_TASKS: usize = 128 * 1024;
/// Longest a pass over the run queue goes on before timers and I/O get a turn.
const SWITCH_INTERVAL: Duration = Duration::from_millis(5);

thread_local! {
    static HUB: Hub = Hub::new();
    /// Whether a greenlet (not greenlet zero) runs now. Const-initialised and without a
    /// destructor, so it can be read anywhere: before `main`, in libc hooks, during
    /// thread-local teardown.
    static IN_GREENLET: Cell<bool> = const { Cell::new(false) };
    /// Whether this thread has created its hub.
    static HAS_HUB: Cell<bool> = const { Cell::new(false) };
}

/// Whether the caller runs inside a greenlet (`false` on a thread's own stack).
#[inline]
pub(crate) fn in_greenlet() -> bool {
    IN_GREENLET.with(Cell::get)
}

/// Whether this thread has a hub (without creating one).
#[inline]
pub(crate) fn has_hub() -> bool {
    HAS_HUB.with(Cell::get)
}

/// Runs `f` with this thread's hub (creating it on first use).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    HUB.with(f)
}

/// Like [`with`], but `None` while the thread is being torn down.
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    HUB.try_with(f).ok()
}

/// What an expiring timer does.
pub(crate) enum TimerAction {
    /// Unpark one wait (sleep, deadline of a wait, delayed start).
    Wake(Token),
    /// Throw the expiry of `with_timeout` scope `id` into `task`.
    Timeout { task: Rc<Task>, id: u64 },
}

/// Live greenlets, indexed by their slot.
struct Live {
    tasks: Vec<Option<Rc<Task>>>,
    free: Vec<u32>,
}

impl Live {
    /// Occupied slots.
    fn count(&self) -> usize {
        self.tasks.len() - self.free.len()
    }
}

/// This thread's scheduler.
pub(crate) struct Hub {
    root: Rc<Task>,
    current: RefCell<Rc<Task>>,
    run_queue: RefCell<VecDeque<Rc<Task>>>,
    pub(crate) timers: RefCell<Timers<TimerAction>>,
    live: RefCell<Live>,
    next_id: Cell<u64>,
    next_scope: Cell<u64>,
    reactor: OnceCell<Reactor>,
    /// Jobs handed to other threads whose completion has not come back yet.
    pub(crate) remote_pending: Cell<usize>,
    /// Greenlets (or greenlet zero) parked on an fd.
    pub(crate) io_waiters: Cell<usize>,
    /// Waiters of `run()`.
    idle: WaitQueue,
    in_loop: Cell<bool>,
    /// Finished tasks kept for reuse by later spawns (saves an allocation each).
    spare: RefCell<Vec<Rc<Task>>>,
    /// Published to the blocking detector.
    pub(crate) heartbeat: Arc<Heartbeat>,
}

impl Hub {
    fn new() -> Hub {
        HAS_HUB.with(|h| h.set(true));
        crate::overflow::install();
        let root = Rc::new(Task::new(0, None, 0));
        Hub {
            current: RefCell::new(root.clone()),
            root,
            run_queue: RefCell::new(VecDeque::new()),
            timers: RefCell::new(Timers::new()),
            live: RefCell::new(Live { tasks: Vec::new(), free: Vec::new() }),
            next_id: Cell::new(1),
            next_scope: Cell::new(1),
            reactor: OnceCell::new(),
            remote_pending: Cell::new(0),
            io_waiters: Cell::new(0),
            idle: WaitQueue::new(),
            in_loop: Cell::new(false),
            spare: RefCell::new(Vec::new()),
            heartbeat: Heartbeat::register(),
        }
    }

    /// The running task (greenlet zero when no greenlet runs).
    #[inline]
    pub(crate) fn current(&self) -> Rc<Task> {
        self.current.borrow().clone()
    }

    /// The running greenlet's id and name (`None` on greenlet zero).
    pub(crate) fn current_identity(&self) -> Option<(u64, String)> {
        let cur = self.current.try_borrow().ok()?;
        if cur.is_root() {
            None
        } else {
            Some((cur.id, cur.name()))
        }
    }

    /// Calls `f` with the running task's id and given name, without allocating (for the
    /// stack overflow report, which runs in a signal handler).
    pub(crate) fn current_for_report(&self, f: impl FnOnce(u64, Option<&str>)) -> Option<()> {
        let cur = self.current.try_borrow().ok()?;
        f(cur.id, cur.name.as_deref());
        Some(())
    }

    /// A token for the current task's next wait.
    #[inline]
    pub(crate) fn token(&self) -> Token {
        let task = self.current();
        let epoch = task.epoch.get();
        Token { task, epoch }
    }

    /// The reactor, created on first use.
    pub(crate) fn reactor(&self) -> io::Result<&Reactor> {
        if let Some(r) = self.reactor.get() {
            return Ok(r);
        }
        let r = Reactor::new()?;
        Ok(self.reactor.get_or_init(|| r))
    }

    /// The reactor if it exists.
    pub(crate) fn reactor_if_any(&self) -> Option<&Reactor> {
        self.reactor.get()
    }

    /// A fresh id for a `with_timeout` scope.
    pub(crate) fn next_scope_id(&self) -> u64 {
        let id = self.next_scope.get();
        self.next_scope.set(id + 1);
        id
    }

    /// Number of live greenlets (greenlet zero not counted).
    pub(crate) fn live_count(&self) -> usize {
        self.live.borrow().count()
    }

    // ----- spawning -------------------------------------------------------------------

    /// Creates a greenlet running `body`, ready now or parked until `start_at`.
    pub(crate) fn spawn_task(
        &self,
        name: Option<Box<str>>,
        stack_size: usize,
        start_at: Option<Instant>,
        body: impl FnOnce() -> Outcome + 'static,
    ) -> io::Result<Rc<Task>> {
        let stack = PooledStack::take(stack_size)?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if let Some(n) = &name {
            self.heartbeat.named(id, n);
        }
        let task = self.reuse_task(id, name, stack.size());
        let coro = Coro::new(stack, move |y| {
            with(|h| h.current.borrow().yielder.set(y));
            body()
        });
        task.coro.set(coro);
        {
            let mut live = self.live.borrow_mut();
            let slot = match live.free.pop() {
                Some(s) => {
                    live.tasks[s as usize] = Some(task.clone());
                    s
                }
                None => {
                    live.tasks.push(Some(task.clone()));
                    (live.tasks.len() - 1) as u32
                }
            };
            task.slot.set(slot);
        }
        match start_at {
            None => self.make_ready(&task),
            Some(at) => {
                task.state.set(State::Parked);
                task.wait.set(Wait::Start(at));
                let token = Token { task: task.clone(), epoch: task.epoch.get() };
                let key = self.timers.borrow_mut().insert(at, TimerAction::Wake(token));
                task.start_timer.set(Some(key));
            }
        }
        Ok(task)
    }

    /// A task for a new greenlet: a finished one nothing refers to any more (reset in
    /// place), or a new allocation.
    fn reuse_task(&self, id: u64, name: Option<Box<str>>, stack_size: usize) -> Rc<Task> {
        let spare = self.spare.borrow_mut().pop();
        if let Some(mut task) = spare {
            // Unique: no handle, token, timer or queue entry can observe the reset.
            if let Some(t) = Rc::get_mut(&mut task) {
                *t = Task::new(id, name, stack_size);
                return task;
            }
        }
        Rc::new(Task::new(id, name, stack_size))
    }

    // ----- ready / park ---------------------------------------------------------------

    /// Puts a task at the back of the run queue.
    #[inline]
    pub(crate) fn make_ready(&self, task: &Rc<Task>) {
        task.state.set(State::Ready);
        task.epoch.set(task.epoch.get().wrapping_add(1));
        self.run_queue.borrow_mut().push_back(task.clone());
    }

    /// Parks the current task until a token of its current epoch unparks it (or a
    /// cancellation is thrown into it). Register the tokens before calling this.
    pub(crate) fn park(&self, wait: Wait) {
        let cur = self.current();
        cur.state.set(State::Parked);
        cur.wait.set(wait);
        self.switch_out(&cur);
        cur.wait.set(Wait::Nothing);
        throw_pending(&cur);
    }

    /// Moves the current task behind every ready greenlet and runs them.
    pub(crate) fn yield_now(&self) {
        let cur = self.current();
        self.make_ready(&cur);
        self.switch_out(&cur);
        throw_pending(&cur);
    }

    /// Leaves the current task: suspends a greenlet, or runs the loop on greenlet zero.
    #[inline]
    fn switch_out(&self, cur: &Rc<Task>) {
        if cur.is_root() {
            self.run_loop();
        } else {
            // SAFETY: `cur` is the running greenlet (it is `current`) and its body stored
            // its own yielder before running any user code.
            unsafe { coro::suspend(cur.yielder.get()) }
        }
    }

    // ----- the loop -------------------------------------------------------------------

    /// Greenlet zero's wait: runs the hub until greenlet zero is popped off the run
    /// queue. Panics with LoopExit if nothing can ever make it ready.
    fn run_loop(&self) {
        if self.in_loop.replace(true) {
            self.root.state.set(State::Running);
            panic!(
                "greenhub: cannot wait inside the hub's own loop (a Drop or callback run \
                 by the hub tried to block)"
            );
        }
        struct Exit<'a>(&'a Hub);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                self.0.in_loop.set(false);
                self.0.root.state.set(State::Running);
            }
        }
        let _exit = Exit(self);
        loop {
            if self.run_ready() {
                return;
            }
            let now = Instant::now();
            self.fire_timers(now);
            self.drain_remote();
            let timeout = if !self.run_queue.borrow().is_empty() {
                Some(Duration::ZERO)
            } else {
                self.timers.borrow().next_deadline().map(|at| at.saturating_duration_since(now))
            };
            if timeout.is_none() && self.io_waiters.get() == 0 && self.remote_pending.get() == 0 {
                self.loop_exit();
            }
            self.poll(timeout);
        }
    }

    /// Runs ready greenlets; returns `true` when greenlet zero was popped (its wait is
    /// over), `false` when the queue ran dry or the switch interval passed.
    fn run_ready(&self) -> bool {
        let mut switches = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let next = self.run_queue.borrow_mut().pop_front();
            let Some(task) = next else { return false };
            if task.state.get() != State::Ready {
                continue; // killed before it started
            }
            if task.is_root() {
                return true;
            }
            self.resume(task);
            switches += 1;
            if switches % CHECK_EVERY == 0 {
                match since {
                    None => since = Some(Instant::now()),
                    Some(t) if t.elapsed() >= SWITCH_INTERVAL => return false,
                    Some(_) => {}
                }
            }
        }
    }

    /// Runs one greenlet until it suspends or finishes.
    #[inline]
    fn resume(&self, task: Rc<Task>) {
        task.state.set(State::Running);
        task.started.set(true);
        let root = self.current.replace(task.clone());
        self.heartbeat.beat(task.id);
        IN_GREENLET.with(|g| g.set(true));
        let outcome = task.coro.resume();
        IN_GREENLET.with(|g| g.set(false));
        self.heartbeat.beat(0);
        self.current.replace(root);
        if let Some(outcome) = outcome {
            drop(task.coro.take());
            self.finish(&task, outcome);
        }
    }

    /// Records a greenlet's outcome and wakes its joiners.
    fn finish(&self, task: &Rc<Task>, outcome: Outcome) {
        if task.name.is_some() {
            self.heartbeat.finished(task.id);
        }
        task.state.set(State::Done);
        task.wait.set(Wait::Nothing);
        task.cancel.set(Cancel::None);
        if task.detached.get() {
            drop(outcome); // its handle is gone: nobody can read it
        } else {
            *task.outcome.borrow_mut() = Some(outcome);
        }
        let removed = {
            let mut live = self.live.borrow_mut();
            let slot = task.slot.get();
            live.free.push(slot);
            live.tasks[slot as usize].take()
        };
        task.joiners.wake_all(self);
        if self.live_count() <= 1 {
            self.idle.wake_all(self);
        }
        drop(removed);
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_TASKS {
            spare.push(task.clone());
        }
    }

    fn fire_timers(&self, now: Instant) {
        loop {
            let action = self.timers.borrow_mut().pop_expired(now);
            match action {
                None => return,
                Some(TimerAction::Wake(token)) => {
                    token.unpark(self, Wake::Timer);
                }
                Some(TimerAction::Timeout { task, id }) => self.cancel_task(&task, Cancel::Timeout(id)),
            }
        }
    }

    fn drain_remote(&self) {
        if let Some(r) = self.reactor.get() {
            while let Some(job) = r.remote().pop() {
                job();
            }
        }
    }

    fn poll(&self, timeout: Option<Duration>) {
        let blocking = timeout != Some(Duration::ZERO);
        if blocking {
            self.heartbeat.polling(true);
        }
        self.poll_inner(timeout);
        if blocking {
            self.heartbeat.polling(false);
        }
    }

    fn poll_inner(&self, timeout: Option<Duration>) {
        match self.reactor.get() {
            Some(r) => r.poll(self, timeout),
            // No reactor: no fd and no other thread can wake us, only the next timer.
            None => {
                if let Some(t) = timeout {
                    if !t.is_zero() {
                        std::thread::sleep(t);
                    }
                }
            }
        }
    }

    #[cold]
    fn loop_exit(&self) -> ! {
        let root = &self.root;
        let live = self.live.borrow();
        let alive = live.count();
        let parked = live.tasks.iter().flatten().filter(|t| t.state.get() == State::Parked).count();
        drop(live);
        let waits = root.wait.get().describe(Instant::now());
        panic!(
            "greenhub LoopExit: this operation would block forever: the thread waits on {waits}, \
             and nothing can wake it ({alive} greenlets alive, {parked} parked; no timers, \
             no I/O waits, no threadpool jobs)\n{}",
            self.dump()
        );
    }

    // ----- cancellation ---------------------------------------------------------------

    /// Records a cancellation for `task` and wakes it if it is parked.
    pub(crate) fn cancel_task(&self, task: &Rc<Task>, cancel: Cancel) {
        if task.state.get() == State::Done {
            return;
        }
        if cancel.overrides(task.cancel.get()) {
            task.cancel.set(cancel);
        }
        if task.state.get() == State::Parked {
            task.woken.set(Wake::Other);
            self.make_ready(task);
        }
    }

    /// Kills a greenlet: an unstarted one never runs; a waiting one unwinds from its
    /// wait when next resumed; the running one (self-kill) unwinds right away.
    pub(crate) fn kill(&self, task: &Rc<Task>) {
        match task.state.get() {
            State::Done => {}
            _ if !task.started.get() => {
                let coro = task.coro.take();
                if let Some(key) = task.start_timer.take() {
                    let action = self.timers.borrow_mut().cancel(key);
                    drop(action);
                }
                self.finish(task, Err(crate::GreenletError::Killed));
                // Drops the never-run closure (and whatever it captured) here.
                drop(coro);
            }
            State::Running => {
                if !std::thread::panicking() {
                    panic::resume_unwind(Box::new(KillSignal));
                }
            }
            State::Ready | State::Parked => self.cancel_task(task, Cancel::Kill),
        }
    }

    // ----- run() and remote -----------------------------------------------------------

    /// Waits until no greenlet but the caller is left.
    /// Waits until no greenlet but the caller is left, or `deadline`; returns whether
    /// none is left.
    pub(crate) fn run_all(&self, deadline: Option<Instant>) -> bool {
        let me_counts = usize::from(!self.current.borrow().is_root());
        while self.live_count() > me_counts {
            if !wait_in(self, &self.idle, Wait::Run, deadline, || {}) && deadline.is_some() {
                return self.live_count() <= me_counts;
            }
        }
        true
    }

    /// A waker for the current wait that another thread can fire.
    pub(crate) fn remote_waker(&self) -> io::Result<RemoteWaker> {
        let reactor = self.reactor()?;
        let task = self.current();
        let target = SendToken { slot: task.slot.get(), id: task.id, epoch: task.epoch.get() };
        self.remote_pending.set(self.remote_pending.get() + 1);
        Ok(RemoteWaker::new(reactor.remote().clone(), target))
    }

    /// Runs on the hub thread when a [`RemoteWaker`] fires.
    pub(crate) fn remote_wake(&self, target: SendToken) {
        self.remote_pending.set(self.remote_pending.get() - 1);
        let task = if target.id == 0 {
            Some(self.root.clone())
        } else {
            let live = self.live.borrow();
            live.tasks.get(target.slot as usize).and_then(|t| t.clone()).filter(|t| t.id == target.id)
        };
        if let Some(task) = task {
            Token { task, epoch: target.epoch }.unpark(self, Wake::Other);
        }
    }

    // ----- diagnostics ----------------------------------------------------------------

    /// Describes every live greenlet.
    pub(crate) fn dump(&self) -> String {
        let now = Instant::now();
        let live = self.live.borrow();
        let mut tasks: Vec<Rc<Task>> = live.tasks.iter().flatten().cloned().collect();
        drop(live);
        tasks.sort_by_key(|t| t.id);
        let current = self.current.borrow().id;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "greenhub hub of thread '{}': {} greenlets, {} timers, {} I/O waits, {} threadpool jobs",
            std::thread::current().name().unwrap_or("<unnamed>"),
            tasks.len(),
            self.timers.borrow().len(),
            self.io_waiters.get(),
            self.remote_pending.get()
        );
        for t in std::iter::once(&self.root).chain(tasks.iter()) {
            let state = if t.id == current && !(t.is_root() && t.state.get() == State::Parked) {
                "running".to_string()
            } else {
                match t.state.get() {
                    State::Ready => "ready".to_string(),
                    State::Running => "running".to_string(),
                    State::Parked => format!("parked on {}", t.wait.get().describe(now)),
                    State::Done => "done".to_string(),
                }
            };
            let what = if t.is_root() {
                " (greenlet zero)".to_string()
            } else {
                format!(" [{} KiB stack]", t.stack_size / 1024)
            };
            let _ = writeln!(out, "  #{} {}: {}{}", t.id, t.name(), state, what);
        }
        out
    }

    /// Hub counters, for tests and diagnostics.
    pub(crate) fn stats(&self) -> crate::HubStats {
        crate::HubStats {
            greenlets: self.live_count(),
            ready: self.run_queue.borrow().len(),
            timers: self.timers.borrow().len(),
            timer_slots: self.timers.borrow().capacity(),
            io_waits: self.io_waiters.get(),
            registered_fds: self.reactor.get().map_or(0, |r| r.registered()),
            threadpool_jobs: self.remote_pending.get(),
        }
    }
}

impl Drop for Hub {
    /// The thread is exiting: unfinished greenlets are abandoned, never resumed.
    fn drop(&mut self) {
        let _ = HAS_HUB.try_with(|h| h.set(false));
        let tasks: Vec<Rc<Task>> = self.live.get_mut().tasks.drain(..).flatten().collect();
        for t in &tasks {
            t.state.set(State::Done);
            if let Some(coro) = t.coro.take() {
                if t.started.get() {
                    coro.abandon();
                } else {
                    drop(coro);
                }
            }
        }
        self.run_queue.get_mut().clear();
        drop(self.timers.get_mut().drain());
    }
}

/// Throws a pending kill or timeout into the task that was just resumed.
#[inline]
fn throw_pending(task: &Task) {
    let cancel = task.cancel.get();
    if cancel != Cancel::None && !std::thread::panicking() {
        task.cancel.set(Cancel::None);
        match cancel {
            Cancel::Kill => panic::resume_unwind(Box::new(KillSignal)),
            Cancel::Timeout(id) => panic::resume_unwind(Box::new(TimeoutSignal(id))),
            Cancel::None => {}
        }
    }
}

/// Disarms a timer when dropped (a wait that ended early, or unwound).
pub(crate) struct TimerGuard(Option<TimerKey>);

impl TimerGuard {
    /// Arms a timer waking `token` at `deadline`, if there is a deadline.
    pub(crate) fn wake_at(hub: &Hub, deadline: Option<Instant>, token: &Token) -> TimerGuard {
        TimerGuard(deadline.map(|d| hub.timers.borrow_mut().insert(d, TimerAction::Wake(token.clone()))))
    }

    /// Arms a timer with any action.
    pub(crate) fn arm(hub: &Hub, deadline: Instant, action: TimerAction) -> TimerGuard {
        TimerGuard(Some(hub.timers.borrow_mut().insert(deadline, action)))
    }
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            try_with(|h| {
                let action = h.timers.borrow_mut().cancel(key);
                drop(action);
            });
        }
    }
}
