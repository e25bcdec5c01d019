//! The table and probing: finding a key's id (by the key, or by the items of the tuple it
//! would be), the reads that touch the policy, and the prefetches that overlap a probe's
//! dependent loads.

use pyo3::prelude::*;

use super::{Probe, Store};
use crate::clock;
use crate::entry::{table_hash, Entry, Slot};
use crate::policy::Policy;
use crate::sync::Owner;

/// Runs the stored key's `__eq__` against the probe's key (out of line: the hot probe loop
/// stays small, and the owner is marked only when Python really runs under the lock).
///
/// `PyObject_RichCompareBool`, what a dict does, rather than `Bound::eq` (a compare, then a
/// truth test of the result object): a decorator hit compares freshly built argument tuples
/// every time.
#[inline(never)]
fn keys_equal(py: Python<'_>, stored: &Py<PyAny>, probe: &Probe<'_, '_>) -> PyResult<bool> {
    rich_eq(py, probe.owner, stored.bind(py), probe.key)
}

/// `stored == probe` as a dict decides it, marking the lock's owner first (the comparison
/// runs Python code under the lock).
#[allow(unsafe_code)]
fn rich_eq(py: Python<'_>, owner: &Owner, stored: &Bound<'_, PyAny>, probe: &Bound<'_, PyAny>) -> PyResult<bool> {
    owner.mark(py);
    // SAFETY: both are live objects (the stored key is owned by the store, the probe's key is
    // borrowed by the caller) and the thread is attached (`py`).
    match unsafe { pyo3::ffi::PyObject_RichCompareBool(stored.as_ptr(), probe.as_ptr(), pyo3::ffi::Py_EQ) } {
        -1 => Err(PyErr::take(py)
            .unwrap_or_else(|| pyo3::exceptions::PySystemError::new_err("key comparison failed without an exception"))),
        result => Ok(result == 1),
    }
}

/// Whether the stored key equals the tuple `items` would make, compared item by item as
/// `tuple.__eq__` does; `None` when the stored key is not an exact tuple (its own `__eq__`
/// must then decide, against a real tuple).
#[inline(never)]
fn items_equal(
    py: Python<'_>,
    owner: &Owner,
    stored: &Py<PyAny>,
    items: &[Bound<'_, PyAny>],
) -> PyResult<Option<bool>> {
    let Ok(stored) = stored.bind(py).cast_exact::<pyo3::types::PyTuple>() else { return Ok(None) };
    let stored = stored.as_slice();
    if stored.len() != items.len() {
        return Ok(Some(false));
    }
    for (a, b) in stored.iter().zip(items) {
        if a.as_ptr() != b.as_ptr() && !rich_eq(py, owner, a, b)? {
            return Ok(Some(false));
        }
    }
    Ok(Some(true))
}

/// A live id and its slot, as a probe found them.
pub(super) type Found<'s, M> = (u32, &'s Slot<M>);

/// What looking up a key given as the items of a tuple found.
pub enum ItemsLookup<T> {
    Found(T),
    Absent,
    /// An entry with the same hash whose key is not an exact tuple: only a real tuple can be
    /// compared with it.
    Undecided,
}

impl<T> ItemsLookup<T> {
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> ItemsLookup<U> {
        match self {
            Self::Found(found) => ItemsLookup::Found(f(found)),
            Self::Absent => ItemsLookup::Absent,
            Self::Undecided => ItemsLookup::Undecided,
        }
    }
}

impl<T> From<Option<T>> for ItemsLookup<T> {
    #[inline]
    fn from(found: Option<T>) -> Self {
        found.map_or(Self::Absent, Self::Found)
    }
}

impl<P: Policy> Store<P> {
    /// Finds the id of `probe`'s key. Only a key's `__eq__` can run here; its errors propagate.
    #[inline(always)]
    pub fn find(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<u32>> {
        Ok(self.find_slot(py, probe)?.map(|(id, _)| id))
    }

    /// `find`, also returning the slot it compared, so that an expiry check or a `peek` reads
    /// it without indexing the storage a second time (a ring or slab lookup is a bounds and
    /// liveness check each).
    ///
    /// Walks the candidate buckets itself rather than using `HashTable::find`, whose
    /// comparison goes through a `dyn FnMut` call per candidate. `iter_hash_buckets` rather
    /// than `iter_hash`: `iter_hash` saved a few instructions on a hit but cost more on an LRU
    /// insert.
    #[inline(always)]
    fn find_slot(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<Found<'_, P::Meta>>> {
        let hash = table_hash(probe.hash);
        for bucket in self.table.iter_hash_buckets(hash) {
            self.prefetch_home_bucket(hash);
            let Some(&id) = self.table.get_bucket(bucket) else { continue };
            let slot = self.policy.slot(id);
            if slot.entry.hash != probe.hash {
                continue;
            }
            if slot.entry.key.as_ptr() == probe.key.as_ptr() || keys_equal(py, &slot.entry.key, probe)? {
                return Ok(Some((id, slot)));
            }
        }
        Ok(None)
    }

    /// `find` for the key `(*items,)` without building it; `hash` is that tuple's (folded).
    #[inline(always)]
    pub fn find_items(
        &self,
        py: Python<'_>,
        hash: u32,
        owner: &Owner,
        items: &[Bound<'_, PyAny>],
    ) -> PyResult<ItemsLookup<Found<'_, P::Meta>>> {
        let hash64 = table_hash(hash);
        for &id in self.table.iter_hash(hash64) {
            self.prefetch_home_bucket(hash64);
            let slot = self.policy.slot(id);
            if slot.entry.hash != hash {
                continue;
            }
            match items_equal(py, owner, &slot.entry.key, items)? {
                Some(true) => return Ok(ItemsLookup::Found((id, slot))),
                Some(false) => {}
                None => return Ok(ItemsLookup::Undecided),
            }
        }
        Ok(ItemsLookup::Absent)
    }

    /// `get` for the key `(*items,)` without building it (see `find_items`).
    #[inline(always)]
    pub fn get_items<T>(
        &mut self,
        py: Python<'_>,
        hash: u32,
        owner: &Owner,
        items: &[Bound<'_, PyAny>],
        read: impl FnOnce(&Entry) -> T,
    ) -> PyResult<ItemsLookup<T>> {
        Ok(match self.find_items(py, hash, owner, items)? {
            ItemsLookup::Found((_, slot)) if P::EXPIRES && clock::expired(P::meta_expire_at(&slot.meta)) => {
                ItemsLookup::Absent
            }
            ItemsLookup::Found((id, slot)) => {
                // The read from the slot found, then the touch: the reverse of `get`, because
                // this order is the faster one on a decorator hit over an LRU cache.
                let out = read(&slot.entry);
                self.policy.on_hit(id);
                ItemsLookup::Found(out)
            }
            ItemsLookup::Absent => ItemsLookup::Absent,
            ItemsLookup::Undecided => ItemsLookup::Undecided,
        })
    }

    /// Starts loading the bucket where a probe for `hash` begins, alongside the control bytes
    /// that say whether it matches: the two loads then overlap instead of one waiting for the
    /// other (the table's layout puts them in different cache lines).
    #[inline(always)]
    pub(super) fn prefetch_home_bucket(&self, hash: u64) {
        crate::prefetch::prefetch(self.bucket_end.wrapping_sub((self.home(hash) + 1) * std::mem::size_of::<u32>()));
    }

    /// The bucket where a probe for `hash` starts (hashbrown's first group begins there).
    #[inline(always)]
    pub(super) fn home(&self, hash: u64) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let hash = hash as usize;
        hash & self.table.num_buckets().wrapping_sub(1)
    }

    /// After the table may have moved or rehashed: notes where its bucket array ends and, for
    /// a policy that keeps bucket hints, where each id now sits.
    pub(super) fn table_moved(&mut self) {
        self.bucket_end = self.current_bucket_end();
        if P::BUCKET_HINTS {
            for bucket in 0..self.table.num_buckets() {
                if let Some(&id) = self.table.get_bucket(bucket) {
                    self.policy.note_bucket(id, bucket);
                }
            }
        }
    }

    /// Where the bucket array ends, found from any occupied bucket's address (0 when empty).
    pub(super) fn current_bucket_end(&self) -> usize {
        let first = self.table.iter().next().copied();
        first
            .and_then(|id| {
                let bucket = self.bucket_of(self.policy.slot(id).entry.hash, id)?;
                let at = self.table.get_bucket(bucket)?;
                Some(std::ptr::from_ref(at) as usize + (bucket + 1) * std::mem::size_of::<u32>())
            })
            .unwrap_or(0)
    }

    /// The table bucket that holds `id` (whose entry has folded hash `hash`).
    #[inline]
    pub(super) fn bucket_of(&self, hash: u32, id: u32) -> Option<usize> {
        if let Some(bucket) = self.policy.bucket_hint(id) {
            if self.table.get_bucket(bucket) == Some(&id) {
                return Some(bucket);
            }
        }
        let hash = table_hash(hash);
        self.table.iter_hash_buckets(hash).find(|&b| {
            self.prefetch_home_bucket(hash);
            self.table.get_bucket(b) == Some(&id)
        })
    }

    /// The id of a live entry for `probe`, if any. The clock is read only when an entry is
    /// found (a miss costs no clock read).
    #[inline(always)]
    pub fn find_live(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<u32>> {
        Ok(self.find_live_slot(py, probe)?.map(|(id, _)| id))
    }

    #[inline(always)]
    fn find_live_slot(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<Found<'_, P::Meta>>> {
        Ok(self.find_slot(py, probe)?.filter(|(_, slot)| !P::EXPIRES || !clock::expired(P::meta_expire_at(&slot.meta))))
    }

    /// `[]`/`get`/`in`: a read that touches the policy (LRU move, LFU +1).
    #[inline(always)]
    pub fn get<T>(
        &mut self,
        py: Python<'_>,
        probe: &Probe<'_, '_>,
        read: impl FnOnce(&Entry) -> T,
    ) -> PyResult<Option<T>> {
        let Some((id, _)) = self.find_live_slot(py, probe)? else { return Ok(None) };
        // The policy's touch first, then the read through a fresh lookup: reading the slot
        // found before the touch is slower on an LFU hit.
        self.policy.on_hit(id);
        Ok(Some(read(&self.policy.slot(id).entry)))
    }

    /// A read with no policy touch; also returns the expiry instant.
    pub fn peek(&self, py: Python<'_>, probe: &Probe<'_, '_>) -> PyResult<Option<(&Py<PyAny>, f64)>> {
        Ok(self.find_live_slot(py, probe)?.map(|(_, slot)| (&slot.entry.value, P::meta_expire_at(&slot.meta))))
    }
}
