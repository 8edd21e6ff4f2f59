//! The panic hook that names the greenlet that panicked, and keeps the per-greenlet
//! unwinding state (`unwind.rs`).

use std::io::{self, Write as _};
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

use crate::error::panic_message;
use crate::sched::hub;
use crate::sched::unwind;

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// stderr for reports from inside the runtime: write errors are ignored (a closed pipe,
/// `example 2>&1 | head -3`, must not turn a report into a panic, which inside the panic
/// hook would abort the process).
pub(crate) struct Stderr;

impl io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = io::stderr().write_all(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// Installs (once per process) a hook that
/// - records that the panicking greenlet (or greenlet zero) starts unwinding;
/// - reports a panic inside a greenlet as `greenlet '<name>' (#<id>) panicked at
///   <file:line>:` and the message, once;
/// - chains to the hook that was installed before: for a greenlet's panic only if that
///   is not std's default hook (which would print the same panic a second time, naming
///   the thread instead of the greenlet), for every other panic always.
///
/// While the hook runs for a greenlet no other greenlet of its hub runs, even if a
/// chained hook waits (writes to a patched socket, sleeps): std aborts the process if
/// any panic (a kill or timeout thrown into another greenlet included) starts on this
/// thread while a hook runs.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        let default = panic::take_hook(); // take_hook left std's default in place
        let previous_is_default = std::ptr::eq(&*previous as *const _, &*default as *const _);
        drop(default);
        panic::set_hook(Box::new(move |info| hook(&previous, previous_is_default, info)));
    });
}

fn hook(previous: &Hook, previous_is_default: bool, info: &PanicHookInfo<'_>) {
    // Never creates a hub: a thread without one just gets the previous hook.
    let who = hub::if_exists(|h| {
        let task = h.try_current()?;
        unwind::begin(h, &task);
        h.enter_panic_hook(&task).then_some(task)
    })
    .flatten();
    let Some(task) = who else {
        previous(info);
        return;
    };
    if !task.is_root() {
        report(task.id(), &task.name(), info);
    }
    if task.is_root() || !previous_is_default {
        previous(info);
    }
    hub::if_exists(|h| h.leave_panic_hook());
}

fn report(id: u64, name: &str, info: &PanicHookInfo<'_>) {
    let msg = panic_message(info.payload());
    let at = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
    let bt = std::backtrace::Backtrace::capture();
    let bt = match bt.status() {
        std::backtrace::BacktraceStatus::Captured => format!("\nstack backtrace:\n{bt}"),
        _ => String::new(),
    };
    if crate::diag::log::to_subscriber() {
        let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        crate::diag::log::panicked(id, name, &msg, at.as_deref().unwrap_or(""), bt.trim_start());
        return;
    }
    let _ = writeln!(Stderr, "greenlet '{name}' (#{id}) panicked{}:\n{msg}{bt}", at.unwrap_or_default());
}
