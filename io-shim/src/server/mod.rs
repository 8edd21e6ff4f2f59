//! Servers: `StreamServer`, a TCP server running a handler greenlet per connection
//! (gevent.server.StreamServer), and [`DatagramServer`], one per datagram
//! (gevent.server.DatagramServer); both stop through a [`ServerHandle`].

mod datagram;
mod workers;
pub use datagram::DatagramServer;
pub use workers::{WorkerServer, WorkersHandle};

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use greenhub_runtime::pool::{Group, Pool};
use greenhub_runtime::{Builder, Greenlet, MAX_STACK_SIZE};

use crate::net::{TcpListener, TcpStream, ToSocketAddrs};

/// Connections accepted in a row before the acceptor lets the handlers run.
const ACCEPT_BATCH: usize = 64;
/// First and longest pause after an accept error such as EMFILE (out of fds).
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A TCP server: accepts connections and runs `handler(stream, peer)` in a greenlet of
/// its own for each, optionally at most `n` at once.
///
/// `bind` sets `SO_REUSEADDR` and a backlog of 1024. The acceptor takes at most 64
/// connections per wake-up before it lets handlers run, and backs off (5 ms doubling to
/// 1 s) on resource errors such as EMFILE instead of spinning.
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::{net::TcpStream, server::StreamServer};
/// let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
///     let mut buf = [0u8; 64];
///     while let Ok(n) = conn.read(&mut buf) {
///         if n == 0 || conn.write_all(&buf[..n]).is_err() { break; }
///     }
/// }).unwrap().start().unwrap();
/// let mut c = TcpStream::connect(server.local_addr()).unwrap();
/// c.write_all(b"echo").unwrap();
/// let mut buf = [0u8; 4];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"echo");
/// drop(c);
/// server.stop(std::time::Duration::from_secs(1));
/// ```
pub struct StreamServer<H> {
    pub(crate) listener: TcpListener,
    pub(crate) handler: H,
    pub(crate) max_connections: Option<usize>,
    pub(crate) stack_size: Option<usize>,
}

impl<H> fmt::Debug for StreamServer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("listener", &self.listener)
            .field("max_connections", &self.max_connections)
            .field("stack_size", &self.stack_size)
            .finish()
    }
}

/// The handlers of a server: the set they belong to (limited or not) and the stack size
/// they are spawned with.
#[derive(Clone)]
pub(crate) struct Conns {
    set: ConnSet,
    stack_size: Option<usize>,
}

#[derive(Clone)]
enum ConnSet {
    Limited(Pool),
    Unlimited(Group),
}

impl Conns {
    /// At most `max` handlers at once, or any number, each on a stack of `stack_size`
    /// usable bytes (the runtime's default when `None`); a size no stack can have is an
    /// `InvalidInput` error here, before the server accepts anything.
    pub(crate) fn new(max: Option<usize>, stack_size: Option<usize>) -> io::Result<Conns> {
        check_stack_size(stack_size)?;
        let set = match max {
            Some(n) => ConnSet::Limited(Pool::new(n)),
            None => ConnSet::Unlimited(Group::new()),
        };
        Ok(Conns { set, stack_size })
    }

    pub(crate) fn pool(&self) -> &Pool {
        match &self.set {
            ConnSet::Limited(p) => p,
            ConnSet::Unlimited(g) => g.as_pool(),
        }
    }

    /// Runs one handler in a greenlet of the set (waiting for a free slot if limited);
    /// an error if no stack could be allocated (then `f` is dropped and its slot free).
    pub(crate) fn spawn(&self, f: impl FnOnce() + 'static) -> io::Result<()> {
        let builder = match self.stack_size {
            Some(bytes) => Builder::new().stack_size(bytes),
            None => Builder::new(),
        };
        self.pool().try_spawn_with(builder, f).map(drop)
    }
}

/// `InvalidInput` for a handler stack size above [`MAX_STACK_SIZE`].
pub(crate) fn check_stack_size(stack_size: Option<usize>) -> io::Result<()> {
    match stack_size {
        Some(bytes) if bytes > MAX_STACK_SIZE => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("handler stack size {bytes} is larger than the maximum of {MAX_STACK_SIZE} bytes"),
        )),
        _ => Ok(()),
    }
}

/// After a handler could not get a stack (its connection or datagram is dropped):
/// reports it and pauses like an accept loop out of fds, so that memory pressure neither
/// spins the loop nor floods stderr.
pub(crate) fn no_stack(server: &str, peer: SocketAddr, e: &io::Error, dropped: &str, backoff: &mut Duration) {
    eprintln!("greenhub: {server}: no stack for the handler of {peer} ({e}); {dropped}");
    greenhub_runtime::sleep(*backoff);
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
}

impl<H> StreamServer<H>
where
    H: Fn(TcpStream, SocketAddr) + Clone + 'static,
{
    /// Binds a listening socket for `handler`.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let server = StreamServer::bind("127.0.0.1:0", handler).unwrap();
    /// assert!(server.local_addr().is_ok());
    /// ```
    pub fn bind<A: ToSocketAddrs>(addr: A, handler: H) -> io::Result<StreamServer<H>> {
        Ok(StreamServer::from_listener(TcpListener::bind(addr)?, handler))
    }

    /// Serves on an existing listener.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let l = greenhub::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let server = StreamServer::from_listener(l, handler);
    /// assert!(server.local_addr().is_ok());
    /// ```
    pub fn from_listener(listener: TcpListener, handler: H) -> StreamServer<H> {
        StreamServer { listener, handler, max_connections: None, stack_size: None }
    }

    /// Runs at most `n` handlers at once; further connections wait in the backlog.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let server = StreamServer::bind("127.0.0.1:0", handler).unwrap().max_connections(100);
    /// # drop(server);
    /// ```
    pub fn max_connections(mut self, n: usize) -> StreamServer<H> {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Runs each handler on a stack of `bytes` usable bytes (rounded up to whole pages,
    /// at least 16 KiB) instead of [`DEFAULT_STACK_SIZE`](greenhub_runtime::DEFAULT_STACK_SIZE).
    ///
    /// A smaller stack is cheaper for a server with many waiting connections whose
    /// handlers are shallow: the kernel maps the stacks' hot pages with fewer page-table
    /// pages (measured in docs/performance.md, seventh pass). A handler that needs more
    /// than its stack hits the guard page below it and the process stops with a stack
    /// overflow report, as a thread would; nothing is corrupted. A size above
    /// [`MAX_STACK_SIZE`] makes `start`, `serve_forever` and `workers` fail with
    /// `InvalidInput`; a handler that cannot get its stack at run time (out of memory)
    /// has its connection closed, is reported on stderr, and the server goes on after a
    /// pause (as on EMFILE).
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let server = StreamServer::bind("127.0.0.1:0", handler).unwrap().stack_size(32 * 1024);
    /// # drop(server);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> StreamServer<H> {
        self.stack_size = Some(bytes);
        self
    }

    /// The bound address.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let server = StreamServer::bind("127.0.0.1:0", handler).unwrap();
    /// assert!(server.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    fn conns(&self) -> io::Result<Conns> {
        Conns::new(self.max_connections, self.stack_size)
    }

    /// Accepts connections in the calling greenlet until a fatal accept error.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let server = StreamServer::bind("127.0.0.1:0", handler).unwrap();
    /// // Runs in its own greenlet here; `serve_forever` returns only on a fatal error.
    /// let g = greenhub::spawn(move || server.serve_forever());
    /// greenhub::yield_now();
    /// g.kill();
    /// ```
    pub fn serve_forever(self) -> io::Result<()> {
        let conns = self.conns()?;
        accept_loop(&self.listener, &conns, &self.handler)
    }

    /// Accepts connections in a greenlet of its own; the handle stops the server.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let handle = StreamServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
    /// assert!(TcpStream::connect(handle.local_addr()).is_ok());
    /// handle.stop(std::time::Duration::from_millis(10));
    /// ```
    pub fn start(self) -> io::Result<ServerHandle> {
        let addr = self.listener.local_addr()?;
        let conns = self.conns()?;
        let (listener, handlers, handler) = (self.listener.clone(), conns.clone(), self.handler);
        let acceptor = greenhub_runtime::Builder::new()
            .name(format!("StreamServer {addr}"))
            .spawn(move || accept_loop(&listener, &handlers, &handler));
        Ok(ServerHandle::new(addr, Box::new(self.listener), acceptor, conns))
    }
}

pub(crate) fn accept_loop<H>(listener: &TcpListener, conns: &Conns, handler: &H) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) + Clone + 'static,
{
    let mut backoff = BACKOFF_MIN;
    let mut accepted = 0usize;
    loop {
        // `accept` runs the one retry loop: it parks while nothing is pending.
        match listener.accept() {
            Ok((stream, peer)) => {
                let h = handler.clone();
                // Without a stack (out of memory or address space) the stream is
                // dropped with the closure: that one connection is closed.
                if let Err(e) = conns.spawn(move || h(stream, peer)) {
                    no_stack("StreamServer", peer, &e, "connection closed", &mut backoff);
                    continue;
                }
                backoff = BACKOFF_MIN;
                accepted += 1;
                if accepted % ACCEPT_BATCH == 0 {
                    // A flood of connections must not starve the handlers.
                    greenhub_runtime::yield_now();
                }
            }
            Err(e) if is_resource_exhaustion(&e) => {
                // The connection stays in the backlog and no new edge will come:
                // pause, then try again.
                greenhub_runtime::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) if is_transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

fn is_transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
        || matches!(e.raw_os_error(), Some(libc::EPROTO | libc::EPERM))
}

/// A started [`StreamServer`].
///
/// ```
/// # use greenhub::{net::TcpStream, server::StreamServer};
/// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
/// let handle = StreamServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
/// println!("listening on {}", handle.local_addr());
/// handle.stop(std::time::Duration::ZERO);
/// ```
pub struct ServerHandle {
    addr: SocketAddr,
    /// The listening socket (closed by dropping it).
    listener: RefCell<Option<Box<dyn std::any::Any>>>,
    acceptor: RefCell<Option<Greenlet<io::Result<()>>>>,
    conns: Conns,
    stopped: Cell<bool>,
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .field("connections", &self.conns.pool().len())
            .field("stopped", &self.stopped.get())
            .finish()
    }
}

impl ServerHandle {
    /// The handle of a server whose loop runs in `acceptor` on `socket`.
    pub(crate) fn new(
        addr: SocketAddr,
        socket: Box<dyn std::any::Any>,
        acceptor: Greenlet<io::Result<()>>,
        conns: Conns,
    ) -> ServerHandle {
        ServerHandle {
            addr,
            listener: RefCell::new(Some(socket)),
            acceptor: RefCell::new(Some(acceptor)),
            conns,
            stopped: Cell::new(false),
        }
    }

    /// The address the server listens on.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let handle = StreamServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
    /// assert!(handle.local_addr().port() > 0);
    /// handle.stop(std::time::Duration::ZERO);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handler greenlets running now.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let handle = StreamServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
    /// assert_eq!(handle.connections(), 0);
    /// handle.stop(std::time::Duration::ZERO);
    /// ```
    pub fn connections(&self) -> usize {
        self.conns.pool().len()
    }

    /// Stops accepting and closes the listener, waits up to `grace` for the handlers,
    /// then kills the ones still running (and waits for them to unwind).
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let handle = StreamServer::bind("127.0.0.1:0", handler).unwrap().start().unwrap();
    /// let addr = handle.local_addr();
    /// handle.stop(std::time::Duration::from_millis(50));
    /// assert!(TcpStream::connect(addr).is_err()); // the listener is closed
    /// ```
    pub fn stop(&self, grace: Duration) {
        let _ = self.stop_result(grace);
    }

    /// Like [`ServerHandle::stop`]; the accept loop's fatal error if it had ended with one.
    pub(crate) fn stop_result(&self, grace: Duration) -> io::Result<()> {
        if self.stopped.replace(true) {
            return Ok(());
        }
        let acceptor = self.acceptor.borrow_mut().take();
        let mut result = Ok(());
        if let Some(a) = acceptor {
            let ended = a.ready();
            a.kill();
            if let Ok(Err(e)) = a.get() {
                if ended {
                    result = Err(e);
                }
            }
        }
        drop(self.listener.borrow_mut().take());
        let pool = self.conns.pool();
        if !pool.join_timeout(grace) {
            pool.kill();
            pool.join();
        }
        result
    }
}
