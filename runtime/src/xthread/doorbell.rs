//! The handshake that lets producers skip the wake-up syscall while the consumer is busy.
//!
//! A producer pushes onto a queue and then calls [`Doorbell::must_ring`]; the consumer,
//! before it sleeps in its poller, calls [`Doorbell::going_to_sleep`] and then checks the
//! queue once more. This is Dekker's pattern: each side writes its own location (the
//! queue, the flag), issues a `SeqCst` fence, then reads the other's. With both fences,
//! at least one side sees the other's write: either the producer sees the flag and
//! rings (writes the eventfd), or the consumer sees the item and does not sleep. So a
//! push is never stranded while the consumer sleeps, and a busy consumer costs the
//! producer no syscall. Model-checked with loom in `xthread/tests.rs`.

use super::loom::{fence, AtomicBool, Ordering};

/// The consumer's "I may be asleep" flag (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    sleeping: AtomicBool,
}

impl Doorbell {
    /// An awake consumer's doorbell.
    pub(crate) fn new() -> Doorbell {
        Doorbell { sleeping: AtomicBool::new(false) }
    }

    /// The producer's side, after its push: whether it must wake the consumer.
    pub(crate) fn must_ring(&self) -> bool {
        fence(Ordering::SeqCst);
        self.sleeping.load(Ordering::Relaxed)
    }

    /// The consumer's side, before it re-checks the queue and sleeps.
    pub(crate) fn going_to_sleep(&self) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The consumer woke up (producers need not ring until it sleeps again).
    pub(crate) fn awake(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
    }
}
