//! The interposed libc functions (unsafe leaf). Every hook starts with the cheap test
//! "patched, and an fd of ours / inside a greenlet?" and otherwise makes the raw
//! syscall, so before `patch_all` (and before `main`) it behaves exactly like libc.
//!
//! Nothing unwinds out of a hook (that would abort the process): every wait on the hub
//! runs inside `ffi::no_unwind`. A kill or `with_timeout` expiry that arrives meanwhile
//! ends the wait, and the hook fails with `ECANCELED` (killed) or `ETIMEDOUT` (timed
//! out) — sleeps return early instead, since callers retry an interrupted sleep. While
//! the cancellation is pending every later hook call of that greenlet fails the same
//! way at once; it is thrown at the greenlet's next wait in Rust code, or decides its
//! outcome when it ends (see `greenhub::ffi`).

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use greenhub_runtime::ffi::{can_park, interrupted, no_unwind};
use greenhub_runtime::Interest;

use libc::{msghdr, nfds_t, pollfd, size_t, sockaddr, socklen_t, ssize_t, timespec};

use super::{
    flags, managed_blocking, part, patched, set_flags, slot, DNS, MANAGED, RCV_TIMEO_MS, SELECT, SND_TIMEO_MS, TIME,
    USER_NONBLOCK,
};

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e };
}

/// Fails the hook with `errno`.
fn fail(e: c_int) -> ssize_t {
    set_errno(e);
    -1
}

/// A syscall's result as an `io::Result`.
fn cvt(r: ssize_t) -> io::Result<ssize_t> {
    if r >= 0 {
        Ok(r)
    } else {
        Err(io::Error::from_raw_os_error(errno()))
    }
}

/// The deadline `SO_RCVTIMEO` (reading) or `SO_SNDTIMEO` (writing) sets from now.
fn deadline_of(fd: c_int, interest: Interest) -> Option<Instant> {
    let i = slot(fd)?;
    let ms = if interest.is_readable() {
        RCV_TIMEO_MS[i].load(Ordering::Relaxed)
    } else {
        SND_TIMEO_MS[i].load(Ordering::Relaxed)
    };
    (ms != 0).then(|| Instant::now().checked_add(Duration::from_millis(ms.into()))).flatten()
}

fn poll_events(interest: Interest) -> libc::c_short {
    let mut events = 0;
    if interest.is_readable() {
        events |= libc::POLLIN;
    }
    if interest.is_writable() {
        events |= libc::POLLOUT;
    }
    events
}

/// Raw `poll(2)` on one fd, waiting at most until `deadline`; `false` on timeout.
fn poll_wait(fd: c_int, interest: Interest, deadline: Option<Instant>) -> bool {
    let events = poll_events(interest);
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                left.as_millis().clamp(1, c_int::MAX as u128) as c_int
            }
        };
        let mut p = pollfd { fd, events, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { sys_poll(&mut p, 1, ms) };
        if r > 0 {
            return true;
        }
        if r == 0 {
            return false;
        }
        if errno() != libc::EINTR {
            return true; // let the operation report the error
        }
    }
}

/// How a wait on the hub inside a hook ended.
enum Waited {
    /// The fd may be ready.
    Ready,
    /// The deadline passed.
    TimedOut,
    /// The greenlet was killed or timed out: the hook fails with this errno.
    Interrupted(c_int),
}

/// Waits until `fd` may be ready for `interest`: through the hub in a greenlet, in
/// `poll(2)` otherwise (or for an fd epoll refuses).
fn wait(fd: c_int, interest: Interest, deadline: Option<Instant>) -> Waited {
    if can_park() {
        match no_unwind(|| greenhub_runtime::wait_fd(fd, interest, deadline)) {
            Err(i) => return Waited::Interrupted(i.errno()),
            Ok(Ok(())) => return Waited::Ready,
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut => return Waited::TimedOut,
            Ok(Err(_)) => {} // not pollable through epoll (or no poller): poll(2)
        }
    }
    if poll_wait(fd, interest, deadline) {
        Waited::Ready
    } else {
        Waited::TimedOut
    }
}

/// Runs `op` on a socket of ours as if it were blocking: the runtime's retry loop in a
/// greenlet, a `poll(2)` loop elsewhere.
fn blocking(fd: c_int, interest: Interest, mut op: impl FnMut() -> ssize_t) -> ssize_t {
    if !managed_blocking(fd) {
        return op();
    }
    let deadline = deadline_of(fd, interest);
    if can_park() {
        if let Some(i) = interrupted() {
            return fail(i.errno());
        }
        // The common case first: the operation does not block (no registration needed).
        let r = op();
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
        let mut tried = false;
        let r = no_unwind(|| {
            greenhub_runtime::retry_fd(fd, interest, deadline, || {
                tried = true;
                cvt(op())
            })
        });
        match r {
            Err(i) => return fail(i.errno()),
            Ok(Ok(n)) => return n,
            Ok(Err(e)) => match e.raw_os_error() {
                Some(code) if tried => return fail(code),
                // SO_RCVTIMEO/SO_SNDTIMEO expiry: EAGAIN, as Linux reports it.
                None if e.kind() == io::ErrorKind::TimedOut => return fail(libc::EAGAIN),
                // The fd was closed behind our back (its number reused).
                None => return fail(libc::EBADF),
                Some(_) => {} // epoll refused the fd: the poll(2) loop below
            },
        }
    }
    loop {
        let r = op();
        if r >= 0 {
            return r;
        }
        let e = errno();
        if e != libc::EAGAIN && e != libc::EWOULDBLOCK {
            return r;
        }
        if !poll_wait(fd, interest, deadline) {
            return fail(libc::EAGAIN);
        }
    }
}

// ---- raw syscalls -------------------------------------------------------------------

macro_rules! sys {
    ($nr:expr $(, $a:expr)*) => {{
        // SAFETY: a raw syscall with the hooked caller's own arguments (or values we
        // built), exactly what libc's wrapper would pass to the kernel.
        unsafe { libc::syscall($nr $(, $a)*) }
    }};
}

/// `poll(2)` without libc's wrapper: `ppoll` with the timeout as a `timespec` (AArch64
/// has no `poll` system call; `ppoll` with no signal mask is the same call there and on
/// x86-64).
unsafe fn sys_poll(fds: *mut pollfd, n: nfds_t, ms: c_int) -> c_int {
    // The kernel writes the time left back into it: a mutable local.
    let mut ts = timespec { tv_sec: (ms / 1000) as libc::time_t, tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long };
    let tsp: *mut timespec = if ms < 0 { std::ptr::null_mut() } else { &mut ts };
    sys!(libc::SYS_ppoll, fds, n, tsp, 0usize, 0usize) as c_int
}

// ---- sockets ------------------------------------------------------------------------

/// Interposed `socket(2)`.
///
/// # Safety
/// As libc's `socket`.
#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
    let ours = patched()
        && matches!(domain, libc::AF_INET | libc::AF_INET6 | libc::AF_UNIX)
        && matches!(base, libc::SOCK_STREAM | libc::SOCK_DGRAM | libc::SOCK_SEQPACKET);
    if !ours {
        return sys!(libc::SYS_socket, domain, ty, protocol) as c_int;
    }
    let fd = sys!(libc::SYS_socket, domain, ty | libc::SOCK_NONBLOCK, protocol) as c_int;
    if fd >= 0 {
        let user = if ty & libc::SOCK_NONBLOCK != 0 { USER_NONBLOCK } else { 0 };
        set_flags(fd, MANAGED | user);
    }
    fd
}

/// Interposed `connect(2)`.
///
/// # Safety
/// As libc's `connect`.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let r = sys!(libc::SYS_connect, fd, addr, len) as c_int;
    if r == 0 || !managed_blocking(fd) || errno() != libc::EINPROGRESS {
        return r;
    }
    if can_park() {
        if let Some(i) = interrupted() {
            return fail(i.errno()) as c_int;
        }
    }
    match wait(fd, Interest::WRITABLE, deadline_of(fd, Interest::WRITABLE)) {
        Waited::Ready => {}
        Waited::TimedOut => return fail(libc::EINPROGRESS) as c_int,
        Waited::Interrupted(e) => return fail(e) as c_int,
    }
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let g = sys!(libc::SYS_getsockopt, fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err as *mut c_int, &mut len);
    if g != 0 {
        return -1;
    }
    if err != 0 {
        set_errno(err);
        return -1;
    }
    0
}

/// Interposed `accept(2)`.
///
/// # Safety
/// As libc's `accept`.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: same contract.
    unsafe { accept4(fd, addr, len, 0) }
}

/// Interposed `accept4(2)`.
///
/// # Safety
/// As libc's `accept4`.
#[no_mangle]
pub unsafe extern "C" fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, fl: c_int) -> c_int {
    if !patched() || flags(fd) & MANAGED == 0 {
        return sys!(libc::SYS_accept4, fd, addr, len, fl) as c_int;
    }
    let new = blocking(fd, Interest::READABLE, || {
        sys!(libc::SYS_accept4, fd, addr, len, fl | libc::SOCK_NONBLOCK) as ssize_t
    });
    if new >= 0 {
        let user = if fl & libc::SOCK_NONBLOCK != 0 { USER_NONBLOCK } else { 0 };
        set_flags(new as c_int, MANAGED | user);
    }
    new as c_int
}

/// Interposed `read(2)`.
///
/// # Safety
/// As libc's `read`.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    blocking(fd, Interest::READABLE, || sys!(libc::SYS_read, fd, buf, n) as ssize_t)
}

/// Interposed `write(2)`.
///
/// # Safety
/// As libc's `write`.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    blocking(fd, Interest::WRITABLE, || sys!(libc::SYS_write, fd, buf, n) as ssize_t)
}

/// Interposed `readv(2)`.
///
/// # Safety
/// As libc's `readv`.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    blocking(fd, Interest::READABLE, || sys!(libc::SYS_readv, fd, iov, cnt) as ssize_t)
}

/// Interposed `writev(2)`.
///
/// # Safety
/// As libc's `writev`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    blocking(fd, Interest::WRITABLE, || sys!(libc::SYS_writev, fd, iov, cnt) as ssize_t)
}

/// A socket call with message flags: `MSG_DONTWAIT` asks for one non-blocking attempt.
fn with_flags(fd: c_int, interest: Interest, fl: c_int, mut op: impl FnMut() -> ssize_t) -> ssize_t {
    if fl & libc::MSG_DONTWAIT != 0 {
        op()
    } else {
        blocking(fd, interest, op)
    }
}

/// Interposed `recv(2)`.
///
/// # Safety
/// As libc's `recv`.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, fl: c_int) -> ssize_t {
    with_flags(fd, Interest::READABLE, fl, || sys!(libc::SYS_recvfrom, fd, buf, n, fl, 0usize, 0usize) as ssize_t)
}

/// Interposed `send(2)`.
///
/// # Safety
/// As libc's `send`.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, fl: c_int) -> ssize_t {
    with_flags(fd, Interest::WRITABLE, fl, || sys!(libc::SYS_sendto, fd, buf, n, fl, 0usize, 0usize) as ssize_t)
}

/// Interposed `recvfrom(2)`.
///
/// # Safety
/// As libc's `recvfrom`.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    fl: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    with_flags(fd, Interest::READABLE, fl, || sys!(libc::SYS_recvfrom, fd, buf, n, fl, addr, len) as ssize_t)
}

/// Interposed `sendto(2)`.
///
/// # Safety
/// As libc's `sendto`.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    fl: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    with_flags(fd, Interest::WRITABLE, fl, || sys!(libc::SYS_sendto, fd, buf, n, fl, addr, len) as ssize_t)
}

/// Interposed `recvmsg(2)`.
///
/// # Safety
/// As libc's `recvmsg`.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, fl: c_int) -> ssize_t {
    with_flags(fd, Interest::READABLE, fl, || sys!(libc::SYS_recvmsg, fd, msg, fl) as ssize_t)
}

/// Interposed `sendmsg(2)`.
///
/// # Safety
/// As libc's `sendmsg`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, fl: c_int) -> ssize_t {
    with_flags(fd, Interest::WRITABLE, fl, || sys!(libc::SYS_sendmsg, fd, msg, fl) as ssize_t)
}

/// Interposed `poll(2)`: inside a greenlet it waits through the hub.
///
/// # Safety
/// As libc's `poll`.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if !part(SELECT) || timeout == 0 || !can_park() {
        // SAFETY: the caller's arguments.
        return unsafe { sys_poll(fds, n, timeout) };
    }
    // SAFETY: the caller's arguments; a zero timeout never blocks.
    let r = unsafe { sys_poll(fds, n, 0) };
    if r != 0 {
        return r;
    }
    if let Some(i) = interrupted() {
        return fail(i.errno()) as c_int;
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    if n == 1 {
        // SAFETY: n == 1: one valid pollfd.
        let p = unsafe { &*fds };
        let interest = match (p.events & libc::POLLIN != 0, p.events & libc::POLLOUT != 0) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        if let Waited::Interrupted(e) = wait(p.fd, interest, deadline) {
            return fail(e) as c_int;
        }
        // SAFETY: as above.
        return unsafe { sys_poll(fds, n, 0) };
    }
    // Several fds: look again with a growing pause, letting other greenlets run.
    let mut pause = Duration::from_millis(1);
    loop {
        if let Err(i) = no_unwind(|| greenhub_runtime::sleep(pause)) {
            return fail(i.errno()) as c_int;
        }
        // SAFETY: as above.
        let r = unsafe { sys_poll(fds, n, 0) };
        if r != 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return r;
        }
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Raw `pselect6(2)` (both Linux architectures have it; `select` itself is missing on
/// aarch64), without a signal mask.
unsafe fn sys_pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const timespec,
) -> c_int {
    sys!(libc::SYS_pselect6, n, r, w, e, ts, 0usize) as c_int
}

/// Whether `set` (may be null) has any of the first `n` fds.
unsafe fn any_set(set: *const libc::fd_set, n: c_int) -> bool {
    // SAFETY: a non-null set is a valid fd_set of the caller's.
    !set.is_null() && (0..n).any(|fd| unsafe { libc::FD_ISSET(fd, set) })
}

/// `select`/`pselect` inside a greenlet: wait through the hub for the read and write
/// sets, then let the kernel fill them in (a zero-timeout `pselect6`). Exception sets
/// and signal masks go to the kernel unchanged.
unsafe fn select_hook(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    timeout: Option<Duration>,
    blocking: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: e is null or the caller's valid fd_set (as r and w, below).
    let exceptions = unsafe { any_set(e, n) };
    if !part(SELECT) || timeout == Some(Duration::ZERO) || !can_park() || exceptions || n < 0 {
        return blocking();
    }
    if let Some(i) = interrupted() {
        return fail(i.errno()) as c_int;
    }
    let mut fds = Vec::new();
    for fd in 0..n.min(libc::FD_SETSIZE as c_int) {
        // SAFETY: r is null or the caller's valid fd_set.
        if !r.is_null() && unsafe { libc::FD_ISSET(fd, r) } {
            fds.push((fd, Interest::READABLE));
        }
        // SAFETY: w is null or the caller's valid fd_set.
        if !w.is_null() && unsafe { libc::FD_ISSET(fd, w) } {
            fds.push((fd, Interest::WRITABLE));
        }
    }
    // SAFETY: r and w are null or the caller's valid fd_sets; copies of them, to ask
    // the kernel again after each wait.
    let (r0, w0) = unsafe { ((!r.is_null()).then(|| *r), (!w.is_null()).then(|| *w)) };
    let zero = timespec { tv_sec: 0, tv_nsec: 0 };
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        // SAFETY: the caller's sets (or null); a zero timeout never blocks.
        let got = unsafe { sys_pselect(n, r, w, e, &zero) };
        if got != 0 {
            return got;
        }
        match no_unwind(|| greenhub_runtime::wait_any(&fds, deadline)) {
            Err(i) => return fail(i.errno()) as c_int,
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::TimedOut && e.raw_os_error().is_none() => return 0,
            Ok(Err(_)) => return blocking(), // an fd epoll refuses: the kernel waits
        }
        // SAFETY: the caller's valid sets, restored to what the caller asked about.
        unsafe {
            if let Some(r0) = r0 {
                *r = r0;
            }
            if let Some(w0) = w0 {
                *w = w0;
            }
        }
    }
}

/// Interposed `select(2)`: inside a greenlet it waits through the hub (`patch_select`).
///
/// # Safety
/// As libc's `select`.
#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    // SAFETY: tv is null or the caller's valid timeval.
    let timeout = (!tv.is_null()).then(|| unsafe {
        Duration::from_secs((*tv).tv_sec.max(0) as u64) + Duration::from_micros((*tv).tv_usec.clamp(0, 999_999) as u64)
    });
    let blocking = || {
        let ts = timeout.map(|t| timespec { tv_sec: t.as_secs() as libc::time_t, tv_nsec: t.subsec_nanos() as _ });
        // SAFETY: the caller's sets; a timespec we built, or null for no limit.
        unsafe { sys_pselect(n, r, w, e, ts.as_ref().map_or(std::ptr::null(), |t| t as *const timespec)) }
    };
    // SAFETY: the caller's arguments.
    unsafe { select_hook(n, r, w, e, timeout, blocking) }
}

/// Interposed `pselect(2)`: like `select`; with a signal mask it goes to the kernel.
///
/// # Safety
/// As libc's `pselect`.
#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ts: *const timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    if !mask.is_null() {
        // The kernel's pselect6 takes {mask, size} as its sixth argument.
        let m: [usize; 2] = [mask as usize, 8];
        return sys!(libc::SYS_pselect6, n, r, w, e, ts, m.as_ptr()) as c_int;
    }
    // SAFETY: ts is null or the caller's valid timespec.
    let timeout = (!ts.is_null()).then(|| unsafe { duration(&*ts) });
    // SAFETY: the caller's arguments.
    let blocking = || unsafe { sys_pselect(n, r, w, e, ts) };
    let Some(timeout) = timeout.map_or(Some(None), |t| t.map(Some)) else {
        return blocking(); // an invalid timespec: the kernel says EINVAL
    };
    // SAFETY: the caller's arguments.
    unsafe { select_hook(n, r, w, e, timeout, blocking) }
}

/// Interposed `close(2)`: forgets the fd's state (and its hub registration).
///
/// # Safety
/// As libc's `close`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    if patched() {
        if flags(fd) != 0 {
            set_flags(fd, 0);
        }
        greenhub_runtime::deregister(fd);
    }
    sys!(libc::SYS_close, fd) as c_int
}

fn copy_flags(from: c_int, to: c_int) {
    if to >= 0 && patched() {
        let f = flags(from);
        set_flags(to, f);
        if let (Some(a), Some(b)) = (slot(from), slot(to)) {
            RCV_TIMEO_MS[b].store(RCV_TIMEO_MS[a].load(Ordering::Relaxed), Ordering::Relaxed);
            SND_TIMEO_MS[b].store(SND_TIMEO_MS[a].load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// Interposed `dup(2)`: the copy shares the socket's state.
///
/// # Safety
/// As libc's `dup`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    let new = sys!(libc::SYS_dup, fd) as c_int;
    copy_flags(fd, new);
    new
}

/// Interposed `dup2(2)`.
///
/// # Safety
/// As libc's `dup2`.
#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, to: c_int) -> c_int {
    // SAFETY: same contract.
    unsafe { dup3(fd, to, 0) }
}

/// Interposed `dup3(2)`.
///
/// # Safety
/// As libc's `dup3`.
#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, to: c_int, fl: c_int) -> c_int {
    if fd == to {
        // dup2 semantics for equal fds: check validity, change nothing.
        return if fl == 0 {
            sys!(libc::SYS_fcntl, fd, libc::F_GETFD) as c_int
        } else {
            sys!(libc::SYS_dup3, fd, to, fl) as c_int
        };
    }
    let new = sys!(libc::SYS_dup3, fd, to, fl) as c_int;
    copy_flags(fd, new);
    new
}

/// Interposed `fcntl(2)` (the variadic argument is read as one machine word, which is
/// how every fcntl command passes it on Linux x86-64 and aarch64).
///
/// # Safety
/// As libc's `fcntl`.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    if !patched() || flags(fd) & MANAGED == 0 {
        return sys!(libc::SYS_fcntl, fd, cmd, arg) as c_int;
    }
    match cmd {
        libc::F_GETFL => {
            let r = sys!(libc::SYS_fcntl, fd, cmd) as c_int;
            if r >= 0 && flags(fd) & USER_NONBLOCK == 0 {
                r & !libc::O_NONBLOCK
            } else {
                r
            }
        }
        libc::F_SETFL => {
            let user = if arg as c_int & libc::O_NONBLOCK != 0 { USER_NONBLOCK } else { 0 };
            let r = sys!(libc::SYS_fcntl, fd, cmd, arg | libc::O_NONBLOCK as c_ulong) as c_int;
            if r == 0 {
                if let Some(i) = slot(fd) {
                    super::FLAGS[i].store(MANAGED | user, Ordering::Relaxed);
                }
            }
            r
        }
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let new = sys!(libc::SYS_fcntl, fd, cmd, arg) as c_int;
            copy_flags(fd, new);
            new
        }
        _ => sys!(libc::SYS_fcntl, fd, cmd, arg) as c_int,
    }
}

/// Interposed `ioctl(2)`: `FIONBIO` on a socket of ours records the user's wish.
///
/// # Safety
/// As libc's `ioctl`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: c_ulong, arg: *mut c_void) -> c_int {
    if req == libc::FIONBIO as c_ulong && patched() && flags(fd) & MANAGED != 0 && !arg.is_null() {
        // SAFETY: FIONBIO takes a pointer to an int.
        let on = unsafe { *(arg as *const c_int) } != 0;
        if let Some(i) = slot(fd) {
            super::FLAGS[i].store(MANAGED | if on { USER_NONBLOCK } else { 0 }, Ordering::Relaxed);
        }
        return 0;
    }
    sys!(libc::SYS_ioctl, fd, req, arg) as c_int
}

/// Interposed `setsockopt(2)`: `SO_RCVTIMEO`/`SO_SNDTIMEO` also bound our waits.
///
/// # Safety
/// As libc's `setsockopt`.
#[no_mangle]
pub unsafe extern "C" fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int {
    let r = sys!(libc::SYS_setsockopt, fd, level, name, val, len) as c_int;
    if r == 0
        && patched()
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= std::mem::size_of::<libc::timeval>()
    {
        // SAFETY: the kernel accepted `val` as a timeval of `len` bytes.
        let tv = unsafe { *(val as *const libc::timeval) };
        let ms = (tv.tv_sec as u64).saturating_mul(1000).saturating_add((tv.tv_usec as u64).div_ceil(1000));
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        if let Some(i) = slot(fd) {
            let t = if name == libc::SO_RCVTIMEO { &RCV_TIMEO_MS[i] } else { &SND_TIMEO_MS[i] };
            t.store(ms, Ordering::Relaxed);
        }
    }
    r
}

// ---- sleeping -----------------------------------------------------------------------

/// Sleeps are cooperative here.
fn cooperative_sleep() -> bool {
    part(TIME) && can_park()
}

fn duration(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Interposed `nanosleep(2)` (what `std::thread::sleep` calls).
///
/// # Safety
/// As libc's `nanosleep`.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if cooperative_sleep() && !req.is_null() {
        // SAFETY: non-null request from the caller.
        if let Some(d) = duration(unsafe { &*req }) {
            // Killed or timed out: return early (callers retry EINTR, so no error).
            let _ = no_unwind(|| greenhub_runtime::sleep(d));
            if !rem.is_null() {
                // SAFETY: the caller's remainder slot.
                unsafe { *rem = timespec { tv_sec: 0, tv_nsec: 0 } };
            }
            return 0;
        }
    }
    sys!(libc::SYS_nanosleep, req, rem) as c_int
}

/// Interposed `clock_nanosleep(2)` (returns the error number, like libc's).
///
/// # Safety
/// As libc's `clock_nanosleep`.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    fl: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    if cooperative_sleep() && !req.is_null() {
        // SAFETY: non-null request from the caller.
        if let Some(mut d) = duration(unsafe { &*req }) {
            if fl & libc::TIMER_ABSTIME != 0 {
                let mut now = timespec { tv_sec: 0, tv_nsec: 0 };
                if sys!(libc::SYS_clock_gettime, clock, &mut now as *mut timespec) != 0 {
                    return errno();
                }
                d = d.saturating_sub(duration(&now).unwrap_or_default());
            }
            let _ = no_unwind(|| greenhub_runtime::sleep(d));
            return 0;
        }
    }
    let r = sys!(libc::SYS_clock_nanosleep, clock, fl, req, rem);
    if r == 0 {
        0
    } else {
        errno()
    }
}

/// Interposed `usleep(3)`.
///
/// # Safety
/// As libc's `usleep`.
#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let ts = timespec { tv_sec: (us / 1_000_000) as libc::time_t, tv_nsec: ((us % 1_000_000) * 1000) as libc::c_long };
    // SAFETY: a valid request and no remainder.
    unsafe { nanosleep(&ts, std::ptr::null_mut()) }
}

/// Interposed `sleep(3)`.
///
/// # Safety
/// As libc's `sleep`.
#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let ts = timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 };
    let mut rem = timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid request and remainder.
    if unsafe { nanosleep(&ts, &mut rem) } == 0 {
        0
    } else {
        rem.tv_sec as c_uint
    }
}

// ---- name resolution ----------------------------------------------------------------

type GetAddrInfo =
    unsafe extern "C" fn(*const c_char, *const c_char, *const libc::addrinfo, *mut *mut libc::addrinfo) -> c_int;

fn real_getaddrinfo() -> Option<GetAddrInfo> {
    static REAL: AtomicUsize = AtomicUsize::new(0);
    let mut f = REAL.load(Ordering::Acquire);
    if f == 0 {
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT finds libc's definition.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) } as usize;
        REAL.store(f, Ordering::Release);
    }
    // SAFETY: a non-null result of dlsym("getaddrinfo") is libc's getaddrinfo.
    (f != 0).then(|| unsafe { std::mem::transmute::<usize, GetAddrInfo>(f) })
}

/// A result list of `getaddrinfo`, freed when dropped unless handed to the caller: if
/// the calling greenlet is killed or timed out first, the pool thread drops it.
struct AddrList(*mut libc::addrinfo);

// SAFETY: the list is plain heap memory allocated by getaddrinfo for whoever holds the
// pointer; nothing ties it to the thread that allocated it, and this value is its only
// owner (it is freed at most once, by `Drop`, or given away by `into_raw`).
unsafe impl Send for AddrList {}

impl AddrList {
    fn into_raw(self) -> *mut libc::addrinfo {
        let p = self.0;
        std::mem::forget(self);
        p
    }
}

impl Drop for AddrList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list returned by getaddrinfo and owned by this value.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// Interposed `getaddrinfo(3)`: inside a greenlet it runs on the threadpool.
///
/// The pool thread gets owned copies of the arguments (never pointers into the
/// caller's stack or buffers, which a killed caller stops guaranteeing), and the result
/// is written to `*res` on the caller's thread.
///
/// # Safety
/// As libc's `getaddrinfo`.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let Some(real) = real_getaddrinfo() else { return libc::EAI_SYSTEM };
    if !(part(DNS) && can_park()) {
        // SAFETY: the caller's arguments.
        return unsafe { real(node, service, hints, res) };
    }
    if let Some(i) = interrupted() {
        set_errno(i.errno());
        return libc::EAI_SYSTEM;
    }
    // SAFETY: node and service are NUL-terminated strings or null, as getaddrinfo
    // requires of its caller.
    let copy = |p: *const c_char| (!p.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(p) }));
    let (node, service) = (copy(node), copy(service));
    // SAFETY: hints is null or points to an addrinfo; only these four fields may be set
    // in hints (POSIX), the rest must be zero or null.
    let hints = (!hints.is_null())
        .then(|| unsafe { ((*hints).ai_flags, (*hints).ai_family, (*hints).ai_socktype, (*hints).ai_protocol) });
    let job = move || {
        // SAFETY: an all-zero addrinfo is a valid "no hints" value.
        let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
        if let Some((flags, family, socktype, protocol)) = hints {
            (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol) = (flags, family, socktype, protocol);
        }
        let mut out: *mut libc::addrinfo = std::ptr::null_mut();
        let opt = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let hp = if hints.is_some() { &h as *const libc::addrinfo } else { std::ptr::null() };
        // SAFETY: owned, NUL-terminated copies (or null) and a local hints struct, all
        // alive for the call; `out` receives the list.
        let code = unsafe { real(opt(&node), opt(&service), hp, &mut out) };
        let err = errno();
        (code, err, AddrList(out))
    };
    match no_unwind(|| greenhub_runtime::threadpool::try_spawn_blocking(job)) {
        Ok(Ok((code, err, list))) => {
            if code == 0 {
                // SAFETY: the caller's result slot, on the caller's thread.
                unsafe { *res = list.into_raw() };
            } else if code == libc::EAI_SYSTEM {
                set_errno(err);
            }
            code
        }
        Ok(Err(e)) => {
            set_errno(e.raw_os_error().unwrap_or(libc::EAGAIN));
            libc::EAI_SYSTEM
        }
        Err(i) => {
            set_errno(i.errno());
            libc::EAI_SYSTEM
        }
    }
}
