//! Platform code, in one place (as mio keeps its `sys/`): everything greenhub asks of the
//! operating system beyond what std and mio offer. Only Linux is implemented (`lib.rs`
//! stops other targets at compile time with a message saying so):
//!
//! - `mem`: the mappings behind greenlet stacks (`mmap` with `MAP_NORESERVE`, huge pages
//!   off, guard pages through `MADV_GUARD_INSTALL` or `mprotect`, `MADV_DONTNEED`);
//! - `overflow`: the `SIGSEGV`/`SIGBUS` handler on an alternate signal stack that reports
//!   a greenlet's stack overflow by name;
//! - `switch`: the context switch between greenlet stacks (per architecture).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{mem, overflow};
pub(crate) mod switch;
