//! Greenlet stacks: carved from large slabs, guarded, pooled per thread.
//!
//! A stack is `size` usable bytes above one guard page, with its colour page (two where
//! the stride needs it, see "Colour" below) on top. Stacks are carved from slabs of
//! several megabytes mapped with `MAP_NORESERVE` (only touched pages cost memory) and
//! `MADV_NOHUGEPAGE` (a 2 MiB huge page behind a 4 KiB stack top would multiply RSS).
//! Guard pages are installed with `madvise(MADV_GUARD_INSTALL)` where the kernel has it
//! (Linux >= 6.13): it splits no mapping, so a million stacks stay far below
//! `vm.max_map_count`. Older kernels fall back to `mprotect(PROT_NONE)`, which costs
//! a mapping split (two VMAs) per stack, like corosensei's `DefaultStack`.
//!
//! Slabs are never unmapped: a finished greenlet's stack returns to its thread's free
//! list (LIFO, so the next spawn gets cache-warm memory and makes no syscall). A
//! thread that exits hands its free stacks to a process-wide list that other threads
//! draw from. Free stacks beyond `HOT_STACKS` (131,072) per size are returned to the
//! kernel with `MADV_DONTNEED` (their address range stays reserved for reuse).
//!
//! **Colour.** A greenlet does not start at its stack's page-aligned top but up to
//! 1,984 bytes below it, a multiple of a cache line chosen by the top's address
//! ([`PooledStack::start`]). With every start at the same offset in its page, the few
//! lines a parked greenlet's switch reads back (its saved registers and the frames it
//! returns through) would sit at the same page offset in every stack, and caches index
//! their sets by the offset's bits: a thousand stacks would compete for 1/64 of the sets
//! of every level while the rest stays idle. Measured under cachegrind at 1,000 echo
//! connections: 8.5 last-level misses per message without colour, none with it
//! (docs/performance.md, eighth pass). The colour page keeps `size` usable below any
//! start; the colours stay within half a page, so a greenlet that parks with a shallow
//! stack still touches one page.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

use corosensei::stack::{Stack, StackPointer};

use crate::sys;

/// Default usable stack size of a greenlet: 256 KiB.
///
/// Only the pages a greenlet touches cost memory (typically one or two), so the size
/// is a limit, not a cost. 256 KiB is deep enough for ordinary Rust (`std::io::copy`'s
/// 8 KiB buffer, TLS handshakes, DNS parsing, recursive parsers) where 16-64 KiB stacks
/// overflow in practice; [`crate::Builder::stack_size`] chooses another size.
///
/// ```
/// assert_eq!(greenhub::DEFAULT_STACK_SIZE, 256 * 1024);
/// ```
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// Smallest usable stack size accepted (smaller requests are rounded up).
///
/// ```
/// let g = greenhub::Builder::new().stack_size(1).spawn(|| ()); // rounded up
/// g.join();
/// assert!(greenhub::MIN_STACK_SIZE >= 16 * 1024);
/// ```
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Free stacks per size kept warm by a thread; more are released with `MADV_DONTNEED`.
///
/// Releasing costs a syscall per stack and a page fault at its next use (measured: a
/// 100k spawn+join batch went from 0.29 µs to 6.6 µs per greenlet with a cap of 1,024),
/// so a thread keeps the stacks of its largest burst, up to this many, like an allocator
/// keeps its peak.
const HOT_STACKS: usize = 128 * 1024;

/// Colours a stack start can have (each a cache line lower than the previous).
const COLOURS: usize = 32;
/// The step between colours: a cache line.
const COLOUR_STEP: usize = 64;
const _: () = assert!(COLOURS * COLOUR_STEP <= 2048, "colours stay within half of the smallest page");

/// Bytes from one stack's guard page to the next one's: the guard page, the usable
/// bytes and the colour page, plus one more page where that makes the number of pages
/// even. An odd number of pages apart, neighbouring stacks fall on every page position
/// of a set-associative TLB's or cache's index (an even stride leaves half unused).
fn stride(size: usize, page: usize) -> usize {
    ((size / page + 2) | 1) * page
}

/// How far below the page-aligned `top` a stack's start lies: a multiple of a cache
/// line below [`COLOURS`] lines, spread over neighbouring stacks by a multiplicative
/// (Fibonacci) hash of the top's 4 KiB-page number, which scatters any arithmetic
/// sequence of tops (a slab's) evenly over the colours. A shift and a multiply: no
/// division on the spawn path.
#[inline]
fn colour(top: usize) -> usize {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let hash = ((top >> 12) as u64).wrapping_mul(GOLDEN);
    (hash >> (u64::BITS - COLOURS.trailing_zeros())) as usize * COLOUR_STEP
}

/// Target bytes of one slab; a slab holds at least one stack.
const SLAB_BYTES: usize = 32 * 1024 * 1024;

const GUARD_UNKNOWN: u8 = 0;
const GUARD_MADVISE: u8 = 1;
const GUARD_MPROTECT: u8 = 2;
/// How guard pages are installed on this kernel, found out by the first slab.
static GUARD_METHOD: AtomicU8 = AtomicU8::new(GUARD_UNKNOWN);

/// Slabs mapped by this process so far.
static SLABS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Free stacks given back by threads that exited, by usable size.
static ORPHANS: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

thread_local! {
    static POOL: RefCell<StackPool> = const { RefCell::new(StackPool { classes: Vec::new() }) };
}

pub(crate) use crate::sys::mem::page_size;

/// Largest usable stack size accepted: 1 TiB (only touched pages cost memory, but the
/// address space of a slab must exist). A larger request is an `InvalidInput` error
/// from [`crate::Builder::try_spawn`].
///
/// ```
/// assert_eq!(greenhub::diag::MAX_STACK_SIZE, 1 << 40);
/// let e = greenhub::Builder::new().stack_size(greenhub::diag::MAX_STACK_SIZE + 1).try_spawn(|| ()).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub const MAX_STACK_SIZE: usize = 1 << 40;

/// Rounds a requested size to the usable size of its class (a page multiple); sizes
/// above [`MAX_STACK_SIZE`] are an `InvalidInput` error (never a wrapped size).
pub(crate) fn class_size(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("greenlet stack size {requested} is larger than the maximum of {MAX_STACK_SIZE} bytes"),
        ));
    }
    let page = page_size();
    debug_assert!(page.is_power_of_two());
    // Rounded up to whole pages with a mask (a page is a power of two): no division.
    Ok((requested.max(MIN_STACK_SIZE) + page - 1) & !(page - 1))
}

/// A greenlet stack. Dropping it returns it to the current thread's pool.
///
/// Layout, from `top` down: the colour page (two where `stride` makes it so), `size`
/// usable bytes, the guard page. The stack grows down from [`PooledStack::start`], in
/// the colour page, so at least `size` bytes lie between the start and the guard page.
pub(crate) struct PooledStack {
    /// Highest address of the stack's mapping (page aligned).
    top: usize,
    /// Usable bytes below the colour page; the guard page lies below those.
    size: usize,
}

impl std::fmt::Debug for PooledStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledStack").field("top", &format_args!("{:#x}", self.top)).field("size", &self.size).finish()
    }
}

impl PooledStack {
    /// Takes a stack of at least `size` usable bytes from the pool, carving a new slab if
    /// the pool is empty.
    #[inline]
    pub(crate) fn take(size: usize) -> io::Result<PooledStack> {
        PooledStack::take_class(class_size(size)?)
    }

    /// Takes a stack of size class `size` (already rounded), leaving the claimed ones.
    #[inline]
    fn take_class(size: usize) -> io::Result<PooledStack> {
        let hit = POOL.try_with(|p| p.borrow_mut().pop(size)).ok().flatten();
        let top = match hit {
            Some(top) => top,
            None => refill(size)?,
        };
        Ok(PooledStack { top, size })
    }

    /// Where the stack starts (it grows down from here): 16-byte aligned, in the colour
    /// page, at least `size` bytes above the guard page (see the module's "Colour").
    #[inline]
    pub(crate) fn start(&self) -> usize {
        let start = self.top - colour(self.top);
        debug_assert!(start % 16 == 0 && start > self.top - page_size(), "a start lies in the colour page, aligned");
        debug_assert!(start - self.guard() >= self.size + page_size(), "`size` bytes above the guard page");
        start
    }

    /// The lowest address of the stack's mapping: the guard page's.
    #[inline]
    fn guard(&self) -> usize {
        self.top - stride(self.size, page_size())
    }

    /// Usable size in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }
}

impl Drop for PooledStack {
    #[inline]
    fn drop(&mut self) {
        let (top, size) = (self.top, self.size);
        let kept = POOL.try_with(|p| p.borrow_mut().push(size, top)).is_ok();
        if !kept {
            // The thread's pool is gone (thread exit): give the stack to other threads.
            ORPHANS.lock().unwrap_or_else(|e| e.into_inner()).push((size, top));
        }
    }
}

/// A promise of one stack of a size class from this thread's pool: the pool keeps at
/// least as many free stacks as there are claims (`Class` invariant), so redeeming a
/// claim never maps memory and never fails while the pool exists. A spawned greenlet
/// holds one until it starts; running out of memory is therefore the spawn's error, and
/// a greenlet that has not started touches no stack.
#[derive(Debug)]
pub(crate) struct StackClaim {
    size: usize,
}

impl StackClaim {
    /// Claims a stack of at least `size` usable bytes, carving a slab if the pool has
    /// no unclaimed free stack.
    #[inline]
    pub(crate) fn new(size: usize) -> io::Result<StackClaim> {
        let size = class_size(size)?;
        let spare = POOL.try_with(|p| p.borrow_mut().claim(size)).unwrap_or(true);
        if !spare {
            let top = refill(size)?;
            let _ = POOL.try_with(|p| {
                let mut p = p.borrow_mut();
                let class = p.class(size);
                class.free.push(top);
                class.claimed += 1;
            });
        }
        Ok(StackClaim { size })
    }

    /// The usable size of the claimed stack.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Takes the claimed stack.
    #[inline]
    pub(crate) fn redeem(self) -> io::Result<PooledStack> {
        let size = self.size;
        drop(self); // the claim goes first: its stack is then an unclaimed free one
        PooledStack::take_class(size)
    }
}

impl Drop for StackClaim {
    #[inline]
    fn drop(&mut self) {
        let _ = POOL.try_with(|p| p.borrow_mut().unclaim(self.size));
    }
}

// SAFETY: `start()` is 16-byte aligned (STACK_ALIGNMENT) and the bytes from it down to
// the guard page (at least `size`) are mapped read-write, with the guard page below
// them faulting on access; `limit` is that guard page's lowest address (`guard()`).
// The memory is owned exclusively by this value until it is dropped back into the pool.
unsafe impl Stack for PooledStack {
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.start()).expect("stack start is never null")
    }

    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.guard()).expect("stack limit is never null")
    }
}

/// Per-thread free stacks, by size class.
struct StackPool {
    classes: Vec<Class>,
}

/// Invariant: `claimed <= free.len()` (the claims of unstarted greenlets can always be
/// redeemed; `pop` leaves the claimed stacks to them).
struct Class {
    size: usize,
    free: Vec<usize>,
    claimed: usize,
}

impl StackPool {
    #[inline]
    fn class(&mut self, size: usize) -> &mut Class {
        // Nearly every program uses one stack size: the first class, without a search.
        if self.classes.first().is_some_and(|c| c.size == size) {
            return &mut self.classes[0];
        }
        self.class_slow(size)
    }

    #[cold]
    fn class_slow(&mut self, size: usize) -> &mut Class {
        let i = match self.classes.iter().position(|c| c.size == size) {
            Some(i) => i,
            None => {
                self.classes.push(Class { size, free: Vec::new(), claimed: 0 });
                self.classes.len() - 1
            }
        };
        &mut self.classes[i]
    }

    /// An unclaimed free stack, if there is one.
    #[inline]
    fn pop(&mut self, size: usize) -> Option<usize> {
        let class = self.class(size);
        if class.free.len() > class.claimed {
            class.free.pop()
        } else {
            None
        }
    }

    /// Claims an unclaimed free stack; `false` if there is none (the caller adds one).
    #[inline]
    fn claim(&mut self, size: usize) -> bool {
        let class = self.class(size);
        if class.free.len() > class.claimed {
            class.claimed += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn unclaim(&mut self, size: usize) {
        let class = self.class(size);
        debug_assert!(class.claimed > 0, "a claim is given back once");
        class.claimed = class.claimed.saturating_sub(1);
    }

    #[inline]
    fn push(&mut self, size: usize, top: usize) {
        let class = self.class(size);
        if class.free.len() >= HOT_STACKS {
            release(top, size);
        }
        class.free.push(top);
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
        for class in self.classes.drain(..) {
            orphans.extend(class.free.into_iter().map(|top| (class.size, top)));
        }
    }
}

/// Gives the kernel back the memory of a free stack, keeping its address range.
fn release(top: usize, size: usize) {
    let page = page_size();
    // All but the guard page: the usable bytes and the colour page(s).
    let len = stride(size, page) - page;
    // SAFETY: [top - len, top) is the part above the guard page of a free stack of
    // ours, mapped read-write; nothing refers to its contents any more.
    unsafe { sys::mem::release(top - len, len) }
}

/// Fills this thread's pool for `size`, from orphans or a new slab; returns one stack.
#[cold]
fn refill(size: usize) -> io::Result<usize> {
    {
        let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = orphans.iter().position(|&(s, _)| s == size) {
            return Ok(orphans.swap_remove(i).1);
        }
    }
    let mut tops = carve_slab(size)?;
    let first = tops.pop().expect("a slab holds at least one stack");
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let class = p.class(size);
        // Lowest addresses last, so they are handed out first.
        class.free.extend(tops.into_iter().rev());
    });
    Ok(first)
}

/// Maps a slab and installs one guard page per stack; returns the stacks' tops.
fn carve_slab(size: usize) -> io::Result<Vec<usize>> {
    let page = page_size();
    let stride = stride(size, page);
    let count = (SLAB_BYTES / stride).max(1);
    let len = stride * count;
    let base = sys::mem::map_reserved(len)?;
    SLABS.fetch_add(1, Ordering::Relaxed);
    sys::overflow::install();
    sys::overflow::register_slab(base, len, stride, size);
    let mut tops = Vec::with_capacity(count);
    for i in 0..count {
        let guard = base + i * stride;
        if let Err(e) = install_guard(guard, page) {
            // SAFETY: unmapping the slab we mapped above; nothing uses it yet.
            unsafe { sys::mem::unmap(base, len) }
            return Err(e);
        }
        tops.push(guard + stride);
    }
    Ok(tops)
}

/// Makes the page at `addr` fault on any access: `MADV_GUARD_INSTALL` where the kernel
/// has it (found out once), else `mprotect`.
fn install_guard(addr: usize, page: usize) -> io::Result<()> {
    let method = GUARD_METHOD.load(Ordering::Relaxed);
    if method != GUARD_MPROTECT {
        // SAFETY: `addr` is a page of a slab we mapped and have not handed out.
        match unsafe { sys::mem::guard_madvise(addr, page) } {
            Ok(()) => {
                GUARD_METHOD.store(GUARD_MADVISE, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) if method == GUARD_MADVISE || e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
            Err(_) => GUARD_METHOD.store(GUARD_MPROTECT, Ordering::Relaxed),
        }
    }
    // SAFETY: as above; the page becomes inaccessible.
    unsafe { sys::mem::guard_mprotect(addr, page) }
}

/// How the guard page below each greenlet stack is installed.
///
/// Compares equal to its name (`"madvise"`, `"mprotect"`, `"unknown"`), which is also
/// its `Display`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GuardMethod {
    /// `madvise(MADV_GUARD_INSTALL)` (Linux ≥ 6.13): splits no mapping, so a million
    /// stacks fit the default `vm.max_map_count`.
    Madvise,
    /// `mprotect(PROT_NONE)` (older kernels): two mappings per stack.
    Mprotect,
    /// No stack slab has been mapped yet: not decided.
    Unknown,
}

impl GuardMethod {
    /// The method's name: `"madvise"`, `"mprotect"` or `"unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardMethod::Madvise => "madvise",
            GuardMethod::Mprotect => "mprotect",
            GuardMethod::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for GuardMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for GuardMethod {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How guard pages are installed in this process (decided by the first stack slab).
///
/// ```
/// use greenhub::diag::GuardMethod;
/// let _ = greenhub::spawn(|| ()).get();
/// let method = greenhub::diag::stack_guard_method();
/// assert!(matches!(method, GuardMethod::Madvise | GuardMethod::Mprotect), "{method}");
/// assert!(method == "madvise" || method == "mprotect");
/// ```
pub fn guard_method() -> GuardMethod {
    match GUARD_METHOD.load(Ordering::Relaxed) {
        GUARD_MADVISE => GuardMethod::Madvise,
        GUARD_MPROTECT => GuardMethod::Mprotect,
        _ => GuardMethod::Unknown,
    }
}

/// Number of stack slabs this process has mapped so far. After warm-up, spawning
/// reuses pooled stacks and this number stays put: a spawn makes no `mmap`.
///
/// ```
/// let _ = greenhub::spawn(|| ()).get();
/// let before = greenhub::stack_slabs();
/// for _ in 0..10 { let _ = greenhub::spawn(|| ()).get(); }
/// assert_eq!(greenhub::stack_slabs(), before);
/// ```
pub fn stack_slabs() -> usize {
    SLABS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_and_claimed(size: usize) -> (usize, usize) {
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            let c = p.class(size);
            (c.free.len(), c.claimed)
        })
    }

    /// A greenlet's claim is given back whichever way it ends before it starts (killed)
    /// and redeemed when it starts; a started greenlet's stack comes back when it ends.
    #[test]
    fn a_greenlet_killed_before_it_starts_gives_its_claim_back() {
        let size = class_size(DEFAULT_STACK_SIZE).unwrap();
        let before = free_and_claimed(size).1;
        let gs: Vec<_> = (0..10).map(|i| crate::spawn(move || i)).collect();
        assert_eq!(free_and_claimed(size).1, before + 10, "each unstarted greenlet holds a claim");
        for g in &gs[..4] {
            g.kill();
        }
        assert_eq!(free_and_claimed(size).1, before + 6, "a kill before the start gives it back");
        let values: Vec<_> = gs.into_iter().map(|g| g.get().ok()).collect();
        assert_eq!(values, [None, None, None, None, Some(4), Some(5), Some(6), Some(7), Some(8), Some(9)]);
        assert_eq!(free_and_claimed(size).1, before, "the others redeemed theirs");
    }

    /// Every stack has its full usable size between its start and its guard page, and
    /// is mapped there (both ends written); starts are cache-line multiples within half
    /// a page below the top, spread over the colours; strides are an odd page count.
    #[test]
    fn stacks_start_coloured_above_their_usable_size() {
        let page = page_size();
        for requested in [MIN_STACK_SIZE, MIN_STACK_SIZE + page, DEFAULT_STACK_SIZE, 3 * DEFAULT_STACK_SIZE + page] {
            let size = class_size(requested).unwrap();
            assert_eq!(stride(size, page) / page % 2, 1, "stride of {size}");
            let stacks: Vec<PooledStack> = (0..2 * COLOURS).map(|_| PooledStack::take(size).unwrap()).collect();
            let mut colours = std::collections::BTreeSet::new();
            for st in &stacks {
                let (start, guard) = (st.start(), st.guard());
                let below_top = st.top - start;
                assert!(below_top < COLOURS * COLOUR_STEP && below_top % COLOUR_STEP == 0, "{below_top}");
                assert!(start - (guard + page) >= size, "{size} usable bytes above the guard page");
                // SAFETY: both bytes lie between the start and the guard page of a stack
                // this test owns and nothing runs on.
                unsafe {
                    ((guard + page) as *mut u8).write_volatile(1);
                    ((start - 1) as *mut u8).write_volatile(2);
                }
                colours.insert(below_top);
            }
            // 64 stacks of one slab (or two) over 32 colours: nearly all of them used.
            assert!(colours.len() >= COLOURS * 3 / 4, "{} colours for size {size}", colours.len());
        }
    }

    #[test]
    fn claimed_stacks_are_left_to_their_claims() {
        // A size no other test on this thread uses.
        let size = class_size(MIN_STACK_SIZE + 3 * page_size()).unwrap();
        let first = StackClaim::new(size).unwrap();
        let (free, claimed) = free_and_claimed(size);
        assert_eq!(claimed, 1);
        // Claim every free stack: then an unclaimed take must carve a new slab.
        let rest: Vec<StackClaim> = (1..free).map(|_| StackClaim::new(size).unwrap()).collect();
        assert_eq!(free_and_claimed(size), (free, free));
        let taken = PooledStack::take(size).unwrap();
        let (free2, claimed2) = free_and_claimed(size);
        assert_eq!(claimed2, free);
        assert!(free2 >= claimed2, "a take never eats into the claims");
        // Every claim redeems, without touching the others' stacks.
        let stacks: Vec<PooledStack> = rest.into_iter().map(|c| c.redeem().unwrap()).collect();
        assert_eq!(free_and_claimed(size).1, 1);
        drop(first);
        assert_eq!(free_and_claimed(size).1, 0, "a dropped claim is given back");
        drop(stacks);
        drop(taken);
        assert_eq!(free_and_claimed(size), (free2 + 1, 0));
    }
}
