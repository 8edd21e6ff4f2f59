//! `dump()` and `stats()`: what a hub holds, for people and for tests.

use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Instant;

use crate::sched::hub::Hub;
use crate::sched::task::{State, Task};

impl Hub {
    /// Describes every live greenlet.
    pub(crate) fn dump(&self) -> String {
        let now = Instant::now();
        let mut tasks: Vec<Rc<Task>> = self.live_tasks();
        tasks.sort_by_key(|t| t.id());
        let current = self.current().id();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "greenhub hub of thread '{}': {} greenlets, {} timers, {} I/O waits, {} threadpool jobs",
            std::thread::current().name().unwrap_or("<unnamed>"),
            tasks.len(),
            self.timer_counts().0,
            self.io_waits().get(),
            self.remote_jobs().get()
        );
        for t in std::iter::once(self.root()).chain(tasks.iter()) {
            let state = if t.id() == current && !(t.is_root() && t.state() == State::Parked) {
                "running".to_string()
            } else {
                match t.state() {
                    State::Ready => "ready".to_string(),
                    State::Running => "running".to_string(),
                    State::Parked => format!("parked on {}", t.wait().describe(now)),
                    State::Done => "done".to_string(),
                }
            };
            let what = if t.is_root() {
                " (greenlet zero)".to_string()
            } else {
                format!(" [{} KiB stack]", t.stack_size() / 1024)
            };
            let _ = writeln!(out, "  #{} {}: {}{}", t.id(), t.name(), state, what);
        }
        out
    }

    /// Hub counters, for tests and diagnostics.
    pub(crate) fn stats(&self) -> crate::HubStats {
        let (timers, timer_slots) = self.timer_counts();
        crate::HubStats {
            greenlets: self.live_count(),
            ready: self.ready_count(),
            timers,
            timer_slots,
            io_waits: self.io_waits().get(),
            registered_fds: self.reactor_if_any().map_or(0, |r| r.registered()),
            threadpool_jobs: self.remote_jobs().get(),
        }
    }
}
