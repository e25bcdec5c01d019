"""The surface of the memoizing decorators: the names the package exports, ``CacheInfo``,
what ``cached`` and ``cachedmethod`` accept as a cache (and the errors for anything else), the
wrapper object they return (metadata, ``__dict__``, ``callback``, pickling by reference) and
``is_cached``."""

import collections
import functools
import importlib
import inspect
import pickle
import sys
import types
import warnings

import pytest

import cachebox
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
# accepted cache values
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
    # cachedmethod is first-class: no DeprecationWarning (BEHAVIOUR.md §13.8)
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
# the wrapper object
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


# --------------------------------------------------------------------------------------
# pickling a decorated function
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# is_cached
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
