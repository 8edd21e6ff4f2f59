//! Linux: stack mappings and the stack overflow report.

pub(crate) mod mem;
pub(crate) mod overflow;
