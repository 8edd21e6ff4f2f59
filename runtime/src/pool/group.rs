//! `Group`: an unbounded pool (gevent.pool.Group).

use std::fmt;
use std::ops::Deref;

use super::Pool;

/// A [`Pool`] without a size limit: `spawn` never waits. Everything else (join, kill,
/// map, imap_unordered) is the pool's.
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
}

impl Deref for Group {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
    }
}
