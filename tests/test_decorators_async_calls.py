"""The memoizing decorators on coroutine functions, one call at a time: the wrapper is a
coroutine function returning a native awaitable, a hit creates no coroutine, and the call
algorithm (counters, keys, copy levels, ``cachebox__ignore``, sync and async callbacks, errors,
expiry, ``cache_clear``, methods) is the sync one.

These run in-process under ``asyncio.wait_for``; the few where a failure could leave a lock
held run in a subprocess (``subprocess_harness.run_async_isolated``), so a deadlock fails one
test only.
"""

import asyncio
import functools
import inspect
import sys
import types
import warnings

import pytest

import cachebox
from cachebox import EVENT_HIT, EVENT_MISS, CacheInfo, FIFOCache, LRUCache, TTLCache, cached, cachedmethod

try:
    from .subprocess_harness import run_async_isolated
except ImportError:
    from subprocess_harness import run_async_isolated


def asyncio_iscoroutinefunction(func):
    """``asyncio.iscoroutinefunction(func)``, which BEHAVIOUR.md §13.10 covers because code written
    for older Pythons still calls it. From 3.14 it is deprecated (it warns, then answers as
    ``inspect.iscoroutinefunction`` or asyncio's own marker do), so its warning is silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.iscoroutinefunction(func)


def arun(coro, timeout=60):
    """Runs one coroutine in a new event loop; an asyncio-level hang fails after ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------------------
# the wrapper
# --------------------------------------------------------------------------------------


async def _documented(a: int, b: str = "x", *, c: float = 1.0) -> str:
    """Async doc."""
    return f"{a}{b}{c}"


@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_wrapper_is_a_coroutine_function(decorator):
    w = decorator(LRUCache(0))(_documented)
    assert inspect.iscoroutinefunction(w) is True
    assert asyncio_iscoroutinefunction(w) is True
    assert w.__name__ == "_documented"
    assert w.__qualname__ == "_documented"
    assert w.__doc__ == "Async doc."
    assert w.__module__ == _documented.__module__
    assert w.__wrapped__ is _documented
    assert inspect.signature(w) == inspect.signature(_documented)


def test_factory_mode_and_bound_methods_are_coroutine_functions():
    class A:
        def __init__(self):
            self.c = LRUCache(0)

        @cached(lambda self: self.c)
        async def f(self, x):
            return x

        @cached(None)
        async def g(self, x):
            return x

    for w in (A.f, A().f, A.g, A().g):
        assert inspect.iscoroutinefunction(w) is True, w
        assert asyncio_iscoroutinefunction(w) is True, w


def test_sync_wrapper_is_not_a_coroutine_function():
    w = cached(None)(lambda x: x)
    assert inspect.iscoroutinefunction(w) is False
    assert asyncio_iscoroutinefunction(w) is False


def test_call_returns_a_native_awaitable():
    calls = []

    @cached(LRUCache(0))
    async def func(x):
        calls.append(x)
        return x * 2

    async def main():
        aw = func(3)
        assert inspect.isawaitable(aw)
        assert not isinstance(aw, types.CoroutineType)
        assert calls == []  # nothing runs before it is awaited
        assert await aw == 6
        assert await func(3) == 6

    arun(main())
    assert calls == [3]
    assert func.cache_info() == CacheInfo(1, 1, sys.maxsize, 1, func.cache.memory())
    assert func.cache[3] == 6


def test_awaitable_works_with_gather_and_create_task():
    @cached(None)
    async def func(x):
        await asyncio.sleep(0)
        return x + 1

    async def main():
        r = await asyncio.gather(func(1), func(2))
        t = asyncio.ensure_future(func(3))
        return r, await t

    assert arun(main()) == ([2, 3], 4)


class CountingPartial(functools.partial):
    """A partial of a coroutine function (so ``inspect.iscoroutinefunction`` is true) that
    counts how often it is called, i.e. how often a coroutine is created."""

    created = 0

    def __call__(self, *args, **kwargs):
        CountingPartial.created += 1
        return super().__call__(*args, **kwargs)


def test_hit_does_not_call_the_function_at_all():
    body_runs = []

    async def compute(x):
        body_runs.append(x)
        return [x]

    CountingPartial.created = 0
    target = CountingPartial(compute)
    assert inspect.iscoroutinefunction(target)
    func = cached(LRUCache(0))(target)

    async def main():
        assert await func(1) == [1]
        assert CountingPartial.created == 1
        for _ in range(5):
            assert await func(1) == [1]
        assert CountingPartial.created == 1  # no coroutine was created for the hits
        assert await func(2) == [2]
        assert CountingPartial.created == 2

    arun(main())
    assert body_runs == [1, 2]
    assert func.cache_info()[:2] == (5, 2)


def test_wrapper_of_any_coroutine_function_is_a_coroutine_function():
    # the wrapper is async whenever inspect.iscoroutinefunction(func) is true, which
    # includes a functools.partial of a coroutine function (BEHAVIOUR.md §13.10)
    async def compute(x):
        return x

    target = functools.partial(compute)
    assert inspect.iscoroutinefunction(target)
    func = cached(None)(target)
    assert inspect.iscoroutinefunction(func) is True
    assert asyncio_iscoroutinefunction(func) is True
    assert arun(func(4)) == 4


def test_hit_in_a_new_event_loop():
    calls = []

    @cached(LRUCache(0))
    async def func(x):
        calls.append(x)
        return x

    assert arun(func(1)) == 1
    assert arun(func(1)) == 1
    assert asyncio.run(func(1)) == 1
    assert calls == [1]
    assert func.cache_info()[:2] == (2, 1)


def test_is_cached_async():
    @cached(None)
    async def f():
        pass

    @cached(lambda self: self.c)
    async def g(self):
        pass

    assert cachebox.is_cached(f) is True
    assert cachebox.is_cached(g) is False
    assert not hasattr(g, "cache")
    assert not hasattr(g, "cache_info")
    assert not hasattr(g, "cache_clear")


# --------------------------------------------------------------------------------------
# the call algorithm
# --------------------------------------------------------------------------------------


def test_async_counters_and_keys():
    calls = []

    @cached(LRUCache(0))
    async def func(a, b=0):
        calls.append((a, b))
        await asyncio.sleep(0)
        return a + b

    async def main():
        assert await func(1) == 1
        assert await func(1) == 1
        assert await func(1, 2) == 3
        assert await func(1, b=2) == 3
        assert await func(1, 2) == 3

    arun(main())
    assert calls == [(1, 0), (1, 2), (1, 2)]
    assert set(func.cache.keys()) == {1, (1, 2), (1, object, "b", 2)}
    assert func.cache_info()[:3] == (2, 3, sys.maxsize)


def test_async_copy_levels():
    @cached(LRUCache(0))
    async def level1(x):
        return {"x": [x]}

    @cached(LRUCache(0), copy_level=0)
    async def level0(x):
        return {"x": [x]}

    @cached(LRUCache(0), copy_level=2)
    async def level2(x):
        return (x,)

    async def main():
        a = await level1(1)
        b = await level1(1)
        stored = level1.cache[1]
        assert a == b == stored
        assert a is not stored and b is not stored and a is not b
        assert a["x"] is stored["x"]  # shallow
        a["new"] = 1
        assert await level1(1) == {"x": [1]}

        c = await level0(1)
        assert c is level0.cache[1]
        assert await level0(1) is c

        assert await level2(1) == (1,)

    arun(main())


def test_async_readme_make_dict_example():
    @cached(LRUCache(maxsize=128))
    async def make_dict(name, age):
        return {"name": name, "age": age}

    async def main():
        d = await make_dict("cachebox", 10)
        d["new-key"] = "new-value"
        return await make_dict("cachebox", 10)

    assert arun(main()) == {"name": "cachebox", "age": 10}


def test_async_cachebox_ignore():
    calls = []
    results = []
    key_maker_calls = []
    events = []

    def key_maker(args, kwds):
        key_maker_calls.append(kwds)
        return cachebox.make_key(args, kwds)

    @cached(LRUCache(0), key_maker=key_maker, callback=lambda *e: events.append(e))
    async def func(x, **kw):
        calls.append(kw)
        r = [x]
        results.append(r)
        return r

    async def main():
        r = await func(1, cachebox__ignore=True)
        assert r is results[-1]
        assert calls == [{}]
        assert key_maker_calls == [] and events == []
        assert len(func.cache) == 0
        assert func.cache_info()[:2] == (0, 0)
        await func(1)
        r = await func(1, cachebox__ignore=True, other=5)
        assert r is results[-1]
        assert calls == [{}, {}, {"other": 5}]
        assert func.cache_info()[:2] == (0, 1)
        assert len(events) == 1
        await func(1, cachebox__ignore=False)
        assert func.cache_info()[:2] == (1, 1)
        assert key_maker_calls == [{}, {}]

    arun(main())


def test_async_sync_callback_events():
    events = []

    @cached(LRUCache(0), callback=lambda e, k, v: events.append((e, k, v)))
    async def func(a, b):
        return a + b

    async def main():
        assert await func(1, 2) == 3
        assert await func(1, 2) == 3
        assert await func(5, 4) == 9

    arun(main())
    assert events == [(EVENT_MISS, (1, 2), 3), (EVENT_HIT, (1, 2), 3), (EVENT_MISS, (5, 4), 9)]


def test_async_callback_is_awaited():
    events = []

    async def callback(event, key, value):
        await asyncio.sleep(0)
        events.append((event, key, value))

    @cached(None, callback=callback)
    async def func(x):
        return [x]

    async def main():
        r = await func(1)
        assert events == [(EVENT_MISS, 1, [1])]  # awaited before the call returned
        assert events[0][2] is func.cache[1]  # the stored, uncopied object
        assert r is not func.cache[1]
        await func(1)
        assert len(events) == 2
        assert events[1][0] == EVENT_HIT and events[1][2] is func.cache[1]

    arun(main())
    assert func.callback is callback


def test_async_callback_returning_an_awaitable_is_awaited():
    events = []

    async def record(*e):
        events.append(e)

    @cached(None, callback=lambda *e: record(*e))
    async def func(x):
        return x

    async def main():
        await func(1)
        assert events == [(EVENT_MISS, 1, 1)]
        await func(1)
        assert events == [(EVENT_MISS, 1, 1), (EVENT_HIT, 1, 1)]

    arun(main())


def test_async_callback_exception_propagates():
    run_async_isolated(
        """
        class CallbackError(Exception):
            pass

        async def callback(event, key, value):
            raise CallbackError(event)

        calls = []

        @cachebox.cached(cachebox.LRUCache(0), callback=callback)
        async def func(x):
            calls.append(x)
            return x

        async def main():
            for expected in (EVENT_MISS, EVENT_HIT):
                try:
                    await func(1)
                except CallbackError as e:
                    assert e.args == (expected,)
                else:
                    raise AssertionError("callback error swallowed")

        run(main())
        assert calls == [1]
        assert func.cache[1] == 1
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_async_callback_runs_after_the_key_lock_is_released():
    run_async_isolated(
        """
        inner = []

        async def callback(event, key, value):
            if event == EVENT_MISS:
                inner.append(await func(key))   # same key: a plain hit, no RuntimeError

        @cachebox.cached(None, callback=callback)
        async def func(x):
            return x * 2

        assert run(func(4)) == 8
        assert inner == [8]
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_async_func_exception_propagates_and_is_not_cached():
    run_async_isolated(
        """
        calls = []
        errors = []
        events = []

        @cachebox.cached(cachebox.LRUCache(0), callback=lambda *e: events.append(e))
        async def func(x):
            calls.append(x)
            await asyncio.sleep(0)
            errors.append(ValueError(len(calls)))
            raise errors[-1]

        async def main():
            for i in range(3):
                try:
                    await func(1)
                except ValueError as e:
                    assert e is errors[-1]
                else:
                    raise AssertionError("no error")

        run(main())
        assert calls == [1, 1, 1]
        assert events == []
        assert func.cache_info()[:2] == (0, 0)
        assert len(func.cache) == 0
        """
    )


def test_async_store_errors_propagate_without_counting_a_miss():
    run_async_isolated(
        """
        calls = []

        @cachebox.cached(cachebox.Cache(1))
        async def bounded(x):
            calls.append(x)
            return x

        fz = cachebox.Frozen(cachebox.LRUCache(0, {1: "one"}))

        @cachebox.cached(fz)
        async def frozen(x):
            calls.append(("frozen", x))
            return x

        async def main():
            assert await bounded(1) == 1
            for _ in range(2):
                try:
                    await bounded(2)
                except OverflowError as e:
                    assert str(e) == "The cache has reached the bound"
                else:
                    raise AssertionError("no OverflowError")
            assert await frozen(1) == "one"
            for _ in range(2):
                try:
                    await frozen(2)
                except TypeError as e:
                    assert str(e) == "This cache is frozen."
                else:
                    raise AssertionError("no TypeError")

        run(main())
        assert calls == [1, 2, 2, ("frozen", 2), ("frozen", 2)]
        assert bounded.cache_info()[:2] == (0, 1)
        assert frozen.cache_info()[:2] == (1, 0)
        """
    )


def test_async_unhashable_key_type_error():
    calls = []

    @cached(None)
    async def func(x):
        calls.append(x)

    async def main():
        with pytest.raises(TypeError, match="unhashable"):
            await func([1])

    arun(main())
    assert calls == []
    assert func.cache_info()[:2] == (0, 0)


def test_async_ttl_recomputes_after_expiry():
    calls = []

    @cached(TTLCache(0, ttl=10))
    async def func(x):
        calls.append(x)
        return x

    async def main():
        await func(1)
        cachebox._core._advance_clock(5)
        await func(1)
        assert calls == [1]
        cachebox._core._advance_clock(6)
        await func(1)
        assert calls == [1, 1]

    arun(main())
    assert func.cache_info()[:2] == (1, 2)


def test_async_cache_clear():
    @cached(LRUCache(0), clear_reuse=True)
    async def func(x):
        return x

    async def main():
        for i in range(30):
            await func(i)
        await func(0)

    arun(main())
    cap = func.cache.capacity()
    assert func.cache_info()[:3] == (1, 30, sys.maxsize)
    func.cache_clear()
    assert func.cache_info() == (0, 0, sys.maxsize, 0, 0)
    assert func.cache.capacity() == cap
    assert arun(func(0)) == 0
    assert func.cache_info()[:2] == (0, 1)


def test_async_cachedmethod_drops_self():
    calls = []

    class A:
        __hash__ = None

        @cachedmethod(FIFOCache(0))
        async def m(self, x):
            calls.append(x)
            return [x]

    async def main():
        assert await A().m(1) == [1]
        assert await A().m(1) == [1]

    arun(main())
    assert calls == [1]
    assert list(A.m.cache.keys()) == [1]


def test_async_factory_mode_per_instance():
    class A:
        def __init__(self):
            self.c = LRUCache(0)
            self.calls = 0

        @cached(lambda self: self.c)
        async def m(self, x):
            self.calls += 1
            return x * 2

    a, b = A(), A()

    async def main():
        assert await a.m(2) == 4
        assert await a.m(2) == 4
        assert await b.m(2) == 4

    arun(main())
    assert (a.calls, b.calls) == (1, 1)
    assert list(a.c.items()) == [(2, 4)]
    assert list(b.c.items()) == [(2, 4)]


def test_async_staticmethod_and_classmethod():
    class A:
        def __init__(self, n):
            self.n = n

        @staticmethod
        @cached(None)
        async def s(x):
            return x * 5

        @classmethod
        @cachedmethod({}, copy_level=2)
        async def make(cls, n):
            return cls(n)

    async def main():
        assert await A.s(2) == 10
        assert await A(0).s(2) == 10
        x = await A.make(3)
        y = await A.make(3)
        assert type(x) is A and x.n == 3 and y.n == 3 and x is not y

    arun(main())
    assert A.s.cache_info()[:2] == (1, 1)
    assert A.make.cache_info()[:2] == (1, 1)
