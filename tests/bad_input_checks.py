# ruff: noqa: B023 (every lambda below is called before its loop moves on)
"""The checks behind ``test_bad_input.py``, run in child interpreters
(``subprocess_harness.assert_child_ok``) so that an abort or a hang fails one test instead of
the whole run.

Each ``battery_*`` function calls cachebox with malformed arguments, collects every problem it
finds (a wrong exception type, a panic, a ``SystemError``, a wrong result, an inconsistent cache
afterwards) and prints one ``PROBLEM:`` line per problem; the parent test asserts there is none.
Collecting instead of stopping at the first problem makes one red test list all that is wrong.
"""

import collections.abc
import datetime
import pickle
import random
import sys

import cachebox
from cachebox import (
    BaseCacheImpl,
    Cache,
    Frozen,
    LFUCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
    is_cached,
    make_hash_key,
    make_key,
    make_typed_key,
)

try:
    from .cache_helpers import PYPY, make_cache
    from .nasty import (
        COLLIDING_HASH,
        TARGET,
        Nasty,
        NastyError,
        assert_consistent,
        describe,
        disarmed,
        is_forbidden,
        print_problems,
    )
except ImportError:
    from cache_helpers import PYPY, make_cache
    from nasty import (
        COLLIDING_HASH,
        TARGET,
        Nasty,
        NastyError,
        assert_consistent,
        describe,
        disarmed,
        is_forbidden,
        print_problems,
    )

NAN = float("nan")
INF = float("inf")


def _names(types):
    if isinstance(types, type):
        types = (types,)
    return "/".join(t.__name__ for t in types)


class Checker:
    """Collects problems; every check also fails on a forbidden exception."""

    def __init__(self):
        self.problems = []

    def fail(self, label, message):
        self.problems.append(f"{label}: {message}")

    def raises(self, label, types, fn):
        """``fn()`` must raise one of ``types``. Returns the exception (or None)."""
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 (any exception is a result to judge)
            if is_forbidden(e) or not isinstance(e, types):
                self.fail(label, f"expected {_names(types)}, got {describe(e)}")
            return e
        self.fail(label, f"expected {_names(types)}, returned {result!r}")
        return None

    def outcome(self, label, types, fn, accept=lambda r: True, what="an accepted result"):
        """``fn()`` either raises one of ``types`` or returns a result ``accept`` likes.
        Returns ``("ok", result)``, ``("raise", exception)`` or ``None`` after a problem."""
        try:
            result = fn()
        except BaseException as e:  # noqa: BLE001 (any exception is a result to judge)
            if is_forbidden(e) or not isinstance(e, types):
                self.fail(label, f"expected {what} or {_names(types)}, got {describe(e)}")
                return None
            return ("raise", e)
        try:
            ok = accept(result)
        except Exception as e:  # noqa: BLE001 (a failed acceptance check is a problem to report)
            self.fail(label, f"checking the result {result!r} raised {describe(e)}")
            return None
        if not ok:
            self.fail(label, f"expected {what} or {_names(types)}, returned {result!r}")
            return None
        return ("ok", result)

    def returns(self, label, fn, accept=lambda r: True, what="an accepted result"):
        """``fn()`` must return a result ``accept`` likes."""
        return self.outcome(label, (), fn, accept, what)

    def consistent(self, label, cache, probe=True):
        try:
            assert_consistent(cache, probe)
        except AssertionError as e:
            self.fail(label, f"inconsistent afterwards: {e}")
        except BaseException as e:  # noqa: BLE001 (anything here is a finding)
            self.fail(label, f"the consistency check raised {describe(e)}")

    def report(self):
        print_problems(self.problems)


def snapshot(cache):
    """The entries (by identity) and limits of a cache, to check that a failed call left it
    unchanged."""
    with disarmed():
        return (
            [(id(k), id(v)) for k, v in cache.items()],
            cache.maxsize,
            cache.maxmemory,
            cache.memory(),
        )


def populated(name, n=5, **kwargs):
    c = make_cache(name, 0, **kwargs)
    for i in range(n):
        c[i] = str(i)
    return c


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------


class Index:
    """An ``__index__``-able object (accepted wherever an int is)."""

    def __init__(self, value):
        self.value = value

    def __index__(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


class Real:
    """A ``__float__``-able object (accepted wherever a real number is)."""

    def __init__(self, value):
        self.value = value

    def __float__(self):
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


#: Not integers at all: ``TypeError`` wherever an int is taken (BEHAVIOUR.md §2.2).
NOT_INTS = (NAN, INF, -INF, 1.5, 0.0, "3", None, b"1", [], (), object(), 1j, Real(3.0))
NEGATIVE_INTS = (-1, -(2**63), -(2**64), -(10**100), Index(-5))
HUGE_INTS = (2**64, 10**100)


def _check_limit_argument(ck, name, arg):
    """``maxsize``, ``capacity`` and ``maxmemory`` as BEHAVIOUR.md §2.2 says."""

    def build(value):
        if arg == "maxsize":
            return lambda: make_cache(name, value)
        return lambda: make_cache(name, 0, **{arg: value})

    for value in NOT_INTS:
        ck.raises(f"{name}({arg}={value!r})", TypeError, build(value))
    for value in NEGATIVE_INTS:
        ck.raises(f"{name}({arg}={value!r})", OverflowError, build(value))
    for value in HUGE_INTS:
        ck.raises(f"{name}({arg}={value!r})", OverflowError, build(value))
    ck.raises(f"{name}({arg}=<__index__ raising>)", NastyError, build(Index(NastyError("index"))))
    for value in (0, 1, True, False, Index(3)):
        r = ck.returns(f"{name}({arg}={value!r})", build(value))
        if r:
            ck.consistent(f"{name}({arg}={value!r})", r[1])
    if arg == "capacity":
        # An allocation that cannot be satisfied raises MemoryError (BEHAVIOUR.md §2.2).
        for value in (2**40, 2**62, sys.maxsize):
            ck.raises(f"{name}(capacity={value!r}) with maxsize=0", MemoryError, build(value))
        # Beyond sys.maxsize the number itself is out of range: OverflowError is as sensible.
        ck.raises(f"{name}(capacity=2**63)", (MemoryError, OverflowError), build(2**63))
        # The effective capacity is min(capacity, maxsize): a huge one is harmless then.
        r = ck.returns(f"{name}(4, capacity=2**62)", lambda: make_cache(name, 4, capacity=2**62))
        if r:
            ck.consistent(f"{name}(4, capacity=2**62)", r[1])
    else:
        # 2**63 does not fit sys.maxsize: refusing it or treating it as "no limit" are both sane.
        r = ck.outcome(
            f"{name}({arg}=2**63)",
            OverflowError,
            build(2**63),
            lambda c: getattr(c, arg) == sys.maxsize,
            f"{arg} == sys.maxsize",
        )
        if r and r[0] == "ok":
            ck.consistent(f"{name}({arg}=2**63)", r[1])


def _check_reinit(ck, name):
    """``__init__`` again with bad numbers: the error comes first, the cache is left as it was."""
    c = populated(name)
    before = snapshot(c)
    for kwargs in (
        {"maxsize": -1},
        {"maxsize": NAN},
        {"maxsize": 0, "capacity": 2**64},
        {"maxsize": 0, "maxmemory": "x"},
    ):
        if name == "TTLCache":
            call = lambda kw=kwargs: c.__init__(ttl=TTL_OK, **kw)
        else:
            call = lambda kw=kwargs: c.__init__(**kw)
        ck.raises(f"{name}.__init__(**{kwargs!r}) on a live cache", (TypeError, OverflowError), call)
        if snapshot(c) != before:
            ck.fail(f"{name}.__init__(**{kwargs!r})", "a refused __init__ changed the cache")
    ck.consistent(f"{name} after refused __init__ calls", c)


TTL_OK = 3600.0

#: TTL values that must be refused with ValueError (BEHAVIOUR.md §2.4): non-finite, zero or
#: negative, and beyond what the clock can hold.
BAD_TTL_VALUE = (
    NAN,
    INF,
    -INF,
    0,
    0.0,
    -0.0,
    -1,
    -1e-300,
    -(2**63),
    10**100,
    2**64,
    1e300,
    1e20,
    datetime.timedelta(0),
    datetime.timedelta(days=-1),
)
BAD_TTL_TYPE = ("3", b"1", [], object(), 1j)


def _check_ttl_values(ck, label, call, accepts_none, make_target):
    """``call(ttl)`` with every malformed ttl; ``make_target()`` gives the cache ``call`` works
    on, checked for consistency after each refusal."""
    target = make_target()
    for ttl in BAD_TTL_VALUE:
        ck.raises(f"{label}(ttl={ttl!r})", ValueError, lambda t=ttl: call(target, t))
    for ttl in BAD_TTL_TYPE:
        ck.raises(f"{label}(ttl={ttl!r})", TypeError, lambda t=ttl: call(target, t))
    ck.raises(
        f"{label}(ttl=<__float__ raising>)", NastyError, lambda: call(target, Real(NastyError("float")))
    )
    ck.raises(f"{label}(ttl=10**400)", (ValueError, OverflowError), lambda: call(target, 10**400))
    if not accepts_none:
        ck.raises(f"{label}(ttl=None)", TypeError, lambda: call(target, None))
    ck.consistent(f"{label} after refused ttls", target, probe=False)
    # Large but representable TTLs work, and the cache stays usable (no overflow in expiry maths).
    r = ck.returns(f"{label}(ttl=1e-300)", lambda: call(target, 1e-300))
    if r is not None:
        ck.consistent(f"{label}(ttl=1e-300)", target, probe=False)
    for ttl in (2**63, 1e18, datetime.timedelta.max, Real(7.5), True):
        r = ck.returns(f"{label}(ttl={ttl!r})", lambda t=ttl: call(target, t))
        if r is None:
            continue
        ck.returns(f"{label}(ttl={ttl!r}) then pickle", lambda: pickle.loads(pickle.dumps(target)))
        ck.returns(f"{label}(ttl={ttl!r}) then items_with_expire", lambda: list(target.items_with_expire()))
        ck.consistent(f"{label}(ttl={ttl!r})", target)


def _check_index_argument(ck, label, call, n_items, empty_default):
    """``first(n)``/``least_frequently_used(n)``/``drain(n)``-style integer arguments."""
    for n in NOT_INTS:
        ck.raises(f"{label}({n!r})", TypeError, lambda v=n: call(v))
    ck.raises(f"{label}(<__index__ raising>)", NastyError, lambda: call(Index(NastyError("index"))))
    for n in (2**63, 2**64, 10**100):
        ck.outcome(
            f"{label}({n!r})",
            OverflowError,
            lambda v=n: call(v),
            lambda r: r == empty_default,
            repr(empty_default),
        )
    for n in (-(2**63), -(2**64), -(10**100)):
        ck.outcome(
            f"{label}({n!r})",
            OverflowError,
            lambda v=n: call(v),
            lambda r: r == empty_default,
            repr(empty_default),
        )
    del n_items


def battery_numbers(name):
    """Every numeric argument of class ``name`` (BEHAVIOUR.md §2.2, §2.4)."""
    ck = Checker()
    for arg in ("maxsize", "capacity", "maxmemory"):
        _check_limit_argument(ck, name, arg)
    _check_reinit(ck, name)

    if name == "TTLCache":
        _check_ttl_values(
            ck, "TTLCache(0, ttl)", lambda c, t: c.__init__(0, t), False, lambda: TTLCache(0, TTL_OK)
        )
        ck.raises("TTLCache(0)", TypeError, lambda: TTLCache(0))
    if name == "VTTLCache":
        _check_ttl_values(
            ck, "VTTLCache(0, None, ttl)", lambda c, t: c.__init__(0, None, t), True, lambda: VTTLCache(0)
        )
        _check_ttl_values(
            ck, "VTTLCache(0, {1: 1}, ttl)", lambda c, t: c.__init__(0, {1: 1}, t), True, lambda: VTTLCache(0)
        )
        _check_ttl_values(
            ck, "VTTLCache.insert(k, v, ttl)", lambda c, t: c.insert("k", "v", t), True, lambda: VTTLCache(0)
        )
        _check_ttl_values(
            ck,
            "VTTLCache.setdefault(k, v, ttl)",
            lambda c, t: c.setdefault(object(), "v", t),
            True,
            lambda: VTTLCache(0),
        )
        _check_ttl_values(
            ck, "VTTLCache.update(it, ttl)", lambda c, t: c.update({"u": 1}, t), True, lambda: VTTLCache(0)
        )
        aware = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        ck.raises("VTTLCache.insert(ttl=aware datetime)", TypeError, lambda: VTTLCache(0).insert(1, 1, aware))
        ck.raises(
            "VTTLCache.insert(ttl=datetime.min)",
            ValueError,
            lambda: VTTLCache(0).insert(1, 1, datetime.datetime.min),
        )
        c = VTTLCache(0)
        ck.returns("VTTLCache.insert(ttl=datetime.max)", lambda: c.insert(1, 1, datetime.datetime.max))
        ck.consistent("VTTLCache.insert(ttl=datetime.max)", c)

    c = populated(name, 6)
    if name == "Cache":
        for n in (*NOT_INTS, 2**64, -1, 0, 3):
            ck.raises(
                f"Cache.drain({n!r})", (NotImplementedError, TypeError, OverflowError), lambda v=n: c.drain(v)
            )
    else:
        _check_index_argument(ck, f"{name}.drain on an empty cache", make_cache(name).drain, 0, 0)
        for n in (0, -1, -(2**63)):
            ck.returns(f"{name}.drain({n})", lambda v=n: c.drain(v), lambda r: r == 0, "0")
        ck.returns(f"{name}.drain(True)", lambda: c.drain(True), lambda r: r == 1, "1")
        ck.outcome(f"{name}.drain(2**63)", OverflowError, lambda: c.drain(2**63), lambda r: r == 5, "5 (all)")
        ck.consistent(f"{name}.drain with bad numbers", c)

    index_methods = {"FIFOCache": "first", "TTLCache": "first", "LFUCache": "least_frequently_used"}
    if name in index_methods:
        c = populated(name, 4)
        method = getattr(c, index_methods[name])
        _check_index_argument(ck, f"{name}.{index_methods[name]}", method, 4, None)
        ck.returns(f"{name}.{index_methods[name]}(-1)", lambda: method(-1), lambda r: r == 3, "3")
        ck.returns(f"{name}.{index_methods[name]}(-5)", lambda: method(-5), lambda r: r is None, "None")
        ck.returns(f"{name}.{index_methods[name]}(4)", lambda: method(4), lambda r: r is None, "None")
        ck.consistent(f"{name}.{index_methods[name]} with bad numbers", c)
    ck.report()


# --------------------------------------------------------------------------------------------
# Keys: unhashable, misbehaving __hash__ and __eq__
# --------------------------------------------------------------------------------------------

_ABSENT = object()


def _key_methods(name):
    """``method name -> (call(cache, key), result when found, result when absent)``, where a
    result is a value, a callable checking the result, or an exception type."""
    value, default = "v7", "default"
    m = {
        "getitem": (lambda c, k: c[k], value, KeyError),
        "get": (lambda c, k: c.get(k, default), value, default),
        "contains": (lambda c, k: k in c, True, False),
        "delitem": (lambda c, k: c.__delitem__(k), None, KeyError),
        "pop": (lambda c, k: c.pop(k, default), value, default),
        "insert": (lambda c, k: c.insert(k, "new"), value, None),
        "setitem": (lambda c, k: c.__setitem__(k, "new"), None, None),
        "setdefault": (lambda c, k: c.setdefault(k, default), value, default),
        "update": (lambda c, k: c.update([(k, "new")]), None, None),
    }
    if name in ("LRUCache", "LFUCache"):
        m["peek"] = (lambda c, k: c.peek(k, default), value, default)
    if name in ("TTLCache", "VTTLCache"):
        m["get_with_expire"] = (
            lambda c, k: c.get_with_expire(k, default),
            lambda r: r[0] == value and isinstance(r[1], float),
            (default, 0.0),
        )
        m["pop_with_expire"] = (
            lambda c, k: c.pop_with_expire(k, default),
            lambda r: r[0] == value and isinstance(r[1], float),
            (default, 0.0),
        )
    return m


def _expect(ck, label, fn, expected):
    if isinstance(expected, type) and issubclass(expected, BaseException):
        ck.raises(label, expected, fn)
    elif callable(expected):
        ck.returns(label, fn, expected, "a checked result")
    else:
        ck.returns(label, fn, lambda r: r == expected, repr(expected))


#: (label, key factory, what a lookup does against a stored colliding key ``7``): "found"
#: (the key counts as equal to 7), "absent", or the exception type every method must raise.
KEY_CASES = (
    ("list", lambda: [1], TypeError),
    ("dict", lambda: {1: 1}, TypeError),
    ("set", lambda: {1}, TypeError),
    ("bytearray", lambda: bytearray(b"x"), TypeError),
    ("tuple holding a list", lambda: (1, [2]), TypeError),
    ("__hash__ raises", lambda: Nasty(1, hash_mode="raise"), NastyError),
    ("__hash__ returns a str", lambda: Nasty(1, hash_mode="nonint"), TypeError),
    ("__hash__ returns a float", lambda: Nasty(1, hash_mode="float"), TypeError),
    ("tuple holding a __hash__ that raises", lambda: (1, Nasty(1, hash_mode="raise")), NastyError),
    # (The cases above fail while hashing, before the cache is looked at: HASH_FAILS.)
    ("__hash__ returns 2**100", lambda: Nasty(1, hash_mode="huge"), "absent"),
    ("__hash__ returns -2**90", lambda: Nasty(1, hash_mode="negative_huge"), "absent"),
    ("__hash__ colliding with 7", lambda: Nasty(1, hash_mode="collide"), "absent"),
    ("__hash__ calls gc.collect()", lambda: Nasty(1, hash_mode="gc"), "absent"),
    ("__eq__ raises", lambda: Nasty(1, eq_mode="raise"), NastyError),
    ("__eq__ returns an object whose __bool__ raises", lambda: Nasty(1, eq_mode="badbool"), NastyError),
    ("__eq__ returns a falsy non-bool", lambda: Nasty(1, eq_mode="truthy"), "absent"),
    ("__eq__ returns NotImplemented", lambda: Nasty(1, eq_mode="notimpl"), "absent"),
    ("__eq__ always True", lambda: Nasty(1, eq_mode="always"), "found"),
    ("__eq__ re-enters the cache", lambda: Nasty(1, eq_mode="mutate"), RuntimeError),
    (
        "__eq__ re-enters the cache and swallows the error",
        lambda: Nasty(1, eq_mode="mutate_swallow"),
        "absent",
    ),
    ("__eq__ calls gc.collect()", lambda: Nasty(1, eq_mode="gc"), "absent"),
    ("NaN", lambda: float("nan"), "absent"),
    # Equal to the stored 7 but of another size: the stored key is kept (BEHAVIOUR.md §4.1),
    # so the entry must be charged 7's size, not 7.0's (§3.1).
    ("7.0 (equal to the stored 7, another __sizeof__)", lambda: 7.0, "found"),
)
HASH_FAILS = 9


def battery_keys(name):
    """Every method that takes a key, with every kind of bad key, against a cache holding the
    colliding key ``7`` (so ``__eq__`` runs). BEHAVIOUR.md §4.1, §4.2 and §14.3."""
    ck = Checker()
    methods = _key_methods(name)
    for case, make_key_, behaviour in KEY_CASES:
        for method, (call, found, absent) in methods.items():
            c = make_cache(name, 0)
            c[7] = "v7"
            c["other"] = 1
            TARGET[0] = c
            label = f"{name}.{method}(key: {case})"
            key = make_key_()
            before = snapshot(c)
            if behaviour == "found":
                _expect(ck, label, lambda: call(c, key), found)
            elif behaviour == "absent":
                _expect(ck, label, lambda: call(c, key), absent)
            else:
                ck.raises(label, behaviour, lambda: call(c, key))
                if snapshot(c) != before:
                    ck.fail(label, "the failed call changed the cache")
            TARGET[0] = None
            ck.consistent(label, c)
        # The constructor's iterable goes through update: the same errors come out.
        if behaviour not in ("found", "absent"):
            args = (
                (0, TTL_OK, [(7, 1), (make_key_(), 2)])
                if name == "TTLCache"
                else (0, [(7, 1), (make_key_(), 2)])
            )
            if behaviour is RuntimeError:
                continue  # nothing to re-enter while the cache is being built
            ck.raises(
                f"{name}(iterable with key: {case})", behaviour, lambda a=args: getattr(cachebox, name)(*a)
            )
    ck.report()


# --------------------------------------------------------------------------------------------
# Sizes: misbehaving __sizeof__
# --------------------------------------------------------------------------------------------

SIZE_CASES = (
    ("raises", "raise", NastyError),
    ("returns -1", "negative", OverflowError),
    ("returns a str", "nonint", TypeError),
    ("returns a float", "float", TypeError),
    ("returns 2**70", "huge70", OverflowError),
)


def battery_sizes(name):
    """Keys and values whose ``__sizeof__`` misbehaves (BEHAVIOUR.md §3.1): the error propagates and the
    cache is left unchanged; huge and odd-but-valid sizes are accounted exactly."""
    ck = Checker()
    writes = {
        "setitem": lambda c, k, v: c.__setitem__(k, v),
        "insert": lambda c, k, v: c.insert(k, v),
        "setdefault": lambda c, k, v: c.setdefault(k, v),
        "update": lambda c, k, v: c.update({k: v}),
    }
    for case, mode, error in SIZE_CASES:
        for method, write in writes.items():
            for where in ("key", "value", "value of an existing key"):
                c = populated(name, 3)
                TARGET[0] = c
                obj = Nasty(50, size_mode=mode)
                if where == "key":
                    k, v = obj, "v"
                elif where == "value":
                    k, v = "new", obj
                else:
                    k, v = 1, obj
                label = f"{name}.{method} with a {where} whose __sizeof__ {case}"
                before = snapshot(c)
                if method == "setdefault" and where == "value of an existing key":
                    # A hit returns the stored value without sizing the default.
                    ck.returns(label, lambda: write(c, k, v), lambda r: r == "1", "'1'")
                else:
                    ck.raises(label, error, lambda: write(c, k, v))
                    if snapshot(c) != before:
                        ck.fail(label, "the failed write changed the cache")
                ck.consistent(label, c)
        TARGET[0] = None
    # Valid sizes that are unusual: True (1), 0, one that mutates the cache, 2**62.
    for mode in ("bool", "zero", "mutate"):
        c = populated(name, 3)
        TARGET[0] = c
        ck.returns(
            f"{name}[k] = value whose __sizeof__ is {mode}",
            lambda: c.__setitem__("k", Nasty(1, size_mode=mode)),
        )
        TARGET[0] = None
        ck.consistent(f"{name}[k] = value whose __sizeof__ is {mode}", c)
    c = make_cache(name, 0)
    ck.returns(f"{name}: a 2**62 value", lambda: c.__setitem__("a", Nasty(1, size_mode="huge62")))
    ck.consistent(f"{name}: a 2**62 value", c, probe=False)
    # Two of them exceed sys.maxsize (the implicit maxmemory): evict, or OverflowError for Cache.
    if name == "Cache":
        ck.raises(
            "Cache: a second 2**62 value",
            OverflowError,
            lambda: c.__setitem__("b", Nasty(2, size_mode="huge62")),
        )
    else:
        ck.returns(f"{name}: a second 2**62 value", lambda: c.__setitem__("b", Nasty(2, size_mode="huge62")))
        ck.returns(f"{name}: one left after the eviction", lambda: len(c), lambda n: n == 1, "1")
    ck.consistent(f"{name}: 2**62 values", c)
    # Over an explicit maxmemory: OverflowError for every class, cache unchanged.
    c = populated(name, 3, maxmemory=10_000)
    before = snapshot(c)
    ck.raises(
        f"{name}(maxmemory=10000)[k] = 2**62",
        OverflowError,
        lambda: c.__setitem__("k", Nasty(1, size_mode="huge62")),
    )
    ck.raises(
        f"{name}(maxmemory=10000)[0] = 2**62",
        OverflowError,
        lambda: c.__setitem__(0, Nasty(1, size_mode="huge62")),
    )
    if snapshot(c) != before:
        ck.fail(f"{name}(maxmemory=10000) oversize writes", "a refused write changed the cache")
    ck.consistent(f"{name}(maxmemory=10000) oversize writes", c)
    ck.report()


# --------------------------------------------------------------------------------------------
# __setstate__ and pickles
# --------------------------------------------------------------------------------------------


def _good_state(name):
    c = populated(name, 3)
    if name == "LFUCache":
        c[0]
    return c.__getstate__()


def _malformed_states(name):
    """(label, state) pairs that no ``__getstate__`` produces (``ValueError`` or ``TypeError``
    for every one of them: BEHAVIOUR.md §10.3)."""
    good = _good_state(name)
    maxsize, maxmemory, capacity, items, ttl, attrs = good
    expiring = name in ("TTLCache", "VTTLCache")
    extra_ok = 9e18 if expiring else (3 if name == "LFUCache" else None)

    def with_(**fields):
        f = {"maxsize": maxsize, "maxmemory": maxmemory, "capacity": capacity, "items": items}
        f.update({"ttl": ttl, "attrs": attrs})
        f.update(fields)
        return (f["maxsize"], f["maxmemory"], f["capacity"], f["items"], f["ttl"], f["attrs"])

    states = [
        ("None", None),
        ("a list", list(good)),
        ("a dict", {"maxsize": maxsize}),
        ("a str", "state"),
        ("an int", 5),
        ("an empty tuple", ()),
        ("5 fields", good[:5]),
        ("7 fields", (*good, None)),
        ("maxsize a str", with_(maxsize="10")),
        ("maxsize a float", with_(maxsize=1.5)),
        ("maxsize NaN", with_(maxsize=NAN)),
        ("maxsize None", with_(maxsize=None)),
        ("maxsize negative", with_(maxsize=-1)),
        ("maxsize 2**64", with_(maxsize=2**64)),
        ("maxmemory negative", with_(maxmemory=-5)),
        ("maxmemory a float", with_(maxmemory=2.5)),
        ("maxmemory 10**100", with_(maxmemory=10**100)),
        ("capacity negative", with_(capacity=-1)),
        ("capacity a str", with_(capacity="3")),
        ("capacity 2**64", with_(capacity=2**64)),
        ("items None", with_(items=None)),
        ("items an int", with_(items=5)),
        ("items a str", with_(items="abc")),
        ("an item that is an int", with_(items=[*items, 1])),
        ("an item that is a list", with_(items=[*items, [10, 10, extra_ok]])),
        ("an item of length 2", with_(items=[*items, (10, 10)])),
        ("an item of length 4", with_(items=[*items, (10, 10, extra_ok, None)])),
        ("an empty item", with_(items=[*items, ()])),
        ("an unhashable key", with_(items=[*items, ([1], 10, extra_ok)])),
        ("a duplicate key", with_(items=[*items, (items[0][0], "dup", items[0][2])])),
        ("a key equal to another (1 and 1.0)", with_(items=[(1, "a", extra_ok), (1.0, "b", extra_ok)])),
        ("more items than maxsize", with_(maxsize=2, items=[(i, i, extra_ok) for i in range(3)])),
        ("items over maxmemory", with_(maxmemory=60, items=[(i, i, extra_ok) for i in range(3)])),
        ("an item over maxmemory", with_(maxmemory=10)),
        ("attrs not a mapping", with_(attrs=5)),
    ]
    if name == "TTLCache":
        states += [
            ("ttl None", with_(ttl=None)),
            ("ttl a str", with_(ttl="x")),
            ("ttl NaN", with_(ttl=NAN)),
            ("ttl inf", with_(ttl=INF)),
            ("ttl negative", with_(ttl=-1.0)),
            ("ttl zero", with_(ttl=0)),
        ]
    else:
        states += [("a ttl on a class without one", with_(ttl=5.0))]
    if expiring:
        states += [
            ("a NaN expiry", with_(items=[(1, 1, NAN)])),
            ("a str expiry", with_(items=[(1, 1, "soon")])),
            ("a list expiry", with_(items=[(1, 1, [])])),
            ("an expiry of 10**400", with_(items=[(1, 1, 10**400)])),
        ]
    if name == "LFUCache":
        states += [
            ("a None frequency", with_(items=[(1, 1, None)])),
            ("a str frequency", with_(items=[(1, 1, "3")])),
            ("a float frequency", with_(items=[(1, 1, 2.0)])),
            ("a NaN frequency", with_(items=[(1, 1, NAN)])),
            ("a negative frequency", with_(items=[(1, 1, -1)])),
            ("a 2**64 frequency", with_(items=[(1, 1, 2**64)])),
        ]
    return states


def _malformed_extra(name):
    return 9e18 if name in ("TTLCache", "VTTLCache") else (3 if name == "LFUCache" else None)


def battery_setstate(name):
    """Malformed ``__setstate__`` states: ``ValueError``/``TypeError`` (BEHAVIOUR.md §10.3), on a blank
    instance (left unconfigured) and on a live cache (left unchanged)."""
    ck = Checker()
    cls = getattr(cachebox, name)
    for label, state in _malformed_states(name):
        blank = cls.__new__(cls)
        ck.raises(
            f"{name}.__setstate__({label}) on a blank instance",
            (ValueError, TypeError),
            lambda: blank.__setstate__(state),
        )
        try:
            len(blank)
        except RuntimeError:
            pass  # still unconfigured: every method says so
        except BaseException as e:  # noqa: BLE001
            ck.fail(f"{name}.__setstate__({label}) on a blank instance", f"len() then raised {describe(e)}")
        else:
            ck.consistent(f"{name}.__setstate__({label}) on a blank instance", blank)
        live = populated(name, 4)
        before = snapshot(live)
        ck.raises(
            f"{name}.__setstate__({label}) on a live cache",
            (ValueError, TypeError),
            lambda: live.__setstate__(state),
        )
        if snapshot(live) != before:
            ck.fail(f"{name}.__setstate__({label}) on a live cache", "the refused state changed the cache")
        ck.consistent(f"{name}.__setstate__({label}) on a live cache", live)
    # A subclass instance keeps its attributes through the state: a bad attrs field must not
    # leave a half-loaded cache behind.
    sub = type("Sub" + name, (cls,), {})
    live = sub.__new__(sub)
    live.__setstate__(_good_state(name))
    before = snapshot(live)
    bad = (*_good_state(name)[:3], [(100, 100, _malformed_extra(name))], _good_state(name)[4], 5)
    ck.raises(
        f"{name} subclass .__setstate__(attrs not a mapping)",
        (ValueError, TypeError),
        lambda: live.__setstate__(bad),
    )
    if snapshot(live) != before:
        ck.fail(f"{name} subclass .__setstate__(attrs not a mapping)", "the refused state changed the cache")
    ck.consistent(f"{name} subclass .__setstate__(attrs not a mapping)", live)
    # Odd but acceptable states load into a consistent cache.
    good = _good_state(name)
    for label, state in (
        ("no items", (good[0], good[1], good[2], [], good[4], None)),
        ("maxsize 0", (0, good[1], good[2], good[3], good[4], None)),
        ("items as a tuple", (good[0], good[1], good[2], tuple(good[3]), good[4], None)),
        ("items as a generator", (good[0], good[1], good[2], iter(good[3]), good[4], None)),
    ):
        c = cls.__new__(cls)
        if ck.returns(f"{name}.__setstate__({label})", lambda s=state, c=c: c.__setstate__(s)):
            ck.consistent(f"{name}.__setstate__({label})", c)
    if name in ("TTLCache", "VTTLCache"):
        for label, at in (("-inf", -INF), ("0", 0.0), ("a past instant", 1.0)):
            c = cls.__new__(cls)
            state = (10, 0, 0, [(1, 1, at), (2, 2, None if name == "VTTLCache" else 9e18)], good[4], None)
            if ck.returns(f"{name}.__setstate__(expiry {label})", lambda s=state, c=c: c.__setstate__(s)):
                ck.returns(
                    f"{name}: an item expired at {label} is dropped",
                    lambda c=c: list(c),
                    lambda r: r == [2],
                    "[2]",
                )
                ck.consistent(f"{name}.__setstate__(expiry {label})", c)
    ck.report()


def battery_ttl_state_expiry_beyond_ttl():
    """A ``TTLCache`` state whose expiry lies further ahead than ``ttl`` (hand-made, or written
    on a machine whose wall clock was ahead), then a normal insert and the clock moving past
    the new entry's expiry: the cache must stay consistent."""
    import time

    from cachebox._core import _advance_clock

    ck = Checker()
    c = TTLCache.__new__(TTLCache)
    ck.returns(
        "TTLCache.__setstate__(expiry = now + 1000, ttl = 10)",
        lambda: c.__setstate__((10, 0, 0, [("old", 1, time.time() + 1000)], 10.0, None)),
    )
    c["new"] = 2
    _advance_clock(20)
    live = [k for k in ("old", "new") if k in c]
    ck.returns(
        "len() counts the live entries",
        lambda: len(c),
        lambda n: n == len(live),
        f"{len(live)} (live: {live})",
    )
    ck.returns("iteration yields the live entries", lambda: list(c), lambda r: r == live, repr(live))
    ck.returns(
        "last() is the newest live key (None when none is live)",
        lambda: c.last(),
        lambda k: k == (live[-1] if live else None),
        repr(live[-1] if live else None),
    )
    ck.consistent("TTLCache after the clock passed an entry that is not first in line", c)
    ck.report()


def _pickle_subjects(name):
    c = make_cache(name, 50, maxmemory=10**9)
    for i in range(6):
        c[i] = str(i) * i
    c["tuple", 1.5] = {"nested": [1, 2, None]}
    c[None] = b"bytes"
    if name == "LFUCache":
        c[0]
        c[0]
    if name == "VTTLCache":
        c.insert("expiring", 1, 5000)
    return c


def _may_hold_buffer_opcodes(data):
    """Whether unpickling ``data`` may reach a BYTEARRAY8, NEXT_BUFFER or READONLY_BUFFER
    opcode. The opcodes are parsed in sequence, as the unpickler reads them (a flip that
    changes a length can turn a payload byte into an opcode). ``pickletools`` is stricter than
    the unpickler about some arguments, so past the first opcode it cannot parse, any such byte
    counts."""
    import pickletools

    buffer_codes = ("\x96", "\x97", "\x98")
    resume = 0
    try:
        for opcode, _arg, pos in pickletools.genops(data):
            if opcode.code in buffer_codes:
                return True
            resume = pos if pos is not None else resume
    except Exception:  # noqa: BLE001 (judged from the bytes below)
        return any(code.encode("latin-1") in data[resume:] for code in buffer_codes)
    return False


def battery_pickle_corruption(name, flips=600):
    """Every prefix of a real pickle of class ``name`` (protocols 2 to 5) must fail to load
    with an exception; random byte flips must load into a consistent cache or fail with an
    exception. Never a panic, a ``SystemError``, an abort or a hang. The address space is
    capped so that a flip turning a capacity into billions gives ``MemoryError`` instead of
    eating the machine."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))
    ck = Checker()
    rng = random.Random(f"pickle-{name}")
    c = _pickle_subjects(name)
    loaded = 0
    # PyPy's native unpickler crashes the interpreter on some malformed pickles by itself,
    # whatever the class (a list given a state tuple is one): there the pure-Python one, which
    # calls the same methods of ours, reads the corrupted data.
    loads = pickle._loads if PYPY else pickle.loads
    for proto in (2, 3, 4, 5):
        data = pickle.dumps(c, protocol=proto)
        back = pickle.loads(data)
        if back != c:
            ck.fail(f"{name} pickle protocol {proto}", "the round trip is not equal")
        for i in range(len(data)):
            ck.raises(
                f"{name} pickle protocol {proto} cut to {i} of {len(data)} bytes",
                Exception,
                lambda d=data[:i]: loads(d),
            )
        for _ in range(flips):
            corrupt = bytearray(data)
            for _ in range(rng.choice((1, 1, 2, 3))):
                pos = rng.randrange(len(corrupt))
                corrupt[pos] = rng.choice((rng.randrange(256), corrupt[pos] ^ (1 << rng.randrange(8))))
            if _may_hold_buffer_opcodes(corrupt):
                # CPython's own _pickle can print "SystemError: deallocated bytearray object has
                # exported buffers" for corrupted BYTEARRAY8/NEXT_BUFFER/READONLY_BUFFER opcodes,
                # with any class (seen with a pure-Python one too): not cachebox's to answer for.
                continue
            label = f"{name} pickle protocol {proto} corrupted to {bytes(corrupt)!r}"
            try:
                obj = loads(bytes(corrupt))
            except BaseException as e:  # noqa: BLE001 (judged just below)
                if is_forbidden(e):
                    ck.fail(label, f"raised {describe(e)}")
                continue
            loaded += 1
            if isinstance(obj, cachebox.BaseCacheImpl):
                try:
                    len(obj)
                except RuntimeError:
                    continue  # a cache whose state never arrived: unconfigured, and says so
                except BaseException as e:  # noqa: BLE001
                    ck.fail(label, f"len() of the loaded cache raised {describe(e)}")
                    continue
                ck.consistent(label, obj)
    print(f"INFO: {loaded} corrupted pickles loaded")
    ck.report()


# --------------------------------------------------------------------------------------------
# Signatures: every public method with wrong arity, and on an unconfigured instance
# --------------------------------------------------------------------------------------------

#: Public methods and how many positional arguments each takes at least and at most.
ARITY = {
    "insert": (2, 2),
    "get": (1, 2),
    "pop": (1, 2),
    "setdefault": (1, 2),
    "popitem": (0, 0),
    "drain": (1, 1),
    "update": (1, 1),
    "clear": (0, 0),
    "shrink_to_fit": (0, 0),
    "capacity": (0, 0),
    "memory": (0, 0),
    "is_full": (0, 0),
    "is_empty": (0, 0),
    "keys": (0, 0),
    "values": (0, 0),
    "items": (0, 0),
    "copy": (0, 0),
    "__copy__": (0, 0),
    "__deepcopy__": (1, 1),
    "__getstate__": (0, 0),
    "__setstate__": (1, 1),
    "__len__": (0, 0),
    "__contains__": (1, 1),
    "__getitem__": (1, 1),
    "__setitem__": (2, 2),
    "__delitem__": (1, 1),
    "__sizeof__": (0, 0),
    "__iter__": (0, 0),
    "__repr__": (0, 0),
    "peek": (1, 2),
    "first": (0, 1),
    "last": (0, 0),
    "least_recently_used": (0, 0),
    "most_recently_used": (0, 0),
    "least_frequently_used": (0, 1),
    "items_with_frequency": (0, 0),
    "random_key": (0, 0),
    "get_with_expire": (1, 2),
    "pop_with_expire": (1, 2),
    "popitem_with_expire": (0, 0),
    "items_with_expire": (0, 0),
    "expire": (0, 0),
}
VTTL_ARITY = {"insert": (2, 3), "setdefault": (1, 3), "update": (1, 2)}


def battery_signatures(name):
    """Too many or too few arguments, and unknown keywords, give ``TypeError`` for every public
    method; every method of an instance whose ``__init__`` never ran raises ``RuntimeError``
    (or ``TypeError`` for bad arguments); the cache is consistent afterwards."""
    ck = Checker()
    cls = getattr(cachebox, name)
    arity = dict(ARITY, **(VTTL_ARITY if name == "VTTLCache" else {}))
    c = populated(name, 4)
    for method, (lo, hi) in arity.items():
        if not hasattr(cls, method):
            continue
        fn = getattr(c, method)
        ck.raises(f"{name}.{method} with {hi + 1} arguments", TypeError, lambda f=fn, n=hi + 1: f(*[1] * n))
        if lo > 0:
            ck.raises(
                f"{name}.{method} with {lo - 1} arguments", TypeError, lambda f=fn, n=lo - 1: f(*[1] * n)
            )
        ck.raises(f"{name}.{method}(bogus=1)", TypeError, lambda f=fn, n=lo: f(*[1] * n, bogus=1))
    ck.consistent(f"{name} after calls with wrong arity", c)
    ck.raises(f"{name}.clear(True)", TypeError, lambda: c.clear(True))
    ck.raises(f"{name}.__init__()", TypeError, lambda: c.__init__())
    ck.raises(f"{name}(1, 2, 3, 4)", TypeError, lambda: cls(1, 2, 3, 4))
    ck.raises(f"{name}(0, bogus=1)", TypeError, lambda: cls(0, bogus=1))
    ck.raises(f"{name}.__class_getitem__()", TypeError, lambda: cls.__class_getitem__())
    ck.returns(f"{name}[object, object]", lambda: cls[object, object], lambda r: r is cls, name)
    for other in ("Cache", "LRUCache"):
        if other != name:
            ck.raises(
                f"{name}.__new__({other})", TypeError, lambda o=other: cls.__new__(getattr(cachebox, o))
            )
    ck.raises(f"{name}.__new__(5)", TypeError, lambda: cls.__new__(5))
    # An instance whose __init__ never ran: every method says so, nothing crashes.
    blank = cls.__new__(cls)
    for method, (lo, _hi) in arity.items():
        if not hasattr(cls, method) or method in ("__setstate__", "__repr__"):
            continue
        fn = getattr(blank, method)
        args = [1] * lo
        label = f"{name}.__new__(...).{method}(*{args})"

        def call(f=fn, a=args, m=method):
            r = f(*a)
            if m in ("keys", "values", "items", "__iter__", "items_with_expire", "items_with_frequency"):
                list(r)
            return r

        expected = (RuntimeError, TypeError)
        if name == "Cache" and method in ("popitem", "drain"):
            expected += (NotImplementedError,)
        ck.raises(label, expected, call)
    ck.outcome(
        f"{name}.__new__(...) repr", RuntimeError, lambda: repr(blank), lambda r: isinstance(r, str), "a str"
    )
    ck.outcome(
        f"{name}.__new__(...) == itself",
        RuntimeError,
        lambda: blank == blank,  # noqa: PLR0124 (a cache compared with itself)
        lambda r: r is True,
        "True",
    )
    ck.raises(f"{name}.__new__(...) == a live cache", RuntimeError, lambda: blank == populated(name, 1))
    ck.raises(f"a live cache == {name}.__new__(...)", RuntimeError, lambda: populated(name, 1) == blank)
    ck.report()


# --------------------------------------------------------------------------------------------
# Frozen and BaseCacheImpl
# --------------------------------------------------------------------------------------------


def battery_frozen_base():
    ck = Checker()
    for bad in (None, 5, {}, [], cachebox, LFUCache, object()):
        ck.raises(f"Frozen({bad!r})", AssertionError, lambda b=bad: Frozen(b))
    ck.raises("Frozen(Frozen(...))", AssertionError, lambda: Frozen(Frozen(LFUCache(0))))
    ck.raises("Frozen()", TypeError, lambda: Frozen())
    ck.raises("Frozen(c, False, 3)", TypeError, lambda: Frozen(LFUCache(0), False, 3))
    ck.raises("Frozen(c, bogus=1)", TypeError, lambda: Frozen(LFUCache(0), bogus=1))
    c = LFUCache(0, {1: 1, 2: 2, COLLIDING_HASH: 7})
    f = Frozen(c)
    TARGET[0] = c
    for case, make_key_, behaviour in KEY_CASES:
        if behaviour in ("found", "absent"):
            continue
        key = make_key_()
        ck.raises(f"Frozen[{case}]", behaviour, lambda k=key: f[k])
        ck.raises(f"Frozen.get({case})", behaviour, lambda k=key: f.get(k, 0))
        ck.raises(f"{case} in Frozen", behaviour, lambda k=key: k in f)
    TARGET[0] = None
    for writer, args in (
        ("insert", ([], 1)),
        ("pop", ([],)),
        ("setdefault", ({},)),
        ("popitem", (1, 2, 3)),
        ("drain", ("x",)),
        ("clear", (1,)),
        ("shrink_to_fit", (object(),)),
        ("update", (5,)),
    ):
        ck.raises(f"Frozen.{writer}{args!r}", TypeError, lambda w=writer, a=args: getattr(f, w)(*a))
    ck.raises("Frozen[[]] = 1", TypeError, lambda: f.__setitem__([], 1))
    ck.raises("del Frozen[[]]", TypeError, lambda: f.__delitem__([]))
    ck.raises("Frozen.get()", TypeError, lambda: f.get())
    ck.raises("Frozen.keys(1)", TypeError, lambda: f.keys(1))
    for missing in ("peek", "first", "copy", "ttl", "__nonexistent__"):
        ck.raises(f"Frozen.{missing}", AttributeError, lambda m=missing: getattr(f, m))
    f.ignore = True
    for writer in ("insert", "pop", "setdefault", "popitem", "drain", "clear", "shrink_to_fit", "update"):
        ck.returns(
            f"Frozen(ignore=True).{writer}(junk)",
            lambda w=writer: getattr(f, w)([], {}, x=1),
            lambda r: r is None,
            "None",
        )
    ck.raises("Frozen.ignore = <__bool__ raising>", NastyError, lambda: setattr(f, "ignore", _BoolRaises()))
    ck.consistent("Frozen after bad calls", f)
    ck.returns(
        "the frozen cache still holds its items",
        lambda: sorted(f.cache.items()),
        lambda r: r == [(1, 1), (2, 2), (7, 7)],
        "[(1, 1), (2, 2), (7, 7)]",
    )
    for args, kwargs in (((), {}), ((1, 2), {"x": 3}), (([],), {})):
        ck.raises(
            f"BaseCacheImpl(*{args}, **{kwargs})",
            NotImplementedError,
            lambda a=args, k=kwargs: BaseCacheImpl(*a, **k),
        )
    ck.returns(
        "BaseCacheImpl[int, str]",
        lambda: BaseCacheImpl[int, str],
        lambda r: r is BaseCacheImpl,
        "BaseCacheImpl",
    )

    class Mine(BaseCacheImpl):
        pass

    ck.returns(
        "a BaseCacheImpl subclass takes any arguments",
        lambda: Mine(1, [], x=NAN),
        lambda r: isinstance(r, Mine),
        "an instance",
    )
    ck.report()


class _BoolRaises:
    def __bool__(self):
        raise NastyError("__bool__")


# --------------------------------------------------------------------------------------------
# Decorators and key makers
# --------------------------------------------------------------------------------------------


def _plain(*args, **kwargs):
    return ("result", args, tuple(sorted(kwargs.items())))


def battery_decorators():
    """``cached``/``cachedmethod``/``is_cached``, the wrappers, ``cache_info``, ``cache_clear``
    with malformed arguments (BEHAVIOUR.md §13). After each failure the wrapper still works and its
    cache is consistent."""
    import asyncio

    ck = Checker()
    for deco in (cached, cachedmethod):
        dn = deco.__name__
        for bad in (
            5,
            "cache",
            [],
            {1: 1}.items(),
            dict,
            LFUCache,
            object(),
            _BoolRaises(),
            type("D", (dict,), {})(),
        ):
            ck.raises(f"{dn}({bad!r})", TypeError, lambda b=bad: deco(b))
        if deco is cachedmethod:
            ck.raises("cachedmethod(<function>)", TypeError, lambda: cachedmethod(lambda self: None))
        for bad in (5, "key", [], object()):
            ck.raises(f"{dn}(None, key_maker={bad!r})", TypeError, lambda b=bad: deco(None, key_maker=b))
        for bad in ("yes", 1, None, [], _BoolRaises()):
            ck.outcome(
                f"{dn}(None, clear_reuse={bad!r})",
                (TypeError, NastyError),
                lambda b=bad: deco(None, clear_reuse=b),
            )
        ck.raises(
            f"{dn}(None, copy_level=<__eq__ raising>)",
            NastyError,
            lambda: deco(None, copy_level=Nasty(1, eq_mode="raise")),
        )
        ck.raises(f"{dn}(None, 1, 2, 3, 4, 5)", TypeError, lambda: deco(None, 1, 2, 3, 4, 5))
        ck.raises(f"{dn}(None, bogus=1)", TypeError, lambda: deco(None, bogus=1))
        for bad in (5, None, "f", object()):
            ck.raises(f"{dn}(None)({bad!r})", TypeError, lambda b=bad: deco(None)(b))
        ck.raises(f"{dn}(None)()", TypeError, lambda: deco(None)())
        ck.raises(f"{dn}(None)(f, g)", TypeError, lambda: deco(None)(_plain, _plain))

    is_result = (lambda r: r[0] == "result", "the function's result")
    for i, (case, make_key_, behaviour) in enumerate(KEY_CASES):
        # Default key maker, empty cache: the key is a tuple holding the argument, so only a
        # failing hash matters.
        cache = LFUCache(0)
        f = cached(cache)(_plain)
        for call in ((lambda k: f(k)), (lambda k: f(1, x=k))):
            if i < HASH_FAILS:
                ck.raises(f"cached wrapper, argument: {case}", behaviour, lambda c=call: c(make_key_()))
            else:
                ck.returns(f"cached wrapper, argument: {case}", lambda c=call: c(make_key_()), *is_result)
        ck.consistent(f"cached wrapper, argument: {case}", cache)
        # The argument itself as the key, against a stored colliding 7: as for the cache methods.
        cache = LFUCache(0)
        f = cached(cache, key_maker=lambda args, kwds: args[0])(_plain)
        f(COLLIDING_HASH)
        TARGET[0] = cache
        label = f"cached(key_maker=first argument) wrapper, argument: {case}"
        if behaviour in ("found", "absent"):
            ck.returns(label, lambda: f(make_key_()), *is_result)
        else:
            ck.raises(label, behaviour, lambda: f(make_key_()))
        TARGET[0] = None
        ck.consistent(label, cache)
    cache = LFUCache(0)
    f = cached(cache)(_plain)
    ck.raises(
        "wrapper(cachebox__ignore=<__bool__ raising>)",
        NastyError,
        lambda: f(1, cachebox__ignore=_BoolRaises()),
    )
    ck.returns("wrapper still works", lambda: f(1, 2, a=3), lambda r: r == _plain(1, 2, a=3), "its result")
    ck.consistent("the wrapper's cache after bad calls", cache)
    ck.raises("wrapper.cache_info(1)", TypeError, lambda: f.cache_info(1))
    ck.raises("wrapper.cache_clear(1)", TypeError, lambda: f.cache_clear(1))
    ck.raises("wrapper.cache_info(x=1)", TypeError, lambda: f.cache_info(x=1))
    ck.returns(
        "wrapper.cache_info()",
        lambda: f.cache_info(),
        lambda i: i.length == len(cache) and i.memory == cache.memory(),
        "agreeing with the cache",
    )
    ck.returns("wrapper.cache_clear()", lambda: f.cache_clear(), lambda r: r is None, "None")
    ck.consistent("the wrapper's cache after cache_clear", cache)

    def custom(make, label):
        c = LFUCache(0)
        g = cached(c, key_maker=make)(_plain)
        return c, g

    for label, make, error in (
        ("raises", lambda a, k: 1 / 0, ZeroDivisionError),
        ("returns a list", lambda a, k: [a], TypeError),
        ("returns a key whose __hash__ raises", lambda a, k: Nasty(1, hash_mode="raise"), NastyError),
        ("takes no arguments", lambda: 1, TypeError),
    ):
        c, g = custom(make, label)
        ck.raises(f"cached(key_maker that {label})", error, lambda g=g: g(1))
        ck.consistent(f"cached(key_maker that {label})", c)
    c = LFUCache(0)
    c[7] = "stored"
    TARGET[0] = c
    g = cached(c, key_maker=lambda a, k: Nasty(1, eq_mode="mutate"))(_plain)
    ck.raises("cached(key_maker giving a key whose __eq__ re-enters the cache)", RuntimeError, lambda: g(1))
    TARGET[0] = None
    ck.consistent("cached(key_maker giving a key whose __eq__ re-enters)", c)

    def bad_callback(event, key, value):
        raise NastyError("callback")

    c = LFUCache(0)
    g = cached(c, callback=bad_callback)(_plain)
    ck.raises("cached(callback raising) miss", NastyError, lambda: g(1))
    ck.raises("cached(callback raising) hit", NastyError, lambda: g(1))
    ck.returns("the value was stored despite the callback", lambda: len(c), lambda n: n == 1, "1")
    ck.consistent("cached(callback raising)", c)
    g = cached(LFUCache(0), callback=5)(_plain)
    ck.raises("cached(callback=5) call", TypeError, lambda: g(1))

    # Factory mode.
    ck.raises(
        "factory wrapper called without arguments",
        IndexError,
        lambda: cached(lambda self: LFUCache(0))(_plain)(),
    )
    ck.raises("factory returning 5", TypeError, lambda: cached(lambda self: 5)(_plain)(1))
    ck.raises("factory raising", ZeroDivisionError, lambda: cached(lambda self: 1 / 0)(_plain)(1))
    ck.raises("factory taking no argument", TypeError, lambda: cached(lambda: LFUCache(0))(_plain)(1))
    for attr in ("cache", "cache_info", "cache_clear"):
        ck.raises(
            f"factory wrapper .{attr}", AttributeError, lambda a=attr: getattr(cached(lambda s: s)(_plain), a)
        )

    # Caches that cannot take the value: OverflowError / TypeError propagate, misses not counted.
    full = Cache(1, {0: 0})
    g = cached(full)(_plain)
    ck.raises("cached(a full Cache) miss", OverflowError, lambda: g(1))
    ck.returns("cached(a full Cache) counts no miss", lambda: g.cache_info().misses, lambda n: n == 0, "0")
    frozen = Frozen(LFUCache(0))
    g = cached(frozen)(_plain)
    ck.raises("cached(Frozen) miss", TypeError, lambda: g(1))
    small = LFUCache(0, maxmemory=10)
    g = cached(small)(_plain)
    ck.raises("cached(LFUCache(maxmemory=10)) miss", OverflowError, lambda: g(1))
    ck.consistent("cached(LFUCache(maxmemory=10))", small)

    # is_cached with odd objects.
    class Raising:
        @property
        def cache(self):
            raise NastyError("cache attribute")

    class Holder:
        cache = LFUCache(0)

    ck.returns("is_cached(5)", lambda: is_cached(5), lambda r: r is False, "False")
    ck.returns(
        "is_cached(object with a cache attribute)", lambda: is_cached(Holder()), lambda r: r is True, "True"
    )
    ck.raises("is_cached(object whose cache attribute raises)", NastyError, lambda: is_cached(Raising()))
    ck.raises("is_cached()", TypeError, lambda: is_cached())
    ck.raises("is_cached(1, 2)", TypeError, lambda: is_cached(1, 2))

    # Async: the errors come out when awaited (or when called), the wrapper keeps working.
    async def coro(x):
        return x

    ac = LFUCache(0)
    a = cached(ac)(coro)

    async def run(arg):
        return await a(arg)

    ck.raises("async wrapper with an unhashable argument", TypeError, lambda: asyncio.run(run([1])))
    ck.raises(
        "async wrapper with a key whose __hash__ raises",
        NastyError,
        lambda: asyncio.run(run(Nasty(1, hash_mode="raise"))),
    )
    ck.returns("async wrapper still works", lambda: asyncio.run(run(3)), lambda r: r == 3, "3")
    ck.consistent("async wrapper's cache", ac)
    ck.report()


def battery_key_makers():
    """``make_key``, ``make_hash_key``, ``make_typed_key`` with malformed arguments."""
    ck = Checker()
    for maker in (make_key, make_hash_key, make_typed_key):
        mn = maker.__name__
        ck.raises(f"{mn}()", TypeError, lambda m=maker: m())
        ck.raises(f"{mn}(())", TypeError, lambda m=maker: m(()))
        for bad in (5, 1.5, None, object()):
            ck.raises(f"{mn}({bad!r}, {{}})", TypeError, lambda m=maker, b=bad: m(b, {}))
        for bad in (5, [(1, 2)], "ab", object()):
            ck.raises(f"{mn}((), {bad!r})", TypeError, lambda m=maker, b=bad: m((), b))
        ck.raises(f"{mn}(<iterable raising>, {{}})", NastyError, lambda m=maker: m(_raising_iter(), {}))
        ck.raises(
            f"{mn}((), <mapping whose keys() raises>)", NastyError, lambda m=maker: m((), _BadMapping())
        )
        ck.returns(f"{mn}([1, 2], {{}})", lambda m=maker: m([1, 2], {}), lambda r: r is not None, "a key")
    ck.raises("make_hash_key(([],), {})", TypeError, lambda: make_hash_key(([],), {}))
    ck.raises(
        "make_hash_key((<hash raising>,), {})",
        NastyError,
        lambda: make_hash_key((Nasty(1, hash_mode="raise"),), {}),
    )
    ck.raises("make_hash_key((), {'a': []})", TypeError, lambda: make_hash_key((), {"a": []}))
    ck.returns(
        "make_key(([],), {}) (unhashable keys are the caller's problem)",
        lambda: make_key(([],), {}),
        lambda r: r == ([],),
        "([],)",
    )
    for bad in (5, 1.5, object()):
        ck.raises(f"make_key((1,), {{}}, fasttype={bad!r})", TypeError, lambda b=bad: make_key((1,), {}, b))
    ck.raises(
        "make_key((1,), {}, fasttype=<__bool__ raising>)",
        NastyError,
        lambda: make_key((1,), {}, _BoolRaises()),
    )
    ck.raises("make_key((1,), {}, (int,), 4)", TypeError, lambda: make_key((1,), {}, (int,), 4))
    ck.report()


def _raising_iter():
    yield 1
    raise NastyError("iteration")


class _BadMapping(collections.abc.Mapping):
    def __iter__(self):
        raise NastyError("iter")

    def __len__(self):
        return 1

    def keys(self):
        raise NastyError("keys")

    def __getitem__(self, key):
        raise NastyError("getitem")


# --------------------------------------------------------------------------------------------
# update() and constructor iterables
# --------------------------------------------------------------------------------------------


def battery_iterables(name):
    """``update``/constructor iterables that are malformed (BEHAVIOUR.md §2.3): the right error,
    pairs before the bad one kept (update is not atomic: §15.2), and a consistent cache."""
    ck = Checker()

    class ItemsRaises:
        def items(self):
            raise NastyError("items")

    class ItemsNotCallable:
        items = 5

    class ItemsYieldsJunk:
        def items(self):
            return [1, 2]

    cases = (
        ("an int", 5, TypeError),
        ("None items", [None], TypeError),
        ("a list pair", [[1, 2]], TypeError),
        ("a 3-tuple", [(1, 2, 3)], ValueError),
        ("a 1-tuple", [(1,)], ValueError),
        ("an empty tuple", [()], ValueError),
        ("a str (iterable of str)", "ab", TypeError),
        ("an unhashable key", [([], 1)], TypeError),
        ("a generator that raises", _raising_iter_pairs(), NastyError),
        ("items() raising", ItemsRaises(), NastyError),
        ("items not callable", ItemsNotCallable(), TypeError),
        ("items() yielding non-pairs", ItemsYieldsJunk(), TypeError),
    )
    for label, iterable, error in cases:
        c = populated(name, 2)
        ck.raises(f"{name}.update({label})", error, lambda it=iterable: c.update(it))
        ck.consistent(f"{name}.update({label})", c)
    c = populated(name, 2)
    ck.raises(
        f"{name}.update([(10, 10), (11, 11), ([], 1)])",
        TypeError,
        lambda: c.update([(10, 10), (11, 11), ([], 1)]),
    )
    ck.returns(
        f"{name}.update keeps the pairs before the bad one",
        lambda: (10 in c, 11 in c),
        lambda r: r == (True, True),
        "(True, True)",
    )
    ck.consistent(f"{name}.update keeps the pairs before the bad one", c)
    ck.returns(f"{name}.update(itself)", lambda: c.update(c), lambda r: r is None, "None")
    ck.consistent(f"{name}.update(itself)", c)

    def reentrant():
        yield (20, 20)
        c[21] = 21  # the iterable is consumed without the lock held: this works
        yield (22, len(c))

    ck.returns(f"{name}.update(generator writing to the cache)", lambda: c.update(reentrant()))
    ck.consistent(f"{name}.update(generator writing to the cache)", c)
    cls = getattr(cachebox, name)
    for label, iterable, error in cases[:8]:
        args = (0, TTL_OK, iterable) if name == "TTLCache" else (0, iterable)
        ck.raises(f"{name}(0, {label})", error, lambda a=args: cls(*a))
    ck.report()


def _raising_iter_pairs():
    yield (1, 1)
    raise NastyError("iteration")


def battery_limits_consistency(name):
    """Odd but valid limits (maxsize 1, maxmemory 1 and just above one entry) hold under a
    burst of writes; the cache stays consistent."""
    ck = Checker()
    for kwargs in (
        {"maxsize": 1},
        {"maxsize": 0, "maxmemory": 1},
        {"maxsize": 0, "maxmemory": 57},
        {"maxsize": 3, "maxmemory": 120},
    ):
        c = make_cache(name, **kwargs)
        for i in range(40):
            ck.outcome(f"{name}(**{kwargs})[{i}] = {i}", OverflowError, lambda i=i: c.__setitem__(i, i))
        ck.consistent(f"{name}(**{kwargs}) after 40 writes", c)
    ck.report()


def battery_gc_during_ops(name):
    """``__eq__`` and ``__hash__`` that run a full GC pass (which traverses the locked cache)
    neither hang nor corrupt."""
    ck = Checker()
    c = make_cache(name, 0)
    for i in range(8):
        c[Nasty(i, eq_mode="gc")] = i
        c[Nasty(i, hash_mode="gc")] = i
        c[float("nan")] = i
    c[COLLIDING_HASH] = "seven"
    for i in range(5):
        ck.returns(
            f"{name}: lookup with a gc-running __eq__ #{i}",
            lambda: c.get(Nasty(1000 + i, eq_mode="gc"), "d"),
            lambda r: r == "d",
            "'d'",
        )
    ck.consistent(f"{name} after gc-running callbacks", c)
    ck.report()
