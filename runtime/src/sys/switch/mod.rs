//! The context switch: save the running context's stack pointer, resume another one.
//!
//! A context is a stack pointer. A suspended context's stack holds, from that pointer
//! up: the address to resume at, then its saved `rbx` and `rbp`; every other register
//! the compiler keeps live across a switch it saves itself, because the switch tells it
//! they are clobbered. So switching costs a few stores and loads and one indirect jump,
//! from any greenlet straight to any other (symmetric; corosensei's coroutines are
//! asymmetric: resume and suspend, two switches per hand-over through a scheduler).
//!
//! Only x86-64 is implemented; other architectures stop at compile time.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{prepare, switch};

#[cfg(not(target_arch = "x86_64"))]
compile_error!("greenhub's context switch is implemented for x86-64 only (see docs/architecture.md)");
