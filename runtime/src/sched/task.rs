//! A greenlet's private state, shared by its handle and the hub.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use crate::sched::body::{BodySlot, Outcome};
use crate::sched::context::Context;
use crate::sched::ready::ReadyLink;
use crate::sched::stack::{PooledStack, StackClaim};
use crate::sched::timer::TimerKey;

/// Where a greenlet is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    /// In the run queue.
    Ready = 0,
    /// Executing (or, for greenlet zero, executing its own code).
    Running = 1,
    /// Waiting for something to unpark it.
    Parked = 2,
    /// Finished with an outcome.
    Done = 3,
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
    Sync(Primitive, Option<Instant>),
}

impl Wait {
    /// A human description, with remaining time where there is a deadline.
    #[inline]
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
            Wait::Sync(what, d) => format!("{}{}", what.name(), left(d, now)),
        }
    }
}

/// The synchronisation primitive a greenlet waits on (`Wait::Sync`), named in `dump()`
/// and LoopExit messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Primitive {
    /// `wait` / `iwait`
    WaitAny,
    /// `JoinableQueue::join`
    JoinableJoin,
    /// a put into a full queue
    QueuePutFull,
    /// a rendezvous put (until a getter takes it)
    QueuePutRendezvous,
    /// a peek at an empty queue
    QueuePeek,
    /// a get from an empty queue
    QueueGet,
    /// a semaphore (or lock) permit
    Semaphore,
    /// an `AsyncResult`
    AsyncResult,
    /// an `Event`
    Event,
    /// a free slot of a pool
    PoolSlot,
    /// a pool's join
    PoolJoin,
    /// `Pool::wait_available`
    PoolAvailable,
    /// the links of a finished greenlet to finish
    Links,
    /// a channel `Select`
    ChannelSelect,
    /// a channel send
    ChannelSend,
    /// a channel receive
    ChannelRecv,
    /// a future (`block_on`)
    BlockOn,
    /// a `RemoteGreenlet` join
    RemoteJoin,
    /// a `sync::shared::Semaphore` permit
    SharedSemaphore,
    /// a `sync::shared::Event`
    SharedEvent,
}

impl Primitive {
    /// How `dump()` names it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Primitive::WaitAny => "wait/iwait",
            Primitive::JoinableJoin => "joinable queue join",
            Primitive::QueuePutFull => "queue put (full)",
            Primitive::QueuePutRendezvous => "queue put (rendezvous)",
            Primitive::QueuePeek => "queue peek (empty)",
            Primitive::QueueGet => "queue get (empty)",
            Primitive::Semaphore => "semaphore",
            Primitive::AsyncResult => "async result",
            Primitive::Event => "event",
            Primitive::PoolSlot => "pool slot",
            Primitive::PoolJoin => "pool join",
            Primitive::PoolAvailable => "pool slot (wait_available)",
            Primitive::Links => "links of a finished greenlet",
            Primitive::ChannelSelect => "channel select",
            Primitive::ChannelSend => "channel send",
            Primitive::ChannelRecv => "channel recv",
            Primitive::BlockOn => "block_on",
            Primitive::RemoteJoin => "remote greenlet join",
            Primitive::SharedSemaphore => "shared semaphore",
            Primitive::SharedEvent => "shared event",
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
    /// One word, read after every switch: bit 63 is a pending kill, the other bits the
    /// outermost expired scope's id (0 = none; scope ids start at 1 and count up from
    /// there, one per `with_timeout`, so they never reach bit 63).
    bits: u64,
}

impl Cancel {
    /// Nothing pending.
    pub(crate) const NONE: Cancel = Cancel { bits: 0 };
    const KILL: u64 = 1 << 63;

    #[inline]
    pub(crate) fn is_none(self) -> bool {
        self.bits == 0
    }

    /// Whether a kill is pending.
    #[inline]
    pub(crate) fn kill(self) -> bool {
        self.bits & Self::KILL != 0
    }

    /// The pending expiry's scope id, if any.
    #[inline]
    pub(crate) fn timeout(self) -> Option<u64> {
        let id = self.bits & !Self::KILL;
        (id != 0).then_some(id)
    }

    /// `self` with `signal` added.
    #[inline]
    pub(crate) fn with(self, signal: Signal) -> Cancel {
        match signal {
            Signal::Kill => Cancel { bits: self.bits | Self::KILL },
            Signal::Timeout(id) => {
                debug_assert!(id != 0 && id & Self::KILL == 0, "scope ids start at 1 and stay below bit 63");
                let id = self.timeout().map_or(id, |t| t.min(id));
                Cancel { bits: (self.bits & Self::KILL) | id }
            }
        }
    }

    /// `self` with `signal` withdrawn (it was thrown, or its scope ended).
    #[inline]
    pub(crate) fn without(self, signal: Signal) -> Cancel {
        match signal {
            Signal::Kill => Cancel { bits: self.bits & !Self::KILL },
            Signal::Timeout(id) if self.timeout() == Some(id) => Cancel { bits: self.bits & Self::KILL },
            Signal::Timeout(_) => self,
        }
    }
}

/// A task's `State` (low bits) and whether it has started (`STARTED`) in one byte, so
/// that the switch path asks "ready and started" with one comparison
/// (`Task::runs_directly`). One byte rather than two side by side: that comparison often
/// follows a wake-up's store of the state by a few instructions, and a two-byte load
/// right after a one-byte store to the same place cannot take its value from the store
/// on x86-64 (the load waits until the store has reached the cache).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Phase(u8);

impl Phase {
    // Not the sign bit: `Ready | STARTED` is then one `cmp` with a byte immediate (LLVM
    // tests 0x80 with a three-instruction overflow trick).
    const STARTED: u8 = 0x40;

    #[inline(always)]
    fn new(state: State, started: bool) -> Phase {
        Phase(state as u8 | if started { Phase::STARTED } else { 0 })
    }

    #[inline(always)]
    fn state(self) -> State {
        match self.0 & !Phase::STARTED {
            0 => State::Ready,
            1 => State::Running,
            2 => State::Parked,
            _ => State::Done,
        }
    }

    #[inline(always)]
    fn started(self) -> bool {
        self.0 & Phase::STARTED != 0
    }

    #[inline(always)]
    fn with_state(self, state: State) -> Phase {
        Phase(self.0 & Phase::STARTED | state as u8)
    }
}

/// Why a parked greenlet was made ready (an fd wait reads it: readiness, or its
/// deadline, or something else that ends the wait early).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Not woken since it was created.
    None,
    /// Its wait's deadline (or a delayed start's time) came.
    Timer,
    /// Its fd became ready (or the fd was closed under it).
    Io,
    /// A primitive handed it what it waited for (an event set, a queue item, a lock, a
    /// finished greenlet, another thread's completion).
    Notify,
    /// A kill or an expired `with_timeout` scope is to be thrown into it.
    Cancel,
}

/// A greenlet's stack: claimed at spawn, owned from its start.
enum TaskStack {
    Claimed(StackClaim),
    Owned(PooledStack),
}

/// A greenlet (or greenlet zero, the thread's own stack: id 0, no coroutine).
///
/// Every field is private: the methods below are its only readers and writers, and the
/// state changes are named transitions that check the invariants in debug builds.
///
/// Invariants:
/// - **Life**: a new task is `Running` until `Hub::spawn_task` makes it `Ready` (or
///   parks it for a delayed start); then `Ready → Running` (`begin_run`, by the hub
///   only), `Running → Ready` (`make_ready`: a yield), `Running → Parked` (`park`),
///   `Parked → Ready` (`make_ready`: a wake-up), and any of them `→ Done` (`finish`).
///   `Done` is final; greenlet zero is never `Done`. `started` is set once, when the hub
///   prepares the greenlet's context (`mark_started`; greenlet zero: from creation),
///   and only a started task is made `Running` by `begin_run`.
/// - **Run queue**: a `Ready` task has exactly one entry in its hub's run queue (so
///   `make_ready` is never called on a `Ready` task); entries of tasks that finished
///   meanwhile (killed before they ran) are skipped when popped.
/// - **Epoch**: advances exactly when the task becomes `Ready` by `make_ready` (a wake-up,
///   or spawn) or a park does not happen (`skip_epoch`), not at a yield (`yielded`),
///   which ends no park; a wait token is live while its epoch equals the task's and the
///   task is `Parked`, so a wake-up is delivered at most once per park. (Every park ends
///   in a wake-up or does not happen, so the tokens of the last one are stale by the
///   time the task runs again, yields or not.)
/// - **Body and stack**: greenlet zero has neither (it runs on the thread's stack); a
///   greenlet has its body and a stack claim from spawn until it starts (the hub redeems
///   the claim for its stack and prepares its context; its first run takes the body),
///   and its stack from then until it finished (taken before `finish`) or is abandoned
///   with its thread. An unstarted greenlet touches no stack.
/// - **Context**: suspended (resumable) exactly while the task is started, not running
///   and not done; greenlet zero's is suspended while a greenlet runs.
/// - **Outcome**: set by `finish` (or the hub's `Drop`), then read by handles and taken
///   at most once (`take_outcome`); a detached task without links keeps none. Before
///   that, the body's return parks its outcome there for `finish` (`set_exit`), while
///   the task is not yet done, so no handle looks.
/// - **Cancellation**: nothing is thrown while `nothrow > 0` (inside `ffi::no_unwind`);
///   a finished task has no pending cancellation.
///
/// Layout: at 1,000 connections and more a greenlet's task is out of cache each time its
/// fd is ready, so what a wake-up and the switch to it touch comes first, within the
/// first two cache lines of the `Rc` allocation (its counts, also touched, are right in
/// front); the declared order is kept (`repr(C)`), and ordered so that it needs no
/// padding.
#[repr(C)] // the field order is the layout: see "Layout" above
pub(crate) struct Task {
    // ----- hot: read or written on every wake-up and switch (the first 96 bytes) -----
    /// Where the greenlet resumes while it is suspended (see `context.rs`); first, so
    /// the task's pointer is the switch's save slot.
    context: Context,
    /// The run-queue link (`ready.rs`).
    ready: ReadyLink,
    id: u64,
    cancel: Cell<Cancel>,
    /// Bumped each time the task becomes ready; tokens from older epochs are stale.
    epoch: Cell<u32>,
    /// Depth of `ffi::no_unwind` sections: while > 0 nothing is thrown into the greenlet
    /// (it runs inside an `extern "C"` hook); a pending cancel makes its waits return at
    /// once instead.
    nothrow: Cell<u32>,
    /// Its `State`, and whether it started (see the invariants).
    phase: Cell<Phase>,
    woken: Cell<Wake>,
    /// The handle was dropped before the greenlet finished: nobody will read the outcome.
    detached: Cell<bool>,
    /// Index in the hub's live table.
    slot: Cell<u32>,
    /// Panics of ours in flight on this greenlet's stack (see `unwind.rs`).
    unwinding: Cell<u32>,
    wait: Cell<Wait>,
    // ----- cold: spawn, start, finish, kills, diagnostics ----------------------------
    /// The first `with_timeout` scope id opened after the outermost of those panics
    /// started: only scopes from there on can catch what is thrown meanwhile.
    unwind_floor: Cell<u64>,
    /// The body, from spawn until the greenlet's first run calls it.
    body: BodySlot,
    outcome: RefCell<Option<Outcome>>,
    name: Option<Box<str>>,
    joiners: WaitQueue,
    /// The claim on a stack from spawn until the greenlet starts, then the stack until
    /// it finished (or is leaked with it).
    stack: Cell<Option<TaskStack>>,
    stack_size: usize,
    /// The timer of a `spawn_later` greenlet that has not started.
    start_timer: Cell<Option<TimerKey>>,
    /// The raw greenlet running on this task's stack, if any (see `raw::Greenlet`).
    raw_current: RefCell<Option<Rc<dyn Any>>>,
    /// Links (`Greenlet::link*`), allocated on first use.
    links: std::cell::OnceCell<Box<crate::link::Links>>,
    /// Greenlet-local values (`greenlet_local!`), allocated on first use.
    locals: std::cell::OnceCell<Box<crate::local::Locals>>,
}

impl Task {
    /// Greenlet zero: the thread's own stack, running (and so started) from the start.
    pub(crate) fn root() -> Task {
        Task { phase: Cell::new(Phase::new(State::Running, true)), ..Task::new(0, None, 0) }
    }

    #[inline]
    pub(crate) fn new(id: u64, name: Option<Box<str>>, stack_size: usize) -> Task {
        Task {
            ready: ReadyLink::new(),
            id,
            name,
            slot: Cell::new(u32::MAX),
            phase: Cell::new(Phase::new(State::Running, false)),
            epoch: Cell::new(0),
            context: Context::new(),
            body: BodySlot::empty(),
            stack: Cell::new(None),
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

    /// Turns a finished task nothing else refers to into a new one, in place: the same
    /// as `*self = Task::new(id, name, stack_size)`, but writing only the fields a
    /// finished task does not already hold in their new state (those are checked in
    /// debug builds), and keeping the joiners' buffer.
    #[inline]
    pub(crate) fn recycle(&mut self, id: u64, name: Option<Box<str>>, stack_size: usize) {
        debug_assert!(self.is_done(), "only a finished task is recycled");
        debug_assert!(!self.ready.is_queued(), "a unique task is in no queue");
        debug_assert!(self.stack.get_mut().is_none(), "a finished task has given its stack back");
        debug_assert!(!self.body.is_set(), "and its body");
        debug_assert!(self.outcome.get_mut().is_none() && !self.context.is_suspended());
        debug_assert!(self.cancel.get().is_none() && self.wait.get() == Wait::Nothing);
        debug_assert!(self.joiners.waiters.get_mut().is_empty(), "a unique task has no waiters");
        debug_assert!(self.start_timer.get().is_none(), "a finished task has no start timer");
        self.id = id;
        self.name = name;
        self.slot.set(u32::MAX);
        self.phase.set(Phase::new(State::Running, false));
        self.epoch.set(0);
        self.nothrow.set(0);
        self.unwinding.set(0);
        self.unwind_floor.set(0);
        self.woken.set(Wake::None);
        *self.outcome.get_mut() = None;
        self.detached.set(false);
        self.stack_size = stack_size;
        *self.raw_current.get_mut() = None;
        if self.links.get().is_some() {
            self.links = std::cell::OnceCell::new();
        }
        if self.locals.get().is_some() {
            self.locals = std::cell::OnceCell::new();
        }
    }

    // ----- identity ---------------------------------------------------------------------

    /// The greenlet's id (0: greenlet zero).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The name given at spawn, if any (no allocation: the overflow handler reads it).
    #[inline]
    pub(crate) fn given_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The usable size of the greenlet's stack (0 for greenlet zero).
    #[inline]
    pub(crate) fn stack_size(&self) -> usize {
        self.stack_size
    }

    /// The run-queue link (only `ReadyQueue` reads and writes it).
    #[inline]
    pub(crate) fn ready_link(&self) -> &ReadyLink {
        &self.ready
    }

    /// Index in the hub's live table.
    #[inline]
    pub(crate) fn slot(&self) -> u32 {
        self.slot.get()
    }

    /// Records the live-table slot (`Live::insert` only).
    #[inline]
    pub(crate) fn set_slot(&self, slot: u32) {
        self.slot.set(slot);
    }

    // ----- life: the transitions ------------------------------------------------------

    #[inline]
    pub(crate) fn state(&self) -> State {
        self.phase.get().state()
    }

    #[inline(always)]
    fn set_state(&self, state: State) {
        self.phase.set(self.phase.get().with_state(state));
    }

    /// Whether the hub can switch to it as it is: `Ready` and started (one comparison,
    /// on the switch path).
    #[inline(always)]
    pub(crate) fn runs_directly(&self) -> bool {
        self.phase.get() == Phase::new(State::Ready, true)
    }

    /// Whether the task has finished.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.phase.get().state() == State::Done
    }

    /// Whether the greenlet has ever run.
    #[inline]
    pub(crate) fn started(&self) -> bool {
        self.phase.get().started()
    }

    /// `Running`/`Parked` → `Ready`: the caller puts it into the run queue (once).
    #[inline]
    pub(crate) fn make_ready(&self) {
        debug_assert!(
            matches!(self.phase.get().state(), State::Running | State::Parked),
            "make_ready of a {:?} task (a ready task is queued exactly once)",
            self.phase.get().state()
        );
        self.set_state(State::Ready);
        self.epoch.set(self.epoch.get().wrapping_add(1));
    }

    /// `Running` → `Ready` at a yield: the caller puts it into the run queue (once). The
    /// epoch stays: a yield ends no park (see the invariants).
    #[inline]
    pub(crate) fn yielded(&self) {
        debug_assert_eq!(self.phase.get().state(), State::Running, "only the running task yields");
        self.set_state(State::Ready);
    }

    /// `Ready` → `Running`: the hub switches to it now (a greenlet whose context is
    /// prepared or suspended, or greenlet zero, whose wait is over).
    #[inline]
    pub(crate) fn begin_run(&self) {
        debug_assert_eq!(self.phase.get().state(), State::Ready, "only a ready task is resumed");
        debug_assert!(self.phase.get().started(), "its context is prepared (`Hub::start`) before it runs");
        self.phase.set(Phase::new(State::Running, true));
    }

    /// The hub prepared the greenlet's context on its stack: from now on it can be
    /// switched to (it counts as started: nothing can run between this and its first
    /// run, and a kill from then on unwinds its body instead of dropping it). Greenlet
    /// zero is started from its creation.
    #[inline]
    pub(crate) fn mark_started(&self) {
        debug_assert!(!self.phase.get().started(), "a greenlet starts once");
        self.phase.set(Phase(self.phase.get().0 | Phase::STARTED));
    }

    /// Greenlet zero leaves the hub loop (its wait is over, or the loop panicked).
    #[inline]
    pub(crate) fn root_resumes(&self) {
        debug_assert!(self.is_root());
        self.set_state(State::Running);
    }

    /// `Running` → `Parked` on `wait` (a new task is `Running` too: a delayed start parks it
    /// before it ever ran).
    #[inline]
    pub(crate) fn park(&self, wait: Wait) {
        debug_assert_eq!(self.phase.get().state(), State::Running, "only the running task parks");
        self.set_state(State::Parked);
        self.wait.set(wait);
    }

    /// After a park: the wait is over (the task runs again).
    #[inline]
    pub(crate) fn end_wait(&self) {
        self.wait.set(Wait::Nothing);
    }

    /// A park that does not happen (thrown, or returning at once in `no_unwind`): the
    /// epoch advances as a wake-up would, so its tokens can never end a later wait.
    #[inline]
    pub(crate) fn skip_epoch(&self) {
        self.epoch.set(self.epoch.get().wrapping_add(1));
    }

    /// The current epoch (for wait tokens).
    #[inline]
    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.get()
    }

    /// → `Done` with `outcome`, which is kept unless nobody can read it. Returns the
    /// outcome when it was not kept (the caller drops it).
    #[inline]
    pub(crate) fn finish(&self, outcome: Outcome) -> Option<Outcome> {
        debug_assert!(!self.is_done(), "a task finishes once");
        debug_assert!(!self.is_root(), "greenlet zero never finishes");
        debug_assert!(self.stack_is_gone(), "the stack is given back before finish");
        self.set_state(State::Done);
        self.wait.set(Wait::Nothing);
        self.cancel.set(Cancel::NONE);
        if self.detached.get() && !self.linked() {
            return Some(outcome); // its handle is gone: nobody can read it
        }
        *self.outcome.borrow_mut() = Some(outcome);
        None
    }

    /// → `Done` because its thread exited before it finished (the hub's `Drop`).
    #[inline]
    pub(crate) fn abandon(&self) {
        self.set_state(State::Done);
        if !self.detached.get() {
            *self.outcome.borrow_mut() = Some(Err(crate::GreenletError::Panicked(
                "greenlet abandoned: the thread of its hub exited before it finished".into(),
            )));
        }
    }

    /// What the parked task waits for.
    #[inline]
    pub(crate) fn wait(&self) -> Wait {
        self.wait.get()
    }

    /// Why the task was last made ready.
    #[inline]
    pub(crate) fn woken(&self) -> Wake {
        self.woken.get()
    }

    #[inline]
    pub(crate) fn set_woken(&self, why: Wake) {
        self.woken.set(why);
    }

    // ----- the coroutine ----------------------------------------------------------------

    /// Stores the body of a new greenlet and its stack claim (`Hub::spawn_task`).
    #[inline]
    pub(crate) fn set_body<F: FnOnce() -> Outcome + 'static>(&self, body: F, claim: StackClaim) {
        debug_assert!(!self.phase.get().started() && self.stack_is_gone());
        self.body.set(body);
        self.stack.set(Some(TaskStack::Claimed(claim)));
    }

    /// The body's slot: the greenlet's first run calls it, a kill before the start or
    /// an abandonment clears it.
    #[inline]
    pub(crate) fn body(&self) -> &BodySlot {
        &self.body
    }

    /// Takes the stack claim: to start the greenlet, or to give the claim back when it
    /// is killed before it started (or abandoned).
    #[inline]
    pub(crate) fn take_claim(&self) -> Option<StackClaim> {
        match self.stack.take() {
            Some(TaskStack::Claimed(c)) => Some(c),
            other => {
                self.stack.set(other);
                None
            }
        }
    }

    /// The greenlet starts: `stack` is its for the rest of its life.
    #[inline]
    pub(crate) fn set_stack(&self, stack: PooledStack) {
        debug_assert!(self.stack_is_gone());
        self.stack.set(Some(TaskStack::Owned(stack)));
    }

    /// Takes the stack: the finished greenlet's goes back to the pool, an abandoned
    /// one's is leaked.
    #[inline]
    pub(crate) fn take_stack(&self) -> Option<PooledStack> {
        match self.stack.take() {
            Some(TaskStack::Owned(s)) => Some(s),
            other => {
                self.stack.set(other);
                None
            }
        }
    }

    /// Whether the task holds no stack (debug checks).
    pub(crate) fn stack_is_gone(&self) -> bool {
        let s = self.stack.take();
        let gone = s.is_none();
        self.stack.set(s);
        gone
    }

    /// Where the greenlet resumes (see `context.rs`).
    #[inline]
    pub(crate) fn context(&self) -> &Context {
        &self.context
    }

    /// The body returned with `outcome` (its last act on its own stack): it waits in
    /// the outcome's place until `finish` (no handle reads it before the task is done).
    #[inline]
    pub(crate) fn set_exit(&self, outcome: Outcome) {
        debug_assert!(!self.is_done());
        *self.outcome.borrow_mut() = Some(outcome);
    }

    /// The outcome the body returned with (for `finish`).
    #[inline]
    pub(crate) fn take_exit(&self) -> Option<Outcome> {
        debug_assert!(!self.is_done());
        self.outcome.borrow_mut().take()
    }

    /// The raw greenlet running on this task's stack, if any (`raw::Greenlet`).
    #[inline]
    pub(crate) fn raw_current(&self) -> &RefCell<Option<Rc<dyn Any>>> {
        &self.raw_current
    }

    /// Sets or takes the timer of a delayed start.
    #[inline]
    pub(crate) fn set_start_timer(&self, key: Option<TimerKey>) {
        self.start_timer.set(key);
    }

    #[inline]
    pub(crate) fn take_start_timer(&self) -> Option<TimerKey> {
        self.start_timer.take()
    }

    // ----- cancellation -------------------------------------------------------------

    /// The cancellations waiting to be thrown.
    #[inline]
    pub(crate) fn cancel(&self) -> Cancel {
        self.cancel.get()
    }

    /// Records `signal` (a finished task ignores it).
    #[inline]
    pub(crate) fn add_cancel(&self, signal: Signal) {
        if !self.is_done() {
            self.cancel.set(self.cancel.get().with(signal));
        }
    }

    /// Withdraws `signal` (thrown, or its scope ended).
    #[inline]
    pub(crate) fn withdraw_cancel(&self, signal: Signal) {
        self.cancel.set(self.cancel.get().without(signal));
    }

    /// Depth of `ffi::no_unwind` sections (nothing is thrown while > 0).
    #[inline]
    pub(crate) fn nothrow(&self) -> u32 {
        self.nothrow.get()
    }

    #[inline]
    pub(crate) fn enter_nothrow(&self) {
        self.nothrow.set(self.nothrow.get() + 1);
    }

    #[inline]
    pub(crate) fn leave_nothrow(&self) {
        debug_assert!(self.nothrow.get() > 0, "unbalanced no_unwind");
        self.nothrow.set(self.nothrow.get() - 1);
    }

    /// Panics of ours in flight on this stack, and the scope floor (see `unwind.rs`).
    #[inline]
    pub(crate) fn unwinding(&self) -> (u32, u64) {
        (self.unwinding.get(), self.unwind_floor.get())
    }

    #[inline]
    pub(crate) fn set_unwinding(&self, depth: u32, floor: u64) {
        self.unwinding.set(depth);
        self.unwind_floor.set(floor);
    }

    // ----- outcome and joiners ------------------------------------------------------------

    /// The outcome, once finished (until taken).
    #[inline]
    pub(crate) fn outcome(&self) -> std::cell::Ref<'_, Option<Outcome>> {
        self.outcome.borrow()
    }

    /// Takes the outcome out (at most once: later calls get `None`).
    #[inline]
    pub(crate) fn take_outcome(&self) -> Option<Outcome> {
        self.outcome.borrow_mut().take()
    }

    /// The handle is gone: nobody will read the outcome.
    #[inline]
    pub(crate) fn detach(&self) {
        self.detached.set(true);
    }

    #[inline]
    pub(crate) fn is_detached(&self) -> bool {
        self.detached.get()
    }

    /// Those waiting for the task to finish.
    #[inline]
    pub(crate) fn joiners(&self) -> &WaitQueue {
        &self.joiners
    }

    /// The task's links, allocated now if it had none.
    #[inline]
    pub(crate) fn links(&self) -> &crate::link::Links {
        self.links.get_or_init(Default::default)
    }

    /// The task's greenlet-local values, allocated now if it had none.
    #[inline]
    pub(crate) fn locals(&self) -> &crate::local::Locals {
        self.locals.get_or_init(Default::default)
    }

    /// Takes the task's greenlet-local values out (to drop them).
    #[inline]
    pub(crate) fn take_locals(&self) -> Option<std::collections::HashMap<usize, Rc<dyn Any>>> {
        self.locals.get().map(|l| l.take())
    }

    /// The task's links, if it ever had any.
    #[inline]
    pub(crate) fn links_if_any(&self) -> Option<&crate::link::Links> {
        self.links.get().map(|b| &**b)
    }

    /// Whether the task's outcome must stay for its links.
    #[inline]
    pub(crate) fn linked(&self) -> bool {
        self.links_if_any().is_some_and(|l| l.in_use())
    }

    /// Whether this is greenlet zero (the thread's own stack).
    #[inline]
    pub(crate) fn is_root(&self) -> bool {
        self.id == 0
    }

    /// The greenlet's name: the given one, or `greenlet-<id>`.
    #[inline]
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
            .field("state", &self.phase.get().state())
            .field("wait", &self.wait.get())
            .finish()
    }
}

// ----- wait tokens and wait queues (the types; waking them is `park.rs`) ------------

/// Permission to wake one particular wait of one greenlet.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) task: Rc<Task>,
    pub(crate) epoch: u32,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}, epoch {})", self.task.id(), self.epoch)
    }
}

impl Token {
    /// Whether [`Token::unpark`] would wake the greenlet now.
    #[inline]
    pub(crate) fn can_unpark(&self) -> bool {
        self.task.state() == State::Parked && self.task.epoch() == self.epoch
    }
}

/// A FIFO of parked greenlets (the waiters of a lock, queue, event or join).
#[derive(Default)]
pub(crate) struct WaitQueue {
    pub(super) waiters: RefCell<VecDeque<(u64, Token)>>,
    next_key: Cell<u64>,
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WaitQueue({} waiting)", self.len())
    }
}

impl WaitQueue {
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue { waiters: RefCell::new(VecDeque::new()), next_key: Cell::new(0) }
    }

    /// Adds a waiter at the back; the guard removes it again if it is still there.
    pub(crate) fn push(&self, token: Token) -> Waiting<'_> {
        let key = self.next_key.get();
        self.next_key.set(key + 1);
        self.waiters.borrow_mut().push_back((key, token));
        Waiting { queue: self, key }
    }

    /// Number of registered waiters.
    pub(crate) fn len(&self) -> usize {
        self.waiters.borrow().len()
    }

    /// Whether a waiter could be woken now.
    pub(crate) fn has_live(&self) -> bool {
        self.waiters.borrow().iter().any(|(_, t)| t.can_unpark())
    }

    #[inline]
    fn remove(&self, key: u64) -> bool {
        let mut w = self.waiters.borrow_mut();
        // Mostly the list is empty (its waiter was woken) or this waiter is first.
        match w.front() {
            None => false,
            Some((k, _)) if *k == key => {
                w.pop_front();
                true
            }
            Some(_) => {
                drop(w);
                self.remove_further(key)
            }
        }
    }

    /// `remove` of a waiter that is not first (out of line: the common cases stay small).
    #[inline(never)]
    fn remove_further(&self, key: u64) -> bool {
        let mut w = self.waiters.borrow_mut();
        match w.binary_search_by_key(&key, |(k, _)| *k) {
            Ok(i) => {
                w.remove(i);
                true
            }
            Err(_) => false,
        }
    }
}

/// A registration in a [`WaitQueue`]; dropping it withdraws the waiter if it was not
/// woken.
pub(crate) struct Waiting<'a> {
    queue: &'a WaitQueue,
    key: u64,
}

impl Waiting<'_> {
    /// Withdraws the waiter now; returns `true` if it was still registered (not woken).
    #[inline]
    pub(crate) fn cancel(self) -> bool {
        let was = self.queue.remove(self.key);
        std::mem::forget(self);
        was
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.queue.remove(self.key);
    }
}

impl fmt::Debug for Waiting<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Waiting({})", self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_keeps_a_kill_and_the_outermost_timeout() {
        let c = Cancel::NONE.with(Signal::Timeout(5)).with(Signal::Kill).with(Signal::Timeout(3));
        assert!(c.kill());
        assert_eq!(c.timeout(), Some(3), "the outermost (smallest) scope wins");
        assert_eq!(c.with(Signal::Timeout(9)).timeout(), Some(3));
        assert_eq!(c.without(Signal::Timeout(5)), c, "an inner scope's end changes nothing");
        let c = c.without(Signal::Timeout(3));
        assert_eq!((c.kill(), c.timeout()), (true, None));
        assert!(c.without(Signal::Kill).is_none());
    }

    #[test]
    fn transitions_advance_the_epoch_and_keep_the_outcome() {
        let t = Task::new(7, Some("w".into()), 16384);
        assert_eq!((t.state(), t.epoch(), t.started()), (State::Running, 0, false));
        t.make_ready();
        assert_eq!((t.state(), t.epoch()), (State::Ready, 1));
        t.mark_started();
        t.begin_run();
        assert!(t.started());
        t.park(Wait::Sleep(None));
        assert_eq!((t.state(), t.wait()), (State::Parked, Wait::Sleep(None)));
        t.make_ready();
        assert_eq!((t.state(), t.epoch()), (State::Ready, 2));
        t.begin_run();
        t.end_wait();
        t.yielded();
        assert_eq!((t.state(), t.epoch()), (State::Ready, 2), "a yield ends no park");
        t.begin_run();
        t.skip_epoch();
        assert_eq!(t.epoch(), 3, "a park that does not happen still turns its tokens stale");
        t.add_cancel(Signal::Kill);
        assert!(t.finish(Ok(Box::new(5u8))).is_none(), "kept for the handle");
        assert!(t.is_done());
        assert!(t.cancel().is_none(), "a finished task has nothing pending");
        t.add_cancel(Signal::Kill);
        assert!(t.cancel().is_none(), "and ignores later cancellations");
        assert!(matches!(t.take_outcome(), Some(Ok(_))));
        assert!(t.take_outcome().is_none(), "taken at most once");
    }

    /// The task is most of an idle greenlet's memory besides its stack page: the target
    /// is at most 4.5 KiB RSS per idle greenlet (`examples/many_sleepers`), which holds
    /// while a task stays within six cache lines.
    #[test]
    fn a_task_stays_within_six_cache_lines() {
        assert!(std::mem::size_of::<Task>() <= 6 * 64, "Task is {} bytes", std::mem::size_of::<Task>());
        assert_eq!(std::mem::size_of::<BodySlot>(), 64, "the body slot is one cache line");
    }

    #[test]
    fn a_detached_task_keeps_no_outcome() {
        let t = Task::new(8, None, 16384);
        t.detach();
        assert!(t.finish(Err(crate::GreenletError::Killed)).is_some(), "handed back to drop");
        assert!(t.outcome().is_none());
        assert_eq!(t.name(), "greenlet-8");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "queued exactly once")]
    fn a_ready_task_is_not_made_ready_twice() {
        let t = Task::new(9, None, 16384);
        t.make_ready();
        t.make_ready();
    }
}
