//! `UnixListener` and `UnixStream`: std's API, cooperative.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use crate::evented::{impl_fd, impl_stream_io, Evented};

/// A Unix stream socket whose blocking calls park the greenlet.
///
/// ```
/// use std::io::{Read, Write};
/// let (a, mut b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
/// let w = greenhub::spawn(move || (&a).write_all(b"hi").unwrap());
/// let mut buf = [0u8; 2];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// w.join();
/// ```
#[derive(Clone)]
pub struct UnixStream {
    inner: Rc<Evented<std::os::unix::net::UnixStream>>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream").field("fd", &self.inner.fd()).finish()
    }
}

impl UnixStream {
    fn wrap(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { inner: Evented::from_std(s)? })
    }

    /// Connects to the socket at `path`.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-c-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s");
    /// # let _ = std::fs::remove_file(&path);
    /// let _l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
    /// assert!(greenhub::os::unix::net::UnixStream::connect(&path).is_ok());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        // A non-blocking Unix connect completes or fails at once, or gives EAGAIN while
        // the listener's backlog is full. No readiness event announces room in someone
        // else's backlog (the unconnected socket is writable all along), so EAGAIN is
        // retried after a pause that doubles up to 50 ms: the thread never blocks.
        let addr = socket2::SockAddr::unix(path.as_ref())?;
        let mut pause = Duration::from_millis(1);
        loop {
            let sock =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM.nonblocking().cloexec(), None)?;
            match sock.connect(&addr) {
                Ok(()) => {
                    return UnixStream::wrap(std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(sock)))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drop(sock);
                    greenhub_runtime::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A connected pair.
    ///
    /// ```
    /// let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::wrap(a)?, UnixStream::wrap(b)?))
    }

    /// Takes over a std stream.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = greenhub::os::unix::net::UnixStream::from_std(a).unwrap();
    /// # drop(a);
    /// ```
    pub fn from_std(s: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::wrap(s)
    }

    /// Shuts down reading, writing or both.
    ///
    /// ```
    /// use std::io::Read;
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!((&b).read(&mut [0u8; 1]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.inner.get_ref().shutdown(how)
    }

    /// The local address.
    ///
    /// ```
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// assert!(a.local_addr().unwrap().as_pathname().is_none()); // unnamed
    /// # drop(b);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// assert!(a.peer_addr().is_ok());
    /// # drop(b);
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Like [`crate::net::TcpStream::set_read_timeout`].
    ///
    /// ```
    /// use std::io::Read;
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!((&a).read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// # drop(b);
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(t)
    }

    /// Like [`crate::net::TcpStream::set_write_timeout`].
    ///
    /// ```
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// a.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// # drop(b);
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(t)
    }

    /// Another handle to the same socket.
    ///
    /// ```
    /// # let (a, b) = greenhub::os::unix::net::UnixStream::pair().unwrap();
    /// let a2 = a.try_clone().unwrap();
    /// # drop((a2, b));
    /// ```
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(self.clone())
    }
}

impl_stream_io!(UnixStream);
impl_fd!(UnixStream, UnixListener);

/// A listening Unix socket whose `accept` parks the greenlet.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("gh-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("sock");
/// let _ = std::fs::remove_file(&path);
/// let l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let c = greenhub::spawn(move || greenhub::os::unix::net::UnixStream::connect(&p).is_ok());
/// let (_s, _) = l.accept().unwrap();
/// assert_eq!(c.get(), Ok(true));
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct UnixListener {
    inner: Rc<Evented<std::os::unix::net::UnixListener>>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener").field("fd", &self.inner.fd()).finish()
    }
}

impl UnixListener {
    /// Binds to `path`.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-b-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
    /// assert!(l.local_addr().unwrap().as_pathname().is_some());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        Ok(UnixListener { inner: Evented::from_std(std::os::unix::net::UnixListener::bind(path)?)? })
    }

    /// Waits for a connection.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-a-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// let c = greenhub::spawn(move || greenhub::os::unix::net::UnixStream::connect(&p).is_ok());
    /// let (_s, _addr) = l.accept().unwrap();
    /// assert_eq!(c.get(), Ok(true));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, a) = self.inner.read_with(|l| l.accept())?;
        Ok((UnixStream::wrap(s)?, a))
    }

    /// An endless iterator of accepted connections.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-i-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// let _c = greenhub::spawn(move || greenhub::os::unix::net::UnixStream::connect(&p).unwrap());
    /// assert!(l.incoming().next().unwrap().is_ok());
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(s, _)| s))
    }

    /// The bound address.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("gh-doc-l-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("s");
    /// # let _ = std::fs::remove_file(&path);
    /// let l = greenhub::os::unix::net::UnixListener::bind(&path).unwrap();
    /// assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }
}
