"""``f.cache_invalidate(*args, **kwargs)`` of every decorated function: it takes a call's
arguments, builds that call's key with the same key maker, removes the entry from the cache
the call would use and says whether there was one (the cache's listener gets "explicit"). A
call in flight for the key is not cancelled, but its result is not stored, and later calls do
not wait for it. Also the bound object ``obj.m`` that carries ``self`` into it.

The races with a computation in flight run in child interpreters (``subprocess_harness``), so
a deadlock fails one test; their callers synchronise on events and on the followers the
decorator reports, never on time.
"""

import asyncio
import inspect
import pickle
import types

import pytest

from cachebox import FIFOCache, LRUCache, cached, cachedmethod, make_hash_key, make_typed_key

try:
    from .cache_helpers import CLASS_NAMES, Recorder, make_cache
    from .subprocess_harness import run_async_isolated, run_threads
except ImportError:
    from cache_helpers import CLASS_NAMES, Recorder, make_cache
    from subprocess_harness import run_async_isolated, run_threads


class Boom(Exception):
    pass


def arun(coro, timeout=60):
    """Runs one coroutine in a new event loop; an asyncio-level hang fails after ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def keys(cache):
    """The keys of ``cache``, read without touching any (``k in cache`` moves an LRU entry)."""
    return list(cache.keys())


# --------------------------------------------------------------------------------------
# functions
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_invalidate_removes_the_entry_of_a_call(name):
    rec = Recorder()
    cache = make_cache(name, 0, on_evict=rec)
    calls = []

    @cached(cache)
    def f(x):
        calls.append(x)
        return [x]

    assert f(1) == [1] and f(2) == [2] and f(1) == [1] and calls == [1, 2]
    assert f.cache_invalidate(1) is True
    assert rec.take() == [(1, [1], "explicit")]
    assert sorted(keys(cache)) == [2]
    # Nothing there: nothing removed, nothing reported.
    assert f.cache_invalidate(1) is False and f.cache_invalidate(3) is False
    assert rec.calls == []
    assert f(1) == [1] and calls == [1, 2, 1]


@pytest.mark.parametrize("cache", [None, {}, {"other": 0}], ids=["None", "empty-dict", "dict"])
@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_invalidate_with_the_decorators_own_cache(decorator, cache):
    calls = []

    @decorator(cache)
    def f(*args):
        calls.append(args)
        return len(calls)

    # cachedmethod leaves the first argument out of the key.
    args = ("self", 5) if decorator is cachedmethod else (5,)
    assert f(*args) == 1
    assert type(f.cache) is FIFOCache and 5 in keys(f.cache)
    assert f.cache_invalidate(*args) is True and 5 not in keys(f.cache)
    assert f.cache_invalidate(*args) is False
    assert f(*args) == 2


def test_keyword_arguments_make_the_same_keys_as_a_call():
    @cached(LRUCache(0))
    def f(a, b=0, *, c=0):
        return (a, b, c)

    f(1, b=2)
    f(1, 2)
    f(a=1, b=2)
    f(1, c=3)
    assert len(f.cache) == 4
    assert f.cache_invalidate(1, b=2) is True
    assert (1, object, "b", 2) not in keys(f.cache) and len(f.cache) == 3
    # Keyword order is part of the key, and positional and keyword forms differ.
    assert f.cache_invalidate(b=2, a=1) is False and f.cache_invalidate(1, b=2) is False
    assert f.cache_invalidate(a=1, b=2) is True
    assert f.cache_invalidate(1, 2) is True
    assert f.cache_invalidate(1, c=3) is True
    assert len(f.cache) == 0


def test_cachebox_ignore_is_dropped():
    @cached(LRUCache(0))
    def f(x, y=0):
        return x + y

    f(1, y=2)
    f(5)
    # Whatever its value, the bypass keyword is not part of the key and bypasses nothing here.
    assert f.cache_invalidate(1, y=2, cachebox__ignore=True) is True
    assert f.cache_invalidate(5, cachebox__ignore=False) is True
    assert len(f.cache) == 0


def test_custom_key_maker():
    made = []

    def key_maker(args, kwds):
        made.append((args, kwds))
        return args[0] % 10

    @cached(LRUCache(0), key_maker=key_maker)
    def f(x, **options):
        return x

    f(13)
    made.clear()
    assert f.cache_invalidate(23) is True
    assert made == [((23,), {})] and keys(f.cache) == []
    assert f.cache_invalidate(3, flag=1) is False
    assert made[-1] == ((3,), {"flag": 1})


def test_key_maker_errors_propagate():
    error = Boom("key maker")

    def key_maker(args, kwds):
        if args == ("bad",):
            raise error
        return args

    @cached(LRUCache(0), key_maker=key_maker)
    def f(x):
        return x

    f(1)
    with pytest.raises(Boom) as info:
        f.cache_invalidate("bad")
    assert info.value is error and len(f.cache) == 1


def test_unhashable_arguments_are_a_type_error():
    @cached(LRUCache(0))
    def f(x):
        return x

    f(1)
    with pytest.raises(TypeError):
        f.cache_invalidate([1])
    assert len(f.cache) == 1


def test_typed_key_maker():
    @cached(LRUCache(0), key_maker=make_typed_key)
    def f(x):
        return x

    f(1)
    f(1.0)
    assert len(f.cache) == 2
    assert f.cache_invalidate(1.0) is True
    assert keys(f.cache) == [(1, int)]
    assert f.cache_invalidate(1.0) is False and f.cache_invalidate(True) is False
    assert f.cache_invalidate(1) is True and len(f.cache) == 0


def test_hash_key_maker():
    @cached(LRUCache(0), key_maker=make_hash_key)
    def f(a, b=0):
        return a

    f(1, b=2)
    assert f.cache_invalidate(1, 2) is False
    assert f.cache_invalidate(1, b=2) is True and len(f.cache) == 0


def test_python_subclass_of_a_cache():
    log = []

    class Logged(LRUCache):
        def __getitem__(self, key):
            log.append(key)
            return super().__getitem__(key)

    rec = Recorder()
    cache = Logged(0, on_evict=rec)

    @cached(cache)
    def f(x):
        return x * 2

    assert f(4) == 8 and log
    assert f.cache_invalidate(4) is True
    assert keys(cache) == [] and rec.take() == [(4, 8, "explicit")]
    assert f.cache_invalidate(4) is False and rec.calls == []


def test_async_function():
    rec = Recorder()
    calls = []

    @cached(LRUCache(0, on_evict=rec))
    async def f(x):
        calls.append(x)
        return [x]

    assert arun(f(1)) == [1]
    # A plain answer, not an awaitable.
    assert f.cache_invalidate(1) is True
    assert rec.take() == [(1, [1], "explicit")]
    assert f.cache_invalidate(1) is False
    assert arun(f(1)) == [1] and calls == [1, 1]


def test_the_listener_of_a_decorators_cache():
    # What the decorator stores and clears reaches the listener like any other change.
    rec = Recorder()

    @cached(LRUCache(2, on_evict=rec))
    def f(x):
        return x * 10

    f(1)
    f(2)
    f(3)
    assert rec.take() == [(1, 10, "size")]
    f.cache_clear()
    assert sorted(rec.take()) == [(2, 20, "explicit"), (3, 30, "explicit")]


# --------------------------------------------------------------------------------------
# methods: self comes from the binding
# --------------------------------------------------------------------------------------


def test_cachedmethod_through_a_bound_method():
    rec = Recorder()

    class A:
        calls = 0

        @cachedmethod(LRUCache(0, on_evict=rec))
        def m(self, x):
            A.calls += 1
            return (x, A.calls)

    a, b = A(), A()
    assert a.m(1) == (1, 1) and b.m(1) == (1, 1)
    # self is not part of the key: any instance invalidates the shared entry.
    assert b.m.cache_invalidate(1) is True
    assert rec.take() == [(1, (1, 1), "explicit")]
    assert a.m.cache_invalidate(1) is False
    assert a.m(1) == (1, 2)
    # Through the class, self is passed explicitly.
    assert A.m.cache_invalidate(a, 1) is True and len(A.m.cache) == 0


def test_cached_method_through_a_bound_method_keys_on_self():
    class A:
        @cached(LRUCache(0))
        def m(self, x):
            return (self, x)

    a, b = A(), A()
    a.m(1)
    b.m(1)
    assert len(A.m.cache) == 2
    assert b.m.cache_invalidate(1) is True
    assert keys(A.m.cache) == [(a, 1)]
    assert b.m.cache_invalidate(1) is False
    assert A.m.cache_invalidate(a, 1) is True and len(A.m.cache) == 0


def test_async_methods_through_a_bound_method():
    class A:
        @cachedmethod(LRUCache(0))
        async def shared(self, x):
            return x

        @cached(LRUCache(0))
        async def own(self, x):
            return x

    a = A()
    arun(a.shared(1))
    arun(a.own(1))
    assert A().shared.cache_invalidate(1) is True
    assert A().own.cache_invalidate(1) is False
    assert a.own.cache_invalidate(1) is True
    assert len(A.shared.cache) == len(A.own.cache) == 0


def test_factory_mode_invalidates_in_the_instances_cache():
    # Factory mode is `cached`'s: `cachedmethod` refuses a function.
    decorator = cached
    calls = []

    class PerInstance:
        def __init__(self):
            self.rec = Recorder()
            self._cache = LRUCache(0, on_evict=self.rec)

        @decorator(lambda self: self._cache)
        def m(self, x):
            calls.append((self, x))
            return x * 2

    a, b = PerInstance(), PerInstance()
    a.m(1)
    b.m(1)
    a.m(2)
    assert (len(a._cache), len(b._cache)) == (2, 1)
    assert a.m.cache_invalidate(1) is True
    assert (len(a._cache), len(b._cache)) == (1, 1)
    assert [(value, cause) for _, value, cause in a.rec.take()] == [(2, "explicit")]
    assert b.rec.calls == []
    assert a.m.cache_invalidate(1) is False
    assert PerInstance.m.cache_invalidate(b, 1) is True and len(b._cache) == 0
    a.m(1)
    assert len(calls) == 4
    # The cache comes from the first argument, as in a call.
    with pytest.raises(IndexError):
        PerInstance.m.cache_invalidate()


def test_async_factory_mode():
    class PerInstance:
        def __init__(self):
            self._cache = LRUCache(0)

        @cached(lambda self: self._cache)
        async def m(self, x):
            return x

    a = PerInstance()
    arun(a.m(3))
    assert a.m.cache_invalidate(3) is True and len(a._cache) == 0


# --------------------------------------------------------------------------------------
# the bound object
# --------------------------------------------------------------------------------------


class Holder:
    """Module-level, so that an instance and its bound wrapper pickle."""

    def __init__(self, n=0):
        self.n = n

    @cached(LRUCache(0))
    def m(self, x, y=1):
        """Doc of m."""
        return (self.n, x, y)


def test_bound_object_carries_self():
    obj = Holder(7)
    bound, raw = obj.m, Holder.__dict__["m"]
    assert not isinstance(bound, types.MethodType)
    assert bound.__self__ is obj and bound.__func__ is raw
    assert bound(1) == (7, 1, 1) and bound(1, y=2) == (7, 1, 2)
    assert bound == obj.m
    assert bound.cache is raw.cache and bound.__wrapped__ is raw.__wrapped__
    assert bound.callback is raw.callback is None
    for name in ("__name__", "__qualname__", "__doc__", "__module__"):
        assert getattr(bound, name) == getattr(raw, name), name
    assert bound.__doc__ == "Doc of m."
    assert bound.cache_info() == raw.cache_info()
    assert str(inspect.signature(bound)) == "(x, y=1)"
    bound.cache_clear()
    assert len(raw.cache) == 0


def test_bound_object_pickles_as_the_attribute():
    obj = Holder(3)
    obj.m(1)
    holder, method = pickle.loads(pickle.dumps((obj, obj.m)))
    assert type(holder) is Holder and holder.n == 3
    assert method.__self__ is holder and method.__func__ is Holder.__dict__["m"]
    assert method(2) == (3, 2, 1)


# --------------------------------------------------------------------------------------
# a computation in flight
# --------------------------------------------------------------------------------------

# The leader blocks inside the function until ``gate`` is set; a follower joins it; then the
# key is invalidated, while nothing is stored yet.
_THREAD_RACE = """
import threading
gate, entered = threading.Event(), threading.Event()
calls = []

@cachebox.cached({cache}{key_maker})
def f(x):
    calls.append(x)
    n = len(calls)
    if n == 1:
        entered.set()
        assert gate.wait(60)
    return ("value", n)

results = {{}}

def call(name):
    results[name] = f(1)

leader = threading.Thread(target=call, args=("leader",), daemon=True)
leader.start()
assert entered.wait(60)
follower = threading.Thread(target=call, args=("follower",), daemon=True)
follower.start()
wait_for_followers(f, 1)
assert f.cache_invalidate(1) is False
"""

_THREAD_RACE_ENDS = """
gate.set()
for thread in (leader, follower):
    thread.join(60)
    assert not thread.is_alive()
# The caller and its follower get the stale result, which is not stored.
assert results["leader"] == results["follower"] == ("value", 1), results
assert list(f.cache.keys()) == []
assert f(1) == ("value", 2) and len(calls) == 2
assert f.cache[1] == ("value", 2) and f(1) == ("value", 2) and len(calls) == 2
"""

_THREAD_RACE_LATE_CALL = """
# A call made after the invalidation does not wait for the stale computation: it computes
# while the leader is still blocked, and its result is the one stored.
late = threading.Thread(target=call, args=("late",), daemon=True)
late.start()
late.join(60)
assert not late.is_alive(), "the call after cache_invalidate waited for the stale computation"
assert results["late"] == ("value", 2) and f.cache[1] == ("value", 2), results
gate.set()
for thread in (leader, follower):
    thread.join(60)
    assert not thread.is_alive()
assert results["leader"] == results["follower"] == ("value", 1), results
assert f.cache[1] == ("value", 2)
assert f(1) == ("value", 2) and len(calls) == 2
"""

_CACHES = {"native": "cachebox.LRUCache(0)", "default": "None"}
_KEY_MAKERS = {"default-key": "", "own-key": ", key_maker=own_key_maker"}


@pytest.mark.parametrize("key_maker", _KEY_MAKERS)
@pytest.mark.parametrize("cache", _CACHES)
def test_invalidation_during_a_computation_stores_nothing(cache, key_maker):
    code = _THREAD_RACE.format(cache=_CACHES[cache], key_maker=_KEY_MAKERS[key_maker])
    run_threads(code + _THREAD_RACE_ENDS)


@pytest.mark.parametrize("key_maker", _KEY_MAKERS)
@pytest.mark.parametrize("cache", _CACHES)
def test_a_call_after_invalidation_does_not_wait_for_the_stale_one(cache, key_maker):
    code = _THREAD_RACE.format(cache=_CACHES[cache], key_maker=_KEY_MAKERS[key_maker])
    run_threads(code + _THREAD_RACE_LATE_CALL)


_ASYNC_RACE = """
calls = []

async def main():
    gate, entered = asyncio.Event(), asyncio.Event()

    @cachebox.cached(cachebox.LRUCache(0), key_maker=counting_key_maker)
    async def f(x):
        calls.append(x)
        n = len(calls)
        if n == 1:
            entered.set()
            await gate.wait()
        return ("value", n)

    leader = asyncio.ensure_future(f(1))
    await entered.wait()
    follower = asyncio.ensure_future(f(1))
    await wait_for_arrivals(2)
    assert f.cache_invalidate(1) is False
    if LATE:
        # Does not wait for the stale computation (which is blocked until the gate opens).
        assert await asyncio.wait_for(f(1), 30) == ("value", 2)
        assert f.cache[1] == ("value", 2)
    gate.set()
    assert await leader == ("value", 1)
    assert await follower == ("value", 1)
    if LATE:
        assert f.cache[1] == ("value", 2)
    else:
        assert list(f.cache.keys()) == []
        assert await f(1) == ("value", 2)
    assert await f(1) == ("value", 2) and len(calls) == 2

run(main())
"""


@pytest.mark.parametrize("late", [False, True], ids=["then-next-call", "late-call"])
def test_async_invalidation_during_a_computation(late):
    run_async_isolated(f"LATE = {late}\n" + _ASYNC_RACE)
