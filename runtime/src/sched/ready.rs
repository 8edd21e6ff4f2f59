//! The run queue: an intrusive FIFO of ready tasks, linked through the tasks themselves
//! (`Task::ready_link`); the hub's run queue and its
//! panic-hook deferrals are two of them, so a push or pop is a few pointer writes and never allocates.
//!
//! Each entry owns one strong count of its task (`Rc::into_raw` on push, `Rc::from_raw`
//! on pop), so a task stays alive while it is queued, whatever happens to its other
//! owners (a ready greenlet killed before it ran keeps its entry until popped).
//!
//! Invariants:
//! - a task's `next` is null exactly while it is in no queue; a queued task's `next` is
//!   the task behind it, or [`END`] for the last one (so "queued" costs no flag of its
//!   own, and popping the last entry needs no look at the tail);
//! - `head` is [`END`] (empty) or a queued task; following `next` from `head` reaches
//!   `tail`, whose `next` is [`END`]; `tail` means nothing while the queue is empty (no
//!   count is kept either: a push or pop is on every switch, the length only on
//!   `stats()`);
//! - a task is in at most one queue, at most once. `push_back`/`push_front` check it with
//!   a real check (not a debug one): linking a task twice would make a cycle, and
//!   popping it twice would release one strong count too many.

use std::cell::Cell;
use std::ptr;
use std::rc::Rc;

use crate::sched::task::Task;

/// The `next` of the last entry, and the `head` of an empty queue: a non-null address
/// that is never a task (no allocation is at address 1), and never dereferenced.
const END: *const Task = ptr::without_provenance(1);

/// A task's link in a [`ReadyQueue`] (a field of `Task`).
pub(crate) struct ReadyLink {
    next: Cell<*const Task>,
}

impl ReadyLink {
    pub(crate) const fn new() -> ReadyLink {
        ReadyLink { next: Cell::new(ptr::null()) }
    }

    /// Whether the task is linked into a queue.
    #[inline]
    pub(crate) fn is_queued(&self) -> bool {
        !self.next.get().is_null()
    }
}

/// The invariant check of the pushes (a real one, see above), out of line. The pushes
/// hold the task as the pointer of its count by then, so the count is leaked, not
/// released, and a push's caller has nothing to drop should it panic (no spill of an
/// `Rc` on the switch path): a yield hands over the count `current` owns
/// (`Hub::switch_to_raw`), which must not be released while `current` still names the
/// task.
#[cold]
#[inline(never)]
fn queued_twice() -> ! {
    panic!("greenhub: a task is queued twice");
}

/// A FIFO of tasks, each owning one strong count.
pub(crate) struct ReadyQueue {
    head: Cell<*const Task>,
    tail: Cell<*const Task>,
}

impl ReadyQueue {
    pub(crate) const fn new() -> ReadyQueue {
        ReadyQueue { head: Cell::new(END), tail: Cell::new(END) }
    }

    /// Number of entries, by walking the queue (diagnostics only).
    pub(crate) fn len(&self) -> usize {
        let mut n = 0;
        let mut p = self.head.get();
        while p != END {
            n += 1;
            // SAFETY: a linked task other than `END` is alive while its entry owns a
            // strong count (invariant); `next` is read and not kept.
            p = unsafe { (*p).ready_link() }.next.get();
        }
        n
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.head.get() == END
    }

    /// Links `task` in at the back.
    #[inline]
    pub(crate) fn push_back(&self, task: Rc<Task>) {
        // SAFETY: `into_raw` gives the pointer of the count `task` owned.
        unsafe { self.push_back_raw(Rc::into_raw(task)) }
    }

    /// `push_back` of a task given as the pointer of a strong count it owns (from
    /// `Rc::into_raw`), which becomes the entry's: the switch path moves counts between
    /// `current` and the queue this way, with no `Rc` to drop should the check panic
    /// (then the count is leaked, `queued_twice` says why).
    ///
    /// # Safety
    /// `task` owns one strong count of a live task (`Rc::into_raw`), handed over here.
    #[inline(always)]
    pub(crate) unsafe fn push_back_raw(&self, task: *const Task) {
        // SAFETY: this function's contract.
        if !unsafe { self.try_push_back_raw(task) } {
            queued_twice();
        }
    }

    /// `push_back_raw` that returns `false` instead of panicking when `task` is queued
    /// already (then nothing changed, and the count is still the caller's): the yield's
    /// fast path leaves that case to the slow one, and so calls nothing itself.
    ///
    /// # Safety
    /// `task` owns one strong count of a live task (`Rc::into_raw`), handed over here
    /// when this returns `true`.
    #[inline(always)]
    pub(crate) unsafe fn try_push_back_raw(&self, task: *const Task) -> bool {
        // SAFETY: the count `task` owns keeps it alive (contract).
        let link = unsafe { (*task).ready_link() };
        if link.is_queued() {
            return false;
        }
        let head = self.head.get(); // before the store, which the compiler lets alias it
        link.next.set(END);
        if head == END {
            self.head.set(task);
        } else {
            // SAFETY: the queue is not empty, so `tail` is a queued task (invariant),
            // kept alive by the strong count its entry owns; only this thread reaches
            // the queue (`Cell`, `!Sync`).
            unsafe { (*self.tail.get()).ready_link().next.set(task) };
        }
        self.tail.set(task);
        true
    }

    /// Links `task` in at the front (it runs next).
    #[inline]
    pub(crate) fn push_front(&self, task: Rc<Task>) {
        let p = Rc::into_raw(task);
        // SAFETY: `p` owns the count `task` had, which keeps it alive.
        if unsafe { (*p).ready_link() }.is_queued() {
            queued_twice();
        }
        // SAFETY: `p` owns a count, and its task is not queued (checked).
        unsafe { self.push_front_raw(p) }
    }

    /// Asks the CPU to start loading what switching to the front task will touch: the
    /// task itself and the top of its saved context. Called when the task before it is
    /// switched to, so that round-robin over many greenlets (each last run a whole
    /// queue ago, its memory long out of cache) overlaps the misses with useful work.
    #[inline]
    pub(crate) fn prefetch_front(&self) {
        let head = self.head.get();
        if head != END {
            crate::sys::switch::prefetch(head.cast());
            // SAFETY: a `head` other than `END` is a queued task, alive while its entry
            // owns a strong count (invariant); it is read here and not kept.
            unsafe { (*head).context() }.prefetch();
        }
    }

    /// `pop_front` as a pointer that owns the entry's strong count (null when empty):
    /// the caller takes it back with `Rc::from_raw`, hands it on (`current`, a push) or
    /// gives it back with [`ReadyQueue::push_front_raw`].
    #[inline(always)]
    pub(crate) fn pop_front_raw(&self) -> *const Task {
        let head = self.head.get();
        if head == END {
            return ptr::null();
        }
        // SAFETY: a `head` other than `END` is a queued task kept alive by its entry's
        // count (invariant); that count goes to the caller with the pointer, once: the
        // task is unlinked before anything else can see the queue.
        let link = unsafe { (*head).ready_link() };
        debug_assert!(link.is_queued());
        // The last entry's `next` is `END`, which empties the queue (`tail` is stale
        // then, and unread until a push sets it).
        self.head.set(link.next.replace(ptr::null()));
        head
    }

    /// Links in at the front a task that is in no queue (one `pop_front_raw` just
    /// returned, say), with the count it owns, unchecked.
    ///
    /// # Safety
    /// `task` owns one strong count of a live task that is not queued (`Rc::into_raw`,
    /// or a pointer from `pop_front_raw`), handed over here.
    #[inline(always)]
    pub(crate) unsafe fn push_front_raw(&self, task: *const Task) {
        // SAFETY: the count `task` owns keeps it alive (contract).
        let link = unsafe { (*task).ready_link() };
        debug_assert!(!link.is_queued(), "not queued (contract)");
        let head = self.head.get();
        if head == END {
            self.tail.set(task);
        }
        link.next.set(head);
        self.head.set(task);
    }

    /// Unlinks the front task and hands back the strong count its entry owned.
    #[inline]
    pub(crate) fn pop_front(&self) -> Option<Rc<Task>> {
        let task = self.pop_front_raw();
        // SAFETY: a non-null pointer from `pop_front_raw` owns the entry's count, which
        // came from `Rc::into_raw` in a push.
        (!task.is_null()).then(|| unsafe { Rc::from_raw(task) })
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        while let Some(task) = self.pop_front() {
            drop(task);
        }
    }
}

impl Drop for ReadyQueue {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(q: &ReadyQueue) -> Vec<u64> {
        let mut out = Vec::new();
        let mut back = Vec::new();
        while let Some(t) = q.pop_front() {
            out.push(t.id());
            back.push(t);
        }
        for t in back {
            q.push_back(t);
        }
        out
    }

    #[test]
    fn fifo_with_front_pushes_and_counts() {
        let q = ReadyQueue::new();
        let tasks: Vec<Rc<Task>> = (1..=4).map(|i| Rc::new(Task::new(i, None, 0))).collect();
        assert!(q.is_empty() && q.pop_front().is_none());
        q.push_back(tasks[0].clone());
        q.push_back(tasks[1].clone());
        q.push_front(tasks[2].clone());
        q.push_back(tasks[3].clone());
        assert_eq!(q.len(), 4);
        assert_eq!(Rc::strong_count(&tasks[0]), 2, "the entry owns one count");
        assert!(tasks[0].ready_link().is_queued());
        assert_eq!(ids(&q), [3, 1, 2, 4]);
        let t = q.pop_front().unwrap();
        assert_eq!(t.id(), 3);
        assert!(!t.ready_link().is_queued());
        drop(t);
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.len(), 0);
        assert!(tasks.iter().all(|t| Rc::strong_count(t) == 1), "clear gives every count back");
        q.push_front(tasks[1].clone());
        assert_eq!(ids(&q), [2], "a front push into an empty queue sets the tail");
        q.push_back(tasks[0].clone());
        assert_eq!(ids(&q), [2, 1]);
        // The last entry is queued too (its link is the end mark, not null), and popping
        // it empties the queue with a stale tail that the next push does not follow.
        let last = q.pop_front().unwrap();
        assert!(tasks[0].ready_link().is_queued() && !last.ready_link().is_queued());
        drop(last);
        drop(q.pop_front());
        assert!(q.is_empty() && !tasks[0].ready_link().is_queued());
        q.push_back(tasks[3].clone());
        q.push_back(tasks[2].clone());
        assert_eq!(ids(&q), [4, 3]);
        let p = Rc::into_raw(tasks[3].clone());
        // SAFETY: `p` owns a count (`into_raw`), handed over on `true` only.
        assert!(!unsafe { q.try_push_back_raw(p) }, "queued already: refused");
        // SAFETY: refused, so the count is still ours.
        drop(unsafe { Rc::from_raw(p) });
        q.clear();
        assert!(tasks.iter().all(|t| Rc::strong_count(t) == 1));
    }

    #[test]
    #[should_panic(expected = "queued twice")]
    fn a_task_is_never_linked_twice() {
        let q = ReadyQueue::new();
        let t = Rc::new(Task::new(1, None, 0));
        q.push_back(t.clone());
        q.push_back(t);
    }
}
