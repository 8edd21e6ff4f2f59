//! The waiters of one cross-thread object, in arrival order (kept under its lock).

use std::collections::VecDeque;

use super::loom::Arc;
use super::waiter::{Waiter, WOKEN};

/// One registered wait: the waiter, the case index it is served with (its position in a
/// `select`, else 0) and what it brings (a blocked sender's item).
pub(crate) struct Entry<P> {
    pub(crate) key: u64,
    pub(crate) waiter: Arc<Waiter>,
    pub(crate) case: usize,
    pub(crate) payload: P,
}

/// Waiters in FIFO order. An entry leaves the list when it is claimed through it, or
/// when its owner removes it (after withdrawing, or after being claimed through another
/// list of a `select`); entries that cannot be claimed are skipped, never dropped, so
/// their payload always goes back to their owner.
pub(crate) struct WaitList<P = ()> {
    entries: VecDeque<Entry<P>>,
    next_key: u64,
}

impl<P> Default for WaitList<P> {
    fn default() -> Self {
        WaitList { entries: VecDeque::new(), next_key: 0 }
    }
}

impl<P> WaitList<P> {
    /// Registers `waiter` at the back; returns the key its owner removes it with.
    pub(crate) fn push(&mut self, waiter: Arc<Waiter>, case: usize, payload: P) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.entries.push_back(Entry { key, waiter, case, payload });
        key
    }

    /// Removes the owner's entry (`None` if it was claimed through this list).
    pub(crate) fn remove(&mut self, key: u64) -> Option<Entry<P>> {
        // Keys are increasing along the list.
        let i = self.entries.binary_search_by_key(&key, |e| e.key).ok()?;
        self.entries.remove(i)
    }

    /// Claims the first waiter that can still be claimed, as served with its case index
    /// (`serve`) or as merely [`WOKEN`]; removes and returns its entry. The caller wakes
    /// it after releasing the lock.
    pub(crate) fn claim_first(&mut self, serve: bool) -> Option<Entry<P>> {
        let i = self.entries.iter().position(|e| e.waiter.try_claim(if serve { e.case } else { WOKEN }))?;
        self.entries.remove(i)
    }

    /// Whether a waiter could be claimed now.
    pub(crate) fn has_waiting(&self) -> bool {
        self.entries.iter().any(|e| e.waiter.is_waiting())
    }

    /// Claims every waiter that can be claimed, as [`WOKEN`]; returns them to wake.
    pub(crate) fn claim_all(&mut self) -> Vec<Entry<P>> {
        let mut claimed = Vec::new();
        let mut kept = VecDeque::with_capacity(self.entries.len());
        for e in self.entries.drain(..) {
            if e.waiter.try_claim(WOKEN) {
                claimed.push(e);
            } else {
                kept.push_back(e);
            }
        }
        self.entries = kept;
        claimed
    }

    /// Claims every waiter that can be claimed, as [`WOKEN`], keeping their entries
    /// (their owners take their payloads back); returns them to wake.
    pub(crate) fn claim_all_keep(&mut self) -> Vec<Arc<Waiter>> {
        self.entries.iter().filter(|e| e.waiter.try_claim(WOKEN)).map(|e| e.waiter.clone()).collect()
    }

    /// Registered entries (claimable or not).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
