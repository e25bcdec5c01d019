"""Entry control callables that use the cache, and listeners called from several threads: the
listener runs after the cache's lock is released (it may read and write the cache, and sees
the change done), the weigher runs before the lock is taken (it may read the cache), and
concurrent writers each removal reported exactly once.

Each scenario could deadlock if a callable ran under the lock, so it runs in a child
interpreter with a timeout (``subprocess_harness.assert_child_ok``); the ``child_*`` functions
are what the children run.
"""

import collections
import sys
import threading

import pytest

import cachebox
from cachebox._core import _advance_clock, _freeze_clock

try:
    from .cache_helpers import CAUSES, CLASS_NAMES, make_cache
    from .subprocess_harness import assert_child_ok
except ImportError:
    from cache_helpers import CAUSES, CLASS_NAMES, make_cache
    from subprocess_harness import assert_child_ok


def _evicts(name):
    return name != "Cache"


def _expires(name):
    return name in ("TTLCache", "VTTLCache")


# ---------------------------------------------------------------------------------------------
# The listener uses the cache
# ---------------------------------------------------------------------------------------------


def child_listener_reads_and_writes(name):
    seen = []

    def listener(key, value, cause):
        # What the cache looks like from inside: the change is done, and the lock is free.
        seen.append((key, value, cause, key in list(cache.keys()), cache.get(key), len(cache)))
        if key == "w":
            cache["written by the listener"] = value

    cache = make_cache(name, 0, on_evict=listener)
    cache.update({"a": 1, "b": 2, "w": 3})
    cache["a"] = 10
    assert seen.pop() == ("a", 1, "replaced", True, 10, 3), seen
    del cache["b"]
    assert seen.pop() == ("b", 2, "explicit", False, None, 2), seen
    assert cache.pop("w") == 3
    assert seen.pop() == ("w", 3, "explicit", False, None, 1), seen
    assert sorted(cache.items(), key=repr) == [("a", 10), ("written by the listener", 3)]
    cache.clear()
    assert sorted(seen, key=repr) == [
        ("a", 10, "explicit", False, None, 0),
        ("written by the listener", 3, "explicit", False, None, 0),
    ], seen
    assert seen and len(cache) == 0


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_listener_reads_and_writes_the_cache(name):
    assert_child_ok("test_entry_control_reentrancy", "child_listener_reads_and_writes", name)


def child_listener_removes_during_an_eviction(name):
    seen = []

    def listener(key, value, cause):
        seen.append((key, cause, key in list(cache.keys()), 3 in list(cache.keys()), len(cache)))
        if cause == "size":
            # A removal from inside: reported by a nested call, from inside this one.
            (other,) = [k for k in cache if k != 3]
            cache.pop(other)

    cache = make_cache(name, 2, on_evict=listener)
    cache[1] = "a"
    cache[2] = "b"
    cache[3] = "c"
    (victim, cause, present, new_present, length), nested = seen
    # The new key is in when the victim is reported, and the victim is out.
    assert (cause, present, new_present, length) == ("size", False, True, 2), seen
    assert nested == (3 - victim, "explicit", False, True, 1), seen
    assert list(cache.items()) == [(3, "c")]


@pytest.mark.parametrize("name", [n for n in CLASS_NAMES if _evicts(n)])
def test_listener_removes_during_an_eviction(name):
    assert_child_ok("test_entry_control_reentrancy", "child_listener_removes_during_an_eviction", name)


def child_listener_uses_the_cache_during_a_sweep(name):
    _freeze_clock(True)
    seen = []

    def listener(key, value, cause):
        seen.append((key, cause, len(cache), list(cache.keys())))

    if name == "TTLCache":
        cache = cachebox.TTLCache(0, 10, on_evict=listener)
        cache[0] = "a"
        _advance_clock(6)
        cache[1] = "b"
    else:
        cache = cachebox.VTTLCache(0, on_evict=listener)
        cache.insert(0, "a", 10)
        cache.insert(1, "b", 20)
        _advance_clock(6)
    _advance_clock(6)
    cache.expire()
    assert seen == [(0, "expired", 1, [1])], seen


@pytest.mark.parametrize("name", [n for n in CLASS_NAMES if _expires(n)])
def test_listener_uses_the_cache_during_a_sweep(name):
    assert_child_ok("test_entry_control_reentrancy", "child_listener_uses_the_cache_during_a_sweep", name)


# ---------------------------------------------------------------------------------------------
# The weigher reads the cache
# ---------------------------------------------------------------------------------------------


def child_weigher_reads_the_cache(name):
    memories = []

    def weigher(key, value):
        # Run before the lock: len() and a lookup see the cache as it is before this write.
        memories.append(cache.memory())
        return 1 + len(cache) + 10 * (cache.get(key) is not None)

    cache = make_cache(name, 0, weigher=weigher)
    cache[1] = "a"  # 1
    cache[2] = "b"  # 2
    assert cache.memory() == 3
    cache[1] = "c"  # 1 + 2 + 10 replaces 1
    assert cache.memory() == 15
    cache.update({3: "d"})  # 3
    assert cache.setdefault(4, "e") == "e"  # 4
    cache.insert(5, "f")  # 5
    assert cache.memory() == 27 and len(cache) == 5
    assert memories == [0, 1, 3, 15, 18, 22]


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_weigher_reads_the_cache(name):
    assert_child_ok("test_entry_control_reentrancy", "child_weigher_reads_the_cache", name)


# ---------------------------------------------------------------------------------------------
# Several threads
# ---------------------------------------------------------------------------------------------

THREADS = 4
WRITES = 3000
KEYS = 80  # per thread: more than the 64 a bounded cache holds, so each thread alone evicts


def child_every_removal_reported_once(name):
    """Threads write keys of their own (writing some twice in a row, popping some, and in a
    bounded cache evicting each other's), the clock moves under the TTL classes, and the
    listener is called from all the threads at once. Every value written is a distinct object,
    so each must be reported exactly once by the end (after a final ``clear``)."""
    _freeze_clock(True)
    # Switch threads as often as possible, so that calls of the listener overlap.
    sys.setswitchinterval(1e-6)
    reported = []
    cache = make_cache(
        name, 0 if name == "Cache" else 64, on_evict=lambda key, value, cause: reported.append((value, cause))
    )
    written = [[] for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)

    def write(key, value):
        if name == "VTTLCache":
            cache.insert(key, value, 1500)
        else:
            cache[key] = value

    def writer(tid):
        barrier.wait(timeout=60)
        for i in range(WRITES):
            key = (tid, i % KEYS)
            for value in [(tid, i), (tid, i, "again")][: 2 if i % 3 == 0 else 1]:
                write(key, value)
                written[tid].append(value)
            if i % 5 == 0:
                cache.pop((tid, (i + 7) % KEYS))
            if tid == 0 and i % 500 == 499 and _expires(name):
                _advance_clock(4000)
                if i % 1000 == 999:
                    cache.expire()

    threads = [threading.Thread(target=writer, args=(tid,)) for tid in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
        assert not thread.is_alive(), "a writer hung"
    # The writers' pops may all miss and the clock may have expired everything: remove a few
    # entries by hand so that every cause has happened.
    written.append([])
    for n in range(3):
        write(("main", n), ("main", n))
        written[-1].append(("main", n))
    del cache[("main", 2)]  # the newest: no write since could have evicted it
    cache.clear()
    assert len(cache) == 0
    counts = collections.Counter(value for value, _ in reported)
    everything = [value for values in written for value in values]
    assert len(set(everything)) == len(everything)
    assert set(counts) == set(everything), (len(counts), len(everything))
    assert [value for value, n in counts.items() if n != 1] == []
    causes = {cause for _, cause in reported}
    expected = {"replaced", "explicit"} | ({"size"} if _evicts(name) else set())
    expected |= {"expired"} if _expires(name) else set()
    assert causes == expected, causes
    assert causes <= set(CAUSES)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_every_removal_is_reported_once_across_threads(name):
    assert_child_ok("test_entry_control_reentrancy", "child_every_removal_reported_once", name)
