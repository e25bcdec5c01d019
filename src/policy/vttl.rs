//! VTTL: entries sorted by their own expiry instant (the lazily sorted order of `sorted.rs`),
//! the first to expire first: that is both the sweep order and the eviction order.

use std::collections::BTreeMap;

use super::places::Place;
use super::sorted::{order_key_f64, SortKey, Sorted};
use super::NewMeta;

pub type Vttl = Sorted<ByExpiry>;

/// Sorts by expiry instant. Instants are nearly all distinct, so the places are one B-tree.
pub struct ByExpiry;

impl SortKey for ByExpiry {
    type Places = BTreeMap<Place, u32>;
    const EXPIRES: bool = true;

    #[inline]
    fn new_key(meta: NewMeta) -> u64 {
        order_key_f64(meta.expire_at)
    }

    /// Reading an entry does not change when it expires.
    const HIT_CHANGES: bool = false;

    /// A new value comes with its own TTL.
    #[inline]
    fn on_replace(_cur: u64, meta: NewMeta) -> u64 {
        order_key_f64(meta.expire_at)
    }
}
