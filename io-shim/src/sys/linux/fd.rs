//! fd helpers that std and socket2 do not offer in the form we need.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use socket2::SockAddr;

/// `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the accepted socket is non-blocking
/// from the start (one syscall instead of accept + fcntl).
pub(crate) fn accept_nonblocking(listener: RawFd) -> io::Result<(OwnedFd, SockAddr)> {
    // SAFETY: `try_init` hands us a zeroed sockaddr storage and its length; accept4
    // writes at most that many bytes and updates the length, as try_init expects.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let fd = libc::accept4(listener, storage.cast(), len, libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(fd)
            }
        })
    }?;
    // SAFETY: accept4 returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok((fd, addr))
}

/// The inet address of an accepted TCP peer.
pub(crate) fn inet(addr: &SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "peer address is not an inet address"))
}
