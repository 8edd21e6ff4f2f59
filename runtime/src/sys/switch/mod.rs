//! The context switch: save the running context's stack pointer, resume another one.
//!
//! A context is a stack pointer. A suspended context's stack holds, from that pointer
//! up: the address to resume at, then the two registers the compiler does not let
//! inline asm clobber (`rbx`, `rbp` on x86-64; `x19`, `x29` on AArch64); every other
//! register the compiler keeps live across a switch it saves itself, because the switch
//! tells it they are clobbered. So switching costs a few stores and loads and one indirect jump,
//! from any greenlet straight to any other (symmetric; corosensei's coroutines are
//! asymmetric: resume and suspend, two switches per hand-over through a scheduler).
//!
//! x86-64 and AArch64 are implemented (the targets `lib.rs` accepts); both are tested,
//! AArch64 under qemu-user (docs/architecture.md).

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::switch;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::switch;

/// Lays out a fresh context on the stack below `top`, so that the first `switch` to the
/// returned stack pointer calls `entry` there; `entry` must never return.
///
/// The frame is the same on both architectures: `entry` at the returned pointer, three
/// zero words above it. x86-64 pops `entry` and jumps with the stack pointer at
/// `top - 24`, which is what a `call` leaves (16-byte aligned before it, the return
/// address above): the return address `entry` sees is 0. AArch64 reads `entry` and
/// branches with the stack pointer at `top - 32` (16-byte aligned, as AAPCS64 requires)
/// and a zero link register. Either way a backtrace or frame-pointer walk ends there.
///
/// # Safety
/// `top` is 16-byte aligned, and the 32 bytes below it are mapped, writable and not in
/// use (the top of a stack nothing runs on).
pub(crate) unsafe fn prepare(top: *mut u8, entry: extern "C" fn() -> !) -> *mut u8 {
    debug_assert_eq!(top as usize % 16, 0, "a stack top is 16-byte aligned");
    // SAFETY: the 4 words below `top` are ours (contract), and `top` is aligned for them.
    unsafe {
        let sp = top.cast::<usize>().sub(4);
        sp.write(entry as usize);
        sp.add(1).write(0);
        sp.add(2).write(0);
        sp.add(3).write(0);
        sp.cast()
    }
}

/// A hint to start loading the cache line at `p` (never faults, whatever `p` is).
#[inline(always)]
pub(crate) fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint: it reads no architectural state and does not fault,
    // even for an unmapped address; SSE is part of the x86-64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `prfm` is a hint: it does not fault, whatever the address.
    unsafe {
        std::arch::asm!("prfm pldl1keep, [{p}]", p = in(reg) p, options(nostack, readonly, preserves_flags))
    };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("greenhub's context switch is implemented for x86-64 and AArch64 only");

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::ptr;

    thread_local! {
        static MAIN: Cell<*mut u8> = const { Cell::new(ptr::null_mut()) };
        static SIDE: Cell<*mut u8> = const { Cell::new(ptr::null_mut()) };
        static LOG: Cell<u64> = const { Cell::new(0) };
    }

    extern "C" fn side() -> ! {
        let mut local = 7u64; // lives on the side stack across switches
        loop {
            LOG.with(|l| l.set(l.get() * 10 + local));
            local += 1;
            // SAFETY: MAIN holds the main context saved by the switch that got here,
            // and SIDE is written by this switch before anything reads it.
            unsafe { switch(SIDE.with(|s| s.as_ptr()), MAIN.with(Cell::get)) };
        }
    }

    #[test]
    fn switches_there_and_back_keeping_both_stacks() {
        let mut stack = vec![0u128; 1024]; // 16 KiB, 16-byte aligned
        let top = stack.as_mut_ptr_range().end.cast::<u8>();
        // SAFETY: the top of a buffer nothing runs on, 16-byte aligned.
        SIDE.with(|s| s.set(unsafe { prepare(top, side) }));
        let mut mine = 1u64;
        for _ in 0..3 {
            // SAFETY: SIDE is a prepared or suspended context on `stack`, which outlives
            // the loop; MAIN is written by this switch and read only by `side`.
            unsafe { switch(MAIN.with(|m| m.as_ptr()), SIDE.with(Cell::get)) };
            mine += 1;
        }
        assert_eq!(LOG.with(Cell::get), 789, "the side context ran three times, keeping its local");
        assert_eq!(mine, 4, "and this one kept its own");
        drop(stack); // the side context is abandoned suspended: nothing on it needs a drop
    }
}
