//! The greenlets waiting on one direction of one fd: the first held inline, the rest
//! (two greenlets reading one socket, a rare case) spilled to the heap.
//!
//! An fd's entry in the reactor's table holds two of these (readers, writers). Holding
//! the usual single waiter inline keeps the whole entry in one cache line: the event
//! that wakes a connection and the wait that follows touch that line and no separate
//! list buffer (docs/performance.md, sixth pass).
//!
//! Invariant (`debug_assert!`ed): `first` is `None` only when `more` is empty, so the
//! waiters in order are `first` then `more`.

use crate::sched::task::Token;

#[derive(Default)]
pub(crate) struct Waiters {
    first: Option<Token>,
    /// Boxed on purpose: `Option<Box<Vec<_>>>` is one word where `Vec` is three, and
    /// those two words are what keep an fd's entry within one cache line.
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Token>>>,
}

impl Waiters {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.check();
        self.first.is_none()
    }

    /// Adds a waiter at the back.
    #[inline]
    pub(crate) fn push(&mut self, token: Token) {
        match self.first {
            None => self.first = Some(token),
            Some(_) => self.more.get_or_insert_with(Default::default).push(token),
        }
        self.check();
    }

    /// Moves every waiter, in order, to the back of `out`.
    #[inline]
    pub(crate) fn take_into(&mut self, out: &mut Vec<Token>) {
        if let Some(t) = self.first.take() {
            out.push(t);
            if let Some(more) = self.more.take() {
                out.extend(*more);
            }
        }
    }

    /// Keeps only the waiters for which `keep` holds, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Token) -> bool) {
        if let Some(more) = &mut self.more {
            more.retain(&mut keep);
        }
        if self.first.as_ref().is_some_and(|t| !keep(t)) {
            self.first = None;
        }
        if self.first.is_none() {
            if let Some(more) = &mut self.more {
                if !more.is_empty() {
                    self.first = Some(more.remove(0));
                }
            }
        }
        if self.more.as_ref().is_some_and(|m| m.is_empty()) {
            self.more = None;
        }
        self.check();
    }

    /// The waiters in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Token> {
        self.first.iter().chain(self.more.iter().flat_map(|m| m.iter()))
    }

    #[inline]
    fn check(&self) {
        debug_assert!(
            self.first.is_some() || self.more.as_ref().is_none_or(|m| m.is_empty()),
            "waiters spilled while the first slot is free"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::sched::task::Task;

    fn token(id: u64) -> Token {
        let task = Rc::new(Task::new(id, None, 0));
        Token { epoch: task.epoch(), task }
    }

    fn ids(w: &Waiters) -> Vec<u64> {
        w.iter().map(|t| t.task.id()).collect()
    }

    #[test]
    fn waiters_keep_their_order_inline_and_spilled() {
        let mut w = Waiters::default();
        assert!(w.is_empty());
        w.push(token(1));
        assert!(!w.is_empty());
        assert!(w.more.is_none(), "one waiter stays inline");
        w.push(token(2));
        w.push(token(3));
        assert_eq!(ids(&w), [1, 2, 3]);
        let mut out = vec![token(9)];
        w.take_into(&mut out);
        assert!(w.is_empty() && w.more.is_none());
        assert_eq!(out.iter().map(|t| t.task.id()).collect::<Vec<_>>(), [9, 1, 2, 3]);
    }

    #[test]
    fn retain_refills_the_first_slot_and_drops_an_empty_spill() {
        let mut w = Waiters::default();
        for id in 1..=4 {
            w.push(token(id));
        }
        w.retain(|t| t.task.id() != 1);
        assert_eq!(ids(&w), [2, 3, 4]);
        w.retain(|t| t.task.id() == 4);
        assert_eq!(ids(&w), [4]);
        assert!(w.more.is_none(), "the last spilled waiter moved inline");
        w.retain(|_| false);
        assert!(w.is_empty());
        let mut out = Vec::new();
        w.take_into(&mut out);
        assert!(out.is_empty());
    }
}
