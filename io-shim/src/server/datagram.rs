//! `DatagramServer`: a UDP server running a handler greenlet per datagram
//! (gevent.server.DatagramServer).

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::{no_stack, Conns, ServerHandle, BACKOFF_MIN};
use crate::net::{ToSocketAddrs, UdpSocket};

/// Largest datagram received whole (the UDP maximum); longer ones are truncated by the
/// kernel.
const MAX_DATAGRAM: usize = 65_536;

/// A UDP server: receives datagrams and runs `handler(data, peer, socket)` in a greenlet
/// of its own for each (optionally at most `n` at once); the handler answers through
/// `socket` (`send_to(reply, peer)`).
///
/// ```
/// use greenhub::{net::UdpSocket, server::DatagramServer};
/// let server = DatagramServer::bind("127.0.0.1:0", |data: &[u8], peer, sock: &UdpSocket| {
///     let _ = sock.send_to(&data.to_ascii_uppercase(), peer);
/// }).unwrap().start().unwrap();
/// let c = UdpSocket::bind("127.0.0.1:0").unwrap();
/// c.send_to(b"hello", server.local_addr()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, _) = c.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"HELLO");
/// server.stop(std::time::Duration::from_secs(1));
/// ```
pub struct DatagramServer<H> {
    socket: UdpSocket,
    handler: H,
    max_handlers: Option<usize>,
    stack_size: Option<usize>,
}

impl<H> fmt::Debug for DatagramServer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("socket", &self.socket)
            .field("max_handlers", &self.max_handlers)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}

impl<H> DatagramServer<H>
where
    H: Fn(&[u8], SocketAddr, &UdpSocket) + Clone + 'static,
{
    /// Binds a UDP socket to `addr`.
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let server = DatagramServer::bind("127.0.0.1:0", handler).unwrap();
    /// assert!(server.local_addr().unwrap().port() > 0);
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A, handler: H) -> io::Result<DatagramServer<H>> {
        Ok(DatagramServer::from_socket(UdpSocket::bind(addr)?, handler))
    }

    /// Serves on an already bound socket.
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let server = DatagramServer::from_socket(sock, handler);
    /// # drop(server);
    /// ```
    pub fn from_socket(socket: UdpSocket, handler: H) -> DatagramServer<H> {
        DatagramServer { socket, handler, max_handlers: None, stack_size: None }
    }

    /// Runs at most `n` handlers at once (the receiver waits for a free slot).
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let server = DatagramServer::bind("127.0.0.1:0", handler).unwrap().max_handlers(10);
    /// # drop(server);
    /// ```
    pub fn max_handlers(mut self, n: usize) -> DatagramServer<H> {
        self.max_handlers = Some(n);
        self
    }

    /// Runs each handler on a stack of `bytes` usable bytes; see
    /// [`StreamServer::stack_size`](super::StreamServer::stack_size).
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let server = DatagramServer::bind("127.0.0.1:0", handler).unwrap().stack_size(16 * 1024);
    /// # drop(server);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> DatagramServer<H> {
        self.stack_size = Some(bytes);
        self
    }

    /// The bound address.
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let server = DatagramServer::bind("127.0.0.1:0", handler).unwrap();
    /// assert!(server.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Receives datagrams in the calling greenlet until a fatal socket error.
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let server = DatagramServer::bind("127.0.0.1:0", handler).unwrap();
    /// let g = greenhub::spawn(move || server.serve_forever());
    /// greenhub::yield_now();
    /// g.kill();
    /// ```
    pub fn serve_forever(self) -> io::Result<()> {
        let conns = Conns::new(self.max_handlers, self.stack_size)?;
        receive_loop(&self.socket, &conns, &self.handler)
    }

    /// Receives in a greenlet of its own; the handle stops the server (closing the
    /// socket, then waiting up to a grace period for the handlers).
    ///
    /// ```
    /// # use greenhub::{net::UdpSocket, server::DatagramServer};
    /// # fn handler(_d: &[u8], _p: std::net::SocketAddr, _s: &UdpSocket) {}
    /// let handle = DatagramServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
    /// handle.stop(std::time::Duration::from_millis(10));
    /// ```
    pub fn start(self) -> io::Result<ServerHandle> {
        let addr = self.socket.local_addr()?;
        let conns = Conns::new(self.max_handlers, self.stack_size)?;
        let (socket, handlers, handler) = (self.socket.try_clone()?, conns.clone(), self.handler);
        let receiver = greenhub_runtime::Builder::new()
            .name(format!("DatagramServer {addr}"))
            .spawn(move || receive_loop(&socket, &handlers, &handler));
        Ok(ServerHandle::new(addr, Box::new(self.socket), receiver, conns))
    }
}

fn receive_loop<H>(socket: &UdpSocket, conns: &Conns, handler: &H) -> io::Result<()>
where
    H: Fn(&[u8], SocketAddr, &UdpSocket) + Clone + 'static,
{
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut backoff = BACKOFF_MIN;
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                let data = buf[..n].to_vec();
                let (h, sock) = (handler.clone(), socket.try_clone()?);
                match conns.spawn(move || h(&data, peer, &sock)) {
                    Ok(()) => backoff = BACKOFF_MIN,
                    // Out of memory: this datagram is dropped (UDP may lose it anyway).
                    Err(e) => no_stack("DatagramServer", peer, &e, "datagram dropped", &mut backoff),
                }
            }
            // ICMP errors of earlier replies, reported on this socket: not fatal.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}
