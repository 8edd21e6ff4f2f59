//! A greenlet's private state, shared by its handle and the hub.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::os::fd::RawFd;
use std::ptr;
use std::rc::Rc;
use std::time::Instant;

use crate::coro::{CoroSlot, HubYielder, Outcome};
use crate::park::WaitQueue;
use crate::timer::TimerKey;

/// Where a greenlet is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// In the run queue.
    Ready,
    /// Executing (or, for greenlet zero, executing its own code).
    Running,
    /// Waiting for something to unpark it.
    Parked,
    /// Finished with an outcome.
    Done,
}

/// What a parked greenlet waits for (shown by `dump()` and the LoopExit message).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Wait {
    Nothing,
    Sleep(Option<Instant>),
    Start(Instant),
    Join(u64, Option<Instant>),
    Io { fd: RawFd, interest: crate::Interest, deadline: Option<Instant> },
    Blocking,
    Run,
    Sync(&'static str, Option<Instant>),
}

impl Wait {
    /// A human description, with remaining time where there is a deadline.
    pub(crate) fn describe(&self, now: Instant) -> String {
        fn left(d: &Option<Instant>, now: Instant) -> String {
            match d {
                Some(d) => format!(", {} ms left", d.saturating_duration_since(now).as_millis()),
                None => String::new(),
            }
        }
        match self {
            Wait::Nothing => "nothing".into(),
            Wait::Sleep(None) => "sleep forever".into(),
            Wait::Sleep(Some(d)) => format!("sleep ({} ms left)", d.saturating_duration_since(now).as_millis()),
            Wait::Start(d) => format!("delayed start ({} ms left)", d.saturating_duration_since(now).as_millis()),
            Wait::Join(id, d) => format!("join of greenlet-{id}{}", left(d, now)),
            Wait::Io { fd, interest, deadline } => {
                let what = match (interest.is_readable(), interest.is_writable()) {
                    (true, true) => "readable or writable",
                    (false, true) => "writable",
                    _ => "readable",
                };
                format!("fd {fd} {what}{}", left(deadline, now))
            }
            Wait::Blocking => "a threadpool job".into(),
            Wait::Run => "run() (all greenlets to finish)".into(),
            Wait::Sync(what, d) => format!("{what}{}", left(d, now)),
        }
    }
}

/// One cancellation request: a kill, or the expiry of `with_timeout` scope `id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Kill,
    Timeout(u64),
}

/// The cancellations waiting to be thrown into a greenlet at its next park.
///
/// A kill and a timeout are kept side by side: while the greenlet unwinds (say from a
/// kill, through a `Drop` that waits) a kill cannot be thrown, but the expiry of a
/// `with_timeout` opened inside that `Drop` can, and must not be lost behind the kill.
/// Of several expired scopes the outermost (smallest id) is kept: it unwinds through
/// the inner ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cancel {
    kill: bool,
    /// The outermost expired scope's id; 0 = none (scope ids start at 1). A plain
    /// integer rather than an `Option` keeps the whole value two words, read on every
    /// switch.
    timeout: u64,
}

impl Cancel {
    /// Nothing pending.
    pub(crate) const NONE: Cancel = Cancel { kill: false, timeout: 0 };

    #[inline]
    pub(crate) fn is_none(self) -> bool {
        !self.kill && self.timeout == 0
    }

    /// Whether a kill is pending.
    #[inline]
    pub(crate) fn kill(self) -> bool {
        self.kill
    }

    /// The pending expiry's scope id, if any.
    #[inline]
    pub(crate) fn timeout(self) -> Option<u64> {
        (self.timeout != 0).then_some(self.timeout)
    }

    /// `self` with `signal` added.
    pub(crate) fn with(self, signal: Signal) -> Cancel {
        match signal {
            Signal::Kill => Cancel { kill: true, ..self },
            Signal::Timeout(id) => {
                debug_assert!(id != 0, "scope ids start at 1");
                Cancel { timeout: self.timeout().map_or(id, |t| t.min(id)), ..self }
            }
        }
    }

    /// `self` with `signal` withdrawn (it was thrown, or its scope ended).
    pub(crate) fn without(self, signal: Signal) -> Cancel {
        match signal {
            Signal::Kill => Cancel { kill: false, ..self },
            Signal::Timeout(id) if self.timeout == id => Cancel { timeout: 0, ..self },
            Signal::Timeout(_) => self,
        }
    }
}

/// Why a parked greenlet was made ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    None,
    Timer,
    Io,
    Other,
}

/// A greenlet (or greenlet zero, the thread's own stack: id 0, no coroutine).
pub(crate) struct Task {
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// Index in the hub's live table.
    pub(crate) slot: Cell<u32>,
    pub(crate) state: Cell<State>,
    /// Bumped each time the task becomes ready; tokens from older epochs are stale.
    pub(crate) epoch: Cell<u32>,
    pub(crate) started: Cell<bool>,
    /// The coroutine; empty for greenlet zero and once done.
    pub(crate) coro: CoroSlot,
    pub(crate) yielder: Cell<*const HubYielder>,
    pub(crate) cancel: Cell<Cancel>,
    /// Depth of `ffi::no_unwind` sections: while > 0 nothing is thrown into the greenlet
    /// (it runs inside an `extern "C"` hook); a pending cancel makes its waits return at
    /// once instead.
    pub(crate) nothrow: Cell<u32>,
    /// Panics of ours in flight on this greenlet's stack (see `unwind.rs`).
    pub(crate) unwinding: Cell<u32>,
    /// The first `with_timeout` scope id opened after the outermost of those panics
    /// started: only scopes from there on can catch what is thrown meanwhile.
    pub(crate) unwind_floor: Cell<u64>,
    pub(crate) wait: Cell<Wait>,
    pub(crate) woken: Cell<Wake>,
    pub(crate) outcome: RefCell<Option<Outcome>>,
    /// The handle was dropped before the greenlet finished: nobody will read the outcome.
    pub(crate) detached: Cell<bool>,
    pub(crate) joiners: WaitQueue,
    pub(crate) stack_size: usize,
    /// The timer of a `spawn_later` greenlet that has not started.
    pub(crate) start_timer: Cell<Option<TimerKey>>,
    /// The raw greenlet running on this task's stack, if any (see `raw::Greenlet`).
    pub(crate) raw_current: RefCell<Option<Rc<dyn Any>>>,
    /// Links (`Greenlet::link*`), allocated on first use.
    links: std::cell::OnceCell<Box<crate::link::Links>>,
    /// Greenlet-local values (`greenlet_local!`), allocated on first use.
    locals: std::cell::OnceCell<Box<crate::local::Locals>>,
}

impl Task {
    pub(crate) fn new(id: u64, name: Option<Box<str>>, stack_size: usize) -> Task {
        Task {
            id,
            name,
            slot: Cell::new(u32::MAX),
            state: Cell::new(State::Running),
            epoch: Cell::new(0),
            started: Cell::new(false),
            coro: CoroSlot::empty(),
            yielder: Cell::new(ptr::null()),
            cancel: Cell::new(Cancel::NONE),
            nothrow: Cell::new(0),
            unwinding: Cell::new(0),
            unwind_floor: Cell::new(0),
            wait: Cell::new(Wait::Nothing),
            woken: Cell::new(Wake::None),
            outcome: RefCell::new(None),
            detached: Cell::new(false),
            joiners: WaitQueue::new(),
            stack_size,
            start_timer: Cell::new(None),
            raw_current: RefCell::new(None),
            links: std::cell::OnceCell::new(),
            locals: std::cell::OnceCell::new(),
        }
    }

    /// The task's links, allocated now if it had none.
    pub(crate) fn links(&self) -> &crate::link::Links {
        self.links.get_or_init(Default::default)
    }

    /// The task's greenlet-local values, allocated now if it had none.
    pub(crate) fn locals(&self) -> &crate::local::Locals {
        self.locals.get_or_init(Default::default)
    }

    /// Takes the task's greenlet-local values out (to drop them).
    pub(crate) fn take_locals(&self) -> Option<std::collections::HashMap<usize, Rc<dyn Any>>> {
        self.locals.get().map(|l| l.take())
    }

    /// The task's links, if it ever had any.
    pub(crate) fn links_if_any(&self) -> Option<&crate::link::Links> {
        self.links.get().map(|b| &**b)
    }

    /// Whether the task has finished.
    pub(crate) fn is_done(&self) -> bool {
        self.state.get() == State::Done
    }

    /// Whether the task's outcome must stay for its links.
    pub(crate) fn linked(&self) -> bool {
        self.links_if_any().is_some_and(|l| l.in_use())
    }

    /// Whether this is greenlet zero (the thread's own stack).
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.id == 0
    }

    /// The greenlet's name: the given one, or `greenlet-<id>`.
    pub(crate) fn name(&self) -> String {
        match &self.name {
            Some(n) => n.to_string(),
            None if self.is_root() => thread_name(),
            None => format!("greenlet-{}", self.id),
        }
    }
}

/// The current thread's name, as greenlet zero's name (`<unnamed>` if it has none).
pub(crate) fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_string()
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("name", &self.name())
            .field("state", &self.state.get())
            .field("wait", &self.wait.get())
            .finish()
    }
}
