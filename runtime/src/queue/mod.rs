//! Queues between greenlets of one hub: gevent.queue.

mod joinable;
#[allow(clippy::module_inception)]
mod queue;

pub use joinable::{JoinableQueue, TaskDoneTooOften};
pub use queue::{Iter, Queue};
