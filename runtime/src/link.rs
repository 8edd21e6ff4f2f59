//! Links (gevent's `Greenlet.link*`): callbacks that run, each in a new greenlet, after
//! a greenlet ends, in link order.
//!
//! The links of a task live behind one lazily allocated box (most greenlets have none).
//! When the task finishes, the hub spawns one greenlet per link; those greenlets read
//! the outcome from the task, so it stays in the task until they have all run:
//! `Greenlet::get` waits for them first, and a handle dropped meanwhile leaves the
//! outcome to the task (dropped with its last reference).

use crate::sched::task::Primitive;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use crate::sched::hub;
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::{Task, Wait};

/// Identifies one link, for [`crate::Greenlet::unlink`].
///
/// ```
/// let g = greenhub::spawn(|| ());
/// let id: greenhub::LinkId = g.link(|| ());
/// g.unlink(id);
/// g.join();
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// What a link does once its greenlet ends: it gets the finished task.
pub(crate) type LinkFn = Box<dyn FnOnce(&Task)>;

/// A task's links.
#[derive(Default)]
pub(crate) struct Links {
    list: RefCell<Vec<(u64, LinkFn)>>,
    next: Cell<u64>,
    /// Link greenlets spawned that have not finished.
    running: Cell<usize>,
    done: WaitQueue,
}

impl fmt::Debug for Links {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Links")
            .field("linked", &self.list.borrow().len())
            .field("running", &self.running.get())
            .finish()
    }
}

impl Links {
    /// Whether a link waits or runs (the outcome must stay in the task).
    pub(crate) fn in_use(&self) -> bool {
        !self.list.borrow().is_empty() || self.running.get() > 0
    }
}

/// Adds a link to `task`; runs it at once (in a new greenlet) if `task` is finished.
pub(crate) fn add(task: &Rc<Task>, f: LinkFn) -> LinkId {
    let links = task.links();
    let id = links.next.get();
    links.next.set(id + 1);
    links.list.borrow_mut().push((id, f));
    if task.is_done() {
        fire(task);
    }
    LinkId(id)
}

/// Removes a link that has not run yet.
pub(crate) fn remove(task: &Task, id: LinkId) {
    if let Some(links) = task.links_if_any() {
        links.list.borrow_mut().retain(|(i, _)| *i != id.0);
    }
}

/// Runs every pending link of the finished `task`, each in a new greenlet, in order.
pub(crate) fn fire(task: &Rc<Task>) {
    let Some(links) = task.links_if_any() else { return };
    let pending: Vec<(u64, LinkFn)> = links.list.borrow_mut().drain(..).collect();
    /// Counts its link greenlet out when dropped: when the callback returned or
    /// unwound, or with the never-run closure of a link greenlet killed before it started.
    struct Ran(Rc<Task>);
    impl Drop for Ran {
        fn drop(&mut self) {
            if let Some(links) = self.0.links_if_any() {
                links.running.set(links.running.get() - 1);
                hub::with(|h| links.done.wake_all(h));
            }
        }
    }
    for (_, f) in pending {
        links.running.set(links.running.get() + 1);
        let ran = Ran(task.clone());
        drop(crate::builder::spawn(move || {
            let ran = ran;
            f(&ran.0);
        }));
    }
}

/// Waits until no link greenlet of `task` is left to run.
pub(crate) fn wait_for(task: &Task) {
    if let Some(links) = task.links_if_any() {
        while links.in_use() {
            hub::with(|h| wait_in(h, &links.done, Wait::Sync(Primitive::Links, None), None, || {}));
        }
    }
}
