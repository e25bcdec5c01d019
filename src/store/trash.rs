//! `Trash`: what a removal leaves behind, dropped by the caller after the unlock.

use pyo3::prelude::*;

use crate::entry::Entry;

/// Objects removed under the lock, dropped by the caller after unlocking. Most operations
/// remove at most one entry, which is kept inline: no heap allocation on the hot path.
/// Dropping releases the references through `Bound`, which decrefs at once; a `Py` drop would
/// first look up (in a thread-local) whether this thread is attached, on every eviction.
pub struct Trash<'py> {
    py: Python<'py>,
    first: Option<Entry>,
    /// Entries beyond the first. Rare, so boxed: a `Trash` is then three words, cheap to set
    /// up and tear down on every insert (a bare `Vec` costs measurably more there).
    #[allow(clippy::box_collection)]
    spill: Option<Box<Vec<Entry>>>,
}

impl Drop for Trash<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(entry) = self.first.take() {
            entry.release(self.py);
        }
        if let Some(spill) = self.spill.take() {
            release_all(*spill, self.py);
        }
    }
}

#[inline(never)]
fn release_all(entries: Vec<Entry>, py: Python<'_>) {
    for entry in entries {
        entry.release(py);
    }
}

impl<'py> Trash<'py> {
    #[inline]
    pub fn new(py: Python<'py>) -> Self {
        Self { py, first: None, spill: None }
    }

    fn spill(&mut self) -> &mut Vec<Entry> {
        self.spill.get_or_insert_with(Box::default)
    }

    #[inline(always)]
    pub fn push(&mut self, entry: Entry) {
        if self.first.is_none() {
            self.first = Some(entry);
        } else {
            self.push_spilled(entry);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_spilled(&mut self, entry: Entry) {
        self.spill().push(entry);
    }

    /// Room for a bulk removal (`clear`).
    pub fn bulk(&mut self) -> &mut Vec<Entry> {
        self.spill()
    }

    /// How many entries were removed.
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.spill.as_ref().map_or(0, |spill| spill.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the removed entries out (the fuzz target checks them against its model).
    #[doc(hidden)]
    pub fn take_entries(&mut self) -> Vec<Entry> {
        let mut out: Vec<Entry> = self.first.take().into_iter().collect();
        if let Some(spill) = self.spill.take() {
            out.extend(*spill);
        }
        out
    }
}
