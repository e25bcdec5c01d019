"""A decorated function's calls: hits and misses, keys, what each cache policy does with the
entries the decorator stores, and ``cachebox__ignore``, the keyword that bypasses the cache."""

import sys

import pytest

import cachebox
from cachebox import (
    LFUCache,
    LRUCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
    make_key,
)

# --------------------------------------------------------------------------------------
# hits, misses and keys
# --------------------------------------------------------------------------------------


def test_hits_misses_and_calls():
    calls = []

    @cached(LRUCache(0))
    def func(a, b=0):
        calls.append((a, b))
        return a + b

    assert func(1) == 1
    assert func(1) == 1
    assert func(1, 2) == 3
    assert func(1, b=2) == 3  # different key from the positional form
    assert func(1, 2) == 3
    assert calls == [(1, 0), (1, 2), (1, 2)]
    info = func.cache_info()
    assert (info.hits, info.misses, info.length) == (2, 3, 3)
    assert set(func.cache.keys()) == {1, (1, 2), (1, object, "b", 2)}


def test_result_none_is_cached():
    calls = []

    @cached(None)
    def func(x):
        calls.append(x)

    assert func(1) is None
    assert func(1) is None
    assert calls == [1]
    assert func.cache_info().hits == 1


# --------------------------------------------------------------------------------------
# the cache's policy applies to the decorator's entries
# --------------------------------------------------------------------------------------


def test_lru_hit_touches_the_entry():
    @cached(LRUCache(2))
    def func(x):
        return x

    func(1)
    func(2)
    func(1)  # hit: 1 becomes most recently used
    func(3)  # evicts 2
    assert 1 in func.cache
    assert 2 not in func.cache
    assert 3 in func.cache


def test_lfu_hit_increments_frequency():
    @cached(LFUCache(2))
    def func(x):
        return x

    func(1)
    func(1)
    func(2)
    func(3)  # evicts 2 (frequency 1) rather than 1 (frequency 2)
    assert set(func.cache.keys()) == {1, 3}
    assert func.cache_info().hits == 1


def test_ttl_cache_recomputes_after_expiry():
    calls = []

    @cached(TTLCache(0, ttl=10))
    def func(x):
        calls.append(x)
        return [x]

    assert func(1) == [1]
    cachebox._core._advance_clock(5)
    assert func(1) == [1]
    assert calls == [1]
    cachebox._core._advance_clock(6)
    assert func.cache_info().length == 0
    assert func(1) == [1]
    assert calls == [1, 1]
    assert func(1) == [1]
    assert calls == [1, 1]
    assert func.cache_info()[:2] == (2, 2)


def test_vttl_cache_entries_stored_by_the_decorator_never_expire():
    calls = []

    @cached(VTTLCache(0))
    def func(x):
        calls.append(x)
        return x

    func(1)
    cachebox._core._advance_clock(10**6)
    func(1)
    assert calls == [1]


# --------------------------------------------------------------------------------------
# cachebox__ignore
# --------------------------------------------------------------------------------------


def test_cachebox_ignore_bypasses_everything():
    calls = []
    key_maker_calls = []
    results = []

    def key_maker(args, kwds):
        key_maker_calls.append((args, kwds))
        return make_key(args, kwds)

    @cached(LRUCache(0), key_maker=key_maker)
    def func(x, **kw):
        calls.append((x, kw))
        result = [x]
        results.append(result)
        return result

    r = func(1, cachebox__ignore=True)
    assert r is results[-1]  # no copy
    assert calls == [(1, {})]  # the flag was removed
    assert key_maker_calls == []
    assert len(func.cache) == 0
    assert func.cache_info() == (0, 0, sys.maxsize, 0, 0)

    func(1)  # now cached
    r = func(1, cachebox__ignore=True, other=2)
    assert r is results[-1]
    assert calls[-1] == (1, {"other": 2})
    assert len(calls) == 3  # bypassed even though the key is cached
    assert func.cache_info() == (0, 1, sys.maxsize, 1, func.cache.memory())
    assert len(key_maker_calls) == 1


@pytest.mark.parametrize("flag", [1, "yes", [0]])
def test_cachebox_ignore_any_truthy_value(flag):
    calls = []

    @cached(None)
    def func(x, **kw):
        calls.append(kw)
        return x

    func(1, cachebox__ignore=flag)
    func(1, cachebox__ignore=flag)
    assert calls == [{}, {}]
    assert len(func.cache) == 0


@pytest.mark.parametrize("flag", [False, 0, None, ""])
def test_cachebox_ignore_falsy_is_removed_and_caches_normally(flag):
    calls = []

    @cached(None)
    def func(x, **kw):
        calls.append(kw)
        return x

    func(1, cachebox__ignore=flag)
    func(1)
    func(1, cachebox__ignore=flag)
    assert calls == [{}]
    assert list(func.cache.keys()) == [1]
    assert func.cache_info()[:2] == (2, 1)


def test_cachebox_ignore_works_for_functions_without_kwargs():
    @cached(None)
    def func(x):
        return x + 1

    assert func(1, cachebox__ignore=True) == 2
    assert func(1, cachebox__ignore=False) == 2
    assert func.cache_info()[:2] == (0, 1)


def test_cachebox_ignore_does_not_call_the_factory():
    factory_calls = []

    class A:
        def __init__(self):
            self.c = LRUCache(0)

        @cached(lambda self: factory_calls.append(1) or self.c)
        def m(self, x):
            return x

    a = A()
    assert a.m(1, cachebox__ignore=True) == 1
    assert factory_calls == []
    assert len(a.c) == 0
    assert a.m(1) == 1
    assert factory_calls == [1]


def test_cachebox_ignore_with_cachedmethod():
    calls = []

    class A:
        @cachedmethod(None)
        def m(self, x, **kw):
            calls.append(kw)
            return x

    A().m(1, cachebox__ignore=True)
    assert calls == [{}]
    assert len(A.m.cache) == 0
    A().m(1, cachebox__ignore=False)
    assert list(A.m.cache.keys()) == [1]
