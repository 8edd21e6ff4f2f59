//! The AArch64 (AAPCS64) context switch.

use std::arch::asm;

/// Saves the running context in `*save` and resumes the context saved at `resume`,
/// handing it `pass`; returns when another switch resumes the saved context, with the
/// `pass` of that switch (see the x86-64 switch).
///
/// # Safety
/// As for the x86-64 switch: `save` is valid for a pointer-sized write and read by
/// nothing else until this context is resumed; `resume` is a stack pointer saved by
/// `switch` or returned by [`prepare`], of a stack that is still mapped, and that context
/// is resumed by nobody else.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, resume: *mut u8, pass: *const u8) -> *const u8 {
    let passed: *const u8;
    // SAFETY: per the contract. The asm stores a 96-byte frame below the stack pointer
    // (which stays 16-byte aligned): the resume address, x29, then the callee-saved
    // x19-x28. It publishes the stack pointer through `save`, loads `resume`'s, reads
    // its resume address and branches there with x30 (the link register) zeroed, so a
    // fresh context's entry sees no return address, and `pass` in x4 all along (the
    // entry ignores it). Resumed, the context continues at label 2 with its resumer's
    // `pass` in x4, reloads its registers from its frame and pops it, so they are as they
    // were. x30 and every caller-saved register are declared clobbered, and so are all
    // of v0-v31 (`clobber_abi("C")` does: only the low halves of v8-v15 are preserved
    // across calls, so the compiler saves d8-d15 itself where it keeps them live — the
    // other contexts may change their high halves). The floating-point control
    // register is shared by all contexts of a thread.
    unsafe {
        asm!(
            "adr x2, 2f",
            "sub sp, sp, #96",
            "str x2, [sp]",
            "stp x19, x20, [sp, #16]",
            "stp x21, x22, [sp, #32]",
            "stp x23, x24, [sp, #48]",
            "stp x25, x26, [sp, #64]",
            "stp x27, x28, [sp, #80]",
            "str x29, [sp, #8]",
            "mov x3, sp",
            "str x3, [x0]",
            "mov sp, x1",
            "ldr x2, [sp]",
            "mov x30, xzr",
            "br x2",
            "2:",
            "ldp x19, x20, [sp, #16]",
            "ldp x21, x22, [sp, #32]",
            "ldp x23, x24, [sp, #48]",
            "ldp x25, x26, [sp, #64]",
            "ldp x27, x28, [sp, #80]",
            "ldr x29, [sp, #8]",
            "add sp, sp, #96",
            in("x0") save,
            in("x1") resume,
            inout("x4") pass => passed,
            lateout("x30") _,
            clobber_abi("C"),
        );
    }
    passed
}

/// Lays out a fresh context on the stack below `top`, so that the first `switch` to the
/// returned stack pointer calls `entry` there; `entry` must never return.
///
/// The frame is what `switch` reads: `entry` at the returned pointer, three zero words
/// above it. The switch reads `entry` and branches with the stack pointer at
/// `top - 32` (16-byte aligned, as AAPCS64 requires) and a zero link register, so a
/// backtrace or frame-pointer walk ends there.
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
