//! A greenlet's body until it first runs: a type-erased `FnOnce() -> Outcome` stored
//! inline in its task (boxed only when it is too big), so that a spawn neither allocates
//! nor touches a stack. The stack is taken when the greenlet starts, so greenlets that
//! run one after another reuse the same warm stack instead of each dirtying its own.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::ptr;

/// How a greenlet's body ended: its boxed value, or why it has none.
pub(crate) type Outcome = Result<Box<dyn std::any::Any>, crate::error::GreenletError>;

/// Bytes of closure stored inline; bigger (or more than 8-aligned) closures are boxed.
/// With the vtable pointer the slot is one cache line.
const INLINE: usize = 56;

#[repr(C, align(8))]
struct Buf([MaybeUninit<u8>; INLINE]);

/// How to run or drop the closure in a `Buf`.
struct VTable {
    call: unsafe fn(*mut u8) -> Outcome,
    drop: unsafe fn(*mut u8),
}

/// The functions of one closure type `G`.
struct Erased<G>(PhantomData<G>);

impl<G: FnOnce() -> Outcome + 'static> Erased<G> {
    const VTABLE: VTable = VTable { call: Self::call, drop: Self::drop };

    /// # Safety
    /// `p` points at a `G` that is moved out here (nothing may read or drop it again).
    unsafe fn call(p: *mut u8) -> Outcome {
        // SAFETY: per the contract, `p` holds a valid `G` that this call owns.
        let g = unsafe { ptr::read(p.cast::<G>()) };
        g()
    }

    /// # Safety
    /// `p` points at a `G` that is dropped here (nothing may read or drop it again).
    unsafe fn drop(p: *mut u8) {
        // SAFETY: per the contract, `p` holds a valid `G` that this call owns.
        unsafe { ptr::drop_in_place(p.cast::<G>()) }
    }
}

const fn fits<G>() -> bool {
    mem::size_of::<G>() <= INLINE && mem::align_of::<G>() <= mem::align_of::<Buf>()
}

/// The slot of a not yet run greenlet body, inside its task: the closure is written
/// into the slot in place and moved out of it only to run, so a spawn copies it once.
///
/// Invariant: `vtable` is `Some` exactly while `buf` holds a valid value of the closure
/// type it was made for, owned by the slot. `vtable` is cleared *before* that value is
/// moved out (to run it or drop it), so code running meanwhile (the body itself, a
/// `Drop` of a capture) always finds the slot empty. The slot is `!Sync` (`UnsafeCell`),
/// so only its own thread reaches it.
pub(crate) struct BodySlot {
    buf: UnsafeCell<Buf>,
    vtable: Cell<Option<&'static VTable>>,
}

impl BodySlot {
    pub(crate) const fn empty() -> BodySlot {
        BodySlot { buf: UnsafeCell::new(Buf([MaybeUninit::uninit(); INLINE])), vtable: Cell::new(None) }
    }

    /// Whether a body waits in the slot.
    #[inline]
    pub(crate) fn is_set(&self) -> bool {
        self.vtable.get().is_some()
    }

    /// Stores `f` (inline if it fits, else in a box). Panics if a body is stored already.
    #[inline]
    pub(crate) fn set<F: FnOnce() -> Outcome + 'static>(&self, f: F) {
        if fits::<F>() {
            self.put(f);
        } else {
            self.put(Box::new(f));
        }
    }

    #[inline]
    fn put<G: FnOnce() -> Outcome + 'static>(&self, g: G) {
        assert!(fits::<G>(), "checked by the caller: a box always fits");
        assert!(self.vtable.get().is_none(), "greenhub: a greenlet gets one body");
        // SAFETY: the slot is empty (checked), so nothing owns or reads `buf`; it is at
        // least `size_of::<G>()` bytes and aligned for `G` (`fits`). Writing moves `g`
        // in, and setting `vtable` right after makes the slot its owner (invariant).
        unsafe { ptr::write((*self.buf.get()).0.as_mut_ptr().cast::<G>(), g) };
        self.vtable.set(Some(&Erased::<G>::VTABLE));
    }

    /// Runs the stored body (on the greenlet's stack), leaving the slot empty; `None`
    /// if there is none.
    #[inline]
    pub(crate) fn call(&self) -> Option<Outcome> {
        let vtable = self.vtable.take()?;
        // SAFETY: `vtable` was `Some`, so `buf` holds the closure it was made for
        // (invariant); clearing `vtable` first hands that value to this call alone,
        // which moves it out before running it.
        Some(unsafe { (vtable.call)(self.buf.get().cast()) })
    }

    /// Drops the stored body without running it (a greenlet killed before it started,
    /// or abandoned with its thread).
    #[inline]
    pub(crate) fn clear(&self) {
        if let Some(vtable) = self.vtable.take() {
            // SAFETY: as in `call`: this call alone owns the value now, and drops it.
            unsafe { (vtable.drop)(self.buf.get().cast()) }
        }
    }
}

impl Drop for BodySlot {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    struct Count(Rc<Cell<u32>>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn small_and_big_bodies_run_once_and_drop_their_captures() {
        let dropped = Rc::new(Cell::new(0));
        let slot = BodySlot::empty();
        assert!(!slot.is_set() && slot.call().is_none());
        let small = Count(dropped.clone());
        slot.set(move || {
            let _keep = &small;
            Ok(Box::new(7u32) as Box<dyn std::any::Any>)
        });
        assert!(slot.is_set());
        let out = slot.call().unwrap().unwrap();
        assert_eq!(*out.downcast::<u32>().unwrap(), 7);
        assert_eq!(dropped.get(), 1, "a run body drops its captures once");
        assert!(!slot.is_set() && slot.call().is_none(), "and leaves the slot empty");

        let big = ([9u8; 200], Count(dropped.clone()));
        assert!(!fits::<[u8; 200]>());
        slot.set(move || {
            let big = big; // the whole tuple, not just the field used
            Ok(Box::new(big.0[199]) as Box<dyn std::any::Any>)
        });
        let out = slot.call().unwrap().unwrap();
        assert_eq!(*out.downcast::<u8>().unwrap(), 9);
        assert_eq!(dropped.get(), 2);

        let never = Count(dropped.clone());
        slot.set(move || {
            let _keep = &never;
            Ok(Box::new(()) as Box<dyn std::any::Any>)
        });
        slot.clear();
        assert_eq!(dropped.get(), 3, "an unrun body drops its captures");
        let never = ([0u64; 40], Count(dropped.clone()));
        slot.set(move || {
            let _keep = &never;
            Ok(Box::new(()) as Box<dyn std::any::Any>)
        });
        drop(slot);
        assert_eq!(dropped.get(), 4, "so does a boxed one, with its slot");
    }

    #[test]
    #[should_panic(expected = "one body")]
    fn a_slot_holds_one_body() {
        let slot = BodySlot::empty();
        slot.set(|| Ok(Box::new(()) as Box<dyn std::any::Any>));
        slot.set(|| Ok(Box::new(()) as Box<dyn std::any::Any>));
    }
}
