//! greenhub's std-shaped cooperative I/O: `net`, `os::unix::net`, `thread::sleep`, name
//! resolution and `server::StreamServer`, built on the runtime's fd readiness.
//!
//! Porting code from `std` is a change of `use` lines ("patch by import"):
//!
//! ```
//! use std::io::{Read, Write};
//! use greenhub::net::{TcpListener, TcpStream}; // was: use std::net::{TcpListener, TcpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let clients: Vec<_> = (0..10u8)
//!     .map(|i| greenhub::spawn(move || {
//!         let mut s = TcpStream::connect(addr).unwrap();
//!         s.write_all(&[i]).unwrap();
//!     }))
//!     .collect();
//! let mut got = Vec::new();
//! for _ in 0..10 {
//!     let (mut s, _) = listener.accept().unwrap(); // parks main; the clients run
//!     let mut b = [0u8; 1];
//!     s.read_exact(&mut b).unwrap();
//!     got.push(b[0]);
//! }
//! greenhub::joinall(&clients);
//! got.sort();
//! assert_eq!(got, (0..10).collect::<Vec<u8>>());
//! ```
//!
//! Every socket is non-blocking underneath and registered once with the thread's hub;
//! an operation tries the syscall first and parks the greenlet on `WouldBlock`.
//! Errors are `io::Error`s with std's kinds (`ConnectionRefused`, `TimedOut`, `NotFound`
//! for an unknown host), never panics.
//!
//! Users depend on the facade crate `greenhub`, which re-exports these modules
//! (`greenhub::net`, `greenhub::server`, ...); the examples here use those paths.

mod evented;
#[cfg(feature = "monkey")]
pub mod monkey;
pub mod net;
pub mod os;
pub mod select;
pub mod server;
mod sys;
pub mod thread;
