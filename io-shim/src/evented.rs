//! A greenhub socket: a non-blocking std socket and its hub registration, whose
//! operations all run the runtime's one retry loop ([`Registration::retry`]: try the
//! syscall, and on `WouldBlock` park on the fd's readiness, with the socket's timeout).

use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenhub_runtime::{Interest, Registration};

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

fn deadline(t: Option<Duration>) -> Option<Instant> {
    t.and_then(|t| Instant::now().checked_add(t))
}

impl<S: AsRawFd + AsFd> Evented<S> {
    /// Registers `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: S) -> io::Result<Evented<S>> {
        let reg = Registration::new(io.as_fd())?;
        // `io` is dropped right after `reg` (field order), closing the fd, unless
        // `into_inner` hands it on (which withdraws this).
        reg.set_closes_with_fd(true);
        Ok(Evented { reg, io, read_timeout: Cell::new(None), write_timeout: Cell::new(None) })
    }

    /// Takes over a std socket: makes it non-blocking and registers it.
    pub(crate) fn from_std(io: S) -> io::Result<Rc<Evented<S>>> {
        socket2::SockRef::from(&io).set_nonblocking(true)?;
        Ok(Rc::new(Evented::new(io)?))
    }

    /// Gives the socket back, deregistered and blocking again; fails while other
    /// handles (`try_clone`) share it.
    pub(crate) fn into_std(this: Rc<Evented<S>>) -> io::Result<S> {
        let ev = Rc::try_unwrap(this)
            .map_err(|_| io::Error::other("into_std: other handles of this socket exist (try_clone)"))?;
        let io = ev.into_inner();
        socket2::SockRef::from(&io).set_nonblocking(false)?;
        Ok(io)
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
        reg.set_closes_with_fd(false); // the fd lives on: deregister it properly
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
    #[inline]
    pub(crate) fn read_with<R>(&self, op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.read_until(deadline(self.read_timeout.get()), op)
    }

    /// Like [`Evented::read_with`] with an explicit deadline.
    #[inline]
    pub(crate) fn read_until<R>(
        &self,
        deadline: Option<Instant>,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        self.reg.retry(Interest::READABLE, deadline, || op(&self.io))
    }

    /// A stream read into a buffer of `len` bytes: like [`Evented::read_with`], and a short
    /// read (fewer bytes than asked, but not end of stream) marks the socket drained, so
    /// the next read parks at once instead of making a syscall that would fail.
    pub(crate) fn read_stream(&self, len: usize, op: impl FnMut(&S) -> io::Result<usize>) -> io::Result<usize> {
        let n = self.read_with(op)?;
        if n > 0 && n < len {
            self.reg.clear_ready(Interest::READABLE);
        }
        Ok(n)
    }

    /// Runs a writing operation, parking on writability while it would block.
    #[inline]
    pub(crate) fn write_with<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.reg.retry(Interest::WRITABLE, deadline(self.write_timeout.get()), || op(&self.io))
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

/// `AsRawFd` and `AsFd` for a socket type whose `inner` is an `Rc<Evented<_>>`.
macro_rules! impl_fd {
    ($($t:ty),*) => {$(
        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.inner.fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.inner.get_ref().as_fd()
            }
        }
    )*};
}

/// `Read` and `Write` for a stream type and its shared reference, all going through
/// the `Evented` retry loop (a short read marks the socket drained).
macro_rules! impl_stream_io {
    ($($t:ty),*) => {$(
        impl std::io::Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let len = buf.len();
                self.inner.read_stream(len, |mut s| std::io::Read::read(&mut s, buf))
            }
            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                self.inner.read_with(|mut s| std::io::Read::read_vectored(&mut s, bufs))
            }
        }

        impl std::io::Write for &$t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.inner.write_with(|mut s| std::io::Write::write(&mut s, buf))
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.inner.write_with(|mut s| std::io::Write::write_vectored(&mut s, bufs))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }
            fn read_vectored(&mut self, bufs: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    )*};
}

pub(crate) use {impl_fd, impl_stream_io};
