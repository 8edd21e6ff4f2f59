//! Errors of greenlets and timeouts.

use std::io;

/// Why a greenlet has no value.
///
/// ```
/// let g = greenhub::spawn(|| -> u32 { panic!("boom") });
/// assert_eq!(g.get(), Err(greenhub::GreenletError::Panicked("boom".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GreenletError {
    /// The greenlet panicked; the panic message.
    #[error("greenlet panicked: {0}")]
    Panicked(String),
    /// The greenlet was killed (before starting, or by unwinding from where it waited).
    #[error("greenlet was killed")]
    Killed,
}

/// The error of [`crate::with_timeout`] when its time ran out.
///
/// ```
/// use std::time::Duration;
/// let r = greenhub::with_timeout(Duration::from_millis(5), || {
///     greenhub::sleep(Duration::from_secs(10));
/// });
/// assert_eq!(r, Err(greenhub::TimedOut));
/// let e: std::io::Error = greenhub::TimedOut.into();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("operation timed out")]
pub struct TimedOut;

impl From<TimedOut> for io::Error {
    fn from(_: TimedOut) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, TimedOut)
    }
}

/// Unwinding payload of `kill`: recognised by the greenlet body wrapper.
pub(crate) struct KillSignal;

/// Unwinding payload of a `with_timeout` expiry: recognised by the owning `with_timeout`.
pub(crate) struct TimeoutSignal(pub(crate) u64);

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_string()
    }
}
