//! The context switch: save the running context's stack pointer, resume another one.
//!
//! A context is a stack pointer: a suspended context's stack holds, from that pointer
//! up, what its switch saved. So switching costs a few stores and loads and one
//! indirect jump, from any greenlet straight to any other (symmetric; corosensei's
//! coroutines are asymmetric: resume and suspend, two switches per hand-over through a
//! scheduler).
//!
//! The switch is an inline asm, so each switch site has its own indirect jump (the
//! branch predictor learns each site's targets; one shared switch function, called,
//! returns through a `ret` the return-stack buffer mispredicts whenever the two
//! contexts switched from different call sites).
//! - x86-64: the asm pushes `rbx` and `rbp` (which inline asm cannot declare
//!   clobbered) and the resume address, and declares `r12`–`r15` clobbered with the
//!   caller-saved registers, so the compiler saves only what it has live in them. The
//!   fourth pass of #17 had the asm push all six (then a yield's caller saved one
//!   register); since then the functions around the park's switches push `r12`–`r15`
//!   in their prologues anyway, so all six in the asm were a second copy on every park:
//!   the clobbers are back (eighth pass: echo 891 → 856 instructions per message,
//!   spawn + join 861 → 851, the yield's 60 unchanged; docs/performance.md).
//! - AArch64: the asm stores the resume address and all the callee-saved general
//!   registers `x19`–`x29` (what x86-64 did from the fourth pass to the eighth; not
//!   measured here, see docs/performance.md) and declares the link register and the
//!   caller-saved registers clobbered (it used to store only `x19`/`x29`, which LLVM
//!   does not let inline asm clobber, and declare `x20`–`x28` clobbered). The vector
//!   registers stay declared clobbered, all of them: AAPCS64 preserves only the low
//!   halves of `v8`–`v15`, so the compiler saves `d8`–`d15` where it uses them.
//!
//! x86-64 and AArch64 are implemented (the targets `lib.rs` accepts); both are tested,
//! AArch64 under qemu-user (docs/architecture.md).

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{prepare, switch};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{prepare, switch};

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

    thread_local! {
        static PASSED: Cell<usize> = const { Cell::new(0) };
    }

    extern "C" fn side() -> ! {
        let mut local = 7u64; // lives on the side stack across switches
        let mut passed = PASSED.with(Cell::get); // the first switch's, as the entry has no argument
        loop {
            LOG.with(|l| l.set(l.get() * 10 + local));
            PASSED.with(|p| p.set(passed));
            local += 1;
            // SAFETY: MAIN holds the main context saved by the switch that got here,
            // and SIDE is written by this switch before anything reads it.
            passed = unsafe {
                switch(SIDE.with(|s| s.as_ptr()), MAIN.with(Cell::get), ptr::without_provenance(100 + local as usize))
            } as usize;
        }
    }

    #[test]
    fn switches_there_and_back_keeping_both_stacks() {
        let mut stack = vec![0u128; 1024]; // 16 KiB, 16-byte aligned
        let top = stack.as_mut_ptr_range().end.cast::<u8>();
        // SAFETY: the top of a buffer nothing runs on, 16-byte aligned.
        SIDE.with(|s| s.set(unsafe { prepare(top, side) }));
        let mut mine = 1u64;
        let mut back = Vec::new();
        for round in 0..3usize {
            PASSED.with(|p| p.set(round)); // what the side's entry starts from
                                           // SAFETY: SIDE is a prepared or suspended context on `stack`, which outlives
                                           // the loop; MAIN is written by this switch and read only by `side`.
            let got =
                unsafe { switch(MAIN.with(|m| m.as_ptr()), SIDE.with(Cell::get), ptr::without_provenance(round)) };
            back.push((got as usize, PASSED.with(Cell::get)));
            mine += 1;
        }
        assert_eq!(LOG.with(Cell::get), 789, "the side context ran three times, keeping its local");
        assert_eq!(mine, 4, "and this one kept its own");
        assert_eq!(back, [(108, 0), (109, 1), (110, 2)], "each switch hands its value to the context it resumes");
        drop(stack); // the side context is abandoned suspended: nothing on it needs a drop
    }

    thread_local! {
        static BAD: Cell<u32> = const { Cell::new(0) };
    }

    /// Eight values live across a switch: more than the callee-saved registers, so the
    /// compiler keeps some of them there (the switch must restore them, each to its own
    /// register) and spills the rest (the stack must be the context's own again).
    ///
    /// # Safety
    /// As for [`switch`]: `there` is the running context's save slot, `back` a suspended
    /// or prepared context on a stack that outlives the switch.
    #[inline(always)]
    unsafe fn live_across(seed: u64, there: *mut *mut u8, back: *mut u8) -> bool {
        use std::hint::black_box;
        let v: [u64; 8] = std::array::from_fn(|i| black_box(seed.wrapping_mul(i as u64 + 3)));
        let [a, b, c, d, e, f, g, h] = v;
        // SAFETY: this function's contract.
        unsafe { switch(there, back, ptr::null()) };
        let after = [a, b, c, d, e, f, g, h];
        after.iter().enumerate().all(|(i, x)| *x == seed.wrapping_mul(i as u64 + 3))
    }

    extern "C" fn side_registers() -> ! {
        let mut round = 0u64;
        loop {
            round += 1;
            // SAFETY: MAIN holds the main context saved by the switch that got here,
            // and SIDE is written by this switch before anything reads it.
            let kept = unsafe { live_across(0x5eed_0000 + round, SIDE.with(|s| s.as_ptr()), MAIN.with(Cell::get)) };
            if !kept {
                BAD.with(|b| b.set(b.get() + 1));
            }
        }
    }

    #[test]
    fn registers_and_spills_survive_a_switch_on_both_sides() {
        let mut stack = vec![0u128; 1024];
        let top = stack.as_mut_ptr_range().end.cast::<u8>();
        // SAFETY: the top of a buffer nothing runs on, 16-byte aligned.
        SIDE.with(|s| s.set(unsafe { prepare(top, side_registers) }));
        let mut kept = 0;
        for round in 0..50u64 {
            // SAFETY: SIDE is a prepared or suspended context on `stack`, which outlives
            // the loop; MAIN is written by this switch and read only by the side.
            if unsafe {
                live_across(round.wrapping_mul(0x9e37_79b9_7f4a_7c15), MAIN.with(|m| m.as_ptr()), SIDE.with(Cell::get))
            } {
                kept += 1;
            }
        }
        assert_eq!(kept, 50, "every value of this context came back");
        assert_eq!(BAD.with(Cell::get), 0, "and every value of the side context");
        drop(stack);
    }
}
