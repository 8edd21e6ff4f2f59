//! `Pool`: at most `n` greenlets at once (gevent.pool.Pool).

use crate::sched::task::Primitive;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::builder::Builder;
use crate::error::GreenletError;
use crate::greenlet::Greenlet;
use crate::queue::Queue;
use crate::sched::hub;
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::Task;
use crate::sched::task::Wait;

use super::members::Members;

struct Inner {
    size: Option<usize>,
    running: Cell<usize>,
    members: RefCell<Members>,
    slot_waiters: WaitQueue,
    join_waiters: WaitQueue,
}

/// A set of greenlets of which at most `n` run at once: [`Pool::spawn`] waits for a
/// free slot. A panic (or kill) in one member frees its slot and leaves the pool working.
/// Cloning gives another handle to the same pool.
///
/// ```
/// use greenhub::{pool::Pool, sleep};
/// let pool = Pool::new(2);
/// let doubled = pool.map(1..=5, |x: u32| { sleep(std::time::Duration::from_millis(1)); x * 2 });
/// assert_eq!(doubled, [2, 4, 6, 8, 10]);
/// ```
#[derive(Clone)]
pub struct Pool {
    inner: Rc<Inner>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("size", &self.inner.size).field("running", &self.inner.running.get()).finish()
    }
}

/// Frees the member's slot when its greenlet ends (or is dropped unstarted).
struct Membership {
    pool: Rc<Inner>,
    slot: u32,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let p = &self.pool;
        p.running.set(p.running.get() - 1);
        let empty = {
            let mut m = p.members.borrow_mut();
            m.leave(self.slot);
            m.is_empty()
        };
        hub::try_with(|h| {
            p.slot_waiters.wake_one(h);
            if empty {
                p.join_waiters.wake_all(h);
            }
        });
    }
}

impl Pool {
    /// A pool running at most `size` greenlets at once (`size` 0 is taken as 1).
    ///
    /// ```
    /// assert_eq!(greenhub::pool::Pool::new(3).free_count(), 3);
    /// ```
    pub fn new(size: usize) -> Pool {
        Pool::with_size(Some(size.max(1)))
    }

    pub(crate) fn with_size(size: Option<usize>) -> Pool {
        Pool {
            inner: Rc::new(Inner {
                size,
                running: Cell::new(0),
                members: RefCell::new(Members::default()),
                slot_waiters: WaitQueue::new(),
                join_waiters: WaitQueue::new(),
            }),
        }
    }

    /// Free slots (`usize::MAX` for an unbounded [`crate::pool::Group`]).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let g = pool.spawn(|| ());
    /// assert_eq!(pool.free_count(), 1);
    /// g.join();
    /// assert_eq!(pool.free_count(), 2);
    /// ```
    pub fn free_count(&self) -> usize {
        match self.inner.size {
            Some(n) => n.saturating_sub(self.inner.running.get()),
            None => usize::MAX,
        }
    }

    /// Number of greenlets in the pool (started or not, not finished).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let _g = pool.spawn(|| ());
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.running.get()
    }

    /// Whether the pool has no greenlet.
    ///
    /// ```
    /// assert!(greenhub::pool::Pool::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spawns `f` in the pool, first waiting (FIFO) while the pool is full.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// let a = pool.spawn(|| 1);
    /// let b = pool.spawn(|| 2); // waits until `a` has finished
    /// assert!(a.ready());
    /// assert_eq!(b.get(), Ok(2));
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_with(Builder::new(), f)
    }

    /// Like [`Pool::spawn`], with the member's name and stack size from `builder`: a
    /// server whose handlers are shallow gives them small stacks, a deep parser a big one.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let b = greenhub::Builder::new().name("small").stack_size(32 * 1024);
    /// let g = pool.spawn_with(b, || greenhub::current_name());
    /// assert_eq!(g.get(), Ok(Some("small".to_string())));
    /// ```
    pub fn spawn_with<F, T>(&self, builder: Builder, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.try_spawn_with(builder, f).unwrap_or_else(|e| panic!("greenhub: cannot allocate a greenlet stack: {e}"))
    }

    /// Like [`Pool::spawn_with`], reporting why no stack could be allocated (see
    /// [`Builder::try_spawn`]) instead of panicking; the slot it waited for is free again
    /// then. A server uses it to drop one connection, not its accept loop, when memory
    /// runs out.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// let g = pool.try_spawn_with(greenhub::Builder::new(), || 5).unwrap();
    /// assert_eq!(g.get(), Ok(5));
    /// let too_big = greenhub::Builder::new().stack_size(usize::MAX);
    /// let e = pool.try_spawn_with(too_big, || 6).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn try_spawn_with<F, T>(&self, builder: Builder, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        match self.spawn_until(builder, None, f) {
            Ok(spawned) => spawned,
            Err(_) => unreachable!("a spawn without deadline waits until it succeeds"),
        }
    }

    /// Like [`Pool::spawn`], waiting at most `timeout` for a free slot; gives `f` back
    /// if none came free.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(1);
    /// let busy = pool.spawn(|| greenhub::sleep(Duration::from_millis(50)));
    /// assert!(pool.spawn_timeout(Duration::from_millis(5), || 1).is_err());
    /// assert!(pool.spawn_timeout(Duration::from_secs(5), || 2).is_ok());
    /// # busy.join();
    /// ```
    pub fn spawn_timeout<F, T>(&self, timeout: Duration, f: F) -> Result<Greenlet<T>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let spawned = self.spawn_until(Builder::new(), Instant::now().checked_add(timeout), f)?;
        Ok(spawned.unwrap_or_else(|e| panic!("greenhub: cannot allocate a greenlet stack: {e}")))
    }

    /// Waits for a slot until `deadline` (giving `f` back if none came free), then
    /// spawns `f` with `builder` (an error if no stack could be allocated; the slot is
    /// released again with the dropped membership).
    fn spawn_until<F, T>(&self, builder: Builder, deadline: Option<Instant>, f: F) -> Result<io::Result<Greenlet<T>>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let p = &self.inner;
        if let Some(size) = p.size {
            // FIFO: a newcomer also waits while earlier spawners wait for a slot.
            let mut woken = false;
            while p.running.get() >= size || (!woken && p.slot_waiters.has_live()) {
                woken = hub::with(|h| {
                    wait_in(h, &p.slot_waiters, Wait::Sync(Primitive::PoolSlot, deadline), deadline, || {
                        if self.free_count() > 0 {
                            hub::with(|h| p.slot_waiters.wake_one(h));
                        }
                    })
                });
                if !woken && deadline.is_some_and(|d| Instant::now() >= d) {
                    if p.running.get() >= size {
                        return Err(f);
                    }
                    break;
                }
            }
        }
        p.running.set(p.running.get() + 1);
        let slot = p.members.borrow_mut().join();
        let membership = Membership { pool: p.clone(), slot };
        let spawned = builder.try_spawn(move || {
            let _membership = membership;
            f()
        });
        // On an error the closure, and with it the membership, is already dropped: the
        // slot is free again. Else `spawn` only queued the greenlet: the slot is still
        // this member's.
        if let Ok(g) = &spawned {
            if let Some(m) = p.members.borrow_mut().get_mut(slot) {
                debug_assert!(m.task.is_none(), "pool slot {slot} reused before its task was set");
                m.task = Some(g.task.clone());
            }
        }
        Ok(spawned)
    }

    /// Waits until every greenlet of the pool has finished.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(4);
    /// for _ in 0..8 { pool.spawn(|| greenhub::sleep(std::time::Duration::from_millis(1))); }
    /// pool.join();
    /// assert!(pool.is_empty());
    /// ```
    pub fn join(&self) {
        self.join_until(None);
    }

    /// Waits at most `timeout`; returns whether the pool is empty.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// pool.spawn(|| greenhub::sleep(std::time::Duration::from_millis(50)));
    /// assert!(!pool.join_timeout(std::time::Duration::from_millis(1)));
    /// pool.kill();
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> bool {
        while !self.is_empty() {
            if !hub::with(|h| {
                wait_in(h, &self.inner.join_waiters, Wait::Sync(Primitive::PoolJoin, deadline), deadline, || {})
            }) {
                return self.is_empty();
            }
        }
        true
    }

    /// Kills every greenlet of the pool (without waiting; `join` to wait). Each member is
    /// sent one kill by the pool, ever: one that catches it and goes on is not killed
    /// again by a later `kill` (gevent's `test_kill_fires_once`).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// pool.spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    /// pool.kill();
    /// pool.join();
    /// ```
    pub fn kill(&self) {
        let tasks: Vec<Rc<Task>> = self
            .inner
            .members
            .borrow_mut()
            .in_order()
            .into_iter()
            .filter(|s| !s.dying && s.task.is_some())
            .map(|s| {
                s.dying = true;
                s.task.clone().expect("filtered")
            })
            .collect();
        hub::with(|h| {
            // Called by a member: kill every other one first, the caller (which unwinds at
            // once) last.
            let me = h.current();
            tasks.iter().filter(|t| !Rc::ptr_eq(t, &me)).for_each(|t| h.kill(t));
            if let Some(t) = tasks.iter().find(|t| Rc::ptr_eq(t, &me)) {
                h.kill(t);
            }
        });
    }

    /// Runs `f` on every item in the pool; returns the results in input order.
    ///
    /// # Panics
    /// If `f` panicked for an item (the panic is reported by the hub when it happens and
    /// resumed here; the pool itself stays usable).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(3);
    /// assert_eq!(pool.map(vec!["a", "bb"], |s: &str| s.len()), [1, 2]);
    /// ```
    pub fn map<I, F, T>(&self, items: I, f: F) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        let f = Rc::new(f);
        let handles: Vec<Greenlet<T>> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        handles.into_iter().map(|g| unwrap_outcome(g.get())).collect()
    }

    /// Whether a `spawn` would wait now (no free slot; never for a `Group`).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// assert!(!pool.full());
    /// let g = pool.spawn(|| ());
    /// assert!(pool.full());
    /// g.join();
    /// assert!(!pool.full());
    /// ```
    pub fn full(&self) -> bool {
        self.free_count() == 0
    }

    /// Waits until a `spawn` would not wait (a slot is free), without taking the slot;
    /// returns the number of free slots (gevent's `wait_available`).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(1);
    /// let g = pool.spawn(|| greenhub::sleep(std::time::Duration::from_millis(5)));
    /// assert_eq!(pool.wait_available(), 1); // waited for `g`
    /// assert!(g.ready());
    /// ```
    pub fn wait_available(&self) -> usize {
        let p = &self.inner;
        while self.free_count() == 0 {
            let woken = hub::with(|h| {
                wait_in(h, &p.slot_waiters, Wait::Sync(Primitive::PoolAvailable, None), None, || {
                    if self.free_count() > 0 {
                        hub::with(|h| p.slot_waiters.wake_one(h));
                    }
                })
            });
            if woken && self.free_count() > 0 {
                // Not taking the slot: a spawner waiting behind us may.
                hub::with(|h| p.slot_waiters.wake_one(h));
            }
        }
        self.free_count()
    }

    /// Runs `f` in the pool and returns its value (gevent's `apply`): spawned and waited
    /// for, or, when the caller is itself a member of this pool, run right here (a
    /// member waiting for a slot of its own full pool would wait forever).
    ///
    /// # Panics
    /// If `f` panicked or was killed.
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// assert_eq!(pool.apply(|| 6 * 7), 42);
    /// let p = pool.clone();
    /// let outer = pool.spawn(move || p.apply(|| "nested")); // a member: runs inline
    /// assert_eq!(outer.get(), Ok("nested"));
    /// ```
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> T {
        let me = hub::with(|h| h.current());
        let member = self.inner.members.borrow().contains(&me);
        if member {
            return f();
        }
        unwrap_outcome(self.spawn(f).get())
    }

    /// Spawns `f` in the pool and returns its handle at once (waiting for a slot only
    /// while the pool is full; gevent's `apply_async`).
    ///
    /// ```
    /// let pool = greenhub::pool::Pool::new(2);
    /// let g = pool.apply_async(|| 5);
    /// assert_eq!(g.get(), Ok(5));
    /// ```
    pub fn apply_async<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        self.spawn(f)
    }

    /// Runs `f` on every item in the pool, keeping it busy, and yields the results in
    /// input order (gevent's `imap`).
    ///
    /// # Panics
    /// `next` panics if `f` panicked for that item (as `map`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(3);
    /// let out: Vec<u64> = pool
    ///     .imap(vec![30u64, 10, 20], |ms| { greenhub::sleep(Duration::from_millis(ms)); ms })
    ///     .collect();
    /// assert_eq!(out, [30, 10, 20]);
    /// ```
    pub fn imap<I, F, T>(&self, items: I, f: F) -> Imap<I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        Imap { pool: self.clone(), items: Some(items.into_iter()), f: Rc::new(f), in_flight: VecDeque::new() }
    }

    /// Runs `f` on every item in the pool; yields the results as they complete.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenhub::pool::Pool::new(3);
    /// let done: Vec<u64> = pool
    ///     .imap_unordered(vec![30u64, 10, 20], |ms| { greenhub::sleep(Duration::from_millis(ms)); ms })
    ///     .collect();
    /// assert_eq!(done, [10, 20, 30]);
    /// ```
    pub fn imap_unordered<I, F, T>(&self, items: I, f: F) -> ImapUnordered<I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        ImapUnordered {
            pool: self.clone(),
            items: Some(items.into_iter()),
            f: Rc::new(f),
            results: Rc::new(Queue::unbounded()),
            in_flight: 0,
        }
    }
}

/// The iterator of [`Pool::imap`]: results in input order.
pub struct Imap<It, F, T: 'static> {
    pool: Pool,
    items: Option<It>,
    f: Rc<F>,
    /// Spawned, in input order.
    in_flight: VecDeque<Greenlet<T>>,
}

impl<It, F, T> fmt::Debug for Imap<It, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap").field("in_flight", &self.in_flight.len()).finish()
    }
}

impl<It, F, T> Iterator for Imap<It, F, T>
where
    It: Iterator,
    It::Item: 'static,
    F: Fn(It::Item) -> T + 'static,
    T: 'static,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while let Some(item) = next_to_start(&self.pool, &mut self.items, self.in_flight.len()) {
            let f = self.f.clone();
            self.in_flight.push_back(self.pool.spawn(move || f(item)));
        }
        let first = self.in_flight.pop_front()?;
        Some(unwrap_outcome(first.get()))
    }
}

/// The next item `imap`/`imap_unordered` start, keeping the pool busy: one while a slot
/// is free, or while nothing of theirs runs (`None` when it should wait, or is done).
fn next_to_start<It: Iterator>(pool: &Pool, items: &mut Option<It>, in_flight: usize) -> Option<It::Item> {
    let it = items.as_mut()?;
    if in_flight > 0 && pool.full() {
        return None;
    }
    let next = it.next();
    if next.is_none() {
        *items = None;
    }
    next
}

fn unwrap_outcome<T>(r: Result<T, GreenletError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("a pooled greenlet failed: {e}"),
    }
}

/// Iterator of [`Pool::imap_unordered`]: results in completion order.
///
/// ```
/// let pool = greenhub::pool::Pool::new(2);
/// let it = pool.imap_unordered(vec![1, 2, 3], |x: i32| x * x);
/// let mut v: Vec<i32> = it.collect();
/// v.sort();
/// assert_eq!(v, [1, 4, 9]);
/// ```
pub struct ImapUnordered<It, F, T> {
    pool: Pool,
    items: Option<It>,
    f: Rc<F>,
    results: Rc<Queue<Result<T, GreenletError>>>,
    in_flight: usize,
}

impl<It, F, T> fmt::Debug for ImapUnordered<It, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered").field("in_flight", &self.in_flight).finish()
    }
}

/// Reports a task's result, or its failure if it unwinds first.
struct Report<T: 'static> {
    results: Rc<Queue<Result<T, GreenletError>>>,
    sent: bool,
}

impl<T: 'static> Drop for Report<T> {
    fn drop(&mut self) {
        if !self.sent {
            let why = if std::thread::panicking() { "panicked" } else { "was killed" };
            let _ = self.results.try_put(Err(GreenletError::Panicked(format!("a pooled greenlet {why}"))));
        }
    }
}

impl<It, F, T> Iterator for ImapUnordered<It, F, T>
where
    It: Iterator,
    It::Item: 'static,
    F: Fn(It::Item) -> T + 'static,
    T: 'static,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        while let Some(item) = next_to_start(&self.pool, &mut self.items, self.in_flight) {
            let (f, results) = (self.f.clone(), self.results.clone());
            self.pool.spawn(move || {
                let mut report = Report { results, sent: false };
                let v = f(item);
                report.sent = report.results.try_put(Ok(v)).is_ok();
            });
            self.in_flight += 1;
        }
        if self.in_flight == 0 {
            return None;
        }
        self.in_flight -= 1;
        Some(unwrap_outcome(self.results.get()))
    }
}
