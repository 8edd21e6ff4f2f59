//! `select::select`: wait for the first of several fds to become readable or writable
//! (Python's `select.select`, as gevent patches it).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use greenhub_runtime::Interest;

/// Waits until at least one of `read` is readable or one of `write` is writable, or
/// until `timeout` (`None`: no limit); returns the ready ones, each list in the order
/// given (both empty on timeout). Other greenlets run meanwhile; on a thread's own
/// stack the hub runs.
///
/// As in Python, a hung-up or failed fd counts as readable (the next read reports it),
/// a failed one as writable too; an fd that is not open is an `EBADF` error. The fds
/// are registered with the hub on first use, like [`greenhub_runtime::wait_readable`]'s:
/// call [`greenhub_runtime::deregister`] before closing one that was waited on.
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let (fa, fb) = (a.as_raw_fd(), b.as_raw_fd());
/// // Nothing to read yet, but `b` is writable.
/// assert_eq!(greenhub::select::select(&[fa], &[fb], None).unwrap(), (vec![], vec![fb]));
/// b.write_all(b"x").unwrap();
/// assert_eq!(greenhub::select::select(&[fa], &[], Some(Duration::from_secs(5))).unwrap(), (vec![fa], vec![]));
/// greenhub::deregister(fa);
/// greenhub::deregister(fb);
/// ```
pub fn select(read: &[RawFd], write: &[RawFd], timeout: Option<Duration>) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut fds: Vec<(RawFd, Interest)> = read.iter().map(|&fd| (fd, Interest::READABLE)).collect();
    fds.extend(write.iter().map(|&fd| (fd, Interest::WRITABLE)));
    loop {
        let ready = ready_now(&fds)?;
        if !ready.0.is_empty() || !ready.1.is_empty() {
            return Ok(ready);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) || timeout == Some(Duration::ZERO) {
            return Ok((Vec::new(), Vec::new()));
        }
        if fds.is_empty() {
            // Python's select with no fds sleeps for the timeout.
            match timeout {
                Some(t) => greenhub_runtime::sleep(t),
                None => greenhub_runtime::sleep(Duration::MAX),
            }
            return Ok((Vec::new(), Vec::new()));
        }
        match greenhub_runtime::wait_any(&fds, deadline) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none() => {
                return Ok((Vec::new(), Vec::new()))
            }
            Err(e) => return Err(e),
        }
    }
}

/// The fds ready now, by a zero-timeout `poll(2)`.
fn ready_now(fds: &[(RawFd, Interest)]) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|&(fd, i)| libc::pollfd {
            fd,
            events: if i.is_readable() { libc::POLLIN } else { libc::POLLOUT },
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `polls` is a valid array of `polls.len()` pollfds; a zero timeout never
        // blocks.
        let r = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let (mut read, mut write) = (Vec::new(), Vec::new());
    for p in &polls {
        if p.revents & libc::POLLNVAL != 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if p.events == libc::POLLIN && p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            read.push(p.fd);
        }
        if p.events == libc::POLLOUT && p.revents & (libc::POLLOUT | libc::POLLERR) != 0 {
            write.push(p.fd);
        }
    }
    Ok((read, write))
}
