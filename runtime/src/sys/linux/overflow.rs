//! Stack overflow reports: a SIGSEGV/SIGBUS handler that recognises greenhub guard
//! pages, prints one line naming the greenlet, and aborts.
//!
//! The handler runs on the thread's alternate signal stack (std gives its threads one;
//! a hub thread without one gets one). A fault anywhere else is handed to the handler
//! that was installed before (std's, which reports the thread's own stack overflow or
//! restores the default action). The slab table it searches is a fixed array of atomics,
//! written when a slab is mapped and read without locks, so the handler never allocates
//! or takes a lock.

use std::fmt::Write as _;
use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use crate::sched::hub;

/// Slabs whose guard pages are recognised (512 GiB of 256 KiB stacks at 32 MiB a slab).
const MAX_SLABS: usize = 16 * 1024;

/// (base, len, stride, usable stack size) of each slab, 0 = unused.
static SLAB_BASE: [AtomicUsize; MAX_SLABS] = [const { AtomicUsize::new(0) }; MAX_SLABS];
static SLAB_LEN: [AtomicUsize; MAX_SLABS] = [const { AtomicUsize::new(0) }; MAX_SLABS];
static SLAB_STRIDE: [AtomicUsize; MAX_SLABS] = [const { AtomicUsize::new(0) }; MAX_SLABS];
static SLAB_SIZE: [AtomicUsize; MAX_SLABS] = [const { AtomicUsize::new(0) }; MAX_SLABS];
static SLAB_COUNT: AtomicUsize = AtomicUsize::new(0);

static mut PREV_SEGV: mem::MaybeUninit<libc::sigaction> = mem::MaybeUninit::uninit();
static mut PREV_BUS: mem::MaybeUninit<libc::sigaction> = mem::MaybeUninit::uninit();

/// Records a slab: stacks of `stride` bytes (guard page first) with `size` usable bytes
/// each, from `base`.
pub(crate) fn register_slab(base: usize, len: usize, stride: usize, size: usize) {
    let i = SLAB_COUNT.fetch_add(1, Ordering::AcqRel);
    if i < MAX_SLABS {
        SLAB_LEN[i].store(len, Ordering::Relaxed);
        SLAB_STRIDE[i].store(stride, Ordering::Relaxed);
        SLAB_SIZE[i].store(size, Ordering::Relaxed);
        SLAB_BASE[i].store(base, Ordering::Release);
    }
}

/// The usable stack size if `addr` lies in a guard page of ours.
fn guard_hit(addr: usize) -> Option<usize> {
    let page = crate::sched::stack::page_size();
    let n = SLAB_COUNT.load(Ordering::Acquire).min(MAX_SLABS);
    for i in 0..n {
        let base = SLAB_BASE[i].load(Ordering::Acquire);
        let len = SLAB_LEN[i].load(Ordering::Relaxed);
        if base == 0 || addr < base || addr >= base + len {
            continue;
        }
        let stride = SLAB_STRIDE[i].load(Ordering::Relaxed);
        let size = SLAB_SIZE[i].load(Ordering::Relaxed);
        return ((addr - base) % stride < page).then_some(size);
    }
    None
}

/// Installs the handler (once per process) and makes sure this thread has an
/// alternate signal stack.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sigaction with a zeroed struct, our handler and SA_SIGINFO|SA_ONSTACK;
        // the previous actions are saved before any fault can reach our handler (the
        // stores happen inside call_once, before the first greenlet stack exists).
        unsafe {
            let mut action: libc::sigaction = mem::zeroed();
            action.sa_sigaction = on_fault as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, ptr::addr_of_mut!(PREV_SEGV).cast());
            libc::sigaction(libc::SIGBUS, &action, ptr::addr_of_mut!(PREV_BUS).cast());
        }
    });
    ensure_altstack();
}

/// Gives the calling thread an alternate signal stack if it has none (never freed: the
/// thread may fault until it exits).
fn ensure_altstack() {
    // SAFETY: sigaltstack reads/writes only the structs we pass; the new stack is a
    // fresh private mapping that stays mapped for the rest of the process.
    unsafe {
        let mut old: libc::stack_t = mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) != 0 || old.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let size = 64 * 1024;
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let st = libc::stack_t { ss_sp: mem, ss_flags: 0, ss_size: size };
        libc::sigaltstack(&st, ptr::null_mut());
    }
}

/// A fixed buffer for formatting without allocating.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(stack) = guard_hit(addr) {
        let mut line = Line { buf: [0; 512], len: 0 };
        // Best effort: the hub's current task is readable without allocating (and
        // `if_exists` never creates a hub: a thread without one has no greenlets).
        let who = hub::if_exists(|h| {
            h.current_for_report(|id, name| {
                let _ = match name {
                    Some(n) => write!(line, "greenhub: greenlet '{n}' (#{id})"),
                    None => write!(line, "greenhub: greenlet 'greenlet-{id}' (#{id})"),
                };
            })
        });
        if who.flatten().is_none() {
            let _ = write!(line, "greenhub: a greenlet");
        }
        let _ = writeln!(
            line,
            " overflowed its {} KiB stack; give it a bigger one with \
             greenhub::Builder::new().stack_size(bytes) (the default is {} KiB)",
            stack / 1024,
            crate::sched::stack::DEFAULT_STACK_SIZE / 1024
        );
        // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer is ours.
        unsafe {
            libc::write(2, line.buf.as_ptr().cast(), line.len);
            libc::abort();
        }
    }
    // Not ours: hand it to whoever handled it before.
    // SAFETY: PREV_* were filled by sigaction in `install` before this handler could run.
    let prev = unsafe {
        if sig == libc::SIGBUS {
            ptr::addr_of!(PREV_BUS).read().assume_init()
        } else {
            ptr::addr_of!(PREV_SEGV).read().assume_init()
        }
    };
    if prev.sa_flags & libc::SA_SIGINFO != 0 && prev.sa_sigaction > libc::SIG_IGN {
        // SAFETY: a SA_SIGINFO handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(prev.sa_sigaction) };
        f(sig, info, ctx);
    } else if prev.sa_sigaction > libc::SIG_IGN {
        // SAFETY: a plain handler has this signature.
        let f: extern "C" fn(libc::c_int) = unsafe { mem::transmute(prev.sa_sigaction) };
        f(sig);
    } else {
        // Default action: restore it and return; the faulting instruction runs again
        // and the kernel applies it (a core dump).
        // SAFETY: resetting the disposition of a signal to SIG_DFL.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}
