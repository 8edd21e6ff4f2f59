//! Helpers shared by the integration tests: an ordered event log.

use std::cell::RefCell;
use std::rc::Rc;

/// An ordered log of events, shared between greenlets.
pub type Log = Rc<RefCell<Vec<String>>>;

/// An empty log.
pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

/// Appends an event.
pub fn push(l: &Log, s: impl Into<String>) {
    l.borrow_mut().push(s.into());
}

/// The events, space-separated.
pub fn joined(l: &Log) -> String {
    l.borrow().join(" ")
}
