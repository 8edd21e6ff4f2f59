//! Memory mappings for greenlet stacks (policy — slabs, classes, pools — is `stack.rs`).

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `madvise` advice installing a guard region (Linux 6.13); not yet in the libc crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// The system page size.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Maps `len` bytes of anonymous read-write memory without reserving swap for it
/// (`MAP_NORESERVE`: only touched pages cost memory) and with huge pages off (a stack
/// touches a few pages; a huge page would commit 2 MiB). Returns the base address.
pub(crate) fn map_reserved(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing
    // aliases nothing.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the range was just mapped by us. Failure only means huge pages stay
    // possible, which costs memory but not correctness.
    unsafe {
        libc::madvise(base, len, libc::MADV_NOHUGEPAGE);
    }
    Ok(base as usize)
}

/// Unmaps `[base, base + len)`.
///
/// # Safety
/// The range was mapped by [`map_reserved`] and nothing refers into it any more.
pub(crate) unsafe fn unmap(base: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and unused.
    unsafe {
        libc::munmap(base as *mut libc::c_void, len);
    }
}

/// Gives the kernel back the memory of `[addr, addr + len)`, keeping the address range
/// (the pages read as zero when touched again).
///
/// # Safety
/// The range lies in a mapping of ours, read-write, and nothing refers to its contents.
pub(crate) unsafe fn release(addr: usize, len: usize) {
    // SAFETY: the caller guarantees the range is ours and its contents dead.
    unsafe {
        libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED);
    }
}

/// Makes the page at `addr` fault on any access with `MADV_GUARD_INSTALL` (no extra
/// kernel mapping). `EINVAL` means the kernel predates it (before 6.13).
///
/// # Safety
/// `addr` is a page of a mapping of ours that nothing uses.
pub(crate) unsafe fn guard_madvise(addr: usize, page: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the page is ours and unused.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the page at `addr` fault on any access with `mprotect(PROT_NONE)` (splits the
/// mapping: one more kernel VMA per guard page).
///
/// # Safety
/// As for [`guard_madvise`].
pub(crate) unsafe fn guard_mprotect(addr: usize, page: usize) -> io::Result<()> {
    // SAFETY: the caller guarantees the page is ours and unused; it becomes inaccessible.
    let r = unsafe { libc::mprotect(addr as *mut libc::c_void, page, libc::PROT_NONE) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
