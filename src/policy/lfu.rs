//! LFU: entries sorted by how often they were read (the lazily sorted order of `sorted.rs`),
//! the least frequently used first; a new entry starts at frequency 0 (or the one a pickle
//! restores).

use super::places::Groups;
use super::sorted::{SortKey, Sorted};
use super::NewMeta;

pub type Lfu = Sorted<ByFrequency>;

/// Sorts by frequency. Many entries share one, so the places are per-frequency groups.
pub struct ByFrequency;

impl SortKey for ByFrequency {
    type Places = Groups;
    const EXPIRES: bool = false;

    #[inline]
    fn new_key(meta: NewMeta) -> u64 {
        meta.frequency
    }

    const HIT_CHANGES: bool = true;

    #[inline]
    fn hit_key(cur: u64) -> u64 {
        cur.saturating_add(1)
    }

    /// Replacing a value is a use of the key too.
    #[inline]
    fn on_replace(cur: u64, _meta: NewMeta) -> u64 {
        cur.saturating_add(1)
    }
}
