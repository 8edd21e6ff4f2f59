//! `Queue<T>`: bounded, unbounded or rendezvous FIFO (gevent.queue.Queue / Channel).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hub::{self, TimerGuard};
use crate::park::{wait_in, Token, WaitQueue};
use crate::task::Wait;

/// A FIFO queue. `put` waits while the queue is full, `get` while it is empty; waiting
/// putters and getters are woken in FIFO order, and `put`/`get` themselves never switch
/// when they need not wait.
///
/// `Queue::bounded(0)` is a rendezvous (gevent's `Channel`): `put` waits until a getter
/// is waiting for the item.
///
/// ```
/// use std::rc::Rc;
/// use greenhub_runtime::{spawn, queue::Queue};
/// let q = Rc::new(Queue::bounded(2));
/// let p = q.clone();
/// let producer = spawn(move || for i in 0..5 { p.put(i) });
/// let got: Vec<i32> = (0..5).map(|_| q.get()).collect();
/// producer.join();
/// assert_eq!(got, [0, 1, 2, 3, 4]);
/// ```
pub struct Queue<T> {
    items: RefCell<VecDeque<T>>,
    cap: Option<usize>,
    getters: WaitQueue,
    putters: WaitQueue,
    /// Rendezvous only: the items of putters waiting for a getter, in arrival order,
    /// with the token that wakes each putter once its item is taken (so `try_get` can
    /// take one, as gevent's `Channel.get_nowait` does).
    offers: RefCell<VecDeque<Offer<T>>>,
    next_offer: std::cell::Cell<u64>,
}

struct Offer<T> {
    key: u64,
    putter: Token,
    item: T,
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("len", &self.len())
            .field("capacity", &self.cap)
            .field("getters", &self.getters.len())
            .field("putters", &self.putters.len())
            .finish()
    }
}

impl<T> Queue<T> {
    /// A queue holding at most `n` items; `0` makes a rendezvous channel.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::bounded(1);
    /// q.put('a');
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(n: usize) -> Queue<T> {
        Queue {
            items: RefCell::new(VecDeque::new()),
            cap: Some(n),
            getters: WaitQueue::new(),
            putters: WaitQueue::new(),
            offers: RefCell::new(VecDeque::new()),
            next_offer: std::cell::Cell::new(0),
        }
    }

    /// A queue without a size limit (`put` never waits).
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::unbounded();
    /// for i in 0..1000 { q.put(i); }
    /// assert_eq!(q.len(), 1000);
    /// ```
    pub fn unbounded() -> Queue<T> {
        Queue {
            items: RefCell::new(VecDeque::new()),
            cap: None,
            getters: WaitQueue::new(),
            putters: WaitQueue::new(),
            offers: RefCell::new(VecDeque::new()),
            next_offer: std::cell::Cell::new(0),
        }
    }

    /// Number of queued items.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::unbounded();
    /// q.put(1);
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// Whether no item is queued.
    ///
    /// ```
    /// assert!(greenhub_runtime::queue::Queue::<u8>::unbounded().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.borrow().is_empty()
    }

    /// Whether a `put` would wait now (a rendezvous queue is full unless a getter waits).
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::<u8>::bounded(0);
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        !self.has_room()
    }

    fn has_room(&self) -> bool {
        match self.cap {
            None => true,
            Some(0) => self.getters.has_live(),
            Some(n) => self.items.borrow().len() < n,
        }
    }

    /// Puts an item, waiting while the queue is full.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::unbounded();
    /// q.put("x");
    /// assert_eq!(q.get(), "x");
    /// ```
    pub fn put(&self, item: T) {
        if self.put_until(item, None).is_err() {
            unreachable!("a put without deadline only returns once done");
        }
    }

    /// Puts an item if there is room now; gives it back otherwise.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::bounded(1);
    /// assert_eq!(q.try_put(1), Ok(()));
    /// assert_eq!(q.try_put(2), Err(2));
    /// ```
    pub fn try_put(&self, item: T) -> Result<(), T> {
        if self.has_room() {
            self.push(item);
            Ok(())
        } else {
            Err(item)
        }
    }

    /// Puts an item, waiting at most `timeout` for room; gives it back on timeout.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::bounded(0);
    /// assert_eq!(q.put_timeout(7, std::time::Duration::from_millis(2)), Err(7));
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), T> {
        self.put_until(item, Instant::now().checked_add(timeout))
    }

    /// Takes the first item, waiting while the queue is empty.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let q = Rc::new(greenhub_runtime::queue::Queue::bounded(0));
    /// let p = q.clone();
    /// let _producer = greenhub_runtime::spawn(move || p.put(5));
    /// assert_eq!(q.get(), 5);
    /// ```
    pub fn get(&self) -> T {
        self.get_until(None).expect("a get without deadline only returns with an item")
    }

    /// Takes the first item if there is one.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::unbounded();
    /// assert_eq!(q.try_get(), None);
    /// q.put(1);
    /// assert_eq!(q.try_get(), Some(1));
    /// ```
    pub fn try_get(&self) -> Option<T> {
        let item = self.items.borrow_mut().pop_front();
        if item.is_some() {
            hub::with(|h| self.putters.wake_one(h));
            return item;
        }
        // Rendezvous: take the item of the first putter waiting for a getter.
        let offer = self.offers.borrow_mut().pop_front();
        offer.map(|o| {
            hub::with(|h| o.putter.unpark(h, crate::task::Wake::Other));
            o.item
        })
    }

    /// Takes the first item, waiting at most `timeout`.
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::<u8>::unbounded();
    /// assert_eq!(q.get_timeout(std::time::Duration::from_millis(2)), None);
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Option<T> {
        self.get_until(Instant::now().checked_add(timeout))
    }

    /// A blocking iterator: each `next` is a [`Queue::get`] (it never ends by itself;
    /// stop with `take`, or put a sentinel such as `None` in a `Queue<Option<T>>`).
    ///
    /// ```
    /// let q = greenhub_runtime::queue::Queue::unbounded();
    /// q.put(Some(1)); q.put(Some(2)); q.put(None);
    /// assert_eq!(q.iter().map_while(|x| x).collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { queue: self }
    }

    fn push(&self, item: T) {
        self.items.borrow_mut().push_back(item);
        hub::with(|h| self.getters.wake_one(h));
    }

    pub(crate) fn put_until(&self, item: T, deadline: Option<Instant>) -> Result<(), T> {
        if self.cap == Some(0) {
            return self.offer_until(item, deadline);
        }
        loop {
            if self.has_room() {
                self.push(item);
                return Ok(());
            }
            let woken = hub::with(|h| {
                wait_in(h, &self.putters, Wait::Sync("queue put (full)", deadline), deadline, || {
                    // Woken for room we will not use: hand the chance on.
                    if self.has_room() {
                        hub::with(|h| self.putters.wake_one(h));
                    }
                })
            });
            if !woken && deadline.is_some_and(|d| Instant::now() >= d) {
                return if self.has_room() {
                    self.push(item);
                    Ok(())
                } else {
                    Err(item)
                };
            }
        }
    }

    fn get_until(&self, deadline: Option<Instant>) -> Option<T> {
        loop {
            if let Some(item) = self.try_get() {
                return Some(item);
            }
            let woken = hub::with(|h| {
                wait_in(h, &self.getters, Wait::Sync("queue get (empty)", deadline), deadline, || {
                    // Woken for an item we will not take: hand it on.
                    if !self.is_empty() {
                        hub::with(|h| self.getters.wake_one(h));
                    }
                })
            });
            if !woken && deadline.is_some_and(|d| Instant::now() >= d) {
                return self.try_get();
            }
        }
    }
}

impl<T> Queue<T> {
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
                h.park(Wait::Sync("queue put (rendezvous)", deadline));
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
/// let q = greenhub_runtime::queue::Queue::unbounded();
/// q.put(1);
/// q.put(2);
/// let mut it = q.iter();
/// assert_eq!((it.next(), it.next()), (Some(1), Some(2)));
/// ```
#[derive(Debug)]
pub struct Iter<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        Some(self.queue.get())
    }
}

impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
