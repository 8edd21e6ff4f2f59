//! `Select`: wait on several receivers at once; the first that is ready wins.

use crate::sched::task::Primitive;
use std::fmt;
use std::time::{Duration, Instant};

use super::chan::RecvFail;
use super::{Receiver, RecvError};
use crate::xthread::loom::Arc;
use crate::xthread::waiter::{Waiter, WOKEN};

/// One receive of a [`Select`], type-erased.
trait Case<R> {
    /// Receives now, or registers `waiter` (served with `case`). `Some` runs the case's
    /// closure: an item, or the channel's closure.
    fn poll_or_register(&mut self, waiter: &Arc<Waiter>, case: usize) -> Option<R>;
    /// Withdraws the registration, if any (not served through this case).
    fn unregister(&mut self);
    /// Runs the closure with the item this case was served.
    fn served(&mut self) -> R;
    /// Passes on the item this case was served (the select unwinds instead of returning).
    fn pass_on(&mut self);
}

struct RecvCase<'a, T, F> {
    rx: &'a Receiver<T>,
    f: Option<F>,
    key: Option<u64>,
}

impl<T, R, F: FnOnce(Result<T, RecvError>) -> R> Case<R> for RecvCase<'_, T, F> {
    fn poll_or_register(&mut self, waiter: &Arc<Waiter>, case: usize) -> Option<R> {
        match self.rx.chan.recv_or_register(waiter, case) {
            Ok(r) => {
                let f = self.f.take().expect("a case completes once");
                Some(f(r.map_err(|e| {
                    debug_assert_eq!(e, RecvFail::Disconnected);
                    RecvError
                })))
            }
            Err(key) => {
                self.key = Some(key);
                None
            }
        }
    }

    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            self.rx.chan.unregister_recv(key);
        }
    }

    fn served(&mut self) -> R {
        let key = self.key.take().expect("a served case is registered");
        let v = self.rx.chan.take_served(key).expect("a served receiver's item");
        (self.f.take().expect("a case completes once"))(Ok(v))
    }

    fn pass_on(&mut self) {
        if let Some(key) = self.key.take() {
            if let Some(v) = self.rx.chan.take_served(key) {
                self.rx.chan.pass_on(v);
            }
        }
    }
}

/// Waits on several [`Receiver`]s (of any item types) and runs the closure of the first
/// that is ready, with its item — or with `Err(RecvError)` if that channel is closed.
/// When several are ready at once, the one added first wins. Exactly one item is taken;
/// a kill or timeout while waiting takes none (an item handed over meanwhile goes on to
/// the channel's next receiver).
///
/// ```
/// use std::time::Duration;
/// use greenhub::channel::{self, Select};
/// let (num_tx, nums) = channel::unbounded::<u32>();
/// let (_quit_tx, quit) = channel::bounded::<()>(1);
/// std::thread::spawn(move || num_tx.send(7).unwrap());
/// let got = Select::new()
///     .recv(&nums, |n| format!("number {}", n.unwrap()))
///     .recv(&quit, |_| "quit".to_string())
///     .wait_timeout(Duration::from_secs(10));
/// assert_eq!(got.as_deref(), Some("number 7"));
/// ```
pub struct Select<'a, R> {
    cases: Vec<Box<dyn Case<R> + 'a>>,
}

impl<R> fmt::Debug for Select<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Select").field("cases", &self.cases.len()).finish()
    }
}

impl<R> Default for Select<'_, R> {
    fn default() -> Self {
        Select { cases: Vec::new() }
    }
}

impl<'a, R> Select<'a, R> {
    /// A select without cases.
    ///
    /// ```
    /// let s: greenhub::channel::Select<'_, ()> = greenhub::channel::Select::new();
    /// assert_eq!(s.wait_timeout(std::time::Duration::ZERO), None);
    /// ```
    pub fn new() -> Self {
        Select::default()
    }

    /// Adds a receive from `rx`; `f` gets the item (or `Err` if `rx` is closed).
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// assert_eq!(greenhub::channel::Select::new().recv(&rx, |v| v.unwrap() + 1).wait(), 2);
    /// ```
    pub fn recv<T: 'a>(mut self, rx: &'a Receiver<T>, f: impl FnOnce(Result<T, RecvError>) -> R + 'a) -> Self {
        self.cases.push(Box::new(RecvCase { rx, f: Some(f), key: None }));
        self
    }

    /// Waits until a case is ready and returns what its closure returned.
    ///
    /// # Panics
    /// If there are no cases (it would wait forever).
    ///
    /// ```
    /// let (_tx, a) = greenhub::channel::unbounded::<u8>();
    /// let (tx, b) = greenhub::channel::unbounded::<&str>();
    /// tx.send("b").unwrap();
    /// let got = greenhub::channel::Select::new().recv(&a, |_| "a").recv(&b, |v| v.unwrap()).wait();
    /// assert_eq!(got, "b");
    /// ```
    pub fn wait(self) -> R {
        assert!(!self.cases.is_empty(), "greenhub: Select::wait without cases would wait forever");
        self.run(None).expect("no deadline")
    }

    /// Like [`Select::wait`], for at most `timeout`; `None` if no case became ready.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// let got = greenhub::channel::Select::new().recv(&rx, |_| ()).wait_timeout(Duration::from_millis(5));
    /// assert_eq!(got, None);
    /// ```
    pub fn wait_timeout(self, timeout: Duration) -> Option<R> {
        self.run(super::deadline(timeout))
    }

    fn run(mut self, deadline: Option<Instant>) -> Option<R> {
        if self.cases.is_empty() {
            if let Some(d) = deadline {
                crate::sleep(d.saturating_duration_since(Instant::now()));
            }
            return None;
        }
        loop {
            let waiter = Waiter::new();
            let mut guard = Registered { cases: &mut self.cases, waiter, done: false };
            for i in 0..guard.cases.len() {
                let waiter = guard.waiter.clone();
                if let Some(r) = guard.cases[i].poll_or_register(&waiter, i) {
                    // Ready while registering: the cases registered so far give up —
                    // unless one of them was served meanwhile, whose item is passed on.
                    guard.finish_without(None);
                    return Some(r);
                }
            }
            if crate::xthread::wait::expired(deadline) {
                guard.finish_without(None);
                return None;
            }
            guard.waiter.wait(Primitive::ChannelSelect, deadline);
            match guard.waiter.withdraw() {
                None | Some(WOKEN) => guard.finish_without(None),
                Some(case) => {
                    guard.finish_without(Some(case));
                    let r = guard.cases[case].served();
                    guard.done = true;
                    return Some(r);
                }
            }
            // Woken to re-check (a channel closed), or the deadline passed: the next
            // round looks at every case once more before it gives up.
        }
    }
}

/// The registrations of one round of a select; dropped while unwinding, it withdraws
/// them all and passes on an item served meanwhile.
struct Registered<'s, 'a, R> {
    cases: &'s mut Vec<Box<dyn Case<R> + 'a>>,
    waiter: Arc<Waiter>,
    done: bool,
}

impl<R> Registered<'_, '_, R> {
    /// Ends the round: unregisters every case except `keep`. With `keep == None` the
    /// waiter is withdrawn first; if it had been served meanwhile, that item is passed on.
    fn finish_without(&mut self, keep: Option<usize>) {
        if keep.is_none() {
            if let Some(case) = self.waiter.withdraw() {
                if case != WOKEN {
                    self.cases[case].pass_on();
                }
            }
        }
        for (i, c) in self.cases.iter_mut().enumerate() {
            if Some(i) != keep {
                c.unregister();
            }
        }
        self.done = keep.is_none();
    }
}

impl<R> Drop for Registered<'_, '_, R> {
    fn drop(&mut self) {
        if !self.done {
            // Unwinding (kill, timeout) from the wait, or a served case's closure
            // panicked (its item was already taken: nothing to pass on then).
            self.finish_without(None);
        }
    }
}
