//! Multi-worker servers: one accept loop per hub of a [`Runtime`], on `SO_REUSEPORT`
//! listeners bound to the same address, so the kernel spreads connections over the
//! hubs (by a hash of the connection's addresses) and no hub ever touches another's
//! sockets.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use greenhub_runtime::sync::shared::Event;
use greenhub_runtime::{RemoteGreenlet, Runtime};
use socket2::{Domain, Protocol, Socket, Type};

use super::{accept_loop, Conns, ServerHandle, StreamServer};
use crate::net::{tcp::BACKLOG, TcpListener, TcpStream};

/// What every worker shares with the handle.
struct Shared {
    stop: Event,
    grace: Mutex<Duration>,
    accepted: Vec<AtomicUsize>,
    active: AtomicUsize,
}

/// A [`StreamServer`] on `n` hubs (from [`StreamServer::workers`]).
///
/// ```
/// use std::io::{Read, Write};
/// use greenhub::{net::TcpStream, server::StreamServer};
/// let server = StreamServer::bind("127.0.0.1:0", |mut c: TcpStream, _peer| {
///     let mut buf = [0u8; 64];
///     while let Ok(n) = c.read(&mut buf) {
///         if n == 0 || c.write_all(&buf[..n]).is_err() { break; }
///     }
/// })
/// .unwrap()
/// .workers(2)
/// .unwrap()
/// .start()
/// .unwrap();
/// let mut c = TcpStream::connect(server.local_addr()).unwrap();
/// c.write_all(b"hi").unwrap();
/// let mut buf = [0u8; 2];
/// c.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"hi");
/// drop(c);
/// server.stop(std::time::Duration::from_secs(1));
/// ```
pub struct WorkerServer<H> {
    listeners: Vec<std::net::TcpListener>,
    addr: SocketAddr,
    handler: H,
    max_connections: Option<usize>,
    stack_size: Option<usize>,
}

impl<H> fmt::Debug for WorkerServer<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerServer").field("addr", &self.addr).field("workers", &self.listeners.len()).finish()
    }
}

/// A listening socket on `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`), non-blocking.
fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking().cloexec(), Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

impl<H> StreamServer<H>
where
    H: Fn(TcpStream, SocketAddr) + Clone + Send + Sync + 'static,
{
    /// Serves on `n` hubs (OS threads) instead of the caller's: one accept loop per hub,
    /// each on its own `SO_REUSEPORT` listener bound to this server's address, with its
    /// own handler greenlets (`max_connections` applies per worker). The listener
    /// `bind` made is replaced: its address — including a port the kernel chose for
    /// `:0` — is re-bound with `SO_REUSEPORT` (between the two, the port is briefly
    /// free). `n` is at least 1.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let s = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(2).unwrap();
    /// assert_eq!(s.local_addr().ip().to_string(), "127.0.0.1");
    /// ```
    pub fn workers(self, n: usize) -> io::Result<WorkerServer<H>> {
        super::check_stack_size(self.stack_size)?;
        let addr = self.listener.local_addr()?;
        drop(self.listener);
        let listeners = (0..n.max(1)).map(|_| reuseport_listener(addr)).collect::<io::Result<Vec<_>>>()?;
        let (handler, max_connections, stack_size) = (self.handler, self.max_connections, self.stack_size);
        Ok(WorkerServer { listeners, addr, handler, max_connections, stack_size })
    }
}

impl<H> WorkerServer<H>
where
    H: Fn(TcpStream, SocketAddr) + Clone + Send + Sync + 'static,
{
    /// The address every worker listens on.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let s = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(1).unwrap();
    /// assert_ne!(s.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a [`Runtime`] of one hub per worker (threads named `server-{i}`) and an
    /// accept loop on each.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(2).unwrap().start().unwrap();
    /// assert_eq!(h.workers(), 2);
    /// h.stop(std::time::Duration::ZERO);
    /// ```
    pub fn start(self) -> io::Result<WorkersHandle> {
        let n = self.listeners.len();
        let rt = Runtime::builder().threads(n).name("server").build()?;
        let shared = Arc::new(Shared {
            stop: Event::new(),
            grace: Mutex::new(Duration::ZERO),
            accepted: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            active: AtomicUsize::new(0),
        });
        let mut loops = Vec::with_capacity(n);
        for (i, listener) in self.listeners.into_iter().enumerate() {
            let (shared, handler) = (shared.clone(), self.handler.clone());
            let (max, stack) = (self.max_connections, self.stack_size);
            loops.push(rt.spawn_on(i, move || worker(i, listener, handler, Conns::new(max, stack)?, &shared)));
        }
        Ok(WorkersHandle { addr: self.addr, rt: Some(rt), loops: Mutex::new(loops), shared })
    }

    /// Starts the workers and waits for them: returns the first fatal accept error
    /// (the other workers are stopped then), or never.
    ///
    /// ```no_run
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// StreamServer::bind("127.0.0.1:8000", handler).unwrap().workers(4).unwrap().serve_forever().unwrap();
    /// ```
    pub fn serve_forever(self) -> io::Result<()> {
        let h = self.start()?;
        let r = h.wait();
        h.stop(Duration::ZERO);
        r
    }
}

/// One worker: its listener on its hub, until stopped or a fatal accept error.
fn worker<H>(
    i: usize,
    listener: std::net::TcpListener,
    handler: H,
    conns: Conns,
    shared: &Arc<Shared>,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) + Clone + Send + Sync + 'static,
{
    let listener = TcpListener::from_std(listener)?;
    let counting = {
        let shared = shared.clone();
        move |stream: TcpStream, peer: SocketAddr| {
            shared.accepted[i].fetch_add(1, Ordering::Relaxed);
            shared.active.fetch_add(1, Ordering::Relaxed);
            struct Done<'a>(&'a AtomicUsize);
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let _done = Done(&shared.active);
            handler(stream, peer);
        }
    };
    let addr = listener.local_addr()?;
    let (l, handlers) = (listener.clone(), conns.clone());
    let on_error = shared.clone();
    let acceptor = greenhub_runtime::Builder::new().name(format!("StreamServer {addr} worker {i}")).spawn(move || {
        let r = accept_loop(&l, &handlers, &counting);
        on_error.stop.set(); // a fatal accept error stops every worker
        r
    });
    let handle = ServerHandle::new(addr, Box::new(listener), acceptor, conns);
    shared.stop.wait();
    let grace = *shared.grace.lock().unwrap_or_else(|e| e.into_inner());
    handle.stop_result(grace)
}

/// A started [`WorkerServer`]: `Send + Sync`, usable from any thread.
pub struct WorkersHandle {
    addr: SocketAddr,
    rt: Option<Runtime>,
    loops: Mutex<Vec<RemoteGreenlet<io::Result<()>>>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for WorkersHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkersHandle").field("addr", &self.addr).field("accepted", &self.accepted()).finish()
    }
}

impl WorkersHandle {
    /// The address every worker listens on.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(1).unwrap().start().unwrap();
    /// assert!(h.local_addr().ip().is_loopback());
    /// h.stop(std::time::Duration::ZERO);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of workers (hubs).
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(3).unwrap().start().unwrap();
    /// assert_eq!(h.workers(), 3);
    /// h.stop(std::time::Duration::ZERO);
    /// ```
    pub fn workers(&self) -> usize {
        self.shared.accepted.len()
    }

    /// Connections accepted so far, per worker.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(2).unwrap().start().unwrap();
    /// assert_eq!(h.accepted(), [0, 0]);
    /// h.stop(std::time::Duration::ZERO);
    /// ```
    pub fn accepted(&self) -> Vec<usize> {
        self.shared.accepted.iter().map(|a| a.load(Ordering::Relaxed)).collect()
    }

    /// Handler greenlets running now, over all workers.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(2).unwrap().start().unwrap();
    /// assert_eq!(h.connections(), 0);
    /// h.stop(std::time::Duration::ZERO);
    /// ```
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Waits until the workers end: the first fatal accept error (the others were
    /// stopped then), or `Ok` after [`WorkersHandle::stop`] from another thread.
    fn wait(&self) -> io::Result<()> {
        let loops = std::mem::take(&mut *self.loops.lock().unwrap_or_else(|e| e.into_inner()));
        let mut result = Ok(());
        for l in loops {
            let r = l.get().unwrap_or_else(|e| Err(io::Error::other(format!("greenhub server worker: {e}"))));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Stops every worker: each closes its listener, waits up to `grace` for its
    /// handlers (in-flight connections finish), then kills those still running; then
    /// the worker threads end.
    ///
    /// ```
    /// # use greenhub::{net::TcpStream, server::StreamServer};
    /// # fn handler(_c: TcpStream, _p: std::net::SocketAddr) {}
    /// let h = StreamServer::bind("127.0.0.1:0", handler).unwrap().workers(2).unwrap().start().unwrap();
    /// let addr = h.local_addr();
    /// h.stop(std::time::Duration::from_millis(10));
    /// assert!(TcpStream::connect(addr).is_err());
    /// ```
    pub fn stop(mut self, grace: Duration) {
        self.stop_inner(grace);
    }

    fn stop_inner(&mut self, grace: Duration) {
        *self.shared.grace.lock().unwrap_or_else(|e| e.into_inner()) = grace;
        self.shared.stop.set();
        let _ = self.wait();
        if let Some(rt) = self.rt.take() {
            rt.shutdown(Duration::ZERO);
        }
    }
}

impl Drop for WorkersHandle {
    fn drop(&mut self) {
        if self.rt.is_some() {
            self.stop_inner(Duration::ZERO);
        }
    }
}
