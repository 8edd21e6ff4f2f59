//! The ceiling for one event-loop thread: a hand-written, single-threaded epoll echo
//! loop on mio (edge-triggered), no runtime at all. A connection whose echo cannot be
//! written at once stops reading until the socket is writable again.

use std::io::{ErrorKind, Read, Write};

use greenhub_bench::peer::{self, BUF};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    buf: [u8; BUF],
    /// `buf[start..end]` was read but not yet written back.
    start: usize,
    end: usize,
}

impl Conn {
    /// Echoes until the socket would block; `false` when the connection is finished.
    fn serve(&mut self) -> bool {
        loop {
            while self.start < self.end {
                match self.stream.write(&self.buf[self.start..self.end]) {
                    Ok(0) => return false,
                    Ok(n) => self.start += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
            match self.stream.read(&mut self.buf) {
                Ok(0) => return false,
                Ok(n) => (self.start, self.end) = (0, n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = peer::addr_from_args();
    let mut listener = TcpListener::bind(addr)?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
    peer::listening("mio-raw", addr);
    let mut conns: Vec<Option<Box<Conn>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let id = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(
                                &mut stream,
                                Token(id),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conns[id] = Some(Box::new(Conn { stream, buf: [0; BUF], start: 0, end: 0 }));
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        // EMFILE and friends: leave the rest in the backlog until the
                        // next event instead of spinning.
                        Err(_) => break,
                    }
                }
                continue;
            }
            let id = ev.token().0;
            let done = match conns[id].as_mut() {
                Some(conn) => !conn.serve(),
                None => false,
            };
            if done {
                if let Some(mut conn) = conns[id].take() {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                free.push(id);
            }
        }
    }
}
