//! Channels between hubs and threads: multi-producer, multi-consumer, `Send`.
//!
//! [`bounded`]`(n)` holds up to `n` items (`0`: a rendezvous, each send waits for a
//! receiver), [`unbounded`] never makes senders wait. [`Sender`] and [`Receiver`] are
//! both `Clone + Send + Sync`: hand them to greenlets on any hub of a
//! [`Runtime`](crate::Runtime), to plain threads, or keep them on one hub. A waiting
//! greenlet parks on its own hub (which runs its other greenlets meanwhile) and is woken
//! through that hub's remote queue; a thread without a hub blocks.
//!
//! Semantics (those of `crossbeam-channel` and Go, with gevent's kill safety):
//! - items from one sender arrive in the order sent; waiting receivers are served in
//!   arrival order, and so are waiting senders;
//! - the channel is closed for receivers when every `Sender` is gone (buffered items are
//!   still received first), and for senders when every `Receiver` is gone (the send
//!   gives its item back in the error; buffered items are dropped);
//! - a kill or timeout of a waiting greenlet withdraws it; an item already handed to a
//!   receiver that is killed before it returns goes to the next receiver;
//! - every blocking call has a `_timeout` twin and a `try_` form; [`Select`] waits on
//!   several receivers at once.
//!
//! ```
//! use greenhub::channel;
//! let rt = greenhub::Runtime::new(2).unwrap();
//! let (tx, rx) = channel::bounded(16);
//! let producers: Vec<_> = (0..2)
//!     .map(|hub| {
//!         let tx = tx.clone();
//!         rt.spawn_on(hub, move || for i in 0..100 { tx.send(i).unwrap() })
//!     })
//!     .collect();
//! drop(tx); // the channel closes when both producers are done
//! let sum: u64 = rx.iter().sum(); // this thread blocks; the hubs run
//! assert_eq!(sum, 2 * 4950);
//! for p in producers {
//!     p.get().unwrap();
//! }
//! ```

use std::fmt;
use std::time::{Duration, Instant};

use crate::xthread::loom::Arc;

mod chan;
mod error;
mod select;

use chan::{Chan, RecvFail, SendFail};
pub use error::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use select::Select;

/// A channel of at most `cap` buffered items; `cap == 0` makes a rendezvous channel
/// (each `send` waits until a receiver takes the item).
///
/// ```
/// let (tx, rx) = greenhub::channel::bounded(1);
/// tx.send(1).unwrap();
/// assert!(tx.try_send(2).is_err()); // full
/// assert_eq!(rx.recv(), Ok(1));
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(cap));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A channel without a bound: `send` never waits.
///
/// ```
/// let (tx, rx) = greenhub::channel::unbounded();
/// for i in 0..1000 { tx.send(i).unwrap(); }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan::new(usize::MAX));
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A rendezvous channel, the same as [`bounded`]`(0)`.
///
/// ```
/// let (tx, rx) = greenhub::channel::rendezvous();
/// let g = greenhub::spawn(move || tx.send("hand-off").unwrap());
/// assert_eq!(rx.recv(), Ok("hand-off")); // the sender waited for this receive
/// g.get().unwrap();
/// ```
pub fn rendezvous<T>() -> (Sender<T>, Receiver<T>) {
    bounded(0)
}

fn deadline(timeout: Duration) -> Option<Instant> {
    Some(crate::timeout::deadline_after(timeout))
}

/// The sending half; `Clone` for more producers.
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `v`, waiting while the channel is full. Fails, giving `v` back, if every
    /// receiver is gone.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(5).unwrap();
    /// drop(rx);
    /// assert_eq!(tx.send(6).unwrap_err().into_inner(), 6);
    /// ```
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.chan.send(v, None).map_err(|f| match f {
            SendFail::Full(v) | SendFail::Disconnected(v) => SendError(v),
        })
    }

    /// Like [`Sender::send`], waiting at most `timeout` for room.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::channel::SendTimeoutError;
    /// let (tx, _rx) = greenhub::channel::bounded(0);
    /// assert_eq!(tx.send_timeout(1, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(1)));
    /// ```
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.chan.send(v, deadline(timeout)).map_err(|f| match f {
            SendFail::Full(v) => SendTimeoutError::Timeout(v),
            SendFail::Disconnected(v) => SendTimeoutError::Disconnected(v),
        })
    }

    /// Sends `v` only if that needs no waiting (room in the buffer, or a receiver
    /// waiting on a rendezvous channel).
    ///
    /// ```
    /// use greenhub::channel::TrySendError;
    /// let (tx, rx) = greenhub::channel::bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v).map_err(|f| match f {
            SendFail::Full(v) => TrySendError::Full(v),
            SendFail::Disconnected(v) => TrySendError::Disconnected(v),
        })
    }

    /// Items buffered now.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::unbounded();
    /// tx.send(()).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.lock().buf.len()
    }

    /// Whether no item is buffered.
    ///
    /// ```
    /// let (tx, _rx) = greenhub::channel::bounded::<()>(4);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound (`None` for an unbounded channel).
    ///
    /// ```
    /// assert_eq!(greenhub::channel::bounded::<u8>(3).0.capacity(), Some(3));
    /// assert_eq!(greenhub::channel::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        let cap = self.chan.lock().cap;
        (cap != usize::MAX).then_some(cap)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.add_sender();
        Sender { chan: self.chan.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.chan.drop_sender();
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.lock();
        f.debug_struct("Sender").field("len", &st.buf.len()).field("receivers", &st.receivers).finish()
    }
}

/// The receiving half; `Clone` for more consumers (each item goes to one of them).
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives the next item, waiting for one. Fails once every sender is gone and
    /// the buffer is empty.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.recv(), Ok(1)); // buffered items first
    /// assert_eq!(rx.recv(), Err(greenhub::channel::RecvError));
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.chan.recv(None).map_err(|_| RecvError)
    }

    /// Like [`Receiver::recv`], waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use greenhub::channel::RecvTimeoutError;
    /// let (_tx, rx) = greenhub::channel::unbounded::<u8>();
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.chan.recv(deadline(timeout)).map_err(|f| match f {
            RecvFail::Empty => RecvTimeoutError::Timeout,
            RecvFail::Disconnected => RecvTimeoutError::Disconnected,
        })
    }

    /// Receives an item only if one is there now.
    ///
    /// ```
    /// use greenhub::channel::TryRecvError;
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(7).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(7));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv().map_err(|f| match f {
            RecvFail::Empty => TryRecvError::Empty,
            RecvFail::Disconnected => TryRecvError::Disconnected,
        })
    }

    /// Receives until the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// std::thread::spawn(move || for i in 0..3 { tx.send(i).unwrap() });
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// The items there now, without waiting.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// Items buffered now.
    ///
    /// ```
    /// let (tx, rx) = greenhub::channel::bounded(2);
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.lock().buf.len()
    }

    /// Whether no item is buffered.
    ///
    /// ```
    /// let (_tx, rx) = greenhub::channel::bounded::<()>(1);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.add_receiver();
        Receiver { chan: self.chan.clone() }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.chan.drop_receiver();
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chan.lock();
        f.debug_struct("Receiver").field("len", &st.buf.len()).field("senders", &st.senders).finish()
    }
}

/// Blocking iterator over a [`Receiver`] (see [`Receiver::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator over a [`Receiver`] (see [`Receiver::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator (`for item in receiver`).
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    /// ```
    /// let (tx, rx) = greenhub::channel::unbounded();
    /// tx.send('a').unwrap();
    /// drop(tx);
    /// assert_eq!(rx.into_iter().collect::<String>(), "a");
    /// ```
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
