//! Queues between greenlets of one hub: gevent.queue.

mod blocking;
mod joinable;
mod order;

pub use blocking::{Iter, LifoQueue, PriorityQueue, Queue};
pub use joinable::{JoinableQueue, TaskDoneTooOften};
pub use order::{Fifo, Lifo, Order, Priority};
