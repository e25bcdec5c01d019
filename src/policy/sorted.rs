//! The order LFU and VTTL share: the lazily, stably sorted sequence of BEHAVIOUR.md §6.7, reproduced exactly but in
//! O(log n) per operation instead of re-sorting the whole sequence.
//!
//! The model: entries sit in a sequence S; appends go to the end; a change of an entry's sort
//! key (LFU frequency, VTTL expiry) only marks S dirty; before an order-dependent operation S is
//! stably sorted by key. After such a sort S is grouped by key, and within a key group the order
//! is the order S had before the sort. So for a group with key `f`, the new order is:
//!   1. entries that moved up from a smaller key, in their old S order;
//!   2. entries that already had key `f` (unchanged relative order);
//!   3. entries that moved down from a larger key, in their old S order;
//!   4. entries appended since the last sort, in append order.
//!
//! We keep the placed entries in `(key, seq)` order, where `seq` orders a group (`places`: a
//! B-tree of places for VTTL, per-frequency deques for LFU).
//! Group 1 takes seqs from a counter that only decreases (`front`), groups 3 and 4 from one that
//! only increases (`back`): that places them before/after everything already in the group
//! without touching the other entries. Changed keys wait in `dirty`, appends in `pending`, until
//! `settle` runs (every operation that observes the order calls it first).

use std::collections::TryReserveError;

use pyo3::Python;

use super::places::{Place, Places};
use super::slab::{slab_storage, Slab};
use super::{Fix, NewMeta, Policy, Storage};
use crate::entry::{Entry, Slot};

/// `seq` of an entry appended since the last sort (not in the map yet).
const UNPLACED: i64 = i64::MIN;

#[derive(Clone, Copy, Debug)]
pub struct SortMeta {
    /// The current sort key.
    cur: u64,
    /// The key under which the entry sits in the map (stale while `cur != key`).
    key: u64,
    seq: i64,
}

/// Maps an `f64` to a `u64` with the same order (total order, negatives first).
#[inline]
pub fn order_key_f64(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

#[inline]
pub fn f64_from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

#[derive(Clone)]
pub struct SortedSeq<M> {
    map: M,
    pending: Vec<u32>,
    dirty: Vec<u32>,
    front: i64,
    back: i64,
    /// A lower bound of the current keys of `pending` (`u64::MAX`: none), for `skip_settle`.
    pending_min: u64,
    /// How many of the first `pending` entries a skipped sort (`skip_settle`) should have
    /// placed (0: none). Only appends were waiting then, and placing them later gives the
    /// same order, unless a key changes first: `change` places them before.
    owed: usize,
}

impl<M: Places> Default for SortedSeq<M> {
    fn default() -> Self {
        Self {
            map: M::default(),
            pending: Vec::new(),
            dirty: Vec::new(),
            front: -1,
            back: 0,
            pending_min: u64::MAX,
            owed: 0,
        }
    }
}

/// From this many pending entries on (and at least a quarter of the placed ones), `settle`
/// sorts them and merges them into the map in one pass instead of inserting one by one: a
/// million random-position inserts into a B-tree miss the cache at every level.
const BULK_PLACE: usize = 1024;

type Slots = Slab<SortMeta>;

impl<M: Places> SortedSeq<M> {
    fn append(&mut self, id: u32, slots: &mut Slots, key: u64) {
        slots.get_mut(id).meta = SortMeta { cur: key, key, seq: UNPLACED };
        self.pending.push(id);
        self.pending_min = self.pending_min.min(key);
    }

    /// Gives `id` the key `new_key(current key)`.
    #[inline]
    fn change(&mut self, id: u32, slots: &mut Slots, new_key: impl FnOnce(u64) -> u64) {
        if self.owed > 0 {
            self.catch_up(slots);
        }
        let m = &mut slots.get_mut(id).meta;
        let key = new_key(m.cur);
        if m.seq == UNPLACED {
            self.pending_min = self.pending_min.min(key);
        } else if m.cur == m.key && key != m.key {
            self.dirty.push(id);
        }
        m.cur = key;
    }

    /// Before a key changes, places the entries a skipped sort owes, or the change would
    /// reach entries that sort should already have placed (and a mover is placed
    /// differently). Entries appended after it stay pending, as they would have.
    #[cold]
    #[inline(never)]
    fn catch_up(&mut self, slots: &mut Slots) {
        let later = self.pending.split_off(std::mem::take(&mut self.owed));
        self.place_pending(slots);
        self.pending = later;
    }

    /// For a sort the model calls for only to find entries whose key is below `limit` (a
    /// VTTL expiry sweep): skips it when no key changed since the last sort and no entry's
    /// key is below `limit`, which it decides without sorting. Placed entries are at or above
    /// the map's first key, pending ones at or above `pending_min`. The appends then stay
    /// pending: placed at the next sort, they land where this one would have put them,
    /// which `owed` guarantees by sorting before any key changes.
    fn skip_settle(&mut self, limit: u64) -> bool {
        let skip = self.dirty.is_empty()
            && self.pending_min >= limit
            && self.map.first().is_none_or(|((key, _), _)| key >= limit);
        if skip {
            self.owed = self.pending.len();
        }
        skip
    }

    fn place(&mut self, id: u32, slots: &mut Slots, seq: i64) {
        let place = Self::mark_placed(id, slots, seq);
        self.map.insert(place, id);
    }

    /// Records in `id`'s meta that it sits at `seq` under its current key; returns that place.
    #[inline]
    fn mark_placed(id: u32, slots: &mut Slots, seq: i64) -> Place {
        let m = &mut slots.get_mut(id).meta;
        m.key = m.cur;
        m.seq = seq;
        (m.cur, seq)
    }

    fn settle(&mut self, slots: &mut Slots) {
        self.owed = 0;
        if self.pending.is_empty() && self.dirty.is_empty() {
            // Removals may have left the bound below every remaining key.
            self.pending_min = u64::MAX;
            return;
        }
        let mut movers: Vec<(u64, i64, u32)> = self
            .dirty
            .drain(..)
            .filter_map(|id| {
                let m = slots.get(id).meta;
                (m.seq != UNPLACED && m.cur != m.key).then_some((m.key, m.seq, id))
            })
            .collect();
        movers.sort_unstable();
        movers.dedup();
        for &(key, seq, _) in &movers {
            self.map.remove((key, seq));
        }
        // Up-movers go before the group, the smallest old position first: hand out decreasing
        // seqs from the largest old position down.
        for &(key, _, id) in movers.iter().rev() {
            if slots.get(id).meta.cur > key {
                let seq = self.front;
                self.front -= 1;
                self.place(id, slots, seq);
            }
        }
        for &(key, _, id) in &movers {
            if slots.get(id).meta.cur < key {
                let seq = self.back;
                self.back += 1;
                self.place(id, slots, seq);
            }
        }
        self.place_pending(slots);
        self.pending_min = u64::MAX;
    }

    /// Places every pending entry, in append order, after everything placed so far.
    fn place_pending(&mut self, slots: &mut Slots) {
        let mut pending = std::mem::take(&mut self.pending);
        if pending.len() >= BULK_PLACE && pending.len() >= self.map.len() / 4 {
            self.place_sorted(&pending, slots);
        } else {
            for &id in &pending {
                let seq = self.back;
                self.back += 1;
                self.place(id, slots, seq);
            }
        }
        pending.clear();
        self.pending = pending;
    }

    /// `place` for every id of `pending` in turn, with the same outcome, done as a sort and
    /// a merge (`BULK_PLACE`).
    fn place_sorted(&mut self, pending: &[u32], slots: &mut Slots) {
        let mut placed: Vec<(Place, u32)> = Vec::with_capacity(pending.len());
        for &id in pending {
            let seq = self.back;
            self.back += 1;
            placed.push((Self::mark_placed(id, slots, seq), id));
        }
        // Places are distinct (seqs are), so an unstable sort gives the one order.
        placed.sort_unstable_by_key(|&(place, _)| place);
        self.map.append_sorted(placed);
    }

    fn remove(&mut self, id: u32, slots: &Slots) {
        let m = slots.get(id).meta;
        if m.seq == UNPLACED {
            self.pending.retain(|&x| x != id);
        } else {
            self.map.remove((m.key, m.seq));
            if m.cur != m.key {
                self.dirty.retain(|&x| x != id);
            }
        }
    }

    /// How many entries have a current key below `limit`, without sorting (which would be
    /// observable in tie order): the placed prefix below `limit` (entries whose key did not
    /// change since), plus the changed and appended entries, checked one by one.
    fn count_below(&self, limit: u64, slots: &Slots) -> usize {
        let mut placed = 0;
        self.map.for_each_below(limit, |id| {
            let m = slots.get(id).meta;
            placed += usize::from(m.cur == m.key);
        });
        let mut changed: Vec<u32> = self
            .dirty
            .iter()
            .copied()
            .filter(|&id| {
                let m = slots.get(id).meta;
                m.seq != UNPLACED && m.cur != m.key
            })
            .collect();
        changed.sort_unstable();
        changed.dedup();
        let moved = changed.iter().filter(|&&id| slots.get(id).meta.cur < limit).count();
        let appended = self.pending.iter().filter(|&&id| slots.get(id).meta.cur < limit).count();
        placed + moved + appended
    }

    fn clear(&mut self) {
        self.map.clear();
        self.pending.clear();
        self.dirty.clear();
        self.front = -1;
        self.back = 0;
        self.pending_min = u64::MAX;
        self.owed = 0;
    }
}

/// What LFU and VTTL sort their entries by (`lfu.rs`, `vttl.rs`); the rest of their order,
/// and their storage, is the shared `Sorted`.
pub trait SortKey: Send + 'static {
    /// Where the placed entries live.
    type Places: Places;
    /// Whether the key is an expiry instant (then entries expire, and `len()` sweeps them).
    const EXPIRES: bool;
    /// The key of a new entry.
    fn new_key(meta: NewMeta) -> u64;
    /// Whether a read hit changes the key (to `hit_key`).
    const HIT_CHANGES: bool;
    fn hit_key(cur: u64) -> u64 {
        cur
    }
    /// The key after the entry's value is replaced.
    fn on_replace(cur: u64, meta: NewMeta) -> u64;
}

/// The lazily sorted order over slab storage, by the key `K` gives.
pub struct Sorted<K: SortKey> {
    pub slab: Slab<SortMeta>,
    seq: SortedSeq<K::Places>,
}

impl<K: SortKey> Default for Sorted<K> {
    fn default() -> Self {
        Self { slab: Slab::default(), seq: SortedSeq::default() }
    }
}

impl<K: SortKey> Sorted<K> {
    #[inline]
    fn first(&self) -> Option<u32> {
        self.seq.map.first().map(|(_, id)| id)
    }
}

impl<K: SortKey> Storage for Sorted<K> {
    type Meta = SortMeta;

    slab_storage!();
}

impl<K: SortKey> Policy for Sorted<K> {
    /// The `(key, seq)` last yielded: iteration resumes after it, so re-sorts under a live
    /// iterator never invalidate it.
    type Cursor = Option<(u64, i64)>;
    const EXPIRES: bool = K::EXPIRES;
    const SWEEP_ON_LEN: bool = K::EXPIRES;
    const FREQUENCY: bool = !K::EXPIRES;

    fn push(&mut self, entry: Entry, meta: NewMeta, _now: f64) -> u32 {
        let key = K::new_key(meta);
        let id = self.slab.push(entry, SortMeta { cur: key, key, seq: UNPLACED });
        self.seq.append(id, &mut self.slab, key);
        id
    }

    const RECYCLES: bool = true;

    /// The victim leaves the sequence and its slot comes back as the newest append.
    fn recycle(&mut self, victim: u32, entry: Entry, meta: NewMeta, _now: f64) -> (u32, Entry) {
        self.seq.remove(victim, &self.slab);
        let old = std::mem::replace(&mut self.slab.get_mut(victim).entry, entry);
        self.seq.append(victim, &mut self.slab, K::new_key(meta));
        (victim, old)
    }

    fn take(&mut self, id: u32) -> (Slot<SortMeta>, Fix) {
        self.seq.remove(id, &self.slab);
        (self.slab.take(id), Fix::None)
    }

    #[inline]
    fn on_hit(&mut self, id: u32) {
        if K::HIT_CHANGES {
            self.seq.change(id, &mut self.slab, K::hit_key);
        }
    }

    fn on_replace(&mut self, id: u32, meta: NewMeta, _now: f64) -> Fix {
        self.seq.change(id, &mut self.slab, |cur| K::on_replace(cur, meta));
        Fix::None
    }

    fn victim(&mut self) -> Option<u32> {
        self.settle();
        self.first()
    }

    fn settle(&mut self) {
        self.seq.settle(&mut self.slab);
    }

    fn expire_at(&self, id: u32) -> f64 {
        Self::meta_expire_at(&self.slab.get(id).meta)
    }

    #[inline(always)]
    fn meta_expire_at(meta: &SortMeta) -> f64 {
        if K::EXPIRES {
            f64_from_order_key(meta.cur)
        } else {
            f64::INFINITY
        }
    }

    fn frequency(&self, id: u32) -> u64 {
        self.slab.get(id).meta.cur
    }

    fn next_expired(&mut self, now: f64) -> Option<u32> {
        if !K::EXPIRES || self.seq.skip_settle(order_key_f64(now)) {
            return None;
        }
        self.settle();
        self.first().filter(|&id| self.expire_at(id) < now)
    }

    fn count_expired(&self, now: f64) -> usize {
        if K::EXPIRES {
            self.seq.count_below(order_key_f64(now), &self.slab)
        } else {
            0
        }
    }

    fn clear(&mut self, out: &mut Vec<Entry>) {
        self.slab.drain_into(out);
        self.seq.clear();
    }
    fn shrink_to_fit(&mut self) -> Fix {
        self.slab.shrink_to_fit();
        self.seq.pending.shrink_to_fit();
        self.seq.dirty.shrink_to_fit();
        Fix::None
    }
    fn allocated_bytes(&self) -> usize {
        // The order's share is counted per slot the storage has room for, so
        // `clear(reuse=True)` keeps the figure.
        self.slab.capacity() * (std::mem::size_of::<Slot<SortMeta>>() + K::Places::ENTRY_BYTES)
    }
    fn duplicate(&self, py: Python<'_>) -> Self {
        Self { slab: self.slab.duplicate(py), seq: self.seq.clone() }
    }
    fn cursor(&self) -> Self::Cursor {
        None
    }
    fn advance(&self, cursor: &mut Self::Cursor) -> Option<u32> {
        self.seq.map.after(*cursor).map(|(place, id)| {
            *cursor = Some(place);
            id
        })
    }
    fn nth(&self, n: isize) -> Option<u32> {
        let i = super::dense::resolve_index(n, self.seq.map.len())?;
        self.seq.map.nth(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_is_monotonic() {
        let xs = [f64::NEG_INFINITY, -1e300, -1.0, -0.0, 0.0, 1e-300, 1.0, 2.5, 1e300, f64::INFINITY];
        for w in xs.windows(2) {
            assert!(order_key_f64(w[0]) <= order_key_f64(w[1]), "{w:?}");
        }
        for x in xs {
            assert_eq!(f64_from_order_key(order_key_f64(x)).to_bits(), x.to_bits());
        }
    }
}
