//! Rust tests of the store across the policies.

use pyo3::types::PyInt;

use super::*;
use crate::clock;
use crate::convert::hash_key;
use crate::policy::{Fifo, Lfu, Lru, NewMeta, Storage, Ttl, Unordered, Vttl};

/// Runs a test generic over the policy once for each policy listed.
macro_rules! for_policies {
    ($test:ident $args:tt: $($policy:ty),+) => {
        $($test::<$policy> $args;)+
    };
}

/// Inserts int keys with unit sizes; returns the trash count.
fn put<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64, meta: NewMeta) -> usize {
    let key = PyInt::new(py, k).into_any();
    let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
    let mut trash = Trash::new(py);
    s.insert(py, &probe, &key, Charge::total(1), meta, &mut trash).unwrap();
    trash.len()
}

fn hit<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64) -> bool {
    let key = PyInt::new(py, k).into_any();
    let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
    s.get(py, &probe, |_| ()).unwrap().is_some()
}

fn del<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64) -> bool {
    let key = PyInt::new(py, k).into_any();
    let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
    s.pop(py, &probe).unwrap().is_some()
}

fn keys<P: Policy>(py: Python<'_>, s: &mut Store<P>) -> Vec<i64> {
    let mut trash = Trash::new(py);
    let ids = s.ordered_ids(&mut trash);
    ids.iter().map(|&id| s.entry(id).key.bind(py).extract().unwrap()).collect()
}

fn store<P: Policy>(maxsize: usize) -> Store<P> {
    Store::new(Limits::new(maxsize, 0))
}

/// A store of `maxsize` holding the int keys `0..n`, inserted in order.
fn filled<P: Policy>(py: Python<'_>, maxsize: usize, n: i64) -> Store<P> {
    let mut s = store::<P>(maxsize);
    for k in 0..n {
        put(py, &mut s, k, NewMeta::default());
    }
    s
}

#[test]
fn lru_evicts_least_recently_used_and_survives_relocation() {
    Python::attach(|py| {
        let mut s = filled::<Lru>(py, 4, 4);
        assert!(hit(py, &mut s, 0));
        assert!(del(py, &mut s, 1)); // moves the last slot into the hole
        put(py, &mut s, 4, NewMeta::default());
        put(py, &mut s, 5, NewMeta::default());
        assert_eq!(keys(py, &mut s), vec![3, 0, 4, 5]);
        for k in [3, 0, 4, 5] {
            assert!(hit(py, &mut s, k), "{k} must be findable after relocations");
        }
    });
}

#[test]
fn fifo_ring_compacts_tombstones_and_keeps_order() {
    Python::attach(|py| {
        let mut s = filled::<Fifo>(py, 0, 200);
        for k in (1..200).step_by(2) {
            assert!(del(py, &mut s, k));
        }
        let expected: Vec<i64> = (0..200).step_by(2).collect();
        assert_eq!(keys(py, &mut s), expected);
        for k in expected {
            assert!(hit(py, &mut s, k));
        }
        assert_eq!(s.policy.nth(-1).map(|id| s.entry(id).key.bind(py).extract::<i64>().unwrap()), Some(198));
    });
}

#[test]
fn unordered_relocates_on_removal() {
    Python::attach(|py| {
        let mut s = store::<Unordered<true>>(3);
        for k in 0..50 {
            assert!(put(py, &mut s, k, NewMeta::default()) <= 1);
            assert!(s.len() <= 3);
        }
        let live = keys(py, &mut s);
        assert_eq!(live.len(), 3);
        for k in live {
            assert!(hit(py, &mut s, k));
        }
    });
}

#[test]
fn lfu_follows_the_lazy_stable_sort_model() {
    // BEHAVIOUR.md §6.6: after these writes and reads, `c[5] = 4` evicts 2 and the order is
    // [5, 3, 4, 1, 0].
    Python::attach(|py| {
        let mut s = filled::<Lfu>(py, 5, 5);
        for (k, n) in [(0, 10), (1, 7), (2, 3), (3, 4), (4, 6)] {
            for _ in 0..n {
                assert!(hit(py, &mut s, k));
                put(py, &mut s, k, NewMeta::default());
            }
        }
        put(py, &mut s, 5, NewMeta::default());
        assert_eq!(keys(py, &mut s), vec![5, 3, 4, 1, 0]);
    });
}

#[test]
fn lfu_ties_keep_the_order_of_the_last_sort() {
    // S = [a(1), b(2)] after a sort; a and b then both reach 3: a stays first, although b
    // was touched first (an eager reorder would put b first).
    Python::attach(|py| {
        let mut s = store::<Lfu>(0);
        put(py, &mut s, 1, NewMeta::default());
        put(py, &mut s, 2, NewMeta::default());
        hit(py, &mut s, 1);
        hit(py, &mut s, 2);
        hit(py, &mut s, 2);
        assert_eq!(keys(py, &mut s), vec![1, 2]);
        hit(py, &mut s, 2);
        hit(py, &mut s, 1);
        hit(py, &mut s, 1);
        assert_eq!(keys(py, &mut s), vec![1, 2]);
    });
}

#[test]
fn ttl_sweeps_expired_prefix() {
    Python::attach(|py| {
        let mut s = Store::with_policy(Ttl::with_ttl(Some(10.0)).unwrap(), Limits::new(0, 0));
        let now = clock::now();
        for k in 0..5 {
            put(py, &mut s, k, NewMeta { expire_at: now - 1.0, ..NewMeta::default() });
        }
        put(py, &mut s, 9, NewMeta::default());
        // Entries restored with past expiries are swept by the next new insert.
        assert_eq!(keys(py, &mut s), vec![9]);
        assert_eq!(s.len(), 1);
    });
}

#[test]
fn vttl_evicts_soonest_expiry_and_never_expiring_last() {
    Python::attach(|py| {
        let mut s = store::<Vttl>(3);
        let now = clock::now();
        put(py, &mut s, 1, NewMeta { expire_at: now + 70.0, ..NewMeta::default() });
        put(py, &mut s, 2, NewMeta::default());
        put(py, &mut s, 3, NewMeta { expire_at: now + 60.0, ..NewMeta::default() });
        assert_eq!(keys(py, &mut s), vec![3, 1, 2]);
        put(py, &mut s, 4, NewMeta { expire_at: now + 90.0, ..NewMeta::default() });
        assert_eq!(keys(py, &mut s), vec![1, 4, 2]);
    });
}

#[test]
fn big_sizes_are_accounted_exactly() {
    Python::attach(|py| {
        let mut s = store::<Lru>(0);
        let key = PyInt::new(py, 7).into_any();
        let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
        let big = (u32::MAX as usize) * 3;
        let mut trash = Trash::new(py);
        s.insert(py, &probe, &key, Charge::total(big), NewMeta::default(), &mut trash).unwrap();
        assert_eq!(s.memory(), big);
        s.insert(py, &probe, &key, Charge::total(5), NewMeta::default(), &mut trash).unwrap();
        assert_eq!(s.memory(), 5);
        s.insert(py, &probe, &key, Charge::total(big), NewMeta::default(), &mut trash).unwrap();
        assert!(s.pop(py, &probe).unwrap().is_some());
        assert_eq!(s.memory(), 0);
        assert!(s.big_sizes.is_empty());
    });
}

#[test]
fn items_find_the_tuple_they_make() {
    use crate::convert::{items_hash, tuple_hash_matches};
    use crate::entry::fold_hash;
    use pyo3::types::PyTuple;
    Python::attach(|py| {
        assert!(tuple_hash_matches(py), "items_hash must agree with hash(tuple) here");
        let mut s = store::<Lru>(0);
        let items = [PyInt::new(py, 1).into_any(), "a".into_pyobject(py).unwrap().into_any()];
        let tuple = PyTuple::new(py, &items).unwrap().into_any();
        let hash = fold_hash(items_hash(&items).unwrap());
        assert_eq!(hash, hash_key(&tuple).unwrap());
        let owner = Owner::default();
        assert!(matches!(s.get_items(py, hash, &owner, &items, |_| ()).unwrap(), ItemsLookup::Absent));
        let probe = Probe { key: &tuple, hash, owner: &owner };
        let mut trash = Trash::new(py);
        s.insert(py, &probe, &tuple, Charge::total(1), NewMeta::default(), &mut trash).unwrap();
        assert!(matches!(s.get_items(py, hash, &owner, &items, |_| ()).unwrap(), ItemsLookup::Found(_)));
        // Same hash, fewer items: not that tuple.
        assert!(matches!(s.find_items(py, hash, &owner, &items[..1]).unwrap(), ItemsLookup::Absent));
        // A stored key that is not an exact tuple leaves the decision to a real tuple.
        let mut s = store::<Lru>(0);
        let list = pyo3::types::PyList::new(py, &items).unwrap().into_any();
        let probe = Probe { key: &list, hash, owner: &owner };
        s.insert(py, &probe, &list, Charge::total(1), NewMeta::default(), &mut trash).unwrap();
        assert!(matches!(s.find_items(py, hash, &owner, &items).unwrap(), ItemsLookup::Undecided));
    });
}

#[test]
fn full_inserts_reuse_the_victims_place() {
    // `insert_recycling`: the new entry takes the victim's slot (LRU, LFU, VTTL, RR) or
    // the ring's front (FIFO, TTL, skipping tombstones there); every key stays findable.
    Python::attach(|py| {
        let mut s = filled::<Fifo>(py, 4, 4);
        assert!(del(py, &mut s, 1)); // a tombstone right behind the front
        put(py, &mut s, 4, NewMeta::default());
        assert_eq!(put(py, &mut s, 5, NewMeta::default()), 1);
        assert_eq!(keys(py, &mut s), vec![2, 3, 4, 5]);
        assert_eq!(put(py, &mut s, 6, NewMeta::default()), 1);
        assert_eq!(keys(py, &mut s), vec![3, 4, 5, 6]);
        for k in [3, 4, 5, 6] {
            assert!(hit(py, &mut s, k));
        }
        assert_eq!(s.memory, 4);

        let mut s = store::<Lfu>(3);
        for k in 0..3 {
            put(py, &mut s, k, NewMeta::default());
            hit(py, &mut s, k);
        }
        hit(py, &mut s, 0);
        assert_eq!(put(py, &mut s, 7, NewMeta::default()), 1); // evicts 1 (least used, first)
        assert_eq!(keys(py, &mut s), vec![7, 2, 0]);
        assert!(!hit(py, &mut s, 1));
        assert_eq!(s.memory, 3);
    });
}

/// Inserts into a store that is full by count never grow the policy's storage (so
/// `reserve_one` need not reserve it), also with tombstones in a ring and with a byte
/// limit that makes one insert evict two entries.
fn churn_keeps_storage<P: Policy>(py: Python<'_>, maxsize: usize) {
    let mut s = Store::<P>::new(Limits::new(maxsize, 0));
    let n = i64::try_from(maxsize).unwrap();
    for k in 0..n {
        put(py, &mut s, k, NewMeta::default());
    }
    for k in n..6 * n {
        let bytes = s.policy.allocated_bytes();
        assert_eq!(put(py, &mut s, k, NewMeta::default()), 1);
        assert_eq!(s.policy.allocated_bytes(), bytes, "storage grew at key {k}");
        if k % 7 == 0 {
            // One short of full: the next insert reserves (a ring with a tombstone may grow).
            // The previous key leaves a tombstone in a ring; RR may have evicted it, but not
            // the key just inserted.
            assert!(del(py, &mut s, k - 1) || del(py, &mut s, k));
            put(py, &mut s, -k, NewMeta::default());
        }
        assert_eq!(s.len(), maxsize);
    }
    s.limits.maxmemory = maxsize;
    let bytes = s.policy.allocated_bytes();
    let key = PyInt::new(py, -1).into_any();
    let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
    let mut trash = Trash::new(py);
    s.insert(py, &probe, &key, Charge::total(2), NewMeta::default(), &mut trash).unwrap();
    assert_eq!(trash.len(), 2);
    assert_eq!(s.policy.allocated_bytes(), bytes);
}

/// Filling grows storage geometrically: reserving exactly one more slot per insert made
/// every insert past the capacity a reallocation (a quarter of the fill time at a million).
fn growth_is_amortized<P: Policy>(py: Python<'_>) {
    let mut s = store::<P>(0);
    let mut grew = 0;
    for k in 0..4096 {
        let bytes = s.policy.allocated_bytes();
        put(py, &mut s, k, NewMeta::default());
        grew += usize::from(s.policy.allocated_bytes() != bytes);
    }
    assert!(grew <= 16, "storage grew {grew} times in 4096 inserts");
}

#[test]
fn full_stores_do_not_grow_their_storage() {
    Python::attach(|py| {
        for_policies!(growth_is_amortized(py): Fifo, Ttl, Lru, Vttl, Unordered<false>);
        for_policies!(churn_keeps_storage(py, 64): Fifo, Lru, Lfu, Vttl, Unordered<true>);
    });
}

/// The prefetch hint follows the table through every operation that can move it.
fn prefetch_hint_follows<P: Policy>(py: Python<'_>) {
    let current = |s: &Store<P>| s.bucket_end == s.current_bucket_end();
    let mut s = store::<P>(0);
    for k in 0..3000 {
        put(py, &mut s, k, NewMeta::default());
        if k.count_ones() == 1 {
            assert!(current(&s), "after growing to {k}");
        }
    }
    for k in 0..2900 {
        assert!(del(py, &mut s, k));
    }
    let mut trash = Trash::new(py);
    s.shrink_to_fit(&mut trash);
    assert!(current(&s) && s.bucket_end != 0, "after shrinking");
    s.reserve(50_000).unwrap();
    assert!(current(&s), "after reserving");
    let copy = s.duplicate(py);
    assert!(current(&copy) && copy.bucket_end != s.bucket_end, "in a copy");
    s.clear(false, &mut trash);
    put(py, &mut s, 1, NewMeta::default());
    assert!(current(&s), "after clearing");
    assert!(s.check_invariants(py).is_ok());
}

/// LRU's bucket hints stay exact through growth, tombstone rehashes, removals, shrinking
/// and copies (`check_invariants` checks every hint).
#[test]
fn lru_bucket_hints_stay_exact() {
    Python::attach(|py| {
        let mut s = store::<Lru>(700);
        let mut rng = fastrand::Rng::with_seed(11);
        for step in 0..6000i64 {
            let k = rng.i64(0..2000);
            if rng.u8(0..4) == 0 {
                del(py, &mut s, k);
            } else {
                put(py, &mut s, k, NewMeta::default());
            }
            if step % 500 == 0 {
                s.check_invariants(py).unwrap();
            }
        }
        s.check_invariants(py).unwrap();
        // Tombstones: fill an unbounded store to its table's capacity, remove most entries
        // (at that load erasing leaves tombstones), then insert until the table rehashes
        // in place.
        let mut s = store::<Lru>(0);
        for k in 0..896 {
            put(py, &mut s, k, NewMeta::default());
        }
        let buckets = s.table.num_buckets();
        for k in 0..460 {
            assert!(del(py, &mut s, k * 896 / 460));
        }
        // Churn at a constant length below half the table: tombstones pile up until the
        // table rehashes in place.
        let mut live: std::collections::VecDeque<i64> =
            (0..896).filter(|k| !(0..460).any(|d| d * 896 / 460 == *k)).collect();
        let mut rehashed = false;
        for k in 10_000..30_000 {
            let before = s.table.capacity();
            put(py, &mut s, k, NewMeta::default());
            live.push_back(k);
            assert!(del(py, &mut s, live.pop_front().unwrap()));
            if s.table.capacity() > before + 1 && s.table.num_buckets() == buckets {
                rehashed = true;
                s.check_invariants(py).unwrap();
                break;
            }
        }
        assert!(rehashed, "no in-place rehash happened");
        let mut trash = Trash::new(py);
        s.shrink_to_fit(&mut trash);
        s.check_invariants(py).unwrap();
        s.duplicate(py).check_invariants(py).unwrap();
        // A stale hint is only a miss: the probe still finds the entry.
        let any = s.policy.ids()[0];
        let stale = (s.policy.bucket_hint(any).unwrap() + 1) % s.table.num_buckets();
        s.policy.note_bucket(any, stale);
        let key = s.entry(any).key.bind(py).extract::<i64>().unwrap();
        assert!(s.check_invariants(py).is_err());
        assert!(del(py, &mut s, key));
    });
}

#[test]
fn prefetch_hint_is_current() {
    Python::attach(|py| {
        for_policies!(prefetch_hint_follows(py): Fifo, Lru, Lfu, Unordered<false>);
    });
    // Any address is a valid prefetch hint.
    for addr in [0, 1, usize::MAX, std::ptr::from_ref(&0u8) as usize] {
        crate::prefetch::prefetch(addr);
    }
}

#[test]
fn lru_links_follow_ids_through_emptying_and_shrinking() {
    // The LRU's links sit in a side table indexed by id: emptying the slab restarts ids,
    // and shrinking trims both.
    Python::attach(|py| {
        let mut s = filled::<Lru>(py, 0, 4);
        for k in 0..4 {
            assert!(del(py, &mut s, k));
        }
        for k in 10..14 {
            put(py, &mut s, k, NewMeta::default());
        }
        assert!(hit(py, &mut s, 10));
        assert_eq!(keys(py, &mut s), vec![11, 12, 13, 10]);
        assert!(del(py, &mut s, 13) && del(py, &mut s, 12));
        let mut trash = Trash::new(py);
        s.shrink_to_fit(&mut trash);
        for k in 20..23 {
            put(py, &mut s, k, NewMeta::default());
        }
        assert!(hit(py, &mut s, 11));
        assert_eq!(keys(py, &mut s), vec![10, 20, 21, 22, 11]);
    });
}

/// Inserts int key `k` charged `size`; returns the causes of what left, in order.
fn put_sized<P: Policy>(py: Python<'_>, s: &mut Store<P>, k: i64, size: usize, meta: NewMeta) -> Vec<Cause> {
    let key = PyInt::new(py, k).into_any();
    let probe = Probe { key: &key, hash: hash_key(&key).unwrap(), owner: &Owner::default() };
    let mut trash = Trash::new(py);
    s.insert(py, &probe, &key, Charge::total(size), meta, &mut trash).unwrap();
    trash.take_entries().into_iter().map(|(_, cause)| cause).collect()
}

#[test]
fn removals_carry_their_cause() {
    Python::attach(|py| {
        // maxsize: the victim of a full cache (with and without recycling its slot).
        let mut lru = store::<Lru>(2);
        let mut fifo = store::<Fifo>(2);
        for k in 0..2 {
            assert!(put_sized(py, &mut lru, k, 1, NewMeta::default()).is_empty());
            assert!(put_sized(py, &mut fifo, k, 1, NewMeta::default()).is_empty());
        }
        assert_eq!(put_sized(py, &mut lru, 2, 1, NewMeta::default()), [Cause::Size]);
        assert_eq!(put_sized(py, &mut fifo, 2, 1, NewMeta::default()), [Cause::Size]);
        // maxmemory: a new key that needs two victims' room, and a replacement that grows.
        let mut s = Store::<Lru>::new(Limits::new(10, 3));
        for k in 0..3 {
            put_sized(py, &mut s, k, 1, NewMeta::default());
        }
        assert_eq!(put_sized(py, &mut s, 3, 2, NewMeta::default()), [Cause::Memory, Cause::Memory]);
        assert_eq!(put_sized(py, &mut s, 3, 3, NewMeta::default()), [Cause::Memory]);
        // Expired: swept before a new key goes in.
        let mut ttl = Store::with_policy(Ttl::with_ttl(Some(10.0)).unwrap(), Limits::new(0, 0));
        let past = NewMeta { expire_at: clock::now() - 1.0, ..NewMeta::default() };
        put_sized(py, &mut ttl, 0, 1, past);
        assert_eq!(put_sized(py, &mut ttl, 1, 1, NewMeta::default()), [Cause::Expired]);
        // Explicit: clear.
        let mut trash = Trash::new(py);
        lru.clear(false, &mut trash);
        let causes: Vec<Cause> = trash.take_entries().into_iter().map(|(_, cause)| cause).collect();
        assert_eq!(causes, [Cause::Explicit, Cause::Explicit]);
    });
}
