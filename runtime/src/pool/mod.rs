//! Groups of greenlets with an optional size limit: gevent.pool.

mod group;
#[allow(clippy::module_inception)]
mod pool;

pub use group::Group;
pub use pool::{Imap, ImapUnordered, Pool};
