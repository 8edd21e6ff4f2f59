//! One message in flight on one connection: write it, read the echo back, verify every
//! byte as it arrives. Non-blocking; `drive` is called on each readiness event.

use std::io::{self, ErrorKind, Read, Write};

use mio::net::TcpStream;

use crate::pattern::Pattern;

/// What `drive` got to.
pub enum Progress {
    /// Waiting for the socket (the last read said `WouldBlock`).
    Pending,
    /// The whole echo arrived and matched.
    Done,
    /// The server closed the connection before the echo was complete.
    Closed,
    /// The server sent a byte that is not the next one sent (or more than was sent).
    Mismatch,
    /// A socket error.
    Failed(io::Error),
}

/// The message in flight and how far it got.
pub struct Exchange {
    msg: Vec<u8>,
    written: usize,
    read: usize,
}

impl Exchange {
    pub fn new(size: usize) -> Exchange {
        Exchange { msg: vec![0; size], written: size, read: size }
    }

    /// Starts the next message: the next `size` bytes of `pattern`.
    pub fn start(&mut self, pattern: &mut Pattern) {
        pattern.fill(&mut self.msg);
        self.written = 0;
        self.read = 0;
    }

    /// Writes what is left of the message and reads what has come back, until the socket
    /// would block or the echo is complete. `verified` counts the bytes checked.
    pub fn drive(&mut self, stream: &mut TcpStream, scratch: &mut [u8], verified: &mut u64) -> Progress {
        debug_assert!(self.read <= self.written && self.written <= self.msg.len());
        loop {
            while self.written < self.msg.len() {
                match stream.write(&self.msg[self.written..]) {
                    Ok(0) => return Progress::Failed(ErrorKind::WriteZero.into()),
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Progress::Failed(e),
                }
            }
            match stream.read(scratch) {
                Ok(0) => return Progress::Closed,
                Ok(n) => {
                    let end = self.read + n;
                    if end > self.written || scratch[..n] != self.msg[self.read..end] {
                        return Progress::Mismatch;
                    }
                    self.read = end;
                    *verified += n as u64;
                    if self.read == self.msg.len() {
                        return Progress::Done;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(e),
            }
        }
    }
}

/// Whether a non-blocking connect has finished: `Ok(true)` connected, `Ok(false)` still
/// in progress (a spurious event), `Err` refused or failed.
pub fn connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
