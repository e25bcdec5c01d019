//! One stored key/value pair, kept small: 24 bytes on 64-bit builds.
//!
//! - `hash` keeps 32 bits of the key's Python hash (folded). It is all the table needs to
//!   rehash without calling Python, and it filters almost every `__eq__` call on probes.
//! - `size` is the entry's `__sizeof__` charge. Sizes that do not fit in 32 bits are kept in the
//!   store's side map (see `Store::entry_size`), marked here by `BIG_SIZE`.

use pyo3::prelude::*;

pub const BIG_SIZE: u32 = u32::MAX;

pub struct Entry {
    pub key: Py<PyAny>,
    pub value: Py<PyAny>,
    pub hash: u32,
    pub size: u32,
}

impl Entry {
    pub fn clone_ref(&self, py: Python<'_>) -> Self {
        Self { key: self.key.clone_ref(py), value: self.value.clone_ref(py), hash: self.hash, size: self.size }
    }

    /// Drops both references through `Bound` (a direct decref, see `Trash`).
    #[inline]
    pub fn release(self, py: Python<'_>) {
        drop(self.key.into_bound(py));
        drop(self.value.into_bound(py));
    }
}

/// An entry plus the policy's own per-entry data.
pub struct Slot<M> {
    pub entry: Entry,
    pub meta: M,
}

/// Folds a Python hash (`isize`) to the 32 bits an entry keeps.
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn fold_hash(hash: isize) -> u32 {
    let h = hash as u64;
    (h ^ (h >> 32)) as u32
}

/// Spreads the 32 kept bits over 64 for the SwissTable: the top 7 bits pick the control tag and
/// the low bits the bucket, so sequential ints (whose Python hash is the int itself) must be mixed.
#[inline]
pub fn table_hash(folded: u32) -> u64 {
    let x = u64::from(folded).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_three_words() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        assert_eq!(std::mem::size_of::<Option<Slot<()>>>(), 24);
    }

    #[test]
    fn fold_keeps_low_and_high_bits() {
        assert_eq!(fold_hash(1), 1);
        assert_ne!(fold_hash(1 << 40), 0);
        assert_eq!(fold_hash(-1), 0);
    }

    #[test]
    fn table_hash_spreads_sequential_keys() {
        let tags: std::collections::HashSet<u64> = (0..1000u32).map(|i| table_hash(i) >> 57).collect();
        assert!(tags.len() > 100);
    }
}
