"""What a decorated call does with errors: from building the key (unhashable arguments, a
raising ``__hash__`` or key maker), from the lookup (a raising ``__eq__``, a lookup error other
than ``KeyError``), from the function (never cached; the per-key lock is released, even for a
``BaseException``) and from storing the result (a full ``Cache``, a ``Frozen`` cache).

The tests whose failure could leave a per-key lock held run in a subprocess
(``subprocess_harness.run_isolated``), so a deadlock fails one test instead of stalling the run.
"""

import sys

import pytest

from cachebox import (
    LRUCache,
    cached,
)

try:
    from .subprocess_harness import run_isolated
except ImportError:
    from subprocess_harness import run_isolated


# --------------------------------------------------------------------------------------
# errors from the key and the lookup
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# errors from the function and from the store (subprocesses)
# --------------------------------------------------------------------------------------


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
        assert events == []                # no callback when func raises
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
