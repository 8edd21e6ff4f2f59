//! `UdpSocket`: std's API, cooperative.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::addr::{each_addr, ToSocketAddrs};
use crate::evented::{impl_fd, Evented};

/// A UDP socket whose blocking calls park the greenlet.
///
/// ```
/// use greenhub::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b_addr = b.local_addr().unwrap();
/// let echo = greenhub::spawn(move || {
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).unwrap();
///     b.send_to(&buf[..n], from).unwrap();
/// });
/// a.send_to(b"ping", b_addr).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, _) = a.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// echo.join();
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    inner: Rc<Evented<std::net::UdpSocket>>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket").field("addr", &self.local_addr().ok()).field("fd", &self.inner.fd()).finish()
    }
}

impl UdpSocket {
    /// Binds to the first address that works.
    ///
    /// ```
    /// let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(u.local_addr().unwrap().port() > 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| {
            let sock = Socket::new(Domain::for_address(*a), Type::DGRAM.nonblocking().cloexec(), Some(Protocol::UDP))?;
            sock.bind(&(*a).into())?;
            Ok(UdpSocket { inner: Rc::new(Evented::new(std::net::UdpSocket::from(sock))?) })
        })
    }

    /// Takes over a std socket.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let u = greenhub::net::UdpSocket::from_std(s).unwrap();
    /// assert!(u.local_addr().is_ok());
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket { inner: Evented::from_std(socket)? })
    }

    /// Gives the socket back as a blocking std socket (fails while clones exist).
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = u.into_std().unwrap();
    /// assert!(s.local_addr().is_ok());
    /// ```
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        Evented::into_std(self.inner)
    }

    /// Sends a datagram to `addr` (names resolve cooperatively).
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let me = u.local_addr().unwrap();
    /// assert_eq!(u.send_to(b"x", me).unwrap(), 1);
    /// ```
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        each_addr(&addr, |a| self.inner.write_with(|s| s.send_to(buf, a)))
    }

    /// Waits for a datagram.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let me = u.local_addr().unwrap();
    /// u.send_to(b"to myself", me).unwrap();
    /// let mut buf = [0u8; 16];
    /// let (n, from) = u.recv_from(&mut buf).unwrap();
    /// assert_eq!((&buf[..n], from), (&b"to myself"[..], me));
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.inner.read_with(|s| s.recv_from(buf))
    }

    /// Sets the default peer of `send`/`recv`.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let me = u.local_addr().unwrap();
    /// u.connect(me).unwrap();
    /// assert_eq!(u.peer_addr().unwrap(), me);
    /// ```
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.inner.get_ref().connect(a))
    }

    /// Sends to the connected peer.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// u.connect(u.local_addr().unwrap()).unwrap();
    /// assert_eq!(u.send(b"hi").unwrap(), 2);
    /// ```
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write_with(|s| s.send(buf))
    }

    /// Waits for a datagram from the connected peer.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// u.connect(u.local_addr().unwrap()).unwrap();
    /// u.send(b"hi").unwrap();
    /// let mut buf = [0u8; 4];
    /// assert_eq!(u.recv(&mut buf).unwrap(), 2);
    /// ```
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read_with(|s| s.recv(buf))
    }

    /// Like [`crate::net::TcpStream::set_read_timeout`].
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// u.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// let e = u.recv_from(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_read_timeout(t)
    }

    /// Like [`crate::net::TcpStream::set_write_timeout`].
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// u.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// ```
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.inner.set_write_timeout(t)
    }

    /// The local address.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(u.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// The connected peer.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(u.peer_addr().is_err()); // not connected
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// u.set_broadcast(true).unwrap();
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.inner.get_ref().set_broadcast(on)
    }

    /// Another handle to the same socket.
    ///
    /// ```
    /// # let u = greenhub::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let u2 = u.try_clone().unwrap();
    /// assert_eq!(u2.local_addr().unwrap(), u.local_addr().unwrap());
    /// ```
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(self.clone())
    }
}

impl_fd!(UdpSocket);
