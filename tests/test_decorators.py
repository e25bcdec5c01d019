"""The memoizing decorators, sync part (SPEC Decisions 3/6/7/8, section 8, README rows R1, R2,
R4, R11-R14).

Anything that could hang (threads, per-key locks, recursion, a retry after an error left a
lock behind) runs in a subprocess through ``subprocess_harness.run_isolated``, so a deadlock
fails one test instead of stalling the run.
"""

import collections
import functools
import gc
import importlib
import inspect
import pickle
import sys
import types
import warnings
import weakref

import pytest

import cachebox

try:
    from .subprocess_harness import run_isolated, run_threads
except ImportError:
    from subprocess_harness import run_isolated, run_threads

from cachebox import (
    EVENT_HIT,
    EVENT_MISS,
    Cache,
    CacheInfo,
    FIFOCache,
    Frozen,
    LFUCache,
    LRUCache,
    RRCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
    is_cached,
    make_key,
)

# --------------------------------------------------------------------------------------
# package surface
# --------------------------------------------------------------------------------------


def test_events_constants():
    assert EVENT_MISS == 1
    assert EVENT_HIT == 2
    assert type(EVENT_MISS) is int
    assert type(EVENT_HIT) is int


def test_decorator_names_exported():
    for name in ("cached", "cachedmethod", "is_cached", "CacheInfo", "EVENT_MISS", "EVENT_HIT"):
        assert name in cachebox.__all__
        assert hasattr(cachebox, name)


def test_cache_info_is_a_namedtuple():
    info = CacheInfo(1, 2, 3, 4, 5)
    assert isinstance(info, tuple)
    assert info._fields == ("hits", "misses", "maxsize", "length", "memory")
    assert (info.hits, info.misses, info.maxsize, info.length, info.memory) == (1, 2, 3, 4, 5)
    assert info[0] == 1 and info[4] == 5
    hits, misses, maxsize, length, memory = info
    assert (hits, misses, maxsize, length, memory) == (1, 2, 3, 4, 5)
    assert info._asdict() == {"hits": 1, "misses": 2, "maxsize": 3, "length": 4, "memory": 5}
    assert info == (1, 2, 3, 4, 5)
    assert repr(info) == "CacheInfo(hits=1, misses=2, maxsize=3, length=4, memory=5)"
    assert CacheInfo(hits=0, misses=0, maxsize=1, length=0, memory=0) == (0, 0, 1, 0, 0)


# --------------------------------------------------------------------------------------
# README examples
# --------------------------------------------------------------------------------------


def test_readme_factorial_is_120():
    # R1: the README asserts 125; 5! is 120
    @cached(FIFOCache(maxsize=128))
    def factorial(number: int) -> int:
        fact = 1
        for num in range(2, number + 1):
            fact *= num
        return fact

    assert factorial(5) == 120
    assert len(factorial.cache) == 1
    assert factorial.cache[5] == 120


def test_readme_sum_as_string():
    @cached(LRUCache(128))
    def sum_as_string(a, b):
        return str(a + b)

    assert sum_as_string(1, 2) == "3"
    assert len(sum_as_string.cache) == 1
    sum_as_string.cache_clear()
    assert len(sum_as_string.cache) == 0


def test_readme_cache_clear_not_clear_cache():
    # R2: the method is cache_clear; clear_cache does not exist
    @cached(LRUCache(0))
    def func(a):
        return a

    assert callable(func.cache_clear)
    assert not hasattr(func, "clear_cache")


def test_readme_cache_info_repr_memory_zero():
    # R4: memory=0 for an empty cache, not 8
    @cached(LRUCache(0))
    def sum_as_string(a, b):
        return str(a + b)

    info = sum_as_string.cache_info()
    assert isinstance(info, CacheInfo)
    assert info == CacheInfo(hits=0, misses=0, maxsize=sys.maxsize, length=0, memory=0)
    assert repr(info) == "CacheInfo(hits=0, misses=0, maxsize=9223372036854775807, length=0, memory=0)"
    assert repr(sum_as_string.cache) == "cachebox.LRUCache[0/9223372036854775807]({})"


def test_readme_make_dict_copy_example():
    @cached(LRUCache(maxsize=128))
    def make_dict(name: str, age: int) -> dict:
        return {"name": name, "age": age}

    d = make_dict("cachebox", 10)
    assert d == {"name": "cachebox", "age": 10}
    d["new-key"] = "new-value"
    d2 = make_dict("cachebox", 10)
    assert d2 == {"name": "cachebox", "age": 10}
    assert make_dict.cache_info().hits == 1


def test_readme_callback_example():
    log = []

    def callback_func(event, key, value):
        if event == EVENT_MISS:
            log.append(("miss", key, value))
        elif event == EVENT_HIT:
            log.append(("hit", key, value))
        else:  # pragma: no cover
            raise NotImplementedError

    @cached(LRUCache(0), callback=callback_func)
    def func(a, b):
        return a + b

    assert func(1, 2) == 3
    assert func(1, 2) == 3
    assert func(1, 2) == 3
    assert func(5, 4) == 9
    assert log == [("miss", (1, 2), 3), ("hit", (1, 2), 3), ("hit", (1, 2), 3), ("miss", (5, 4), 9)]
    assert func.callback is callback_func


def test_readme_is_cached_example():
    @cached(FIFOCache(0))
    def func():
        pass

    assert is_cached(func) is True


def test_readme_cachedmethod_example():
    # R11: the README calls c.my_method() without the required argument
    calls = []

    class MyClass:
        @cachedmethod(TTLCache(0, ttl=10))
        def my_method(self, name: str):
            calls.append(name)
            return "Hello, " + name + "!"

    c = MyClass()
    assert c.my_method("x") == "Hello, x!"
    assert c.my_method("x") == "Hello, x!"
    assert calls == ["x"]
    assert list(MyClass.my_method.cache.keys()) == ["x"]
    with pytest.raises(TypeError):
        c.my_method()


def test_readme_classmethod_staticmethod_note():
    created = []

    class MyClass:
        def __init__(self, num: int) -> None:
            self.num = num
            created.append(num)

        @classmethod
        @cachedmethod({}, copy_level=2)
        def class_func(cls, num: int):
            return cls(num)

        @staticmethod
        @cached({})
        def static_func(num: int):
            created.append(("static", num))
            return num * 5

    a = MyClass.class_func(1)
    b = MyClass.class_func(1)
    assert type(a) is MyClass and a.num == 1
    assert type(b) is MyClass and b.num == 1
    assert a is not b  # copy_level=2 copies every result
    assert created == [1]
    assert MyClass.class_func.cache_info().hits == 1
    assert list(MyClass.class_func.cache.keys()) == [1]  # cls is not part of the key

    assert MyClass.static_func(2) == 10
    assert MyClass(0).static_func(2) == 10
    assert created == [1, ("static", 2), 0]
    assert list(MyClass.static_func.cache.keys()) == [2]
    assert is_cached(MyClass.static_func)
    assert is_cached(MyClass.class_func)


# --------------------------------------------------------------------------------------
# accepted cache values (8.1, 8.2)
# --------------------------------------------------------------------------------------


def _identity(x):
    return x


def test_none_gives_a_new_unbounded_fifo_cache():
    f = cached(None)(_identity)
    g = cached(None)(_identity)
    assert type(f.cache) is FIFOCache
    assert f.cache.maxsize == sys.maxsize
    assert len(f.cache) == 0
    assert f.cache is not g.cache
    f(1)
    assert list(f.cache.items()) == [(1, 1)]
    assert len(g.cache) == 0


def test_exact_dict_is_copied_into_a_fifo_cache():
    calls = []
    d = {(1, 2): "preset"}

    @cached(d)
    def func(a, b):
        calls.append((a, b))
        return a + b

    assert type(func.cache) is FIFOCache
    assert func.cache.maxsize == sys.maxsize
    assert func.cache is not d
    assert dict(func.cache.items()) == {(1, 2): "preset"}
    assert func(1, 2) == "preset"  # served from the copied item
    assert calls == []
    assert func(3, 4) == 7
    assert d == {(1, 2): "preset"}  # the dict is never the storage
    d[(5, 6)] = "later"
    assert func(5, 6) == 11
    assert calls == [(3, 4), (5, 6)]
    assert dict(func.cache.items()) == {(1, 2): "preset", (3, 4): 7, (5, 6): 11}
    assert d == {(1, 2): "preset", (5, 6): "later"}


def test_empty_dict_literal_gives_empty_fifo_cache():
    d = {}
    f = cached(d)(_identity)
    assert type(f.cache) is FIFOCache
    f(1)
    assert d == {}
    assert len(f.cache) == 1


CACHE_FACTORIES = [
    lambda: Cache(0),
    lambda: FIFOCache(0),
    lambda: RRCache(0),
    lambda: LRUCache(0),
    lambda: LFUCache(0),
    lambda: TTLCache(0, 100),
    lambda: VTTLCache(0),
]
CACHE_IDS = ["Cache", "FIFOCache", "RRCache", "LRUCache", "LFUCache", "TTLCache", "VTTLCache"]


@pytest.mark.parametrize("make", CACHE_FACTORIES, ids=CACHE_IDS)
@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_cachebox_cache_is_used_directly(make, decorator):
    c = make()
    calls = []

    def func(*args):
        calls.append(args)
        return sum(args)

    f = decorator(c)(func)
    assert f.cache is c
    if decorator is cached:
        assert f(1, 2) == 3
        assert f(1, 2) == 3
        assert c[(1, 2)] == 3
    else:  # args[0] is dropped from the key
        assert f(0, 1, 2) == 3
        assert f(9, 1, 2) == 3
        assert c[(1, 2)] == 3
    assert len(c) == 1
    assert len(calls) == 1
    assert f.cache_info() == (1, 1, c.maxsize, 1, c.memory())


def test_python_subclass_of_a_cache_is_used_directly():
    class MyLRU(LRUCache):
        pass

    c = MyLRU(10)
    f = cached(c)(_identity)
    assert f.cache is c
    f(1)
    f(1)
    assert c[1] == 1
    assert f.cache_info() == (1, 1, 10, 1, c.memory())


def test_subclass_item_protocol_is_used():
    # the call algorithm is written as c[key] / c[key] = result
    log = []

    class Logged(LRUCache):
        def __getitem__(self, key):
            log.append(("get", key))
            return super().__getitem__(key)

        def __setitem__(self, key, value):
            log.append(("set", key, value))
            super().__setitem__(key, value)

    f = cached(Logged(0))(_identity)
    assert f(5) == 5
    assert ("set", 5, 5) in log
    assert ("get", 5) in log
    log.clear()
    assert f(5) == 5
    assert log == [("get", 5)]


def test_only_key_error_from_lookup_counts_as_a_miss():
    calls = []

    class Broken(LRUCache):
        def __getitem__(self, key):
            raise LookupError("not a KeyError")

    @cached(Broken(0))
    def func(x):
        calls.append(x)
        return x

    with pytest.raises(LookupError, match="not a KeyError") as ei:
        func(1)
    assert type(ei.value) is LookupError
    assert calls == []
    assert func.cache_info() == (0, 0, sys.maxsize, 0, 0)


def test_frozen_cache_is_used_directly_for_hits():
    fz = Frozen(LRUCache(0, {1: "one"}))
    calls = []

    @cached(fz)
    def func(x):
        calls.append(x)
        return str(x)

    assert func.cache is fz
    assert func(1) == "one"
    assert calls == []
    assert func.cache_info() == (1, 0, sys.maxsize, 1, fz.memory())
    assert is_cached(func)


def _reject_values():
    class D(dict):
        pass

    class Callable:
        def __call__(self, x):
            return LRUCache(0)

    class Holder:
        def method(self):
            return LRUCache(0)

    def plain(self):
        return LRUCache(0)

    return [
        D(),
        collections.OrderedDict(),
        collections.defaultdict(int),
        functools.partial(plain),
        Holder().method,
        Callable(),
        len,
        LRUCache,
        5,
        "cache",
        [],
        (),
    ]


@pytest.mark.parametrize("value", _reject_values(), ids=lambda v: type(v).__name__)
def test_cached_rejects_other_values(value):
    with pytest.raises(TypeError) as ei:
        cached(value)
    assert str(ei.value) == f"we expected cachebox caches or function, got {value!r}"


@pytest.mark.parametrize(
    "value",
    [*_reject_values(), lambda self: self._cache, _identity],
    ids=lambda v: type(v).__name__,
)
def test_cachedmethod_rejects_other_values_and_functions(value):
    with pytest.raises(TypeError) as ei:
        cachedmethod(value)
    assert str(ei.value) == f"we expected cachebox caches, got {value!r}"


def test_rejection_happens_when_cached_is_called():
    # the error comes from cached(...), before any function is decorated
    with pytest.raises(TypeError, match="we expected cachebox caches or function"):
        cached(collections.OrderedDict())
    with pytest.raises(TypeError, match="we expected cachebox caches, got"):
        cachedmethod(collections.OrderedDict())


def test_cachedmethod_accepts_none_and_dict():
    f = cachedmethod(None)(_identity)
    assert type(f.cache) is FIFOCache and f.cache.maxsize == sys.maxsize
    d = {"k": "v"}
    g = cachedmethod(d)(lambda self, x: x)
    assert type(g.cache) is FIFOCache
    assert g.cache is not d
    assert g(object(), "k") == "v"
    g(object(), "other")
    assert d == {"k": "v"}


def test_cachedmethod_emits_no_deprecation_warning():
    # Decision 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        deco = cachedmethod(LRUCache(0))

        class A:
            @deco
            def m(self, x):
                return x

        assert A().m(1) == 1
        assert A().m(1) == 1
        cachedmethod(None)
        cachedmethod({})


def test_cached_emits_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = cached(LRUCache(0))(_identity)
        assert f(1) == 1 and f(1) == 1


# --------------------------------------------------------------------------------------
# the wrapper object (Decision 7)
# --------------------------------------------------------------------------------------


def _documented(a: int, b: "str" = "x", *rest, key: float = 1.5, **extra) -> str:
    """A docstring."""
    return f"{a}{b}"


_documented.custom_attribute = "custom"


@pytest.mark.parametrize("decorator", [cached, cachedmethod])
def test_wrapper_metadata(decorator):
    w = decorator(LRUCache(0))(_documented)
    assert w.__name__ == "_documented"
    assert w.__qualname__ == "_documented"
    assert w.__doc__ == "A docstring."
    assert w.__module__ == _documented.__module__
    assert w.__wrapped__ is _documented
    assert w.custom_attribute == "custom"  # __dict__ is merged
    assert isinstance(w.__dict__, dict)
    assert w.__dict__["__wrapped__"] is _documented
    assert inspect.signature(w) == inspect.signature(_documented)
    assert str(inspect.signature(w)) == str(inspect.signature(_documented))
    assert callable(w)
    assert not isinstance(w, types.FunctionType)  # a native object
    assert inspect.iscoroutinefunction(w) is False


def test_wrapper_metadata_of_methods_and_lambdas():
    class K:
        @cached(None)
        def method(self, x):
            "method doc"
            return x

    assert K.method.__qualname__.endswith("K.method")
    assert K.method.__name__ == "method"
    assert K.method.__doc__ == "method doc"

    lam = lambda x: x
    w = cached(None)(lam)
    assert w.__name__ == "<lambda>"
    assert w.__wrapped__ is lam
    assert w.__doc__ is None


def test_wrapper_dict_is_writable():
    w = cached(None)(_identity)
    w.extra = 1
    assert w.extra == 1
    assert w.__dict__["extra"] == 1


def test_callback_attribute():
    def cb(event, key, value):
        pass

    assert cached(None, callback=cb)(_identity).callback is cb
    assert cached(None)(_identity).callback is None
    assert cachedmethod(None, callback=cb)(_identity).callback is cb
    assert cached(lambda self: self._c, callback=cb)(_identity).callback is cb
    assert cached(lambda self: self._c)(_identity).callback is None


_PICKLE_MODULE = """
import cachebox

@cachebox.cached(cachebox.LRUCache(0))
def module_level(x):
    return x * 2

@cachebox.cachedmethod(None)
def module_level_method(self, x):
    return x

@cachebox.cached(None)
async def module_level_async(x):
    return x
"""


def test_module_level_wrapper_pickles_by_reference(tmp_path, monkeypatch):
    name = "_cachebox_pickle_probe"
    (tmp_path / f"{name}.py").write_text(_PICKLE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    try:
        f = module.module_level
        assert f(2) == 4
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(f, protocol)
            assert pickle.loads(data) is f
            assert len(data) < 200  # a reference, not the cache
        assert pickle.loads(pickle.dumps(module.module_level_method)) is module.module_level_method
        assert pickle.loads(pickle.dumps(module.module_level_async)) is module.module_level_async
    finally:
        sys.modules.pop(name, None)


def test_wrapper_binds_like_a_function():
    class A:
        @cached(None)
        def method(self, x):
            return (self, x)

    raw = A.__dict__["method"]
    a = A()
    bound = a.method
    assert isinstance(bound, types.MethodType)
    assert bound.__self__ is a
    assert bound.__func__ is raw
    assert A.method is raw  # class access returns the wrapper itself
    assert raw.__get__(None, A) is raw
    assert bound(1) == (a, 1)
    assert A.method(a, 2) == (a, 2)
    assert bound.cache is raw.cache
    assert bound.__name__ == "method"


def test_cache_info_and_clear_are_bound_callables():
    f = cached(LRUCache(0))(_identity)
    info = f.cache_info
    clear = f.cache_clear
    f(1)
    assert info() == (0, 1, sys.maxsize, 1, f.cache.memory())
    clear()
    assert info() == (0, 0, sys.maxsize, 0, 0)


# --------------------------------------------------------------------------------------
# factory mode
# --------------------------------------------------------------------------------------


class PerInstance:
    factory_calls = 0

    def __init__(self):
        self._cache = LRUCache(0)
        self.calls = []

    @staticmethod
    def _get_cache(obj):
        PerInstance.factory_calls += 1
        return obj._cache

    @cached(lambda self: PerInstance._get_cache(self))
    def method(self, x, y=1):
        self.calls.append(x)
        return [x, y]


def test_factory_mode_uses_a_cache_per_instance():
    PerInstance.factory_calls = 0
    a, b = PerInstance(), PerInstance()
    assert a.method(1) == [1, 1]
    assert a.method(1) == [1, 1]
    assert b.method(1) == [1, 1]
    assert a.calls == [1] and b.calls == [1]
    assert list(a._cache.keys()) == [1]  # self excluded from the key
    assert list(b._cache.keys()) == [1]
    assert a.method(2, y=3) == [2, 3]
    assert (2, object, "y", 3) in a._cache
    assert PerInstance.factory_calls == 4  # called on every call


def test_factory_mode_copy_level_applies():
    a = PerInstance()
    r1 = a.method(7)
    r2 = a.method(7)
    assert r1 == r2 == [7, 1]
    assert r1 is not r2
    assert r1 is not a._cache[7]


def test_factory_mode_has_no_cache_attributes():
    f = PerInstance.method
    for name in ("cache", "cache_info", "cache_clear"):
        assert not hasattr(f, name), name
        with pytest.raises(AttributeError):
            getattr(f, name)
    assert not hasattr(PerInstance().method, "cache")
    assert f.callback is None
    assert is_cached(f) is False
    assert is_cached(PerInstance().method) is False


def test_factory_mode_accepts_def_functions():
    store = LRUCache(0)

    def factory(first):
        return store

    @cached(factory)
    def func(first, x):
        return x * 10

    assert func("ignored", 3) == 30
    assert func("other", 3) == 30
    assert list(store.items()) == [(3, 30)]


def test_factory_mode_without_positional_argument_raises_index_error():
    calls = []

    @cached(lambda self: LRUCache(0))
    def func(*args, **kwds):
        calls.append(1)
        return 1

    with pytest.raises(IndexError):
        func()
    with pytest.raises(IndexError):
        func(x=1)
    assert calls == []


def test_factory_mode_callback_key_excludes_self():
    events = []

    class A:
        def __init__(self):
            self.c = FIFOCache(0)

        @cached(lambda self: self.c, callback=lambda *e: events.append(e))
        def m(self, x):
            return x + 1

    a = A()
    a.m(1)
    a.m(1)
    assert events == [(EVENT_MISS, 1, 2), (EVENT_HIT, 1, 2)]


def test_bare_cached_pitfall_is_not_an_error():
    # bare @cached passes the function itself as a factory; upstream gives no error
    def func(x):
        return x

    deco = cached(func)
    assert callable(deco)


# --------------------------------------------------------------------------------------
# the call algorithm (8.1)
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
    expected_memory = (1).__sizeof__() + (2).__sizeof__() + (2).__sizeof__() + (3).__sizeof__()
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


def test_unhashable_key_type_error_propagates():
    calls = []

    @cached(LRUCache(0))
    def func(x):
        calls.append(x)
        return 1

    with pytest.raises(TypeError, match="unhashable"):
        func([1, 2])
    with pytest.raises(TypeError, match="unhashable"):
        func(1, k={})  # the key is built (and fails) before func could reject ``k``
    assert calls == []
    assert func.cache_info() == (0, 0, sys.maxsize, 0, 0)


def test_unhashable_key_from_key_maker_propagates():
    calls = []

    @cached(None, key_maker=lambda args, kwds: list(args))
    def func(x):
        calls.append(x)
        return x

    with pytest.raises(TypeError):
        func(1)
    assert calls == []
    assert func.cache_info()[:2] == (0, 0)


class _HashError(Exception):
    pass


class _BadHash:
    def __hash__(self):
        raise _HashError("no hash")


class _EqRaises:
    def __init__(self, tag):
        self.tag = tag

    def __hash__(self):
        return 42

    def __eq__(self, other):
        if self is other:
            return True
        raise ValueError("eq failed")


def test_hash_error_propagates():
    calls = []

    @cached(None)
    def func(x):
        calls.append(x)

    with pytest.raises(_HashError):
        func(_BadHash())
    assert calls == []
    assert func.cache_info()[:2] == (0, 0)


def test_eq_error_during_lookup_propagates():
    calls = []

    @cached(LRUCache(0), key_maker=lambda args, kwds: args[0])
    def func(x):
        calls.append(x.tag)
        return x.tag

    first = _EqRaises("a")
    assert func(first) == "a"
    assert func(first) == "a"  # identity check first: a hit
    with pytest.raises(ValueError, match="eq failed"):
        func(_EqRaises("b"))
    assert calls == ["a"]
    assert func.cache_info()[:2] == (1, 1)


def test_func_exception_propagates_and_is_not_cached():
    run_isolated(
        """
        import cachebox
        events = []
        calls = []
        errors = []

        @cachebox.cached(cachebox.LRUCache(0), callback=lambda *e: events.append(e))
        def func(x):
            calls.append(x)
            exc = ValueError("fail %d" % len(calls))
            errors.append(exc)
            raise exc

        for i in range(3):
            try:
                func(1)
            except ValueError as e:
                assert e is errors[-1], (e, errors)
            else:
                raise AssertionError("no error")
        assert calls == [1, 1, 1]          # exceptions are never cached
        assert events == []                # R14: no callback when func raises
        assert func.cache_info() == (0, 0, func.cache.maxsize, 0, 0)
        assert len(func.cache) == 0
        """
    )


def test_base_exception_propagates_and_lock_is_released():
    run_isolated(
        """
        import cachebox

        class Stop(BaseException):
            pass

        state = {"raise": True, "calls": 0}

        @cachebox.cached(None)
        def func(x):
            state["calls"] += 1
            if state["raise"]:
                raise Stop()
            return x

        try:
            func(1)
        except Stop:
            pass
        else:
            raise AssertionError("no Stop")
        state["raise"] = False
        assert func(1) == 1
        assert func(1) == 1
        assert state["calls"] == 2
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_cache_overflow_error_propagates_without_counting_a_miss():
    run_isolated(
        """
        import cachebox
        calls = []
        events = []

        @cachebox.cached(cachebox.Cache(1), callback=lambda *e: events.append(e))
        def func(x):
            calls.append(x)
            return x * 10

        assert func(1) == 10
        for _ in range(2):
            try:
                func(2)
            except OverflowError as e:
                assert str(e) == "The cache has reached the bound", str(e)
            else:
                raise AssertionError("no OverflowError")
        assert calls == [1, 2, 2]
        assert func.cache_info() == (0, 1, 1, 1, func.cache.memory())
        assert events == [(cachebox.EVENT_MISS, 1, 10)]
        assert func(1) == 10                      # still a hit
        assert func.cache_info()[:2] == (1, 1)
        assert 2 not in func.cache
        """
    )


def test_frozen_store_type_error_propagates_without_counting_a_miss():
    run_isolated(
        """
        import cachebox
        inner = cachebox.LRUCache(0, {1: "one"})
        fz = cachebox.Frozen(inner)
        calls = []
        events = []

        @cachebox.cached(fz, callback=lambda *e: events.append(e))
        def func(x):
            calls.append(x)
            return str(x)

        assert func(1) == "one"
        for _ in range(2):
            try:
                func(2)
            except TypeError as e:
                assert str(e) == "This cache is frozen.", str(e)
            else:
                raise AssertionError("no TypeError")
        assert calls == [2, 2]
        assert len(inner) == 1 and 2 not in inner   # the frozen cache was not bypassed
        assert func.cache_info() == (1, 0, inner.maxsize, 1, inner.memory())
        assert events == [(cachebox.EVENT_HIT, 1, "one")]
        """
    )


def test_frozen_ignore_store_does_nothing():
    run_isolated(
        """
        import cachebox
        inner = cachebox.LRUCache(0)
        fz = cachebox.Frozen(inner, ignore=True)
        calls = []
        events = []

        @cachebox.cached(fz, callback=lambda *e: events.append(e))
        def func(x):
            calls.append(x)
            return x + 1

        assert func(1) == 2
        assert func(1) == 2
        assert calls == [1, 1]                # nothing was stored
        assert len(inner) == 0
        assert func.cache_info()[:2] == (0, 2)
        assert events == [(cachebox.EVENT_MISS, 1, 2), (cachebox.EVENT_MISS, 1, 2)]
        """
    )


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


# --------------------------------------------------------------------------------------
# copy_level
# --------------------------------------------------------------------------------------


class DictSub(dict):
    pass


class ListSub(list):
    pass


class SetSub(set):
    pass


class Obj:
    copies = 0

    def __init__(self):
        self.items = []

    def __copy__(self):
        Obj.copies += 1
        new = Obj.__new__(Obj)
        new.items = list(self.items)
        return new


COPIED_AT_LEVEL_1 = [lambda: {"a": [1]}, lambda: [1, [2]], lambda: {1, 2}]
NOT_COPIED_AT_LEVEL_1 = [
    lambda: DictSub(a=1),
    lambda: ListSub([1]),
    lambda: SetSub({1}),
    lambda: (1, [2]),
    lambda: frozenset({1}),
    lambda: Obj(),
    lambda: collections.OrderedDict(a=1),
    lambda: bytearray(b"x"),
]


@pytest.mark.parametrize("level", [1, 3, -1, None])
@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1, ids=["dict", "list", "set"])
def test_copy_level_1_copies_exact_dict_list_set(make, level):
    # "Any other value, including the default 1" behaves like 1
    kwargs = {} if level == 1 else {"copy_level": level}

    @cached(LRUCache(0), **kwargs)
    def func(x):
        return make()

    r1 = func(1)  # the first caller on a miss gets a copy too
    r2 = func(1)
    stored = func.cache[1]
    assert type(r1) is type(stored) and type(r2) is type(stored)
    assert r1 == stored and r2 == stored
    assert r1 is not stored and r2 is not stored and r1 is not r2
    if isinstance(stored, (dict, list)):
        # shallow: nested objects are shared
        inner = stored["a"] if isinstance(stored, dict) else stored[1]
        assert (r1["a"] if isinstance(r1, dict) else r1[1]) is inner


@pytest.mark.parametrize("level", [1.5, "other"])
def test_copy_level_any_other_value_behaves_like_1(level):
    # SPEC 8.1: "Any other value, including the default 1" -- not only other ints
    @cached(LRUCache(0), copy_level=level)
    def func(x):
        return [x] if x else DictSub(a=1)

    r1 = func(1)
    assert r1 == [1] and r1 is not func.cache[1]
    assert func(0) is func.cache[0]


@pytest.mark.parametrize("make", NOT_COPIED_AT_LEVEL_1)
def test_copy_level_1_returns_other_types_as_is(make):
    @cached(LRUCache(0))
    def func(x):
        return make()

    r1 = func(1)
    r2 = func(1)
    assert r1 is func.cache[1]
    assert r2 is r1


@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1 + NOT_COPIED_AT_LEVEL_1)
def test_copy_level_0_never_copies(make):
    @cached(LRUCache(0), copy_level=0)
    def func(x):
        return make()

    r1 = func(1)
    assert r1 is func.cache[1]
    assert func(1) is r1


@pytest.mark.parametrize("make", COPIED_AT_LEVEL_1 + NOT_COPIED_AT_LEVEL_1[:3] + [lambda: Obj()])
def test_copy_level_2_always_copies(make):
    @cached(LRUCache(0), copy_level=2)
    def func(x):
        return make()

    r1 = func(1)
    r2 = func(1)
    stored = func.cache[1]
    assert type(r1) is type(stored)
    assert r1 is not stored and r2 is not stored and r1 is not r2


def test_copy_level_2_uses_copy_copy():
    sentinel = object()

    class Special:
        def __copy__(self):
            return sentinel

    @cached(None, copy_level=2)
    def func(x):
        return Special()

    assert func(1) is sentinel
    assert func(1) is sentinel
    assert type(func.cache[1]) is Special


def test_copy_level_2_immutables_come_back_equal():
    @cached(None, copy_level=2)
    def func(x):
        return (x, "s")

    assert func(1) == (1, "s")
    assert func(1) == (1, "s")


def test_copy_level_2_mutation_does_not_leak_upstream():
    Obj.copies = 0

    @cached(LRUCache(0), copy_level=2)
    def func(x):
        return Obj()

    a = func(1)
    a.items.append("leak")
    b = func(1)
    assert b.items == []
    assert Obj.copies == 2  # the first caller on a miss receives a copy too


def test_default_copy_level_mutation_leaks_upstream():
    @cached(LRUCache(0))
    def func(x):
        return Obj()

    a = func(1)
    a.items.append("leak")
    b = func(1)
    assert b is a
    assert b.items == ["leak"]


def test_copy_level_applies_to_cachedmethod():
    class A:
        @cachedmethod(None)
        def m(self, x):
            return {"x": x}

    r1 = A().m(1)
    r1["y"] = 2
    assert A().m(1) == {"x": 1}


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


# --------------------------------------------------------------------------------------
# methods, cachedmethod, classmethod/staticmethod
# --------------------------------------------------------------------------------------


def test_cached_method_includes_self_and_keeps_instances_alive():
    class A:
        @cached(None)
        def m(self, x):
            return x * 2

    a, b = A(), A()
    assert a.m(1) == 2
    assert b.m(1) == 2
    assert len(A.m.cache) == 2
    assert (a, 1) in A.m.cache and (b, 1) in A.m.cache
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is not None  # kept alive by the key


def test_cached_method_needs_hashable_instances():
    class Unhashable:
        __hash__ = None

        @cached(None)
        def m(self, x):
            return x

    with pytest.raises(TypeError):
        Unhashable().m(1)


def test_cachedmethod_drops_self():
    calls = []

    class Unhashable:
        __hash__ = None

        def __init__(self, n):
            self.n = n

        @cachedmethod(LRUCache(0))
        def m(self, x):
            calls.append(self.n)
            return x + self.n

    assert Unhashable(1).m(10) == 11
    assert Unhashable(2).m(10) == 11  # shared entry: self is not part of the key
    assert calls == [1]
    assert list(Unhashable.m.cache.keys()) == [10]
    assert Unhashable.m.cache_info()[:2] == (1, 1)


def test_cachedmethod_callback_key_excludes_self():
    events = []

    class A:
        @cachedmethod(None, callback=lambda *e: events.append(e))
        def m(self, a, b):
            return a + b

    A().m(1, 2)
    A().m(1, 2)
    assert events == [(EVENT_MISS, (1, 2), 3), (EVENT_HIT, (1, 2), 3)]


def test_cachedmethod_on_classmethod_ignores_cls():
    class Base:
        def __init__(self, n):
            self.n = n

        @classmethod
        @cachedmethod(None, copy_level=2)
        def make(cls, n):
            return cls(n)

    class Sub(Base):
        pass

    first = Base.make(1)
    other = Sub.make(1)  # the cached Base instance (copied), as README accepts
    assert type(first) is Base
    assert type(other) is Base
    assert other.n == 1 and other is not first
    assert list(Base.make.cache.keys()) == [1]


def test_cached_on_classmethod_includes_cls():
    class Base:
        def __init__(self, n):
            self.n = n

        @classmethod
        @cached(None, copy_level=2)
        def make(cls, n):
            return cls(n)

    class Sub(Base):
        pass

    a = Base.make(1)
    b = Sub.make(1)
    c = Sub.make(1)
    assert type(a) is Base and type(b) is Sub and type(c) is Sub
    assert b is not c
    assert set(Base.make.cache.keys()) == {(Base, 1), (Sub, 1)}
    assert Base.make.cache_info()[:2] == (1, 2)


def test_cached_on_staticmethod():
    calls = []

    class A:
        @staticmethod
        @cached(None)
        def s(x):
            calls.append(x)
            return x * 5

    assert A.s(2) == 10
    assert A().s(2) == 10
    assert calls == [2]
    assert list(A.s.cache.keys()) == [2]


# --------------------------------------------------------------------------------------
# is_cached (8.4)
# --------------------------------------------------------------------------------------


def test_is_cached_rules():
    class A:
        @cached(None)
        def m(self):
            pass

        @cachedmethod(None)
        def n(self):
            pass

        @cached(lambda self: LRUCache(0))
        def factory(self):
            pass

    class HasCache:
        cache = LRUCache(0)

    class HasFrozen:
        cache = Frozen(LRUCache(0))

    class HasDict:
        def __init__(self):
            self.cache = {}

    class HasSubclassCache:
        pass

    class MyCache(FIFOCache):
        pass

    holder = HasSubclassCache()
    holder.cache = MyCache(0)

    assert is_cached(cached(None)(_identity)) is True
    assert is_cached(cachedmethod(None)(_identity)) is True
    assert is_cached(A.m) is True
    assert is_cached(A().m) is True  # bound method: attribute lookup reaches the function
    assert is_cached(A.n) is True
    assert is_cached(A().n) is True
    assert is_cached(A.factory) is False
    assert is_cached(A().factory) is False
    assert is_cached(_identity) is False
    assert is_cached(lambda: None) is False
    assert is_cached(functools.lru_cache()(_identity)) is False
    assert is_cached(HasCache()) is True
    assert is_cached(HasCache) is True
    assert is_cached(HasFrozen) is True
    assert is_cached(holder) is True
    assert is_cached(HasDict()) is False
    assert is_cached(object()) is False
    assert is_cached(None) is False
    assert is_cached(cached(Frozen(LRUCache(0)))(_identity)) is True


def test_is_cached_propagates_non_attribute_errors():
    class Weird:
        @property
        def cache(self):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        is_cached(Weird())


def test_is_cached_false_when_cache_property_raises_attribute_error():
    class Weird:
        @property
        def cache(self):
            raise AttributeError("nope")

    assert is_cached(Weird()) is False


# --------------------------------------------------------------------------------------
# recursion and stampede protection (8.1, 8.3, Decision 8) -- all in subprocesses
# --------------------------------------------------------------------------------------


def test_recursion_with_different_keys_works():
    run_isolated(
        """
        import cachebox

        @cachebox.cached(None)
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)

        assert fact(10) == 3628800
        assert len(fact.cache) == 10
        assert fact.cache_info()[:2] == (0, 10)
        assert fact(12) == 479001600
        assert fact.cache_info()[:2] == (1, 12)

        @cachebox.cached(cachebox.LRUCache(0))
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        assert fib(80) == 23416728348467685

        class A:
            @cachebox.cachedmethod(None)
            def fact(self, n):
                return 1 if n <= 1 else n * self.fact(n - 1)

        assert A().fact(6) == 720
        """
    )


def test_recursion_with_the_same_key_raises_runtime_error():
    run_isolated(
        """
        import cachebox
        state = {"recurse": True, "calls": 0}

        @cachebox.cached(None)
        def f(n):
            state["calls"] += 1
            if state["recurse"]:
                return f(n)
            return n * 2

        try:
            f(1)
        except RecursionError as e:
            raise AssertionError("RecursionError instead of a detected re-entry: %r" % e)
        except RuntimeError:
            pass
        else:
            raise AssertionError("no RuntimeError")
        assert state["calls"] == 1, state      # raised on the first re-entry
        assert f.cache_info()[:2] == (0, 0)
        assert len(f.cache) == 0
        state["recurse"] = False
        assert f(1) == 2                        # the per-key lock was released
        assert f.cache_info()[:2] == (0, 1)
        """
    )


def test_recursion_same_key_error_is_raised_by_the_inner_call():
    run_isolated(
        """
        import cachebox

        @cachebox.cached(None)
        def f(n):
            try:
                return ("inner", f(n))
            except RuntimeError as e:
                return ("caught", type(e).__name__)

        assert f(1) == ("caught", "RuntimeError")
        assert f.cache[1] == ("caught", "RuntimeError")
        assert f(1) == ("caught", "RuntimeError")
        assert f.cache_info()[:2] == (1, 1)
        """
    )


def test_recursion_same_key_raises_for_cachedmethod_and_factory_mode():
    run_isolated(
        """
        import cachebox

        class A:
            def __init__(self):
                self.c = cachebox.LRUCache(0)

            @cachebox.cachedmethod(None)
            def m(self, x):
                return A().m(x)        # another instance, same key (self is dropped)

            @cachebox.cached(lambda self: self.c)
            def f(self, x):
                return self.f(x)

        for call in (lambda: A().m(1), lambda: A().f(1)):
            try:
                call()
            except RecursionError:
                raise AssertionError("RecursionError")
            except RuntimeError:
                pass
            else:
                raise AssertionError("no RuntimeError")
        """
    )


def test_recursion_with_different_keys_across_threads():
    run_isolated(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        import cachebox
        threads = set()

        @cachebox.cached(None)
        def fact(n):
            threads.add(threading.get_ident())
            if n <= 1:
                return 1
            with ThreadPoolExecutor(1) as pool:
                return n * pool.submit(fact, n - 1).result(timeout=30)

        assert fact(8) == 40320
        assert len(threads) == 8
        assert fact.cache_info()[:2] == (0, 8)
        assert fact(8) == 40320
        """
    )


def test_thread_stampede_shares_one_exception():
    # upstream's protocol: ThreadPoolExecutor, 5 workers, a raising func
    run_threads(
        """
        from concurrent.futures import ThreadPoolExecutor
        calls = 0
        batch_size = 5

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            wait_for_followers(func, batch_size - 1)
            raise RuntimeError("failed call %d" % calls)

        def batch():
            with ThreadPoolExecutor(max_workers=5) as pool:
                futures = [pool.submit(func, 1) for _ in range(5)]
                return [f.exception(timeout=30) for f in futures]

        first = batch()
        assert calls == 1, calls
        assert all(type(e) is RuntimeError for e in first), first
        assert all(e is first[0] for e in first), [id(e) for e in first]
        assert str(first[0]) == "failed call 1"

        second = batch()
        assert calls == 2, calls
        assert all(e is second[0] for e in second)
        assert second[0] is not first[0]
        assert str(second[0]) == "failed call 2"

        assert func.cache_info()[:2] == (0, 0)
        assert len(func.cache) == 0

        # a fresh, uncontended call runs func again (the stored exception is gone)
        batch_size = 1
        try:
            func(1)
        except RuntimeError as e:
            assert str(e) == "failed call 3", str(e)
        else:
            raise AssertionError("no RuntimeError")
        assert calls == 3
        """
    )


def test_thread_stampede_slow_success_runs_once():
    run_threads(
        """
        import threading
        calls = 0
        events = []

        @cachebox.cached(cachebox.LRUCache(0), key_maker=own_key_maker,
                         callback=lambda *e: events.append(e[0]))
        def func(x):
            global calls
            calls += 1
            wait_for_followers(func, 7)
            return [x, "computed"]

        results = [None] * 8
        barrier = threading.Barrier(8)

        def worker(i):
            barrier.wait(timeout=30)
            results[i] = func("k")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert calls == 1, calls
        assert all(r == ["k", "computed"] for r in results), results
        assert len({id(r) for r in results}) == 8      # everybody got a copy
        assert all(r is not func.cache["k"] for r in results)
        assert func.cache_info()[:3] == (7, 1, func.cache.maxsize)
        assert sorted(events) == [EVENT_MISS] + [EVENT_HIT] * 7
        """
    )


def test_ten_threads_one_key_counts_one_miss_nine_hits():
    run_threads(
        """
        import threading
        calls = []
        events = []

        @cachebox.cached(cachebox.FIFOCache(0), callback=lambda e, k, v: events.append((e, k, v)))
        def func(a, b):
            calls.append((a, b))
            time.sleep(0.05)
            return a + b

        barrier = threading.Barrier(10)
        results = []

        def worker():
            barrier.wait(timeout=30)
            results.append(func(2, 3))

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert calls == [(2, 3)]
        assert results == [5] * 10
        info = func.cache_info()
        assert (info.hits, info.misses, info.length) == (9, 1, 1), info
        assert sorted(events) == [(EVENT_MISS, (2, 3), 5)] + [(EVENT_HIT, (2, 3), 5)] * 9
        """
    )


def test_thread_stampede_base_exception_is_not_shared():
    run_threads(
        """
        import threading

        class Stop(BaseException):
            pass

        calls = 0

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            if calls == 1:
                wait_for_followers(func, 2)
                raise Stop("first")
            return "value"

        outcomes = []
        lock = threading.Lock()

        def worker():
            try:
                r = func(1)
            except BaseException as e:
                r = e
            with lock:
                outcomes.append(r)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        stops = [o for o in outcomes if isinstance(o, Stop)]
        values = [o for o in outcomes if o == "value"]
        assert len(stops) == 1 and len(values) == 2, outcomes
        assert calls == 2, calls          # the next waiter computed
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_thread_stampede_exception_not_shared_with_later_callers():
    run_threads(
        """
        import threading
        calls = 0

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            if calls == 1:
                wait_for_followers(func, 1)
                raise ValueError("shared")
            return "ok"

        errors = []

        def worker():
            try:
                func(1)
            except ValueError as e:
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert len(errors) == 2 and errors[0] is errors[1]
        assert calls == 1
        assert func(1) == "ok"             # nothing stored is left behind
        assert calls == 2
        """
    )


def test_different_keys_do_not_block_each_other():
    run_isolated(
        """
        import threading
        import cachebox
        a_running = threading.Event()
        b_running = threading.Event()
        seen = {}

        @cachebox.cached(None)
        def func(key):
            if key == "a":
                a_running.set()
                seen["a saw b"] = b_running.wait(60)
            else:
                assert a_running.wait(60)
                b_running.set()
            return key

        ta = threading.Thread(target=func, args=("a",))
        ta.start()
        assert a_running.wait(60)
        assert func("b") == "b"       # while "a" is still being computed
        ta.join(30)
        assert not ta.is_alive()
        assert seen == {"a saw b": True}
        assert func.cache_info()[:2] == (0, 2)
        """
    )


def test_waiting_thread_does_not_hold_the_interpreter():
    run_threads(
        """
        import threading
        release = threading.Event()
        running = threading.Event()
        progress = []

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            running.set()
            assert release.wait(60)
            return x

        owner = threading.Thread(target=func, args=(1,))
        waiter = threading.Thread(target=func, args=(1,))
        owner.start()
        assert running.wait(60)
        waiter.start()
        wait_for_followers(func, 1)
        # the main thread keeps running Python while `waiter` is blocked on the key lock
        for i in range(1000):
            progress.append(i)
        release.set()
        owner.join(30)
        waiter.join(30)
        assert not owner.is_alive() and not waiter.is_alive()
        assert len(progress) == 1000
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_callback_runs_after_the_key_lock_is_released():
    # 8.1 step 6: the callback runs after the lock is released, so it may call the function
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


def test_counters_are_exact_under_contention():
    run_isolated(
        """
        import threading
        import cachebox
        calls = []

        @cachebox.cached(None)
        def func(x):
            calls.append(x)
            return x

        barrier = threading.Barrier(8)

        def worker(seed):
            barrier.wait(timeout=30)
            for i in range(300):
                assert func((i * 7 + seed) % 20) == (i * 7 + seed) % 20

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert sorted(calls) == list(range(20))       # one computation per key
        assert func.cache_info()[:3] == (8 * 300 - 20, 20, func.cache.maxsize)
        """
    )


def test_cache_clear_while_a_key_is_in_flight():
    run_threads(
        """
        import threading
        release = threading.Event()
        running = threading.Event()
        calls = []

        @cachebox.cached(cachebox.LRUCache(0), key_maker=own_key_maker)
        def func(x):
            calls.append(x)
            if len(calls) == 1:
                running.set()
                assert release.wait(60)
            return x

        t = threading.Thread(target=func, args=(1,))
        t.start()
        assert running.wait(60)
        func.cache_clear()            # must not deadlock nor break the call in flight
        release.set()
        t.join(30)
        assert not t.is_alive()
        assert func(2) == 2
        assert func(1) == 1
        """
    )


class _Result:
    """A weak-referenceable result."""


@pytest.mark.parametrize("callback", [None, lambda event, key, value: None])
def test_direct_call_releases_references_at_once(callback):
    # A decorated function is called through cachebox's own vectorcall and ``tp_call`` entries
    # (src/fastslots.rs), outside pyo3's trampoline: whatever a call gives up must still be
    # released at once.
    @cached(LRUCache(1), callback=callback)
    def f(x):
        return _Result()

    first = weakref.ref(f(1))
    assert f(1) is first()  # a hit returns the cached object
    f(2)  # evicts the result for 1
    assert first() is None

    copied = cached(LRUCache(2), copy_level=2)(lambda: [1, 2])
    original = copied()
    assert copied() == original and copied() is not original
    assert copied.cache_info().hits == 2


# --------------------------------------------------------------------------------------
# the vectorcall entry (src/fastslots.rs): positional calls look their key up from the
# argument array, hashing it as a tuple would hash and comparing stored tuples item by item
# --------------------------------------------------------------------------------------


def _counting(cache, *, callback=None):
    calls = []

    @cached(cache, callback=callback)
    def f(*args, **kwargs):
        calls.append((args, kwargs))
        return (args, tuple(sorted(kwargs.items())))

    return f, calls


@pytest.mark.parametrize(
    "args",
    [
        (),
        (1,),
        ("s",),
        (1.5,),
        (None,),
        (1, 2),
        (-1, -2),
        ("a", 2.5, None, (3, -4), 2**70, -(2**65)),
        ((1, 2),),
    ],
)
@pytest.mark.parametrize(
    "make", [lambda: LRUCache(100), lambda: Cache(0), lambda: TTLCache(100, 600), lambda: VTTLCache(100)]
)
def test_vectorcall_keys_match_tuple_keys(make, args):
    cache = make()
    f, calls = _counting(cache)
    expected = args[0] if len(args) == 1 and type(args[0]) in (int, str) else args
    assert f(*args) == (args, ())
    assert list(cache.keys()) == [expected]
    # Every calling convention finds the entry the first call stored: a call with a tuple
    # (``f(*args)``: PyObject_Call, which CPython turns into vectorcall), ``tp_call`` itself,
    # a bound method, and functools.partial.
    assert f(*args) == (args, ())
    assert f.__call__(*args) == (args, ())
    assert functools.partial(f, *args)() == (args, ())
    if args and args[0] is not None:
        assert types.MethodType(f, args[0])(*args[1:]) == (args, ())
    assert len(calls) == 1
    assert f.cache_info().hits == 3 + (bool(args) and args[0] is not None)
    # A key stored directly under the equal tuple is found by the call, and the other way.
    cache.clear()
    cache[expected] = "stored"
    assert f(*args) == "stored"


def test_vectorcall_keywords_make_the_keyword_key():
    cache = LRUCache(10)
    f, calls = _counting(cache)
    assert f(1, b=2) == ((1,), (("b", 2),))
    assert f(1, b=2) == ((1,), (("b", 2),))
    keywords = {"b": 2}
    assert f(1, **keywords) == ((1,), (("b", 2),))
    assert len(calls) == 1
    assert list(cache.keys()) == [(1, object, "b", 2)]
    assert f(1) == ((1,), ())
    assert len(calls) == 2


class _Weird:
    """Hashes like ``(1, 2)`` and claims to equal it."""

    def __init__(self):
        self.compared = 0

    def __hash__(self):
        return hash((1, 2))

    def __eq__(self, other):
        self.compared += 1
        return other == (1, 2)


class _TupleSub(tuple):
    pass


def test_vectorcall_defers_to_a_stored_non_tuple_key():
    # A stored key that is not an exact tuple decides equality with its own ``__eq__``, which
    # needs a real tuple: the call then builds one, and the answer is the dict's.
    weird = _Weird()
    cache = Cache(0)
    cache[weird] = "weird"
    f, calls = _counting(cache)
    assert f(1, 2) == "weird"
    assert weird.compared == 1
    assert {weird: "weird"}[(1, 2)] == "weird"
    assert calls == []

    cache = Cache(0)
    cache[_TupleSub((1, 2))] = "sub"
    f, calls = _counting(cache)
    assert f(1, 2) == "sub"
    assert f(1, 3) == ((1, 3), ())
    assert len(calls) == 1


def test_vectorcall_item_comparison_errors_and_reentry():
    class Boom:
        def __hash__(self):
            return 7

        def __eq__(self, other):
            raise ValueError("boom")

    cache = LRUCache(10)
    f, _ = _counting(cache)
    f(Boom(), 1)
    with pytest.raises(ValueError, match="boom"):
        f(Boom(), 1)

    class Reenter:
        def __hash__(self):
            return 8

        def __eq__(self, other):
            return len(cache) >= 0  # re-enters the cache under its lock

    f(Reenter(), 1)
    with pytest.raises(RuntimeError):
        f(Reenter(), 1)
    # The cache is still usable afterwards.
    assert f(1, 2) == ((1, 2), ())
    assert f(1, 2) == ((1, 2), ())

    with pytest.raises(TypeError, match="unhashable"):
        f([1], 2)
    with pytest.raises(TypeError, match="unhashable"):
        f([1])


def test_vectorcall_equal_items_of_other_types_hit():
    # 1 == 1.0 == True and they hash alike: as with a dict, equal argument tuples are one key.
    cache = LRUCache(10)
    f, calls = _counting(cache)
    f(1, 2)
    assert f(1.0, True + 1) == ((1, 2), ())
    assert len(calls) == 1


def test_vectorcall_expired_entries_are_recomputed():
    cache = TTLCache(10, 1)
    f, calls = _counting(cache)
    f(1, 2)
    f(3)
    cachebox._core._advance_clock(5)
    f(1, 2)
    f(3)
    assert len(calls) == 4
    assert f.cache_info().hits == 0


def test_vectorcall_only_for_sync_functions():
    assert type(cached(LRUCache(1))(_identity)).__flags__ & (1 << 11)  # Py_TPFLAGS_HAVE_VECTORCALL

    async def coro(x):
        return x

    wrapper = cached(LRUCache(1))(coro)
    awaitable = wrapper(1)
    assert inspect.isawaitable(awaitable)
    awaitable.close()
