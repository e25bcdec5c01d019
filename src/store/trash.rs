//! `Trash`: what a removal leaves behind, with why it left, released by the caller after the
//! unlock, and reported then to the cache's eviction listener, if it has one.

use pyo3::prelude::*;
use pyo3::{intern, Bound};

use crate::entry::Entry;

/// Why an entry left the cache (the `cause` an eviction listener is given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Evicted to make room under `maxsize`.
    Size,
    /// Evicted to make room under `maxmemory`.
    Memory,
    /// Found expired and removed.
    Expired,
    /// The old value of a key set again.
    Replaced,
    /// Removed by the user: `del`, `pop`, `popitem`, `drain`, `clear`, `cache_invalidate`.
    Explicit,
}

impl Cause {
    /// The string a listener receives (interned once per interpreter).
    pub fn name(self, py: Python<'_>) -> &Bound<'_, pyo3::types::PyString> {
        match self {
            Cause::Size => intern!(py, "size"),
            Cause::Memory => intern!(py, "memory"),
            Cause::Expired => intern!(py, "expired"),
            Cause::Replaced => intern!(py, "replaced"),
            Cause::Explicit => intern!(py, "explicit"),
        }
    }
}

/// Objects removed under the lock, with their causes, released by the caller after unlocking.
/// Most operations remove at most one entry, which is kept inline: no heap allocation on the
/// hot path. Dropping releases the references through `Bound`, which decrefs at once; a `Py`
/// drop would first look up (in a thread-local) whether this thread is attached, on every
/// eviction.
///
/// When the store has an eviction listener it arms the trash with it (`arm`), and dropping
/// then calls it once per entry, in the order the entries left: after the unlock (the trash
/// outlives the lock guard everywhere), in the thread that made the change.
pub struct Trash<'py> {
    py: Python<'py>,
    first: Option<(Entry, Cause)>,
    /// Entries beyond the first. Rare, so boxed: a `Trash` is then small, cheap to set up and
    /// tear down on every insert (a bare `Vec` costs measurably more there).
    #[allow(clippy::box_collection)]
    spill: Option<Box<Vec<(Entry, Cause)>>>,
    listener: Option<Bound<'py, PyAny>>,
}

impl Drop for Trash<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.listener.is_some() {
            self.report();
        }
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
        Self { py, first: None, spill: None, listener: None }
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
        if removed.is_empty() {
            return;
        }
        let mut removed = removed.into_iter();
        if self.first.is_none() {
            self.first = removed.next().map(|entry| (entry, cause));
        }
        let spill = self.spill.get_or_insert_with(Box::default);
        spill.extend(removed.map(|entry| (entry, cause)));
    }

    /// Records that `key`/`value` left for `cause` while the caller keeps the objects (a
    /// popped entry it returns, a replaced value): only the listener needs them here.
    #[cold]
    pub fn notice(&mut self, key: &Py<PyAny>, value: &Py<PyAny>, cause: Cause) {
        if self.listener.is_some() {
            let entry = Entry { key: key.clone_ref(self.py), value: value.clone_ref(self.py), hash: 0, size: 0 };
            self.push(entry, cause);
        }
    }

    /// Makes dropping this trash report its entries to `listener` (the store's, if any).
    #[inline(always)]
    pub fn arm(&mut self, listener: Option<&Py<PyAny>>) {
        if let Some(listener) = listener {
            if self.listener.is_none() {
                self.listener = Some(listener.bind(self.py).clone());
            }
        }
    }

    /// Drops the entries without reporting them (a cache being collected).
    pub fn disarm(&mut self) {
        self.listener = None;
    }

    /// Calls the listener for every entry, in order. Its errors go to `sys.unraisablehook`:
    /// the operation that removed the entries has completed already.
    #[cold]
    #[inline(never)]
    fn report(&mut self) {
        let Some(listener) = self.listener.take() else { return };
        let py = self.py;
        let call = |entry: &Entry, cause: Cause| {
            let args = (entry.key.bind(py), entry.value.bind(py), cause.name(py));
            if let Err(err) = listener.call1(args) {
                err.write_unraisable(py, Some(&listener));
            }
        };
        if let Some((entry, cause)) = &self.first {
            call(entry, *cause);
        }
        if let Some(spill) = &self.spill {
            for (entry, cause) in spill.iter() {
                call(entry, *cause);
            }
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
