"""Capability mixins shared by every cache class (BEHAVIOUR.md §2-§10 and §14).

Each mixin is a set of test methods written against ``self.CACHE`` and the helpers of
:class:`CacheHarness`. ``tests/test_impls.py`` combines them into one ``Test<Class>`` per
cache class and sets the class attributes that describe what differs between policies; the
entry-control mixins (eviction listener, weigher) are combined the same way by
``tests/test_entry_control_classes.py``.
"""

import collections
import copy
import inspect
import itertools
import math
import operator
import pickle
import re
import struct
import sys
import threading
import weakref

import pytest
from cache_helpers import (
    LISTENER_LOG,
    PYPY,
    Recorder,
    catch_unraisable,
    charge,
    collect,
    collect_if_pypy,
    hashbrown_capacity,
    length_weigher,
    logging_listener,
    outcome,
)
from hypothesis import HealthCheck, given, settings, strategies as st
from models import MODELS

import cachebox
from cachebox._core import _advance_clock

CHANGED = "cache changed during iteration"
BOUND = "The cache has reached the bound"
# The interpreter's own message (BEHAVIOUR.md §2.2).
NEGATIVE = (
    "cannot convert negative integer to unsigned int" if PYPY else "can't convert negative int to unsigned"
)
# One small int key plus one small int value (BEHAVIOUR.md §3.1): ``(1).__sizeof__()`` twice on
# CPython, PyPy's fixed charge for an object without ``__sizeof__`` twice on PyPy.
INT_ENTRY = 64 + 64 if PYPY else 28 + 28
ALL_CLASSES = cachebox._core.CACHE_CLASSES


# ---------------------------------------------------------------------------------------
# Helper objects
# ---------------------------------------------------------------------------------------


class Boom(Exception):
    """Raised on purpose by the helper objects below."""


class Sized:
    """A value whose ``__sizeof__`` is chosen by the test (hashable by identity)."""

    def __init__(self, size):
        self.size = size

    def __sizeof__(self):
        return self.size

    def __repr__(self):
        return f"Sized({self.size})"


def entry(size, key=1):
    """A value that makes an entry with int key ``key`` weigh exactly ``size`` bytes (the size
    of an int depends on the Python version: ``(0).__sizeof__()`` is 24 before 3.12)."""
    return Sized(size - charge(key))


class BadSizeof:
    """``__sizeof__`` raises: the insert must fail and leave the cache unchanged."""

    def __sizeof__(self):
        raise Boom("sizeof")


class NegativeSizeof:
    def __sizeof__(self):
        return -1


class Colliding:
    """Every instance hashes to the same value; ``__eq__`` behaviour is configurable.

    ``eq`` is either an exception instance to raise, or the (possibly non-bool) object
    to return.
    """

    def __init__(self, eq=False, hash_value=1):
        self.eq = eq
        self.hash_value = hash_value

    def __hash__(self):
        return self.hash_value

    def __eq__(self, other):
        if isinstance(self.eq, BaseException):
            raise self.eq
        return self.eq


class BadHash:
    def __init__(self, error):
        self.error = error

    def __hash__(self):
        raise self.error


class RaisingValue:
    """A value whose ``__eq__`` raises ``error`` (for cache-to-cache equality)."""

    def __init__(self, error):
        self.error = error

    def __eq__(self, other):
        raise self.error

    __hash__ = object.__hash__


class ValueKey:
    """A hashable key compared by value, so deep copies are equal but not identical."""

    def __init__(self, value):
        self.value = value

    def __hash__(self):
        return hash(self.value)

    def __eq__(self, other):
        return isinstance(other, ValueKey) and other.value == self.value

    def __repr__(self):
        return f"ValueKey({self.value!r})"


class ItemsOnly:
    """Not iterable itself; only exposes ``.items()`` like a mapping."""

    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return list(self.pairs)


Pair = collections.namedtuple("Pair", "key value")

_SUBCLASSES = {}


def subclass_of(cls):
    """A module-level (hence picklable) Python subclass of ``cls``."""
    name = "User" + cls.__name__
    if name not in _SUBCLASSES:
        sub = type(name, (cls,), {"__module__": __name__, "__qualname__": name})
        _SUBCLASSES[name] = sub
        globals()[name] = sub
    return _SUBCLASSES[name]


def growth_capacity(length):
    """Capacity after growing one insert at a time (3 -> 7 -> 14 -> 28 ...: BEHAVIOUR.md §3.5)."""
    capacity = 0
    for step in itertools.chain((3, 7), (14 * 2**i for i in itertools.count())):
        capacity = step
        if capacity >= length:
            return capacity
    return capacity  # pragma: no cover


def run_in_thread(func, timeout=60.0):
    """Run ``func`` in a daemon thread; fail (instead of hanging) if it deadlocks.

    Returns the exception raised by ``func`` (or ``None``).
    """
    outcome = {}

    def target():
        try:
            func()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), "operation hung (deadlock)"
    return outcome.get("error")


# ---------------------------------------------------------------------------------------
# The harness: what a mixin may ask of the class under test
# ---------------------------------------------------------------------------------------


class CacheHarness:
    CACHE = None
    #: global TTL passed by ``make`` (TTLCache only)
    TTL = None
    #: iteration follows insertion order for entries that were never touched
    ORDERED = True
    #: the class evicts (everything but ``Cache``, which raises OverflowError instead)
    EVICTS = True
    #: eviction and ``popitem`` take the oldest untouched entry (not RR, not Cache)
    OLDEST_FIRST = True
    #: ``popitem``/``drain`` are supported (not ``Cache``)
    POPITEM = True
    #: updating an existing key invalidates running iterators (TTLCache only)
    UPDATE_INVALIDATES = False
    #: reads and updates move entries under a running iterator (LRUCache only)
    TOUCH_REORDERS = False
    #: the positional form of the constructor with every positional argument given
    FULL_POSITIONAL = (0, None)
    #: extra single-key read methods of this class (``peek``, ``get_with_expire``)
    KEY_READERS = ()
    #: extra single-key removing methods of this class (``pop_with_expire``)
    KEY_REMOVERS = ()
    #: ``insert`` and ``setdefault`` take one more positional argument (VTTL's ttl)
    WRITE_ARITY = 2

    # -- construction -------------------------------------------------------------------

    def make(self, maxsize=0, iterable=None, **kwargs):
        if self.TTL is not None:
            return self.CACHE(maxsize, self.TTL, iterable, **kwargs)
        return self.CACHE(maxsize, iterable, **kwargs)

    def make_as(self, cls, maxsize=0, iterable=None, **kwargs):
        """Like ``make`` but instantiating ``cls`` (a subclass of ``CACHE``)."""
        if self.TTL is not None:
            return cls(maxsize, self.TTL, iterable, **kwargs)
        return cls(maxsize, iterable, **kwargs)

    def filled(self, n, maxsize=0, **kwargs):
        """A cache holding ``i: i * 2`` for ``i in range(n)``, inserted in order."""
        return self.make(maxsize, {i: i * 2 for i in range(n)}, **kwargs)

    def other_class(self):
        return cachebox.FIFOCache if self.CACHE is not cachebox.FIFOCache else cachebox.LRUCache

    # -- observation --------------------------------------------------------------------

    def seq(self, iterable):
        """Iteration output in a comparable form: as is when ordered, sorted otherwise."""
        items = list(iterable)
        return items if self.ORDERED else sorted(items)

    def snapshot(self, cache):
        return (self.seq(cache.items()), len(cache), cache.memory())

    def key_readers(self, cache):
        return [getattr(cache, name) for name in self.KEY_READERS]

    def key_operations(self, cache):
        """Every method taking a key, as ``(name, callable(key))``."""

        def delete(key):
            del cache[key]

        def assign(key):
            cache[key] = 1

        ops = [
            ("getitem", lambda k: cache[k]),
            ("get", cache.get),
            ("get-default", lambda k: cache.get(k, 0)),
            ("contains", lambda k: k in cache),
            ("pop", cache.pop),
            ("pop-default", lambda k: cache.pop(k, 0)),
            ("delitem", delete),
            ("setitem", assign),
            ("insert", lambda k: cache.insert(k, 1)),
            ("setdefault", lambda k: cache.setdefault(k, 1)),
            ("update-list", lambda k: cache.update([(k, 1)])),
        ]
        ops.extend((name, getattr(cache, name)) for name in self.KEY_READERS + self.KEY_REMOVERS)
        return ops

    def assert_invalidated(self, iterator):
        with pytest.raises(RuntimeError, match=f"^{CHANGED}$"):
            next(iterator)


# ---------------------------------------------------------------------------------------
# construction and argument validation (BEHAVIOUR.md §2)
# ---------------------------------------------------------------------------------------


class ConstructionMixin(CacheHarness):
    def test_defaults_report_sys_maxsize(self):
        cache = self.make(0)
        assert cache.maxsize == sys.maxsize
        assert cache.maxmemory == sys.maxsize
        assert (len(cache), cache.capacity(), cache.memory()) == (0, 0, 0)
        assert isinstance(cache, cachebox.BaseCacheImpl)

    def test_limits_are_reported(self):
        cache = self.make(7, maxmemory=1000)
        assert (cache.maxsize, cache.maxmemory) == (7, 1000)

    def test_bool_is_an_int(self):
        assert self.make(True).maxsize == 1
        assert self.make(0, maxmemory=True).maxmemory == 1

    def test_limits_are_read_only(self):
        cache = self.make(5, maxmemory=100)
        for name in ("maxsize", "maxmemory"):
            with pytest.raises(AttributeError):
                setattr(cache, name, 3)
        assert (cache.maxsize, cache.maxmemory) == (5, 100)

    def test_keyword_arguments(self):
        extra = {"ttl": self.TTL} if self.TTL is not None else {}
        cache = self.CACHE(maxsize=3, iterable={1: 2}, capacity=2, maxmemory=10**6, **extra)
        assert (cache.maxsize, cache.maxmemory, cache.capacity()) == (3, 10**6, 3)
        assert cache[1] == 2

    def test_capacity_and_maxmemory_are_keyword_only(self):
        with pytest.raises(TypeError):
            self.CACHE(*self.FULL_POSITIONAL, 5)

    @pytest.mark.parametrize("argument", ["maxsize", "capacity", "maxmemory"])
    def test_negative_is_overflow(self, argument):
        kwargs = {"maxsize": 0, "capacity": 0, "maxmemory": 0, argument: -1}
        maxsize = kwargs.pop("maxsize")
        with pytest.raises(OverflowError, match=NEGATIVE):
            self.make(maxsize, **kwargs)

    @pytest.mark.parametrize("bad", [1.0, 2.5, None, "3", [1]])
    @pytest.mark.parametrize("argument", ["maxsize", "capacity", "maxmemory"])
    def test_non_integer_is_type_error(self, argument, bad):
        kwargs = {"maxsize": 0, "capacity": 0, "maxmemory": 0, argument: bad}
        maxsize = kwargs.pop("maxsize")
        with pytest.raises(TypeError):
            self.make(maxsize, **kwargs)

    @pytest.mark.parametrize("capacity", [2**62, sys.maxsize, 2**64 - 1])
    def test_impossible_capacity_raises(self, capacity):
        with pytest.raises((MemoryError, OverflowError)):
            self.make(0, capacity=capacity)
        with pytest.raises((MemoryError, OverflowError)):
            self.make(capacity, capacity=capacity)

    def test_capacity_beyond_usize_is_overflow(self):
        with pytest.raises(OverflowError):
            self.make(0, capacity=2**64)
        with pytest.raises(OverflowError):
            self.make(2**64)

    def test_capacity_is_capped_by_maxsize(self):
        assert self.make(5, capacity=100).capacity() == 7
        assert self.make(0, capacity=8).capacity() == 14

    def test_iterable_dict_keeps_order(self):
        cache = self.make(0, {3: "c", 1: "a", 2: "b"})
        assert self.seq(cache.items()) == self.seq([(3, "c"), (1, "a"), (2, "b")])

    @pytest.mark.parametrize(
        "source",
        [
            lambda: [(1, "a"), (2, "b")],
            lambda: ((k, v) for k, v in [(1, "a"), (2, "b")]),
            lambda: [Pair(1, "a"), Pair(2, "b")],
            lambda: ItemsOnly([(1, "a"), (2, "b")]),
            lambda: cachebox.FIFOCache(0, {1: "a", 2: "b"}),
        ],
        ids=["list", "generator", "tuple-subclass", "items-attribute", "other-cache"],
    )
    def test_iterable_forms(self, source):
        cache = self.make(0, source())
        assert self.seq(cache.items()) == [(1, "a"), (2, "b")]

    def test_iterable_not_iterable(self):
        with pytest.raises(TypeError):
            self.make(0, 42)

    def test_iterable_element_not_a_tuple(self):
        with pytest.raises(TypeError):
            self.make(0, [[1, 2]])

    @pytest.mark.parametrize("length", [0, 1, 3])
    def test_iterable_tuple_of_wrong_length(self, length):
        element = tuple(range(length))
        message = f"expected tuple of length 2, but got tuple of length {length}"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            self.make(0, [element])

    def test_iterable_unhashable_key(self):
        with pytest.raises(TypeError, match="unhashable type: 'list'"):
            self.make(0, [([1], 2)])

    def test_iterable_errors_propagate(self):
        def generator():
            yield (1, 1)
            raise Boom("from iterable")

        with pytest.raises(Boom, match="from iterable"):
            self.make(0, generator())


# ---------------------------------------------------------------------------------------
# size limits, memory accounting and capacity (BEHAVIOUR.md §3)
# ---------------------------------------------------------------------------------------


class SizeMixin(CacheHarness):
    def test_memory_of_an_int_pair(self):
        cache = self.make(0)
        cache[1] = 1
        assert cache.memory() == INT_ENTRY

    def test_memory_sums_sizeof_of_keys_and_values(self):
        cache = self.make(0)
        pairs = {"key": "value" * 10, (1, 2): [1, 2, 3], 3.5: b"bytes"}
        cache.update(pairs)
        expected = sum(charge(k) + charge(v) for k, v in pairs.items())
        assert cache.memory() == expected
        cache["key"] = entry(500)
        assert cache.memory() == expected - charge("value" * 10) + 500 - charge(1)
        del cache["key"]
        assert cache.memory() == expected - charge("key") - charge("value" * 10)
        cache.clear()
        assert cache.memory() == 0

    def test_sizeof_is_called_directly(self):
        cache = self.make(0)
        cache[1] = Sized(3)
        # No GC header as CPython's sys.getsizeof would add; PyPy charges its fixed figure.
        assert cache.memory() == (64 if PYPY else 28) + 3

    def test_class_objects_as_keys_and_values(self):
        class AType:
            pass

        class Weighted:
            def __sizeof__(self):
                return 10

        cache = self.make(0)
        cache[AType] = AType
        cache.insert(Weighted, Weighted)
        assert cache[AType] is AType and cache[Weighted] is Weighted
        assert cache.memory() == 2 * charge(AType) + 20
        assert cache.pop(Weighted) is Weighted and cache.memory() == 2 * charge(AType)

    def test_sizeof_error_leaves_cache_unchanged(self):
        cache = self.make(0, {1: 1})
        before = self.snapshot(cache)
        writes = [
            lambda: cache.__setitem__(2, BadSizeof()),
            lambda: cache.__setitem__(BadSizeof(), 2),
            lambda: cache.__setitem__(1, BadSizeof()),
            lambda: cache.insert(1, BadSizeof()),
            lambda: cache.setdefault(2, BadSizeof()),
            lambda: cache.update({3: BadSizeof()}),
        ]
        for write in writes:
            with pytest.raises(Boom, match="sizeof"):
                write()
            assert self.snapshot(cache) == before

    def test_negative_sizeof_is_overflow(self):
        cache = self.make(0, {1: 1})
        before = self.snapshot(cache)
        for key, value in [(2, NegativeSizeof()), (NegativeSizeof(), 2), (1, NegativeSizeof())]:
            with pytest.raises(OverflowError):
                cache[key] = value
            assert self.snapshot(cache) == before

    def test_entry_larger_than_maxmemory(self):
        cache = self.make(0, maxmemory=200)
        with pytest.raises(OverflowError, match=f"^{BOUND}$"):
            cache[1] = entry(201)
        assert (len(cache), cache.memory()) == (0, 0)
        cache[1] = entry(120)
        with pytest.raises(OverflowError, match=f"^{BOUND}$"):
            cache[1] = entry(201)
        assert cache[1].size == 120 - charge(1) and cache.memory() == 120

    def test_entry_exactly_maxmemory_fits(self):
        cache = self.make(0, maxmemory=100)
        cache[1] = entry(100)
        assert cache.memory() == 100 and cache.is_full()

    def test_is_full_by_length(self):
        cache = self.make(2)
        assert not cache.is_full()
        cache[1] = 1
        assert not cache.is_full()
        cache[2] = 2
        assert cache.is_full()

    def test_is_full_by_memory(self):
        cache = self.make(0, maxmemory=2 * INT_ENTRY)
        cache[1] = 1
        assert not cache.is_full()
        cache[2] = 2
        assert cache.is_full()

    def test_maxmemory_bounds_new_keys(self):
        cache = self.make(0, maxmemory=300)
        for key in range(3):
            cache[key] = entry(100, key)
        if not self.EVICTS:
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[3] = entry(100, 3)
            assert self.seq(cache.keys()) == self.seq([0, 1, 2])
            return
        cache[3] = entry(100, 3)
        assert (len(cache), cache.memory()) == (3, 300)
        assert 3 in cache
        cache[4] = entry(250, 4)  # needs two victims
        assert (len(cache), cache.memory()) == (1, 250)
        assert list(cache.keys()) == [4]
        if self.OLDEST_FIRST:
            cache = self.make(0, {k: entry(100, k) for k in range(3)}, maxmemory=300)
            cache[3] = entry(100, 3)
            assert self.seq(cache.keys()) == [1, 2, 3]

    def test_maxsize_bounds_new_keys(self):
        cache = self.make(3)
        if not self.EVICTS:
            cache.update({0: 0, 1: 1, 2: 2})
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[3] = 3
            cache[2] = "updated while full"
            assert self.seq(cache.items()) == self.seq([(0, 0), (1, 1), (2, "updated while full")])
            return
        for key in range(10):
            cache[key] = key
            assert len(cache) == min(key + 1, 3)
            assert key in cache
        if self.OLDEST_FIRST:
            assert self.seq(cache.keys()) == [7, 8, 9]

    def test_update_existing_key_respects_maxmemory(self):
        cache = self.make(0, {0: entry(100, 0), 1: entry(100)}, maxmemory=300)
        cache[0] = entry(200, 0)  # exactly at the limit: always allowed
        assert cache.memory() == 300 and len(cache) == 2
        if not self.EVICTS:
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[0] = entry(250, 0)
            assert cache[0].size == 200 - charge(0) and cache.memory() == 300
            return
        cache[0] = entry(250, 0)
        assert cache.memory() <= 300 and len(cache) == 1
        assert cache.memory() == sum(charge(k) + charge(v) for k, v in cache.items())

    @pytest.mark.parametrize("requested", [0, 1, 2, 3, 4, 7, 8, 9, 14, 15, 28, 29, 56, 100])
    def test_capacity_is_hashbrown_rounded(self, requested):
        assert self.make(0, capacity=requested).capacity() == hashbrown_capacity(requested)

    def test_capacity_growth(self):
        cache = self.make(0)
        seen = []
        for key in range(30):
            cache[key] = key
            assert cache.capacity() == growth_capacity(key + 1), key
            seen.append(cache.capacity())
        assert sorted(set(seen)) == [3, 7, 14, 28, 56]

    def test_capacity_not_below_length(self):
        cache = self.filled(20)
        for key in range(20):
            assert cache.capacity() >= len(cache)
            del cache[key]

    def test_shrink_to_fit(self):
        cache = self.filled(20)
        assert cache.capacity() == 28
        for key in range(10, 20):
            del cache[key]
        assert cache.capacity() == 28
        assert cache.shrink_to_fit() is None
        assert cache.capacity() == 14
        assert self.seq(cache.items()) == [(i, i * 2) for i in range(10)]
        cache.clear(reuse=True)
        cache.shrink_to_fit()
        assert cache.capacity() == 0

    def test_clear_reuse_keeps_capacity(self):
        cache = self.filled(20)
        assert cache.clear(reuse=True) is None
        assert (len(cache), cache.memory(), cache.capacity()) == (0, 0, 28)

    def test_clear_releases_capacity(self):
        cache = self.filled(20)
        assert cache.clear() is None
        assert (len(cache), cache.memory(), cache.capacity()) == (0, 0, 0)
        cache = self.filled(20)
        cache.clear(reuse=False)
        assert cache.capacity() == 0

    def test_clear_reuse_is_keyword_only(self):
        cache = self.filled(5)
        with pytest.raises(TypeError):
            cache.clear(True)
        assert len(cache) == 5


# ---------------------------------------------------------------------------------------
# keys: hashing, equality, error propagation (BEHAVIOUR.md §4)
# ---------------------------------------------------------------------------------------


class KeysMixin(CacheHarness):
    def test_identity_is_checked_first(self):
        nan = float("nan")
        never_equal = Colliding(eq=False)
        raising = Colliding(eq=Boom("eq must not be called"), hash_value=2)
        cache = self.make(0, {nan: 1, never_equal: 2, raising: 3})
        assert cache[nan] == 1 and cache.get(never_equal) == 2 and cache[raising] == 3
        assert nan in cache and never_equal in cache and raising in cache
        # Another NaN object (PyPy's ``is`` compares floats by their bits: other bits, then).
        other_nan = struct.unpack("d", struct.pack("Q", 0x7FF8_0000_0000_0001))[0]
        assert math.isnan(other_nan) and other_nan is not nan
        assert other_nan not in cache
        cache[raising] = 4
        assert len(cache) == 3 and cache.pop(raising) == 4

    def test_eq_result_judged_by_truth_value(self):
        falsy = self.make(0, {Colliding(eq=0): "stored"})
        assert falsy.get(Colliding(eq=[]), "missing") == "missing"
        assert Colliding(eq="") not in falsy
        truthy = self.make(0, {Colliding(eq="yes"): "stored"})
        assert truthy[Colliding(eq=[1])] == "stored"
        assert truthy.get(Colliding(eq=1)) == "stored"
        assert len(truthy) == 1

    def test_eq_error_propagates_unchanged(self):
        error = Boom("eq")
        stored = Colliding(eq=error)
        cache = self.make(0, {stored: "stored"})
        before = self.snapshot(cache)
        for name, operation in self.key_operations(cache):
            with pytest.raises(Boom) as info:
                operation(Colliding(eq=error))
            assert info.value is error, name
            assert self.snapshot(cache) == before, name
        with pytest.raises(Boom):
            cache.update({Colliding(eq=error): 1})
        assert self.snapshot(cache) == before

    def test_hash_error_propagates(self):
        error = Boom("hash")
        cache = self.make(0, {1: 1})
        before = self.snapshot(cache)
        for name, operation in self.key_operations(cache):
            with pytest.raises(Boom) as info:
                operation(BadHash(error))
            assert info.value is error, name
            assert self.snapshot(cache) == before, name

    def test_unhashable_key(self):
        cache = self.make(0, {1: 1})
        for name, operation in self.key_operations(cache):
            with pytest.raises(TypeError, match="unhashable type: 'list'"):
                operation([1, 2])
            assert self.snapshot(cache)[0] == [(1, 1)], name

    def test_stored_key_is_kept_on_update(self):
        cache = self.make(0)
        cache[1] = 1
        cache[1.0] = 2
        assert cache.insert(True, 3) == 2
        keys = list(cache.keys())
        assert keys == [1] and type(keys[0]) is int
        assert cache[1] == 3

    @pytest.mark.parametrize("key", [(1, 2), "missing", 99, None, ()])
    def test_key_error_carries_the_key(self, key):
        cache = self.make(0, {1: 1})
        with pytest.raises(KeyError) as info:
            cache[key]
        assert info.value.args == (key,)
        with pytest.raises(KeyError) as info:
            del cache[key]
        assert info.value.args == (key,)


# ---------------------------------------------------------------------------------------
# methods common to all classes (BEHAVIOUR.md §5)
# ---------------------------------------------------------------------------------------


class MethodsMixin(CacheHarness):
    def test_len_bool_is_empty(self):
        cache = self.make(0)
        assert (len(cache), bool(cache), cache.is_empty()) == (0, False, True)
        cache[1] = 1
        assert (len(cache), bool(cache), cache.is_empty()) == (1, True, False)

    def test_contains(self):
        cache = self.make(0, {1: None})
        assert 1 in cache and 2 not in cache and "1" not in cache

    def test_getitem_setitem_delitem(self):
        cache = self.make(0)
        cache["a"] = 1
        assert cache["a"] == 1
        cache["a"] = 2
        assert cache["a"] == 2 and len(cache) == 1
        del cache["a"]
        assert "a" not in cache and len(cache) == 0
        with pytest.raises(KeyError):
            del cache["a"]
        with pytest.raises(KeyError):
            cache["a"]

    def test_insert_returns_old_value(self):
        cache = self.make(0)
        assert cache.insert(1, "a") is None
        assert cache.insert(1, "b") == "a"
        assert cache.insert(1, None) == "b"
        assert cache[1] is None and len(cache) == 1

    def test_get(self):
        cache = self.make(0, {1: "a"})
        assert cache.get(1) == "a"
        assert cache.get(2) is None
        assert cache.get(2, "d") == "d"
        assert cache.get(2, default="d") == "d"

    def test_pop_never_raises(self):
        cache = self.make(0, {1: "a", 2: "b"})
        assert cache.pop(1) == "a" and 1 not in cache
        assert cache.pop(1) is None
        assert cache.pop(1, "d") == "d"
        assert cache.pop(2, default="d") == "b"
        assert len(cache) == 0 and cache.memory() == 0

    def test_setdefault(self):
        cache = self.make(0, {1: "a"})
        assert cache.setdefault(1, "b") == "a" and cache[1] == "a"
        assert cache.setdefault(2, "b") == "b" and cache[2] == "b"
        assert cache.setdefault(3) is None and 3 in cache and cache[3] is None
        assert cache.setdefault(4, default=4) == 4
        assert len(cache) == 4

    def test_popitem(self):
        if not self.POPITEM:
            cache = self.make(0, {1: 1})
            with pytest.raises(NotImplementedError):
                cache.popitem()
            with pytest.raises(NotImplementedError):
                self.make(0).popitem()
            assert len(cache) == 1
            return
        pairs = {i: str(i) for i in range(5)}
        cache = self.make(0, pairs)
        popped = [cache.popitem() for _ in range(5)]
        assert sorted(popped) == sorted(pairs.items())
        if self.OLDEST_FIRST:
            assert popped == list(pairs.items())
        assert (len(cache), cache.memory()) == (0, 0)

    def test_popitem_empty_is_bare_key_error(self):
        if not self.POPITEM:
            with pytest.raises(NotImplementedError):
                self.make(0).popitem()
            return
        with pytest.raises(KeyError) as info:
            self.make(0).popitem()
        assert info.value.args == () and str(info.value) == ""

    def test_drain(self):
        if not self.POPITEM:
            cache = self.filled(5)
            for n in (0, 1, 10):
                with pytest.raises(NotImplementedError):
                    cache.drain(n)
            assert len(cache) == 5
            return
        cache = self.filled(5)
        assert cache.drain(0) == 0 and cache.drain(-3) == 0 and len(cache) == 5
        assert cache.drain(1) == 1 and len(cache) == 4
        assert cache.drain(2) == 2 and len(cache) == 2
        if self.OLDEST_FIRST:
            assert list(cache.keys()) == [3, 4]
        assert cache.drain(10) == 2 and len(cache) == 0
        assert cache.drain(1) == 0 and cache.memory() == 0

    @pytest.mark.parametrize(
        "source",
        [
            lambda: {2: "b", 3: "c"},
            lambda: [(2, "b"), (3, "c")],
            lambda: iter([Pair(2, "b"), Pair(3, "c")]),
            lambda: ItemsOnly([(2, "b"), (3, "c")]),
            lambda: cachebox.LRUCache(0, {2: "b", 3: "c"}),
        ],
        ids=["dict", "list", "iterator", "items-attribute", "other-cache"],
    )
    def test_update_forms(self, source):
        cache = self.make(0, {1: "a", 2: "x"})
        assert cache.update(source()) is None
        assert sorted(cache.items()) == [(1, "a"), (2, "b"), (3, "c")]

    def test_update_from_same_class(self):
        cache = self.make(0, {1: "a"})
        cache.update(self.make(0, {2: "b"}))
        assert self.seq(cache.items()) == [(1, "a"), (2, "b")]

    def test_update_with_itself_is_a_no_op(self):
        cache = self.filled(5)
        before = self.snapshot(cache)
        assert run_in_thread(lambda: cache.update(cache)) is None
        assert self.snapshot(cache) == before

    def test_update_rejects_non_tuples(self):
        cache = self.make(0)
        with pytest.raises(TypeError):
            cache.update([[1, 2]])
        with pytest.raises(TypeError):
            cache.update(42)
        with pytest.raises(TypeError):
            cache.update(["ab"])

    def test_update_rejects_wrong_length_tuples(self):
        cache = self.make(0)
        message = "expected tuple of length 2, but got tuple of length 3"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            cache.update([(1, 2, 3)])
        assert len(cache) == 0

    def test_update_is_not_atomic(self):
        cache = self.make(0)
        with pytest.raises(TypeError):
            cache.update([(1, 1), (2, 2), [3, 3], (4, 4)])
        assert self.seq(cache.keys()) == [1, 2]

    def test_extra_arguments_are_type_errors(self):
        cache = self.make(0, {1: 1})
        write_args = (1, 2) + (None,) * (self.WRITE_ARITY - 2) + (3,)
        calls = [
            lambda: cache.get(1, 2, 3),
            lambda: cache.pop(1, 2, 3),
            lambda: cache.insert(*write_args),
            lambda: cache.setdefault(*write_args),
            lambda: cache.clear(True),
            lambda: cache.keys(1),
            lambda: cache.values(1),
            lambda: cache.items(1),
            lambda: cache.is_empty(1),
            lambda: cache.capacity(1),
            lambda: cache.memory(1),
            lambda: cache.shrink_to_fit(1),
        ]
        for call in calls:
            with pytest.raises(TypeError):
                call()
        assert list(cache.items()) == [(1, 1)]


# ---------------------------------------------------------------------------------------
# iteration, views and invalidation (BEHAVIOUR.md §8)
# ---------------------------------------------------------------------------------------


class IterationMixin(CacheHarness):
    def mutations(self, cache):
        """Changes that must invalidate running iterators, by name."""
        result = {
            "insert-new": lambda: cache.insert(100, 1),
            "setitem-new": lambda: cache.__setitem__(100, 1),
            "setdefault-new": lambda: cache.setdefault(100, 1),
            "update-new": lambda: cache.update({100: 1}),
            "delitem": lambda: cache.__delitem__(0),
            "pop": lambda: cache.pop(0),
            "clear": cache.clear,
            "clear-reuse": lambda: cache.clear(reuse=True),
            "shrink_to_fit": cache.shrink_to_fit,
        }
        if self.POPITEM:
            result["popitem"] = cache.popitem
            result["drain"] = lambda: cache.drain(1)
        return result

    def test_views_agree(self):
        cache = self.filled(10)
        items = list(cache.items())
        assert all(type(item) is tuple and len(item) == 2 for item in items)
        assert [k for k, _ in items] == list(cache.keys()) == list(cache) == list(iter(cache))
        assert [v for _, v in items] == list(cache.values())
        assert self.seq(items) == [(i, i * 2) for i in range(10)]

    @pytest.mark.parametrize("method", ["keys", "values", "items", "__iter__"])
    def test_views_are_single_use_iterators(self, method):
        cache = self.filled(3)
        view = getattr(cache, method)()
        assert iter(view) is view
        assert len(list(view)) == 3
        assert list(view) == []
        with pytest.raises(StopIteration):
            next(view)
        with pytest.raises(TypeError):
            len(getattr(cache, method)())

    def test_empty_cache_iterates_nothing(self):
        cache = self.make(0)
        assert list(cache) == list(cache.keys()) == list(cache.values()) == list(cache.items()) == []

    def test_iterator_is_created_by_the_method_call(self):
        cache = self.filled(3)
        view = cache.items()
        cache[100] = 1
        self.assert_invalidated(view)

    def test_changes_invalidate_iterators(self):
        failures = []
        for name in self.mutations(self.filled(1)):
            for method in ("keys", "values", "items"):
                cache = self.filled(3)
                iterator = getattr(cache, method)()
                next(iterator)
                self.mutations(cache)[name]()
                try:
                    next(iterator)
                except RuntimeError as exc:
                    if str(exc) != CHANGED:
                        failures.append((name, method, str(exc)))
                else:
                    failures.append((name, method, "no error"))
        assert failures == []

    def test_check_happens_on_the_final_next(self):
        cache = self.filled(3)
        iterator = iter(cache)
        for _ in range(3):
            next(iterator)
        cache[100] = 1
        self.assert_invalidated(iterator)

    def test_updating_existing_values_during_iteration(self):
        cache = self.filled(5)
        iterator = cache.items()

        def double_all():
            # bounded, so that an iterator that never ends fails instead of hanging
            for key, value in itertools.islice(iterator, 50):
                cache[key] = value * 2

        if self.UPDATE_INVALIDATES:
            with pytest.raises(RuntimeError, match=f"^{CHANGED}$"):
                double_all()
            return
        double_all()
        assert next(iterator, "exhausted") == "exhausted", "iteration did not terminate"
        if not self.TOUCH_REORDERS:
            assert self.seq(cache.items()) == [(i, i * 4) for i in range(5)]

    def test_reads_during_iteration_never_raise(self):
        cache = self.filled(10)
        iterator = cache.keys()
        seen = []
        for key in itertools.islice(iterator, 100):
            seen.append(key)
            assert cache[key] == key * 2 and cache.get(key) == key * 2 and key in cache
            assert cache.get("missing") is None and len(cache) == 10
            for reader in self.key_readers(cache):
                reader(key)
        assert next(iterator, "exhausted") == "exhausted", "iteration did not terminate"
        assert set(seen) <= set(range(10)) and seen
        if not self.TOUCH_REORDERS:
            assert seen == self.seq(range(10)) or not self.ORDERED


# ---------------------------------------------------------------------------------------
# equality, ordering, hashing (BEHAVIOUR.md §9.1, §9.2)
# ---------------------------------------------------------------------------------------


def check_equality(a, b, expected):
    """``a == b`` is ``expected`` and ``a != b`` is its negation (BEHAVIOUR.md §9.1)."""
    assert operator.eq(a, b) is expected
    assert operator.ne(a, b) is (not expected)


class EqualityMixin(CacheHarness):
    def assert_equal(self, a, b, expected):
        check_equality(a, b, expected)

    def test_equal_contents(self):
        self.assert_equal(self.filled(5), self.filled(5), True)
        self.assert_equal(self.make(0), self.make(0), True)

    def test_order_and_capacity_are_ignored(self):
        forward = self.make(0, [(i, i) for i in range(5)])
        backward = self.make(0, [(i, i) for i in reversed(range(5))], capacity=100)
        self.assert_equal(forward, backward, True)

    def test_values_are_compared_with_eq(self):
        self.assert_equal(self.make(0, {1: 1}), self.make(0, {1: 1.0}), True)
        self.assert_equal(self.make(0, {1: 1}), self.make(0, {1: 2}), False)

    def test_differences(self):
        base = self.filled(3, maxsize=10)
        self.assert_equal(base, self.filled(3, maxsize=11), False)
        self.assert_equal(base, self.filled(3, maxsize=10, maxmemory=10**6), False)
        self.assert_equal(base, self.filled(2, maxsize=10), False)
        self.assert_equal(base, self.make(10, {0: 0, 1: 2, 3: 4}), False)

    def test_self_comparison(self):
        cache = self.make(0, {1: RaisingValue(Boom("never called"))})
        self.assert_equal(cache, cache, True)

    @pytest.mark.parametrize("other", [{1: 1}, [(1, 1)], None, 1], ids=repr)
    def test_no_comparison_with_foreign_objects(self, other):
        cache = self.make(0, {1: 1})
        self.assert_equal(cache, other, False)
        self.assert_equal(other, cache, False)

    def test_no_comparison_across_classes(self):
        other = self.other_class()(0, {1: 1})
        self.assert_equal(self.make(0, {1: 1}), other, False)
        self.assert_equal(other, self.make(0, {1: 1}), False)

    def test_subclass_compares_with_base(self):
        sub = self.make_as(subclass_of(self.CACHE), 0, {1: 1})
        self.assert_equal(sub, self.make(0, {1: 1}), True)
        self.assert_equal(self.make(0, {1: 1}), sub, True)
        self.assert_equal(sub, self.make(0, {1: 2}), False)

    def test_value_eq_errors_propagate(self):
        error = Boom("value eq")
        a = self.make(0, {1: RaisingValue(error)})
        b = self.make(0, {1: RaisingValue(error)})
        with pytest.raises(Boom) as info:
            a == b  # noqa: B015
        assert info.value is error
        with pytest.raises(Boom):
            a != b  # noqa: B015

    def test_key_eq_errors_propagate(self):
        error = Boom("key eq")
        a = self.make(0, {Colliding(eq=error): 1})
        b = self.make(0, {Colliding(eq=error): 1})
        with pytest.raises(Boom):
            a == b  # noqa: B015

    @pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
    def test_ordering_is_type_error(self, compare):
        with pytest.raises(TypeError):
            compare(self.make(0), self.make(0))

    def test_unhashable(self):
        with pytest.raises(TypeError, match=f"unhashable type: '{self.CACHE.__name__}'"):
            hash(self.make(0))


# ---------------------------------------------------------------------------------------
# repr / str (BEHAVIOUR.md §9.3) and __sizeof__ (§3.6)
# ---------------------------------------------------------------------------------------


class ReprMixin(CacheHarness):
    def head(self, cls, length, maxsize):
        ttl = f", ttl={self.TTL:f}" if self.TTL is not None else ""
        return f"{cls.__module__}.{cls.__name__}[{length}/{maxsize}{ttl}]"

    def test_empty_repr_exact(self):
        cache = self.make(0)
        expected = self.head(self.CACHE, 0, 9223372036854775807) + "({})"
        assert expected.startswith(f"cachebox.{self.CACHE.__name__}[0/9223372036854775807")
        assert repr(cache) == str(cache) == expected

    def test_repr_with_items(self):
        cache = self.make(10, {1: "a", 2: "b"})
        head = self.head(self.CACHE, 2, 10)
        candidates = {head + "({1: 'a', 2: 'b'})"}
        if not self.ORDERED:
            candidates.add(head + "({2: 'b', 1: 'a'})")
        assert repr(cache) in candidates
        assert str(cache) == repr(cache)

    def test_repr_uses_item_reprs(self):
        cache = self.make(0, {"k": ("t", None)})
        assert repr(cache).endswith("({'k': ('t', None)})")

    @pytest.mark.parametrize("length", [50, 51, 52, 1000])
    def test_long_repr_is_elided(self, length):
        cache = self.make(0, {i: i for i in range(length)})
        shown = list(cache.items())[: min(length, 51)]
        body = ", ".join(f"{k!r}: {v!r}" for k, v in shown)
        tail = f", ... {length - 51} more ...}}" if length > 50 else "}"
        expected = f"{self.head(self.CACHE, length, sys.maxsize)}({{{body}{tail})"
        assert repr(cache) == expected
        if self.ORDERED and length == 1000:
            literal = ", ".join(f"{i}: {i}" for i in range(51))
            assert repr(cache).endswith("({" + literal + ", ... 949 more ...})")

    def test_subclass_repr_uses_own_name(self):
        sub = subclass_of(self.CACHE)
        cache = self.make_as(sub, 0)
        assert repr(cache) == str(cache) == self.head(sub, 0, sys.maxsize) + "({})"
        assert repr(cache).startswith(f"{__name__}.User{self.CACHE.__name__}[")


class SizeofMixin(CacheHarness):
    def test_fresh_cache_is_zero(self):
        assert self.make(0).__sizeof__() == 0
        assert self.make(0, capacity=0).__sizeof__() == 0

    def test_sizeof_is_a_non_negative_int(self):
        value = self.filled(20).__sizeof__()
        assert isinstance(value, int) and value > 0

    def test_clear_reuse_keeps_allocation(self):
        cache = self.filled(20)
        before = cache.__sizeof__()
        cache.clear(reuse=True)
        assert cache.__sizeof__() >= before

    def test_clear_drops_allocation(self):
        cache = self.filled(20)
        before = cache.__sizeof__()
        cache.clear()
        assert cache.__sizeof__() != before


# ---------------------------------------------------------------------------------------
# pickle, copy, deepcopy (BEHAVIOUR.md §10)
# ---------------------------------------------------------------------------------------


class PickleCopyMixin(CacheHarness):
    def touched(self):
        """A cache whose policy state differs from plain insertion order where possible."""
        cache = self.make(0, {i: (i, str(i)) for i in range(10)}, maxmemory=10**6)
        for key in (3, 1, 3, 7):
            cache[key]
        return cache

    def order(self, cache):
        keys = list(cache.keys())
        return keys if self.ORDERED else sorted(keys, key=repr)

    def assert_same_cache(self, original, clone, cls=None, memory=True):
        assert type(clone) is (cls or type(original))
        assert clone == original
        assert self.order(clone) == self.order(original)
        assert (clone.maxsize, clone.maxmemory) == (original.maxsize, original.maxmemory)
        assert clone.capacity() == original.capacity()
        if memory:
            assert clone.memory() == original.memory()

    @pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_round_trip(self, protocol):
        cache = self.touched()
        expected_items = list(cache.items())
        clone = pickle.loads(pickle.dumps(cache, protocol))
        self.assert_same_cache(cache, clone)
        assert self.seq(clone.items()) == self.seq(expected_items)

    def test_pickle_empty_and_bounded(self):
        for cache in (self.make(0), self.make(5, maxmemory=1000), self.filled(5, maxsize=5)):
            self.assert_same_cache(cache, pickle.loads(pickle.dumps(cache)))

    def test_pickle_keeps_subclass_and_attributes(self):
        sub = subclass_of(self.CACHE)
        cache = self.make_as(sub, 5, {1: "a"})
        cache.extra = {"note": [1, 2]}
        clone = pickle.loads(pickle.dumps(cache))
        self.assert_same_cache(cache, clone, cls=sub)
        assert clone.extra == {"note": [1, 2]}

    def test_pickle_keeps_unicode_and_nested_values(self):
        cache = self.make(0, {"ключ": {"nested": [1, (2, 3)]}, (1, "a"): frozenset({1})})
        clone = pickle.loads(pickle.dumps(cache))
        assert clone == cache and clone["ключ"] == {"nested": [1, (2, 3)]}

    @pytest.mark.parametrize("how", ["method", "copy.copy"])
    def test_copy(self, how):
        cache = self.touched()
        clone = cache.copy() if how == "method" else copy.copy(cache)
        self.assert_same_cache(cache, clone)
        assert all(a is b for a, b in zip(clone.values(), cache.values()))
        cache = self.make(0, {i: [i] for i in range(10)})
        clone = cache.copy() if how == "method" else copy.copy(cache)
        clone[1].append("shared")
        assert cache[1] == [1, "shared"]
        clone.insert(100, 100)
        del clone[2]
        assert 100 not in cache and 2 in cache and len(cache) == 10

    def test_copy_keeps_subclass(self):
        sub = subclass_of(self.CACHE)
        cache = self.make_as(sub, 0, {1: 1})
        for clone in (cache.copy(), copy.copy(cache), copy.deepcopy(cache)):
            assert type(clone) is sub and clone == cache

    def test_deepcopy(self):
        key = ValueKey("k")
        shared = {"shared": [1]}
        cache = self.make(7, {key: shared, 2: shared}, maxmemory=10**6)
        clone = copy.deepcopy(cache)
        self.assert_same_cache(cache, clone, memory=False)
        assert clone[2] is not shared and clone[2] == shared
        assert clone[key] is clone[2]  # the memo keeps shared structure shared
        assert all(k is not key for k in clone)
        clone[2]["shared"].append(2)
        assert shared == {"shared": [1]}

    def test_malformed_state_is_rejected(self):
        # any malformed state (duplicate keys included) is a ValueError or TypeError (BEHAVIOUR.md §10.3)
        reconstruct, args, state = self.make(5, {1: "a", 2: "b"}).__reduce_ex__(2)[:3]
        malformed = [None, 1, "state", (), (1, 2), [1, 2, 3], {"a": 1}]
        for index, part in enumerate(state if isinstance(state, tuple) else ()):
            if isinstance(part, list) and part:
                duplicated = list(state)
                duplicated[index] = part + part[:1]
                malformed.append(tuple(duplicated))
        for bad in malformed:
            with pytest.raises((TypeError, ValueError)):
                reconstruct(*args).__setstate__(bad)

    def test_deepcopy_respects_memo(self):
        value = [1, 2]
        sentinel = object()
        memo = {id(value): sentinel}
        clone = copy.deepcopy(self.make(0, {1: value}), memo)
        assert clone[1] is sentinel


class ExplicitCapacityPickleMixin(CacheHarness):
    """The payload carries the capacity, for every class (BEHAVIOUR.md §10.1, §10.3)."""

    def test_pickle_keeps_explicit_capacity(self):
        cache = self.make(0, {1: 1}, capacity=100)
        clone = pickle.loads(pickle.dumps(cache))
        assert clone.capacity() == cache.capacity() == 112


# ---------------------------------------------------------------------------------------
# re-entrancy and threads (BEHAVIOUR.md §5.2, §14)
# ---------------------------------------------------------------------------------------


class ReentrancyMixin(CacheHarness):
    # Re-entry while the cache is locked raises RuntimeError, never hangs (BEHAVIOUR.md §14.3).
    # An implementation that runs the callout without holding the lock may succeed instead.

    def test_eq_reentering_the_cache_never_hangs(self):
        cache = self.make(0)
        found = []

        class Reentrant(Colliding):
            __hash__ = Colliding.__hash__

            def __eq__(self, other):
                return len(cache) > 0

        cache[Reentrant()] = 1
        error = run_in_thread(lambda: found.append(cache.get(Reentrant())))
        assert isinstance(error, RuntimeError) or (error is None and found == [1])
        assert len(cache) == 1

    def test_update_iterable_reading_the_cache_never_hangs(self):
        cache = self.make(0, {0: 0})

        def pairs():
            yield (1, 1)
            yield (2, cache.get(0))

        error = run_in_thread(lambda: cache.update(pairs()))
        assert isinstance(error, RuntimeError) or (error is None and cache.get(2) == 0)

    def test_hash_may_use_the_cache(self):
        cache = self.make(0, {0: 0})

        class Peeking:
            def __hash__(self):
                len(cache)
                return 7

        key = Peeking()
        assert run_in_thread(lambda: cache.__setitem__(key, 1)) is None
        assert cache[key] == 1

    def test_slow_eq_in_another_thread_does_not_deadlock(self):
        import time

        cache = self.make(0)
        entered = threading.Event()

        class Slow(Colliding):
            __hash__ = Colliding.__hash__

            def __eq__(self, other):
                entered.set()
                time.sleep(0.2)
                return False

        cache[Slow()] = 1
        worker = threading.Thread(target=lambda: cache.get(Slow()), daemon=True)
        worker.start()
        assert entered.wait(60)
        assert run_in_thread(lambda: cache.get(0)) is None
        worker.join(60)
        assert not worker.is_alive()

    def test_opposite_comparisons_do_not_deadlock(self):
        import time

        class SlowValue:
            def __eq__(self, other):
                time.sleep(0.001)
                return True

            __hash__ = object.__hash__

        a = self.make(0, {i: SlowValue() for i in range(50)})
        b = self.make(0, {i: SlowValue() for i in range(50)})
        results = []
        threads = [
            threading.Thread(target=lambda: results.append(a == b), daemon=True),
            threading.Thread(target=lambda: results.append(b == a), daemon=True),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        assert results == [True, True]

    def test_concurrent_writers(self):
        cache = self.make(0)

        def writer(base):
            for i in range(500):
                cache[base + i] = i
                cache.get(base + i)

        threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(cache) == 2000
        assert cache.memory() == sum(charge(k) + charge(v) for k, v in cache.items())


# ---------------------------------------------------------------------------------------
# Model-based check: with no limits every class follows its reference model (models.py), which
# then behaves like a dict that keeps the policy's order
# ---------------------------------------------------------------------------------------

_OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["set", "insert", "del", "pop", "get", "setdefault", "update"]),
        st.integers(0, 15),
        st.integers(),
    ),
    max_size=60,
)


class ModelMixin(CacheHarness):
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    )
    @given(_OPERATIONS)
    def test_behaves_like_a_dict(self, operations):
        cache = self.make(0)
        model_class = MODELS[self.CACHE.__name__]
        model = model_class(0) if self.TTL is None else model_class(0, self.TTL)
        for name, key, value in operations:
            if name == "set":
                cache[key] = value
                model.setitem(key, value)
            elif name == "insert":
                assert cache.insert(key, value) == model.insert(key, value)
            elif name == "del":
                # both delete the key, or both raise KeyError(key)
                deleted = outcome(lambda: cache.__delitem__(key))  # noqa: B023 (called right here)
                assert deleted == outcome(lambda: model.delitem(key))  # noqa: B023
            elif name == "pop":
                assert cache.pop(key, "d") == model.pop(key, "d")
            elif name == "get":
                assert cache.get(key, "d") == model.get(key, "d")
            elif name == "setdefault":
                assert cache.setdefault(key, value) == model.setdefault(key, value)
            else:
                cache.update({key: value, key + 100: value})
                model.update({key: value, key + 100: value})
            assert len(cache) == model.len()
        if self.ORDERED:
            assert list(cache.items()) == model.items()
        else:
            assert sorted(cache.items()) == sorted(model.items())
        assert cache.memory() == model.memory()
        assert cache.capacity() >= len(cache)


class Released:
    """A weak-referenceable value (or key: hashable by identity)."""


class DirectSlotsMixin(CacheHarness):
    """``c[k]``, ``k in c``, ``c[k] = v``, ``del c[k]`` and ``c.get`` run through C functions of
    cachebox's own (``src/mapping_slots.rs``), outside pyo3's trampoline. These pin what they must
    keep: references given up are released at once (not deferred), errors and argument
    handling are pyo3's, and subclasses still override them."""

    @staticmethod
    def _watched(c, key):
        """Stores a fresh ``Released`` value under ``key``; returns a weak reference to it."""
        value = Released()
        c[key] = value
        return weakref.ref(value)

    def test_replaced_value_is_released_at_once(self):
        c = self.make(10)
        gone = self._watched(c, "k")
        c["k"] = 1
        collect_if_pypy(gone)
        assert gone() is None

    def test_deleted_entry_is_released_at_once(self):
        c = self.make(10)
        key, value = Released(), Released()
        gone = (weakref.ref(key), weakref.ref(value))
        c[key] = value
        del c[key]
        del key, value
        collect_if_pypy(*gone)
        assert gone[0]() is None and gone[1]() is None

    def test_evicted_or_cleared_entry_is_released_at_once(self):
        c = self.make(2)
        gone = self._watched(c, "first")
        if self.EVICTS:
            # Until it is the one evicted (RR picks at random); listing the keys touches none.
            for i in range(10_000):
                if "first" not in list(c):
                    break
                c[i] = i
        else:
            c.clear()
        assert "first" not in list(c)
        collect_if_pypy(gone)
        assert gone() is None

    def test_missing_key_error_holds_the_key_until_it_goes(self):
        c = self.make(10)
        key = Released()
        gone = weakref.ref(key)
        with pytest.raises(KeyError) as info:
            c[key]
        assert info.value.args == (key,)
        del info, key
        collect_if_pypy(gone)
        assert gone() is None

    def test_int_sizes_are_read_from_the_object(self):
        # Exact ints are measured from their header (src/convert.rs); the charge must still be
        # what ``__sizeof__`` says, for every digit count and sign, and subclasses (bool too)
        # keep their own ``__sizeof__``.
        class Small(int):
            def __sizeof__(self):
                return 3

        ints = [0, 1, -1, 2**30 - 1, 2**30, -(2**30), 2**60, -(2**64), 10**100, -(10**300), True, Small(7)]
        for n in ints:
            c = self.make(10)
            c[n] = n
            assert c.memory() == 2 * charge(n), n

    def test_get_argument_forms(self):
        c = self.make(10, {1: "one"})
        assert c.get(1) == "one"
        assert c.get(2) is None
        assert c.get(2, "d") == "d"
        assert c.get(key=2, default="d") == "d"
        assert c.get(1, default="d") == "one"
        assert self.CACHE.get(c, 1) == "one"
        for call in (lambda: c.get(), lambda: c.get(1, 2, 3), lambda: c.get(k=1), lambda: c.get([1])):
            with pytest.raises(TypeError):
                call()
        with pytest.raises(TypeError):
            self.CACHE.get(self.other_class()(1), 1)
        assert str(inspect.signature(self.CACHE.get)) == "(self, /, key, default=None)"

    def test_slot_wrappers_and_direct_slots_agree(self):
        c = self.make(10, {1: "one"})
        assert c[1] == self.CACHE.__getitem__(c, 1) == "one"
        assert (1 in c) is self.CACHE.__contains__(c, 1) is True
        self.CACHE.__setitem__(c, 2, "two")
        c[3] = "three"
        assert c[2] == "two" and self.CACHE.__getitem__(c, 3) == "three"
        self.CACHE.__delitem__(c, 2)
        del c[3]
        assert list(c) == [1]
        with pytest.raises(KeyError):
            del c[3]
        with pytest.raises(TypeError):
            c[[1]]
        with pytest.raises(TypeError):
            [1] in c  # noqa: B015 (the containment test is the check)

    def test_subclass_overrides_and_inherits(self):
        class Overriding(self.CACHE):
            def __getitem__(self, key):
                return ("sub", super().__getitem__(key))

            def __contains__(self, key):
                return key == "always"

            def __setitem__(self, key, value):
                super().__setitem__(key, value * 2)

            def get(self, key, default=None):
                return "sub-get"

        c = self.make_as(Overriding, 10)
        c[1] = 5
        assert c[1] == ("sub", 10)
        assert "always" in c and 1 not in c
        assert c.get(1) == "sub-get"

        class Plain(self.CACHE):
            pass

        p = self.make_as(Plain, 10)
        p[1] = 5
        assert p[1] == 5 and 1 in p and p.get(1) == 5 and p.get(2, 0) == 0
        del p[1]
        assert len(p) == 0


# ---------------------------------------------------------------------------------------
# Entry control: the eviction listener (``on_evict``) and the weigher. Not part of
# ``AllMixins``: ``tests/test_entry_control_classes.py`` applies them to each class.
# ---------------------------------------------------------------------------------------


class RaisingRecorder(Recorder):
    """A listener that records its call, then raises ``Boom(key)``."""

    def __call__(self, key, value, cause):
        super().__call__(key, value, cause)
        raise Boom(key)


class LengthWeigher:
    """A weigher object (not a function, so that a ``deepcopy`` that copied it would be seen):
    ``len(value)`` units."""

    def __call__(self, key, value):
        return len(value)


def weigh_by_value(key, value):
    """A weigher for int values: the value is the weight."""
    return value


def weigh_power_of_ten(key, value):
    """A weigher for int keys: ``10**key``, so a sum of weights says which keys it counts."""
    return 10**key


class EntryControlHarness(CacheHarness):
    """What the entry-control mixins add to the harness: every write of one key, and caches
    whose entries expire."""

    #: How long each write of :meth:`put_expiring` lives, in seconds.
    LIFETIME = 10

    def writes(self, cache, key, value, miss=True):
        """Every write of ``key: value``, as ``(name, callable)``; ``setdefault`` only for a key
        that is not live (``miss``), since a hit writes nothing. (Asking the cache whether the
        key is there would sweep a TTLCache.)"""
        ops = [
            ("setitem", lambda: cache.__setitem__(key, value)),
            ("insert", lambda: cache.insert(key, value)),
            ("update-dict", lambda: cache.update({key: value})),
            ("update-pairs", lambda: cache.update([(key, value)])),
        ]
        if miss:
            ops.append(("setdefault", lambda: cache.setdefault(key, value)))
        return ops

    def make_expiring(self, maxsize=0, **kwargs):
        """A cache in which :meth:`put_expiring` writes live :data:`LIFETIME` seconds."""
        if self.TTL is not None:
            return self.CACHE(maxsize, self.LIFETIME, **kwargs)
        return self.CACHE(maxsize, **kwargs)

    def put_expiring(self, cache, key, value, lifetime=None):
        if self.TTL is not None:
            assert lifetime is None, "a TTLCache has one lifetime"
            cache[key] = value
        else:
            cache.insert(key, value, lifetime or self.LIFETIME)

    def stale(self, **kwargs):
        """A cache in which ``0: "a"`` and ``1: "b"`` expired and ``2: "c"`` has 4 s left,
        nothing swept yet."""
        cache = self.make_expiring(**kwargs)
        self.put_expiring(cache, 0, "a")
        self.put_expiring(cache, 1, "b")
        _advance_clock(6)
        self.put_expiring(cache, 2, "c")
        _advance_clock(6)
        return cache


# For a replacement that overflows ``maxmemory`` (``ListenerMixin``): whether the policy's next
# victim is the entry just written. FIFO keeps its place on an update, and VTTL's stable sort
# keeps two never-expiring entries in insertion order; LRU, LFU and TTL move it away from the
# front (recency, a frequency +1, a new expiry). RR picks at random, Cache does not evict.
GROWN_ENTRY_IS_VICTIM = {
    "FIFOCache": True,
    "VTTLCache": True,
    "LRUCache": False,
    "LFUCache": False,
    "TTLCache": False,
}


class ListenerMixin(EntryControlHarness):
    """``on_evict(key, value, cause)``: once per entry that leaves, in the order they leave,
    after the operation, with no call for what did not change."""

    def test_hooks_default_to_none(self):
        for cache in (self.make(0), self.make(0, on_evict=None, weigher=None)):
            assert cache.on_evict is None and cache.weigher is None

    def test_hooks_are_kept(self):
        rec, weigher = Recorder(), LengthWeigher()
        cache = self.make(0, on_evict=rec, weigher=weigher)
        assert cache.on_evict is rec and cache.weigher is weigher

    @pytest.mark.parametrize("hook", ["on_evict", "weigher"])
    @pytest.mark.parametrize("bad", [1, "f", [len], object()], ids=["int", "str", "list", "object"])
    def test_non_callable_hook_is_type_error(self, hook, bad):
        with pytest.raises(TypeError):
            self.make(0, **{hook: bad})

    def test_hooks_are_read_only(self):
        rec = Recorder()
        cache = self.make(0, on_evict=rec)
        for name in ("on_evict", "weigher"):
            with pytest.raises(AttributeError):
                setattr(cache, name, len)
        assert cache.on_evict is rec and cache.weigher is None

    def test_removals_by_key_are_explicit(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}, on_evict=rec)
        del cache[1]
        assert rec.take() == [(1, "a", "explicit")]
        assert cache.pop(2) == "b"
        assert rec.take() == [(2, "b", "explicit")]
        # Nothing left: nothing to report.
        assert cache.pop(2, "gone") == "gone" and cache.pop(2) is None
        with pytest.raises(KeyError):
            del cache[1]
        assert rec.take() == []
        assert cache.clear() is None
        assert sorted(rec.take()) == [(3, "c", "explicit"), (4, "d", "explicit"), (5, "e", "explicit")]
        cache.clear(reuse=True)
        assert rec.take() == []

    def test_clear_reuse_is_explicit_too(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec)
        cache.clear(reuse=True)
        assert sorted(rec.take()) == [(1, "a", "explicit"), (2, "b", "explicit")]

    def test_popitem_and_drain_are_explicit(self):
        rec = Recorder()
        cache = self.make(0, {i: str(i) for i in range(5)}, on_evict=rec)
        if not self.POPITEM:
            with pytest.raises(NotImplementedError):
                cache.popitem()
            with pytest.raises(NotImplementedError):
                cache.drain(2)
            assert rec.calls == [] and len(cache) == 5
            return
        key, value = cache.popitem()
        assert rec.take() == [(key, value, "explicit")]
        assert cache.drain(2) == 2
        drained = rec.take()
        assert [cause for _, _, cause in drained] == ["explicit", "explicit"]
        assert all(v == str(k) and k not in list(cache.keys()) for k, v, _ in drained)
        if self.OLDEST_FIRST:
            assert key == 0 and [k for k, _, _ in drained] == [1, 2]
        assert cache.drain(10) == 2
        assert len(rec.take()) == 2
        assert cache.drain(1) == 0
        with pytest.raises(KeyError):
            cache.popitem()
        assert rec.take() == []

    def test_writing_a_key_again_reports_the_old_value(self):
        rec = Recorder()
        cache = self.make(0, {1: "a"}, on_evict=rec)
        cache[1] = "b"
        assert rec.take() == [(1, "a", "replaced")]
        assert cache.insert(1, "c") == "b"
        assert rec.take() == [(1, "b", "replaced")]
        cache.update({1: "d", 2: "x"})
        assert rec.take() == [(1, "c", "replaced")]
        cache.update([(1, "e"), (1, "f")])
        assert rec.take() == [(1, "d", "replaced"), (1, "e", "replaced")]
        # A setdefault hit writes nothing, a miss adds a key: neither replaces a value.
        assert cache.setdefault(1, "z") == "f" and cache.setdefault(3, "n") == "n"
        assert rec.take() == []
        # The same object written again is still a replacement.
        same = cache[3]
        cache[3] = same
        assert rec.take() == [(3, "n", "replaced")]
        assert sorted(cache.items()) == [(1, "f"), (2, "x"), (3, "n")]

    def test_a_failed_update_reports_what_it_changed_before_failing(self):
        rec = Recorder()
        cache = self.make(0, {0: "a"}, on_evict=rec)
        with pytest.raises(TypeError):
            cache.update([(0, "b"), ([1], "c")])
        assert rec.take() == [(0, "a", "replaced")] and cache[0] == "b"

        def pairs():
            yield (0, "c")
            raise Boom("pairs")

        with pytest.raises(Boom):
            cache.update(pairs())
        assert rec.take() == [(0, "b", "replaced")] and cache[0] == "c"

    def test_replaced_key_is_the_stored_object(self):
        rec = Recorder()
        cache = self.make(0, on_evict=rec)
        first, second = ValueKey("k"), ValueKey("k")
        cache[first] = 1
        cache[second] = 2
        ((key, value, cause),) = rec.take()
        assert key is first and (value, cause) == (1, "replaced")
        cache[1] = "int"
        cache[1.0] = "float"
        ((key, value, cause),) = rec.take()
        assert type(key) is int and (value, cause) == ("int", "replaced")

    def test_reads_and_views_call_nothing(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec)
        assert cache[1] == "a" and cache.get(2) == "b" and cache.get(3) is None
        assert 1 in cache and 3 not in cache
        with pytest.raises(KeyError):
            cache[3]
        for reader in self.key_readers(cache):
            reader(1)
            reader(3)
        assert len(list(cache)) == len(list(cache.items())) == len(list(cache.values())) == 2
        assert len(cache) == 2 and bool(cache) and not cache.is_empty() and not cache.is_full()
        assert cache.memory() > 0 and cache.capacity() >= 2
        assert repr(cache) and cache == cache.copy()
        cache.shrink_to_fit()
        assert rec.calls == []

    def test_size_evictions(self):
        rec = Recorder()
        stored = {0: "0", 1: "1", 2: "2"}
        cache = self.make(3, stored, on_evict=rec)
        writes = [
            ("setitem", lambda k: cache.__setitem__(k, str(k))),
            ("insert", lambda k: cache.insert(k, str(k))),
            ("setdefault", lambda k: cache.setdefault(k, str(k))),
            ("update", lambda k: cache.update({k: str(k)})),
        ]
        if not self.EVICTS:
            # Cache refuses a new key at maxsize instead of evicting.
            for name, write in writes:
                with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                    write(3)
                assert rec.calls == [] and len(cache) == 3, name
            return
        stored = dict(stored)
        for n, (name, write) in enumerate(writes, start=3):
            write(n)
            ((key, value, cause),) = rec.take()
            assert cause == "size" and stored.pop(key) == value, name
            assert key not in list(cache.keys()), name
            if self.OLDEST_FIRST:
                assert key == n - 3, name
            stored[n] = str(n)
        assert sorted(cache.items()) == sorted(stored.items())
        # Writing a key that is there evicts nothing, even in a full cache.
        cache[6] = "again"
        assert rec.take() == [(6, "6", "replaced")]

    def test_memory_evictions_of_new_keys(self):
        rec = Recorder()
        values = {k: entry(100, k) for k in range(3)}
        cache = self.make(0, values, maxmemory=300, on_evict=rec)
        new = entry(100, 3)
        if not self.EVICTS:
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[3] = new
            assert rec.calls == [] and len(cache) == 3
            return
        values = dict(values)
        cache[3] = new
        ((key, value, cause),) = rec.take()
        assert cause == "memory" and values.pop(key) is value
        if self.OLDEST_FIRST:
            assert key == 0
        values[3] = new
        # 250 more units need the room of all three others.
        big = entry(250, 4)
        cache[4] = big
        calls = rec.take()
        assert [cause for _, _, cause in calls] == ["memory"] * 3
        assert all(values.pop(k) is v for k, v, _ in calls) and values == {}
        if self.OLDEST_FIRST:
            assert [k for k, _, _ in calls] == [1, 2, 3]
        assert list(cache.items()) == [(4, big)]

    def test_growing_replacement_reports_replaced_then_memory(self):
        rec = Recorder()
        old, other = entry(100, 0), entry(100, 1)
        cache = self.make(0, {0: old, 1: other}, maxmemory=300, on_evict=rec)
        grown = entry(250, 0)
        if not self.EVICTS:
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[0] = grown
            assert rec.calls == [] and cache[0] is old
            return
        cache[0] = grown
        calls = rec.take()
        # 350 units: one eviction, of either entry, gets back under 300.
        assert len(calls) == 2 and calls[0] == (0, old, "replaced")
        victim, value, cause = calls[1]
        assert cause == "memory" and value is (grown if victim == 0 else other)
        assert victim not in list(cache.keys()) and len(cache) == 1
        expected = GROWN_ENTRY_IS_VICTIM.get(self.CACHE.__name__)
        if expected is not None:
            assert (victim == 0) is expected

    def test_once_per_entry(self):
        rec = Recorder()
        cache = self.make(4 if self.EVICTS else 0, on_evict=rec)
        written = []
        for i in range(40):
            value = ("v", i)
            written.append(value)
            cache[i % 7] = value
            if i % 5 == 0:
                cache.pop((i + 3) % 7)
        cache.clear()
        left = [value for _, value, _ in rec.take()]
        # Every value written left exactly once (the values are distinct objects).
        assert sorted(left) == sorted(written)

    def test_listener_runs_in_the_thread_that_made_the_change(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b", 3: "c"}, on_evict=rec)
        worker = threading.Thread(target=lambda: (cache.pop(1), cache.clear()))
        worker.start()
        worker.join(60)
        assert not worker.is_alive()
        assert len(rec.calls) == 3 and rec.threads == [worker.ident] * 3
        rec.take()
        cache[4] = "d"
        del cache[4]
        assert rec.threads == [threading.get_ident()]

    def test_listener_errors_go_to_the_unraisable_hook(self):
        listener = RaisingRecorder()
        cache = self.make(2 if self.EVICTS else 0, {1: "a", 2: "b"}, on_evict=listener)
        with catch_unraisable() as caught:
            # Each operation completes; every entry is reported even though each call raised.
            assert cache.pop(1) == "a"
            cache[2] = "B"
            cache.update({3: "c", 4: "d"} if self.EVICTS else {3: "c"})
            cache.clear()
        assert len(cache) == 0
        causes = [cause for _, _, cause in listener.calls]
        assert causes[:2] == ["explicit", "replaced"]
        if self.EVICTS:
            # 3 fits beside 2, 4 evicts one of them, the clear takes the other two
            assert causes[2:] == ["size", "explicit", "explicit"]
        else:
            assert causes[2:] == ["explicit", "explicit"]
        # PyPy's unraisable hook gets no object, only a message naming it.
        culprit = None if PYPY else listener
        assert [(t, e.args, o) for t, e, o in caught] == [(Boom, (k,), culprit) for k, _, _ in listener.calls]

    def test_not_called_when_the_cache_goes(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec)
        gone = weakref.ref(cache)
        del cache
        collect(gone)
        # On PyPy, when the collector frees the cache is its own business: there the check is
        # only that nothing was reported.
        assert PYPY or gone() is None
        assert rec.calls == []

    def test_not_called_when_a_cycle_through_the_cache_is_collected(self):
        rec = Recorder()
        cache = self.make(0, on_evict=rec)
        cache["self"] = cache
        cache["holder"] = [cache]
        gone = weakref.ref(cache)
        del cache
        collect(gone)
        # PyPy never collects a cycle through an extension object (tests/test_gc.py): there the
        # check is only that nothing was reported.
        assert PYPY or gone() is None
        assert rec.calls == []

    def test_not_called_by_init_again(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec)
        cache.__init__(*((0, self.TTL) if self.TTL is not None else (0,)), on_evict=rec)
        assert len(cache) == 0 and rec.calls == []
        cache[3] = "c"
        del cache[3]
        assert rec.take() == [(3, "c", "explicit")]

    def test_not_called_by_setstate(self):
        rec = Recorder()
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec)
        state = self.make(0, {3: "c"}, on_evict=rec).__reduce_ex__(2)[2]
        cache.__setstate__(state)
        assert list(cache.items()) == [(3, "c")] and rec.calls == []

    @pytest.mark.parametrize("how", ["method", "copy.copy", "copy.deepcopy"])
    def test_copies_keep_the_same_hooks(self, how):
        rec, weigher = Recorder(), LengthWeigher()
        cache = self.make(0, {1: "a", 2: "bb"}, on_evict=rec, weigher=weigher)
        clone = {
            "method": cache.copy,
            "copy.copy": lambda: copy.copy(cache),
            "copy.deepcopy": lambda: copy.deepcopy(cache),
        }[how]()
        assert clone.on_evict is rec and clone.weigher is weigher
        assert clone.memory() == cache.memory() == 3
        assert rec.calls == []
        del clone[1]
        clone[3] = "ccc"
        assert rec.take() == [(1, "a", "explicit")] and clone.memory() == 5
        assert sorted(cache.items()) == [(1, "a"), (2, "bb")] and cache.memory() == 3

    @pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
    def test_pickle_keeps_module_level_hooks(self, protocol):
        cache = self.make(0, {1: "a", 2: "bb"}, on_evict=logging_listener, weigher=length_weigher)
        clone = pickle.loads(pickle.dumps(cache, protocol))
        assert clone.on_evict is logging_listener and clone.weigher is length_weigher
        assert clone == cache and clone.memory() == 3
        LISTENER_LOG.clear()
        del clone[2]
        assert LISTENER_LOG == [(2, "bb", "explicit")]
        LISTENER_LOG.clear()

    @pytest.mark.parametrize("hook", ["on_evict", "weigher"])
    def test_unpicklable_hook_fails_to_pickle(self, hook):
        def local(key, value, cause=None):
            return 1

        for unpicklable in (lambda key, value, cause=None: 1, local):
            cache = self.make(0, {1: "a"}, **{hook: unpicklable})
            with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
                pickle.dumps(cache)


class ExpiryListenerMixin(EntryControlHarness):
    """The "expired" cause (TTLCache, VTTLCache): reported when a sweep removes an entry, and
    for the old value of an expired entry that a write reuses; never by a read."""

    def test_expire_reports_each_expired_entry(self):
        rec = Recorder()
        cache = self.stale(on_evict=rec)
        assert cache.expire() is None
        assert rec.take() == [(0, "a", "expired"), (1, "b", "expired")]
        cache.expire()
        assert rec.take() == []
        assert list(cache.items()) == [(2, "c")]
        cache.clear()
        assert rec.take() == [(2, "c", "explicit")]

    def test_expired_entries_are_reported_in_expiry_order(self):
        rec = Recorder()
        cache = self.make_expiring(on_evict=rec)
        if self.TTL is not None:
            # A write moves the key to the back with a new expiry.
            for key in (0, 1, 2, 0):
                cache[key] = str(key)
        else:
            for key, lifetime in ((0, 30), (1, 10), (2, 20)):
                self.put_expiring(cache, key, str(key), lifetime)
        rec.take()
        _advance_clock(100)
        cache.expire()
        assert rec.take() == [(1, "1", "expired"), (2, "2", "expired"), (0, "0", "expired")]

    def sweeping_reads(self):
        if self.TTL is not None:
            return {
                "iter": lambda c: list(c),
                "items": lambda c: list(c.items()),
                "keys": lambda c: list(c.keys()),
                "values": lambda c: list(c.values()),
            }
        return {"len": len}

    def test_sweeping_reads_report_expired_entries(self):
        for name, read in self.sweeping_reads().items():
            rec = Recorder()
            cache = self.stale(on_evict=rec)
            read(cache)
            assert rec.take() == [(0, "a", "expired"), (1, "b", "expired")], name

    def test_reads_of_expired_keys_call_nothing(self):
        rec = Recorder()
        cache = self.stale(on_evict=rec)
        with pytest.raises(KeyError):
            cache[0]
        with pytest.raises(KeyError):
            del cache[0]
        assert cache.get(0) is None and 0 not in cache and cache.pop(0, "d") == "d"
        assert cache.get_with_expire(0) == (None, 0.0) and cache.pop_with_expire(0) == (None, 0.0)
        assert cache.setdefault(2, "z") == "c"
        assert bool(cache) and not cache.is_empty() and not cache.is_full() and cache.memory() > 0
        if self.TTL is not None:
            assert len(cache) == 1  # a TTLCache counts live entries without sweeping
        assert rec.calls == []

    def test_popitem_reports_the_expired_entries_then_the_popped_one(self):
        for pop in (lambda c: c.popitem(), lambda c: c.popitem_with_expire()[:2], lambda c: c.drain(5)):
            rec = Recorder()
            cache = self.stale(on_evict=rec)
            assert pop(cache) in ((2, "c"), 1)
            assert rec.take() == [(0, "a", "expired"), (1, "b", "expired"), (2, "c", "explicit")]
            with pytest.raises(KeyError):
                cache.popitem()
            assert rec.take() == []

    def test_new_key_reports_the_expired_entries_first(self):
        for name in ("setitem", "insert", "update-dict", "update-pairs", "setdefault"):
            rec = Recorder()
            cache = self.stale(on_evict=rec)
            dict(self.writes(cache, 9, "z"))[name]()
            assert rec.take() == [(0, "a", "expired"), (1, "b", "expired")], name
            assert sorted(cache.items()) == [(2, "c"), (9, "z")], name

    def test_writing_an_expired_key_reports_its_value_expired(self):
        for name in ("setitem", "insert", "update-dict", "update-pairs", "setdefault"):
            rec = Recorder()
            cache = self.stale(on_evict=rec)
            write = dict(self.writes(cache, 0, "new"))[name]
            result = write()
            # The entry is reused: nothing else is swept, and the old value was not live.
            assert rec.take() == [(0, "a", "expired")], name
            assert result == ("new" if name == "setdefault" else None), name
            assert cache[0] == "new", name
            cache.expire()
            assert rec.take() == [(1, "b", "expired")], name

    def test_shrink_to_fit_reports_the_expired_entries(self):
        rec = Recorder()
        cache = self.stale(on_evict=rec)
        cache.shrink_to_fit()
        assert rec.take() == [(0, "a", "expired"), (1, "b", "expired")]

    def test_pop_with_expire_is_explicit(self):
        rec = Recorder()
        cache = self.stale(on_evict=rec)
        value, remaining = cache.pop_with_expire(2)
        assert value == "c" and 0 < remaining <= 4
        assert rec.take() == [(2, "c", "explicit")]

    def test_every_sweep_reports_what_it_removed(self):
        # Whatever sweeps (BEHAVIOUR.md lists more than the listener tests above), an entry
        # whose charge left memory() was reported, and only such entries: the weights are
        # powers of ten, so the drop says which entries went.
        operations = {
            "copy": lambda c: c.copy(),
            "copy.copy": copy.copy,
            "deepcopy": copy.deepcopy,
            "pickle": pickle.dumps,
            "repr": repr,
            "eq-left": lambda c: c == self.make_expiring(),
            "eq-right": lambda c: self.make_expiring() == c,
            "len": len,
            "bool": bool,
            "iter": list,
            "items_with_expire": lambda c: list(c.items_with_expire()),
            "get_with_expire": lambda c: c.get_with_expire(0),
            "memory": lambda c: c.memory(),
            "is_full": lambda c: c.is_full(),
            "shrink_to_fit": lambda c: c.shrink_to_fit(),
            "expire": lambda c: c.expire(),
        }
        if self.TTL is not None:
            operations.update(first=lambda c: c.first(), last=lambda c: c.last())
        for name, operation in operations.items():
            rec = Recorder()
            cache = self.stale(on_evict=rec, weigher=weigh_power_of_ten)
            assert cache.memory() == 111, name
            operation(cache)
            calls = rec.take()
            assert all(cause == "expired" for _, _, cause in calls), (name, calls)
            assert 111 - cache.memory() == sum(10**key for key, _, _ in calls), (name, calls)

    def test_an_expired_entry_is_reported_once(self):
        rec = Recorder()
        cache = self.stale(on_evict=rec)
        cache.expire()
        cache.expire()
        cache[9] = "z"
        cache.popitem()
        cache.clear()
        assert [key for key, _, _ in rec.take()] == [0, 1, 2, 9]


class WeigherMixin(EntryControlHarness):
    """``weigher(key, value)``: an entry's charge, in place of ``__sizeof__``."""

    def test_weights_make_memory(self):
        cache = self.make(0, {"a": "xx"}, weigher=length_weigher)
        assert cache.memory() == 2
        cache["b"] = "yyy"
        assert cache.memory() == 5
        cache["a"] = "z" * 10
        assert cache.memory() == 13
        cache.update({"c": "", "d": "1234"})
        assert cache.memory() == 17
        assert cache.setdefault("e", "55") == "55" and cache.memory() == 19
        assert cache.insert("e", "5") == "55" and cache.memory() == 18
        del cache["b"]
        assert cache.pop("c") == "" and cache.memory() == 15
        assert cache.memory() == sum(len(v) for v in cache.values())
        cache.clear()
        assert cache.memory() == 0

    def test_a_replacement_weighs_the_key_it_was_given(self):
        def weigher(key, value):
            return 100 if type(key) is float else 10

        cache = self.make(0, weigher=weigher)
        cache[1] = "a"
        assert cache.memory() == 10
        cache[1.0] = "b"
        assert cache.memory() == 100 and [type(k) for k in cache] == [int]
        cache.insert(True, "c")
        assert cache.memory() == 10 and cache[1] == "c"

    def test_weigher_calls(self):
        calls = []

        def weigher(key, value):
            calls.append((key, value))
            return 1

        cache = self.make(0, {1: "a"}, weigher=weigher)
        assert calls == [(1, "a")]
        calls.clear()
        cache[2] = "b"
        cache.insert(3, "c")
        cache[2] = "B"
        cache.update({4: "d", 5: "e"})
        cache.update([(6, "f")])
        assert calls == [(2, "b"), (3, "c"), (2, "B"), (4, "d"), (5, "e"), (6, "f")]
        calls.clear()
        assert cache.setdefault(7, "g") == "g"
        assert calls == [(7, "g")]
        calls.clear()
        # Neither a setdefault hit, nor a read, nor a removal weighs anything.
        assert cache.setdefault(7, "h") == "g" and cache.setdefault(1) == "a"
        assert cache[1] == "a" and cache.get(2) == "B" and 3 in cache and len(list(cache.items())) == 7
        assert cache.pop(4) == "d"
        del cache[5]
        assert (cache.memory(), len(cache), cache.is_full()) == (5, 5, False)
        assert calls == []

    def test_weights_against_maxmemory_and_is_full(self):
        cache = self.make(0, maxmemory=10, weigher=lambda key, value: 5)
        cache[1] = "a"
        assert not cache.is_full()
        cache[2] = "b"
        assert cache.is_full() and cache.memory() == 10

    def test_zero_weights(self):
        cache = self.make(0, maxmemory=1, weigher=lambda key, value: 0)
        cache.update({i: i for i in range(50)})
        assert (len(cache), cache.memory(), cache.is_full()) == (50, 0, False)

    def test_maxmemory_bounds_the_weights(self):
        rec = Recorder()
        cache = self.make(0, maxmemory=100, on_evict=rec, weigher=weigh_by_value)
        cache[0] = 40
        cache[1] = 40
        if not self.EVICTS:
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[2] = 40
            cache[0] = 60  # 100: exactly the limit
            with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                cache[1] = 41
            assert sorted(cache.items()) == [(0, 60), (1, 40)] and cache.memory() == 100
            assert rec.take() == [(0, 40, "replaced")]
            return
        cache[2] = 40
        ((key, value, cause),) = rec.take()
        assert (value, cause) == (40, "memory") and key not in list(cache.keys())
        assert cache.memory() == 80
        if self.OLDEST_FIRST:
            assert key == 0
        cache[3] = 100
        calls = rec.take()
        assert [(value, cause) for _, value, cause in calls] == [(40, "memory")] * 2
        assert list(cache.items()) == [(3, 100)] and cache.memory() == 100

    def test_weight_over_maxmemory_is_overflow(self):
        rec = Recorder()
        cache = self.make(0, {1: 10}, maxmemory=100, on_evict=rec, weigher=weigh_by_value)
        before = self.snapshot(cache)
        for key, miss in ((1, False), (2, True)):
            for name, write in self.writes(cache, key, 101, miss):
                with pytest.raises(OverflowError, match=f"^{BOUND}$"):
                    write()
                assert self.snapshot(cache) == before, (key, name)
        assert rec.calls == []

    @pytest.mark.parametrize(
        "weight, error",
        [
            (1.5, TypeError),
            (2.0, TypeError),
            ("3", TypeError),
            (None, TypeError),
            ([1], TypeError),
            (-1, ValueError),
            (-(2**70), ValueError),
            (2**63, OverflowError),
            (2**64, OverflowError),
            (10**30, OverflowError),
        ],
        ids=lambda v: v.__name__ if isinstance(v, type) else repr(v),
    )
    def test_bad_weights_leave_the_cache_as_it_was(self, weight, error):
        rec = Recorder()
        # The weigher answers junk for the value "bad" only, so the cache can hold entries.
        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec, weigher=lambda k, v: weight if v == "bad" else 7)
        before = self.snapshot(cache)
        for key, miss in ((1, False), (3, True)):
            for name, write in self.writes(cache, key, "bad", miss):
                with pytest.raises(error):
                    write()
                assert self.snapshot(cache) == before, (key, name)
        assert rec.calls == [] and cache.memory() == 14

    def test_weigher_errors_propagate_and_leave_the_cache_as_it_was(self):
        rec = Recorder()
        error = Boom("weigher")

        def weigher(key, value):
            if value == "bad":
                raise error
            return 7

        cache = self.make(0, {1: "a", 2: "b"}, on_evict=rec, weigher=weigher)
        before = self.snapshot(cache)
        for key, miss in ((1, False), (3, True)):
            for name, write in self.writes(cache, key, "bad", miss):
                with pytest.raises(Boom) as info:
                    write()
                assert info.value is error, (key, name)
                assert self.snapshot(cache) == before, (key, name)
        assert rec.calls == []


class AllMixins(
    ConstructionMixin,
    SizeMixin,
    KeysMixin,
    MethodsMixin,
    IterationMixin,
    EqualityMixin,
    ReprMixin,
    SizeofMixin,
    PickleCopyMixin,
    ReentrancyMixin,
    ModelMixin,
    DirectSlotsMixin,
):
    """Every capability, for ``tests/test_impls.py``."""
