//! The hub's loop and the switches between tasks: a greenlet that parks or yields
//! switches straight to the next ready task; the loop (on greenlet zero's stack) fires
//! timers, runs other threads' jobs and polls for I/O when none is ready; a greenlet's
//! end (`finish`).

use std::time::{Duration, Instant};

use super::{current, Hub, CHECK_EVERY, SPARE_TASKS, SWITCH_INTERVAL};
use crate::sched::body::Outcome;
use crate::sched::context;
use crate::sched::park::wait_in;
use crate::sched::task::{Signal, State, Task, Wait, Wake};
use crate::sched::timer::TimerAction;
use crate::sched::unwind;
use std::rc::Rc;

/// What a switch does with the strong count `current` held of the task that leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leave {
    /// A yield: the caller made the count the task's entry at the back of the run
    /// queue already (`switch_out`, before the tasks' stores).
    Yield,
    /// A park (or greenlet zero going into a greenlet): released; the live table (the
    /// hub, for greenlet zero) holds the task, and its wake-up queues it again.
    Park,
    /// The body returned: `dead` keeps it until the loop has finished it.
    Exit,
}

/// Where every greenlet starts, on its own stack (prepared by `Hub::start`): runs the
/// body, then switches to the loop for good, which finishes the greenlet and gives its
/// stack back.
///
/// `extern "C"`: the body catches its own panics, and should anything else here panic,
/// the process aborts instead of unwinding off the top of a stack that has no caller.
pub(super) extern "C" fn greenlet_entry() -> ! {
    // The task outlives its body's run (`Hub::with_current` says why).
    let outcome = super::with(|h| h.with_current(|cur| cur.body().call()));
    let outcome = outcome.expect("a greenlet's first run has its body");
    super::with(|h| h.exit_current(outcome))
}

impl Hub {
    /// Greenlet zero's wait: runs the hub loop until a switch picks greenlet zero off
    /// the run queue. Panics with LoopExit if nothing can ever make it ready.
    #[inline(never)] // kept out of the greenlets' switch path, which shares its callers
    pub(super) fn run_loop(&self) {
        if self.in_loop.replace(true) {
            self.root.root_resumes();
            panic!(
                "greenhub: cannot wait inside the hub's own loop (a Drop or callback run \
                 by the hub tried to block)"
            );
        }
        struct Exit<'a>(&'a Hub);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                self.0.in_loop.set(false);
                self.0.root.root_resumes();
            }
        }
        let _exit = Exit(self);
        loop {
            // Whoever switched here last may have finished (its stack is free now).
            if let Some(dead) = self.dead.take() {
                self.finished(&dead);
            }
            if self.root.state() == State::Running {
                break; // a greenlet picked greenlet zero: its wait is over
            }
            if self.duties_due.replace(false) {
                self.check_turn();
            }
            match self.next_runnable() {
                Some(next) if next.is_root() => {
                    next.begin_run(); // its entry's count goes: `current` holds one
                    break;
                }
                Some(next) => {
                    next.begin_run();
                    current::set_in_greenlet(true);
                    self.until_check.set(self.countdown_aside.get());
                    // SAFETY: greenlet zero runs this loop on the thread's stack: its
                    // context is the one executing; `next` was ready: suspended or
                    // prepared.
                    unsafe { self.switch_to(&self.root, next, Leave::Park) };
                    // Greenlet zero suspends only here, so it is here that it clears the
                    // flag when a greenlet switches back to it (the switches to it do
                    // not: one thread-local store fewer on a greenlet's switch path),
                    // and holds the countdown at zero while it runs.
                    current::set_in_greenlet(false);
                    self.countdown_aside.set(self.until_check.replace(0));
                }
                None => self.idle_turn(),
            }
        }
        // A `yield_now`/`sleep(0)` loop on the thread's own stack comes back here at every
        // turn: it gets the same switch-interval check as the greenlets' switches, so its
        // timers and I/O are never starved (gevent's test__sleep0).
        let turns = self.root_turns.get().wrapping_add(1);
        self.root_turns.set(turns);
        if turns % CHECK_EVERY == 0 && self.last_check.get().elapsed() >= SWITCH_INTERVAL {
            self.check_turn();
        }
    }

    /// The switch interval passed with tasks still ready: timers, other threads' jobs
    /// and I/O get their turn (a zero-timeout poll) before the ready tasks go on.
    fn check_turn(&self) {
        let now = Instant::now();
        self.last_check.set(now);
        self.fire_timers(now);
        self.drain_remote();
        self.poll(Some(Duration::ZERO));
    }

    /// Nothing is ready: fire timers, run other threads' jobs, and poll for I/O until
    /// the next timer (or raise LoopExit if nothing can ever make anything ready).
    fn idle_turn(&self) {
        let now = Instant::now();
        self.last_check.set(now);
        self.fire_timers(now);
        self.drain_remote();
        let timeout = if !self.run_queue.is_empty() {
            Some(Duration::ZERO)
        } else {
            self.timers.borrow().next_deadline().map(|at| at.saturating_duration_since(now))
        };
        if timeout.is_none() && self.io_waiters.get() == 0 && self.remote_pending.get() == 0 {
            self.loop_exit();
        }
        self.poll(timeout);
    }

    /// The next task to run, off the run queue: entries of tasks that finished while
    /// queued are skipped, greenlets other than the one running the panic hook are
    /// deferred meanwhile, and an unstarted greenlet gets its stack here.
    #[inline(always)]
    fn next_runnable(&self) -> Option<Rc<Task>> {
        loop {
            let task = self.run_queue.pop_front()?;
            if task.state() != State::Ready {
                continue; // killed before it started
            }
            if self.panic_hook.get().is_some_and(|id| id != task.id()) {
                self.deferred.push_back(task);
                continue;
            }
            if task.started() || self.start(&task) {
                self.run_queue.prefetch_front();
                return Some(task);
            }
        }
    }

    /// The running task `cur` leaves the CPU, parked (`Leave::Park`, its state already
    /// says so) or yielding (`Leave::Yield`: it is still `Running`, and made `Ready`
    /// here): a greenlet switches straight to the next ready task, or to the loop when
    /// none is ready or timers and I/O are due (every `CHECK_EVERY` switches, once
    /// `SWITCH_INTERVAL` has passed); greenlet zero runs the loop.
    ///
    /// The common case is inline here: a greenlet switches, the countdown is not at
    /// zero (so `cur` is not greenlet zero and nobody runs the panic hook), and the front
    /// task is ready and started — so it is not `cur`, which is `Running` or `Parked`
    /// until after this check. Everything else (the clock, greenlet zero, an entry of a
    /// finished task, a greenlet to start, the panic hook's deferral, `cur` alone in the
    /// queue, nothing ready) is `switch_slow`'s: the front entry goes back to the front
    /// for it, so it sees the queue as it was.
    ///
    /// `then` runs when `cur` is switched to again, with `cur` as the switch hands it
    /// back: after the fast path's switch inline, after the slow path inside the
    /// out-of-line call, so the fast path keeps nothing across a call (it needs no
    /// frame of its own) and nothing in a register across the switch.
    #[inline(always)]
    pub(super) fn switch_out(&self, cur: &Rc<Task>, leave: Leave, then: impl Fn(&Task)) {
        debug_assert!(std::ptr::eq(Rc::as_ptr(cur), self.current.get()), "only the running task switches away");
        debug_assert_eq!(cur.state(), if leave == Leave::Yield { State::Running } else { State::Parked });
        let (left, was_zero) = self.until_check.get().overflowing_sub(1);
        self.until_check.set(left);
        if !was_zero {
            debug_assert!(!cur.is_root(), "the countdown is held at zero while greenlet zero runs");
            // Raw, so that no `Rc` is live on this path (nothing to drop should a check
            // panic, nothing kept in a callee-saved register across the switch).
            let next = self.run_queue.pop_front_raw();
            // SAFETY: a non-null `next` owns the entry's count, which keeps it alive.
            if let Some(task) = unsafe { next.as_ref() } {
                if task.runs_directly() {
                    debug_assert!(!std::ptr::eq(next, Rc::as_ptr(cur)), "`cur` is not `Ready` yet");
                    // The queue first, then the tasks' states: the compiler keeps what it
                    // knows of the queue across no store to a task.
                    self.run_queue.prefetch_front();
                    // A yield: `current`'s count of `cur` (its invariant) becomes the
                    // entry, and `switch_to_raw` leaves it there. Should `cur` be queued
                    // already (a broken invariant), the slow path's push panics, with
                    // `current` still owning the count.
                    // SAFETY: `current` owns a count of `cur`, handed over on `true`.
                    if leave == Leave::Yield && !unsafe { self.run_queue.try_push_back_raw(Rc::as_ptr(cur)) } {
                        // SAFETY: `next` was just popped, with its entry's count.
                        unsafe { self.run_queue.push_front_raw(next) };
                        return self.switch_slow_then_for(cur, leave, then);
                    }
                    if leave == Leave::Yield {
                        cur.yielded();
                    }
                    task.begin_run();
                    // SAFETY: `cur` runs; `next` was ready, so it is suspended (or
                    // prepared, being started), it is not `cur` (which was not ready),
                    // and it owns the count its entry did.
                    return then(unsafe { self.switch_to_raw(cur, next, leave) });
                }
                // SAFETY: `next` was just popped, with its entry's count.
                unsafe { self.run_queue.push_front_raw(next) };
            }
        }
        self.switch_slow_then_for(cur, leave, then)
    }

    /// `switch_slow_then` with `leave` made a constant of the copy (the callers' is
    /// one: this `match` folds), so that no copy tests it at run time whatever the
    /// optimiser's view of its call sites.
    #[inline(always)]
    fn switch_slow_then_for(&self, cur: &Task, leave: Leave, then: impl Fn(&Task)) {
        debug_assert_ne!(leave, Leave::Exit, "a body's return leaves through its own switch");
        if leave == Leave::Yield {
            self.switch_slow_then::<true>(cur, then)
        } else {
            self.switch_slow_then::<false>(cur, then)
        }
    }

    /// `switch_slow`, then `then` (see `switch_out`); `YIELD`: the leave is a yield.
    #[inline(never)]
    fn switch_slow_then<const YIELD: bool>(&self, cur: &Task, then: impl Fn(&Task)) {
        then(self.switch_slow(cur, if YIELD { Leave::Yield } else { Leave::Park }))
    }

    /// `switch_out` for everything but the common case. `until_check` is decremented
    /// already (wrapped to `u32::MAX` if it was zero). Inline in `switch_slow_then`,
    /// the slow path's one out-of-line call (a copy per kind of `then`).
    #[inline(always)]
    fn switch_slow<'a>(&self, cur: &'a Task, leave: Leave) -> &'a Task {
        let was_zero = self.until_check.get() == u32::MAX;
        if leave == Leave::Yield {
            // Behind the others, with an entry of its own; from here on its count in
            // `current` is released like a park's. (The push first: should its check
            // panic, the task unwinds as the `Running` task it is.)
            self.run_queue.push_back(self.current());
            cur.yielded();
        }
        if cur.is_root() {
            debug_assert!(was_zero, "held at zero while greenlet zero runs");
            self.until_check.set(0);
            self.run_loop();
            return cur;
        }
        let due = if was_zero {
            // While a greenlet runs the panic hook the countdown stays at zero, so every
            // switch comes here, where `next_runnable` defers the others.
            let left = if self.panic_hook.get().is_none() { CHECK_EVERY - 1 } else { 0 };
            self.until_check.set(left);
            self.last_check.get().elapsed() >= SWITCH_INTERVAL
        } else {
            false
        };
        let to = if due {
            self.duties_due.set(true);
            None
        } else {
            self.next_runnable()
        };
        let to = match to {
            Some(next) if std::ptr::eq(Rc::as_ptr(&next), cur) => {
                // It yielded and is the only one ready: it goes on (a switch to itself, as
                // far as the blocking detector is concerned).
                next.begin_run();
                self.heartbeat.beat(cur.id());
                return cur;
            }
            Some(next) => {
                next.begin_run();
                next
            }
            // To the loop: greenlet zero's context, suspended in `run_loop`, which goes
            // on with its turn (its own wait is not over: it is not `Running`).
            None => self.root.clone(),
        };
        // SAFETY: `cur` runs; `to` is suspended or prepared and not `cur` (checked):
        // greenlet zero is suspended in `run_loop` while a greenlet runs, and a greenlet
        // off the run queue was ready, not running.
        unsafe { self.switch_to(cur, to, Leave::Park) }
    }

    /// Switches from the running `from` to `to`, which becomes the running task (the
    /// caller made it `Running`, or it is greenlet zero going back to its loop):
    /// `current` takes the strong count `to` comes with, and the one it held of `from`
    /// goes where `leave` says. Returns when `from` is switched to again, by whoever
    /// then made it current, with `from` as that switch handed it over (the same task:
    /// the compiler need not keep `from` in a register across the switch). (The
    /// `in_greenlet` flag is greenlet zero's: its loop sets it before switching to a
    /// greenlet and clears it once switched back to.)
    ///
    /// # Safety
    /// `from` is the running task; `to` is not `from` and is suspended or prepared.
    /// (Both stay alive and in place until `from` runs again: `to` by the count
    /// `current` takes, `from` by the live table, or the hub for greenlet zero, or
    /// `dead` for a greenlet whose body returned.)
    #[inline(always)]
    unsafe fn switch_to<'a>(&self, from: &'a Task, to: Rc<Task>, leave: Leave) -> &'a Task {
        // SAFETY: this function's contract; `into_raw` gives the pointer of `to`'s count.
        unsafe { self.switch_to_raw(from, Rc::into_raw(to), leave) }
    }

    /// `switch_to` with `to` given as the pointer of the strong count it comes with
    /// (`Rc::into_raw`), which `current` takes over.
    ///
    /// # Safety
    /// As for `switch_to`, and `to` owns one strong count of its task.
    #[inline(always)]
    unsafe fn switch_to_raw<'a>(&self, from: &'a Task, to: *const Task, leave: Leave) -> &'a Task {
        debug_assert!(!std::ptr::eq(from, to), "a task is never switched to from itself");
        // `current` owns a count of the running task (`from`): it goes where `leave`
        // says, and `current` takes `to`'s right after.
        let from_count: *const Task = from;
        debug_assert!(std::ptr::eq(from_count, self.current.get()));
        match leave {
            // The caller queued `from` with `current`'s count already.
            Leave::Yield => debug_assert!(from.ready_link().is_queued()),
            // Not the last count (see the safety section above).
            // SAFETY: `from_count` owns `current`'s count, released here.
            Leave::Park => drop(unsafe { Rc::from_raw(from_count) }),
            Leave::Exit => {
                // SAFETY: `from_count` owns `current`'s count; `dead` takes it over.
                let previous = self.dead.replace(Some(unsafe { Rc::from_raw(from_count) }));
                debug_assert!(previous.is_none(), "the loop finished the previous one");
            }
        }
        self.current.set(to);
        // SAFETY: `current` holds a count of `to` from now on.
        let to = unsafe { &*to };
        debug_assert!(current::in_greenlet(), "set while any greenlet runs, and by the loop before it leaves");
        self.heartbeat.beat(to.id());
        // SAFETY: per this function's contract; the contexts live in the tasks.
        let back = unsafe { context::switch(from.context(), to.context(), (to as *const Task).cast()) };
        // Whoever resumed `from`'s context did it here, as its `to`: it handed over
        // `from` itself.
        debug_assert!(std::ptr::eq(back.cast::<Task>(), from));
        // SAFETY: `back` is `from` (above), which lives for `'a`.
        unsafe { &*back.cast::<Task>() }
    }

    /// The running greenlet's body returned with `outcome`: it switches to the loop for
    /// the last time; the loop finishes it and gives its stack back.
    fn exit_current(&self, outcome: Outcome) -> ! {
        let me = self.current.get();
        // SAFETY: `current` is alive (it holds a count); `dead` takes that count over
        // in the switch, and keeps it until the loop has finished the greenlet, after
        // this stack is left for good.
        let me = unsafe { &*me };
        debug_assert!(!me.is_root(), "greenlet zero's body never returns here");
        me.set_exit(outcome);
        // SAFETY: `me` is the running greenlet; greenlet zero is suspended in `run_loop`
        // (a greenlet runs) and alive with the hub.
        unsafe { self.switch_to(me, self.root.clone(), Leave::Exit) };
        unreachable!("a finished greenlet is never switched to");
    }

    /// A greenlet's body returned: its stack goes back to the pool, its outcome is kept.
    fn finished(&self, task: &Rc<Task>) {
        task.context().clear();
        let outcome = task.take_exit().expect("a finished body left its outcome");
        drop(task.take_stack());
        self.finish(task, outcome);
    }

    /// Records a greenlet's outcome and wakes its joiners.
    pub(super) fn finish(&self, task: &Rc<Task>, outcome: Outcome) {
        crate::diag::log::finished(
            task.id(),
            task.given_name(),
            match &outcome {
                Ok(_) => "ok",
                Err(crate::GreenletError::Killed) => "killed",
                Err(_) => "panicked",
            },
        );
        if task.given_name().is_some() {
            self.heartbeat.finished(task.id());
        }
        let unread = task.finish(outcome);
        unwind::reset(self, task);
        drop(unread); // its handle is gone: nobody can read it
        let removed = {
            let mut live = self.live.borrow_mut();
            let removed = live.remove(task.slot());
            debug_assert!(removed.as_ref().is_some_and(|t| Rc::ptr_eq(t, task)), "a live task is in its slot");
            self.heartbeat.greenlets(live.count());
            removed
        };
        task.joiners().wake_all(self);
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
                &mut crate::diag::panic::Stderr,
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
        let parked = live.iter().filter(|t| t.state() == State::Parked).count();
        drop(live);
        let waits = root.wait().describe(Instant::now());
        let message = format!(
            "greenhub LoopExit: this operation would block forever: the thread waits on {waits}, \
             and nothing can wake it ({alive} greenlets alive, {parked} parked; no timers, \
             no I/O waits, no threadpool jobs)\n{}",
            self.dump()
        );
        crate::diag::log::loop_exit(&message);
        panic!("{message}");
    }

    /// Waits until no greenlet but the caller is left.
    /// Waits until no greenlet but the caller is left, or `deadline`; returns whether
    /// none is left.
    pub(crate) fn run_all(&self, deadline: Option<Instant>) -> bool {
        let me_counts = usize::from(self.with_current(|cur| !cur.is_root()));
        while self.live_count() > me_counts {
            if !wait_in(self, &self.idle, Wait::Run, deadline, || {}) && deadline.is_some() {
                return self.live_count() <= me_counts;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::GreenletError;

    /// A broken run-queue invariant (the running greenlet queued already, here by hand)
    /// is a panic at the yield, not a corrupt queue: the fast path, about to switch to
    /// a started greenlet, leaves the case to the slow path's checked push. The stale
    /// entry is skipped once the greenlet has finished, and the hub goes on.
    #[test]
    fn a_yield_of_a_queued_greenlet_panics_and_the_hub_goes_on() {
        std::thread::spawn(|| {
            let other = crate::spawn(|| {
                for _ in 0..3 {
                    crate::yield_now(); // started, and ready whenever `bad` yields
                }
                7
            });
            let bad = crate::spawn(|| {
                super::super::with(|h| h.run_queue.push_back(h.current()));
                crate::yield_now();
            });
            assert_eq!(bad.get(), Err(GreenletError::Panicked("greenhub: a task is queued twice".into())));
            assert_eq!(other.get(), Ok(7));
            crate::yield_now();
            assert_eq!(super::super::with(|h| h.run_queue.len()), 0, "the stale entry is gone");
        })
        .join()
        .unwrap();
    }
}
