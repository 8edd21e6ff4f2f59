//! `raw::Greenlet<V>`: greenlet-module style symmetric switching.
//!
//! corosensei coroutines are asymmetric (resume/suspend), so symmetric switching runs a
//! small trampoline on the stack of whoever first switched into a raw greenlet from
//! outside (the *root*: a hub greenlet or greenlet zero). A raw greenlet that switches
//! to another suspends back to the trampoline with a request, and the trampoline
//! resumes the target. A raw greenlet that returns hands its value to its parent (the
//! greenlet that first switched into it), or back to the root.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::hub;
use crate::stack::{PooledStack, DEFAULT_STACK_SIZE};

/// A switch request from a running raw greenlet to the trampoline.
struct Switch<V: 'static>(Greenlet<V>, V);

type Co<V> = Coroutine<V, Switch<V>, V, PooledStack>;

struct Inner<V: 'static> {
    co: Cell<Option<Co<V>>>,
    yielder: Cell<*const Yielder<V, Switch<V>>>,
    /// `None` until first switched into; then `Some(None)` for the root, or the parent.
    parent: RefCell<Option<Option<Greenlet<V>>>>,
    dead: Cell<bool>,
}

/// A manually switched greenlet, as in Python's `greenlet` module. Cloning gives another
/// handle to the same greenlet.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use greenhub_runtime::raw::Greenlet;
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
    /// let g = greenhub_runtime::raw::Greenlet::new(|v: i32| v + 1);
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
            let co = Coroutine::with_stack(stack, move |y: &Yielder<V, Switch<V>>, v: V| {
                if let Some(me) = me.upgrade() {
                    me.yielder.set(y);
                }
                drop(me);
                body(v)
            });
            Inner {
                co: Cell::new(Some(co)),
                yielder: Cell::new(std::ptr::null()),
                parent: RefCell::new(None),
                dead: Cell::new(false),
            }
        });
        Greenlet { inner }
    }

    /// Whether the body has returned (or panicked).
    ///
    /// ```
    /// let g = greenhub_runtime::raw::Greenlet::new(|v: u8| v);
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
    /// use greenhub_runtime::raw::Greenlet;
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
    pub fn switch(&self, value: V) -> V {
        let running = current::<V>();
        match running {
            Some(cur) => {
                if Rc::ptr_eq(&cur.inner, &self.inner) {
                    return value;
                }
                let y = cur.inner.yielder.get();
                // SAFETY: `cur` is the raw greenlet running right now on this stack (the
                // hub task's raw_current is set by the trampoline around each resume),
                // and its body stored its yielder before running user code.
                unsafe { (*y).suspend(Switch(self.clone(), value)) }
            }
            None => trampoline(self.clone(), value),
        }
    }
}

/// The raw greenlet of type `V` running on the current hub task's stack, if any.
fn current<V: 'static>() -> Option<Greenlet<V>> {
    hub::with(|h| {
        let task = h.current();
        let cur = task.raw_current.borrow().clone()?;
        cur.downcast::<Inner<V>>().ok().map(|inner| Greenlet { inner })
    })
}

fn set_current(g: Option<Rc<dyn Any>>) -> Option<Rc<dyn Any>> {
    hub::with(|h| h.current().raw_current.replace(g))
}

/// Runs raw greenlets on the root's stack until control returns to the root.
fn trampoline<V: 'static>(mut target: Greenlet<V>, mut value: V) -> V {
    struct Restore(Option<Option<Rc<dyn Any>>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                set_current(prev);
            }
        }
    }
    let _restore = Restore(Some(set_current(None)));
    // Who is switching into `target`: None = the root.
    let mut from: Option<Greenlet<V>> = None;
    loop {
        if target.inner.dead.get() {
            let parent = target.inner.parent.borrow().clone().flatten();
            match parent {
                None => return value,
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
        let mut co = target.inner.co.take().expect("a live raw greenlet owns its coroutine");
        set_current(Some(target.inner.clone() as Rc<dyn Any>));
        struct Dead<'a, V: 'static>(&'a Inner<V>, bool);
        impl<V: 'static> Drop for Dead<'_, V> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.dead.set(true); // the body panicked
                }
            }
        }
        let mut dead = Dead(&target.inner, true);
        let r = co.resume(value);
        dead.1 = false;
        drop(dead);
        set_current(None);
        match r {
            CoroutineResult::Yield(Switch(next, v)) => {
                target.inner.co.set(Some(co));
                from = Some(target);
                target = next;
                value = v;
            }
            CoroutineResult::Return(v) => {
                target.inner.dead.set(true);
                drop(co);
                let parent = target.inner.parent.borrow().clone().flatten();
                match parent {
                    None => return v,
                    Some(p) => {
                        from = Some(target);
                        target = p;
                        value = v;
                    }
                }
            }
        }
    }
}
