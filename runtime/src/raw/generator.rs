//! `Generator<R, Y>`: a body that yields values and receives resume arguments.

use std::fmt;

use corosensei::{Coroutine, CoroutineResult};

use crate::sched::stack::{PooledStack, DEFAULT_STACK_SIZE};

/// A generator: a body on its own stack that hands out values with
/// [`Yielder::suspend`] and takes a value of type `R` back at every resume.
///
/// ```
/// use greenhub::raw::Generator;
/// let mut squares = Generator::new(|y, (): ()| {
///     for i in 1..=3u32 {
///         y.suspend(i * i);
///     }
/// });
/// assert_eq!(squares.by_ref().collect::<Vec<_>>(), [1, 4, 9]);
/// assert_eq!(squares.resume(()), None);
/// ```
///
/// A panic in the body is resumed in the caller of `resume`. Dropping a generator that
/// is suspended unwinds its body (its destructors run).
pub struct Generator<R: 'static, Y: 'static> {
    co: Option<Coroutine<R, Y, (), PooledStack>>,
}

/// The handle a generator body uses to yield values.
///
/// ```
/// let mut g = greenhub::raw::Generator::new(|y: &greenhub::raw::Yielder<(), u8>, ()| {
///     y.suspend(1);
/// });
/// assert_eq!(g.next(), Some(1));
/// ```
#[repr(transparent)]
pub struct Yielder<R, Y> {
    inner: corosensei::Yielder<R, Y>,
}

impl<R, Y> Yielder<R, Y> {
    /// Hands `value` to the caller of [`Generator::resume`] and waits for the next
    /// resume, returning its argument.
    ///
    /// ```
    /// use greenhub::raw::Generator;
    /// let mut echo = Generator::new(|y, first: i32| {
    ///     let second = y.suspend(first * 10);
    ///     y.suspend(second * 10);
    /// });
    /// assert_eq!(echo.resume(1), Some(10));
    /// assert_eq!(echo.resume(2), Some(20));
    /// assert_eq!(echo.resume(3), None);
    /// ```
    pub fn suspend(&self, value: Y) -> R {
        self.inner.suspend(value)
    }
}

impl<R, Y> fmt::Debug for Yielder<R, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Yielder")
    }
}

impl<R: 'static, Y: 'static> Generator<R, Y> {
    /// A generator running `body`; it starts at the first [`Generator::resume`], whose
    /// argument it receives as `first`.
    ///
    /// ```
    /// let mut g = greenhub::raw::Generator::new(|y, n: u8| { y.suspend(n + 1); });
    /// assert_eq!(g.resume(1), Some(2));
    /// ```
    ///
    /// # Panics
    /// If no stack can be allocated.
    pub fn new<F>(body: F) -> Generator<R, Y>
    where
        F: FnOnce(&Yielder<R, Y>, R) + 'static,
    {
        let stack = PooledStack::take(DEFAULT_STACK_SIZE)
            .unwrap_or_else(|e| panic!("greenhub: cannot allocate a generator stack: {e}"));
        let co = Coroutine::with_stack(stack, move |y: &corosensei::Yielder<R, Y>, first: R| {
            // SAFETY: `Yielder` is `repr(transparent)` over corosensei's yielder, so the
            // reference cast keeps address, layout and lifetime.
            let y = unsafe { &*(y as *const corosensei::Yielder<R, Y> as *const Yielder<R, Y>) };
            body(y, first)
        });
        Generator { co: Some(co) }
    }

    /// Runs the body until it yields (`Some(value)`) or returns (`None`, and `None` for
    /// every later call).
    ///
    /// ```
    /// let mut g = greenhub::raw::Generator::new(|y, (): ()| { y.suspend('a'); });
    /// assert_eq!(g.resume(()), Some('a'));
    /// assert_eq!(g.resume(()), None);
    /// assert_eq!(g.resume(()), None);
    /// ```
    pub fn resume(&mut self, arg: R) -> Option<Y> {
        // The coroutine is moved out while it runs and only put back when it suspends:
        // if the body blocks on the hub and its thread exits meanwhile, the greenlet
        // that resumed it is abandoned with the coroutine in one of its frames, so the
        // generator's stack is leaked with it and never reused (see `Coro::abandon`),
        // even if this `Generator` itself is dropped later.
        let mut co = self.co.take()?;
        match co.resume(arg) {
            CoroutineResult::Yield(y) => {
                self.co = Some(co);
                Some(y)
            }
            CoroutineResult::Return(()) => None, // the stack goes back to the pool now
        }
    }

    /// Whether the body has returned.
    ///
    /// ```
    /// let mut g = greenhub::raw::Generator::<(), ()>::new(|_, _| {});
    /// assert!(!g.is_done());
    /// g.resume(());
    /// assert!(g.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.co.is_none()
    }
}

impl<Y: 'static> Iterator for Generator<(), Y> {
    type Item = Y;
    fn next(&mut self) -> Option<Y> {
        self.resume(())
    }
}

impl<R, Y> fmt::Debug for Generator<R, Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator").field("done", &self.co.is_none()).finish()
    }
}
