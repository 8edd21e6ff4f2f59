//! greenhub: gevent for Rust.
//!
//! Write plain blocking code — `sleep()`, `join()`, socket reads — and run thousands of
//! such flows as greenlets on one OS thread; every call that would block switches to
//! another greenlet through the thread's hub.
//!
//! ```
//! use std::time::Duration;
//! use greenhub::{joinall, sleep, spawn};
//!
//! let foo = spawn(|| { println!("Running in foo"); sleep(Duration::ZERO); println!("Explicit context switch to foo again"); });
//! let bar = spawn(|| { println!("Explicit context to bar"); sleep(Duration::ZERO); println!("Implicit context switch back to bar"); });
//! joinall([&foo, &bar]);
//! ```

#[cfg(feature = "monkey")]
pub use greenhub_io::monkey;
pub use greenhub_io::{net, os, select, server, thread};
pub use greenhub_runtime::*;
