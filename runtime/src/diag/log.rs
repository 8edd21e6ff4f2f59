//! Feature `tracing`: greenhub's reports as `tracing` events, next to stderr.
//!
//! Without the feature every function here is a no-op and reports go to stderr only.
//! With it, greenlet lifecycle events are emitted at `debug` (spawn, finish, kill, with
//! the greenlet's id and name; target `greenhub`), and the reports — a greenlet's panic,
//! the blocking detector, LoopExit — as `error`/`warn` events; a report goes to stderr
//! as before unless a `tracing` subscriber is installed (then it goes to the subscriber
//! only, so nothing is printed twice). The stack overflow report stays on stderr: it runs
//! in a signal handler, where a subscriber could deadlock or allocate.

/// Whether reports go to a `tracing` subscriber instead of stderr.
#[inline]
pub(crate) fn to_subscriber() -> bool {
    #[cfg(feature = "tracing")]
    {
        tracing::dispatcher::has_been_set()
    }
    #[cfg(not(feature = "tracing"))]
    {
        false
    }
}

/// A greenlet was spawned.
#[inline]
pub(crate) fn spawned(id: u64, name: Option<&str>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "greenhub", id, greenlet = name.unwrap_or(""), "spawn");
    #[cfg(not(feature = "tracing"))]
    let _ = (id, name);
}

/// A greenlet finished; `outcome` is `ok`, `killed` or `panicked`.
#[inline]
pub(crate) fn finished(id: u64, name: Option<&str>, outcome: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "greenhub", id, greenlet = name.unwrap_or(""), outcome, "finish");
    #[cfg(not(feature = "tracing"))]
    let _ = (id, name, outcome);
}

/// A greenlet was killed (the kill is delivered when it next waits).
#[inline]
pub(crate) fn killed(id: u64, name: Option<&str>) {
    #[cfg(feature = "tracing")]
    tracing::debug!(target: "greenhub", id, greenlet = name.unwrap_or(""), "kill");
    #[cfg(not(feature = "tracing"))]
    let _ = (id, name);
}

/// A greenlet panicked (the report stderr would get, as an `error` event; the
/// backtrace, if captured, is its last field).
pub(crate) fn panicked(id: u64, name: &str, message: &str, location: &str, backtrace: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "greenhub", id, greenlet = name, location, backtrace, "greenlet panicked: {message}");
    #[cfg(not(feature = "tracing"))]
    let _ = (id, name, message, location, backtrace);
}

/// The blocking detector's report, as a `warn` event.
pub(crate) fn blocking(who: &str, ms: u128, limit: u64, thread: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(target: "greenhub", who, ran_ms = ms as u64, limit_ms = limit, thread, "{who} has run for {ms} ms without switching (limit {limit} ms)");
    #[cfg(not(feature = "tracing"))]
    let _ = (who, ms, limit, thread);
}

/// LoopExit, as an `error` event (the panic follows).
pub(crate) fn loop_exit(message: &str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "greenhub", "{message}");
    #[cfg(not(feature = "tracing"))]
    let _ = message;
}
