//! The comparison harness's shared code: the peer echo servers' common rules.
//! The binaries (`src/bin/`) are the load generator, the peers and the in-process
//! comparisons (`multicore`, `async_interop`, `micro`).

pub mod peer;
