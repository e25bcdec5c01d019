//! Size accounting: what each entry is charged (`Charge`, measured before locking) and how
//! the charge is kept in the entry's 32-bit field, or beside it when it does not fit.

use super::Store;
use crate::entry::{Entry, BIG_SIZE};
use crate::policy::Policy;

/// The `__sizeof__` figures an insert is charged with, measured before locking.
#[derive(Clone, Copy, Debug, Default)]
pub struct Charge {
    pub key: usize,
    pub value: usize,
    /// The size of the key object already stored (by address), when it is not the probe's.
    pub stored_key: Option<(usize, usize)>,
    /// A weigher's figure for the whole entry (in `key`): the same whichever key object is kept.
    pub weighed: bool,
}

impl Charge {
    /// An entry of `size` bytes in all (tests).
    pub fn total(size: usize) -> Self {
        Self { key: size, value: 0, stored_key: None, weighed: false }
    }

    /// A weigher's figure for an entry.
    pub fn weighed(size: usize) -> Self {
        Self { key: size, value: 0, stored_key: None, weighed: true }
    }

    /// The charge of the entry once written, if known: an update keeps the stored key, so it
    /// is charged with that key's size, which the caller may have to measure first.
    pub(super) fn for_key(&self, probe_key: usize, stored_key: usize) -> Option<usize> {
        if probe_key == stored_key || self.weighed {
            return Some(self.key.saturating_add(self.value));
        }
        match self.stored_key {
            Some((addr, size)) if addr == stored_key => Some(size.saturating_add(self.value)),
            _ => None,
        }
    }
}

impl<P: Policy> Store<P> {
    pub fn entry_size(&self, entry: &Entry) -> usize {
        if entry.size == BIG_SIZE {
            self.big_sizes.get(&(entry.key.as_ptr() as usize)).copied().unwrap_or(BIG_SIZE as usize)
        } else {
            entry.size as usize
        }
    }

    pub(super) fn encode_size(&mut self, key_addr: usize, size: usize) -> u32 {
        match u32::try_from(size) {
            Ok(s) if s != BIG_SIZE => s,
            _ => {
                self.big_sizes.insert(key_addr, size);
                BIG_SIZE
            }
        }
    }

    pub(super) fn forget_size(&mut self, entry: &Entry) -> usize {
        if entry.size == BIG_SIZE {
            self.big_sizes.remove(&(entry.key.as_ptr() as usize)).unwrap_or(BIG_SIZE as usize)
        } else {
            entry.size as usize
        }
    }
}
