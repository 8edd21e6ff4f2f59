//! The x86-64 (System V) context switch.

use std::arch::asm;

/// Saves the running context in `*save` and resumes the context saved at `resume`,
/// handing it `pass`; returns when another switch resumes the saved context, with the
/// `pass` of that switch. (The hub passes the task it switches to, so a resumed task
/// gets itself back and keeps nothing in a register across the switch.)
///
/// # Safety
/// - `save` is valid for a pointer-sized write, and what it points to is not read or
///   written by anything else until this context is resumed;
/// - `resume` is a stack pointer saved by `switch` (a suspended context) or returned by
///   [`prepare`] (a fresh one), of a stack that is still mapped, and that context is not
///   resumed by anyone else: resuming a context twice runs two executions on one stack.
#[inline(always)]
pub(crate) unsafe fn switch(save: *mut *mut u8, resume: *mut u8, pass: *const u8) -> *const u8 {
    let passed: *const u8;
    // SAFETY: per the contract. The asm pushes the frame `prepare` also lays out below
    // the current stack pointer (allowed: no `nostack`, so the compiler keeps the red
    // zone free): `rbp` and `rbx` (the callee-saved registers `asm!` cannot name), then
    // the resume address. It publishes the stack pointer through `save`, loads
    // `resume`'s, pops its resume address and jumps there, with `pass` in `rdx` all
    // along (a fresh context's entry takes no argument and ignores it). `save` and
    // `resume` may be in any general register but `rax` (the scratch, written before
    // they are read: declared a non-late output), `rdx` and `r12`–`r15` (outputs too);
    // the pushes leave them as they are. Resumed, the context continues at label 2, with
    // its resumer's `pass` in `rdx`, and pops its two registers, so they are as they
    // were. The other callee-saved registers, `r12`–`r15`, are declared clobbered, like
    // every caller-saved one: the compiler keeps nothing in them across the switch that
    // it has not saved itself, and the enclosing function still restores them for its
    // caller, as the ABI requires.
    // Memory is not `nomem`: other contexts read and write it meanwhile. The direction
    // flag is clear at every switch (the ABI requires it at calls), and MXCSR / the x87
    // control word are shared by all contexts of a thread.
    unsafe {
        asm!(
            "push rbp",
            "push rbx",
            "lea rax, [rip + 2f]",
            "push rax",
            "mov [{save}], rsp",
            "mov rsp, {resume}",
            "pop rax",
            "jmp rax",
            "2:",
            "pop rbx",
            "pop rbp",
            save = in(reg) save,
            resume = in(reg) resume,
            inout("rdx") pass => passed,
            // Written before the inputs are read, so not one of them (a `clobber_abi`
            // clobber alone is a late output, which an input may share).
            out("rax") _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    passed
}

/// Lays out a fresh context on the stack below `top`, so that the first `switch` to the
/// returned stack pointer calls `entry` there; `entry` must never return.
///
/// The frame is the resume address (`entry`) with a zero return address above it: the
/// switch pops `entry` and jumps there with the stack pointer at `top - 8`, which is
/// what a `call` leaves (16-byte aligned before it, the return address above), so a
/// backtrace ends there. (The two registers a suspended context's frame holds are
/// popped by the code at its resume address; a fresh context has none.)
///
/// # Safety
/// `top` is 16-byte aligned, and the 16 bytes below it are mapped, writable and not in
/// use (the top of a stack nothing runs on).
pub(crate) unsafe fn prepare(top: *mut u8, entry: extern "C" fn() -> !) -> *mut u8 {
    debug_assert_eq!(top as usize % 16, 0, "a stack top is 16-byte aligned");
    // SAFETY: the 2 words below `top` are ours (contract), and `top` is aligned for them.
    unsafe {
        let sp = top.cast::<usize>().sub(2);
        sp.write(entry as usize);
        sp.add(1).write(0);
        sp.cast()
    }
}
