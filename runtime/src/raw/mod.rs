//! Manual switching, as in Python's `greenlet` module, and generators.
//!
//! These run on the current greenlet's hub thread but are not scheduled by the hub:
//! control moves only when you [`Greenlet::switch`] or [`Generator::resume`].

mod generator;
mod greenlet;

pub use generator::{Generator, Yielder};
pub use greenlet::Greenlet;
