//! `raw::Greenlet<V>`: greenlet-module style symmetric switching.
//!
//! corosensei coroutines are asymmetric (resume/suspend), so symmetric switching runs a
//! small trampoline on the stack of whoever first switched into a raw greenlet from
//! outside (the *root*, or *main* greenlet: a hub greenlet or greenlet zero). A raw
//! greenlet that switches to another suspends back to the trampoline with a request, and
//! the trampoline resumes the target. A raw greenlet that returns hands its value to its
//! parent (the greenlet that first switched into it), or back to the root; one that
//! panics hands the panic to its parent the same way, whose pending `switch` resumes it.
//! [`Greenlet::main`] stands for the root: switching to it returns to the root's pending
//! `switch`.
//!
//! Invariant: while a raw greenlet is suspended, nothing on its own stack holds a strong
//! reference to it (`switch` drops its own handle before suspending), so dropping its
//! last handle drops its coroutine, which unwinds it (corosensei's forced unwind): its
//! destructors run and its stack returns to the pool, as greenlet raises `GreenletExit`
//! on dealloc. While it runs, the trampoline owns its coroutine.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::sched::hub;
use crate::sched::stack::{PooledStack, DEFAULT_STACK_SIZE};

/// A switch request from a running raw greenlet to the trampoline.
struct Switch<V: 'static>(Greenlet<V>, V);

/// What a suspended raw greenlet is resumed with: the value its `switch` returns, or a
/// panic of a child it is the parent of, which its `switch` resumes (greenlet's
/// "an exception in a greenlet propagates to its parent").
type Resume<V> = Result<V, Box<dyn Any + Send>>;

type Co<V> = Coroutine<Resume<V>, Switch<V>, V, PooledStack>;

struct Inner<V: 'static> {
    /// `None` for a main handle, and while the coroutine runs (the trampoline holds it).
    co: Cell<Option<Co<V>>>,
    yielder: Cell<*const Yielder<Resume<V>, Switch<V>>>,
    /// `None` until first switched into; then `Some(None)` for the root, or the parent.
    parent: RefCell<Option<Option<Greenlet<V>>>>,
    dead: Cell<bool>,
    /// The handle stands for the root (the code that switched into raw greenlets from
    /// outside: a hub greenlet or the thread's own stack), not for a raw greenlet.
    main: bool,
}

/// A manually switched greenlet, as in Python's `greenlet` module. Cloning gives another
/// handle to the same greenlet.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use greenhub::raw::Greenlet;
/// let out = Rc::new(RefCell::new(Vec::new()));
/// let gr2: Rc<RefCell<Option<Greenlet<()>>>> = Rc::default();
/// let (o1, g2) = (out.clone(), gr2.clone());
/// let gr1 = Greenlet::new(move |()| {
///     o1.borrow_mut().push(12);
///     g2.borrow().clone().unwrap().switch(());
///     o1.borrow_mut().push(34);
/// });
/// let (o2, g1) = (out.clone(), gr1.clone());
/// *gr2.borrow_mut() = Some(Greenlet::new(move |()| {
///     o2.borrow_mut().push(56);
///     g1.switch(());
///     o2.borrow_mut().push(78);
/// }));
/// gr1.switch(());
/// assert_eq!(*out.borrow(), [12, 56, 34]); // gr1 finished: back to its parent (here)
/// ```
pub struct Greenlet<V: 'static> {
    inner: Rc<Inner<V>>,
}

impl<V: 'static> Clone for Greenlet<V> {
    fn clone(&self) -> Self {
        Greenlet { inner: self.inner.clone() }
    }
}

impl<V: 'static> fmt::Debug for Greenlet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("raw::Greenlet")
            .field("started", &self.inner.parent.borrow().is_some())
            .field("dead", &self.inner.dead.get())
            .finish()
    }
}

impl<V: 'static> Greenlet<V> {
    /// A greenlet that runs `body` when first switched into; the value passed to that
    /// switch is its argument, and its return value goes to its parent.
    ///
    /// ```
    /// let g = greenhub::raw::Greenlet::new(|v: i32| v + 1);
    /// assert_eq!(g.switch(41), 42);
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated.
    pub fn new<F>(body: F) -> Greenlet<V>
    where
        F: FnOnce(V) -> V + 'static,
    {
        let stack = PooledStack::take(DEFAULT_STACK_SIZE)
            .unwrap_or_else(|e| panic!("greenhub: cannot allocate a greenlet stack: {e}"));
        let inner = Rc::new_cyclic(|weak: &Weak<Inner<V>>| {
            let me = weak.clone();
            let co = Coroutine::with_stack(stack, move |y: &Yielder<Resume<V>, Switch<V>>, first: Resume<V>| {
                if let Some(me) = me.upgrade() {
                    me.yielder.set(y);
                }
                drop(me); // no strong reference to itself from its own stack
                match first {
                    Ok(v) => body(v),
                    Err(payload) => panic::resume_unwind(payload),
                }
            });
            Inner {
                co: Cell::new(Some(co)),
                yielder: Cell::new(std::ptr::null()),
                parent: RefCell::new(None),
                dead: Cell::new(false),
                main: false,
            }
        });
        Greenlet { inner }
    }

    /// A handle to the *main* greenlet: the code that switches into raw greenlets from
    /// outside (the hub greenlet, or the thread's own stack, running `switch`). Switching
    /// to it from a raw greenlet returns control (and the value) to that code's pending
    /// `switch`, leaving the raw greenlet suspended (greenlet's `getcurrent().parent`
    /// for a top-level greenlet, or `greenlet.getcurrent()` in the main program).
    ///
    /// ```
    /// use greenhub::raw::Greenlet;
    /// let main = Greenlet::<u32>::main();
    /// let g = Greenlet::new(move |v: u32| {
    ///     let again = main.switch(v + 1); // back to main, suspended here
    ///     again * 10
    /// });
    /// assert_eq!(g.switch(1), 2);
    /// assert!(!g.is_dead());
    /// assert_eq!(g.switch(3), 30); // resumed where it left off; it returns to main
    /// ```
    pub fn main() -> Greenlet<V> {
        Greenlet {
            inner: Rc::new(Inner {
                co: Cell::new(None),
                yielder: Cell::new(std::ptr::null()),
                parent: RefCell::new(Some(None)),
                dead: Cell::new(false),
                main: true,
            }),
        }
    }

    /// The raw greenlet running now, or a [`Greenlet::main`] handle outside any.
    ///
    /// ```
    /// use greenhub::raw::Greenlet;
    /// let g = Greenlet::new(|_: ()| assert!(!Greenlet::<()>::current().is_main()));
    /// g.switch(());
    /// assert!(Greenlet::<()>::current().is_main());
    /// ```
    pub fn current() -> Greenlet<V> {
        current::<V>().unwrap_or_else(Greenlet::main)
    }

    /// Whether this handle stands for the main greenlet (see [`Greenlet::main`]).
    ///
    /// ```
    /// assert!(greenhub::raw::Greenlet::<u8>::main().is_main());
    /// ```
    pub fn is_main(&self) -> bool {
        self.inner.main
    }

    /// Whether the body has returned (or panicked).
    ///
    /// ```
    /// let g = greenhub::raw::Greenlet::new(|v: u8| v);
    /// assert!(!g.is_dead());
    /// g.switch(0);
    /// assert!(g.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        self.inner.dead.get()
    }

    /// Transfers control to this greenlet, passing `value`; returns the value passed
    /// back when control comes back to the caller (by a switch to the caller, or, for
    /// the root, when a greenlet whose parent it is returns).
    ///
    /// Switching to a finished greenlet passes `value` on to its parent.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use std::cell::RefCell;
    /// use greenhub::raw::Greenlet;
    /// // A ping-pong passing values through switch.
    /// let other: Rc<RefCell<Option<Greenlet<u32>>>> = Rc::default();
    /// let o = other.clone();
    /// let a = Greenlet::new(move |v| {
    ///     let b = o.borrow().clone().unwrap();
    ///     let v = b.switch(v + 1); // to b, which adds 10 and switches back
    ///     v + 100
    /// });
    /// let a2 = a.clone();
    /// *other.borrow_mut() = Some(Greenlet::new(move |v| a2.switch(v + 10)));
    /// assert_eq!(a.switch(1), 112);
    /// ```
    ///
    /// # Panics
    /// If a child greenlet (one this greenlet is the parent of) panics, the panic comes
    /// out of this greenlet's pending `switch` (greenlet's `test_exception`): catch it
    /// there, or it goes on to this greenlet's parent.
    pub fn switch(&self, value: V) -> V {
        let running = current::<V>();
        match running {
            Some(cur) => {
                if Rc::ptr_eq(&cur.inner, &self.inner) {
                    return value;
                }
                let y = cur.inner.yielder.get();
                // No strong reference to itself may stay on its own stack while it is
                // suspended: dropping its last handle must be able to unwind it.
                drop(cur);
                // SAFETY: the running raw greenlet (the one `current` found: the hub
                // task's raw_current is set by the trampoline around each resume) is
                // executing this code on its own stack, so its yielder, stored by its
                // body before running user code, is at the base of this stack; the
                // trampoline holds a strong reference to it while it runs, so dropping
                // the handle above freed nothing.
                match unsafe { (*y).suspend(Switch(self.clone(), value)) } {
                    Ok(v) => v,
                    Err(payload) => panic::resume_unwind(payload),
                }
            }
            None if self.inner.main => value, // the main greenlet switching to itself
            None => trampoline(self.clone(), value),
        }
    }
}

/// The raw greenlet of type `V` running on the current hub task's stack, if any.
fn current<V: 'static>() -> Option<Greenlet<V>> {
    hub::with(|h| {
        let task = h.current();
        let cur = task.raw_current().borrow().clone()?;
        cur.downcast::<Inner<V>>().ok().map(|inner| Greenlet { inner })
    })
}

fn set_current(g: Option<Rc<dyn Any>>) -> Option<Rc<dyn Any>> {
    hub::with(|h| h.current().raw_current().replace(g))
}

/// Runs raw greenlets on the root's stack until control returns to the root.
fn trampoline<V: 'static>(target: Greenlet<V>, value: V) -> V {
    struct Restore(Option<Option<Rc<dyn Any>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                set_current(prev);
            }
        }
    }
    let _restore = Restore(Some(set_current(None)));
    // What the root's `switch` returns: the value, or a panic that no raw greenlet caught.
    fn deliver<V>(input: Resume<V>) -> V {
        match input {
            Ok(v) => v,
            Err(payload) => panic::resume_unwind(payload),
        }
    }
    let mut target = target;
    let mut input: Resume<V> = Ok(value);
    // Who is switching into `target`: None = the root.
    let mut from: Option<Greenlet<V>> = None;
    loop {
        if target.inner.main {
            return deliver(input);
        }
        if target.inner.dead.get() {
            // A finished greenlet passes what it is given on to its parent.
            let parent = target.inner.parent.borrow().clone().flatten();
            match parent {
                None => return deliver(input),
                Some(p) => {
                    target = p;
                    continue;
                }
            }
        }
        {
            let mut parent = target.inner.parent.borrow_mut();
            if parent.is_none() {
                *parent = Some(from.clone());
            }
        }
        let mut co = target.inner.co.take().expect("a live raw greenlet owns its coroutine while suspended");
        set_current(Some(target.inner.clone() as Rc<dyn Any>));
        let r = panic::catch_unwind(AssertUnwindSafe(|| co.resume(input)));
        set_current(None);
        let next = match r {
            Ok(CoroutineResult::Yield(Switch(next, v))) => {
                target.inner.co.set(Some(co));
                from = Some(target);
                target = next;
                input = Ok(v);
                continue;
            }
            Ok(CoroutineResult::Return(v)) => Ok(v),
            Err(payload) => Err(payload), // the body panicked: to its parent
        };
        target.inner.dead.set(true);
        drop(co); // finished: its stack goes back to the pool
        let parent = target.inner.parent.borrow().clone().flatten();
        match parent {
            None => return deliver(next),
            Some(p) => {
                from = Some(target);
                target = p;
                input = next;
            }
        }
    }
}
