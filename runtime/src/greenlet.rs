//! `Greenlet<T>`: the handle of a spawned greenlet.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::GreenletError;
use crate::sched::hub;
use crate::sched::park::wait_in;
use crate::sched::task::{State, Task, Wait};

/// A greenlet's id: unique among the greenlets of one thread's hub (greenlet zero, the
/// thread itself, is 0).
///
/// ```
/// let a = greenhub::spawn(|| ());
/// let b = greenhub::spawn(|| ());
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.name(), format!("greenlet-{}", a.id()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GreenletId(pub(crate) u64);

impl GreenletId {
    /// The id as a number.
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// assert!(g.id().as_u64() > 0);
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GreenletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Handle of a greenlet whose body returns `T`.
///
/// Dropping the handle does not stop the greenlet (it runs on, detached). The handle
/// is `!Send`: a greenlet lives and dies on the thread of the hub that runs it.
///
/// ```
/// let g = greenhub::spawn(|| 6 * 7);
/// assert!(!g.ready()); // spawning never switches: it has not run yet
/// g.join();
/// assert!(g.ready() && g.successful());
/// assert_eq!(g.value(), Some(42));
/// assert_eq!(g.get(), Ok(42));
/// ```
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(greenhub::spawn(|| ()));
/// ```
pub struct Greenlet<T> {
    pub(crate) task: Rc<Task>,
    _value: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.task.id())
            .field("name", &self.task.name())
            .field("state", &self.task.state())
            .finish()
    }
}

impl<T: 'static> Greenlet<T> {
    pub(crate) fn from_task(task: Rc<Task>) -> Greenlet<T> {
        Greenlet { task, _value: PhantomData }
    }

    /// The greenlet's id.
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// println!("spawned greenlet {}", g.id());
    /// ```
    pub fn id(&self) -> GreenletId {
        GreenletId(self.task.id())
    }

    /// The name given with [`crate::Builder::name`], or `greenlet-<id>`.
    ///
    /// ```
    /// let g = greenhub::Builder::new().name("worker-1").spawn(|| ());
    /// assert_eq!(g.name(), "worker-1");
    /// ```
    pub fn name(&self) -> String {
        self.task.name()
    }

    /// Waits until the greenlet has finished: with a value, a panic, or killed.
    ///
    /// ```
    /// let g = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_millis(1)));
    /// g.join();
    /// assert!(g.ready());
    /// ```
    pub fn join(&self) {
        join_task(&self.task, None);
    }

    /// Waits at most `timeout`; returns whether the greenlet has finished.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(5)));
    /// assert!(!g.join_timeout(Duration::from_millis(10)));
    /// g.kill();
    /// assert!(g.join_timeout(Duration::from_secs(1)));
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        join_task(&self.task, Instant::now().checked_add(timeout))
    }

    /// Whether the greenlet has finished.
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// assert!(!g.ready());
    /// g.join();
    /// assert!(g.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.task.state() == State::Done
    }

    /// Whether the greenlet finished with a value (not a panic, not killed).
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// g.kill();
    /// assert!(g.ready() && !g.successful());
    /// ```
    pub fn successful(&self) -> bool {
        matches!(&*self.task.outcome(), Some(Ok(_)))
    }

    /// Asks the greenlet to die. One that has not started never runs; one that waits
    /// unwinds from its wait (its destructors run) when the hub next resumes it; one
    /// that has finished is left alone. Does not wait: use [`Greenlet::join`] for that.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(60)));
    /// greenhub::yield_now(); // let it start and park
    /// g.kill();
    /// assert_eq!(g.get(), Err(greenhub::GreenletError::Killed));
    /// ```
    pub fn kill(&self) {
        hub::with(|h| h.kill(&self.task));
    }

    /// Waits for the greenlet, then gives its outcome.
    ///
    /// ```
    /// let g = greenhub::spawn(|| String::from("done"));
    /// assert_eq!(g.get().unwrap(), "done");
    /// ```
    pub fn get(self) -> Result<T, GreenletError> {
        self.join();
        crate::link::wait_for(&self.task); // its links read the outcome first
        let outcome = self.task.take_outcome();
        match outcome {
            Some(Ok(value)) => match value.downcast::<T>() {
                Ok(v) => Ok(*v),
                Err(_) => unreachable!("a greenlet's value has its handle's type"),
            },
            Some(Err(e)) => Err(e),
            None => unreachable!("a finished greenlet has an outcome"),
        }
    }

    /// The value, once the greenlet has finished successfully (does not wait).
    ///
    /// ```
    /// let g = greenhub::spawn(|| vec![1, 2]);
    /// assert_eq!(g.value(), None);
    /// g.join();
    /// assert_eq!(g.value(), Some(vec![1, 2]));
    /// ```
    pub fn value(&self) -> Option<T>
    where
        T: Clone,
    {
        match &*self.task.outcome() {
            Some(Ok(v)) => v.downcast_ref::<T>().cloned(),
            _ => None,
        }
    }

    /// Runs `f` in a new greenlet once this greenlet has ended, whatever its outcome
    /// (gevent's `link`); links run in the order they were made. Linking a finished
    /// greenlet schedules `f` at once.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// let g = greenhub::spawn(|| 1);
    /// for n in [1, 2] {
    ///     let l = log.clone();
    ///     g.link(move || l.borrow_mut().push(n));
    /// }
    /// assert_eq!(g.get(), Ok(1)); // waits for the links too
    /// assert_eq!(*log.borrow(), [1, 2]);
    /// ```
    pub fn link(&self, f: impl FnOnce() + 'static) -> crate::LinkId {
        crate::link::add(&self.task, Box::new(move |_| f()))
    }

    /// Like [`Greenlet::link`], but only if the greenlet finished with a value, which
    /// `f` gets (gevent's `link_value`).
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let g = greenhub::spawn(|| 21);
    /// g.link_value(move |v: &i32| s.set(v * 2));
    /// g.join();
    /// greenhub::run(); // the link's greenlet runs
    /// assert_eq!(seen.get(), 42);
    /// ```
    pub fn link_value(&self, f: impl FnOnce(&T) + 'static) -> crate::LinkId {
        crate::link::add(
            &self.task,
            Box::new(move |task| {
                if let Some(Ok(v)) = &*task.outcome() {
                    if let Some(v) = v.downcast_ref::<T>() {
                        f(v);
                    }
                }
            }),
        )
    }

    /// Like [`Greenlet::link`], but only if the greenlet panicked or was killed; `f`
    /// gets the error (gevent's `link_exception`).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// let seen = Rc::new(RefCell::new(None));
    /// let s = seen.clone();
    /// let g = greenhub::spawn(|| greenhub::sleep(std::time::Duration::from_secs(60)));
    /// g.link_exception(move |e| *s.borrow_mut() = Some(e.clone()));
    /// g.kill();
    /// greenhub::run();
    /// assert_eq!(*seen.borrow(), Some(greenhub::GreenletError::Killed));
    /// ```
    pub fn link_exception(&self, f: impl FnOnce(&GreenletError) + 'static) -> crate::LinkId {
        crate::link::add(
            &self.task,
            Box::new(move |task| {
                if let Some(Err(e)) = &*task.outcome() {
                    f(e);
                }
            }),
        )
    }

    /// Removes a link that has not run yet (gevent's `unlink`).
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// let id = g.link(|| unreachable!("unlinked"));
    /// g.unlink(id);
    /// g.join();
    /// greenhub::run();
    /// ```
    pub fn unlink(&self, id: crate::LinkId) {
        crate::link::remove(&self.task, id);
    }

    /// The error, once the greenlet has panicked or been killed (does not wait).
    ///
    /// ```
    /// let g = greenhub::spawn(|| ());
    /// g.kill();
    /// assert_eq!(g.error(), Some(greenhub::GreenletError::Killed));
    /// ```
    pub fn error(&self) -> Option<GreenletError> {
        match &*self.task.outcome() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

impl<T> Drop for Greenlet<T> {
    /// The handle is the only reader of the greenlet's value: a finished greenlet's value
    /// is dropped with its handle, and a greenlet whose handle is gone drops its value
    /// as soon as it finishes (the task's memory itself may be reused by a later spawn).
    fn drop(&mut self) {
        if self.task.linked() {
            // Its links still read the outcome: it drops with the task.
            self.task.detach();
        } else if self.task.state() == State::Done {
            let outcome = self.task.take_outcome();
            drop(outcome);
        } else {
            self.task.detach();
        }
    }
}

/// Waits until `task` is done or `deadline` passes; returns whether it is done.
pub(crate) fn join_task(task: &Rc<Task>, deadline: Option<Instant>) -> bool {
    if task.state() == State::Done {
        return true;
    }
    hub::with(|h| loop {
        if task.state() == State::Done {
            return true;
        }
        if Rc::ptr_eq(&h.current(), task) {
            panic!("greenhub: a greenlet cannot join itself (it would wait forever)");
        }
        if !wait_in(h, task.joiners(), Wait::Join(task.id(), deadline), deadline, || {}) {
            return task.state() == State::Done;
        }
    })
}
