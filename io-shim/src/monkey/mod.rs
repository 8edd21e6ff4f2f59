//! `monkey::patch_all()`: make `std::net`, `std::thread::sleep`, name resolution and
//! third-party blocking crates cooperative inside greenlets (feature `monkey`).
//!
//! Rust cannot rebind functions at run time, but an executable can *interpose* libc
//! symbols: this module defines `read`, `write`, `connect`, `nanosleep`, `getaddrinfo`,
//! ... and the static linker resolves std's (and every statically linked crate's) calls
//! to them. Each hook behaves exactly like libc (same results, same errno) until
//! [`patch_all`] is called, and always in threads without a hub and inside the hub's own
//! loop. Inside a greenlet, and on the own stack (greenlet zero) of a thread that has a
//! hub, after `patch_all`, a socket call that would block parks on the hub (greenlet
//! zero runs the hub loop meanwhile), and a sleep is a greenhub sleep.
//!
//! How: sockets created after `patch_all` (by `socket`, `accept`, `accept4`) are made
//! non-blocking underneath and remembered in a per-fd table. An operation on such a
//! socket tries the syscall; on `EAGAIN` a greenlet (or greenlet zero of a hub thread)
//! waits for readiness through the hub, while any other caller waits in `poll(2)` — so
//! code in threads without a hub still sees a blocking socket. What the user asks for is honoured: a socket the user made
//! non-blocking (`fcntl`/`ioctl(FIONBIO)`/`SOCK_NONBLOCK`, `MSG_DONTWAIT`) keeps returning
//! `EAGAIN`, `fcntl(F_GETFL)` hides our `O_NONBLOCK`, and `SO_RCVTIMEO`/`SO_SNDTIMEO` bound
//! the waits (expiry: `EAGAIN`, as in Linux). `getaddrinfo` runs on the threadpool
//! (glibc's resolver internals are not interposable). The pass-through path before
//! `patch_all` is a relaxed atomic load plus the raw syscall, safe before `main`.
//!
//! See docs/monkey.md for what cannot be patched.

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
compile_error!(
    "greenhub's `monkey` feature supports Linux on x86-64 and aarch64 only: its libc hooks \
     use Linux syscall numbers and those architectures' calling conventions"
);

mod hooks;

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Fds tracked (sockets with a higher number behave like plain libc sockets).
pub(crate) const MAX_FD: usize = 65536;
/// The fd is a socket we made non-blocking underneath.
pub(crate) const MANAGED: u8 = 1;
/// The user asked for non-blocking behaviour.
pub(crate) const USER_NONBLOCK: u8 = 2;

static FLAGS: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];
/// `SO_RCVTIMEO` / `SO_SNDTIMEO` in milliseconds (0: none).
static RCV_TIMEO_MS: [AtomicU32; MAX_FD] = [const { AtomicU32::new(0) }; MAX_FD];
static SND_TIMEO_MS: [AtomicU32; MAX_FD] = [const { AtomicU32::new(0) }; MAX_FD];

/// The parts patched so far (bits below); hooks of a part behave like libc until it is.
static PATCHED: AtomicU8 = AtomicU8::new(0);
const SOCKET: u8 = 1;
const TIME: u8 = 2;
const DNS: u8 = 4;
const SELECT: u8 = 8;
const ALL: u8 = SOCKET | TIME | DNS | SELECT;

/// Turns every hook on for the rest of the process (idempotent): [`patch_socket`],
/// [`patch_time`], [`patch_dns`] and [`patch_select`].
///
/// ```
/// greenhub::monkey::patch_all();
/// assert!(greenhub::monkey::is_patched());
/// // Now std::thread::sleep inside a greenlet is a greenhub sleep:
/// let t = std::time::Instant::now();
/// let gs: Vec<_> = (0..10)
///     .map(|_| greenhub::spawn(|| std::thread::sleep(std::time::Duration::from_millis(50))))
///     .collect();
/// greenhub::joinall(&gs);
/// assert!(t.elapsed() < std::time::Duration::from_millis(400));
/// ```
pub fn patch_all() {
    PATCHED.fetch_or(ALL, Ordering::SeqCst);
}

/// Sockets: `socket`, `connect`, `accept`, reads and writes, `close`, `dup`, `fcntl`,
/// `ioctl(FIONBIO)`, `SO_RCVTIMEO`/`SO_SNDTIMEO` (gevent's `patch_socket`). Only sockets
/// created after this call are cooperative.
///
/// ```
/// greenhub::monkey::patch_socket();
/// assert!(greenhub::monkey::is_socket_patched());
/// ```
pub fn patch_socket() {
    PATCHED.fetch_or(SOCKET, Ordering::SeqCst);
}

/// Sleeps: `nanosleep` (`std::thread::sleep`), `clock_nanosleep`, `usleep`, `sleep`
/// (gevent's `patch_time`).
///
/// ```
/// greenhub::monkey::patch_time();
/// assert!(greenhub::monkey::is_time_patched());
/// ```
pub fn patch_time() {
    PATCHED.fetch_or(TIME, Ordering::SeqCst);
}

/// Name resolution: `getaddrinfo` runs on the threadpool (gevent's `patch_dns`).
///
/// ```
/// greenhub::monkey::patch_dns();
/// assert!(greenhub::monkey::is_dns_patched());
/// ```
pub fn patch_dns() {
    PATCHED.fetch_or(DNS, Ordering::SeqCst);
}

/// Readiness waits: `poll`, `select`, `pselect` wait through the hub (gevent's
/// `patch_select`).
///
/// ```
/// greenhub::monkey::patch_select();
/// assert!(greenhub::monkey::is_select_patched());
/// ```
pub fn patch_select() {
    PATCHED.fetch_or(SELECT, Ordering::SeqCst);
}

/// Whether every part is patched ([`patch_all`], or all four parts one by one).
///
/// ```
/// let _ = greenhub::monkey::is_patched();
/// ```
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed) == ALL
}

/// Whether [`patch_socket`] (or [`patch_all`]) has been called.
///
/// ```
/// let _ = greenhub::monkey::is_socket_patched();
/// ```
pub fn is_socket_patched() -> bool {
    part(SOCKET)
}

/// Whether [`patch_time`] (or [`patch_all`]) has been called.
///
/// ```
/// let _ = greenhub::monkey::is_time_patched();
/// ```
pub fn is_time_patched() -> bool {
    part(TIME)
}

/// Whether [`patch_dns`] (or [`patch_all`]) has been called.
///
/// ```
/// let _ = greenhub::monkey::is_dns_patched();
/// ```
pub fn is_dns_patched() -> bool {
    part(DNS)
}

/// Whether [`patch_select`] (or [`patch_all`]) has been called.
///
/// ```
/// let _ = greenhub::monkey::is_select_patched();
/// ```
pub fn is_select_patched() -> bool {
    part(SELECT)
}

#[inline]
fn part(bit: u8) -> bool {
    PATCHED.load(Ordering::Relaxed) & bit != 0
}

/// The socket hooks are on.
#[inline]
fn patched() -> bool {
    part(SOCKET)
}

#[inline]
fn slot(fd: libc::c_int) -> Option<usize> {
    usize::try_from(fd).ok().filter(|&i| i < MAX_FD)
}

#[inline]
fn flags(fd: libc::c_int) -> u8 {
    slot(fd).map_or(0, |i| FLAGS[i].load(Ordering::Relaxed))
}

fn set_flags(fd: libc::c_int, f: u8) {
    if let Some(i) = slot(fd) {
        FLAGS[i].store(f, Ordering::Relaxed);
        RCV_TIMEO_MS[i].store(0, Ordering::Relaxed);
        SND_TIMEO_MS[i].store(0, Ordering::Relaxed);
    }
}

/// A socket of ours that the user wants to behave as blocking.
#[inline]
fn managed_blocking(fd: libc::c_int) -> bool {
    patched() && flags(fd) == MANAGED
}
