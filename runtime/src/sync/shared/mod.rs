//! `Send + Sync` twins of [`Event`](crate::sync::Event) and
//! [`Semaphore`](crate::sync::Semaphore), for greenlets on different hubs and plain
//! threads (gevent 20.12+ allows its `Event` and `Semaphore` across threads).
//!
//! The methods are those of the single-hub types. A waiting greenlet parks on its own
//! hub and is woken through that hub's remote queue; a thread without a hub blocks.
//! They cost a lock and, to wake a waiter on another hub, a remote-queue push: within
//! one hub, the `sync` types are cheaper.
//!
//! ```
//! use std::sync::Arc;
//! use greenhub::sync::shared::Event;
//! let rt = greenhub::Runtime::new(2).unwrap();
//! let go = Arc::new(Event::new());
//! let waiters: Vec<_> = (0..2)
//!     .map(|hub| {
//!         let go = go.clone();
//!         rt.spawn_on(hub, move || { go.wait(); greenhub::Runtime::current_hub() })
//!     })
//!     .collect();
//! go.set(); // from this plain thread
//! let hubs: Vec<_> = waiters.into_iter().map(|w| w.get().unwrap()).collect();
//! assert_eq!(hubs, [Some(0), Some(1)]);
//! ```

mod event;
mod semaphore;

pub use event::Event;
pub use semaphore::{Semaphore, SemaphoreGuard};
