//! `Trash`: what a removal leaves behind, with why it left, dropped by the caller after the
//! unlock.

use pyo3::prelude::*;

use crate::entry::Entry;

/// Why an entry left the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Evicted to make room under `maxsize`.
    Size,
    /// Evicted to make room under `maxmemory`.
    Memory,
    /// Found expired and removed.
    Expired,
    /// Removed by the user: `del`, `pop`, `popitem`, `drain`, `clear`.
    Explicit,
}

/// Objects removed under the lock, with their causes, dropped by the caller after unlocking.
/// Most operations remove at most one entry, which is kept inline: no heap allocation on the
/// hot path. Dropping releases the references through `Bound`, which decrefs at once; a `Py`
/// drop would first look up (in a thread-local) whether this thread is attached, on every
/// eviction.
pub struct Trash<'py> {
    py: Python<'py>,
    first: Option<(Entry, Cause)>,
    /// Entries beyond the first. Rare, so boxed: a `Trash` is then small, cheap to set up and
    /// tear down on every insert (a bare `Vec` costs measurably more there).
    #[allow(clippy::box_collection)]
    spill: Option<Box<Vec<(Entry, Cause)>>>,
}

impl Drop for Trash<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some((entry, _)) = self.first.take() {
            entry.release(self.py);
        }
        if let Some(spill) = self.spill.take() {
            release_all(*spill, self.py);
        }
    }
}

#[inline(never)]
fn release_all(entries: Vec<(Entry, Cause)>, py: Python<'_>) {
    for (entry, _) in entries {
        entry.release(py);
    }
}

impl<'py> Trash<'py> {
    #[inline]
    pub fn new(py: Python<'py>) -> Self {
        Self { py, first: None, spill: None }
    }

    #[inline(always)]
    pub fn push(&mut self, entry: Entry, cause: Cause) {
        if self.first.is_none() {
            self.first = Some((entry, cause));
        } else {
            self.push_spilled(entry, cause);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_spilled(&mut self, entry: Entry, cause: Cause) {
        self.spill.get_or_insert_with(Box::default).push((entry, cause));
    }

    /// A bulk removal (`clear`): every entry `remove` puts in the vector it is given left
    /// for `cause`.
    pub fn push_all(&mut self, cause: Cause, remove: impl FnOnce(&mut Vec<Entry>)) {
        let mut removed = Vec::new();
        remove(&mut removed);
        if !removed.is_empty() {
            let spill = self.spill.get_or_insert_with(Box::default);
            spill.extend(removed.into_iter().map(|entry| (entry, cause)));
        }
    }

    /// How many entries were removed.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.spill.as_ref().map_or(0, |spill| spill.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the removed entries out with their causes, in the order they left (the fuzz
    /// target checks them against its model).
    #[doc(hidden)]
    pub fn take_entries(&mut self) -> Vec<(Entry, Cause)> {
        let mut out: Vec<(Entry, Cause)> = self.first.take().into_iter().collect();
        if let Some(spill) = self.spill.take() {
            out.extend(*spill);
        }
        out
    }
}
