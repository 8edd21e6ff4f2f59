//! Linux: fd helpers.

pub(crate) mod fd;
