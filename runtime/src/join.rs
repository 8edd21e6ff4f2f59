//! Waiting for many greenlets: [`Join`], [`joinall`], [`joinall_timeout`], [`killall`].

use std::time::{Duration, Instant};

use crate::greenlet::{join_task, Greenlet, GreenletId};

/// Something that can be joined and killed like a greenlet, whatever its value type.
///
/// Object safe, so greenlets of different types can be joined together:
///
/// ```
/// use greenhub::{joinall, spawn, Join};
/// let a = spawn(|| 1u8);
/// let b = spawn(|| "two");
/// joinall([&a as &dyn Join, &b]);
/// assert!(a.ready() && b.ready());
/// ```
pub trait Join {
    /// The greenlet's id.
    fn greenlet_id(&self) -> GreenletId;
    /// Whether it has finished.
    fn is_ready(&self) -> bool;
    /// Waits until it has finished or `deadline` passed; returns whether it finished.
    fn join_until(&self, deadline: Option<Instant>) -> bool;
    /// Asks it to die (see [`Greenlet::kill`]).
    fn kill_greenlet(&self);
}

impl<T: 'static> Join for Greenlet<T> {
    fn greenlet_id(&self) -> GreenletId {
        self.id()
    }
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn join_until(&self, deadline: Option<Instant>) -> bool {
        join_task(&self.task, deadline)
    }
    fn kill_greenlet(&self) {
        self.kill()
    }
}

/// Waits until every greenlet has finished.
///
/// ```
/// let gs: Vec<_> = (0..3).map(|i| greenhub::spawn(move || i * 2)).collect();
/// greenhub::joinall(&gs);
/// assert_eq!(gs.iter().map(|g| g.value().unwrap()).collect::<Vec<_>>(), [0, 2, 4]);
/// ```
pub fn joinall<'a, I, J>(greenlets: I)
where
    I: IntoIterator<Item = &'a J>,
    J: Join + ?Sized + 'a,
{
    for g in greenlets {
        g.join_until(None);
    }
}

/// Waits at most `timeout` for every greenlet; returns whether all finished. The ones
/// still running are left alone (never killed), as in gevent.
///
/// ```
/// use std::time::Duration;
/// let fast = greenhub::spawn(|| ());
/// let slow = greenhub::spawn(|| greenhub::sleep(Duration::from_secs(5)));
/// assert!(!greenhub::joinall_timeout([&fast, &slow], Duration::from_millis(20)));
/// assert!(fast.ready() && !slow.ready());
/// slow.kill();
/// ```
pub fn joinall_timeout<'a, I, J>(greenlets: I, timeout: Duration) -> bool
where
    I: IntoIterator<Item = &'a J>,
    J: Join + ?Sized + 'a,
{
    let deadline = Instant::now().checked_add(timeout);
    let mut all = true;
    for g in greenlets {
        all &= g.join_until(deadline);
    }
    all
}

/// Kills every greenlet (without waiting; join them to wait).
///
/// ```
/// use std::time::Duration;
/// let gs: Vec<_> = (0..3).map(|_| greenhub::spawn(|| greenhub::sleep(Duration::from_secs(9)))).collect();
/// greenhub::killall(&gs);
/// greenhub::joinall(&gs);
/// assert!(gs.iter().all(|g| g.ready() && !g.successful()));
/// ```
pub fn killall<'a, I, J>(greenlets: I)
where
    I: IntoIterator<Item = &'a J>,
    J: Join + ?Sized + 'a,
{
    // Called by one of them: kill every other one first, the caller (which unwinds at
    // once) last.
    let me = crate::sched::hub::with(|h| h.current().id());
    let mut own = None;
    for g in greenlets {
        if g.greenlet_id().0 == me && me != 0 {
            own = Some(g);
        } else {
            g.kill_greenlet();
        }
    }
    if let Some(g) = own {
        g.kill_greenlet();
    }
}
