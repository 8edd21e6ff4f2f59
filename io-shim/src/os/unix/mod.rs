//! Unix-specific cooperative types.

pub mod net;
