//! `TcpListener` and `TcpStream`: std's API, cooperative.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{each_addr, ToSocketAddrs};
use crate::evented::{impl_fd, impl_stream_io, Evented};
use crate::sys::fd::{accept_nonblocking, inet};

/// Backlog of listening sockets.
pub(crate) const BACKLOG: i32 = 1024;

/// A TCP connection whose blocking calls park the greenlet instead of the thread.
///
/// Same API as [`std::net::TcpStream`]; `Read` and `Write` are implemented for
/// `TcpStream` and `&TcpStream`. [`TcpStream::try_clone`] gives another handle to the
/// same registered socket (it shares timeouts, as std's clones share socket options);
/// the socket closes when the last handle drops — also when the greenlet holding it is
/// killed in the middle of a read. Two greenlets may wait on one stream: both are woken
/// by readiness, one gets the data, the other waits again.
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenhub::spawn(move || {
///     let (mut s, _) = listener.accept().unwrap();
///     let mut buf = [0u8; 5];
///     s.read_exact(&mut buf).unwrap();
///     s.write_all(&buf).unwrap();
/// });
/// let mut c = TcpStream::connect(addr).unwrap();
/// c.write_all(b"hello").unwrap();
/// let mut back = [0u8; 5];
/// c.read_exact(&mut back).unwrap();
/// assert_eq!(&back, b"hello");
/// server.join();
/// ```
#[derive(Clone)]
pub struct TcpStream {
    inner: Rc<Evented<std::net::TcpStream>>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(a) = self.local_addr() {
            d.field("addr", &a);
        }
        if let Ok(a) = self.peer_addr() {
            d.field("peer", &a);
        }
        d.field("fd", &self.inner.fd()).finish()
    }
}

impl TcpStream {
    fn wrap(s: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: Rc::new(Evented::new(s)?) })
    }

    /// Connects to the first address that accepts (names resolve cooperatively).
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(&addr, |a| connect_addr(a, None))
    }

    /// Connects to `addr`, giving up with [`io::ErrorKind::TimedOut`] after `timeout`.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let s = greenhub::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1));
    /// assert!(s.is_ok());
    /// ```
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        connect_addr(addr, Instant::now().checked_add(timeout))
    }

    /// Takes over a std stream (made non-blocking and registered with the hub).
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = greenhub::net::TcpStream::from_std(s).unwrap();
    /// assert!(s.peer_addr().is_ok());
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { inner: Evented::from_std(stream)? })
    }

    /// Gives the socket back as a blocking std stream. Fails (returning nothing) while
    /// other handles from [`TcpStream::try_clone`] exist.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let std_stream = s.into_std().unwrap();
    /// assert!(std_stream.peer_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        Evented::into_std(self.inner)
    }

    /// The remote address.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Shuts down reading, writing or both.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.shutdown(std::net::Shutdown::Write).unwrap();
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// Another handle to the same socket (same registration, same timeouts).
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let other = s.try_clone().unwrap();
    /// assert_eq!(other.local_addr().unwrap(), s.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(self.clone())
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.inner.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(false).unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.inner.get_ref().nodelay()
    }

    /// Sets the IP time-to-live.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(64).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 64);
    /// ```
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.inner.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_ttl(32).unwrap();
    /// assert_eq!(s.ttl().unwrap(), 32);
    /// ```
    pub fn ttl(&self) -> io::Result<u32> {
        self.inner.get_ref().ttl()
    }

    /// A read that waits longer than this fails with [`io::ErrorKind::TimedOut`]
    /// (`None`: wait forever; a zero duration is `InvalidInput`, as in std).
    ///
    /// ```
    /// use std::io::Read;
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(std::time::Duration::from_millis(10))).unwrap();
    /// let err = s.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(t)
    }

    /// Like [`TcpStream::set_read_timeout`], for writes.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(t)
    }

    /// The read timeout.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.read_timeout())
    }

    /// The write timeout.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.inner.write_timeout())
    }

    /// Reads without consuming, waiting for data like `read`.
    ///
    /// ```
    /// use std::io::Write;
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut srv, _) = l.accept().unwrap();
    /// srv.write_all(b"hey").unwrap();
    /// let mut buf = [0u8; 3];
    /// assert_eq!(s.peek(&mut buf).unwrap(), 3);
    /// assert_eq!(&buf, b"hey");
    /// ```
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.peek(buf))
    }

    /// Takes the socket's pending error (`SO_ERROR`).
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get_ref().take_error()
    }

    /// Always `Ok`: greenhub sockets are non-blocking underneath and block the greenlet.
    ///
    /// ```
    /// # let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let s = greenhub::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nonblocking(true).unwrap(); // a no-op: reads still park the greenlet
    /// ```
    pub fn set_nonblocking(&self, _nonblocking: bool) -> io::Result<()> {
        Ok(())
    }
}

fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(*addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    let pending = match sock.connect(&(*addr).into()) {
        Ok(()) => false,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => true,
        Err(e) => return Err(e),
    };
    let stream = TcpStream::wrap(std::net::TcpStream::from(sock))?;
    if pending {
        stream.inner.wait_writable(deadline)?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    Ok(stream)
}

impl_stream_io!(TcpStream);
impl_fd!(TcpStream, TcpListener);

/// A listening TCP socket whose `accept` parks the greenlet.
///
/// `bind` sets `SO_REUSEADDR` and a backlog of 1024.
///
/// ```
/// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// assert!(l.local_addr().unwrap().port() > 0);
/// ```
#[derive(Clone)]
pub struct TcpListener {
    inner: Rc<Evented<std::net::TcpListener>>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener").field("addr", &self.local_addr().ok()).field("fd", &self.inner.fd()).finish()
    }
}

impl TcpListener {
    /// Binds to the first address that works (names resolve cooperatively).
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert_ne!(l.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(&addr, |a| {
            let sock = Socket::new(Domain::for_address(*a), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
            sock.set_reuse_address(true)?;
            sock.bind(&(*a).into())?;
            sock.listen(BACKLOG)?;
            TcpListener::wrap(std::net::TcpListener::from(sock))
        })
    }

    fn wrap(l: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: Rc::new(Evented::new(l)?) })
    }

    /// Takes over a std listener (made non-blocking and registered).
    ///
    /// ```
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = greenhub::net::TcpListener::from_std(std_listener).unwrap();
    /// assert!(l.local_addr().is_ok());
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { inner: Evented::from_std(listener)? })
    }

    /// Gives the socket back as a blocking std listener (fails while clones exist).
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_listener = l.into_std().unwrap();
    /// assert!(std_listener.local_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Evented::into_std(self.inner)
    }

    /// Waits for a connection.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let c = greenhub::spawn(move || greenhub::net::TcpStream::connect(addr).is_ok());
    /// let (_stream, peer) = l.accept().unwrap(); // parks until the client connects
    /// assert!(peer.ip().is_loopback());
    /// assert_eq!(c.get(), Ok(true));
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = self.inner.read_with(|l| accept_nonblocking(l.as_raw_fd()))?;
        Ok((TcpStream::wrap(std::net::TcpStream::from(fd))?, inet(&addr)?))
    }

    /// Accepts a connection if one is pending, without waiting (`WouldBlock` if none).
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let e = l.try_accept().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    /// ```
    pub fn try_accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, addr) = accept_nonblocking(self.inner.fd())?;
        Ok((TcpStream::wrap(std::net::TcpStream::from(fd))?, inet(&addr)?))
    }

    /// An endless iterator of accepted connections.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let _c = greenhub::spawn(move || greenhub::net::TcpStream::connect(addr).unwrap());
    /// let first = l.incoming().next().unwrap();
    /// assert!(first.is_ok());
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Another handle to the same listening socket.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l2 = l.try_clone().unwrap();
    /// assert_eq!(l2.local_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(self.clone())
    }

    /// Takes the socket's pending error.
    ///
    /// ```
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.take_error().unwrap().is_none());
    /// ```
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.inner.get_ref().take_error()
    }
}

/// Iterator of [`TcpListener::incoming`].
///
/// ```
/// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = l.local_addr().unwrap();
/// let _c = greenhub::spawn(move || greenhub::net::TcpStream::connect(addr).unwrap());
/// for conn in l.incoming().take(1) {
///     assert!(conn.unwrap().peer_addr().is_ok());
/// }
/// ```
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}
