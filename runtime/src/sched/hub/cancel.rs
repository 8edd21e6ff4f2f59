//! Cancellation: kill and the expiry of `with_timeout` scopes, recorded on the task and
//! thrown into it at its next park (see `unwind.rs`).

use std::rc::Rc;

use super::Hub;
use crate::sched::task::{Signal, State, Task, Wake};
use crate::sched::unwind;

impl Hub {
    /// Records a cancellation for `task` and wakes it if it is parked and something can
    /// be done with it there: thrown, or (inside `ffi::no_unwind`) reported by the wait.
    /// A greenlet that unwinds keeps waiting in its `Drop`; the kill then only decides
    /// its outcome.
    pub(crate) fn cancel_task(&self, task: &Rc<Task>, signal: Signal) {
        if task.is_done() {
            return;
        }
        task.add_cancel(signal);
        let wake = task.nothrow() > 0 || unwind::deliverable(self, task).is_some();
        if task.state() == State::Parked && wake {
            task.set_woken(Wake::Cancel);
            self.make_ready(task);
        }
    }

    /// Kills a greenlet: an unstarted one never runs; a waiting one unwinds from its
    /// wait when next resumed; the running one (self-kill) unwinds right away.
    pub(crate) fn kill(&self, task: &Rc<Task>) {
        if !task.is_done() {
            crate::diag::log::killed(task.id(), task.given_name());
        }
        match task.state() {
            State::Done => {}
            _ if !task.started() => {
                let claim = task.take_claim();
                if let Some(key) = task.take_start_timer() {
                    let action = self.cancel_timer(key);
                    drop(action);
                }
                self.finish(task, Err(crate::GreenletError::Killed));
                // Drops the never-run closure (and whatever it captured) here.
                task.body().clear();
                drop(claim);
            }
            State::Running => {
                // Self-kill: unwinds right away where that is allowed, else stays pending.
                task.add_cancel(Signal::Kill);
                self.throw_pending(task);
            }
            State::Ready | State::Parked => self.cancel_task(task, Signal::Kill),
        }
    }

    /// Kills the live greenlet in `slot` if it is still greenlet `id` (for kills sent
    /// from other threads).
    pub(crate) fn kill_slot(&self, slot: u32, id: u64) {
        let task = self.live_task(slot, id);
        if let Some(task) = task {
            self.kill(&task);
        }
    }

    /// Kills every live greenlet but the caller (runtime shutdown).
    pub(crate) fn kill_all(&self) {
        let me = self.current().id();
        let tasks: Vec<Rc<Task>> = self.live_tasks().into_iter().filter(|t| t.id() != me).collect();
        for t in &tasks {
            self.kill(t);
        }
    }
}
