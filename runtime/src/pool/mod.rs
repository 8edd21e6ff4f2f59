//! Groups of greenlets with an optional size limit: gevent.pool.

mod group;
mod limited;
mod members;

pub use group::Group;
pub use limited::{Imap, ImapUnordered, Pool};
