//! [`wait`] and [`iwait`] (gevent.wait / gevent.iwait): wait for any of several things
//! that become ready once — greenlets, events, async results — in completion order.

use crate::sched::task::Primitive;
use std::fmt;
use std::time::{Duration, Instant};

use crate::greenlet::Greenlet;
use crate::sched::hub;
use crate::sched::park::WaitQueue;
use crate::sched::task::Wait;
use crate::sched::timer::TimerGuard;
use crate::sync::{AsyncResult, Event};

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// The queue a [`Waitable`] wakes its waiters through (opaque outside greenhub).
#[doc(hidden)]
#[derive(Debug)]
pub struct WaitSlot<'a>(pub(crate) &'a WaitQueue);

/// Something [`wait`] and [`iwait`] can wait for: it becomes ready once and wakes its
/// waiters then. Implemented by [`Greenlet`] (finished), [`Event`] (set),
/// [`AsyncResult`] (delivered) and the queues (holding an item; waiting does not take
/// it). Object safe, sealed.
///
/// ```
/// use greenhub::{spawn, sync::Event, Waitable};
/// let g = spawn(|| ());
/// let e = Event::new();
/// let all: [&dyn Waitable; 2] = [&g, &e];
/// assert_eq!(greenhub::wait(&all, Some(1), None), [0]);
/// ```
pub trait Waitable: sealed::Sealed {
    /// Whether it is ready now.
    #[doc(hidden)]
    fn is_ready_now(&self) -> bool;
    /// Where its waiters wait.
    #[doc(hidden)]
    fn wait_slot(&self) -> WaitSlot<'_>;
    /// A waiter it woke has seen the wake-up (an `Event` counts them).
    #[doc(hidden)]
    fn woke_one(&self) {}
}

impl<T> sealed::Sealed for Greenlet<T> {}
impl<T: 'static> Waitable for Greenlet<T> {
    fn is_ready_now(&self) -> bool {
        self.ready()
    }
    fn wait_slot(&self) -> WaitSlot<'_> {
        WaitSlot(self.task.joiners())
    }
}

impl sealed::Sealed for Event {}
impl Waitable for Event {
    fn is_ready_now(&self) -> bool {
        self.is_set()
    }
    fn wait_slot(&self) -> WaitSlot<'_> {
        WaitSlot(self.wait_queue())
    }
    fn woke_one(&self) {
        self.seen_wake();
    }
}

impl<T, E> sealed::Sealed for AsyncResult<T, E> {}
impl<T: Clone, E: Clone + fmt::Debug> Waitable for AsyncResult<T, E> {
    fn is_ready_now(&self) -> bool {
        self.ready()
    }
    fn wait_slot(&self) -> WaitSlot<'_> {
        WaitSlot(self.wait_queue())
    }
}

/// Waits until `count` of `objects` (all of them with `None`) are ready, or `timeout`
/// passes; returns the indices of the ready ones in completion order (those ready at
/// the call first, by index). gevent's `wait(objects, timeout, count)`.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{sleep, spawn, wait, Waitable};
/// let slow = spawn(|| sleep(Duration::from_millis(20)));
/// let fast = spawn(|| sleep(Duration::from_millis(1)));
/// let all: [&dyn Waitable; 2] = [&slow, &fast];
/// assert_eq!(wait(&all, Some(1), None), [1]);
/// assert_eq!(wait(&all, None, None), [1, 0]);
/// assert!(wait(&[&spawn(|| sleep(Duration::from_secs(60))) as &dyn Waitable], None, Some(Duration::from_millis(5))).is_empty());
/// ```
pub fn wait(objects: &[&dyn Waitable], count: Option<usize>, timeout: Option<Duration>) -> Vec<usize> {
    let want = count.unwrap_or(objects.len()).min(objects.len());
    iwait(objects, timeout).take(want).collect()
}

/// Yields the index of each of `objects` once, as it becomes ready (those ready at the
/// first `next` first, by index), until all have been yielded or `timeout` (counted from
/// this call) passes. gevent's `iwait`.
///
/// ```
/// use std::time::Duration;
/// use greenhub::{iwait, sleep, spawn, Waitable};
/// let gs: Vec<_> = [30u64, 10, 20].into_iter().map(|ms| spawn(move || sleep(Duration::from_millis(ms)))).collect();
/// let refs: Vec<&dyn Waitable> = gs.iter().map(|g| g as &dyn Waitable).collect();
/// assert_eq!(iwait(&refs, None).collect::<Vec<_>>(), [1, 2, 0]);
/// ```
pub fn iwait<'a>(objects: &'a [&'a dyn Waitable], timeout: Option<Duration>) -> Iwait<'a> {
    Iwait {
        objects,
        yielded: vec![false; objects.len()],
        left: objects.len(),
        deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
    }
}

/// The iterator of [`iwait`].
pub struct Iwait<'a> {
    objects: &'a [&'a dyn Waitable],
    yielded: Vec<bool>,
    left: usize,
    deadline: Option<Instant>,
}

impl fmt::Debug for Iwait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait").field("objects", &self.objects.len()).field("left", &self.left).finish()
    }
}

impl Iterator for Iwait<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            if self.left == 0 {
                return None;
            }
            let ready = (0..self.objects.len()).find(|&i| !self.yielded[i] && self.objects[i].is_ready_now());
            if let Some(i) = ready {
                self.yielded[i] = true;
                self.left -= 1;
                return Some(i);
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            self.park();
        }
    }
}

impl Iwait<'_> {
    /// Parks until one of the objects not yielded yet wakes it (or the deadline).
    fn park(&self) {
        hub::with(|h| {
            let token = h.token();
            let pending: Vec<&dyn Waitable> =
                (0..self.objects.len()).filter(|&i| !self.yielded[i]).map(|i| self.objects[i]).collect();
            let slots: Vec<WaitSlot<'_>> = pending.iter().map(|o| o.wait_slot()).collect();
            // Withdrawn when the park ends, also by a kill or timeout unwinding from it;
            // an object whose wake-up this wait consumed is told so (`woke_one`).
            struct Regs<'a>(Vec<(Option<crate::sched::park::Waiting<'a>>, &'a dyn Waitable)>);
            impl Drop for Regs<'_> {
                fn drop(&mut self) {
                    for (reg, obj) in &mut self.0 {
                        if let Some(reg) = reg.take() {
                            if !reg.cancel() {
                                obj.woke_one();
                            }
                        }
                    }
                }
            }
            let _regs = Regs(slots.iter().zip(pending).map(|(s, o)| (Some(s.0.push(token.clone())), o)).collect());
            let _timer = TimerGuard::wake_at(h, self.deadline, &token);
            drop(token);
            h.park(Wait::Sync(Primitive::WaitAny, self.deadline));
        })
    }
}
