//! Diagnostics: the blocking detector (`monitor`), panic reports (`panic`), the optional
//! `tracing` events (`log`) and the hub's dump and counters (`dump`).

mod dump;
pub(crate) mod log;
pub(crate) mod monitor;
pub(crate) mod panic;
