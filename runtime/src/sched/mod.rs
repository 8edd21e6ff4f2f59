//! The scheduler core: the per-thread hub and what it is made of.
//!
//! Dependencies flow one way, from the hub at the centre out to leaves that import
//! nothing above them:
//!
//! ```text
//!                 hub  (run queue, live table, loop, cancellation)
//!      ┌────────┬──┴─────┬─────────┬─────────┐
//!    park    reactor   remote    unwind     timer::guard
//!   (tokens,  (fds)   (other      (kill /
//!   wait                threads)   timeout
//!   queues)                        throws)
//!      └────────┴────────┴────┬────┴─────────┘
//!                           task  (a greenlet's state and its transitions)
//!                     ┌───────┴────────┐
//!                   coro             timer (the heap)
//!                     │
//!                   stack  →  sys (mmap, guard pages)
//! ```
//!
//! Everything user-facing (spawn, sleep, queues, ...) lives outside this folder and
//! reaches the core through `hub::with` and the transitions of `Hub` and `Task`.

pub(crate) mod coro;
pub(crate) mod hub;
pub(crate) mod park;
pub(crate) mod reactor;
pub(crate) mod remote;
pub(crate) mod stack;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod unwind;
