//! Platform-specific cooperative types.

pub mod unix;
