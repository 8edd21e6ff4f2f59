//! The hub's table of live greenlets, indexed by slot (other threads name a greenlet
//! by slot and id: `SendToken`, `kill_slot`).
//!
//! Invariants:
//! - `free` lists exactly the empty slots of `tasks`, each once;
//! - a task in slot `s` has `task.slot() == s` and is not finished (it is removed by
//!   `Hub::finish`, before its joiners wake).

use std::rc::Rc;

use crate::sched::task::Task;

/// Live greenlets, indexed by their slot.
#[derive(Default)]
pub(super) struct Live {
    tasks: Vec<Option<Rc<Task>>>,
    free: Vec<u32>,
}

impl Live {
    /// Occupied slots.
    #[inline]
    pub(super) fn count(&self) -> usize {
        self.tasks.len() - self.free.len()
    }

    /// Puts `task` into a free slot (reusing the most recently freed) and returns it.
    #[inline(always)]
    pub(super) fn insert(&mut self, task: &Rc<Task>) -> u32 {
        let slot = match self.free.pop() {
            Some(s) => {
                debug_assert!(self.tasks[s as usize].is_none(), "free slot {s} is occupied");
                self.tasks[s as usize] = Some(task.clone());
                s
            }
            None => {
                self.tasks.push(Some(task.clone()));
                (self.tasks.len() - 1) as u32
            }
        };
        task.set_slot(slot);
        slot
    }

    /// Empties `slot`, returning its task.
    #[inline(always)]
    pub(super) fn remove(&mut self, slot: u32) -> Option<Rc<Task>> {
        let task = self.tasks.get_mut(slot as usize).and_then(Option::take);
        debug_assert!(task.is_some(), "slot {slot} removed twice");
        if task.is_some() {
            self.free.push(slot);
        }
        debug_assert!(self.free.len() <= self.tasks.len());
        task
    }

    /// The task in `slot` if it is still greenlet `id` (slots are reused).
    #[inline]
    pub(super) fn get(&self, slot: u32, id: u64) -> Option<Rc<Task>> {
        self.tasks.get(slot as usize).and_then(|t| t.clone()).filter(|t| t.id() == id)
    }

    /// The live tasks, in slot order.
    #[inline]
    pub(super) fn iter(&self) -> impl Iterator<Item = &Rc<Task>> {
        self.tasks.iter().flatten()
    }

    /// Empties the table (the hub's `Drop`), returning every task.
    #[inline]
    pub(super) fn drain(&mut self) -> Vec<Rc<Task>> {
        self.free.clear();
        self.tasks.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_ids_checked() {
        let mut live = Live::default();
        let (a, b) = (Rc::new(Task::new(1, None, 0)), Rc::new(Task::new(2, None, 0)));
        assert_eq!((live.insert(&a), live.insert(&b)), (0, 1));
        assert_eq!(live.count(), 2);
        assert!(live.remove(0).is_some_and(|t| t.id() == 1));
        assert_eq!(live.count(), 1);
        let c = Rc::new(Task::new(3, None, 0));
        assert_eq!(live.insert(&c), 0, "the freed slot is reused");
        assert_eq!(c.slot(), 0);
        assert!(live.get(0, 1).is_none(), "a stale (slot, id) finds nothing");
        assert_eq!(live.get(0, 3).map(|t| t.id()), Some(3));
        assert_eq!(live.iter().map(|t| t.id()).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(live.drain().len(), 2);
        assert_eq!(live.count(), 0);
    }
}
