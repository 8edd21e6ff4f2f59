//! I/O readiness: fds registered once with the hub's `mio::Poll`, edge-triggered for
//! reading and writing, and the greenlets parked on them.
//!
//! The protocol is mio's: try the operation; on `WouldBlock`, wait for the fd's next
//! readiness event, then try again. Every waiter of a direction is woken by an event
//! (each retries; those that lose the race see `WouldBlock` and wait again), so no
//! wake-up is ever lost when two greenlets wait on one fd. [`Registration::retry`] is
//! that loop, written once: greenhub's sockets, the server's accept loop and the monkey
//! hooks all run it.
//!
//! Invariants:
//! - An entry's readiness bits only over-approximate: a bit is cleared only after the
//!   operation returned `WouldBlock` (which proves the fd not ready in that direction,
//!   hang-up and error included: an error state is consumed by the operation that
//!   reports it), and set by every event. So a retry loop never waits while the fd is
//!   ready, and never retries a `WouldBlock` without waiting for a new event first.
//! - An entry found through the fd-number index (`by_fd`) is re-checked with the kernel
//!   before it is trusted: registering the fd again succeeds exactly when epoll does not
//!   know that fd for its current file (it was closed, possibly on another thread, and
//!   the number reused), and then the stale entry is dropped without an epoll call that
//!   could hit the new file. `EEXIST` proves the entry current.
//! - An fd leaves epoll (`EPOLL_CTL_DEL` by number) only while its entry is current: the
//!   last [`Registration`] drops before its owner closes the fd (`Evented`'s field
//!   order), and `deregister` is called before the close.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::num::NonZeroU32;
use std::ops::BitOr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Poll, Registry};

use crate::sched::fd_index::FdIndex;
use crate::sched::hub::{self, Hub};
use crate::sched::park::Token;
use crate::sched::remote::RemoteQueue;
use crate::sched::task::{Task, Wait, Wake};
use crate::sched::timer::TimerGuard;
use crate::sched::waiters::Waiters;

/// How long a hub in a stream of cross-thread hand-offs spins before it sleeps.
const SPIN_FOR: Duration = Duration::from_micros(20);
/// mio token of the remote queue's waker.
const WAKER: mio::Token = mio::Token(usize::MAX);
/// Readiness events taken per poll. Small on purpose: the greenlets one poll wakes run
/// before the next poll, so a small batch keeps what they touch (their stacks, tasks and
/// the kernel's socket state, just reported by `epoll_wait`) in cache between the event
/// and the read; measured on the echo server, 64 against 1,024: server CPU per message
/// 9.2 vs 10.4 µs at 1,000 connections and 11.5 vs 11.9 µs at 9,000, equal at 100
/// (docs/performance.md; on the later AMD machine, servers measured side by side, 16, 32,
/// 64 and 256 are level within 1 %). The extra `epoll_wait` calls cost under 1/64 of one
/// per message.
const EVENTS_PER_POLL: usize = 64;

/// Readiness bits cached per fd. The *closed* bits (peer hung up, or an error) are never
/// cleared: after them, operations return at once (end of stream, or the error).
const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;

/// The readiness a wait is for: readable, writable, or either.
///
/// ```
/// use greenhub::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert!(!Interest::READABLE.is_writable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interest(u8);

impl Interest {
    /// Readable (or hung up, or in error).
    pub const READABLE: Interest = Interest(READABLE);
    /// Writable (or hung up, or in error; also: a non-blocking `connect` finished).
    pub const WRITABLE: Interest = Interest(WRITABLE);

    /// Whether reading is of interest.
    ///
    /// ```
    /// assert!(greenhub::Interest::READABLE.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// Whether writing is of interest.
    ///
    /// ```
    /// assert!(greenhub::Interest::WRITABLE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.0 & WRITABLE != 0
    }

    /// The readiness bits this interest covers: ready, and hung up or in error.
    fn bits(self) -> u8 {
        self.0 | (self.0 << 2)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

/// The readiness bits an interest looks at: its directions plus their hang-up bits.
fn bits_of(interest: Interest) -> u8 {
    let mut bits = 0;
    if interest.is_readable() {
        bits |= READABLE | READ_CLOSED;
    }
    if interest.is_writable() {
        bits |= WRITABLE | WRITE_CLOSED;
    }
    bits
}

/// One registered fd: exactly one cache line (`Option<Entry>` too: `gen` is never 0),
/// which an event and the wait it ends both touch.
#[repr(align(64))]
struct Entry {
    fd: RawFd,
    gen: NonZeroU32,
    /// Live [`Registration`]s of this fd (0: registered implicitly by the free functions).
    /// Saturates (four billion clones of one registration): the entry then outlives
    /// its registrations instead of leaving under one.
    refs: u32,
    /// Readiness seen since the fd was last found drained (both set at registration:
    /// unknown, so try the operation).
    ready: u8,
    readers: Waiters,
    writers: Waiters,
}

/// Registered fds by slot. A slot's generation advances each time it is reused, and
/// every handle, waiter and poll token names its entry by `(slot, gen)`: an entry that
/// was removed (and its slot given to another fd) is never found through an old name.
///
/// Invariants (checked with `debug_assert!` when entries come and go): `by_fd` indexes
/// exactly the occupied slots and `free` lists exactly the empty ones
/// (`by_fd.len() + free.len() == entries.len()`); `gens[s]` is the generation of the
/// entry in slot `s`, or of the last one it held.
#[derive(Default)]
struct FdTable {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    gens: Vec<u32>,
    by_fd: FdIndex,
}

impl FdTable {
    /// The entry named `(slot, gen)`, if it is still that one.
    #[inline]
    fn get(&self, slot: u32, gen: u32) -> Option<&Entry> {
        self.entries.get(slot as usize)?.as_ref().filter(|e| e.gen.get() == gen)
    }

    #[inline]
    fn get_mut(&mut self, slot: u32, gen: u32) -> Option<&mut Entry> {
        self.entries.get_mut(slot as usize)?.as_mut().filter(|e| e.gen.get() == gen)
    }
}

/// The hub's poller.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    remote: Arc<RemoteQueue>,
    table: RefCell<FdTable>,
    scratch: RefCell<Vec<Token>>,
    /// The last sleep ended with a job from another thread: hand-offs are flowing, so
    /// the next sleep spins briefly first (as crossbeam's and tokio's waits do). A hub
    /// woken by its sockets never spins.
    remote_streak: Cell<bool>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS_PER_POLL)),
            registry,
            remote: Arc::new(RemoteQueue::new(waker)),
            table: RefCell::new(FdTable::default()),
            scratch: RefCell::new(Vec::new()),
            remote_streak: Cell::new(false),
        })
    }

    /// Spins (without announcing sleep, so producers skip the eventfd write) for up to
    /// [`SPIN_FOR`] until the remote queue has a job; whether it got one.
    fn spin_for_remote(&self) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if !self.remote.is_empty() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= SPIN_FOR {
                return false;
            }
        }
    }

    pub(crate) fn remote(&self) -> &Arc<RemoteQueue> {
        &self.remote
    }

    /// Number of registered fds.
    pub(crate) fn registered(&self) -> usize {
        self.table.borrow().by_fd.len()
    }

    /// Finds or registers `fd`; `owned` adds a reference held by a [`Registration`].
    ///
    /// An entry already indexed under `fd` is checked with the kernel first (see the
    /// module's invariants): if epoll accepts `fd` again, the entry was stale and is
    /// replaced by the registration just made.
    fn lookup(&self, hub: &Hub, fd: RawFd, owned: bool) -> io::Result<(u32, u32)> {
        let mut t = self.table.borrow_mut();
        let slot = match t.free.pop() {
            Some(s) => s,
            None => {
                t.entries.push(None);
                t.gens.push(0);
                (t.entries.len() - 1) as u32
            }
        };
        // Never 0 (the niche that keeps `Option<Entry>` one line), also after a wrap.
        let gen = NonZeroU32::new(t.gens[slot as usize].wrapping_add(1)).unwrap_or(NonZeroU32::MIN);
        let token = mio::Token(((gen.get() as usize) << 32) | slot as usize);
        let known = t.by_fd.get(fd);
        let both = mio::Interest::READABLE | mio::Interest::WRITABLE;
        match self.registry.register(&mut SourceFd(&fd), token, both) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && known.is_some() => {
                // Current: share the entry.
                t.free.push(slot);
                let old = known.expect("checked");
                let e = t.entries[old as usize].as_mut().expect("indexed entries exist");
                e.refs = e.refs.saturating_add(u32::from(owned));
                return Ok((old, e.gen.get()));
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                // In epoll but not in the table: the fd's last registration skipped
                // `EPOLL_CTL_DEL` on the promise that the fd would close
                // (`Registration::set_closes_with_fd`), and it did not. Take the old
                // epoll entry over with this slot's token.
                if let Err(e) = self.registry.reregister(&mut SourceFd(&fd), token, both) {
                    t.free.push(slot);
                    return Err(e);
                }
            }
            Err(e) => {
                t.free.push(slot);
                return Err(e);
            }
            Ok(()) => {}
        }
        t.gens[slot as usize] = gen.get();
        let stale = known.and_then(|old| {
            t.free.push(old);
            t.entries[old as usize].take()
        });
        t.entries[slot as usize] = Some(Entry {
            fd,
            gen,
            ready: READABLE | WRITABLE,
            refs: u32::from(owned),
            readers: Waiters::default(),
            writers: Waiters::default(),
        });
        t.by_fd.insert(fd, slot);
        debug_assert_eq!(t.by_fd.len() + t.free.len(), t.entries.len(), "fd table index out of step");
        drop(t);
        if let Some(e) = stale {
            // Its fd was closed and the number reused: its waiters find it gone.
            for token in e.readers.iter().chain(e.writers.iter()) {
                token.unpark(hub, Wake::Io);
            }
        }
        Ok((slot, gen.get()))
    }

    /// Forgets `fd` (its waiters are woken to find it gone). `closing`: the fd is closed
    /// right after, which removes it from epoll: no `EPOLL_CTL_DEL` then.
    fn remove(&self, hub: &Hub, slot: u32, gen: u32, closing: bool) {
        let entry = {
            let mut t = self.table.borrow_mut();
            if t.get(slot, gen).is_none() {
                return;
            }
            let e = t.entries[slot as usize].take().expect("checked above");
            t.by_fd.remove(e.fd);
            t.free.push(slot);
            debug_assert_eq!(t.by_fd.len() + t.free.len(), t.entries.len(), "fd table index out of step");
            e
        };
        // The fd may already be closed (EBADF); epoll forgets closed fds by itself.
        if !closing {
            let _ = self.registry.deregister(&mut SourceFd(&entry.fd));
        }
        for token in entry.readers.iter().chain(entry.writers.iter()) {
            token.unpark(hub, Wake::Io);
        }
    }

    fn drop_ref(&self, hub: &Hub, slot: u32, gen: u32, closing: bool) {
        let last = {
            let mut t = self.table.borrow_mut();
            t.get_mut(slot, gen).is_some_and(|e| {
                e.refs = e.refs.saturating_sub(1);
                e.refs == 0
            })
        };
        if last {
            self.remove(hub, slot, gen, closing);
        }
    }

    /// The entry's readiness bits; 0 once it is gone (the wait then reports that).
    #[inline]
    fn readiness(&self, slot: u32, gen: u32) -> u8 {
        self.table.borrow().get(slot, gen).map_or(0, |e| e.ready)
    }

    #[inline]
    fn clear_readiness(&self, slot: u32, gen: u32, bits: u8) {
        if let Some(e) = self.table.borrow_mut().get_mut(slot, gen) {
            e.ready &= !bits;
        }
    }

    /// Parks the current task until `slot`'s next event for `interest` (see
    /// [`Key::wait`], which calls this with its frame around it).
    #[inline(always)]
    fn wait_inline(
        &self,
        hub: &Hub,
        slot: u32,
        gen: u32,
        interest: Interest,
        deadline: Option<Instant>,
    ) -> io::Result<()> {
        let token = hub.token();
        // What ends this wait is recorded afresh (the guard's fast path reads it).
        token.task.set_woken(Wake::None);
        let _timer = TimerGuard::wake_at(hub, deadline, &token);
        let single = interest != Interest::READABLE | Interest::WRITABLE;
        // The token itself goes into the entry (no clone per wait).
        let (_waiting, fd) = self.add_waiter(hub, slot, gen, interest, token, single)?;
        hub.park_inline(Wait::Io { fd, interest, deadline });
        hub.with_current(|task| waited(task))
    }

    /// Parks the current task until the next event of any of `entries` for its
    /// interest (see [`wait_any`]).
    fn wait_all(&self, hub: &Hub, entries: &[(u32, u32, Interest)], deadline: Option<Instant>) -> io::Result<()> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let token = hub.token();
        let mut waits = Vec::with_capacity(entries.len());
        let mut first = (-1, Interest::READABLE);
        for &(slot, gen, interest) in entries {
            let (waiting, fd) = self.add_waiter(hub, slot, gen, interest, token.clone(), false)?;
            if waits.is_empty() {
                first = (fd, interest);
            }
            waits.push(waiting);
        }
        let _timer = TimerGuard::wake_at(hub, deadline, &token);
        let task = token.task.clone();
        drop(token);
        hub.park(Wait::Io { fd: first.0, interest: first.1, deadline });
        drop(waits);
        waited(&task)
    }

    /// Registers `token` as a waiter of entry `slot` for `interest`; the guard withdraws
    /// it. Also gives the entry's fd. `single`: this is the task's only fd wait, for one
    /// direction (see [`IoWait`]).
    fn add_waiter<'a>(
        &'a self,
        hub: &'a Hub,
        slot: u32,
        gen: u32,
        interest: Interest,
        token: Token,
        single: bool,
    ) -> io::Result<(IoWait<'a>, RawFd)> {
        debug_assert!(!single || interest.is_readable() != interest.is_writable(), "one direction");
        let mut t = self.table.borrow_mut();
        let Some(e) = t.get_mut(slot, gen) else { return Err(gone()) };
        match (interest.is_readable(), interest.is_writable()) {
            (true, true) => {
                e.readers.push(token.clone());
                e.writers.push(token);
            }
            (true, false) => e.readers.push(token),
            _ => e.writers.push(token),
        }
        let fd = e.fd;
        drop(t);
        hub.io_waits().up();
        Ok((IoWait { hub, slot, gen, single }, fd))
    }

    /// Polls the OS and wakes the waiters of the fds that became ready.
    pub(crate) fn poll(&self, hub: &Hub, timeout: Option<Duration>) {
        let mut timeout = timeout;
        let mut blocking = timeout != Some(Duration::ZERO);
        if blocking && self.remote_streak.get() && timeout.is_none_or(|t| t > SPIN_FOR) && self.spin_for_remote() {
            // A cross-thread hand-off came while spinning: no sleep, no eventfd write.
            timeout = Some(Duration::ZERO);
            blocking = false;
        }
        if blocking {
            self.remote.set_sleeping(true);
            if !self.remote.is_empty() {
                timeout = Some(Duration::ZERO);
            }
        }
        let mut events = self.events.borrow_mut();
        let r = self.poll.borrow_mut().poll(&mut events, timeout);
        if blocking {
            self.remote.set_sleeping(false);
        }
        if let Err(e) = r {
            if e.kind() != io::ErrorKind::Interrupted {
                panic!("greenhub: epoll_wait failed: {e}");
            }
            return;
        }
        if blocking {
            self.remote_streak.set(events.iter().any(|ev| ev.token() == WAKER) || !self.remote.is_empty());
        }
        let mut wake = self.scratch.borrow_mut();
        {
            let mut t = self.table.borrow_mut();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let slot = (ev.token().0 & 0xffff_ffff) as u32;
                let gen = (ev.token().0 >> 32) as u32;
                let Some(e) = t.get_mut(slot, gen) else { continue };
                if ev.is_read_closed() || ev.is_error() {
                    e.ready |= READ_CLOSED;
                }
                if ev.is_write_closed() || ev.is_error() {
                    e.ready |= WRITE_CLOSED;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    e.ready |= READABLE;
                    e.readers.take_into(&mut wake);
                }
                if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                    e.ready |= WRITABLE;
                    e.writers.take_into(&mut wake);
                }
            }
        }
        drop(events);
        for token in wake.drain(..) {
            token.unpark(hub, Wake::Io);
        }
    }
}

/// How a wait of `task` ended: woken by an event (`Ok`), its deadline (`TimedOut`), or,
/// inside `ffi::no_unwind`, a kill or expiry that could not be thrown (reported, so that
/// a retry loop stops).
fn waited(task: &Task) -> io::Result<()> {
    if let Some(i) = crate::ffi::pending(task) {
        return Err(i.into());
    }
    match task.woken() {
        Wake::Timer => Err(io::ErrorKind::TimedOut.into()),
        _ => Ok(()),
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the fd is no longer registered with this hub (closed elsewhere?)")
}

/// An entry's name in the fd table, `(slot, gen)`: what a [`Registration`] or a raw-fd
/// operation runs the retry loop on.
#[derive(Clone, Copy)]
struct Key {
    slot: u32,
    gen: u32,
}

impl Key {
    /// The loop every cooperative operation runs (see [`Registration::retry`]), written
    /// once. Inlined into the socket operation, with the table accesses and the wait out
    /// of line: the operation's frame then keeps only its own state (the buffer, the
    /// socket, the deadline) across a park, which is what a waiting connection's next
    /// event finds cold (docs/performance.md, sixth pass).
    #[inline(always)]
    fn retry<R>(
        self,
        interest: Interest,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        let bits = interest.bits();
        loop {
            if self.readiness() & bits == 0 {
                self.wait(interest, deadline)?;
            }
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.clear(bits),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// The entry's readiness bits (all set without a reactor: nothing is known, try).
    #[inline(never)]
    fn readiness(self) -> u8 {
        hub::with(|hub| hub.reactor_if_any().map_or(READABLE | WRITABLE, |r| r.readiness(self.slot, self.gen)))
    }

    #[inline(never)]
    fn clear(self, bits: u8) {
        hub::with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                r.clear_readiness(self.slot, self.gen, bits);
            }
        })
    }

    /// Parks the current task until the entry's next event for `interest`, or until
    /// `deadline` (then `TimedOut`).
    #[inline]
    fn wait(self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        match deadline {
            None => self.wait_untimed(interest),
            Some(d) => self.wait_timed(interest, d),
        }
    }

    /// The usual socket wait, without a deadline. Out of line and small on purpose: its
    /// frame (the park and the switch inlined into it) is, with the operation's, the
    /// part of a waiting connection's stack that the connection's next event finds
    /// cold, so it keeps only a few words across the park.
    #[inline(never)]
    fn wait_untimed(self, interest: Interest) -> io::Result<()> {
        hub::with(move |hub| hub.reactor()?.wait_inline(hub, self.slot, self.gen, interest, None))
    }

    /// A wait with a deadline (a timer armed for the park).
    #[inline(never)]
    fn wait_timed(self, interest: Interest, deadline: Instant) -> io::Result<()> {
        if Instant::now() >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        hub::with(move |hub| hub.reactor()?.wait_inline(hub, self.slot, self.gen, interest, Some(deadline)))
    }
}

/// Withdraws an fd waiter (when its wait ends, is killed or times out).
///
/// It drops on the waiter's own stack, so the current task is the waiter: its tokens
/// are found by that task's address. With `single` (one wait, one direction), an
/// I/O wake-up proves there is nothing to withdraw: the event took every waiter of
/// that direction out of the entry, and the other ways to end with `Wake::Io` (the
/// entry removed, or found stale) took the whole entry out of the table. `wait`
/// resets the task's `woken` before it registers, so a wake-up of an earlier wait is
/// never taken for this one's.
struct IoWait<'a> {
    hub: &'a Hub,
    slot: u32,
    gen: u32,
    single: bool,
}

impl Drop for IoWait<'_> {
    #[inline]
    fn drop(&mut self) {
        self.hub.io_waits().down();
        let hub = self.hub;
        let nothing_left = self.single && hub.with_current(|task| task.woken()) == Wake::Io;
        // (Debug builds withdraw anyway, to check that claim.)
        if cfg!(debug_assertions) || !nothing_left {
            let removed = self.withdraw();
            debug_assert!(!nothing_left || removed == 0, "an I/O wake-up left a token behind");
        }
    }
}

impl IoWait<'_> {
    /// Removes the current task's tokens from the entry, if it is still there; how many.
    #[inline(never)]
    fn withdraw(&self) -> usize {
        let Some(reactor) = self.hub.reactor_if_any() else { return 0 };
        let task = self.hub.with_current(Rc::as_ptr);
        let mut t = reactor.table.borrow_mut();
        let Some(e) = t.get_mut(self.slot, self.gen) else { return 0 };
        // Compared, never dereferenced (the tokens hold the task).
        let mine = |tok: &Token| std::ptr::eq(Rc::as_ptr(&tok.task), task);
        let before = e.readers.iter().chain(e.writers.iter()).count();
        if !e.readers.is_empty() {
            e.readers.retain(|tok| !mine(tok));
        }
        if !e.writers.is_empty() {
            e.writers.retain(|tok| !mine(tok));
        }
        before - e.readers.iter().chain(e.writers.iter()).count()
    }
}

/// Parks the calling greenlet (or the thread, as greenlet zero) until `fd` becomes
/// ready for `interest` (either direction, for both), or until `deadline` (then `Err`
/// of kind [`io::ErrorKind::TimedOut`]). See [`wait_readable`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// use greenhub::{wait_fd, Interest};
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// // Not readable, but writable: a wait for either returns.
/// wait_fd(a.as_raw_fd(), Interest::READABLE | Interest::WRITABLE, None).unwrap();
/// greenhub::deregister(a.as_raw_fd());
/// ```
pub fn wait_fd(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
    hub::with(|hub| {
        let reactor = hub.reactor()?;
        let (slot, gen) = reactor.lookup(hub, fd, false)?;
        Ok::<_, io::Error>(Key { slot, gen })
    })?
    .wait(interest, deadline)
}

/// Parks until any of `fds` may be ready for its interest, or until `deadline` (then
/// `Err` of kind `TimedOut`): one wait over several fds, each registered on first use as
/// [`wait_readable`] does (Python's `select`, gevent's `wait_read` over many). Check the
/// fds first (a zero-timeout `poll(2)`): readiness that is already there is reported
/// only by edges that already happened.
///
/// ```
/// use std::os::fd::AsRawFd;
/// use greenhub::{wait_any, Interest};
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let w = greenhub::spawn(move || { std::io::Write::write_all(&mut &b, b"x").unwrap(); b });
/// wait_any(&[(a.as_raw_fd(), Interest::READABLE)], None).unwrap();
/// greenhub::deregister(a.as_raw_fd());
/// drop(w.get());
/// ```
pub fn wait_any(fds: &[(RawFd, Interest)], deadline: Option<Instant>) -> io::Result<()> {
    hub::with(|hub| {
        let reactor = hub.reactor()?;
        let entries = fds
            .iter()
            .map(|&(fd, interest)| reactor.lookup(hub, fd, false).map(|(slot, gen)| (slot, gen, interest)))
            .collect::<io::Result<Vec<_>>>()?;
        reactor.wait_all(hub, &entries, deadline)
    })
}

/// [`Registration::retry`] for a raw fd, registered on first use as [`wait_readable`]
/// does: runs `op` until it returns anything but `WouldBlock`, waiting for readiness
/// for `interest` in between (at most until `deadline`).
///
/// ```
/// use std::io::Read;
/// use std::os::fd::AsRawFd;
/// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let w = greenhub::spawn(move || std::io::Write::write_all(&mut &b, b"x").map(|_| b));
/// let fd = a.as_raw_fd();
/// let mut buf = [0u8; 1];
/// let n = greenhub::retry_fd(fd, greenhub::Interest::READABLE, None, || a.read(&mut buf)).unwrap();
/// assert_eq!(&buf[..n], b"x");
/// greenhub::deregister(fd);
/// drop(w.get());
/// ```
pub fn retry_fd<R>(
    fd: RawFd,
    interest: Interest,
    deadline: Option<Instant>,
    op: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    hub::with(|hub| {
        let reactor = hub.reactor()?;
        let (slot, gen) = reactor.lookup(hub, fd, false)?;
        Ok::<_, io::Error>(Key { slot, gen })
    })?
    .retry(interest, deadline, op)
}

/// Parks the calling greenlet (or the thread, as greenlet zero) until `fd` becomes
/// readable, or until `deadline` (then `Err` of kind [`io::ErrorKind::TimedOut`]).
///
/// Readiness is edge-triggered: call this after an operation on `fd` returned
/// `WouldBlock`, then retry the operation. `fd` must be in non-blocking mode. The fd
/// is registered with the hub on first use and stays registered until [`deregister`]
/// (call it before closing the fd) or until the last [`Registration`] of it drops.
///
/// ```
/// use std::io::{Read, Write};
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
/// let (mut a, b) = UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let writer = greenhub::spawn(move || { (&b).write_all(b"hi").unwrap(); b });
/// let mut buf = [0u8; 2];
/// loop {
///     match a.read(&mut buf) {
///         Ok(n) => { assert_eq!(&buf[..n], b"hi"); break; }
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
///             greenhub::wait_readable(a.as_raw_fd(), None).unwrap();
///         }
///         Err(e) => panic!("{e}"),
///     }
/// }
/// greenhub::deregister(a.as_raw_fd());
/// drop(writer.get());
/// ```
pub fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait_fd(fd, Interest::READABLE, deadline)
}

/// Like [`wait_readable`], for writability (also: a non-blocking `connect` finished).
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// // A fresh socket is writable: its first edge is reported at registration.
/// greenhub::wait_writable(a.as_raw_fd(), None).unwrap();
/// greenhub::deregister(a.as_raw_fd());
/// ```
pub fn wait_writable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait_fd(fd, Interest::WRITABLE, deadline)
}

/// Removes the registration that [`wait_readable`], [`wait_writable`], [`wait_fd`] or
/// [`retry_fd`] made for `fd` from this thread's hub (call it before closing the fd).
/// Greenlets waiting on it wake up; a later wait on the same fd number registers it
/// afresh. A registration held by a [`Registration`] (greenhub's own sockets) is not
/// touched: it leaves when its last `Registration` drops.
///
/// ```
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// greenhub::deregister(std::os::fd::AsRawFd::as_raw_fd(&a)); // unknown fds are ignored
/// ```
pub fn deregister(fd: RawFd) {
    if !hub::has_hub() {
        return; // no hub, nothing registered (and none is created for this)
    }
    hub::with(|hub| {
        if let Some(r) = hub.reactor_if_any() {
            let found = {
                let t = r.table.borrow();
                t.by_fd.get(fd).and_then(|slot| {
                    let e = t.entries[slot as usize].as_ref()?;
                    (e.refs == 0).then_some((slot, e.gen.get()))
                })
            };
            if let Some((slot, gen)) = found {
                r.remove(hub, slot, gen, false);
            }
        }
    })
}

/// An fd registered with the current thread's hub for as long as this value lives.
///
/// The fd contract is the caller's, as with a `BorrowedFd`: the fd must stay open
/// while the registration lives (drop the registration before closing the fd, as
/// greenhub's sockets do by field order). Registering takes the fd as a `BorrowedFd`,
/// so it is open at that moment.
///
/// This is what greenhub's own sockets hold: waiting through it skips the fd lookup of
/// [`wait_readable`]. Registrations of one fd share one entry; the fd leaves the hub
/// when the last one drops. `!Send`: it belongs to its thread's hub.
///
/// ```
/// use std::os::fd::{AsFd, AsRawFd};
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
/// reg.wait_writable(None).unwrap();
/// ```
pub struct Registration {
    fd: RawFd,
    slot: u32,
    gen: u32,
    /// The owner closes the fd right after dropping this (see `set_closes_with_fd`).
    closes_with_fd: Cell<bool>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration").field("fd", &self.fd).finish()
    }
}

impl Registration {
    /// Registers `fd` (non-blocking) with this thread's hub.
    ///
    /// ```
    /// # use std::os::fd::{AsFd, AsRawFd};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
    /// assert_eq!(reg.fd(), a.as_raw_fd());
    /// ```
    pub fn new(fd: BorrowedFd<'_>) -> io::Result<Registration> {
        let fd = fd.as_raw_fd();
        hub::with(|hub| {
            let (slot, gen) = hub.reactor()?.lookup(hub, fd, true)?;
            Ok(Registration { fd, slot, gen, closes_with_fd: Cell::new(false), _not_send: std::marker::PhantomData })
        })
    }

    /// The loop every cooperative operation runs: unless the fd may be ready for
    /// `interest`, park until it may be (at most until `deadline`: then `Err` of kind
    /// `TimedOut`); run `op`; on `WouldBlock` record the fd as not ready and go round
    /// again, on `Interrupted` retry, else return what `op` returned.
    ///
    /// A hang-up or error state counts as ready until `op` returns `WouldBlock` (the
    /// operation that reported the error consumed it), so a socket in an error state
    /// never makes this spin. If the fd was closed behind the registration's back
    /// (and its number reused), this returns an error instead of waiting forever.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::os::fd::AsFd;
    /// use greenhub::{Interest, Registration};
    /// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = Registration::new(a.as_fd()).unwrap();
    /// let w = greenhub::spawn(move || std::io::Write::write_all(&mut &b, b"ok").map(|_| b));
    /// let mut buf = [0u8; 2];
    /// let n = reg.retry(Interest::READABLE, None, || a.read(&mut buf)).unwrap();
    /// assert_eq!(&buf[..n], b"ok");
    /// drop(w.get());
    /// ```
    #[inline]
    pub fn retry<R>(
        &self,
        interest: Interest,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        Key { slot: self.slot, gen: self.gen }.retry(interest, deadline, op)
    }

    /// Parks until the fd may be ready for `interest` (see [`wait_fd`]).
    ///
    /// ```
    /// # use std::os::fd::AsFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// use greenhub::Interest;
    /// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
    /// reg.wait(Interest::READABLE | Interest::WRITABLE, None).unwrap(); // writable
    /// ```
    pub fn wait(&self, interest: Interest, deadline: Option<Instant>) -> io::Result<()> {
        Key { slot: self.slot, gen: self.gen }.wait(interest, deadline)
    }

    /// The registered fd.
    ///
    /// ```
    /// # use std::os::fd::{AsFd, AsRawFd};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
    /// assert_eq!(reg.fd(), a.as_raw_fd());
    /// ```
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// Promises (`true`) that the fd is closed right after this registration drops —
    /// the caller owns the fd and drops it next, as greenhub's sockets do. The fd's last
    /// registration then skips `epoll_ctl(EPOLL_CTL_DEL)`: closing the fd removes it from
    /// epoll anyway, so a connection's teardown makes one syscall fewer. Off by default;
    /// turn it off again before handing the fd on (`into_std`).
    ///
    /// A broken promise loses nothing: while the fd stays open its events carry a stale
    /// token and are ignored, and registering it again takes the old epoll entry over.
    /// (If the fd was duplicated, epoll keeps the entry until the last duplicate closes;
    /// its events are ignored the same way.)
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use greenhub::io::{Interest, Registration};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = Registration::new(a.as_fd()).unwrap();
    /// reg.set_closes_with_fd(true);
    /// drop(reg); // no EPOLL_CTL_DEL ...
    /// // ... but `a` stays open here, so the promise is broken: registering it again
    /// // still works, taking the old epoll entry over.
    /// let again = Registration::new(a.as_fd()).unwrap();
    /// again.wait(Interest::WRITABLE, None).unwrap();
    /// ```
    pub fn set_closes_with_fd(&self, yes: bool) {
        self.closes_with_fd.set(yes);
    }

    /// See [`wait_readable`].
    ///
    /// ```
    /// # use std::os::fd::{AsFd, AsRawFd};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
    /// let e = reg.wait_readable(Some(std::time::Instant::now() + std::time::Duration::from_millis(5))).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut); // nothing to read
    /// ```
    pub fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(Interest::READABLE, deadline)
    }

    /// Whether an event for `interest` may be pending: `false` only after
    /// [`Registration::clear_ready`] for that direction with no such event since (a
    /// hang-up or error counts as both). An operation that finds `false` can park at once
    /// instead of making a syscall that would fail with `WouldBlock`. With both
    /// directions in `interest`, whether either may be ready.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use greenhub::io::{Interest, Registration};
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = Registration::new(a.as_fd()).unwrap();
    /// assert!(reg.may_be_ready(Interest::READABLE)); // unknown at first: try the operation
    /// reg.clear_ready(Interest::READABLE); // it returned WouldBlock (or a short read drained the fd)
    /// assert!(!reg.may_be_ready(Interest::READABLE));
    /// assert!(reg.may_be_ready(Interest::WRITABLE));
    /// ```
    pub fn may_be_ready(&self, interest: Interest) -> bool {
        self.readiness() & bits_of(interest) != 0
    }

    /// Records that the fd was found drained (`READABLE`: a stream read returned less
    /// than asked) or full (`WRITABLE`: a write returned `WouldBlock` or was short). A
    /// hang-up or error already seen stays recorded (the next operation reports it);
    /// only a `WouldBlock` inside [`Registration::retry`] clears those too.
    ///
    /// ```
    /// # use std::os::fd::AsFd;
    /// # use greenhub::io::{Interest, Registration};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = Registration::new(a.as_fd()).unwrap();
    /// reg.clear_ready(Interest::WRITABLE);
    /// assert!(!reg.may_be_ready(Interest::WRITABLE));
    /// ```
    #[inline]
    pub fn clear_ready(&self, interest: Interest) {
        self.clear(interest.0);
    }

    /// Former name of `may_be_ready(Interest::READABLE)`.
    #[doc(hidden)]
    #[deprecated(note = "use may_be_ready(Interest::READABLE): it only says an event *may* be pending")]
    pub fn is_readable(&self) -> bool {
        self.may_be_ready(Interest::READABLE)
    }

    /// Former name of `may_be_ready(Interest::WRITABLE)`.
    #[doc(hidden)]
    #[deprecated(note = "use may_be_ready(Interest::WRITABLE): it only says an event *may* be pending")]
    pub fn is_writable(&self) -> bool {
        self.may_be_ready(Interest::WRITABLE)
    }

    /// Former name of `clear_ready(Interest::READABLE)`.
    #[doc(hidden)]
    #[deprecated(note = "use clear_ready(Interest::READABLE)")]
    pub fn clear_readable(&self) {
        self.clear_ready(Interest::READABLE);
    }

    /// Former name of `clear_ready(Interest::WRITABLE)`.
    #[doc(hidden)]
    #[deprecated(note = "use clear_ready(Interest::WRITABLE)")]
    pub fn clear_writable(&self) {
        self.clear_ready(Interest::WRITABLE);
    }

    fn readiness(&self) -> u8 {
        Key { slot: self.slot, gen: self.gen }.readiness()
    }

    #[inline]
    fn clear(&self, bits: u8) {
        Key { slot: self.slot, gen: self.gen }.clear(bits);
    }

    /// See [`wait_writable`].
    ///
    /// ```
    /// # use std::os::fd::{AsFd, AsRawFd};
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub::Registration::new(a.as_fd()).unwrap();
    /// reg.wait_writable(None).unwrap(); // the first edge arrives at registration
    /// ```
    pub fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(Interest::WRITABLE, deadline)
    }
}

impl Clone for Registration {
    fn clone(&self) -> Registration {
        hub::with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                let mut t = r.table.borrow_mut();
                if let Some(e) = t.get_mut(self.slot, self.gen) {
                    e.refs = e.refs.saturating_add(1);
                }
            }
        });
        Registration {
            fd: self.fd,
            slot: self.slot,
            gen: self.gen,
            closes_with_fd: Cell::new(false),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        hub::try_with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                r.drop_ref(hub, self.slot, self.gen, self.closes_with_fd.get());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use crate::sched::hub;

    #[test]
    fn an_entry_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Option<super::Entry>>(), 64);
        assert_eq!(std::mem::align_of::<super::Entry>(), 64);
    }

    #[test]
    fn a_reused_slot_gets_a_new_generation() {
        let (a, b) = UnixStream::pair().unwrap();
        hub::with(|hub| {
            let r = hub.reactor().unwrap();
            let (s1, g1) = r.lookup(hub, a.as_raw_fd(), true).unwrap();
            assert!(r.table.borrow().get(s1, g1).is_some());
            assert_eq!(r.lookup(hub, a.as_raw_fd(), true).unwrap(), (s1, g1), "one entry per fd");
            assert_eq!(r.registered(), 1);
            r.remove(hub, s1, g1, false);
            assert_eq!(r.registered(), 0);
            let (s2, g2) = r.lookup(hub, b.as_raw_fd(), false).unwrap();
            assert_eq!(s2, s1, "the freed slot is reused");
            assert_ne!(g2, g1, "under a new generation");
            assert!(r.table.borrow().get(s1, g1).is_none(), "the old name finds nothing");
            assert_eq!(r.readiness(s1, g1), 0);
            r.remove(hub, s1, g1, false); // a stale remove is a no-op
            assert_eq!(r.registered(), 1);
            r.remove(hub, s2, g2, false);
            assert_eq!(r.registered(), 0);
        });
    }

    /// A slot's generation never becomes 0 (the niche of `Option<Entry>`), also when it
    /// wraps: the slot's next entry is generation 1.
    #[test]
    fn a_generation_wraps_past_zero() {
        let (a, _b) = UnixStream::pair().unwrap();
        hub::with(|hub| {
            let r = hub.reactor().unwrap();
            let (s1, g1) = r.lookup(hub, a.as_raw_fd(), true).unwrap();
            r.remove(hub, s1, g1, false);
            r.table.borrow_mut().gens[s1 as usize] = u32::MAX;
            let (s2, g2) = r.lookup(hub, a.as_raw_fd(), true).unwrap();
            assert_eq!((s2, g2), (s1, 1));
            assert_eq!(r.readiness(s2, u32::MAX), 0, "the wrapped-from name finds nothing");
            r.remove(hub, s2, g2, false);
        });
    }

    /// Tokens left in the entry of `fd` (0 when every wait withdrew its own).
    fn tokens_of(fd: std::os::fd::RawFd) -> usize {
        hub::with(|hub| {
            let r = hub.reactor().unwrap();
            let t = r.table.borrow();
            let slot = t.by_fd.get(fd).expect("registered");
            let e = t.entries[slot as usize].as_ref().expect("indexed entries exist");
            e.readers.iter().chain(e.writers.iter()).count()
        })
    }

    /// However a socket wait ends, it leaves no token in the fd's entry: woken by its
    /// event (the fast path, which skips the withdrawal), timed out, killed, or ended
    /// before it parked (a kill pending inside `ffi::no_unwind`, right after a wait that
    /// an event ended: that earlier wake-up must not pass for this wait's).
    #[test]
    fn every_way_a_wait_ends_leaves_no_token_behind() {
        use std::cell::Cell;
        use std::io::{Read, Write};
        use std::time::{Duration, Instant};

        use crate::{GreenletError, Interest, Registration};

        std::thread::spawn(|| {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let fd = a.as_raw_fd();
            let a = std::rc::Rc::new((a, Registration::new(std::os::fd::AsFd::as_fd(&b)).unwrap()));
            drop(a.1.clone()); // (a registration of the other end: unrelated entries stay out of it)
            let reg = std::rc::Rc::new(Registration::new(std::os::fd::AsFd::as_fd(&a.0)).unwrap());
            let read = {
                let (a, reg) = (a.clone(), reg.clone());
                move || {
                    let mut buf = [0u8; 8];
                    reg.retry(Interest::READABLE, None, || (&a.0).read(&mut buf))
                }
            };

            // Woken by its event.
            let g = crate::spawn(read.clone());
            crate::yield_now();
            assert_eq!(tokens_of(fd), 1, "parked: its token is in the entry");
            (&b).write_all(b"x").unwrap();
            assert_eq!(g.get().unwrap().unwrap(), 1);
            assert_eq!(tokens_of(fd), 0);

            // Timed out.
            let e = reg.wait(Interest::READABLE, Some(Instant::now() + Duration::from_millis(5))).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
            assert_eq!(tokens_of(fd), 0);

            // Killed while parked.
            let g = crate::spawn(read.clone());
            crate::yield_now();
            assert_eq!(tokens_of(fd), 1);
            g.kill();
            assert_eq!(g.get().map(|_| ()), Err(GreenletError::Killed));
            assert_eq!(tokens_of(fd), 0);

            // Inside `no_unwind`: one read ended by its event, then a kill, then a wait
            // that returns without parking.
            let seen = std::rc::Rc::new(std::cell::Cell::new(None));
            let (read_done, killed) = (std::rc::Rc::new(Cell::new(false)), std::rc::Rc::new(Cell::new(false)));
            let g = crate::spawn({
                let (read, seen, read_done, killed) = (read.clone(), seen.clone(), read_done.clone(), killed.clone());
                move || {
                    let _ = crate::ffi::no_unwind(|| {
                        let first = read().map_err(|e| e.kind()); // ended by its event
                        read_done.set(true);
                        while !killed.get() {
                            crate::yield_now(); // runnable, not parked: the kill wakes nothing
                        }
                        let second = read().map_err(|e| e.raw_os_error()); // never parks
                        seen.set(Some((first, second)));
                    });
                }
            });
            crate::yield_now();
            assert_eq!(tokens_of(fd), 1);
            (&b).write_all(b"y").unwrap();
            while !read_done.get() {
                crate::sleep(Duration::from_millis(1));
            }
            g.kill();
            killed.set(true);
            assert_eq!(g.get(), Err(GreenletError::Killed));
            assert_eq!(seen.get(), Some((Ok(1), Err(Some(libc::ECANCELED)))), "the second wait ended at once");
            assert_eq!(tokens_of(fd), 0, "the wait that never parked withdrew its token");
            drop((reg, read));
        })
        .join()
        .unwrap();
    }
}
