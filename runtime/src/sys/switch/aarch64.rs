//! The AArch64 (AAPCS64) context switch.

use std::arch::asm;

/// Saves the running context in `*save` and resumes the context saved at `resume`;
/// returns when another switch resumes the saved context.
///
/// # Safety
/// As for the x86-64 switch: `save` is valid for a pointer-sized write and read by
/// nothing else until this context is resumed; `resume` is a stack pointer saved by
/// `switch` or returned by [`prepare`], of a stack that is still mapped, and that context
/// is resumed by nobody else.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, resume: *mut u8) {
    // SAFETY: per the contract. The asm stores a 32-byte frame below the stack pointer
    // (the stack pointer stays 16-byte aligned): the resume address, then x19 and x29,
    // which Rust's inline asm cannot declare clobbered (LLVM reserves them); it
    // publishes the stack pointer through `save`, loads `resume`'s, reads its resume
    // address and branches there with x30 (the link register) zeroed, so a fresh
    // context's entry sees no return address. Resumed, the context continues at label
    // 2, restores x19 and x29 and pops its frame; x20-x28, x30 and the callee-saved
    // halves of v8-v15 are declared clobbered, so the compiler saves whatever it keeps
    // live in them, and every caller-saved register is clobbered by `clobber_abi`. The
    // floating-point control register is shared by all contexts of a thread.
    unsafe {
        asm!(
            "adr x2, 2f",
            "sub sp, sp, #32",
            "str x2, [sp]",
            "stp x19, x29, [sp, #16]",
            "mov x3, sp",
            "str x3, [x0]",
            "mov sp, x1",
            "ldr x2, [sp]",
            "mov x30, xzr",
            "br x2",
            "2:",
            "ldp x19, x29, [sp, #16]",
            "add sp, sp, #32",
            in("x0") save,
            in("x1") resume,
            lateout("x20") _,
            lateout("x21") _,
            lateout("x22") _,
            lateout("x23") _,
            lateout("x24") _,
            lateout("x25") _,
            lateout("x26") _,
            lateout("x27") _,
            lateout("x28") _,
            lateout("x30") _,
            lateout("v8") _,
            lateout("v9") _,
            lateout("v10") _,
            lateout("v11") _,
            lateout("v12") _,
            lateout("v13") _,
            lateout("v14") _,
            lateout("v15") _,
            clobber_abi("C"),
        );
    }
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
