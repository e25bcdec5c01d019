"""``cached(..., ttl=...)`` and ``cachedmethod(..., ttl=...)``: every stored result gets a
lifetime, a fixed number of seconds or what ``ttl(key, value)`` answers (``None``: never
expires). Only a cache with per-entry lifetimes (``VTTLCache`` or a subclass) can take one:
any other is refused when the function is decorated, or by the call in factory mode.

The test run freezes the TTL clock (``conftest.py``): ``_advance_clock`` moves it, and the
remaining lifetimes reported are exact up to the microsecond each clock reading adds.
"""

import asyncio
from datetime import timedelta

import pytest

from cachebox import (
    Cache,
    FIFOCache,
    Frozen,
    LFUCache,
    LRUCache,
    RRCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
)
from cachebox._core import _advance_clock

try:
    from .subprocess_harness import run_isolated
except ImportError:
    from subprocess_harness import run_isolated

# Seconds the frozen clock may move during a test, a microsecond per reading.
DRIFT = 0.01


class Boom(Exception):
    pass


def arun(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def lifetimes(cache):
    """``{key: remaining seconds}`` of the live entries (0.0 for one that never expires)."""
    return {key: left for key, _, left in cache.items_with_expire()}


def about(left, seconds):
    return seconds - DRIFT <= left <= seconds


def call_args(decorator, *args):
    """The arguments of a call whose key is ``args``: ``cachedmethod`` leaves out the first."""
    return ("self", *args) if decorator is cachedmethod else args


@pytest.mark.parametrize("decorator", [cached, cachedmethod])
@pytest.mark.parametrize(
    "ttl, seconds", [(60, 60.0), (1.5, 1.5), (timedelta(minutes=2), 120.0)], ids=["int", "float", "timedelta"]
)
def test_a_fixed_ttl(decorator, ttl, seconds):
    cache = VTTLCache(0)
    calls = []

    @decorator(cache, ttl=ttl)
    def f(*args):
        calls.append(args)
        return len(calls)

    args = call_args(decorator, 1)
    assert f(*args) == 1
    (entry,) = cache.items_with_expire()
    assert entry[:2] == (1, 1) and about(entry[2], seconds)
    # A hit neither recomputes nor gives the entry a new lifetime.
    _advance_clock(seconds / 2)
    assert f(*args) == 1 and about(lifetimes(cache)[1], seconds / 2)
    _advance_clock(seconds)
    assert f(*args) == 2 and len(calls) == 2
    value, left = cache.get_with_expire(1)
    assert value == 2 and about(left, seconds)


def test_a_ttl_per_key_and_value():
    seen = []

    def ttl(key, value):
        seen.append((key, value))
        return None if value < 0 else value

    cache = VTTLCache(0)

    @cached(cache, ttl=ttl)
    def f(x):
        return x

    f(30)
    f(-1)
    f(30)  # a hit: nothing stored, ttl not asked
    assert seen == [(30, 30), (-1, -1)]
    left = lifetimes(cache)
    assert about(left[30], 30) and left[-1] == 0.0
    _advance_clock(1000)
    assert list(cache.keys()) == [-1]


def test_the_ttl_callable_gets_the_key_and_the_stored_value():
    seen = []
    cache = VTTLCache(0)

    @cached(cache, ttl=lambda key, value: seen.append((key, value)) or 60)
    def f(a, b=0):
        return [a, b]

    assert f(1, b=2) == [1, 2]
    ((key, value),) = seen
    assert key == (1, object, "b", 2)
    # The object stored, not the copy the caller got.
    assert value is cache[key]
    assert about(lifetimes(cache)[key], 60)


def test_ttl_callable_errors_propagate_and_nothing_is_stored():
    error = Boom("ttl")
    calls = []

    def ttl(key, value):
        raise error

    @cached(VTTLCache(0), ttl=ttl)
    def f(x):
        calls.append(x)
        return x

    for _ in range(2):
        with pytest.raises(Boom) as info:
            f(1)
        assert info.value is error
    assert len(f.cache) == 0 and calls == [1, 1]


@pytest.mark.parametrize("answer", [0, -5, float("nan"), "60", [60]], ids=repr)
def test_a_ttl_callable_answering_an_invalid_ttl(answer):
    with pytest.raises(Exception) as expected:
        VTTLCache(0).insert(1, 1, answer)

    @cached(VTTLCache(0), ttl=lambda key, value: answer)
    def f(x):
        return x

    # What storing with that TTL raises.
    with pytest.raises(type(expected.value)) as info:
        f(1)
    assert info.value.args == expected.value.args
    assert len(f.cache) == 0


def test_a_subclass_of_vttlcache():
    class MyVTTL(VTTLCache):
        pass

    cache = MyVTTL(0)

    @cached(cache, ttl=60)
    def f(x):
        return x

    f(1)
    assert about(lifetimes(cache)[1], 60)


def test_async_functions():
    cache = VTTLCache(0)

    @cached(cache, ttl=lambda key, value: 2 * value)
    async def f(x):
        return x

    @cachedmethod(VTTLCache(0), ttl=45)
    async def g(self, x):
        return x

    assert arun(f(20)) == 20 and arun(g(None, 3)) == 3
    assert about(lifetimes(cache)[20], 40)
    assert about(lifetimes(g.cache)[3], 45)


def test_ttl_none_is_no_ttl():
    for cache in (None, {}, LRUCache(0), TTLCache(0, 60), VTTLCache(0)):

        @cached(cache, ttl=None)
        def f(x):
            return x

        f(1)
        assert f(1) == 1 and list(f.cache.keys()) == [1]
    assert lifetimes(f.cache) == {1: 0.0}  # a VTTLCache entry stored without TTL never expires


def _not_per_entry():
    return [None, {}, {"k": 1}, Cache(0), FIFOCache(0), RRCache(0), LRUCache(0), LFUCache(0), TTLCache(0, 60)]


@pytest.mark.parametrize("ttl", [60, lambda key, value: 60], ids=["seconds", "callable"])
@pytest.mark.parametrize("cache", _not_per_entry(), ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_a_cache_without_per_entry_ttls_is_refused_when_decorating(decorator, cache, ttl):
    def f(self, x):
        return x

    with pytest.raises(TypeError):
        decorator(cache, ttl=ttl)(f)


def test_a_frozen_vttlcache_is_refused():
    with pytest.raises(TypeError):
        cached(Frozen(VTTLCache(0)), ttl=60)(lambda x: x)


@pytest.mark.parametrize(
    "ttl",
    [0, -1, 0.0, -0.5, float("nan"), float("inf"), 1e20, 10**400, timedelta(0), timedelta(seconds=-1)],
    ids=["0", "-1", "0.0", "-0.5", "nan", "inf", "1e20", "10**400", "timedelta0", "timedelta-1"],
)
@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_an_invalid_ttl_number_is_refused_when_decorating(decorator, ttl):
    # The error VTTLCache.insert raises for it.
    with pytest.raises(Exception) as expected:
        VTTLCache(0).insert(1, 1, ttl)
    with pytest.raises(type(expected.value)) as info:
        decorator(VTTLCache(0), ttl=ttl)(lambda self, x: x)
    assert info.value.args == expected.value.args


@pytest.mark.parametrize("ttl", ["60", [60], object()], ids=["str", "list", "object"])
@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_a_ttl_that_is_neither_a_number_nor_callable_is_a_type_error(decorator, ttl):
    with pytest.raises(TypeError):
        decorator(VTTLCache(0), ttl=ttl)(lambda self, x: x)


def test_factory_mode_checks_the_cache_of_each_call():
    # Factory mode is `cached`'s: `cachedmethod` refuses a function.
    decorator = cached

    class A:
        def __init__(self, cache):
            self._cache = cache

        @decorator(lambda self: self._cache, ttl=60)
        def m(self, x):
            return x

    good = A(VTTLCache(0))
    assert good.m(1) == 1
    ((_, value, left),) = good._cache.items_with_expire()
    assert value == 1 and about(left, 60)
    for other in (LRUCache(0), TTLCache(0, 60)):
        bad = A(other)
        with pytest.raises(TypeError):
            bad.m(1)
        assert len(other) == 0


def test_the_ttl_callable_may_read_the_cache():
    # It runs when the value is stored, outside any lock: a read from it cannot deadlock.
    run_isolated(
        """
        import cachebox
        from cachebox._core import _freeze_clock
        _freeze_clock(True)
        cache = cachebox.VTTLCache(0)

        def ttl(key, value):
            return 100 * (1 + len(cache)) + (key in cache)

        @cachebox.cached(cache, ttl=ttl)
        def f(x):
            return x

        f(1)
        f(2)
        left = {k: round(t) for k, _, t in cache.items_with_expire()}
        assert left == {1: 100, 2: 200}, left
        """
    )
