//! `epoll_wait` for the load generator's loops: a signal's interruption is an empty poll.
//!
//! `benches/interleave.py` stops and continues load generators (SIGSTOP / SIGCONT), and
//! the kernel does not restart an `epoll_wait` after a stop: it returns `EINTR`, which is
//! no error of the run.

use std::io;
use std::time::Duration;

use mio::{Events, Poll};

/// Waits for events up to `timeout`; an interrupted wait returns with none.
pub fn poll(poll: &mut Poll, events: &mut Events, timeout: Option<Duration>) {
    match poll.poll(events, timeout) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => events.clear(),
        Err(e) => panic!("epoll_wait: {e}"),
    }
}
