//! `Members`: a pool's live greenlets, by slot number.
//!
//! A server's pool holds one member per open connection, and every connection joins and
//! leaves it once: both are O(1) here (a slot from a free list), with no tree or hash
//! on the way. The rare walks over all members (`kill`, membership of the caller) take
//! them in spawn order by a sequence number each member carries.

use std::rc::Rc;

use crate::sched::task::Task;

/// One member: its spawn sequence number, its task once spawned, and whether a `kill`
/// of the pool has already been sent to it (gevent's `Group.dying`: a member that
/// survives a kill is not killed again by the pool).
pub(super) struct Member {
    seq: u64,
    pub(super) task: Option<Rc<Task>>,
    pub(super) dying: bool,
}

/// Invariant: `free` lists exactly the empty entries of `slots`, each once.
#[derive(Default)]
pub(super) struct Members {
    slots: Vec<Option<Member>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl Members {
    /// Adds a member without a task yet; its slot number.
    pub(super) fn join(&mut self) -> u32 {
        let member = Member { seq: self.next_seq, task: None, dying: false };
        self.next_seq += 1;
        match self.free.pop() {
            Some(s) => {
                debug_assert!(self.slots[s as usize].is_none(), "free slot {s} occupied");
                self.slots[s as usize] = Some(member);
                s
            }
            None => {
                self.slots.push(Some(member));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 members")
            }
        }
    }

    /// The member in `slot`.
    pub(super) fn get_mut(&mut self, slot: u32) -> Option<&mut Member> {
        self.slots.get_mut(slot as usize)?.as_mut()
    }

    /// Removes the member in `slot` (which must be occupied).
    pub(super) fn leave(&mut self, slot: u32) {
        let gone = self.slots.get_mut(slot as usize).and_then(Option::take);
        debug_assert!(gone.is_some(), "slot {slot} left twice");
        if gone.is_some() {
            self.free.push(slot);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slots.len() == self.free.len()
    }

    /// The members, in spawn order.
    pub(super) fn in_order(&mut self) -> Vec<&mut Member> {
        let mut all: Vec<&mut Member> = self.slots.iter_mut().flatten().collect();
        all.sort_unstable_by_key(|m| m.seq);
        all
    }

    /// Whether `task` is a member's.
    pub(super) fn contains(&self, task: &Rc<Task>) -> bool {
        self.slots.iter().flatten().any(|m| m.task.as_ref().is_some_and(|t| Rc::ptr_eq(t, task)))
    }
}

#[cfg(test)]
mod tests {
    use super::Members;

    #[test]
    fn slots_are_reused_and_order_is_spawn_order() {
        let mut m = Members::default();
        let (a, b, c) = (m.join(), m.join(), m.join());
        assert_eq!((a, b, c), (0, 1, 2));
        m.leave(a);
        let d = m.join(); // reuses slot 0 but was spawned last
        assert_eq!(d, 0);
        m.get_mut(b).unwrap().dying = true;
        let order: Vec<(u64, bool)> = m.in_order().iter().map(|x| (x.seq, x.dying)).collect();
        assert_eq!(order, [(1, true), (2, false), (3, false)]);
        m.leave(b);
        m.leave(c);
        assert!(!m.is_empty());
        m.leave(d);
        assert!(m.is_empty());
        assert!(m.get_mut(d).is_none());
    }
}
