//! The cross-thread machinery under channels, `sync::shared`, remote greenlets and the
//! remote queue: waiters that any thread can claim and wake, their lists, the doorbell
//! handshake, and the `std`/`loom` switch for model checking.

pub(crate) mod doorbell;
pub(crate) mod list;
pub(crate) mod loom;
pub(crate) mod wait;
pub(crate) mod waiter;

#[cfg(all(test, loom))]
mod tests;
