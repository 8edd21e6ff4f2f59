//! `FdIndex`: the reactor's map from fd number to fd-table slot.
//!
//! The kernel hands out the lowest free fd number, so the numbers in use are dense and
//! small (bounded by `RLIMIT_NOFILE`): a vector indexed by the number is the whole map,
//! with no hashing on a connection's registration and removal (a `HashMap` with
//! SipHash cost ~110 instructions per call, three calls per connection). It grows to
//! the highest fd registered: 4 bytes per number, 4 MiB at a million fds.

use std::os::fd::RawFd;

/// A slot number that no fd maps to.
const NONE: u32 = u32::MAX;

/// Invariant: `len` is the number of entries of `slots` other than [`NONE`].
#[derive(Default)]
pub(crate) struct FdIndex {
    slots: Vec<u32>,
    len: usize,
}

impl FdIndex {
    /// The slot `fd` maps to.
    #[inline]
    pub(crate) fn get(&self, fd: RawFd) -> Option<u32> {
        let s = *self.slots.get(usize::try_from(fd).ok()?)?;
        (s != NONE).then_some(s)
    }

    /// Maps `fd` (a valid, hence non-negative, fd number) to `slot`, replacing any
    /// previous mapping.
    #[inline]
    pub(crate) fn insert(&mut self, fd: RawFd, slot: u32) {
        debug_assert_ne!(slot, NONE, "slot number reserved for 'none'");
        let Ok(i) = usize::try_from(fd) else {
            debug_assert!(false, "negative fd {fd} registered");
            return;
        };
        if i >= self.slots.len() {
            self.grow(i);
        }
        if self.slots[i] == NONE {
            self.len += 1;
        }
        self.slots[i] = slot;
    }

    #[cold]
    fn grow(&mut self, i: usize) {
        let n = (i + 1).max(self.slots.len() * 2).max(64);
        self.slots.resize(n, NONE);
    }

    /// Forgets `fd`'s mapping, if any.
    #[inline]
    pub(crate) fn remove(&mut self, fd: RawFd) {
        if let Some(s) = usize::try_from(fd).ok().and_then(|i| self.slots.get_mut(i)) {
            if *s != NONE {
                *s = NONE;
                self.len -= 1;
            }
        }
    }

    /// Number of fds mapped.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::FdIndex;

    #[test]
    fn maps_replaces_and_forgets_exactly() {
        let mut ix = FdIndex::default();
        assert_eq!(ix.get(3), None);
        assert_eq!(ix.get(-1), None);
        ix.insert(3, 7);
        ix.insert(1000, 0);
        assert_eq!((ix.get(3), ix.get(1000), ix.get(4), ix.len()), (Some(7), Some(0), None, 2));
        ix.insert(3, 9); // a stale entry taken over: still one mapping
        assert_eq!((ix.get(3), ix.len()), (Some(9), 2));
        ix.remove(3);
        ix.remove(3);
        ix.remove(5000); // never mapped, beyond the end
        ix.remove(-2);
        assert_eq!((ix.get(3), ix.get(1000), ix.len()), (None, Some(0), 1));
    }
}
