//! Platform code, in one place (as mio keeps its `sys/`): what io-shim asks of the OS
//! beyond std, socket2 and mio. Only Linux is implemented (the runtime stops other
//! targets at compile time): `fd`, `accept4` with `SOCK_NONBLOCK | SOCK_CLOEXEC`. The
//! monkey hooks (feature `monkey`) are Linux's libc interposition by nature and live in
//! `monkey/`.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::fd;
