"""Decorated methods: how a wrapper binds, ``cached`` on a method (``self`` is part of the
key), ``cachedmethod`` (``self`` is not), factory mode (a callable that picks the cache from the
first argument), and both under ``classmethod`` and ``staticmethod``."""

import gc
import weakref

import pytest

import cachebox
from cachebox import (
    EVENT_HIT,
    EVENT_MISS,
    FIFOCache,
    LRUCache,
    cached,
    cachedmethod,
    is_cached,
)

# --------------------------------------------------------------------------------------
# binding
# --------------------------------------------------------------------------------------


def test_wrapper_binds_like_a_function():
    class A:
        @cached(None)
        def method(self, x):
            return (self, x)

    raw = A.__dict__["method"]
    a = A()
    bound = a.method
    # Not a `types.MethodType`, which would hide `self` from `cache_invalidate` and factories.
    assert isinstance(bound, cachebox._core.BoundCachedFunction)
    assert bound.__self__ is a
    assert bound.__func__ is raw
    assert A.method is raw  # class access returns the wrapper itself
    assert raw.__get__(None, A) is raw
    assert bound(1) == (a, 1)
    assert A.method(a, 2) == (a, 2)
    assert bound.cache is raw.cache
    assert bound.__name__ == "method"


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
