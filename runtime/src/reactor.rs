//! I/O readiness: fds registered once with the hub's `mio::Poll`, edge-triggered for
//! reading and writing, and the greenlets parked on them.
//!
//! The protocol is mio's: try the operation; on `WouldBlock`, wait for the fd's next
//! readiness event, then try again. Every waiter of a direction is woken by an event
//! (each retries; those that lose the race see `WouldBlock` and wait again), so no
//! wake-up is ever lost when two greenlets wait on one fd.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry};

use crate::hub::{self, Hub, TimerGuard};
use crate::park::Token;
use crate::remote::RemoteQueue;
use crate::task::{Task, Wait, Wake};

/// mio token of the remote queue's waker.
const WAKER: mio::Token = mio::Token(usize::MAX);

/// Readiness bits cached per fd. The *closed* bits (peer hung up, or an error) are never
/// cleared: after them, operations return at once (end of stream, or the error).
const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const READ_CLOSED: u8 = 4;
const WRITE_CLOSED: u8 = 8;

struct Entry {
    fd: RawFd,
    gen: u32,
    /// Readiness seen since the fd was last found drained (both set at registration:
    /// unknown, so try the operation).
    ready: u8,
    /// Live [`Registration`]s of this fd (0: registered implicitly by the free functions).
    refs: usize,
    readers: Vec<Token>,
    writers: Vec<Token>,
}

#[derive(Default)]
struct FdTable {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    gens: Vec<u32>,
    by_fd: HashMap<RawFd, u32>,
}

/// The hub's poller.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    remote: Arc<RemoteQueue>,
    table: RefCell<FdTable>,
    scratch: RefCell<Vec<Token>>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(1024)),
            registry,
            remote: Arc::new(RemoteQueue::new(waker)),
            table: RefCell::new(FdTable::default()),
            scratch: RefCell::new(Vec::new()),
        })
    }

    pub(crate) fn remote(&self) -> &Arc<RemoteQueue> {
        &self.remote
    }

    /// Number of registered fds.
    pub(crate) fn registered(&self) -> usize {
        self.table.borrow().by_fd.len()
    }

    /// Finds or registers `fd`; `owned` adds a reference held by a [`Registration`].
    fn lookup(&self, fd: RawFd, owned: bool) -> io::Result<(u32, u32)> {
        let mut t = self.table.borrow_mut();
        if let Some(&slot) = t.by_fd.get(&fd) {
            let e = t.entries[slot as usize].as_mut().expect("indexed entries exist");
            e.refs += usize::from(owned);
            return Ok((slot, e.gen));
        }
        let slot = match t.free.pop() {
            Some(s) => s,
            None => {
                t.entries.push(None);
                t.gens.push(0);
                (t.entries.len() - 1) as u32
            }
        };
        let gen = t.gens[slot as usize].wrapping_add(1);
        t.gens[slot as usize] = gen;
        let token = mio::Token(((gen as usize) << 32) | slot as usize);
        if let Err(e) = self.registry.register(&mut SourceFd(&fd), token, Interest::READABLE | Interest::WRITABLE) {
            t.free.push(slot);
            return Err(e);
        }
        t.entries[slot as usize] = Some(Entry {
            fd,
            gen,
            ready: READABLE | WRITABLE,
            refs: usize::from(owned),
            readers: Vec::new(),
            writers: Vec::new(),
        });
        t.by_fd.insert(fd, slot);
        Ok((slot, gen))
    }

    /// Forgets `fd` (its waiters are woken to find it gone).
    fn remove(&self, hub: &Hub, slot: u32, gen: u32) {
        let entry = {
            let mut t = self.table.borrow_mut();
            match t.entries.get(slot as usize) {
                Some(Some(e)) if e.gen == gen => {}
                _ => return,
            }
            let e = t.entries[slot as usize].take().expect("checked above");
            t.by_fd.remove(&e.fd);
            t.free.push(slot);
            e
        };
        // The fd may already be closed (EBADF); epoll forgets closed fds by itself.
        let _ = self.registry.deregister(&mut SourceFd(&entry.fd));
        for token in entry.readers.iter().chain(entry.writers.iter()) {
            token.unpark(hub, Wake::Io);
        }
    }

    fn drop_ref(&self, hub: &Hub, slot: u32, gen: u32) {
        let last = {
            let mut t = self.table.borrow_mut();
            match t.entries.get_mut(slot as usize) {
                Some(Some(e)) if e.gen == gen => {
                    e.refs = e.refs.saturating_sub(1);
                    e.refs == 0
                }
                _ => false,
            }
        };
        if last {
            self.remove(hub, slot, gen);
        }
    }

    fn readiness(&self, slot: u32, gen: u32) -> u8 {
        match self.table.borrow().entries.get(slot as usize) {
            Some(Some(e)) if e.gen == gen => e.ready,
            _ => READABLE | WRITABLE, // gone: let the operation report the error
        }
    }

    fn clear_readiness(&self, slot: u32, gen: u32, bits: u8) {
        if let Some(Some(e)) = self.table.borrow_mut().entries.get_mut(slot as usize) {
            if e.gen == gen {
                e.ready &= !bits;
            }
        }
    }

    /// Parks the current task until `slot`'s next event in direction `write`.
    fn wait(&self, hub: &Hub, slot: u32, gen: u32, write: bool, deadline: Option<Instant>) -> io::Result<()> {
        let fd = {
            let t = self.table.borrow();
            match t.entries.get(slot as usize) {
                Some(Some(e)) if e.gen == gen => e.fd,
                _ => return Err(io::Error::new(io::ErrorKind::NotConnected, "fd is no longer registered")),
            }
        };
        if let Some(d) = deadline {
            if Instant::now() >= d {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        let token = hub.token();
        let task = token.task.clone();
        {
            let mut t = self.table.borrow_mut();
            let e = t.entries[slot as usize].as_mut().expect("checked above");
            if write { &mut e.writers } else { &mut e.readers }.push(token.clone());
        }
        hub.io_waiters.set(hub.io_waiters.get() + 1);
        let waiting = IoWait { reactor: self, hub, slot, gen, write, task };
        let _timer = TimerGuard::wake_at(hub, deadline, &token);
        drop(token);
        hub.park(Wait::Io { fd, write, deadline });
        match waiting.task.woken.get() {
            Wake::Timer => Err(io::ErrorKind::TimedOut.into()),
            _ => Ok(()),
        }
    }

    /// Polls the OS and wakes the waiters of the fds that became ready.
    pub(crate) fn poll(&self, hub: &Hub, timeout: Option<Duration>) {
        let mut timeout = timeout;
        let blocking = timeout != Some(Duration::ZERO);
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
        let mut wake = self.scratch.borrow_mut();
        {
            let mut t = self.table.borrow_mut();
            for ev in events.iter() {
                if ev.token() == WAKER {
                    continue;
                }
                let slot = ev.token().0 & 0xffff_ffff;
                let gen = (ev.token().0 >> 32) as u32;
                let Some(Some(e)) = t.entries.get_mut(slot) else { continue };
                if e.gen != gen {
                    continue;
                }
                if ev.is_read_closed() || ev.is_error() {
                    e.ready |= READ_CLOSED;
                }
                if ev.is_write_closed() || ev.is_error() {
                    e.ready |= WRITE_CLOSED;
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    e.ready |= READABLE;
                    wake.append(&mut e.readers);
                }
                if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                    e.ready |= WRITABLE;
                    wake.append(&mut e.writers);
                }
            }
        }
        drop(events);
        for token in wake.drain(..) {
            token.unpark(hub, Wake::Io);
        }
    }
}

/// Withdraws an fd waiter (when its wait ends, is killed or times out).
struct IoWait<'a> {
    reactor: &'a Reactor,
    hub: &'a Hub,
    slot: u32,
    gen: u32,
    write: bool,
    task: Rc<Task>,
}

impl Drop for IoWait<'_> {
    fn drop(&mut self) {
        let mut t = self.reactor.table.borrow_mut();
        if let Some(Some(e)) = t.entries.get_mut(self.slot as usize) {
            if e.gen == self.gen {
                let list = if self.write { &mut e.writers } else { &mut e.readers };
                list.retain(|tok| !Rc::ptr_eq(&tok.task, &self.task));
            }
        }
        drop(t);
        self.hub.io_waiters.set(self.hub.io_waiters.get() - 1);
    }
}

fn wait_fd(fd: RawFd, write: bool, deadline: Option<Instant>) -> io::Result<()> {
    hub::with(|hub| {
        let reactor = hub.reactor()?;
        let (slot, gen) = reactor.lookup(fd, false)?;
        reactor.wait(hub, slot, gen, write, deadline)
    })
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
/// let writer = greenhub_runtime::spawn(move || { (&b).write_all(b"hi").unwrap(); b });
/// let mut buf = [0u8; 2];
/// loop {
///     match a.read(&mut buf) {
///         Ok(n) => { assert_eq!(&buf[..n], b"hi"); break; }
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
///             greenhub_runtime::wait_readable(a.as_raw_fd(), None).unwrap();
///         }
///         Err(e) => panic!("{e}"),
///     }
/// }
/// greenhub_runtime::deregister(a.as_raw_fd());
/// drop(writer.get());
/// ```
pub fn wait_readable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait_fd(fd, false, deadline)
}

/// Like [`wait_readable`], for writability (also: a non-blocking `connect` finished).
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// // A fresh socket is writable: its first edge is reported at registration.
/// greenhub_runtime::wait_writable(a.as_raw_fd(), None).unwrap();
/// greenhub_runtime::deregister(a.as_raw_fd());
/// ```
pub fn wait_writable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    wait_fd(fd, true, deadline)
}

/// Removes `fd` from this thread's hub (before closing it). Greenlets waiting on it
/// wake up; a later wait on the same fd number registers it afresh.
///
/// ```
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// greenhub_runtime::deregister(std::os::fd::AsRawFd::as_raw_fd(&a)); // unknown fds are ignored
/// ```
pub fn deregister(fd: RawFd) {
    if !hub::has_hub() {
        return; // no hub, nothing registered (and none is created for this)
    }
    hub::with(|hub| {
        if let Some(r) = hub.reactor_if_any() {
            let found = r.table.borrow().by_fd.get(&fd).copied();
            if let Some(slot) = found {
                let gen = r.table.borrow().entries[slot as usize].as_ref().map_or(0, |e| e.gen);
                r.remove(hub, slot, gen);
            }
        }
    })
}

/// An fd registered with the current thread's hub for as long as this value lives.
///
/// This is what greenhub's own sockets hold: waiting through it skips the fd lookup of
/// [`wait_readable`]. Registrations of one fd share one entry; the fd leaves the hub
/// when the last one drops. `!Send`: it belongs to its thread's hub.
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// a.set_nonblocking(true).unwrap();
/// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
/// reg.wait_writable(None).unwrap();
/// ```
pub struct Registration {
    fd: RawFd,
    slot: u32,
    gen: u32,
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
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// assert_eq!(reg.fd(), a.as_raw_fd());
    /// ```
    pub fn new(fd: RawFd) -> io::Result<Registration> {
        hub::with(|hub| {
            let (slot, gen) = hub.reactor()?.lookup(fd, true)?;
            Ok(Registration { fd, slot, gen, _not_send: std::marker::PhantomData })
        })
    }

    /// The registered fd.
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// assert_eq!(reg.fd(), a.as_raw_fd());
    /// ```
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// See [`wait_readable`].
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// let e = reg.wait_readable(Some(std::time::Instant::now() + std::time::Duration::from_millis(5))).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut); // nothing to read
    /// ```
    pub fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(false, deadline)
    }

    /// Whether a readable event may be pending: `false` only after
    /// [`Registration::clear_readable`] with no readable event since. An operation that
    /// finds `false` can park at once instead of making a syscall that would fail with
    /// `WouldBlock`.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// assert!(reg.is_readable()); // unknown at first: try the operation
    /// reg.clear_readable(); // it returned WouldBlock (or a short read drained the fd)
    /// assert!(!reg.is_readable());
    /// ```
    pub fn is_readable(&self) -> bool {
        self.readiness() & (READABLE | READ_CLOSED) != 0
    }

    /// Whether a writable event may be pending (see [`Registration::is_readable`]).
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// assert!(reg.is_writable());
    /// ```
    pub fn is_writable(&self) -> bool {
        self.readiness() & (WRITABLE | WRITE_CLOSED) != 0
    }

    /// Records that the fd was found drained (a read returned `WouldBlock`, or a stream
    /// read returned less than asked). A hang-up or error already seen stays recorded.
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// reg.clear_readable();
    /// assert!(!reg.is_readable());
    /// ```
    pub fn clear_readable(&self) {
        self.clear(READABLE);
    }

    /// Records that the fd was found full (a write returned `WouldBlock` or was short).
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// reg.clear_writable();
    /// assert!(!reg.is_writable());
    /// ```
    pub fn clear_writable(&self) {
        self.clear(WRITABLE);
    }

    fn readiness(&self) -> u8 {
        hub::with(|hub| hub.reactor_if_any().map_or(READABLE | WRITABLE, |r| r.readiness(self.slot, self.gen)))
    }

    fn clear(&self, bits: u8) {
        hub::with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                r.clear_readiness(self.slot, self.gen, bits);
            }
        })
    }

    /// See [`wait_writable`].
    ///
    /// ```
    /// # use std::os::fd::AsRawFd;
    /// # let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// # a.set_nonblocking(true).unwrap();
    /// let reg = greenhub_runtime::Registration::new(a.as_raw_fd()).unwrap();
    /// reg.wait_writable(None).unwrap(); // the first edge arrives at registration
    /// ```
    pub fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.wait(true, deadline)
    }

    fn wait(&self, write: bool, deadline: Option<Instant>) -> io::Result<()> {
        hub::with(|hub| {
            let reactor = hub.reactor()?;
            reactor.wait(hub, self.slot, self.gen, write, deadline)
        })
    }
}

impl Clone for Registration {
    fn clone(&self) -> Registration {
        hub::with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                let mut t = r.table.borrow_mut();
                if let Some(Some(e)) = t.entries.get_mut(self.slot as usize) {
                    if e.gen == self.gen {
                        e.refs += 1;
                    }
                }
            }
        });
        Registration { fd: self.fd, slot: self.slot, gen: self.gen, _not_send: std::marker::PhantomData }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        hub::try_with(|hub| {
            if let Some(r) = hub.reactor_if_any() {
                r.drop_ref(hub, self.slot, self.gen);
            }
        });
    }
}
