//! The state every `Sender` and `Receiver` of one channel share, and its operations.
//!
//! Invariants, true whenever the lock is released (`debug_assert`ed by
//! [`State::check`]):
//! - items wait in `buf` only while no receiver waits: an arriving item goes straight
//!   to the first waiting receiver (into `served`, under that receiver's key);
//! - senders wait only while `buf` is full: space freed by a receive takes the first
//!   waiting sender's item at once (and for a rendezvous channel, `cap == 0`, a receive
//!   takes it directly);
//! - an item handed to a receiver that then unwinds (killed, timed out) instead of
//!   returning it is passed on: to the next waiting receiver, else to the front of
//!   `buf` — never lost, never duplicated.
//!
//! Items are never dropped under the lock (a `Drop` may use the channel): whatever is
//! dropped is moved out first.

use crate::sched::task::Primitive;
use std::collections::VecDeque;
use std::time::Instant;

use crate::xthread::list::{Entry, WaitList};
use crate::xthread::loom::{lock, Arc, Mutex, MutexGuard};
use crate::xthread::wait::expired;
use crate::xthread::waiter::{Waiter, WOKEN};

/// A claimed waiter to wake once the lock is released; `served`: the key under which a
/// receiver was handed an item.
pub(crate) struct Woken {
    waiter: Arc<Waiter>,
    served: Option<u64>,
}

/// Waiters to wake once the lock is released.
pub(crate) type Wakes = Vec<Woken>;

pub(crate) struct State<T> {
    pub(crate) buf: VecDeque<T>,
    /// Capacity; `usize::MAX` for an unbounded channel, 0 for a rendezvous one.
    pub(crate) cap: usize,
    pub(crate) senders: usize,
    pub(crate) receivers: usize,
    pub(crate) recv_waiters: WaitList,
    pub(crate) send_waiters: WaitList<T>,
    /// Items handed to claimed receivers, by their key in `recv_waiters`.
    served: Vec<(u64, T)>,
}

impl<T> State<T> {
    #[inline]
    fn check(&self) {
        debug_assert!(self.buf.is_empty() || !self.recv_waiters.has_waiting(), "an item waits while a receiver does");
        debug_assert!(
            self.buf.len() >= self.cap || !self.send_waiters.has_waiting(),
            "a sender waits while there is room"
        );
    }

    /// Hands `v` to the first waiting receiver; gives it back if none waits.
    fn serve_receiver(&mut self, v: T, wakes: &mut Wakes) -> Result<(), T> {
        match self.recv_waiters.claim_first(true) {
            Some(e) => {
                self.served.push((e.key, v));
                wakes.push(Woken { waiter: e.waiter, served: Some(e.key) });
                Ok(())
            }
            None => Err(v),
        }
    }

    /// Takes the first waiting sender's item.
    fn take_sender(&mut self, wakes: &mut Wakes) -> Option<T> {
        let e = self.send_waiters.claim_first(true)?;
        wakes.push(Woken { waiter: e.waiter, served: None });
        Some(e.payload)
    }

    /// An item handed to a receiver that unwound: to the next receiver, else first in line.
    fn pass_on(&mut self, v: T, wakes: &mut Wakes) {
        if let Err(v) = self.serve_receiver(v, wakes) {
            self.buf.push_front(v);
        }
    }

    /// Takes the item handed to the receiver with `key`.
    fn take_served(&mut self, key: u64) -> Option<T> {
        let i = self.served.iter().position(|(k, _)| *k == key)?;
        Some(self.served.swap_remove(i).1)
    }
}

/// Why a non-blocking send did not happen.
pub(crate) enum SendFail<T> {
    Full(T),
    Disconnected(T),
}

/// Why a non-blocking receive did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvFail {
    Empty,
    Disconnected,
}

pub(crate) struct Chan<T> {
    state: Mutex<State<T>>,
}

impl<T> Chan<T> {
    pub(crate) fn new(cap: usize) -> Chan<T> {
        Chan {
            state: Mutex::new(State {
                buf: VecDeque::new(),
                cap,
                senders: 1,
                receivers: 1,
                recv_waiters: WaitList::default(),
                send_waiters: WaitList::default(),
                served: Vec::new(),
            }),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T>> {
        lock(&self.state)
    }

    /// Wakes the claimed waiters (the lock released). An item handed to a receiver whose
    /// hub's thread has ended (it was abandoned, parked here) is taken back and passed on.
    fn wake(&self, wakes: Wakes) {
        for w in wakes {
            if !w.waiter.wake() {
                if let Some(v) = w.served.and_then(|key| self.take_served(key)) {
                    self.pass_on(v);
                }
            }
        }
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), SendFail<T>> {
        let mut wakes = Wakes::new();
        let r = Self::try_send_locked(&mut self.lock(), v, &mut wakes);
        self.wake(wakes);
        r
    }

    fn try_send_locked(st: &mut State<T>, v: T, wakes: &mut Wakes) -> Result<(), SendFail<T>> {
        if st.receivers == 0 {
            return Err(SendFail::Disconnected(v));
        }
        let v = match st.serve_receiver(v, wakes) {
            Ok(()) => return Ok(()),
            Err(v) => v,
        };
        if st.buf.len() < st.cap {
            st.buf.push_back(v);
            st.check();
            Ok(())
        } else {
            Err(SendFail::Full(v))
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, RecvFail> {
        let mut wakes = Wakes::new();
        let r = Self::try_recv_locked(&mut self.lock(), &mut wakes);
        self.wake(wakes);
        r
    }

    pub(crate) fn try_recv_locked(st: &mut State<T>, wakes: &mut Wakes) -> Result<T, RecvFail> {
        if let Some(v) = st.buf.pop_front() {
            if st.buf.len() < st.cap {
                if let Some(w) = st.take_sender(wakes) {
                    st.buf.push_back(w);
                }
            }
            st.check();
            return Ok(v);
        }
        if let Some(v) = st.take_sender(wakes) {
            return Ok(v); // a rendezvous: straight from the sender
        }
        if st.senders == 0 {
            Err(RecvFail::Disconnected)
        } else {
            Err(RecvFail::Empty)
        }
    }

    /// Sends, waiting for room until `deadline`.
    pub(crate) fn send(&self, mut v: T, deadline: Option<Instant>) -> Result<(), SendFail<T>> {
        loop {
            let mut wakes = Wakes::new();
            let mut st = self.lock();
            v = match Self::try_send_locked(&mut st, v, &mut wakes) {
                Ok(()) => {
                    drop(st);
                    self.wake(wakes);
                    return Ok(());
                }
                Err(SendFail::Full(v)) if !expired(deadline) => v,
                Err(fail) => return Err(fail),
            };
            let waiter = Waiter::new();
            let key = st.send_waiters.push(waiter.clone(), 0, v);
            drop(st);
            let mut guard = SendWait { chan: self, waiter, key, done: false };
            guard.waiter.wait(Primitive::ChannelSend, deadline);
            match guard.settle() {
                None => return Ok(()), // a receiver took it
                Some(back) => v = back,
            }
        }
    }

    /// Receives, waiting until `deadline`.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<T, RecvFail> {
        loop {
            let mut wakes = Wakes::new();
            let mut st = self.lock();
            match Self::try_recv_locked(&mut st, &mut wakes) {
                Ok(v) => {
                    drop(st);
                    self.wake(wakes);
                    return Ok(v);
                }
                Err(RecvFail::Empty) if !expired(deadline) => {}
                Err(fail) => return Err(fail),
            }
            let waiter = Waiter::new();
            let key = st.recv_waiters.push(waiter.clone(), 0, ());
            drop(st);
            let mut guard = RecvWait { chan: self, waiter, key, done: false };
            guard.waiter.wait(Primitive::ChannelRecv, deadline);
            if let Some(v) = guard.settle() {
                return Ok(v);
            }
        }
    }

    /// The item a claimed receiver was served with.
    pub(crate) fn take_served(&self, key: u64) -> Option<T> {
        self.lock().take_served(key)
    }

    /// Withdraws a receiver entry whose waiter was not served through this channel.
    pub(crate) fn unregister_recv(&self, key: u64) {
        self.lock().recv_waiters.remove(key);
    }

    /// Passes on an item a receiver was served with but cannot deliver (it unwinds).
    pub(crate) fn pass_on(&self, v: T) {
        let mut wakes = Wakes::new();
        let mut st = self.lock();
        st.pass_on(v, &mut wakes);
        st.check();
        drop(st);
        self.wake(wakes);
    }

    pub(crate) fn add_sender(&self) {
        self.lock().senders += 1;
    }

    pub(crate) fn add_receiver(&self) {
        self.lock().receivers += 1;
    }

    /// The last sender is gone: waiting receivers re-check (and find it closed).
    pub(crate) fn drop_sender(&self) {
        let mut st = self.lock();
        st.senders -= 1;
        let woken: Vec<Entry<()>> = if st.senders == 0 { st.recv_waiters.claim_all() } else { Vec::new() };
        drop(st);
        for e in woken {
            e.waiter.wake();
        }
    }

    /// The last receiver is gone: waiting senders take their items back and fail; the
    /// buffered items are dropped (outside the lock).
    pub(crate) fn drop_receiver(&self) {
        let mut st = self.lock();
        st.receivers -= 1;
        if st.receivers > 0 {
            return;
        }
        let buffered = std::mem::take(&mut st.buf);
        let woken = st.send_waiters.claim_all_keep();
        drop(st);
        for w in woken {
            w.wake();
        }
        drop(buffered);
    }
}

/// A blocked sender's registration; dropped while unwinding, it withdraws (and drops
/// its item, outside the lock) unless a receiver took the item already.
struct SendWait<'a, T> {
    chan: &'a Chan<T>,
    waiter: Arc<Waiter>,
    key: u64,
    done: bool,
}

impl<T> SendWait<'_, T> {
    /// Ends the wait: `None` if a receiver took the item, else the item back.
    fn settle(&mut self) -> Option<T> {
        self.done = true;
        match self.waiter.withdraw() {
            Some(how) if how != WOKEN => None,
            // Withdrawn, or woken to re-check (its entry was kept for it).
            _ => Some(self.chan.lock().send_waiters.remove(self.key).expect("a sender's own entry").payload),
        }
    }
}

impl<T> Drop for SendWait<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            drop(self.settle());
        }
    }
}

/// A blocked receiver's registration; dropped while unwinding, it withdraws, and passes
/// on an item it was served meanwhile.
struct RecvWait<'a, T> {
    chan: &'a Chan<T>,
    waiter: Arc<Waiter>,
    key: u64,
    done: bool,
}

impl<T> RecvWait<'_, T> {
    /// Ends the wait: the item served to it, if any.
    fn settle(&mut self) -> Option<T> {
        self.done = true;
        match self.waiter.withdraw() {
            None => {
                self.chan.unregister_recv(self.key);
                None
            }
            Some(WOKEN) => None,
            Some(_) => Some(self.chan.take_served(self.key).expect("a served receiver's item")),
        }
    }
}

impl<T> Drop for RecvWait<'_, T> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(v) = self.settle() {
                self.chan.pass_on(v);
            }
        }
    }
}

impl<T> Chan<T> {
    /// For `select`: receives now if an item is there (or the channel is closed: `Err`),
    /// else registers `waiter` as a receiver served with `case`, all under one lock, so
    /// nothing sent in between is missed.
    pub(crate) fn recv_or_register(&self, waiter: &Arc<Waiter>, case: usize) -> Result<Result<T, RecvFail>, u64> {
        let mut wakes = Wakes::new();
        let mut st = self.lock();
        let r = match Self::try_recv_locked(&mut st, &mut wakes) {
            Err(RecvFail::Empty) => Err(st.recv_waiters.push(waiter.clone(), case, ())),
            r => Ok(r),
        };
        drop(st);
        self.wake(wakes);
        r
    }
}
