//! `Queue<T>`: bounded, unbounded or rendezvous FIFO (gevent.queue.Queue / Channel).

use crate::sched::task::Primitive;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use super::order::{Fifo, Lifo, Order, Priority};
use crate::sched::hub;
use crate::sched::park::{wait_in, Token, WaitQueue};
use crate::sched::task::Wait;
use crate::sched::timer::TimerGuard;

/// The queue behind [`Queue`], [`LifoQueue`] and [`PriorityQueue`]: one item order `O`.
pub(crate) struct Core<T, O: Order<T>> {
    items: RefCell<O::Items>,
    cap: Option<usize>,
    getters: WaitQueue,
    putters: WaitQueue,
    /// Rendezvous only: the items of putters waiting for a getter, in arrival order,
    /// with the token that wakes each putter once its item is taken (so `try_get` can
    /// take one, as gevent's `Channel.get_nowait` does).
    offers: RefCell<VecDeque<Offer<T>>>,
    next_offer: std::cell::Cell<u64>,
    /// `shutdown` was called: puts fail, gets fail once the queue is empty.
    shut: std::cell::Cell<bool>,
}

struct Offer<T> {
    key: u64,
    putter: Token,
    item: T,
}

impl<T, O: Order<T>> fmt::Debug for Core<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.cap)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .finish()
    }
}

impl<T, O: Order<T>> Core<T, O> {
    pub(crate) fn with_capacity(cap: Option<usize>) -> Self {
        Core {
            items: RefCell::new(O::Items::default()),
            cap,
            getters: WaitQueue::new(),
            putters: WaitQueue::new(),
            offers: RefCell::new(VecDeque::new()),
            next_offer: std::cell::Cell::new(0),
            shut: std::cell::Cell::new(false),
        }
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        O::len(&self.items.borrow())
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a `put` would wait now (a rendezvous queue is full unless a getter waits).
    pub fn is_full(&self) -> bool {
        !self.has_room()
    }

    fn has_room(&self) -> bool {
        match self.cap {
            None => true,
            Some(0) => self.getters.has_live(),
            Some(n) => self.len() < n,
        }
    }

    /// Puts an item if there is room now; gives it back otherwise.
    pub fn try_put(&self, item: T) -> Result<(), T> {
        if self.has_room() && !self.shut.get() {
            self.push(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Takes the first item if there is one.
    pub fn try_get(&self) -> Option<T> {
        let item = O::pop(&mut self.items.borrow_mut());
        if item.is_some() {
            hub::with(|h| self.putters.wake_one(h));
            return item;
        }
        // Rendezvous: take the item of the first putter waiting for a getter.
        let offer = self.offers.borrow_mut().pop_front();
        offer.map(|o| {
            hub::with(|h| o.putter.unpark(h, crate::sched::task::Wake::Notify));
            o.item
        })
    }

    /// A blocking iterator: each `next` is a [`Queue::get`] (it never ends by itself;
    /// stop with `take`, or put a sentinel such as `None` in a `Queue<Option<T>>`).
    /// The item `get` would take next, cloned, if there is one (a rendezvous queue's is
    /// the first waiting putter's).
    pub fn try_peek(&self) -> Option<T>
    where
        T: Clone,
    {
        if let Some(v) = O::peek(&self.items.borrow()) {
            return Some(v.clone());
        }
        self.offers.borrow().front().map(|o| o.item.clone())
    }

    /// Waits (at most until `deadline`) for an item and returns a clone, leaving it queued.
    pub(crate) fn peek_until(&self, deadline: Option<Instant>) -> Option<T>
    where
        T: Clone,
    {
        loop {
            if let Some(v) = self.try_peek() {
                return Some(v);
            }
            if self.shut.get() {
                return None;
            }
            let woken = self.wait_item(Primitive::QueuePeek, deadline);
            if woken {
                if let Some(v) = self.try_peek() {
                    // Woken for an item it does not take: the next getter gets the chance.
                    hub::with(|h| self.getters.wake_one(h));
                    return Some(v);
                }
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_peek();
            }
        }
    }

    /// Shuts the queue down (Python 3.13's `Queue.shutdown`): puts fail from now on,
    /// gets fail once the queue is empty (at once if `immediate`, which drops what is
    /// queued), and every waiter is woken to find out.
    pub(crate) fn shutdown(&self, immediate: bool) {
        self.shut.set(true);
        if immediate {
            let items = std::mem::take(&mut *self.items.borrow_mut());
            drop(items);
        }
        let offers: Vec<Token> = self.offers.borrow().iter().map(|o| o.putter.clone()).collect();
        hub::with(|h| {
            self.getters.wake_all(h);
            self.putters.wake_all(h);
            for t in offers {
                t.unpark(h, crate::sched::task::Wake::Notify);
            }
        });
    }

    /// The getters' wait queue (for `wait`/`iwait`).
    pub(crate) fn getters(&self) -> &WaitQueue {
        &self.getters
    }

    /// Whether `shutdown` was called.
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shut.get()
    }

    /// The blocking iterator.
    pub fn iter(&self) -> Iter<'_, T, O> {
        Iter { queue: self }
    }

    fn push(&self, item: T) {
        O::push(&mut self.items.borrow_mut(), item);
        hub::with(|h| self.getters.wake_one(h));
    }

    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), T> {
        if self.cap == Some(0) {
            return self.offer_until(item, deadline);
        }
        loop {
            if self.shut.get() {
                return Err(item);
            }
            if self.has_room() {
                self.push(item);
                return Ok(());
            }
            let woken = hub::with(|h| {
                wait_in(h, &self.putters, Wait::Sync(Primitive::QueuePutFull, deadline), deadline, || {
                    // Woken for room we will not use: hand the chance on.
                    if self.has_room() {
                        hub::with(|h| self.putters.wake_one(h));
                    }
                })
            });
            if !woken && deadline.is_some_and(|d| Instant::now() >= d) {
                return if self.has_room() && !self.shut.get() {
                    self.push(item);
                    Ok(())
                } else {
                    Err(item)
                };
            }
        }
    }

    /// Waits in the getters' queue for an item (at most until `deadline`); `true` if woken
    /// through the queue. A waiter woken for an item that then unwinds hands the wake-up
    /// on to the next getter.
    fn wait_item(&self, what: Primitive, deadline: Option<Instant>) -> bool {
        hub::with(|h| {
            wait_in(h, &self.getters, Wait::Sync(what, deadline), deadline, || {
                if !self.is_empty() {
                    hub::with(|h| self.getters.wake_one(h));
                }
            })
        })
    }

    pub(crate) fn get_until(&self, deadline: Option<Instant>) -> Option<T> {
        loop {
            if let Some(item) = self.try_get() {
                return Some(item);
            }
            if self.shut.get() {
                return None;
            }
            let woken = self.wait_item(Primitive::QueueGet, deadline);
            if !woken && deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_get();
            }
        }
    }
}

impl<T, O: Order<T>> Core<T, O> {
    /// A rendezvous put: hand the item to a waiting getter, or offer it and wait until
    /// a getter takes it (or `deadline`: then the item comes back).
    fn offer_until(&self, item: T, deadline: Option<Instant>) -> Result<(), T> {
        /// Withdraws the offer if it is still there when the put ends (killed, timed out).
        struct Withdraw<'a, T> {
            offers: &'a RefCell<VecDeque<Offer<T>>>,
            key: u64,
        }
        impl<T> Withdraw<'_, T> {
            fn take(&self) -> Option<T> {
                let mut offers = self.offers.borrow_mut();
                let i = offers.iter().position(|o| o.key == self.key)?;
                offers.remove(i).map(|o| o.item)
            }
        }
        impl<T> Drop for Withdraw<'_, T> {
            fn drop(&mut self) {
                drop(self.take());
            }
        }
        let mut item = item;
        loop {
            if self.shut.get() {
                return Err(item);
            }
            if self.has_room() {
                self.push(item);
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(item);
            }
            let key = self.next_offer.get();
            self.next_offer.set(key + 1);
            let withdraw = Withdraw { offers: &self.offers, key };
            hub::with(|h| {
                let token = h.token();
                self.offers.borrow_mut().push_back(Offer { key, putter: token.clone(), item });
                let _timer = TimerGuard::wake_at(h, deadline, &token);
                drop(token);
                h.park(Wait::Sync(Primitive::QueuePutRendezvous, deadline));
            });
            match withdraw.take() {
                None => return Ok(()),     // a getter took it
                Some(back) => item = back, // woken otherwise: the deadline, or a getter arrived
            }
        }
    }
}

/// Blocking iterator over a [`Queue`]; see [`Queue::iter`].
///
/// ```
/// let q = greenhub::queue::Queue::unbounded();
/// q.put(1);
/// q.put(2);
/// let mut it = q.iter();
/// assert_eq!((it.next(), it.next()), (Some(1), Some(2)));
/// ```
pub struct Iter<'a, T, O: Order<T> = Fifo> {
    queue: &'a Core<T, O>,
}

impl<T, O: Order<T>> fmt::Debug for Iter<'_, T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("queue", self.queue).finish()
    }
}

impl<T, O: Order<T>> Iterator for Iter<'_, T, O> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.queue.get_until(None)
    }
}

impl<'a, T, O: Order<T>> IntoIterator for &'a Core<T, O> {
    type Item = T;
    type IntoIter = Iter<'a, T, O>;
    fn into_iter(self) -> Iter<'a, T, O> {
        self.iter()
    }
}

/// The public queue types: thin handles over [`Core`] with one item order each.
macro_rules! queue_types {
    ($($(#[$doc:meta])* $name:ident<T $(: $bound:path)?> = $order:ty;)*) => {$(
        $(#[$doc])*
        pub struct $name<T $(: $bound)?>(Core<T, $order>);

        impl<T $(: $bound)?> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<T $(: $bound)?> $name<T> {
            /// A queue holding at most `n` items; `0` makes a rendezvous channel (`put`
            /// waits until a getter takes the item).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::bounded(1);\nq.put(1);\nassert!(q.is_full());\n```")]
            pub fn bounded(n: usize) -> Self {
                $name(Core::with_capacity(Some(n)))
            }

            /// A queue without a size limit (`put` never waits).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nfor i in 0..1000 { q.put(i); }\nassert_eq!(q.len(), 1000);\n```")]
            pub fn unbounded() -> Self {
                $name(Core::with_capacity(None))
            }

            /// Number of queued items.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nq.put(1);\nassert_eq!(q.len(), 1);\n```")]
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether no item is queued.
            ///
            #[doc = concat!("```\nassert!(greenhub::queue::", stringify!($name), "::<u8>::unbounded().is_empty());\n```")]
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }

            /// Whether a `put` would wait now (a rendezvous queue is full unless a getter
            /// waits).
            ///
            #[doc = concat!("```\nassert!(greenhub::queue::", stringify!($name), "::<u8>::bounded(0).is_full());\n```")]
            pub fn is_full(&self) -> bool {
                self.0.is_full()
            }

            /// Shuts the queue down (Python 3.13's `Queue.shutdown`): from now on `put`
            /// panics and `try_put`/`put_timeout` give the item back; `get` panics, and
            /// `try_get`/`get_timeout`/`get_or_shutdown` give `None`, once the queue is
            /// empty — at once with `immediate`, which drops the queued items. Every
            /// waiting putter and getter wakes to find out.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nq.put(1);\nq.shutdown(false);\nassert_eq!(q.try_put(2), Err(2));\nassert_eq!(q.get_or_shutdown(), Some(1));\nassert_eq!(q.get_or_shutdown(), None);\n```")]
            pub fn shutdown(&self, immediate: bool) {
                self.0.shutdown(immediate)
            }

            /// Whether [`Self::shutdown`] was called.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::<u8>::unbounded();\nq.shutdown(true);\nassert!(q.is_shutdown());\n```")]
            pub fn is_shutdown(&self) -> bool {
                self.0.is_shutdown()
            }

            /// Like `get`, but `None` instead of a panic once the queue is shut down and
            /// empty (`while let Some(item) = q.get_or_shutdown() { .. }` consumes until
            /// then).
            ///
            #[doc = concat!("```\nuse std::rc::Rc;\nlet q = Rc::new(greenhub::queue::", stringify!($name), "::unbounded());\nlet p = q.clone();\nlet producer = greenhub::spawn(move || { p.put(1); p.put(2); p.shutdown(false); });\nlet mut got = 0;\nwhile let Some(v) = q.get_or_shutdown() { got += v; }\nassert_eq!(got, 3);\n# producer.join();\n```")]
            pub fn get_or_shutdown(&self) -> Option<T> {
                self.0.get_until(None)
            }

            /// Puts an item, waiting while the queue is full (never switches otherwise).
            ///
            /// # Panics
            /// If the queue is shut down.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nq.put(3);\nassert_eq!(q.get(), 3);\n```")]
            pub fn put(&self, item: T) {
                if self.0.put_until(item, None).is_err() {
                    panic!("greenhub: put on a shut-down queue");
                }
            }

            /// Puts an item if there is room now; gives it back otherwise.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::bounded(1);\nassert_eq!(q.try_put(1), Ok(()));\nassert_eq!(q.try_put(2), Err(2));\n```")]
            pub fn try_put(&self, item: T) -> Result<(), T> {
                self.0.try_put(item)
            }

            /// Puts an item, waiting at most `timeout` for room; gives it back on timeout.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::bounded(0);\nassert_eq!(q.put_timeout(7, std::time::Duration::from_millis(2)), Err(7));\n```")]
            pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
                self.0.put_until(item, Instant::now().checked_add(timeout))
            }

            /// Takes the next item, waiting while the queue is empty.
            ///
            /// # Panics
            /// If the queue is shut down and empty (see [`Self::get_or_shutdown`]).
            ///
            #[doc = concat!("```\nuse std::rc::Rc;\nlet q = Rc::new(greenhub::queue::", stringify!($name), "::bounded(0));\nlet p = q.clone();\nlet _producer = greenhub::spawn(move || p.put(5));\nassert_eq!(q.get(), 5);\n```")]
            pub fn get(&self) -> T {
                self.0.get_until(None).unwrap_or_else(|| panic!("greenhub: get on a shut-down, empty queue"))
            }

            /// Takes the next item if there is one (a rendezvous queue's: from a waiting
            /// putter).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nassert_eq!(q.try_get(), None);\nq.put(1);\nassert_eq!(q.try_get(), Some(1));\n```")]
            pub fn try_get(&self) -> Option<T> {
                self.0.try_get()
            }

            /// Takes the next item, waiting at most `timeout`.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::<u8>::unbounded();\nassert_eq!(q.get_timeout(std::time::Duration::from_millis(2)), None);\n```")]
            pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
                self.0.get_until(Instant::now().checked_add(timeout))
            }

            /// The item `get` would take next, cloned, waiting while the queue is empty;
            /// the item stays queued (gevent's `peek`).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nq.put(4);\nassert_eq!(q.peek(), 4);\nassert_eq!(q.len(), 1);\n```")]
            pub fn peek(&self) -> T
            where
                T: Clone,
            {
                self.0.peek_until(None).unwrap_or_else(|| panic!("greenhub: peek on a shut-down, empty queue"))
            }

            /// The item `get` would take next, cloned, if there is one (gevent's
            /// `peek_nowait`).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nassert_eq!(q.try_peek(), None);\nq.put('x');\nassert_eq!(q.try_peek(), Some('x'));\n```")]
            pub fn try_peek(&self) -> Option<T>
            where
                T: Clone,
            {
                self.0.try_peek()
            }

            /// Like [`Self::peek`], waiting at most `timeout`.
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::<u8>::unbounded();\nassert_eq!(q.peek_timeout(std::time::Duration::from_millis(2)), None);\n```")]
            pub fn peek_timeout(&self, timeout: Duration) -> Option<T>
            where
                T: Clone,
            {
                self.0.peek_until(Instant::now().checked_add(timeout))
            }

            /// A blocking iterator: each `next` is a `get`; it ends once the queue is shut
            /// down and empty (or stop it with `take`, or a sentinel item).
            ///
            #[doc = concat!("```\nlet q = greenhub::queue::", stringify!($name), "::unbounded();\nq.put(1); q.put(2);\nassert_eq!(q.iter().take(2).count(), 2);\n```")]
            pub fn iter(&self) -> Iter<'_, T, $order> {
                self.0.iter()
            }
        }

        impl<T $(: $bound)?> crate::wait::Sealed for $name<T> {}

        /// Ready while it holds an item (for [`crate::wait`]/[`crate::iwait`]); waiting
        /// does not take the item.
        impl<T $(: $bound)?> crate::Waitable for $name<T> {
            fn is_ready_now(&self) -> bool {
                !self.0.is_empty()
            }
            fn wait_slot(&self) -> crate::WaitSlot<'_> {
                crate::WaitSlot(self.0.getters())
            }
            fn woke_one(&self) {
                // The wake-up announced an item this waiter does not take: pass it on.
                if !self.0.is_empty() {
                    hub::with(|h| self.0.getters().wake_one(h));
                }
            }
        }

        impl<'a, T $(: $bound)?> IntoIterator for &'a $name<T> {
            type Item = T;
            type IntoIter = Iter<'a, T, $order>;
            fn into_iter(self) -> Iter<'a, T, $order> {
                self.0.iter()
            }
        }
    )*};
}

queue_types! {
    /// A FIFO queue. `put` waits while the queue is full, `get` while it is empty; waiting
    /// putters and getters are woken in FIFO order, and `put`/`get` themselves never switch
    /// when they need not wait.
    ///
    /// `Queue::bounded(0)` is a rendezvous (gevent's `Channel`): `put` waits until a getter
    /// is waiting for the item.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use greenhub::{spawn, queue::Queue};
    /// let q = Rc::new(Queue::bounded(2));
    /// let p = q.clone();
    /// let producer = spawn(move || for i in 0..5 { p.put(i) });
    /// let got: Vec<i32> = (0..5).map(|_| q.get()).collect();
    /// producer.join();
    /// assert_eq!(got, [0, 1, 2, 3, 4]);
    /// ```
    Queue<T> = Fifo;

    /// A queue that hands out the most recently put item first (gevent's `LifoQueue`);
    /// otherwise a [`Queue`].
    ///
    /// ```
    /// let q = greenhub::queue::LifoQueue::bounded(3);
    /// for i in 0..3 { q.put(i); }
    /// assert_eq!([q.get(), q.get(), q.get()], [2, 1, 0]);
    /// ```
    LifoQueue<T> = Lifo;

    /// A queue that hands out its smallest item first (gevent's `PriorityQueue`; put
    /// `(priority, item)` tuples to order by a key); otherwise a [`Queue`].
    ///
    /// ```
    /// let q = greenhub::queue::PriorityQueue::unbounded();
    /// q.put((2, "b")); q.put((1, "a"));
    /// assert_eq!(q.get(), (1, "a"));
    /// ```
    PriorityQueue<T: Ord> = Priority;
}
