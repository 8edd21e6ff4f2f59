//! The panic hook that names the greenlet that panicked.

use std::panic;
use std::sync::Once;

use crate::error::panic_message;
use crate::hub;

/// Installs (once per process) a hook that reports a panic inside a greenlet as
/// `greenlet '<name>' (#<id>) panicked at <file:line>:` and the message, and hands
/// every other panic to the hook that was installed before.
pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let who = hub::try_with(|h| h.current_identity()).flatten();
            match who {
                None => previous(info),
                Some((id, name)) => {
                    let msg = panic_message(info.payload());
                    let at = info.location().map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()));
                    let bt = std::backtrace::Backtrace::capture();
                    let bt = match bt.status() {
                        std::backtrace::BacktraceStatus::Captured => format!("\nstack backtrace:\n{bt}"),
                        _ => String::new(),
                    };
                    eprintln!("greenlet '{name}' (#{id}) panicked{}:\n{msg}{bt}", at.unwrap_or_default());
                }
            }
        }));
    });
}
