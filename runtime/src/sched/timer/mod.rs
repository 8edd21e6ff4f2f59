//! The hub's timers: an indexed binary heap ordered by (deadline, insertion order).
//!
//! Insert and cancel are O(log n) and cancel really removes the entry, so a million
//! `with_timeout` calls that finish in time leave the heap as small as it was. Entries
//! live in a slab whose slots are reused; the heap holds slot numbers and each slot
//! knows its heap position. A [`TimerKey`] carries the slot and the entry's sequence
//! number, so cancelling an entry that already fired (and whose slot was reused) is a
//! harmless no-op.

mod guard;

use std::time::Instant;

pub(crate) use guard::{TimerAction, TimerGuard};

/// Identifies one armed timer for cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    slot: u32,
    seq: u64,
}

#[derive(Clone, Copy)]
struct HeapEntry {
    deadline: Instant,
    seq: u64,
    slot: u32,
}

impl HeapEntry {
    #[inline]
    fn before(&self, other: &HeapEntry) -> bool {
        (self.deadline, self.seq) < (other.deadline, other.seq)
    }
}

struct Slot<A> {
    seq: u64,
    pos: u32,
    action: Option<A>,
}

/// Timers carrying an action `A` each.
///
/// Invariants (checked with `debug_assert!` at each change, in O(1)):
/// - every armed timer has one heap entry and one slot with an action, and the slot's
///   `pos` is that entry's index (`heap[slots[s].pos].slot == s`);
/// - slots without an action are exactly those in `free`
///   (`heap.len() + free.len() == slots.len()`);
/// - the heap is ordered by `(deadline, seq)`, so equal deadlines fire in insertion order.
pub(crate) struct Timers<A> {
    heap: Vec<HeapEntry>,
    slots: Vec<Slot<A>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<A> Timers<A> {
    pub(crate) const fn new() -> Self {
        Timers { heap: Vec::new(), slots: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Number of slots ever allocated (for memory-flatness tests).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|e| e.deadline)
    }

    /// Arms a timer; equal deadlines fire in insertion order.
    pub(crate) fn insert(&mut self, deadline: Instant, action: A) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let pos = self.heap.len() as u32;
        let slot = match self.free.pop() {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.seq = seq;
                s.pos = pos;
                s.action = Some(action);
                slot
            }
            None => {
                self.slots.push(Slot { seq, pos, action: Some(action) });
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(HeapEntry { deadline, seq, slot });
        self.sift_up(pos as usize);
        debug_assert_eq!(self.heap[self.slots[slot as usize].pos as usize].slot, slot);
        debug_assert_eq!(self.heap.len() + self.free.len(), self.slots.len());
        TimerKey { slot, seq }
    }

    /// Disarms a timer; returns its action if it had not fired yet.
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<A> {
        let s = self.slots.get(key.slot as usize)?;
        if s.seq != key.seq || s.action.is_none() {
            return None;
        }
        let pos = s.pos as usize;
        debug_assert_eq!(self.heap[pos].slot, key.slot, "an armed slot knows its heap entry");
        Some(self.remove_at(pos))
    }

    /// Removes the earliest timer if its deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<A> {
        match self.heap.first() {
            Some(e) if e.deadline <= now => Some(self.remove_at(0)),
            _ => None,
        }
    }

    /// Removes every timer, returning their actions (used when the hub is torn down).
    pub(crate) fn drain(&mut self) -> Vec<A> {
        self.heap.clear();
        self.free.clear();
        self.slots.drain(..).filter_map(|s| s.action).collect()
    }

    fn remove_at(&mut self, pos: usize) -> A {
        let entry = self.heap.swap_remove(pos);
        if pos < self.heap.len() {
            let moved = self.heap[pos].slot;
            self.slots[moved as usize].pos = pos as u32;
            self.sift_down(pos);
            self.sift_up(pos);
        }
        let slot = &mut self.slots[entry.slot as usize];
        self.free.push(entry.slot);
        let action = slot.action.take().expect("an armed timer has an action");
        debug_assert_eq!(self.heap.len() + self.free.len(), self.slots.len());
        action
    }

    fn sift_up(&mut self, mut pos: usize) {
        let entry = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !entry.before(&self.heap[parent]) {
                break;
            }
            self.heap[pos] = self.heap[parent];
            self.slots[self.heap[pos].slot as usize].pos = pos as u32;
            pos = parent;
        }
        self.heap[pos] = entry;
        self.slots[entry.slot as usize].pos = pos as u32;
    }

    fn sift_down(&mut self, mut pos: usize) {
        let len = self.heap.len();
        let entry = self.heap[pos];
        loop {
            let left = 2 * pos + 1;
            if left >= len {
                break;
            }
            let right = left + 1;
            let child = if right < len && self.heap[right].before(&self.heap[left]) { right } else { left };
            if !self.heap[child].before(&entry) {
                break;
            }
            self.heap[pos] = self.heap[child];
            self.slots[self.heap[pos].slot as usize].pos = pos as u32;
            pos = child;
        }
        self.heap[pos] = entry;
        self.slots[entry.slot as usize].pos = pos as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        t.insert(t0 + Duration::from_millis(30), "c");
        t.insert(t0 + Duration::from_millis(10), "a");
        t.insert(t0 + Duration::from_millis(20), "b1");
        t.insert(t0 + Duration::from_millis(20), "b2");
        t.insert(t0 + Duration::from_millis(20), "b3");
        let mut out = vec![];
        while let Some(a) = t.pop_expired(t0 + Duration::from_millis(25)) {
            out.push(a);
        }
        assert_eq!(out, ["a", "b1", "b2", "b3"]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(30)));
    }

    #[test]
    fn cancel_removes_and_stale_keys_are_ignored() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        let keys: Vec<_> = (0..100u64).map(|i| t.insert(t0 + Duration::from_millis(i * 7 % 31), i)).collect();
        for k in keys.iter().step_by(2) {
            assert!(t.cancel(*k).is_some());
        }
        assert!(t.cancel(keys[0]).is_none());
        let mut fired = vec![];
        while let Some(a) = t.pop_expired(t0 + Duration::from_secs(1)) {
            fired.push(a);
        }
        let mut want: Vec<u64> = (1..100).step_by(2).collect();
        want.sort_by_key(|i| (i * 7 % 31, *i));
        assert_eq!(fired, want);
        // A reused slot does not answer to an old key.
        let k = t.insert(t0, 1000);
        assert!(t.cancel(keys[1]).is_none());
        assert_eq!(t.cancel(k), Some(1000));
    }

    #[test]
    fn churn_keeps_memory_flat() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        let outer = t.insert(t0 + Duration::from_secs(60), 0u64);
        for i in 0..100_000u64 {
            let k = t.insert(t0 + Duration::from_secs(10 + i % 5), i);
            assert_eq!(t.cancel(k), Some(i));
        }
        assert_eq!(t.len(), 1);
        assert_eq!(t.capacity(), 2);
        assert_eq!(t.cancel(outer), Some(0));
    }
}
