//! The scheduler core: the per-thread hub and what it is made of.
//!
//! Files import only files on their own layer or below (checked by reading the `use`
//! lines; the layers are the order a contributor reads them in):
//!
//! ```text
//!  4  hub/        Hub: the run queue, the live table, the loop, cancellation
//!                 (mod.rs, current.rs, live.rs, run.rs, cancel.rs)
//!  3  reactor.rs  fds            remote.rs  other threads     unwind.rs  throwing
//!     park.rs     waking tokens and wait queues            timer/guard.rs  armed waits
//!  2  task.rs     Task and its transitions; the Token and WaitQueue types
//!     ready.rs    the intrusive run queue (linked through the tasks)
//!     waiters.rs  the greenlets waiting on one direction of an fd (first inline)
//!  1  context.rs  where a greenlet resumes  →  sys/switch   timer/mod.rs  the timer heap
//!     body.rs     an unstarted greenlet's closure, stored inline
//!  0  stack.rs    pooled stacks  →  sys/ (mmap, guard pages)
//!     fd_index.rs fd number → the reactor's fd-table slot
//! ```
//!
//! Layer 3 files and the hub use each other (a park calls into the hub, the hub's loop
//! wakes parks): they are one layer. The upward edges, on purpose: `task.rs` holds the
//! storage of two user-facing features by type (`link::Links`, `local::Locals`); the
//! hub calls `diag::{monitor, log}` to publish its heartbeat and events, and
//! `reactor.rs` asks `ffi::pending` whether a wait inside `ffi::no_unwind` must end.
//!
//! Everything user-facing (spawn, sleep, queues, ...) lives outside this folder and
//! reaches the core through `hub::with` and the transitions of `Hub` and `Task`.

pub(crate) mod body;
pub(crate) mod context;
pub(crate) mod fd_index;
pub(crate) mod hub;
pub(crate) mod park;
pub(crate) mod reactor;
pub(crate) mod ready;
pub(crate) mod remote;
pub(crate) mod stack;
pub(crate) mod task;
pub(crate) mod timer;
pub(crate) mod unwind;
pub(crate) mod waiters;

#[cfg(test)]
mod tests {
    /// The core's lower layers (stack, coro, the timer heap, task) import nothing from
    /// the layers above them: the diagram at the top of this file, enforced.
    #[test]
    fn lower_layers_import_only_downward() {
        let files: [(&str, u32, &str); 8] = [
            ("stack.rs", 0, include_str!("stack.rs")),
            ("fd_index.rs", 0, include_str!("fd_index.rs")),
            ("context.rs", 1, include_str!("context.rs")),
            ("body.rs", 1, include_str!("body.rs")),
            ("timer/mod.rs", 1, include_str!("timer/mod.rs")),
            ("task.rs", 2, include_str!("task.rs")),
            ("ready.rs", 2, include_str!("ready.rs")),
            ("waiters.rs", 2, include_str!("waiters.rs")),
        ];
        let layer = |path: &str| -> u32 {
            match path {
                p if p.starts_with("stack") || p.starts_with("fd_index") => 0,
                p if p.starts_with("context") || p.starts_with("body") => 1,
                "timer::TimerKey" | "timer::Timers" => 1,
                p if p.starts_with("timer") => 3,
                p if p.starts_with("task") || p.starts_with("ready") || p.starts_with("waiters") => 2,
                p if p.starts_with("hub") => 4,
                _ => 3, // park, reactor, remote, unwind
            }
        };
        for (file, own, text) in files {
            for (at, _) in text.match_indices("crate::sched::") {
                let rest = &text[at + "crate::sched::".len()..];
                let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
                let path = rest[..end].trim_end_matches(':');
                assert!(layer(path) <= own, "{file} (layer {own}) imports sched::{path} (layer {})", layer(path));
            }
            assert!(!text.contains("super::hub") && !text.contains("sched::hub"), "{file} reaches the hub");
        }
    }
}
