//! The hub's loop: run the ready greenlets, fire timers, run other threads' jobs, poll
//! for I/O; and a greenlet's end (`finish`).

use std::time::{Duration, Instant};

use super::{current, Hub, CHECK_EVERY, SPARE_TASKS, SWITCH_INTERVAL};
use crate::sched::coro::Outcome;
use crate::sched::park::wait_in;
use crate::sched::task::{Signal, State, Task, Wait, Wake};
use crate::sched::timer::TimerAction;
use crate::sched::unwind;
use std::rc::Rc;

impl Hub {
    /// Greenlet zero's wait: runs the hub until greenlet zero is popped off the run
    /// queue. Panics with LoopExit if nothing can ever make it ready.
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
    }

    /// Runs ready greenlets; returns `true` when greenlet zero was popped (its wait is
    /// over), `false` when the queue ran dry or the switch interval passed.
    fn run_ready(&self) -> bool {
        let mut switches = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            let Some(task) = self.run_queue.pop_front() else { return false };
            if task.state() != State::Ready {
                continue; // killed before it started
            }
            if self.panic_hook.get().is_some_and(|id| id != task.id()) {
                self.deferred.push_back(task);
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
        if !task.started() && !self.start(&task) {
            return;
        }
        task.begin_run();
        debug_assert!(std::ptr::eq(self.current.get(), Rc::as_ptr(&self.root)), "only the loop resumes");
        // `task` (this frame's) keeps the greenlet alive until `current` is `root` again.
        self.current.set(Rc::as_ptr(&task));
        self.heartbeat.beat(task.id());
        current::set_in_greenlet(true);
        let done = task.coro().resume();
        current::set_in_greenlet(false);
        self.heartbeat.beat(0);
        self.current.set(Rc::as_ptr(&self.root));
        if done {
            self.finished(&task);
        }
    }

    /// A greenlet's body returned: its stack goes back to the pool, its outcome is kept.
    fn finished(&self, task: &Rc<Task>) {
        let outcome = task.coro().take_outcome().expect("a finished body stored its outcome");
        drop(task.coro().take());
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
