//! The x86-64 (System V) context switch.

use std::arch::asm;

/// Saves the running context in `*save` and resumes the context saved at `resume`;
/// returns when another switch resumes the saved context.
///
/// # Safety
/// - `save` is valid for a pointer-sized write, and what it points to is not read or
///   written by anything else until this context is resumed;
/// - `resume` is a stack pointer saved by `switch` (a suspended context) or returned by
///   [`prepare`] (a fresh one), of a stack that is still mapped, and that context is not
///   resumed by anyone else: resuming a context twice runs two executions on one stack.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, resume: *mut u8) {
    // SAFETY: per the contract. The asm pushes the frame described in `mod.rs` (rbp,
    // rbx, the resume address) below the current stack pointer (allowed: no `nostack`,
    // so the compiler keeps the red zone free), publishes the stack pointer through
    // `save`, loads `resume`'s, pops its resume address and jumps there. Resumed, the
    // context continues at label 2, restores rbx and rbp, and the compiler restores
    // whatever else it keeps live: r12-r15 and every caller-saved register are declared
    // clobbered. Memory is not `nomem`: other contexts read and write it meanwhile.
    // The direction flag is clear at every switch (the ABI requires it at calls), and
    // MXCSR / the x87 control word are shared by all contexts of a thread.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [rdi], rsp",
            "mov rsp, rsi",
            "pop rax",
            "jmp rax",
            "2:",
            "pop rbx",
            "pop rbp",
            in("rdi") save,
            in("rsi") resume,
            lateout("r12") _,
            lateout("r13") _,
            lateout("r14") _,
            lateout("r15") _,
            clobber_abi("sysv64"),
        );
    }
}
