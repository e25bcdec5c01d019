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
//!   entries never sit at either end, and a group that is mostly dead is compacted. A group of
//!   one entry (most of them, once frequencies spread out) is kept inline, with no deque.

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

/// The entries of one key, in seq order; both ends are live. A lone entry (most groups, once
/// frequencies spread out) is kept inline: a `Groups` entry is then as small as a B-tree place.
#[derive(Clone)]
enum Group {
    One(i64, u32),
    Many(Box<Deque>),
}

/// A group of two or more live entries.
#[derive(Clone)]
struct Deque {
    q: VecDeque<(i64, u32)>,
    live: usize,
}

/// What removing a seq from a group did.
#[derive(PartialEq, Eq)]
enum Removed {
    No,
    Yes,
    Emptied,
}

impl Deque {
    #[inline]
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

    /// Returns whether a live entry was added (rather than one replaced).
    #[inline(always)]
    fn insert(&mut self, seq: i64, id: u32) -> bool {
        // The usual case inline: a new or re-sorted entry after everything in the group.
        if self.q.back().is_some_and(|&(last, _)| seq > last) {
            self.q.push_back((seq, id));
            self.live += 1;
            return true;
        }
        self.insert_elsewhere(seq, id)
    }

    #[inline(never)]
    fn insert_elsewhere(&mut self, seq: i64, id: u32) -> bool {
        match self.q.front() {
            Some(&(first, _)) if seq < first => self.q.push_front((seq, id)),
            // Not reached from `SortedSeq` (its seqs are fresh and go to a group's ends); kept
            // correct anyway.
            _ => match self.position(seq) {
                Ok(i) => {
                    debug_assert_eq!(self.q[i].1, DEAD, "a place is held at most once");
                    let replaced = self.q[i].1 != DEAD;
                    self.q[i].1 = id;
                    self.live += usize::from(!replaced);
                    return !replaced;
                }
                Err(i) => self.q.insert(i, (seq, id)),
            },
        }
        self.live += 1;
        true
    }

    #[inline]
    fn remove(&mut self, seq: i64) -> bool {
        let Ok(i) = self.position(seq) else { return false };
        if self.q[i].1 == DEAD {
            return false;
        }
        self.q[i].1 = DEAD;
        self.live -= 1;
        self.tidy();
        true
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

impl Group {
    #[inline]
    fn front(&self) -> (i64, u32) {
        match self {
            Self::One(seq, id) => (*seq, *id),
            Self::Many(d) => d.q.front().copied().expect("a group has a live entry"),
        }
    }

    fn live_count(&self) -> usize {
        match self {
            Self::One(..) => 1,
            Self::Many(d) => d.live,
        }
    }

    /// Returns whether a live entry was added (rather than one replaced).
    #[inline(always)]
    fn insert(&mut self, seq: i64, id: u32) -> bool {
        match self {
            Self::Many(d) => d.insert(seq, id),
            Self::One(..) => self.insert_beside_one(seq, id),
        }
    }

    /// `insert` into a lone-entry group: it becomes a deque.
    #[inline(never)]
    fn insert_beside_one(&mut self, seq: i64, id: u32) -> bool {
        let Self::One(first, first_id) = *self else { unreachable!("called on a lone entry") };
        if first == seq {
            *self = Self::One(seq, id);
            return false;
        }
        let mut d = Deque { q: VecDeque::with_capacity(4), live: 1 };
        d.q.push_back((first, first_id));
        d.insert(seq, id);
        *self = Self::Many(Box::new(d));
        true
    }

    #[inline]
    fn remove(&mut self, seq: i64) -> Removed {
        match self {
            Self::One(s, _) => {
                if *s == seq {
                    Removed::Emptied
                } else {
                    Removed::No
                }
            }
            Self::Many(d) => {
                if !d.remove(seq) {
                    return Removed::No;
                }
                if d.live == 1 {
                    let (seq, id) = self.front();
                    *self = Self::One(seq, id);
                }
                Removed::Yes
            }
        }
    }

    /// The first live entry with a seq above `seq`.
    fn after(&self, seq: i64) -> Option<(i64, u32)> {
        match self {
            Self::One(s, id) => (*s > seq).then_some((*s, *id)),
            Self::Many(d) => {
                let start = d.q.partition_point(|&(s, _)| s <= seq);
                d.q.range(start..).copied().find(|&(_, id)| id != DEAD)
            }
        }
    }

    /// The `i`-th live id, from the front or (`from_back`) from the back.
    fn nth(&self, i: usize, from_back: bool) -> Option<u32> {
        match self {
            Self::One(_, id) => (i == 0).then_some(*id),
            Self::Many(d) if from_back => d.live().rev().nth(i).map(|(_, id)| id),
            Self::Many(d) => d.live().nth(i).map(|(_, id)| id),
        }
    }

    fn for_each_live(&self, f: &mut impl FnMut(u32)) {
        match self {
            Self::One(_, id) => f(*id),
            Self::Many(d) => d.live().for_each(|(_, id)| f(id)),
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

    #[inline]
    fn insert(&mut self, (key, seq): Place, id: u32) {
        let added = match self.map.get_mut(&key) {
            Some(group) => group.insert(seq, id),
            None => {
                self.map.insert(key, Group::One(seq, id));
                true
            }
        };
        self.len += usize::from(added);
    }

    fn append_sorted(&mut self, sorted: Vec<(Place, u32)>) {
        // Groups for keys not in the map yet are built aside and merged in one pass: the B-tree
        // is then rebuilt with full nodes, where inserting keys one by one at its end leaves
        // every node half empty (it matters when most entries have a frequency of their own).
        let mut fresh: Vec<(u64, Group)> = Vec::new();
        for ((key, seq), id) in sorted {
            match fresh.last_mut() {
                Some((last, group)) if *last == key => self.len += usize::from(group.insert(seq, id)),
                _ if self.map.contains_key(&key) => self.insert((key, seq), id),
                _ => {
                    fresh.push((key, Group::One(seq, id)));
                    self.len += 1;
                }
            }
        }
        if !fresh.is_empty() {
            let mut more: BTreeMap<u64, Group> = fresh.into_iter().collect();
            self.map.append(&mut more);
        }
    }

    #[inline]
    fn remove(&mut self, (key, seq): Place) {
        let Some(group) = self.map.get_mut(&key) else { return };
        match group.remove(seq) {
            Removed::No => {}
            Removed::Yes => self.len -= 1,
            Removed::Emptied => {
                self.map.remove(&key);
                self.len -= 1;
            }
        }
    }

    #[inline]
    fn first(&self) -> Option<(Place, u32)> {
        let (&key, group) = self.map.first_key_value()?;
        let (seq, id) = group.front();
        Some(((key, seq), id))
    }

    fn after(&self, place: Option<Place>) -> Option<(Place, u32)> {
        let Some((key, seq)) = place else { return self.first() };
        if let Some((seq, id)) = self.map.get(&key).and_then(|group| group.after(seq)) {
            return Some(((key, seq), id));
        }
        let (&key, group) = self.map.range((Bound::Excluded(key), Bound::Unbounded)).next()?;
        let (seq, id) = group.front();
        Some(((key, seq), id))
    }

    fn nth(&self, mut i: usize) -> Option<u32> {
        if i < self.len / 2 {
            for group in self.map.values() {
                let live = group.live_count();
                if i < live {
                    return group.nth(i, false);
                }
                i -= live;
            }
        } else {
            let mut back = self.len.checked_sub(i + 1)?;
            for group in self.map.values().rev() {
                let live = group.live_count();
                if back < live {
                    return group.nth(back, true);
                }
                back -= live;
            }
        }
        None
    }

    fn for_each_below(&self, limit: u64, mut f: impl FnMut(u32)) {
        for group in self.map.range(..limit).map(|(_, group)| group) {
            group.for_each_live(&mut f);
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
                9 if step % 5 == 0 => {
                    // A batch of appends, as `SortedSeq` places many pending entries at once.
                    let mut batch: Vec<(Place, u32)> = (0..rng.usize(1..40))
                        .map(|j| {
                            back += 1;
                            ((rng.u64(..9), back), 100_000 + step * 64 + u32::try_from(j).unwrap())
                        })
                        .collect();
                    batch.sort_unstable();
                    held.extend(batch.iter().map(|&(place, _)| place));
                    tree.append_sorted(batch.clone());
                    groups.append_sorted(batch);
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
                for _ in 0..20 {
                    let i = rng.usize(..all.len().max(1));
                    assert_eq!(Places::nth(&tree, i), groups.nth(i));
                }
                assert_eq!(groups.nth(all.len()), None);
            }
        }
    }

    #[test]
    fn a_lone_entry_takes_no_more_than_a_btree_place() {
        assert_eq!(std::mem::size_of::<Group>(), 16);
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
        let Group::Many(group) = &groups.map[&0] else { panic!("two entries are a deque") };
        assert_eq!(group.live, 2);
        assert!(group.q.len() <= 2 * MIN_DEAD, "{} slots for 2 entries", group.q.len());
        assert!(group.q.capacity() <= 8 * MIN_DEAD, "room for {} kept", group.q.capacity());
        assert_eq!(groups.nth(1), Some(999));
        groups.remove((0, 0));
        assert!(matches!(groups.map[&0], Group::One(999, 999)), "a lone entry goes back inline");
        groups.remove((0, 999));
        assert!(groups.map.is_empty() && groups.len() == 0);
    }
}
