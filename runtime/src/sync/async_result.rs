//! `AsyncResult<T, E>`: a value (or error) delivered once, waited for by many.

use crate::sched::task::Primitive;
use std::cell::RefCell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sched::hub;
use crate::sched::park::{wait_in, WaitQueue};
use crate::sched::task::Wait;

/// A one-shot result that greenlets wait for (gevent.event.AsyncResult). `set` delivers
/// a value, `set_error` an error; every waiter gets a clone.
///
/// ```
/// use std::rc::Rc;
/// use greenhub::{spawn, sync::AsyncResult};
/// let r: Rc<AsyncResult<u32>> = Rc::new(AsyncResult::new());
/// let r2 = r.clone();
/// let consumer = spawn(move || r2.get() + 1);
/// r.set(41);
/// assert_eq!(consumer.get(), Ok(42));
/// ```
pub struct AsyncResult<T, E = String> {
    result: RefCell<Option<Result<T, E>>>,
    waiters: WaitQueue,
}

impl<T, E> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult { result: RefCell::new(None), waiters: WaitQueue::new() }
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.result.borrow().is_some()).finish()
    }
}

impl<T> AsyncResult<T> {
    /// An empty result whose error type is the default, `String` (as `HashMap::new`
    /// fixes its hasher, so `AsyncResult::new()` infers from the value type alone; use
    /// `AsyncResult::<T, E>::default()` for another error type).
    ///
    /// ```
    /// use std::rc::Rc;
    /// let r = Rc::new(greenhub::sync::AsyncResult::new());
    /// let r2 = r.clone();
    /// let g = greenhub::spawn(move || r2.set(5));
    /// let v: i32 = r.get(); // inferred: AsyncResult<i32>
    /// assert_eq!(v, 5);
    /// # g.join();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Clone, E: Clone + fmt::Debug> AsyncResult<T, E> {
    /// Delivers a value and wakes every waiter (never switches). A later `set` or
    /// `set_error` replaces it, as in gevent.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<&str>::new();
    /// r.set("v");
    /// assert_eq!(r.get(), "v");
    /// ```
    pub fn set(&self, value: T) {
        self.deliver(Ok(value));
    }

    /// Delivers an error and wakes every waiter.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// r.set_error("no such page".to_string());
    /// assert_eq!(r.result(), Err("no such page".to_string()));
    /// ```
    pub fn set_error(&self, error: E) {
        self.deliver(Err(error));
    }

    fn deliver(&self, r: Result<T, E>) {
        *self.result.borrow_mut() = Some(r);
        hub::with(|h| self.waiters.wake_all(h));
    }

    /// The waiters' queue (for `wait`/`iwait`).
    pub(crate) fn wait_queue(&self) -> &WaitQueue {
        &self.waiters
    }

    /// Whether a value or error has been delivered.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// r.set(1);
    /// assert!(r.ready());
    /// ```
    pub fn ready(&self) -> bool {
        self.result.borrow().is_some()
    }

    /// Waits for the result, value or error.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// r.set(2);
    /// assert_eq!(r.result(), Ok(2));
    /// ```
    pub fn result(&self) -> Result<T, E> {
        self.result_until(None).expect("no deadline")
    }

    /// Waits at most `timeout` for the result.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// assert_eq!(r.result_timeout(std::time::Duration::from_millis(1)), None);
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Option<Result<T, E>> {
        self.result_until(Instant::now().checked_add(timeout))
    }

    /// Waits for the value.
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// r.set(3);
    /// assert_eq!(r.get(), 3);
    /// ```
    ///
    /// # Panics
    /// If an error was delivered (like gevent's `get()` raising it); use
    /// [`AsyncResult::result`] to handle errors.
    pub fn get(&self) -> T {
        match self.result() {
            Ok(v) => v,
            Err(e) => panic!("AsyncResult holds an error: {e:?}"),
        }
    }

    /// Waits at most `timeout` for the value; `None` on timeout.
    ///
    /// # Panics
    /// If an error was delivered; see [`AsyncResult::result_timeout`].
    ///
    /// ```
    /// let r = greenhub::sync::AsyncResult::<u8>::new();
    /// assert_eq!(r.get_timeout(std::time::Duration::from_millis(1)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.result_timeout(timeout).map(|r| match r {
            Ok(v) => v,
            Err(e) => panic!("AsyncResult holds an error: {e:?}"),
        })
    }

    fn result_until(&self, deadline: Option<Instant>) -> Option<Result<T, E>> {
        loop {
            if let Some(r) = self.result.borrow().as_ref() {
                return Some(r.clone());
            }
            if !hub::with(|h| wait_in(h, &self.waiters, Wait::Sync(Primitive::AsyncResult, deadline), deadline, || {}))
            {
                return self.result.borrow().clone();
            }
        }
    }
}
