//! Eviction policies. Each one owns the entries (in the storage shape that suits it) and the
//! order in which they are evicted; `Store<P>` owns the hash table and size accounting, and
//! implements every mapping operation once on top of this trait.
//!
//! Ids are `u32` slot numbers. A policy may move an entry to another id (dense storage fills a
//! hole with its last slot; ring storage compacts tombstones); it reports that with `Fix` so the
//! store can repoint the hash table without calling Python.

// Storage shapes and order structures, shared by the policies.
mod dense;
mod places;
mod ring;
mod slab;
mod sorted;

// The policies: one file each (`Cache` and `RRCache` share `unordered.rs`).
mod fifo;
mod lfu;
mod lru;
mod ttl;
mod unordered;
mod vttl;

pub use fifo::Fifo;
pub use lfu::Lfu;
pub use lru::Lru;
pub use ttl::Ttl;
pub use unordered::Unordered;
pub use vttl::Vttl;

use std::collections::TryReserveError;

use pyo3::Python;

use crate::entry::{Entry, Slot};

/// How the hash table must be repaired after a storage change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    None,
    /// The entry that had id `from` now has id `to`.
    Moved {
        from: u32,
        to: u32,
    },
    /// Ids were renumbered wholesale; rebuild the table from `ids()`.
    Reindex,
}

/// What an insert of a new entry carries into the policy (VTTL's per-key expiry, LFU's
/// frequency when restoring a pickle). `expire_at` is on the store clock; `f64::INFINITY` = never.
#[derive(Debug, Clone, Copy)]
pub struct NewMeta {
    pub expire_at: f64,
    pub frequency: u64,
    /// The clock reading `expire_at` was computed from, if any: the write then takes it as
    /// its own instant instead of reading the clock again (a precise reading is a sizeable
    /// part of a VTTL insert).
    pub now: Option<f64>,
}

impl Default for NewMeta {
    fn default() -> Self {
        Self { expire_at: f64::INFINITY, frequency: 0, now: None }
    }
}

/// Where a policy keeps its entries: slots by id. The store reads and writes entries through
/// this half alone; the storage shapes (`dense.rs`, `ring.rs`, `slab.rs`) provide it through
/// their `*_storage!` macros.
pub trait Storage: Default + Send + Sized + 'static {
    /// What each slot carries beside its entry (an expiry, sort state).
    type Meta: Send;

    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn slot(&self, id: u32) -> &Slot<Self::Meta>;
    fn slot_mut(&mut self, id: u32) -> &mut Slot<Self::Meta>;
    /// Every live id, in no particular order (table rebuilds).
    fn ids(&self) -> Vec<u32>;
    /// Calls `f` on every stored entry, in no particular order, without allocating (GC).
    fn visit(&self, f: &mut dyn FnMut(&Entry));
    fn try_reserve(&mut self, additional: usize) -> Result<(), TryReserveError>;
}

/// An eviction policy: the order of the entries in its `Storage` (which one leaves next, how a
/// read or a write moves an entry, iteration), and the capabilities the store asks about.
pub trait Policy: Storage {
    /// Iteration position. Each policy picks what survives reorders best.
    type Cursor: Copy + Send + Sync;

    /// Whether a full cache evicts (everything but `Cache`).
    const EVICTS: bool = true;
    /// Whether entries expire (TTL and VTTL).
    const EXPIRES: bool = false;
    /// `len()` and friends sweep expired entries instead of counting them (an order whose
    /// expired entries are not a prefix of it).
    const SWEEP_ON_LEN: bool = false;
    /// Entries carry a frequency worth pickling.
    const FREQUENCY: bool = false;
    /// The order is the insertion order (so a global TTL's expiries ascend along it).
    const INSERTION_ORDERED: bool = false;
    /// Whether `recycle` is implemented (cheaper than `take` then `push`).
    const RECYCLES: bool = false;
    /// Whether `bucket_hint` keeps anything (then the store re-notes every id when the table
    /// rehashes).
    const BUCKET_HINTS: bool = false;

    /// A fresh policy; `ttl` is `TTLCache`'s (required there, refused elsewhere).
    fn with_ttl(ttl: Option<f64>) -> Option<Self> {
        ttl.is_none().then(Self::default)
    }
    /// `TTLCache`'s TTL.
    fn global_ttl(&self) -> Option<f64> {
        None
    }

    /// Adds a new entry at the policy's "newest" end.
    fn push(&mut self, entry: Entry, meta: NewMeta, now: f64) -> u32;
    /// Evicts `victim` (what `victim()` just returned) and adds `entry` as `push` would, in one
    /// step that moves no other entry; returns the new entry's id and the evicted entry. Only
    /// called when `RECYCLES`.
    fn recycle(&mut self, _victim: u32, _entry: Entry, _meta: NewMeta, _now: f64) -> (u32, Entry) {
        unreachable!("recycle is only called on policies that set RECYCLES")
    }
    /// Removes an entry.
    fn take(&mut self, id: u32) -> (Slot<Self::Meta>, Fix);
    /// A read hit (`[]`, `get`, `in`).
    fn on_hit(&mut self, id: u32);
    /// The value of an existing key was replaced through `insert`/`[]=`.
    fn on_replace(&mut self, id: u32, meta: NewMeta, now: f64) -> Fix;
    /// `setdefault` found the key.
    fn on_setdefault_hit(&mut self, _id: u32) {}
    /// The entry `popitem` would remove now (after expired entries were swept).
    fn victim(&mut self) -> Option<u32>;
    /// Where the table put `id` (`Store::index_new`), for policies that keep it (`bucket_hint`).
    fn note_bucket(&mut self, _id: u32, _bucket: usize) {}
    /// The bucket last noted for `id`, possibly stale (the table may have moved it since).
    fn bucket_hint(&self, _id: u32) -> Option<usize> {
        None
    }
    /// The entry `victim` will return, when that is known without settling anything: the
    /// store prefetches its lines ahead of the next insert into a full cache.
    fn next_victim(&self) -> Option<u32> {
        None
    }
    /// Puts lazily-ordered state in order (LFU/VTTL); a no-op elsewhere.
    fn settle(&mut self) {}

    fn expire_at(&self, _id: u32) -> f64 {
        f64::INFINITY
    }
    /// `expire_at` read from a slot already at hand.
    #[inline(always)]
    fn meta_expire_at(_meta: &Self::Meta) -> f64 {
        f64::INFINITY
    }
    fn frequency(&self, _id: u32) -> u64 {
        0
    }
    /// The next entry to sweep: expired at `now` and first in expiry order. Only called when
    /// `EXPIRES`; the store removes it and asks again.
    fn next_expired(&mut self, _now: f64) -> Option<u32> {
        None
    }
    /// Number of stored entries that are expired at `now` (without removing them or
    /// reordering anything).
    fn count_expired(&self, _now: f64) -> usize {
        0
    }

    /// Removes every entry, moving them to `out`.
    fn clear(&mut self, out: &mut Vec<Entry>);
    /// Releases spare memory; ring storage drops its tombstones, which renumbers ids.
    fn shrink_to_fit(&mut self) -> Fix;
    /// Bytes the policy's storage and order have allocated (for `__sizeof__`).
    fn allocated_bytes(&self) -> usize;
    fn duplicate(&self, py: Python<'_>) -> Self;

    /// The start of an iteration (after `settle`).
    fn cursor(&self) -> Self::Cursor;
    /// Yields the next id in policy order and advances.
    fn advance(&self, cursor: &mut Self::Cursor) -> Option<u32>;
    /// The id at position `n` of the policy order; a negative `n` counts from the end.
    fn nth(&self, n: isize) -> Option<u32>;
}
