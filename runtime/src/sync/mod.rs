//! Synchronisation between greenlets of one hub: gevent.event and gevent.lock.
//!
//! Waiters are served in FIFO order; `set` and `release` never switch (they only make
//! waiters ready). A waiter that is killed or times out leaves no trace, and a wake-up
//! or permit handed to a waiter that dies before using it is passed on to the next.

mod async_result;
mod event;
mod mutex;
mod rlock;
mod semaphore;
pub mod shared;

pub use async_result::AsyncResult;
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{Semaphore, SemaphoreFull, SemaphoreGuard};
