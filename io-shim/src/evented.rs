//! The one loop every cooperative socket operation runs: try the syscall, and on
//! `WouldBlock` park on the fd's readiness (with the socket's timeout), then retry.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use greenhub_runtime::Registration;

/// A non-blocking socket registered with the current thread's hub.
///
/// Field order matters: the registration is dropped (deregistered) before the socket
/// is closed.
pub(crate) struct Evented<S: AsRawFd> {
    reg: Registration,
    io: S,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
}

impl<S: AsRawFd> fmt::Debug for Evented<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Evented").field("fd", &self.io.as_raw_fd()).finish()
    }
}

#[derive(Clone, Copy)]
enum Dir {
    Read,
    Write,
}

fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.and_then(|t| Instant::now().checked_add(t))
}

impl<S: AsRawFd> Evented<S> {
    /// Registers `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: S) -> io::Result<Evented<S>> {
        let reg = Registration::new(io.as_raw_fd())?;
        Ok(Evented { reg, io, read_timeout: Cell::new(None), write_timeout: Cell::new(None) })
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.io
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }

    /// Gives the socket back (deregistered, still non-blocking).
    pub(crate) fn into_inner(self) -> S {
        let Evented { reg, io, .. } = self;
        drop(reg);
        io
    }

    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.read_timeout.set(t);
        Ok(())
    }

    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.write_timeout.set(t);
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout.get()
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout.get()
    }

    /// Runs a reading operation, parking on readability while it would block.
    pub(crate) fn read_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.read_until(deadline(self.read_timeout.get()), &mut op)
    }

    /// Like [`Evented::read_with`] with an explicit deadline.
    pub(crate) fn read_until<R>(
        &self,
        deadline: Option<Instant>,
        op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.retry(Dir::Read, deadline, op)
    }

    /// The loop: park while the registration says the fd is not ready, run `op`, and
    /// record `WouldBlock` as "not ready" before parking again.
    fn retry<R>(&self, dir: Dir, deadline: Option<Instant>, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        loop {
            let ready = match dir {
                Dir::Read => self.reg.is_readable(),
                Dir::Write => self.reg.is_writable(),
            };
            if !ready {
                match dir {
                    Dir::Read => self.reg.wait_readable(deadline)?,
                    Dir::Write => self.reg.wait_writable(deadline)?,
                }
            }
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match dir {
                    Dir::Read => self.reg.clear_readable(),
                    Dir::Write => self.reg.clear_writable(),
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// A stream read into a buffer of `len` bytes: like [`Evented::read_with`], and a short
    /// read (fewer bytes than asked, but not end of stream) marks the socket drained, so
    /// the next read parks at once instead of making a syscall that would fail.
    pub(crate) fn read_stream(&self, len: usize, op: impl FnMut(&S) -> io::Result<usize>) -> io::Result<usize> {
        let n = self.read_with(op)?;
        if n > 0 && n < len {
            self.reg.clear_readable();
        }
        Ok(n)
    }

    /// Runs a writing operation, parking on writability while it would block.
    pub(crate) fn write_with<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.retry(Dir::Write, deadline(self.write_timeout.get()), op)
    }

    /// Parks until the socket's next readability event or `deadline`.
    pub(crate) fn wait_readable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_readable(deadline)
    }

    /// Parks until the socket is writable (a non-blocking connect finished) or `deadline`.
    pub(crate) fn wait_writable(&self, deadline: Option<Instant>) -> io::Result<()> {
        self.reg.wait_writable(deadline)
    }
}

/// std refuses a zero timeout with `InvalidInput`; so do we.
fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    if t == Some(Duration::ZERO) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
    }
    Ok(())
}
