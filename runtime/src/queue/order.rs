//! The order a queue hands its items out in: FIFO ([`Fifo`], gevent's `Queue`), LIFO
//! ([`Lifo`], `LifoQueue`) or smallest first ([`Priority`], `PriorityQueue`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

mod sealed {
    pub trait Sealed {}
}

/// How a queue ([`Queue`](super::Queue), [`LifoQueue`](super::LifoQueue),
/// [`PriorityQueue`](super::PriorityQueue)) stores and hands out its items; it names
/// the order in [`Iter`](super::Iter). Sealed: the three orders below are all there is.
pub trait Order<T>: sealed::Sealed {
    /// The item store.
    #[doc(hidden)]
    type Items: Default;
    #[doc(hidden)]
    fn push(items: &mut Self::Items, item: T);
    #[doc(hidden)]
    fn pop(items: &mut Self::Items) -> Option<T>;
    #[doc(hidden)]
    fn peek(items: &Self::Items) -> Option<&T>;
    #[doc(hidden)]
    fn len(items: &Self::Items) -> usize;
}

/// First in, first out (the default).
///
/// ```
/// let q = greenhub::queue::Queue::unbounded(); // a queue of order Fifo
/// q.put(1); q.put(2);
/// assert_eq!(q.get(), 1);
/// ```
#[derive(Debug)]
pub struct Fifo;

/// Last in, first out.
///
/// ```
/// let q = greenhub::queue::LifoQueue::unbounded();
/// q.put(1); q.put(2);
/// assert_eq!(q.get(), 2);
/// ```
#[derive(Debug)]
pub struct Lifo;

/// Smallest item first (`T: Ord`); equal items in no particular order, as Python's heapq.
///
/// ```
/// let q = greenhub::queue::PriorityQueue::unbounded();
/// q.put(3); q.put(1); q.put(2);
/// assert_eq!((q.get(), q.get(), q.get()), (1, 2, 3));
/// ```
#[derive(Debug)]
pub struct Priority;

impl sealed::Sealed for Fifo {}
impl sealed::Sealed for Lifo {}
impl sealed::Sealed for Priority {}

impl<T> Order<T> for Fifo {
    type Items = VecDeque<T>;
    fn push(items: &mut VecDeque<T>, item: T) {
        items.push_back(item);
    }
    fn pop(items: &mut VecDeque<T>) -> Option<T> {
        items.pop_front()
    }
    fn peek(items: &VecDeque<T>) -> Option<&T> {
        items.front()
    }
    fn len(items: &VecDeque<T>) -> usize {
        items.len()
    }
}

impl<T> Order<T> for Lifo {
    type Items = Vec<T>;
    fn push(items: &mut Vec<T>, item: T) {
        items.push(item);
    }
    fn pop(items: &mut Vec<T>) -> Option<T> {
        items.pop()
    }
    fn peek(items: &Vec<T>) -> Option<&T> {
        items.last()
    }
    fn len(items: &Vec<T>) -> usize {
        items.len()
    }
}

impl<T: Ord> Order<T> for Priority {
    type Items = BinaryHeap<Reverse<T>>;
    fn push(items: &mut BinaryHeap<Reverse<T>>, item: T) {
        items.push(Reverse(item));
    }
    fn pop(items: &mut BinaryHeap<Reverse<T>>) -> Option<T> {
        items.pop().map(|r| r.0)
    }
    fn peek(items: &BinaryHeap<Reverse<T>>) -> Option<&T> {
        items.peek().map(|r| &r.0)
    }
    fn len(items: &BinaryHeap<Reverse<T>>) -> usize {
        items.len()
    }
}
