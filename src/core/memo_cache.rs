//! `MemoCache`: what the decorators need from a cache they drive natively.

use super::*;

/// What a memoizing decorator needs from a cache it owns natively: lookups and stores with a
/// hash computed once by the decorator.
pub trait MemoCache: Send + Sync {
    /// `c[key]`, with the policy's touch; `None` on a miss.
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>>;
    /// `lookup` of the key `(*items,)`, without building the tuple (`hash` is its hash).
    fn lookup_items(&self, py: Python<'_>, items: &[Bound<'_, PyAny>], hash: u32) -> PyResult<ItemsLookup<Py<PyAny>>>;
    /// `c[key] = value`.
    fn store(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32, value: &Bound<'_, PyAny>) -> PyResult<()>;
}

impl<P: Policy> MemoCache for CacheCore<P> {
    #[inline(always)]
    fn lookup(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32) -> PyResult<Option<Py<PyAny>>> {
        let probe = Probe { key, hash, owner: self.store.owner() };
        let mut store = self.lock(py)?;
        store.get(py, &probe, |entry| entry.value.clone_ref(py))
    }

    #[inline(always)]
    fn lookup_items(&self, py: Python<'_>, items: &[Bound<'_, PyAny>], hash: u32) -> PyResult<ItemsLookup<Py<PyAny>>> {
        let mut store = self.lock(py)?;
        store.get_items(py, hash, self.store.owner(), items, |entry| entry.value.clone_ref(py))
    }

    fn store(&self, py: Python<'_>, key: &Bound<'_, PyAny>, hash: u32, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let probe = Probe { key, hash, owner: self.store.owner() };
        let charge = Self::charge(key, value)?;
        let inserted = self.charged(
            py,
            charge,
            |store, charge, trash| store.insert(py, &probe, value, charge, NewMeta::default(), trash),
            |inserted| match inserted {
                Inserted::NeedsKeySize(stored) => Err(stored),
                other => Ok(other),
            },
        )?;
        drop(inserted);
        Ok(())
    }
}
