//! Where `SortedSeq` keeps its placed entries, in `(key, seq)` order.
//!
//! Two shapes, because the keys differ:
//! - VTTL keys are expiry instants, nearly all distinct: a `BTreeMap` keyed by `(key, seq)`.
//! - LFU keys are frequencies, shared by many entries (every new key starts at 0): a small
//!   `BTreeMap` from frequency to a group, a deque ordered by `seq`. `SortedSeq` only ever
//!   places an entry before or after everything in its group (its seqs come from a counter
//!   that only decreases or one that only increases), so a placement is a push at one end and
//!   the eviction victim is popped from the front, instead of a search down a B-tree of all
//!   entries. An entry removed from the middle of a group is marked dead and skipped; dead
//!   entries never sit at either end, and a group that is mostly dead is compacted.

use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;

/// An entry's place: its key and its seq within the key's group.
pub type Place = (u64, i64);

pub trait Places: Default + Clone + Send + 'static {
    /// Bytes this structure takes per entry, roughly (for `__sizeof__`).
    const ENTRY_BYTES: usize;

    fn len(&self) -> usize;
    /// Places `id` at `place`, which no entry holds.
    fn insert(&mut self, place: Place, id: u32);
    /// Places ids at their places, given in increasing order, all after every place held so
    /// far in their groups.
    fn append_sorted(&mut self, sorted: Vec<(Place, u32)>);
    fn remove(&mut self, place: Place);
    fn first(&self) -> Option<(Place, u32)>;
    /// The first entry strictly after `place` (from the start when `None`).
    fn after(&self, place: Option<Place>) -> Option<(Place, u32)>;
    /// The id at position `i` (`i < len`).
    fn nth(&self, i: usize) -> Option<u32>;
    /// Calls `f` on every id whose key is below `limit`, in order.
    fn for_each_below(&self, limit: u64, f: impl FnMut(u32));
    fn clear(&mut self);
}

impl Places for BTreeMap<Place, u32> {
    // A B-tree node holds up to 11 (place, id) pairs plus ~16 bytes of bookkeeping.
    const ENTRY_BYTES: usize = std::mem::size_of::<(Place, u32)>() + 4;

    fn len(&self) -> usize {
        BTreeMap::len(self)
    }
    fn insert(&mut self, place: Place, id: u32) {
        BTreeMap::insert(self, place, id);
    }
    fn append_sorted(&mut self, sorted: Vec<(Place, u32)>) {
        // One bulk build and a merge: a million random-position inserts into a B-tree miss the
        // cache at every level.
        let mut more: BTreeMap<Place, u32> = sorted.into_iter().collect();
        self.append(&mut more);
    }
    fn remove(&mut self, place: Place) {
        BTreeMap::remove(self, &place);
    }
    fn first(&self) -> Option<(Place, u32)> {
        self.first_key_value().map(|(&place, &id)| (place, id))
    }
    fn after(&self, place: Option<Place>) -> Option<(Place, u32)> {
        let next = match place {
            None => self.iter().next(),
            Some(place) => self.range((Bound::Excluded(place), Bound::Unbounded)).next(),
        };
        next.map(|(&place, &id)| (place, id))
    }
    fn nth(&self, i: usize) -> Option<u32> {
        let len = BTreeMap::len(self);
        if i < len / 2 {
            self.values().nth(i).copied()
        } else {
            self.values().rev().nth(len.checked_sub(i + 1)?).copied()
        }
    }
    fn for_each_below(&self, limit: u64, f: impl FnMut(u32)) {
        self.range(..(limit, i64::MIN)).map(|(_, &id)| id).for_each(f);
    }
    fn clear(&mut self) {
        BTreeMap::clear(self);
    }
}

/// The id of a dead (removed) entry in a group.
const DEAD: u32 = u32::MAX;

/// Compaction of a group waits for this many dead entries, so small groups never pay for it.
const MIN_DEAD: usize = 32;

/// The entries of one key, in seq order; both ends are live.
#[derive(Clone, Default)]
struct Group {
    q: VecDeque<(i64, u32)>,
    live: usize,
}

impl Group {
    fn position(&self, seq: i64) -> Result<usize, usize> {
        // The victim and the newest entries are the usual ones: try the ends first.
        match (self.q.front(), self.q.back()) {
            (Some(&(first, _)), _) if first == seq => Ok(0),
            (_, Some(&(last, _))) if last == seq => Ok(self.q.len() - 1),
            _ => self.q.binary_search_by_key(&seq, |&(s, _)| s),
        }
    }

    fn live(&self) -> impl DoubleEndedIterator<Item = (i64, u32)> + '_ {
        self.q.iter().copied().filter(|&(_, id)| id != DEAD)
    }

    /// Restores "both ends live" after a removal, and compacts a mostly dead group.
    fn tidy(&mut self) {
        while self.q.front().is_some_and(|&(_, id)| id == DEAD) {
            self.q.pop_front();
        }
        while self.q.back().is_some_and(|&(_, id)| id == DEAD) {
            self.q.pop_back();
        }
        let dead = self.q.len() - self.live;
        if dead > MIN_DEAD && dead > self.live {
            self.q.retain(|&(_, id)| id != DEAD);
        }
        // A group that once held most entries (every new key starts in group 0) gives the
        // room back as its entries move on.
        if self.q.capacity() > 4 * MIN_DEAD && self.q.len() < self.q.capacity() / 4 {
            self.q.shrink_to(2 * self.q.len());
        }
    }
}

/// Frequency groups (LFU); see the module docs. Every group in `map` has a live entry.
#[derive(Clone, Default)]
pub struct Groups {
    map: BTreeMap<u64, Group>,
    len: usize,
}

impl Places for Groups {
    // An `(i64, u32)` pair, padded, in a deque with room to spare (half again, on average).
    const ENTRY_BYTES: usize = std::mem::size_of::<(i64, u32)>() * 3 / 2;

    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, (key, seq): Place, id: u32) {
        let group = self.map.entry(key).or_default();
        match (group.q.front(), group.q.back()) {
            (_, None) => group.q.push_back((seq, id)),
            (_, Some(&(last, _))) if seq > last => group.q.push_back((seq, id)),
            (Some(&(first, _)), _) if seq < first => group.q.push_front((seq, id)),
            // Not reached from `SortedSeq` (its seqs are fresh and at a group's ends); kept
            // correct anyway.
            _ => match group.position(seq) {
                Ok(i) => {
                    debug_assert_eq!(group.q[i].1, DEAD, "a place is held at most once");
                    group.live -= usize::from(group.q[i].1 != DEAD);
                    self.len -= usize::from(group.q[i].1 != DEAD);
                    group.q[i].1 = id;
                }
                Err(i) => group.q.insert(i, (seq, id)),
            },
        }
        group.live += 1;
        self.len += 1;
    }

    fn append_sorted(&mut self, sorted: Vec<(Place, u32)>) {
        for (place, id) in sorted {
            self.insert(place, id);
        }
    }

    fn remove(&mut self, (key, seq): Place) {
        let Some(group) = self.map.get_mut(&key) else { return };
        let Ok(i) = group.position(seq) else { return };
        if group.q[i].1 == DEAD {
            return;
        }
        group.q[i].1 = DEAD;
        group.live -= 1;
        self.len -= 1;
        if group.live == 0 {
            self.map.remove(&key);
        } else {
            group.tidy();
        }
    }

    fn first(&self) -> Option<(Place, u32)> {
        let (&key, group) = self.map.first_key_value()?;
        group.q.front().map(|&(seq, id)| ((key, seq), id))
    }

    fn after(&self, place: Option<Place>) -> Option<(Place, u32)> {
        let Some((key, seq)) = place else { return self.first() };
        if let Some(group) = self.map.get(&key) {
            let start = group.q.partition_point(|&(s, _)| s <= seq);
            if let Some(&(seq, id)) = group.q.range(start..).find(|&&(_, id)| id != DEAD) {
                return Some(((key, seq), id));
            }
        }
        let (&key, group) = self.map.range((Bound::Excluded(key), Bound::Unbounded)).next()?;
        group.q.front().map(|&(seq, id)| ((key, seq), id))
    }

    fn nth(&self, mut i: usize) -> Option<u32> {
        if i < self.len / 2 {
            for group in self.map.values() {
                if i < group.live {
                    return group.live().nth(i).map(|(_, id)| id);
                }
                i -= group.live;
            }
        } else {
            let mut back = self.len.checked_sub(i + 1)?;
            for group in self.map.values().rev() {
                if back < group.live {
                    return group.live().rev().nth(back).map(|(_, id)| id);
                }
                back -= group.live;
            }
        }
        None
    }

    fn for_each_below(&self, limit: u64, mut f: impl FnMut(u32)) {
        for group in self.map.range(..limit).map(|(_, group)| group) {
            group.live().for_each(|(_, id)| f(id));
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives both shapes with the same operations and checks they agree on everything.
    #[test]
    fn groups_match_the_btree() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut tree: BTreeMap<Place, u32> = BTreeMap::new();
        let mut groups = Groups::default();
        let (mut front, mut back) = (-1i64, 0i64);
        let mut held: Vec<Place> = Vec::new();
        let mut gone: Option<Place> = None;
        for step in 0..20_000u32 {
            match rng.u8(..10) {
                0..=4 => {
                    let key = rng.u64(..6);
                    let seq = if rng.bool() {
                        back += 1;
                        back
                    } else {
                        front -= 1;
                        front
                    };
                    Places::insert(&mut tree, (key, seq), step);
                    groups.insert((key, seq), step);
                    held.push((key, seq));
                }
                5..=8 if !held.is_empty() => {
                    // Mostly from the front (evictions), else anywhere.
                    let i = if rng.bool() { 0 } else { rng.usize(..held.len()) };
                    let place = if i == 0 { tree.first().unwrap().0 } else { held.swap_remove(i) };
                    held.retain(|&p| p != place);
                    gone = Some(place);
                    Places::remove(&mut tree, place);
                    groups.remove(place);
                }
                _ => {
                    let cut = rng.u64(..7);
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    tree.for_each_below(cut, |id| a.push(id));
                    groups.for_each_below(cut, |id| b.push(id));
                    assert_eq!(a, b);
                }
            }
            assert_eq!(Places::len(&tree), groups.len());
            assert_eq!(Places::first(&tree), groups.first());
            if step % 97 == 0 {
                let all: Vec<(Place, u32)> = tree.iter().map(|(&p, &id)| (p, id)).collect();
                let mut cursor = None;
                for &expected in &all {
                    let got = groups.after(cursor).unwrap();
                    assert_eq!(got, expected);
                    cursor = Some(got.0);
                }
                assert_eq!(groups.after(cursor), None);
                // Resuming after a place that is gone continues with the next one held.
                if gone.is_some() {
                    assert_eq!(tree.after(gone), groups.after(gone));
                }
                for i in 0..all.len() {
                    assert_eq!(Places::nth(&tree, i), groups.nth(i));
                }
                assert_eq!(groups.nth(all.len()), None);
            }
        }
    }

    #[test]
    fn mostly_dead_groups_are_compacted() {
        let mut groups = Groups::default();
        for seq in 0..1000 {
            groups.insert((0, seq), u32::try_from(seq).unwrap());
        }
        for seq in 1..999 {
            groups.remove((0, seq));
        }
        let group = &groups.map[&0];
        assert_eq!(group.live, 2);
        assert!(group.q.len() <= 2 * MIN_DEAD, "{} slots for 2 entries", group.q.len());
        assert!(group.q.capacity() <= 8 * MIN_DEAD, "room for {} kept", group.q.capacity());
        assert_eq!(groups.nth(1), Some(999));
        groups.remove((0, 0));
        groups.remove((0, 999));
        assert!(groups.map.is_empty() && groups.len() == 0);
    }
}
