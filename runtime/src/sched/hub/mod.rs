//! The per-thread hub: run queue, timers, I/O reactor, remote queue, and the loop.
//!
//! The hub is created lazily on a thread's first use and never leaves it. The thread's
//! own stack is *greenlet zero* (the root task): when it has to wait, it runs the hub
//! loop right there. The loop switches to the first ready greenlet; from then on a
//! greenlet that parks or yields switches *straight to the next ready task* (one stack
//! switch), and only when none is ready, or every 50 switches once 5 ms have passed (as
//! gevent does, so timers and I/O are never starved), does it switch back to the loop
//! on greenlet zero's stack, which fires expired timers, runs jobs pushed by other
//! threads, polls for I/O (zero timeout if anything is ready, else until the next
//! timer), wakes the greenlets waiting on ready fds, and switches on. A finished
//! greenlet always switches to the loop, which gives its stack back. Greenlet zero's
//! wait ends when a switch picks it off the run queue like any other task.
//!
//! Invariants (checked with `debug_assert!` where they change):
//! - `current` is the task executing now (greenlet zero, `root`, outside any greenlet)
//!   and owns one strong count of it: a switch hands it over without touching it (a
//!   yield moves it into the run queue and the next task's entry's count into
//!   `current`). A task that switched away stays alive without it: an unfinished
//!   greenlet is held by the live table, `root` by the hub, a greenlet whose body
//!   returned by `dead`. No `RefCell` borrow of the hub is held across a switch (every
//!   borrow below ends before `context::switch`).
//! - while a greenlet runs, greenlet zero is inside `run_loop` (its context suspended
//!   there): greenlets only run while greenlet zero waits.
//! - the run queue holds each `Ready` task exactly once (see `Task`), plus entries of
//!   tasks finished while queued, which the loop skips;
//! - `live` holds exactly the spawned, unfinished greenlets (`live.rs`);
//! - `io_waiters` counts the waits parked on fds and `remote_pending` the jobs handed to
//!   other threads whose completion has not come back: with neither, no timer and an
//!   empty run queue, nothing can ever wake greenlet zero (LoopExit);
//! - while `panic_hook` names a greenlet, no other one runs (they wait in `deferred`).
//!
//! Files: `current.rs` (the thread-locals), `live.rs` (the live table), `run.rs` (the
//! loop and `finish`), `cancel.rs` (kill and timeouts); remote wakers are in
//! `sched/remote.rs`, timer guards in `sched/timer/guard.rs`, `dump`/`stats` in
//! `diag/dump.rs`.

mod cancel;
mod current;
mod live;
mod run;

use std::cell::{Cell, OnceCell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use current::{has_hub, if_exists, in_greenlet, try_with, with};
use live::Live;

use crate::diag::monitor::Heartbeat;
use crate::sched::body::Outcome;
use crate::sched::park::{Token, WaitQueue};
use crate::sched::reactor::Reactor;
use crate::sched::ready::ReadyQueue;
use crate::sched::stack::StackClaim;
use crate::sched::task::{State, Task, Wait};
use crate::sched::timer::{TimerAction, TimerKey, Timers};
use crate::sched::unwind;

/// Switches between clock checks in one pass over the run queue (gevent's value).
const CHECK_EVERY: u32 = 50;
/// Finished tasks a hub keeps for reuse (like the stack pool, a thread keeps what its
/// largest burst needed; a task is about 300 bytes).
const SPARE_TASKS: usize = 128 * 1024;
/// Longest a pass over the run queue goes on before timers and I/O get a turn.
const SWITCH_INTERVAL: Duration = Duration::from_millis(5);

/// A number of outstanding things (parked fd waits, jobs on other threads, unwinding
/// greenlets): every `up` is matched by one `down`, so it never goes below zero
/// (checked in debug builds).
#[derive(Debug, Default)]
pub(crate) struct Count(Cell<usize>);

impl Count {
    #[inline]
    pub(crate) fn up(&self) {
        self.0.set(self.0.get() + 1);
    }

    #[inline]
    pub(crate) fn down(&self) {
        let n = self.0.get();
        debug_assert!(n > 0, "a count went below zero: a down without its up");
        self.0.set(n.wrapping_sub(1));
    }

    #[inline]
    pub(crate) fn get(&self) -> usize {
        self.0.get()
    }
}

/// This thread's scheduler.
pub(crate) struct Hub {
    root: Rc<Task>,
    /// The running task: `root` or a running greenlet, from `Rc::into_raw`: it owns one
    /// strong count (see the invariants above).
    current: Cell<*const Task>,
    run_queue: ReadyQueue,
    timers: RefCell<Timers<TimerAction>>,
    live: RefCell<Live>,
    next_id: Cell<u64>,
    next_scope: Cell<u64>,
    reactor: OnceCell<Reactor>,
    /// Jobs handed to other threads whose completion has not come back yet.
    remote_pending: Count,
    /// Greenlets (or greenlet zero) parked on an fd.
    io_waiters: Count,
    /// Waiters of `run()`.
    idle: WaitQueue,
    in_loop: Cell<bool>,
    /// Finished tasks kept for reuse by later spawns (saves an allocation each).
    spare: RefCell<Vec<Rc<Task>>>,
    /// Published to the blocking detector.
    heartbeat: Arc<Heartbeat>,
    /// Greenlets whose `unwinding` count is non-zero (see `unwind.rs`).
    unwinders: Count,
    /// The greenlet running the panic hook, if any. While it runs the hook no other
    /// greenlet runs: std aborts the process if any panic starts on this thread then.
    panic_hook: Cell<Option<u64>>,
    /// Greenlets that became ready while another one ran the panic hook, in order.
    deferred: ReadyQueue,
    /// When the loop last fired timers and polled.
    last_check: Cell<Instant>,
    /// Times greenlet zero was popped off the run queue (see `run_loop`).
    root_turns: Cell<u32>,
    /// Greenlet switches left until the next look at the clock (`switch_out`). Held at
    /// zero, so that every switch takes the slow path, while greenlet zero runs (its
    /// loop runs instead; the count waits in `countdown_aside`) and while a greenlet
    /// runs the panic hook (the slow path defers the other greenlets). The fast path's
    /// decrement of a zero wraps it to `u32::MAX`, which tells the slow path.
    until_check: Cell<u32>,
    /// `until_check` while greenlet zero runs.
    countdown_aside: Cell<u32>,
    /// A greenlet found the switch interval over: the loop fires timers and polls
    /// before it switches on.
    duties_due: Cell<bool>,
    /// The greenlet whose body just returned: it switched to the loop, which finishes it.
    dead: Cell<Option<Rc<Task>>>,
}

impl Hub {
    fn new() -> Hub {
        current::mark_has_hub();
        crate::sys::overflow::install();
        let root = Rc::new(Task::root());
        Hub {
            current: Cell::new(Rc::into_raw(root.clone())),
            root,
            run_queue: ReadyQueue::new(),
            timers: RefCell::new(Timers::new()),
            live: RefCell::new(Live::default()),
            next_id: Cell::new(1),
            next_scope: Cell::new(1),
            reactor: OnceCell::new(),
            remote_pending: Count::default(),
            io_waiters: Count::default(),
            idle: WaitQueue::new(),
            in_loop: Cell::new(false),
            spare: RefCell::new(Vec::new()),
            heartbeat: Heartbeat::register(),
            unwinders: Count::default(),
            panic_hook: Cell::new(None),
            deferred: ReadyQueue::new(),
            last_check: Cell::new(Instant::now()),
            root_turns: Cell::new(0),
            until_check: Cell::new(0), // greenlet zero runs
            countdown_aside: Cell::new(CHECK_EVERY - 1),
            duties_due: Cell::new(false),
            dead: Cell::new(None),
        }
    }

    /// The running task (greenlet zero when no greenlet runs).
    #[inline]
    pub(crate) fn current(&self) -> Rc<Task> {
        self.with_current(Rc::clone)
    }

    /// Calls `f` with the running task, without touching its reference count.
    ///
    /// `f` may switch away and back (park, yield): the task it was given is the one it
    /// runs on, which stays alive while any of its frames do (it is `root`, held by the
    /// hub, or a live greenlet, held by the live table until it finishes, which it cannot
    /// do while `f` is on its stack).
    #[inline(always)]
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&Rc<Task>) -> R) -> R {
        // SAFETY: `current` always holds `Rc::into_raw` of the running task, owning one
        // count (invariant), so it is alive now. `ManuallyDrop` borrows that count
        // without releasing it, and the task outlives `f` for the reason given above
        // (`current`'s own count moves on at the next switch, the task stays held).
        let cur = std::mem::ManuallyDrop::new(unsafe { Rc::from_raw(self.current.get()) });
        f(&cur)
    }

    /// The running task (for the panic hook, which may run anywhere).
    pub(crate) fn try_current(&self) -> Option<Rc<Task>> {
        Some(self.current())
    }

    /// The running greenlet's id and name (`None` on greenlet zero).
    pub(crate) fn current_identity(&self) -> Option<(u64, String)> {
        self.with_current(|cur| (!cur.is_root()).then(|| (cur.id(), cur.name())))
    }

    /// Calls `f` with the running task's id and given name, without allocating (for the
    /// stack overflow report, which runs in a signal handler).
    pub(crate) fn current_for_report(&self, f: impl FnOnce(u64, Option<&str>)) -> Option<()> {
        self.with_current(|cur| f(cur.id(), cur.given_name()));
        Some(())
    }

    /// A token for the current task's next wait.
    #[inline]
    pub(crate) fn token(&self) -> Token {
        let task = self.current();
        let epoch = task.epoch();
        Token { task, epoch }
    }

    /// The reactor, created on first use.
    #[inline]
    pub(crate) fn reactor(&self) -> io::Result<&Reactor> {
        match self.reactor.get() {
            Some(r) => Ok(r),
            None => self.new_reactor(),
        }
    }

    #[cold]
    #[inline(never)]
    fn new_reactor(&self) -> io::Result<&Reactor> {
        let r = Reactor::new()?;
        Ok(self.reactor.get_or_init(|| r))
    }

    /// The reactor if it exists.
    #[inline]
    pub(crate) fn reactor_if_any(&self) -> Option<&Reactor> {
        self.reactor.get()
    }

    /// A fresh id for a `with_timeout` scope.
    #[inline]
    pub(crate) fn next_scope_id(&self) -> u64 {
        let id = self.next_scope.get();
        self.next_scope.set(id + 1);
        id
    }

    /// Whether the hub's loop is running (on greenlet zero's stack).
    #[inline]
    pub(crate) fn in_loop(&self) -> bool {
        self.in_loop.get()
    }

    /// The id the next `with_timeout` scope will get.
    #[inline]
    pub(crate) fn peek_scope_id(&self) -> u64 {
        self.next_scope.get()
    }

    // ----- the panic hook -------------------------------------------------------------

    /// The running task starts running the panic hook; `false` if one already does.
    pub(crate) fn enter_panic_hook(&self, task: &Task) -> bool {
        if self.panic_hook.get().is_some() {
            return false;
        }
        self.panic_hook.set(Some(task.id()));
        // Every switch takes the slow path, which defers the other greenlets, until the
        // hook returns (`switch_slow`); greenlet zero's loop hands the aside count back
        // when it switches to a greenlet.
        self.until_check.set(0);
        self.countdown_aside.set(0);
        true
    }

    /// The panic hook returned: the greenlets deferred meanwhile run next, in order.
    pub(crate) fn leave_panic_hook(&self) {
        self.panic_hook.set(None);
        // In order, ahead of everything queued meanwhile.
        let mut deferred = Vec::with_capacity(self.deferred.len());
        while let Some(t) = self.deferred.pop_front() {
            deferred.push(t);
        }
        for t in deferred.into_iter().rev() {
            self.run_queue.push_front(t);
        }
    }

    /// Whether `task` runs the panic hook now.
    #[inline]
    pub(crate) fn in_panic_hook(&self, task: &Task) -> bool {
        self.panic_hook.get() == Some(task.id())
    }

    /// Number of live greenlets (greenlet zero not counted).
    #[inline]
    pub(crate) fn live_count(&self) -> usize {
        self.live.borrow().count()
    }

    /// Greenlet zero, the thread's own stack.
    #[inline]
    pub(crate) fn root(&self) -> &Rc<Task> {
        &self.root
    }

    /// Live greenlet `id` in `slot`, if it is still alive there (slots are reused).
    #[inline]
    pub(crate) fn live_task(&self, slot: u32, id: u64) -> Option<Rc<Task>> {
        self.live.borrow().get(slot, id)
    }

    /// Every live greenlet, in slot order.
    #[inline]
    pub(crate) fn live_tasks(&self) -> Vec<Rc<Task>> {
        self.live.borrow().iter().cloned().collect()
    }

    /// Entries in the run queue.
    #[inline]
    pub(crate) fn ready_count(&self) -> usize {
        self.run_queue.len()
    }

    // ----- timers -------------------------------------------------------------------

    /// Arms a timer.
    #[inline]
    pub(crate) fn arm_timer(&self, at: Instant, action: TimerAction) -> TimerKey {
        self.timers.borrow_mut().insert(at, action)
    }

    /// Disarms a timer; its action, if it had not fired, is returned (to drop outside
    /// the borrow).
    #[inline]
    pub(crate) fn cancel_timer(&self, key: TimerKey) -> Option<TimerAction> {
        self.timers.borrow_mut().cancel(key)
    }

    /// (armed timers, timer slots ever allocated).
    #[inline]
    pub(crate) fn timer_counts(&self) -> (usize, usize) {
        let t = self.timers.borrow();
        (t.len(), t.capacity())
    }

    // ----- counted waits ------------------------------------------------------------

    /// Waits parked on fds.
    #[inline]
    pub(crate) fn io_waits(&self) -> &Count {
        &self.io_waiters
    }

    /// Jobs handed to other threads whose completion has not come back.
    #[inline]
    pub(crate) fn remote_jobs(&self) -> &Count {
        &self.remote_pending
    }

    /// Greenlets unwinding a panic of ours (see `unwind.rs`).
    #[inline]
    pub(crate) fn unwinders(&self) -> &Count {
        &self.unwinders
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
        // The stack is taken when the greenlet starts (`run.rs`); running out of memory
        // is still this call's error.
        let claim = StackClaim::new(stack_size)?;
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        if let Some(n) = &name {
            self.heartbeat.named(id, n);
        }
        crate::diag::log::spawned(id, name.as_deref());
        let task = self.reuse_task(id, name, claim.size());
        task.set_body(body, claim);
        {
            let mut live = self.live.borrow_mut();
            live.insert(&task);
            self.heartbeat.greenlets(live.count());
        }
        match start_at {
            None => self.make_ready(&task),
            Some(at) => {
                task.park(Wait::Start(at));
                let token = Token { task: task.clone(), epoch: task.epoch() };
                task.set_start_timer(Some(self.arm_timer(at, TimerAction::Wake(token))));
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
                t.recycle(id, name, stack_size);
                return task;
            }
        }
        Rc::new(Task::new(id, name, stack_size))
    }

    /// A greenlet starts: its claim is redeemed for a stack, on which its context is
    /// prepared to run its body. `false` if no stack can be had (only when the thread's
    /// pool is gone, at thread exit): the greenlet then fails with that error.
    #[inline(never)] // once per greenlet: kept out of the switch path it is called from
    fn start(&self, task: &Rc<Task>) -> bool {
        let claim = task.take_claim().expect("an unstarted greenlet has its claim");
        match claim.redeem() {
            Ok(stack) => {
                debug_assert_eq!(stack.size(), task.stack_size(), "spawn recorded the size class");
                // SAFETY: nothing runs on a stack fresh from the pool, and the task keeps
                // it (mapped) until it finished or, abandoned, forever.
                unsafe { task.context().prepare(&stack, run::greenlet_entry) };
                task.set_stack(stack);
                task.mark_started();
                true
            }
            Err(e) => {
                let why = format!("greenhub: cannot allocate a greenlet stack to start it: {e}");
                self.finish(task, Err(crate::GreenletError::Panicked(why)));
                task.body().clear(); // its captures drop after the outcome is in
                false
            }
        }
    }

    // ----- ready / park ---------------------------------------------------------------

    /// Puts a task at the back of the run queue.
    #[inline]
    pub(crate) fn make_ready(&self, task: &Rc<Task>) {
        self.make_ready_owned(task.clone());
    }

    /// [`Hub::make_ready`] with a count of the task the caller gives away.
    #[inline]
    pub(crate) fn make_ready_owned(&self, task: Rc<Task>) {
        debug_assert!(!task.ready_link().is_queued(), "a task that is not ready is not queued");
        task.make_ready();
        self.run_queue.push_back(task);
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
        self.park_inline(wait);
    }

    /// [`Hub::park`] inlined into its caller (the socket wait: one frame fewer on a
    /// waiting greenlet's stack).
    #[inline(always)]
    pub(crate) fn park_inline(&self, wait: Wait) {
        self.with_current(
            #[inline(always)]
            |cur| self.park_current(cur, wait),
        );
    }

    #[inline(always)]
    fn park_current(&self, cur: &Rc<Task>, wait: Wait) {
        if !cur.cancel().is_none() {
            if let Some(signal) = unwind::deliverable(self, cur) {
                cur.skip_epoch();
                unwind::throw(self, cur, signal);
            }
            if cur.nothrow() > 0 {
                cur.skip_epoch();
                return;
            }
        }
        cur.park(wait);
        // `me` is `cur`, handed back by the switch.
        self.switch_out(cur, run::Leave::Park, |me| {
            debug_assert_eq!(me.state(), State::Running, "a parked task runs again only once resumed");
            me.end_wait();
            Self::throw_pending_after_switch(me);
        });
    }

    /// Moves the current task behind every ready greenlet and runs them.
    #[inline]
    pub(crate) fn yield_now(&self) {
        self.with_current(|cur| {
            // A cancel pending already is thrown after the switch (the same thing, one
            // switch later); a yield inside `ffi::no_unwind` just yields.
            self.switch_out(cur, run::Leave::Yield, Self::throw_pending_after_switch);
        })
    }

    /// Throws a deliverable cancellation into the running `task`. Returns `false` when
    /// one is pending that cannot be thrown because the task runs inside
    /// `ffi::no_unwind` (its caller must not wait then).
    #[inline]
    fn throw_pending(&self, task: &Task) -> bool {
        if task.cancel().is_none() {
            return true;
        }
        self.throw_pending_slow(task)
    }

    /// `throw_pending` once a cancellation is pending.
    #[inline(never)]
    fn throw_pending_slow(&self, task: &Task) -> bool {
        if let Some(signal) = unwind::deliverable(self, task) {
            unwind::throw(self, task, signal);
        }
        task.nothrow() == 0
    }

    /// `throw_pending` after a switch back to `task`: only `task` is kept across the
    /// switch (the hub is found again), so the switch path keeps one register live.
    #[inline(always)]
    fn throw_pending_after_switch(task: &Task) {
        if !task.cancel().is_none() {
            Self::throw_pending_found(task);
        }
    }

    /// `throw_pending_after_switch` once a cancellation is pending: with the hub.
    #[inline(never)]
    fn throw_pending_found(task: &Task) {
        with(|h| h.throw_pending_slow(task));
    }
}

impl Drop for Hub {
    /// The thread is exiting: unfinished greenlets are abandoned, never resumed.
    ///
    /// Their frames cannot be unwound now (that would run user code, which may wait,
    /// during thread teardown), and the memory under them cannot be reused either: a
    /// frame may have lent a buffer to code that outlives the greenlet (a scoped thread
    /// writing into a local array, a pool thread filling a result), and another
    /// greenlet's frames written over it would be a use-after-free. So the objects on a
    /// stack and the stack itself are leaked together (slabs are never unmapped, so the
    /// memory stays valid for whatever still points into it). A handle that
    /// outlives this (in another thread-local) finds its greenlet finished with an
    /// "abandoned" error. If the thread exits from inside a greenlet
    /// (`std::process::exit` in a greenlet runs this destructor on that greenlet's
    /// stack), the running greenlet is left alone entirely: its task is leaked, so
    /// nothing frees the stack the thread is still running on.
    fn drop(&mut self) {
        current::forget_hub(self);
        // Nothing runs other threads' jobs any more: they are dropped, now and on push.
        if let Some(r) = self.reactor.get() {
            r.remote().close();
        }
        let running = self.current.get();
        let tasks: Vec<Rc<Task>> = self.live.get_mut().drain();
        for t in &tasks {
            if std::ptr::eq(Rc::as_ptr(t), running) {
                // The count `current` holds is never released: the task is leaked.
                continue;
            }
            t.abandon();
            t.context().clear();
            // A started greenlet's frames can neither be unwound nor reused (see the
            // doc above): its stack is leaked, never returned to the pool.
            std::mem::forget(t.take_stack());
            // Never ran: its closure's captures drop here (greenhub calls from those
            // Drops use the late hub), and its claim is given back.
            t.body().clear();
            drop(t.take_claim());
        }
        self.run_queue.clear();
        self.deferred.clear();
        drop(self.timers.get_mut().drain());
        if std::ptr::eq(running, Rc::as_ptr(&self.root)) {
            // SAFETY: `current` owns a count of the running task (invariant), released
            // here, once: nothing reads `current` after the hub's destructor.
            drop(unsafe { Rc::from_raw(running) });
        }
    }
}
