//! Greenlet-local storage (gevent.local): [`greenlet_local!`](crate::greenlet_local) and
//! [`GreenletLocal`].

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::sched::hub;

/// One greenlet's local values, by key (the address of their `GreenletLocal` static).
#[derive(Default)]
pub(crate) struct Locals(RefCell<HashMap<usize, Rc<dyn Any>>>);

impl Locals {
    /// Takes every value out (to drop them where the greenlet ends).
    pub(crate) fn take(&self) -> HashMap<usize, Rc<dyn Any>> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

impl fmt::Debug for Locals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Locals({})", self.0.borrow().len())
    }
}

/// A greenlet-local value, declared with [`greenlet_local!`](crate::greenlet_local):
/// each greenlet (and each thread's own stack, greenlet zero) has its own, initialised
/// on first use and dropped when that greenlet ends (inside it, so a `Drop` may wait).
///
/// Unlike `thread_local!`, whose value all the greenlets of a thread share, this is
/// gevent's `local`: one value per greenlet. `with` hands out `&T`; put a `Cell` or
/// `RefCell` inside for mutation.
///
/// ```
/// use std::cell::Cell;
/// greenhub::greenlet_local! { static COUNT: Cell<u32> = Cell::new(0); }
/// let a = greenhub::spawn(|| { COUNT.with(|c| c.set(c.get() + 1)); COUNT.with(Cell::get) });
/// let b = greenhub::spawn(|| COUNT.with(Cell::get));
/// assert_eq!((a.get(), b.get()), (Ok(1), Ok(0))); // separate values
/// ```
pub struct GreenletLocal<T: 'static> {
    init: fn() -> T,
}

impl<T: 'static> fmt::Debug for GreenletLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GreenletLocal")
    }
}

impl<T: 'static> GreenletLocal<T> {
    /// A key whose values start as `init()` (use [`greenlet_local!`](crate::greenlet_local)).
    ///
    /// ```
    /// static K: greenhub::GreenletLocal<u8> = greenhub::GreenletLocal::new(|| 7);
    /// assert_eq!(K.with(|v| *v), 7);
    /// ```
    pub const fn new(init: fn() -> T) -> GreenletLocal<T> {
        GreenletLocal { init }
    }

    /// Runs `f` with the running greenlet's value (initialising it first if needed).
    ///
    /// `f` may use other greenlet-locals, and may switch.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// greenhub::greenlet_local! { static NAME: RefCell<String> = RefCell::new(String::new()); }
    /// NAME.with(|n| n.borrow_mut().push_str("main"));
    /// assert_eq!(NAME.with(|n| n.borrow().clone()), "main");
    /// ```
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = self as *const GreenletLocal<T> as usize;
        let task = hub::with(|h| h.current());
        let locals = task.locals();
        let found = locals.0.borrow().get(&key).cloned();
        let value = match found {
            Some(v) => v,
            None => {
                // Initialised without the map borrowed: `init` may use other locals.
                let v: Rc<dyn Any> = Rc::new((self.init)());
                locals.0.borrow_mut().entry(key).or_insert(v).clone()
            }
        };
        drop(task);
        let value = value.downcast::<T>().unwrap_or_else(|_| unreachable!("a key's values have its type"));
        f(&value)
    }
}

/// Declares greenlet-local statics, like `thread_local!` (see [`GreenletLocal`]).
///
/// ```
/// use std::cell::RefCell;
/// greenhub::greenlet_local! {
///     /// Per-greenlet scratch.
///     static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::new());
///     pub(crate) static DEPTH: u32 = 0;
/// }
/// SCRATCH.with(|s| s.borrow_mut().push(1));
/// assert_eq!(DEPTH.with(|d| *d), 0);
/// ```
#[macro_export]
macro_rules! greenlet_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])*
        $vis static $name: $crate::GreenletLocal<$t> = $crate::GreenletLocal::new(|| $init);
        $crate::greenlet_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::greenlet_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
    () => {};
}
