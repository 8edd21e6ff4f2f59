//! `Group`: an unbounded pool (gevent.pool.Group).

use std::fmt;
use std::time::Duration;

use super::{Imap, ImapUnordered, Pool};
use crate::greenlet::Greenlet;

/// A [`Pool`] without a size limit: `spawn` never waits. Its methods are the pool's
/// (each delegates; a group is never `full`).
///
/// ```
/// let group = greenhub::pool::Group::new();
/// for i in 0..3 { group.spawn(move || i); }
/// group.join();
/// assert!(group.is_empty());
/// ```
#[derive(Clone)]
pub struct Group {
    pool: Pool,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.pool.len()).finish()
    }
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Group {
    /// An empty group.
    ///
    /// ```
    /// assert!(greenhub::pool::Group::new().is_empty());
    /// ```
    pub fn new() -> Group {
        Group { pool: Pool::with_size(None) }
    }

    /// The group as a [`Pool`] with no size limit, for code that takes either.
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let pool: &greenhub::pool::Pool = group.as_pool();
    /// assert_eq!(pool.free_count(), usize::MAX);
    /// ```
    pub fn as_pool(&self) -> &Pool {
        &self.pool
    }

    /// Always `false`: a group has no size limit (gevent's `Group.full()`).
    pub fn full(&self) -> bool {
        false
    }

    /// See [`Pool::len`].
    pub fn len(&self) -> usize {
        self.pool.len()
    }

    /// See [`Pool::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.pool.is_empty()
    }

    /// See [`Pool::spawn`] (a group never waits for a free slot).
    pub fn spawn<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.pool.spawn(f)
    }

    /// See [`Pool::spawn_with`].
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let g = group.spawn_with(greenhub::Builder::new().stack_size(16 * 1024), || 7);
    /// assert_eq!(g.get(), Ok(7));
    /// ```
    pub fn spawn_with<F, T>(&self, builder: crate::Builder, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.pool.spawn_with(builder, f)
    }

    /// See [`Pool::try_spawn_with`].
    ///
    /// ```
    /// let group = greenhub::pool::Group::new();
    /// let e = group.try_spawn_with(greenhub::Builder::new().stack_size(usize::MAX), || 1).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(group.is_empty());
    /// ```
    pub fn try_spawn_with<F, T>(&self, builder: crate::Builder, f: F) -> std::io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.pool.try_spawn_with(builder, f)
    }

    /// See [`Pool::join`].
    pub fn join(&self) {
        self.pool.join()
    }

    /// See [`Pool::join_timeout`].
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.pool.join_timeout(timeout)
    }

    /// See [`Pool::kill`].
    pub fn kill(&self) {
        self.pool.kill()
    }

    /// See [`Pool::map`] (a group never waits for a free slot).
    pub fn map<I, F, T>(&self, items: I, f: F) -> Vec<T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        self.pool.map(items, f)
    }

    /// See [`Pool::apply`] (a group never waits for a free slot).
    pub fn apply<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> T {
        self.pool.apply(f)
    }

    /// See [`Pool::apply_async`] (a group never waits for a free slot).
    pub fn apply_async<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        self.pool.apply_async(f)
    }

    /// See [`Pool::imap`] (a group never waits for a free slot).
    pub fn imap<I, F, T>(&self, items: I, f: F) -> Imap<I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        self.pool.imap(items, f)
    }

    /// See [`Pool::imap_unordered`] (a group never waits for a free slot).
    pub fn imap_unordered<I, F, T>(&self, items: I, f: F) -> ImapUnordered<I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> T + 'static,
        T: 'static,
    {
        self.pool.imap_unordered(items, f)
    }

    /// Always `usize::MAX`: a group has no size limit. See [`Pool::free_count`].
    pub fn free_count(&self) -> usize {
        self.pool.free_count()
    }

    /// Returns at once (gevent's `Group.wait_available`). See [`Pool::wait_available`].
    pub fn wait_available(&self) -> usize {
        self.pool.wait_available()
    }

    /// Never times out: a group always has room. See [`Pool::spawn_timeout`].
    pub fn spawn_timeout<F, T>(&self, timeout: Duration, f: F) -> Result<Greenlet<T>, F>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.pool.spawn_timeout(timeout, f)
    }
}
