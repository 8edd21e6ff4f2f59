//! greenhub's std-shaped cooperative I/O: `net`, `thread::sleep`, name resolution and
//! servers, built on the runtime's `wait_readable`/`wait_writable`.
//!
//! Porting code from `std` is a change of `use` lines ("patch by import").
