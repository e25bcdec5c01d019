"""Thread-safety tests (BEHAVIOUR.md §14): several threads mix every method on one shared
cache, then the cache's invariants are checked; and ``a == b`` racing ``b == a`` must never
deadlock.

Each scenario runs in a child interpreter (``subprocess_harness.assert_child_ok``) so that a
deadlock fails its test after a timeout instead of stalling the run. The ``child_*`` functions are what the
children run; they print their findings, and the tests assert on them.
"""

import json
import random
import sys
import threading
import time

import pytest

try:
    from .cache_helpers import CLASS_NAMES, entry_size, make_cache
    from .subprocess_harness import HANG_TIMEOUT, assert_child_ok
except ImportError:
    from cache_helpers import CLASS_NAMES, entry_size, make_cache
    from subprocess_harness import HANG_TIMEOUT, assert_child_ok

THREADS = 4
OPS_PER_THREAD = 4000
CHANGED = "cache changed during iteration"
KEYS = list(range(40)) + [f"k{i}" for i in range(12)]


def _value(key, rng):
    # Every value names its key, so a value filed under the wrong key is detected.
    return (key, rng.randrange(1000))


def _check_value(key, value):
    if value is not None and value[0] != key:
        raise AssertionError(f"value {value!r} found under key {key!r}")


def _consume(iterator, check):
    """Drains a cache iterator; invalidation by another thread is the one expected error."""
    try:
        for item in iterator:
            check(item)
    except RuntimeError as e:
        if str(e) != CHANGED:
            raise


def _check_item(item):
    _check_value(item[0], item[1])


def _operations(cache, name):
    """``(weight, operation(rng))`` for every method the class has. An operation swallows
    only the errors the contract allows for it (BEHAVIOUR.md §15.1); anything else reaches
    the worker's error list."""
    c = cache

    def key(rng):
        return rng.choice(KEYS)

    def setitem(rng):
        k = key(rng)
        c[k] = _value(k, rng)

    def insert(rng):
        k = key(rng)
        _check_value(k, c.insert(k, _value(k, rng)))

    def setdefault(rng):
        k = key(rng)
        _check_value(k, c.setdefault(k, _value(k, rng)))

    def update(rng):
        ks = rng.sample(KEYS, 3)
        c.update({k: _value(k, rng) for k in ks})

    def getitem(rng):
        k = key(rng)
        try:
            _check_value(k, c[k])
        except KeyError as e:
            assert e.args == (k,), e.args

    def get(rng):
        k = key(rng)
        _check_value(k, c.get(k))

    def contains(rng):
        assert (key(rng) in c) in (True, False)

    def delitem(rng):
        k = key(rng)
        try:
            del c[k]
        except KeyError as e:
            assert e.args == (k,), e.args

    def pop(rng):
        k = key(rng)
        _check_value(k, c.pop(k))

    def popitem(rng):
        try:
            _check_item(c.popitem())
        except KeyError as e:
            assert e.args == (), e.args

    def drain(rng):
        assert 0 <= c.drain(rng.randrange(3)) <= 2

    def clear(rng):
        c.clear(reuse=rng.random() < 0.5)

    def iterate(rng):
        kind = rng.choice(["items", "keys", "values", "iter"])
        if kind == "items":
            _consume(c.items(), _check_item)
        elif kind == "values":
            _consume(c.values(), lambda v: _check_value(v[0], v))
        else:
            _consume(c.keys() if kind == "keys" else iter(c), lambda k: None)

    def observe(rng):
        assert 0 <= len(c) <= c.maxsize
        assert c.memory() >= 0 and c.capacity() >= 0
        assert c.is_full() in (True, False) and c.is_empty() in (True, False) and bool(c) in (True, False)
        assert repr(c).startswith(f"cachebox.{name}[")
        c.shrink_to_fit()

    def compare(rng):
        other = c.copy()
        assert type(other) is type(c)
        assert (c == other) in (True, False)

    ops = [
        (8, setitem),
        (4, insert),
        (3, setdefault),
        (2, update),
        (6, getitem),
        (6, get),
        (4, contains),
        (3, delitem),
        (3, pop),
        (2, iterate),
        (2, observe),
        (1, compare),
        (0.2, clear),
    ]
    if name != "Cache":
        ops += [(2, popitem), (1, drain)]
    extra = {
        "FIFOCache": ["first", "last"],
        "RRCache": ["random_key"],
        "LRUCache": ["peek", "least_recently_used", "most_recently_used"],
        "LFUCache": ["peek", "least_frequently_used", "items_with_frequency"],
        "TTLCache": [
            "first",
            "last",
            "get_with_expire",
            "pop_with_expire",
            "popitem_with_expire",
            "items_with_expire",
            "expire",
        ],
        "VTTLCache": [
            "get_with_expire",
            "pop_with_expire",
            "popitem_with_expire",
            "items_with_expire",
            "expire",
        ],
    }.get(name, [])
    ops += [(1, _class_specific(c, method)) for method in extra]
    return ops


def _class_specific(c, method):
    """An operation calling the class-specific ``method`` with sensible arguments."""

    def run(rng):
        k = rng.choice(KEYS)
        if method == "peek":
            _check_value(k, c.peek(k))
        elif method in ("get_with_expire", "pop_with_expire"):
            value, remaining = getattr(c, method)(k)
            _check_value(k, value)
            assert remaining >= 0.0
        elif method in ("first", "least_frequently_used"):
            getattr(c, method)(rng.randrange(-3, 3))
        elif method in ("items_with_frequency", "items_with_expire"):
            _consume(getattr(c, method)(), _check_item)
        elif method in ("popitem_with_expire", "random_key"):
            try:
                result = getattr(c, method)()
            except KeyError as e:
                assert e.args == (), e.args
            else:
                if method == "popitem_with_expire":
                    _check_item(result)
        else:
            getattr(c, method)()

    run.__name__ = method
    return run


def _worker_for(name):
    """The thread body: runs random operations, recording every unexpected exception.
    ``OverflowError`` is expected only from ``Cache`` inserts when full (BEHAVIOUR.md §3.3)."""

    def work(ops, seed, errors):
        rng = random.Random(seed)
        weights = [w for w, _ in ops]
        funcs = [f for _, f in ops]
        for op in rng.choices(funcs, weights, k=OPS_PER_THREAD):
            try:
                op(rng)
            except OverflowError as e:
                inserting = op.__name__ in ("setitem", "insert", "setdefault", "update")
                if not (name == "Cache" and inserting and str(e) == "The cache has reached the bound"):
                    errors.append(f"{op.__name__}: {e!r}")
            except BaseException as e:  # noqa: BLE001 (reported to the test, which fails on it)
                errors.append(f"{op.__name__}: {e!r}")

    return work


def child_mixed_threads(name, maxsize, maxmemory):
    """Four threads run a random mix of every method on one cache; prints a JSON report of
    unexpected errors and of the invariants checked afterwards."""
    sys.setswitchinterval(1e-5)  # switch threads often, to interleave method calls
    cache = make_cache(name, maxsize, maxmemory=maxmemory)
    ops = _operations(cache, name)
    errors = []
    threads = [
        threading.Thread(target=_worker_for(name), args=(ops, seed, errors)) for seed in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = list(cache)
    items = list(cache.items())
    report = {
        "errors": errors[:20],
        "len": len(cache),
        "maxsize": cache.maxsize,
        "keys_unique": len(keys) == len(set(keys)),
        "len_matches_iteration": len(keys) == len(cache) == len(items),
        "memory": cache.memory(),
        "memory_of_items": sum(entry_size(k, v) for k, v in items),
        "maxmemory": cache.maxmemory,
        "values_match_keys": all(v[0] == k for k, v in items),
        "lookups_agree": all(cache.get(k) == v for k, v in items),
        "capacity_ok": cache.capacity() >= len(cache),
    }
    print(json.dumps(report))


@pytest.mark.parametrize("maxsize,maxmemory", [(16, 0), (12, 700)], ids=["maxsize", "maxmemory"])
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_mixed_methods_from_four_threads(name, maxsize, maxmemory):
    (line,) = assert_child_ok(
        "test_threads", "child_mixed_threads", name, maxsize, maxmemory, timeout=HANG_TIMEOUT * 2
    )
    r = json.loads(line)
    assert r["errors"] == [], r["errors"]
    assert r["len"] <= r["maxsize"] == maxsize
    assert r["keys_unique"] and r["len_matches_iteration"], r
    assert r["memory"] == r["memory_of_items"], r
    assert r["memory"] <= r["maxmemory"], r
    assert r["values_match_keys"] and r["lookups_agree"] and r["capacity_ok"], r


class SlowEq:
    """A value whose ``__eq__`` gives up the GIL, widening every race window."""

    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        time.sleep(0)
        return isinstance(other, SlowEq) and self.n == other.n

    __hash__ = None

    def __sizeof__(self):
        return 16


def child_symmetric_equality(name):
    """Two threads compare ``a == b`` and ``b == a`` many times (locking two caches in opposite
    orders must not deadlock: BEHAVIOUR.md §9.1, §14.4). Prints the number of unequal results."""
    sys.setswitchinterval(1e-5)
    a, b = make_cache(name, 0), make_cache(name, 0)
    for i in range(40):
        # Equal but distinct key objects, so probing b for a's keys runs str.__eq__.
        a[f"key{i}"] = SlowEq(i)
        b["".join(["key", str(i)])] = SlowEq(i)
    mismatches = []

    def compare(x, y):
        for _ in range(300):
            equal = x == y
            if not equal:
                mismatches.append(1)

    threads = [threading.Thread(target=compare, args=pair) for pair in ((a, b), (b, a), (a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(len(mismatches))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_symmetric_equality_from_two_threads_terminates(name):
    (line,) = assert_child_ok("test_threads", "child_symmetric_equality", name)
    assert line == "0", f"{line} comparisons of two equal caches returned False"
