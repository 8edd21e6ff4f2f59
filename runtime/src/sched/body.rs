//! A greenlet's body until it first runs: a type-erased `FnOnce() -> Outcome` stored
//! inline in its task (boxed only when it is too big), so that a spawn neither allocates
//! nor touches a stack. The stack is taken when the greenlet starts, so greenlets that
//! run one after another reuse the same warm stack instead of each dirtying its own.

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::ptr;

/// How a greenlet's body ended: its boxed value, or why it has none.
pub(crate) type Outcome = Result<Box<dyn std::any::Any>, crate::error::GreenletError>;

/// Bytes of closure stored inline; bigger closures are boxed.
const INLINE: usize = 64;

#[repr(C, align(16))]
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

/// An owned, not yet run greenlet body.
///
/// Invariant: `buf` holds a valid value of the closure type `vtable` was made for, owned
/// by this `Body`: it is moved out exactly once, by `call` or by `Drop`.
pub(crate) struct Body {
    buf: Buf,
    vtable: &'static VTable,
}

impl Body {
    /// Stores `f` (inline if it fits, else in a box).
    #[inline]
    pub(crate) fn new<F: FnOnce() -> Outcome + 'static>(f: F) -> Body {
        if fits::<F>() {
            Body::inline(f)
        } else {
            Body::inline(Box::new(f))
        }
    }

    #[inline]
    fn inline<G: FnOnce() -> Outcome + 'static>(g: G) -> Body {
        assert!(fits::<G>(), "checked by the caller: a box always fits");
        let mut buf = Buf([MaybeUninit::uninit(); INLINE]);
        // SAFETY: `buf` is at least `size_of::<G>()` bytes and aligned for `G` (`fits`);
        // writing moves `g` in, and the `Body` below owns it (its invariant).
        unsafe { ptr::write(buf.0.as_mut_ptr().cast::<G>(), g) };
        Body { buf, vtable: &Erased::<G>::VTABLE }
    }

    /// Runs the body (on the greenlet's stack), consuming it.
    #[inline]
    pub(crate) fn call(self) -> Outcome {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `buf` holds the closure `vtable` was made for (invariant), and
        // `ManuallyDrop` keeps `Drop` from touching it again after `call` moved it out.
        // The bytes were moved along with the `Body`, which is a valid move of the
        // closure (Rust values are moved by copying their bytes).
        unsafe { (this.vtable.call)(this.buf.0.as_mut_ptr().cast()) }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // SAFETY: an un-called `Body` still owns its closure (invariant); it is dropped
        // here, once.
        unsafe { (self.vtable.drop)(self.buf.0.as_mut_ptr().cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn small_and_big_bodies_run_once_and_drop_their_captures() {
        let dropped = Rc::new(Cell::new(0));
        struct Count(Rc<Cell<u32>>);
        impl Drop for Count {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let small = Count(dropped.clone());
        let b = Body::new(move || {
            let _keep = &small;
            Ok(Box::new(7u32) as Box<dyn std::any::Any>)
        });
        let out = b.call().unwrap();
        assert_eq!(*out.downcast::<u32>().unwrap(), 7);
        assert_eq!(dropped.get(), 1, "a run body drops its captures once");

        let big = ([9u8; 200], Count(dropped.clone()));
        assert!(!fits::<[u8; 200]>());
        let b = Body::new(move || {
            let big = big; // the whole tuple, not just the field used
            Ok(Box::new(big.0[199]) as Box<dyn std::any::Any>)
        });
        let out = b.call().unwrap();
        assert_eq!(*out.downcast::<u8>().unwrap(), 9);
        assert_eq!(dropped.get(), 2);

        let never = Count(dropped.clone());
        drop(Body::new(move || {
            let _keep = &never;
            Ok(Box::new(()) as Box<dyn std::any::Any>)
        }));
        assert_eq!(dropped.get(), 3, "an unrun body drops its captures");
        let never = ([0u64; 40], Count(dropped.clone()));
        drop(Body::new(move || {
            let _keep = &never;
            Ok(Box::new(()) as Box<dyn std::any::Any>)
        }));
        assert_eq!(dropped.get(), 4, "so does a boxed one");
    }
}
