"""Misbehaving objects, the consistency check and the operation runner shared by the bad-input
tests (``test_bad_input.py``) and the Python fuzz harness (``fuzz/fuzz_api.py``).

This module imports nothing but the standard library, cachebox and the pure-Python helpers and
models of this directory, so a child interpreter (``subprocess_harness.assert_child_ok``) starts
fast.

``Nasty`` objects misbehave in one of their ``__hash__``, ``__eq__`` or ``__sizeof__`` only while
the module switch :data:`ARMED` is on. :func:`disarmed` turns it off, and the object then behaves
(hash and equality by ``ident``, a fixed size), so :func:`assert_consistent` can look at a cache
that holds such objects without tripping over them. Behaviours that are legal but unusual (a huge
hash, a huge size, a non-bool ``__eq__`` result) stay on when disarmed, so sizes charged on insert
are the sizes seen when checking.
"""

import contextlib
import gc
import sys

import cachebox

try:
    from .cache_helpers import entry_size
    from .models import MODELS
except ImportError:
    from cache_helpers import entry_size
    from models import MODELS

#: Exception types no cachebox call may ever raise: a pyo3 panic surfaces as
#: ``pyo3_runtime.PanicException`` (a ``BaseException``), an interpreter-level misuse as
#: ``SystemError``.
FORBIDDEN_NAMES = ("PanicException", "SystemError")


class NastyError(Exception):
    """Raised by a misbehaving ``__hash__``, ``__eq__``, ``__bool__`` or ``__sizeof__``."""


ARMED = True

#: The cache that ``mutate`` behaviours call back into (set by the test or the harness).
TARGET = [None]


@contextlib.contextmanager
def disarmed():
    global ARMED
    old, ARMED = ARMED, False
    try:
        yield
    finally:
        ARMED = old


def is_forbidden(exc):
    """A panic, a ``SystemError`` or any ``BaseException`` that is not an ``Exception``."""
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(names & set(FORBIDDEN_NAMES)) or not isinstance(exc, Exception)


def describe(exc):
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


class BadBool:
    """An ``__eq__`` result whose truth value cannot be taken."""

    def __bool__(self):
        if ARMED:
            raise NastyError("__bool__")
        return False


class Truthy:
    """A non-bool ``__eq__`` result: judged by its truth value (BEHAVIOUR.md §4.1)."""

    def __init__(self, value):
        self.value = value

    def __bool__(self):
        return self.value


def _mutate(action):
    """What a ``mutate`` behaviour does to :data:`TARGET` (re-entry raises ``RuntimeError`` while
    the target is locked)."""
    c = TARGET[0]
    if c is None:
        return
    if action == 0:
        len(c)
    elif action == 1:
        c[("mutated", 1)] = 1
    elif action == 2:
        c.pop(("mutated", 1), None)
    else:
        list(c.items())


#: Each mode of ``__hash__``/``__eq__``/``__sizeof__`` (see ``Nasty``).
HASH_MODES = ("ok", "collide", "huge", "negative_huge", "raise", "nonint", "float", "mutate", "gc")
EQ_MODES = ("ok", "raise", "truthy", "badbool", "notimpl", "always", "mutate", "mutate_swallow", "gc")
SIZE_MODES = ("ok", "raise", "negative", "nonint", "float", "bool", "huge62", "huge70", "zero", "mutate")

#: The hash every ``collide`` key (and every key with a misbehaving ``__eq__``) returns: equal to
#: ``hash(7)``, so ``7`` collides with them too.
COLLIDING_HASH = 7


class Nasty:
    """A key or value with configurable misbehaviour (see the module doc)."""

    __slots__ = ("eq_mode", "hash_mode", "ident", "size_mode")

    def __init__(self, ident, hash_mode="ok", eq_mode="ok", size_mode="ok"):
        self.ident = ident
        self.hash_mode = hash_mode
        self.eq_mode = eq_mode
        self.size_mode = size_mode

    def __repr__(self):
        return f"Nasty({self.ident!r}, {self.hash_mode!r}, {self.eq_mode!r}, {self.size_mode!r})"

    def __hash__(self):
        mode = self.hash_mode
        if ARMED:
            if mode == "raise":
                raise NastyError("__hash__")
            if mode == "nonint":
                return "not an int"  # noqa: PLE0309 (the point)
            if mode == "float":
                return 1.5  # noqa: PLE0309 (the point)
            if mode == "mutate":
                _mutate(self.ident % 4)
            if mode == "gc":
                gc.collect()
        if mode == "huge":
            return 2**100 + self.ident
        if mode == "negative_huge":
            return -(2**90) - self.ident
        if mode == "collide" or self.eq_mode != "ok":
            # A misbehaving __eq__ only runs when hashes meet.
            return COLLIDING_HASH
        return hash(self.ident)

    def __eq__(self, other):
        # Equal only to itself once disarmed: two live objects with one ident may both be stored
        # (while armed, a "notimpl" __eq__ keeps them apart), and must stay apart.
        same = self is other
        mode = self.eq_mode
        if ARMED:
            if mode == "raise":
                raise NastyError("__eq__")
            if mode == "truthy":
                return Truthy(same)
            if mode == "badbool":
                return BadBool()
            if mode == "notimpl":
                return NotImplemented
            if mode == "always":
                return True
            if mode == "mutate":
                _mutate(self.ident % 4)
            if mode == "mutate_swallow":
                try:
                    _mutate(self.ident % 4)
                except RuntimeError:
                    pass
            if mode == "gc":
                gc.collect()
        return same

    def __ne__(self, other):
        return not self.__eq__(other)

    def __sizeof__(self):
        mode = self.size_mode
        if ARMED:
            if mode == "raise":
                raise NastyError("__sizeof__")
            if mode == "negative":
                return -1
            if mode == "nonint":
                return "12"
            if mode == "float":
                return 12.0
            if mode == "mutate":
                _mutate(self.ident % 4)
        if mode == "bool":
            return True
        if mode == "huge62":
            return 2**62
        if mode == "huge70":
            return 2**70
        if mode == "zero":
            return 0
        return 48


def policy_model(cache):
    """The reference model (``models.py``) of the cachebox class that ``cache`` is, or is a
    subclass of."""
    for cls in type(cache).__mro__:
        if cls.__name__ in MODELS and getattr(cachebox, cls.__name__, None) is cls:
            return MODELS[cls.__name__]
    raise AssertionError(f"{type(cache).__name__} is no cachebox cache")


_MISSING = object()
_PROBE_KEY = -987_654_321
_PROBE_VALUE = -123_456_789


def assert_consistent(cache, probe=True):
    """The cache is internally consistent and still works (with every ``Nasty`` disarmed):

    - ``len`` equals the number of keys iterated, items and values agree with the keys, no key
      comes twice, every key is found and maps to its iterated value;
    - ``memory()`` is the sum of ``k.__sizeof__() + v.__sizeof__()`` over the live items (TTL
      classes are swept first: ``memory()`` counts expired entries until then);
    - ``len <= maxsize``, ``memory() <= maxmemory``, ``capacity() >= len``;
    - with ``probe``: a normal insert and lookup work (or raise the ``OverflowError`` the limits
      call for) and leave the cache as it was, apart from what the insert had to evict.
    """
    if isinstance(cache, cachebox.Frozen):
        cache = cache.cache
    with disarmed():
        if hasattr(cache, "expire"):
            cache.expire()
        keys = list(cache.keys())
        items = list(cache.items())
        values = list(cache.values())
        n = len(cache)
        assert n == len(keys), f"len() is {n} but iteration yields {len(keys)} keys"
        assert [k for k, _ in items] == keys, "items() and keys() disagree"
        assert len(values) == len(items) and all(a is b for (_, a), b in zip(items, values)), (
            "values() and items() disagree"
        )
        assert len({id(k) for k in keys}) == len(keys), "a key is iterated twice"
        for k, v in items:
            assert k in cache, f"iterated key {k!r} is not found"
            got = cache.get(k, _MISSING)
            assert got is v, f"key {k!r} maps to {got!r}, iteration said {v!r}"
        expected = sum(entry_size(k, v) for k, v in items)
        memory = cache.memory()
        assert memory == expected, f"memory() is {memory} but the live items add up to {expected}"
        assert n <= cache.maxsize, f"len {n} over maxsize {cache.maxsize}"
        assert memory <= cache.maxmemory, f"memory {memory} over maxmemory {cache.maxmemory}"
        assert cache.capacity() >= n, f"capacity {cache.capacity()} below len {n}"
        assert cache.is_empty() == (n == 0) and bool(cache) == (n > 0), "is_empty()/bool() disagree with len"
        if not probe:
            return
        size = entry_size(_PROBE_KEY, _PROBE_VALUE)
        must_fail = policy_model(cache).refuses(size, n, memory, cache.maxsize, cache.maxmemory)
        try:
            cache[_PROBE_KEY] = _PROBE_VALUE
        except OverflowError:
            assert must_fail, "a normal insert raised OverflowError with room to spare"
            assert len(cache) == n and cache.memory() == memory, "a refused insert changed the cache"
            return
        assert not must_fail, "an insert over the limits was accepted"
        if isinstance(cache, cachebox.TTLCache) and cache.ttl < 60:
            # The probe may have expired already: it must not be found then.
            if cache.pop(_PROBE_KEY, _MISSING) is _MISSING:
                return
            cache[_PROBE_KEY] = _PROBE_VALUE
        assert cache[_PROBE_KEY] == _PROBE_VALUE, "a normal insert is not found"
        after = len(cache)
        assert after <= cache.maxsize, "the probe insert went over maxsize"
        del cache[_PROBE_KEY]
        assert _PROBE_KEY not in cache, "a deleted key is still found"
        assert len(cache) == after - 1, "del did not remove exactly one entry"
        rest = list(cache.items())
        expected = sum(entry_size(k, v) for k, v in rest)
        assert cache.memory() == expected, (
            f"memory() is {cache.memory()} after the probe, items add up to {expected}"
        )


# --------------------------------------------------------------------------------------------
# Operations with arbitrary arguments, for hypothesis and the fuzz harness
# --------------------------------------------------------------------------------------------

#: What any operation may raise, whatever nasty arguments it got: the nasty objects' own error,
#: ``TypeError`` (unhashable key, non-int hash or size, wrong argument type), ``OverflowError``
#: (negative or huge size, a full ``Cache``, huge numbers), ``ValueError`` (bad ttl),
#: ``RuntimeError`` (re-entry from a mutating callback), ``KeyError`` (missing key, empty cache),
#: ``NotImplementedError`` (``Cache.popitem``/``drain``).
ALLOWED = (NastyError, TypeError, OverflowError, ValueError, RuntimeError, KeyError, NotImplementedError)

OPS = (
    "setitem",
    "insert",
    "getitem",
    "get",
    "contains",
    "delitem",
    "pop",
    "setdefault",
    "peek",
    "popitem",
    "drain",
    "update",
    "clear",
    "shrink",
    "first",
    "lfu",
    "lru",
    "random_key",
    "get_with_expire",
    "pop_with_expire",
    "popitem_with_expire",
    "items_with_expire",
    "items_with_frequency",
    "iterate",
    "repr",
    "eq",
    "copy",
    "deepcopy",
    "pickle",
    "len",
    "is_full",
    "expire",
)


def apply_op(cache, op, key, value, number):
    """Runs one operation on ``cache``. Returns ``("ok", result)`` or ``("raise", exception)``;
    an exception outside :data:`ALLOWED` (or a forbidden one) is re-raised as ``AssertionError``."""
    import copy
    import pickle

    c = cache
    calls = {
        "setitem": lambda: c.__setitem__(key, value),
        "insert": lambda: (
            c.insert(key, value, number) if isinstance(c, cachebox.VTTLCache) else c.insert(key, value)
        ),
        "getitem": lambda: c[key],
        "get": lambda: c.get(key, value),
        "contains": lambda: key in c,
        "delitem": lambda: c.__delitem__(key),
        "pop": lambda: c.pop(key, value),
        "setdefault": lambda: c.setdefault(key, value),
        "peek": lambda: c.peek(key, value),
        "popitem": lambda: c.popitem(),
        "drain": lambda: c.drain(number),
        "update": lambda: c.update([(key, value), (value, key)]),
        "clear": lambda: c.clear(reuse=bool(number)),
        "shrink": lambda: c.shrink_to_fit(),
        "first": lambda: c.first(number),
        "lfu": lambda: c.least_frequently_used(number),
        "lru": lambda: (c.least_recently_used(), c.most_recently_used()),
        "random_key": lambda: c.random_key(),
        "get_with_expire": lambda: c.get_with_expire(key, value),
        "pop_with_expire": lambda: c.pop_with_expire(key, value),
        "popitem_with_expire": lambda: c.popitem_with_expire(),
        "items_with_expire": lambda: list(c.items_with_expire()),
        "items_with_frequency": lambda: list(c.items_with_frequency()),
        "iterate": lambda: (list(c), list(c.values()), list(c.items())),
        "repr": lambda: repr(c),
        "eq": lambda: (c == c.copy(), c != type(c).__new__(type(c))),
        "copy": lambda: copy.copy(c),
        "deepcopy": lambda: copy.deepcopy(c),
        "pickle": lambda: pickle.loads(pickle.dumps(c)),
        "len": lambda: (len(c), bool(c), c.is_empty(), c.memory(), c.capacity(), c.__sizeof__()),
        "is_full": lambda: c.is_full(),
        "expire": lambda: c.expire(),
    }
    fn = calls[op]
    try:
        return ("ok", fn())
    except AttributeError as e:
        # The class has no such method: that is the only AttributeError allowed.
        if op in _OPTIONAL and not hasattr(type(c), _OPTIONAL[op]):
            return ("raise", e)
        raise AssertionError(f"{type(c).__name__}.{op}({key!r}, {value!r}, {number!r}): {describe(e)}") from e
    except BaseException as e:
        if is_forbidden(e) or not isinstance(e, ALLOWED):
            raise AssertionError(
                f"{type(c).__name__}.{op}({key!r}, {value!r}, {number!r}): {describe(e)}"
            ) from e
        return ("raise", e)


#: Operation name -> the method it needs (classes without it raise AttributeError).
_OPTIONAL = {
    "peek": "peek",
    "first": "first",
    "lfu": "least_frequently_used",
    "lru": "least_recently_used",
    "random_key": "random_key",
    "get_with_expire": "get_with_expire",
    "pop_with_expire": "pop_with_expire",
    "popitem_with_expire": "popitem_with_expire",
    "items_with_expire": "items_with_expire",
    "items_with_frequency": "items_with_frequency",
    "expire": "expire",
}


def ops_for(name):
    """The operations that apply to class ``name`` (the others only raise AttributeError)."""
    cls = getattr(cachebox, name)
    return tuple(op for op in OPS if op not in _OPTIONAL or hasattr(cls, _OPTIONAL[op]))


def print_problems(problems):
    """Child-side reporting: one line per problem (the parent asserts there are none)."""
    for p in problems:
        print("PROBLEM: " + p.replace("\n", " | "))
    sys.stdout.flush()


def apply_call(wrapper, key, value):
    """Calls a ``cached`` wrapper with nasty arguments (positional and keyword); an exception
    outside :data:`ALLOWED` is re-raised as ``AssertionError``."""
    for call in (
        lambda: wrapper(key),
        lambda: wrapper(key, x=value),
        lambda: wrapper(key, cachebox__ignore=True),
    ):
        try:
            call()
        except BaseException as e:
            if is_forbidden(e) or not isinstance(e, ALLOWED):
                raise AssertionError(f"cached wrapper({key!r}, x={value!r}): {describe(e)}") from e
