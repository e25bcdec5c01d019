"""The direct call entries of a decorated function (cachebox's own vectorcall and ``tp_call``):
positional calls look their key up from the argument array, hashing it as a tuple would hash
and comparing stored tuples item by item, and must find exactly what the tuple key finds,
release what they give up at once, and handle comparison errors and re-entry."""

import functools
import inspect
import types
import weakref

import pytest
from cache_helpers import CLASS_NAMES, make_cache

import cachebox
from cachebox import (
    Cache,
    LRUCache,
    TTLCache,
    cached,
)

try:
    from .cache_helpers import PYPY, collect_if_pypy
except ImportError:
    from cache_helpers import PYPY, collect_if_pypy


def _identity(x):
    return x


class _Result:
    """A weak-referenceable result."""


@pytest.mark.parametrize("callback", [None, lambda event, key, value: None])
def test_direct_call_releases_references_at_once(callback):
    # A decorated function is called through cachebox's own vectorcall and ``tp_call`` entries
    # (src/decorators/call_slots.rs), outside pyo3's trampoline: whatever a call gives up must still be
    # released at once.
    @cached(LRUCache(1), callback=callback)
    def f(x):
        return _Result()

    first = weakref.ref(f(1))
    assert f(1) is first()  # a hit returns the cached object
    f(2)  # evicts the result for 1
    collect_if_pypy(first)
    assert first() is None

    copied = cached(LRUCache(2), copy_level=2)(lambda: [1, 2])
    original = copied()
    assert copied() == original and copied() is not original
    assert copied.cache_info().hits == 2


def _counting(cache, *, callback=None):
    calls = []

    @cached(cache, callback=callback)
    def f(*args, **kwargs):
        calls.append((args, kwargs))
        return (args, tuple(sorted(kwargs.items())))

    return f, calls


def _subclass_of_lru():
    class Sub(LRUCache):
        pass

    return Sub(100)


# Every native class (each has its own vectorcall entry, dispatched statically), and a Python
# subclass, whose calls take the generic entry.
MAKERS = [functools.partial(make_cache, name, 100) for name in CLASS_NAMES] + [_subclass_of_lru]


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
@pytest.mark.parametrize("make", MAKERS, ids=[*CLASS_NAMES, "LRUCache-subclass"])
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
    # Py_TPFLAGS_HAVE_VECTORCALL: set on CPython; PyPy builds leave the type as pyo3 made it.
    has_vectorcall = bool(type(cached(LRUCache(1))(_identity)).__flags__ & (1 << 11))
    assert has_vectorcall is not PYPY

    async def coro(x):
        return x

    wrapper = cached(LRUCache(1))(coro)
    awaitable = wrapper(1)
    assert inspect.isawaitable(awaitable)
    awaitable.close()
