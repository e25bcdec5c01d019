"""Garbage collection and leak tests: reference cycles through caches are collected, removed
keys and values are released, and long churn keeps the process size flat.

Every scenario runs in a child interpreter (``subprocess_harness.assert_child_ok``): a traversal that
deadlocks fails one test after a timeout, and RSS is measured in a clean process.
"""

import copy
import gc
import json
import os
import pickle
import weakref

import pytest

import cachebox

try:
    from .cache_helpers import CLASS_NAMES, PYPY, collect, entry_size, make_cache
    from .subprocess_harness import HANG_TIMEOUT, assert_child_ok
except ImportError:
    from cache_helpers import CLASS_NAMES, PYPY, collect, entry_size, make_cache
    from subprocess_harness import HANG_TIMEOUT, assert_child_ok


class Sentinel:
    """Put into a cycle; it dies exactly when the cycle is collected."""


class Holder:
    """An object that references a cache (hashable by identity, so it can be a key too)."""

    def __init__(self, cache):
        self.cache = cache


def _cycle_builders(name):
    """``kind -> build(sentinel)``: each builds a reference cycle through a cache of class
    ``name`` that keeps ``sentinel`` alive, and keeps no outside reference to it."""

    def self_value(s):
        c = make_cache(name, 0)
        c[1] = c
        c[2] = s

    def value_holds_cache(s):
        c = make_cache(name, 0)
        c["holder"] = Holder(c)
        c["s"] = s

    def key_holds_cache(s):
        c = make_cache(name, 0)
        c[Holder(c)] = s

    def iterator_value(s):
        c = make_cache(name, 0)
        c["s"] = s
        c["it"] = iter(c)

    def iterator_held_by_value(s):
        c = make_cache(name, 0)
        s.items = c.items()
        c["s"] = s

    def frozen_value(s):
        c = make_cache(name, 0)
        c["frozen"] = cachebox.Frozen(c)
        c["s"] = s

    def frozen_held_by_value(s):
        c = make_cache(name, 0)
        s.frozen = cachebox.Frozen(c)
        c["s"] = s

    def two_caches(s):
        a, b = make_cache(name, 0), make_cache(name, 0)
        a["b"] = b
        b["a"] = a
        b["s"] = s

    def subclass_dict(s):
        sub = make_cache(name, 0, cls=type("Sub", (getattr(cachebox, name),), {}))
        sub.me = sub
        sub.s = s

    def subclass_entries(s):
        sub = make_cache(name, 0, cls=type("Sub", (getattr(cachebox, name),), {}))
        sub[1] = sub
        sub[2] = s

    def copied(s):
        c = make_cache(name, 0)
        c[1] = c
        c[2] = s
        d = c.copy()
        d[3] = d

    return {
        f.__name__: f
        for f in (
            self_value,
            value_holds_cache,
            key_holds_cache,
            iterator_value,
            iterator_held_by_value,
            frozen_value,
            frozen_held_by_value,
            two_caches,
            subclass_dict,
            subclass_entries,
            copied,
        )
    }


def child_cycles_are_collected(name):
    """Prints ``{kind: collected}`` for every cycle kind."""
    report = {}
    for kind, build in _cycle_builders(name).items():
        s = Sentinel()
        ref = weakref.ref(s)
        build(s)
        del s
        collect(ref)
        report[kind] = ref() is None
    print(json.dumps(report))


@pytest.mark.skipif(
    PYPY,
    reason="PyPy never collects a reference cycle through an extension object: its C-API layer "
    "does not call tp_traverse, so cycles through a cache leak there",
)
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_reference_cycles_through_caches_are_collected(name):
    (line,) = assert_child_ok("test_gc", "child_cycles_are_collected", name)
    report = json.loads(line)
    assert len(report) == len(_cycle_builders(name))
    assert [kind for kind, collected in report.items() if not collected] == []


# ---------------------------------------------------------------------------------------------
# Removed keys and values are released
# ---------------------------------------------------------------------------------------------


class Tracked:
    """A key or value whose lifetime is watched through a weak reference."""

    __slots__ = ("__weakref__", "n")

    def __init__(self, n):
        self.n = n

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        return isinstance(other, Tracked) and other.n == self.n

    def __reduce__(self):
        return Tracked, (self.n,)


class _Watch:
    """Creates tracked objects and tells how many of them are still alive."""

    def __init__(self):
        self.refs = []

    def new(self, n):
        obj = Tracked(n)
        self.refs.append(weakref.ref(obj))
        return obj

    def watch(self, objects):
        self.refs.extend(weakref.ref(o) for o in objects)

    def alive(self):
        collect(*self.refs)
        return sum(1 for r in self.refs if r() is not None)


def _filled(name, watch, n=20, maxsize=0):
    c = make_cache(name, maxsize)
    for i in range(n):
        c[watch.new(i)] = watch.new(1000 + i)
    return c


def _leak_scenarios(name):
    """``scenario -> run(watch) -> number of tracked objects still alive that should not be``."""

    def clear(w, reuse=False):
        c = _filled(name, w)
        c.clear(reuse=reuse)
        return w.alive()

    def delete_cache(w):
        c = _filled(name, w)
        del c
        return w.alive()

    def pop_and_del(w):
        c = _filled(name, w)
        for i in range(0, 20, 2):
            c.pop(Tracked(i))
        for i in range(1, 20, 2):
            del c[Tracked(i)]
        return w.alive()

    def replace_values(w):
        c = _filled(name, w)
        for i in range(20):
            c[Tracked(i)] = i  # the old Tracked values go; the keys stay (20 alive)
        return w.alive() - 20

    def failed_operations(w):
        c = _filled(name, w, n=2, maxsize=2)
        for i in range(50):
            probe = w.new(5000 + i)
            try:
                c[probe]
            except KeyError:
                pass
            c.get(probe)
            c.pop(probe)
            if name == "Cache":
                try:
                    c[probe] = w.new(6000 + i)  # full: OverflowError, nothing stored
                except OverflowError:
                    pass
        del probe
        return w.alive() - 4  # the two stored pairs

    def pickled(w):
        c = _filled(name, w)
        loaded = pickle.loads(pickle.dumps(c))
        w.watch(k for k in loaded)
        w.watch(v for v in loaded.values())
        del c, loaded
        return w.alive()

    def copies(w):
        c = _filled(name, w)
        shallow, copied = c.copy(), copy.copy(c)
        deep = copy.deepcopy(c)
        w.watch(k for k in deep)
        w.watch(v for v in deep.values())
        del c, shallow, copied, deep
        return w.alive()

    scenarios = {
        "clear": clear,
        "clear_reuse": lambda w: clear(w, reuse=True),
        "delete_cache": delete_cache,
        "pop_and_del": pop_and_del,
        "replace_values": replace_values,
        "failed_operations": failed_operations,
        "pickled": pickled,
        "copies": copies,
    }
    if name != "Cache":

        def popitem(w):
            c = _filled(name, w)
            while c:
                c.popitem()
            return w.alive()

        def drain(w):
            c = _filled(name, w)
            c.drain(7)
            c.drain(100)
            return w.alive()

        def evict(w):
            c = _filled(name, w, n=40, maxsize=5)
            return w.alive() - 2 * len(c)  # the stored pairs stay

        scenarios.update(popitem=popitem, drain=drain, evict=evict)
    return scenarios


def child_no_leaks(name):
    """Prints ``{scenario: leaked objects}``."""
    report = {}
    for scenario, run in _leak_scenarios(name).items():
        report[scenario] = run(_Watch())
    print(json.dumps(report))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_removed_keys_and_values_are_released(name):
    (line,) = assert_child_ok("test_gc", "child_no_leaks", name)
    report = json.loads(line)
    assert len(report) == len(_leak_scenarios(name))
    assert {scenario: n for scenario, n in report.items() if n != 0} == {}, "scenario -> leaked objects"


# ---------------------------------------------------------------------------------------------
# Churn keeps RSS flat
# ---------------------------------------------------------------------------------------------

CHURN_WARMUP = 200_000
CHURN_OPS = 2_000_000
RSS_SLACK = 10 * 1024 * 1024


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_churn(name):
    """Inserts ``CHURN_OPS`` new keys into a cache of 1000 (each insert evicts one entry) and
    prints the RSS growth after the warm-up, plus a consistency check of the final cache."""
    c = make_cache(name, 1000)
    if name == "VTTLCache":

        def put(i):
            c.insert(i, str(i), 1000.0 + i % 97)  # varied expiries: exercises the sorted order

    else:

        def put(i):
            c[i] = str(i)

    for i in range(CHURN_WARMUP):
        put(i)
    done = CHURN_WARMUP
    if PYPY:
        # PyPy's collector grows its heap for a few million inserts before it settles (by 100 to
        # 200 MiB, depending on the machine), then stays flat: churn until a pass adds little.
        for _ in range(5):
            gc.collect()
            start = _rss()
            for i in range(done, done + CHURN_OPS):
                put(i)
            done += CHURN_OPS
            gc.collect()
            if _rss() - start <= RSS_SLACK // 2:
                break
    gc.collect()
    before = _rss()
    for i in range(done, done + CHURN_OPS):
        put(i)
    gc.collect()
    growth = _rss() - before
    consistent = len(c) == 1000 and c.memory() == sum(entry_size(k, v) for k, v in c.items())
    print(json.dumps({"growth": growth, "consistent": consistent}))


@pytest.mark.parametrize("name", ["LRUCache", "VTTLCache"])
def test_churn_keeps_rss_flat(name):
    (line,) = assert_child_ok("test_gc", "child_churn", name, timeout=HANG_TIMEOUT * 2)
    report = json.loads(line)
    assert report["consistent"], report
    assert report["growth"] <= RSS_SLACK, f"RSS grew by {report['growth'] / 2**20:.1f} MiB"


def child_collection_while_objects_are_built(name):
    """Collects on (nearly) every allocation while decorated functions and instances of a
    subclass of ``name`` are built. pyo3 allocates an object through ``object_new``, which
    creates the instance ``__dict__`` before the Rust fields are written; with the dict free
    list empty that allocation can start a collection that traverses the half-built object
    (a decorated function's traversal once read its unset fields and crashed)."""
    cls = getattr(cachebox, name)
    subclass = type("Sub" + name, (cls,), {})
    deco = cachebox.cached(cachebox.LRUCache(10))
    keep = []
    gc.set_threshold(1)
    try:
        for _ in range(200):
            keep.append([{} for _ in range(100)])  # empties the dict free list
            keep.append(deco(len))
            keep.append(subclass(*_args_for(name)))
    finally:
        gc.set_threshold(700, 10, 10)
    print(len(keep))


def _args_for(name):
    return (10, 60) if name == "TTLCache" else (10,)


@pytest.mark.skipif(
    PYPY,
    reason="PyPy has no gc.set_threshold to collect on every allocation, and never traverses an "
    "extension object, half-built or not",
)
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_collection_while_objects_are_built(name):
    (line,) = assert_child_ok("test_gc", "child_collection_while_objects_are_built", name)
    assert line == "600"
