//! Queues between greenlets of one hub: gevent.queue.

mod joinable;
mod order;
#[allow(clippy::module_inception)]
mod queue;

pub use joinable::{JoinableQueue, TaskDoneTooOften};
pub use order::{Fifo, Lifo, Order, Priority};
pub use queue::{Iter, LifoQueue, PriorityQueue, Queue};
