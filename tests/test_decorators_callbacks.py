"""The decorators' bookkeeping: the callback (when it runs, what it receives, its errors),
``cache_info()`` and ``cache_clear()`` (with ``clear_reuse``).

The tests where the callback raises or calls the function again run in a subprocess
(``subprocess_harness.run_isolated``), so a lock left held fails one test instead of stalling
the run.
"""

import gc
import sys
import warnings

from cachebox import (
    EVENT_HIT,
    EVENT_MISS,
    CacheInfo,
    FIFOCache,
    LRUCache,
    cached,
    cachedmethod,
)

try:
    from .cache_helpers import charge
    from .subprocess_harness import run_isolated
except ImportError:
    from cache_helpers import charge
    from subprocess_harness import run_isolated


# --------------------------------------------------------------------------------------
# the callback
# --------------------------------------------------------------------------------------


def test_callback_exception_propagates_after_store():
    run_isolated(
        """
        import cachebox

        class CallbackError(Exception):
            pass

        seen = []

        def callback(event, key, value):
            seen.append(event)
            raise CallbackError(event)

        calls = []

        @cachebox.cached(cachebox.LRUCache(0), callback=callback)
        def func(x):
            calls.append(x)
            return x

        for expected_event in (cachebox.EVENT_MISS, cachebox.EVENT_HIT, cachebox.EVENT_HIT):
            try:
                func(1)
            except CallbackError as e:
                assert e.args == (expected_event,)
            else:
                raise AssertionError("callback error swallowed")
        assert calls == [1]                    # the value was stored before the callback ran
        assert func.cache[1] == 1
        assert seen == [1, 2, 2]
        assert func.cache_info()[:2] == (2, 1)
        """
    )


def test_callback_receives_stored_uncopied_object():
    received = []

    @cached(LRUCache(0), callback=lambda e, k, v: received.append(v))
    def func(x):
        return [x]

    r1 = func(1)
    r2 = func(1)
    stored = func.cache[1]
    assert r1 == r2 == stored == [1]
    assert r1 is not stored and r2 is not stored and r1 is not r2
    assert len(received) == 2
    assert received[0] is stored
    assert received[1] is stored


def test_callback_receives_key_from_key_maker():
    events = []

    @cached(None, key_maker=lambda a, k: ("custom",) + a, callback=lambda *e: events.append(e))
    def func(x):
        return x

    func(3)
    func(3)
    assert events == [(EVENT_MISS, ("custom", 3), 3), (EVENT_HIT, ("custom", 3), 3)]


def test_callback_return_value_is_ignored():
    @cached(None, callback=lambda *e: "callback result")
    def func(x):
        return x

    assert func(1) == 1
    assert func(1) == 1


def test_async_callback_on_sync_function_is_never_awaited():
    ran = []

    async def callback(event, key, value):
        ran.append(event)  # pragma: no cover - never awaited

    @cached(None, callback=callback)
    def func(x):
        return x * 3

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert func(1) == 3
        assert func(1) == 3
        gc.collect()
    assert ran == []
    assert any(
        issubclass(w.category, RuntimeWarning) and "never awaited" in str(w.message) for w in caught
    ), [str(w.message) for w in caught]


def test_callback_not_called_for_ignored_calls():
    events = []

    @cached(None, callback=lambda *e: events.append(e))
    def func(x):
        return x

    func(1, cachebox__ignore=True)
    assert events == []
    func(1)
    func(1, cachebox__ignore=True)
    assert events == [(EVENT_MISS, 1, 1)]


def test_callback_runs_after_the_key_lock_is_released():
    # the callback runs once no lock is held (BEHAVIOUR.md §13.4 step 6), so it may call the function
    run_isolated(
        """
        import cachebox
        inner = []

        def callback(event, key, value):
            if event == cachebox.EVENT_MISS:
                inner.append(func(key))     # same key: a plain hit, no RuntimeError

        @cachebox.cached(None, callback=callback)
        def func(x):
            return x * 2

        assert func(4) == 8
        assert inner == [8]
        assert func.cache_info()[:2] == (1, 1)
        """
    )


# --------------------------------------------------------------------------------------
# cache_info
# --------------------------------------------------------------------------------------


def _identity(x):
    return x


def test_cache_info_tracks_cache_state():
    c = LRUCache(5)

    @cached(c)
    def func(x):
        return x + 1

    func(1)
    func(1)
    func(2)
    info = func.cache_info()
    assert info == CacheInfo(hits=1, misses=2, maxsize=5, length=2, memory=c.memory())
    expected_memory = charge(1) + charge(2) + charge(2) + charge(3)
    assert info.memory == expected_memory
    c.clear()
    assert func.cache_info() == (1, 2, 5, 0, 0)


def test_cache_info_length_follows_evictions():
    @cached(LRUCache(2))
    def func(x):
        return x

    for i in range(5):
        func(i)
    assert func.cache_info() == (0, 5, 2, 2, func.cache.memory())
    assert list(func.cache.keys()) == [3, 4]


def test_cache_info_and_clear_are_bound_callables():
    f = cached(LRUCache(0))(_identity)
    info = f.cache_info
    clear = f.cache_clear
    f(1)
    assert info() == (0, 1, sys.maxsize, 1, f.cache.memory())
    clear()
    assert info() == (0, 0, sys.maxsize, 0, 0)


# --------------------------------------------------------------------------------------
# cache_clear / clear_reuse
# --------------------------------------------------------------------------------------


def test_cache_clear_resets_counters_and_recomputes():
    calls = []

    @cached(LRUCache(0))
    def func(x):
        calls.append(x)
        return x

    func(1)
    func(1)
    func(2)
    assert func.cache_info()[:3] == (1, 2, sys.maxsize)
    assert func.cache_clear() is None
    assert func.cache_info() == CacheInfo(0, 0, sys.maxsize, 0, 0)
    func(1)
    assert calls == [1, 2, 1]
    assert func.cache_info()[:2] == (0, 1)


def test_cache_clear_default_does_not_reuse_capacity():
    @cached(LRUCache(0))
    def func(x):
        return x

    for i in range(50):
        func(i)
    assert func.cache.capacity() >= 50
    func.cache_clear()
    assert func.cache.capacity() == 0
    assert len(func.cache) == 0


def test_cache_clear_with_clear_reuse_keeps_capacity():
    @cached(LRUCache(0), clear_reuse=True)
    def func(x):
        return x

    for i in range(50):
        func(i)
    capacity = func.cache.capacity()
    assert capacity >= 50
    func.cache_clear()
    assert func.cache.capacity() == capacity
    assert len(func.cache) == 0
    assert func.cache_info() == (0, 0, sys.maxsize, 0, 0)


def test_cachedmethod_cache_clear_honours_clear_reuse():
    class A:
        @cachedmethod(FIFOCache(0), clear_reuse=True)
        def m(self, x):
            return x

        @cachedmethod(FIFOCache(0))
        def n(self, x):
            return x

    a = A()
    for i in range(20):
        a.m(i)
        a.n(i)
    cap = A.m.cache.capacity()
    a.m.cache_clear()  # through the bound method
    A.n.cache_clear()
    assert A.m.cache.capacity() == cap > 0
    assert A.n.cache.capacity() == 0
    assert A.m.cache_info()[:2] == (0, 0)
