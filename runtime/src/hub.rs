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
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coro::{self, Coro, Outcome};
use crate::monitor::Heartbeat;
use crate::park::{wait_in, Token, WaitQueue};
use crate::reactor::Reactor;
use crate::remote::{RemoteWaker, SendToken};
use crate::stack::PooledStack;
use crate::task::{Cancel, Signal, State, Task, Wait, Wake};
use crate::timer::{TimerKey, Timers};
use crate::unwind;

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
    /// The hub used once `HUB` has been destroyed (greenhub called from another
    /// thread-local's destructor, or after `main` returned): created on demand and
    /// leaked, so it never goes away while this thread can still run code.
    static LATE_HUB: Cell<*const Hub> = const { Cell::new(ptr::null()) };
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
///
/// Works at every point of a thread's life: during thread-local teardown, after the
/// hub's own destructor ran, `f` gets the thread's late hub instead (see `LATE_HUB`).
#[inline]
pub(crate) fn with<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut f = Some(f);
    match HUB.try_with(|h| f.take().map(|f| f(h))) {
        Ok(Some(r)) => r,
        _ => late(f.take().expect("not called when the hub is gone")),
    }
}

#[cold]
fn late<R>(f: impl FnOnce(&Hub) -> R) -> R {
    let mut hub = LATE_HUB.with(Cell::get);
    if hub.is_null() {
        hub = Box::into_raw(Box::new(Hub::new()));
        LATE_HUB.with(|l| l.set(hub));
    }
    // SAFETY: the pointer comes from `Box::into_raw` above and is never freed (the late
    // hub is leaked), so it stays valid for the rest of the process; it is only stored
    // in this thread's `LATE_HUB`, and `Hub` is `!Sync`, so only this thread uses it.
    f(unsafe { &*hub })
}

/// Like [`with`], but `None` while the thread's hub is being torn down (for `Drop`s
/// that only clean up what a hub holds: nothing to do if it is gone).
#[inline]
pub(crate) fn try_with<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    HUB.try_with(f).ok()
}

/// Like [`try_with`], but never creates a hub: `None` if this thread has none (for the
/// panic hook and the stack overflow handler, which must not allocate one).
#[inline]
pub(crate) fn if_exists<R>(f: impl FnOnce(&Hub) -> R) -> Option<R> {
    if !has_hub() {
        return None;
    }
    let late = LATE_HUB.with(Cell::get);
    if !late.is_null() {
        // SAFETY: as in `late`: a leaked hub of this thread.
        return Some(f(unsafe { &*late }));
    }
    try_with(f)
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
    /// Greenlets whose `unwinding` count is non-zero (see `unwind.rs`).
    pub(crate) unwinders: Cell<u32>,
    /// The greenlet running the panic hook, if any. While it runs the hook no other
    /// greenlet runs: std aborts the process if any panic starts on this thread then.
    panic_hook: Cell<Option<u64>>,
    /// Greenlets that became ready while another one ran the panic hook, in order.
    deferred: RefCell<VecDeque<Rc<Task>>>,
    /// When the loop last fired timers and polled.
    last_check: Cell<Instant>,
    /// Times greenlet zero was popped off the run queue (see `run_loop`).
    root_turns: Cell<u32>,
}

impl Hub {
    fn new() -> Hub {
        HAS_HUB.with(|h| h.set(true));
        crate::sys::overflow::install();
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
            unwinders: Cell::new(0),
            panic_hook: Cell::new(None),
            deferred: RefCell::new(VecDeque::new()),
            last_check: Cell::new(Instant::now()),
            root_turns: Cell::new(0),
        }
    }

    /// The running task (greenlet zero when no greenlet runs).
    #[inline]
    pub(crate) fn current(&self) -> Rc<Task> {
        self.current.borrow().clone()
    }

    /// The running task, unless the hub is in the middle of switching (for the panic
    /// hook, which may run anywhere).
    pub(crate) fn try_current(&self) -> Option<Rc<Task>> {
        self.current.try_borrow().ok().map(|c| c.clone())
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

    /// Whether the hub's loop is running (on greenlet zero's stack).
    pub(crate) fn in_loop(&self) -> bool {
        self.in_loop.get()
    }

    /// The id the next `with_timeout` scope will get.
    pub(crate) fn peek_scope_id(&self) -> u64 {
        self.next_scope.get()
    }

    // ----- the panic hook -------------------------------------------------------------

    /// The running task starts running the panic hook; `false` if one already does.
    pub(crate) fn enter_panic_hook(&self, task: &Task) -> bool {
        if self.panic_hook.get().is_some() {
            return false;
        }
        self.panic_hook.set(Some(task.id));
        true
    }

    /// The panic hook returned: the greenlets deferred meanwhile run next, in order.
    pub(crate) fn leave_panic_hook(&self) {
        self.panic_hook.set(None);
        let mut deferred = self.deferred.borrow_mut();
        let mut queue = self.run_queue.borrow_mut();
        while let Some(t) = deferred.pop_back() {
            queue.push_front(t);
        }
    }

    /// Whether `task` runs the panic hook now.
    pub(crate) fn in_panic_hook(&self, task: &Task) -> bool {
        self.panic_hook.get() == Some(task.id)
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
        crate::log::spawned(id, name.as_deref());
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
            self.heartbeat.greenlets(live.count());
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
    ///
    /// A cancellation already pending is thrown before parking; inside `ffi::no_unwind`
    /// (where nothing is thrown) a pending one makes the park return at once, so every
    /// wait of a cancelled greenlet inside a hook fails fast.
    ///
    /// A park that does not happen (thrown or returning at once) advances the epoch as a
    /// wake-up would: the tokens registered for it (a remote waker already fired, say)
    /// must never end a later wait of the same greenlet.
    pub(crate) fn park(&self, wait: Wait) {
        let cur = self.current();
        if !cur.cancel.get().is_none() {
            if let Some(signal) = unwind::deliverable(self, &cur) {
                cur.epoch.set(cur.epoch.get().wrapping_add(1));
                unwind::throw(self, &cur, signal);
            }
            if cur.nothrow.get() > 0 {
                cur.epoch.set(cur.epoch.get().wrapping_add(1));
                return;
            }
        }
        cur.state.set(State::Parked);
        cur.wait.set(wait);
        self.switch_out(&cur);
        cur.wait.set(Wait::Nothing);
        self.throw_pending(&cur);
    }

    /// Moves the current task behind every ready greenlet and runs them.
    pub(crate) fn yield_now(&self) {
        let cur = self.current();
        // A cancel pending already is thrown after the switch (the same thing, one
        // switch later); a yield inside `ffi::no_unwind` just yields.
        self.make_ready(&cur);
        self.switch_out(&cur);
        self.throw_pending(&cur);
    }

    /// Throws a deliverable cancellation into the running `task`. Returns `false` when
    /// one is pending that cannot be thrown because the task runs inside
    /// `ffi::no_unwind` (its caller must not wait then).
    #[inline]
    fn throw_pending(&self, task: &Task) -> bool {
        if task.cancel.get().is_none() {
            return true;
        }
        if let Some(signal) = unwind::deliverable(self, task) {
            unwind::throw(self, task, signal);
        }
        task.nothrow.get() == 0
    }

    /// Leaves the current task: suspends a greenlet, or runs the loop on greenlet zero.
    #[inline]
    fn switch_out(&self, cur: &Rc<Task>) {
        if cur.is_root() {
            self.run_loop();
        } else {
            // SAFETY: `cur` is the running greenlet (it is `current`) and its body stored
            // its own yielder before running any user code. This may execute on the
            // stack of a `raw::Generator` or raw greenlet that `cur` resumed (nested);
            // `coro::suspend` says why that is sound too.
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
                // Greenlet zero's wait is over. A `yield_now`/`sleep(0)` loop on the
                // thread's own stack comes back here at every turn: it gets the same
                // switch-interval check as a pass over the run queue, so its timers and
                // I/O are never starved (gevent's test__sleep0).
                let turns = self.root_turns.get().wrapping_add(1);
                self.root_turns.set(turns);
                if turns % CHECK_EVERY == 0 && self.last_check.get().elapsed() >= SWITCH_INTERVAL {
                    let now = Instant::now();
                    self.last_check.set(now);
                    self.fire_timers(now);
                    self.drain_remote();
                    self.poll(Some(Duration::ZERO));
                }
                return;
            }
            let now = Instant::now();
            self.last_check.set(now);
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
            if self.panic_hook.get().is_some_and(|id| id != task.id) {
                self.deferred.borrow_mut().push_back(task);
                continue;
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
        crate::log::finished(
            task.id,
            task.name.as_deref(),
            match &outcome {
                Ok(_) => "ok",
                Err(crate::GreenletError::Killed) => "killed",
                Err(_) => "panicked",
            },
        );
        if task.name.is_some() {
            self.heartbeat.finished(task.id);
        }
        task.state.set(State::Done);
        task.wait.set(Wait::Nothing);
        task.cancel.set(Cancel::NONE);
        unwind::reset(self, task);
        if task.detached.get() && !task.linked() {
            drop(outcome); // its handle is gone: nobody can read it
        } else {
            *task.outcome.borrow_mut() = Some(outcome);
        }
        let removed = {
            let mut live = self.live.borrow_mut();
            let slot = task.slot.get();
            live.free.push(slot);
            let removed = live.tasks[slot as usize].take();
            self.heartbeat.greenlets(live.count());
            removed
        };
        task.joiners.wake_all(self);
        crate::link::fire(task);
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
                Some(TimerAction::Timeout { task, id }) => self.cancel_task(&task, Signal::Timeout(id)),
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
        if let Some(id) = self.panic_hook.get() {
            // A panic now would abort anyway ("panicked while processing panic"); say why.
            let _ = std::io::Write::write_fmt(
                &mut crate::panic::Stderr,
                format_args!(
                    "greenhub: greenlet #{id} waits inside the panic hook for something only \
                 another greenlet could do; while a panic hook runs no other greenlet of \
                 its hub may run (std aborts any panic that starts meanwhile), so it would \
                 wait forever: aborting\n{}\n",
                    self.dump()
                ),
            );
            std::process::abort();
        }
        // The loop is left by this panic: a panic hook that waits may run it afresh.
        self.in_loop.set(false);
        let root = &self.root;
        let live = self.live.borrow();
        let alive = live.count();
        let parked = live.tasks.iter().flatten().filter(|t| t.state.get() == State::Parked).count();
        drop(live);
        let waits = root.wait.get().describe(Instant::now());
        let message = format!(
            "greenhub LoopExit: this operation would block forever: the thread waits on {waits}, \
             and nothing can wake it ({alive} greenlets alive, {parked} parked; no timers, \
             no I/O waits, no threadpool jobs)\n{}",
            self.dump()
        );
        crate::log::loop_exit(&message);
        panic!("{message}");
    }

    // ----- cancellation ---------------------------------------------------------------

    /// Records a cancellation for `task` and wakes it if it is parked and something can
    /// be done with it there: thrown, or (inside `ffi::no_unwind`) reported by the wait.
    /// A greenlet that unwinds keeps waiting in its `Drop`; the kill then only decides
    /// its outcome.
    pub(crate) fn cancel_task(&self, task: &Rc<Task>, signal: Signal) {
        if task.state.get() == State::Done {
            return;
        }
        task.cancel.set(task.cancel.get().with(signal));
        let wake = task.nothrow.get() > 0 || unwind::deliverable(self, task).is_some();
        if task.state.get() == State::Parked && wake {
            task.woken.set(Wake::Other);
            self.make_ready(task);
        }
    }

    /// Kills a greenlet: an unstarted one never runs; a waiting one unwinds from its
    /// wait when next resumed; the running one (self-kill) unwinds right away.
    pub(crate) fn kill(&self, task: &Rc<Task>) {
        if task.state.get() != State::Done {
            crate::log::killed(task.id, task.name.as_deref());
        }
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
                // Self-kill: unwinds right away where that is allowed, else stays pending.
                task.cancel.set(task.cancel.get().with(Signal::Kill));
                self.throw_pending(task);
            }
            State::Ready | State::Parked => self.cancel_task(task, Signal::Kill),
        }
    }

    /// Kills the live greenlet in `slot` if it is still greenlet `id` (for kills sent
    /// from other threads).
    pub(crate) fn kill_slot(&self, slot: u32, id: u64) {
        let task = self.live.borrow().tasks.get(slot as usize).and_then(|t| t.clone()).filter(|t| t.id == id);
        if let Some(task) = task {
            self.kill(&task);
        }
    }

    /// Kills every live greenlet but the caller (runtime shutdown).
    pub(crate) fn kill_all(&self) {
        let me = self.current().id;
        let tasks: Vec<Rc<Task>> = self.live.borrow().tasks.iter().flatten().filter(|t| t.id != me).cloned().collect();
        for t in &tasks {
            self.kill(t);
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

    /// Withdraws a [`RemoteWaker`] that will never fire (its job never ran).
    pub(crate) fn disarm_remote(&self, waker: RemoteWaker) {
        waker.disarm();
        self.remote_pending.set(self.remote_pending.get() - 1);
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
    ///
    /// Their stacks are leaked, never reused (see `Coro::abandon`); a handle that
    /// outlives this (in another thread-local) finds its greenlet finished with an
    /// "abandoned" error. If the thread exits from inside a greenlet
    /// (`std::process::exit` in a greenlet runs this destructor on that greenlet's
    /// stack), the running greenlet is left alone entirely: its task is leaked, so
    /// nothing frees the stack the thread is still running on.
    fn drop(&mut self) {
        // Nothing runs other threads' jobs any more: they are dropped, now and on push.
        if let Some(r) = self.reactor.get() {
            r.remote().close();
        }
        let tasks: Vec<Rc<Task>> = self.live.get_mut().tasks.drain(..).flatten().collect();
        for t in &tasks {
            if t.coro.is_running() {
                std::mem::forget(t.clone());
                continue;
            }
            t.state.set(State::Done);
            if !t.detached.get() {
                *t.outcome.borrow_mut() = Some(Err(crate::GreenletError::Panicked(
                    "greenlet abandoned: the thread of its hub exited before it finished".into(),
                )));
            }
            if let Some(coro) = t.coro.take() {
                if t.started.get() {
                    coro.abandon();
                } else {
                    // Never ran: nothing lives on its stack; its closure's captures drop
                    // here (greenhub calls from those Drops use the late hub).
                    drop(coro);
                }
            }
        }
        self.run_queue.get_mut().clear();
        self.deferred.get_mut().clear();
        drop(self.timers.get_mut().drain());
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
