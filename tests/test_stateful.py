"""Model-based tests: one hypothesis state machine per cache class drives the real cache and
its model from ``tests/models.py`` with the same operations, and compares every return value,
every raised exception, and the observable state (``len``, ``memory()``, ``is_full()``, order)
after every step.

The real cache has an ``on_evict`` listener that records its calls, and half of the examples a
``weigher`` too: each step also compares the listener's calls during the step with the
removals the model made (key, value and cause, in order; a ``clear`` as a multiset, its order
being the storage's), and no call may happen outside a step.

TTL/VTTL: the test run freezes the cache clock (``conftest.py``), and the machine moves it with
``cachebox._core._advance_clock`` (process-wide, forward only) in steps of whole thousands of
seconds, while every TTL is a thousand and a half or more. A frozen clock still moves by a
microsecond per reading, so expiry decisions never depend on those, nor on how fast the
machine runs an example.
"""

import copy
import operator

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import cachebox
from cachebox._core import _advance_clock

try:
    from .cache_helpers import hashbrown_capacity, outcome
    from .models import MODELS
except ImportError:
    from cache_helpers import hashbrown_capacity, outcome
    from models import MODELS

KEYS = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, "a", "b", "ab", "xyz"])
VALUES = st.one_of(st.integers(-5, 30), st.sampled_from([2**40, 10**30]))
PAIRS = st.dictionaries(KEYS, VALUES, max_size=4)
MAXSIZES = st.integers(1, 6)
# Entries cost about 50..92 bytes, so small limits also exercise "this entry alone is too big".
MAXMEMORIES = st.sampled_from([0, 0, 0, 60, 100, 150, 260, 400])
WEIGHED = st.booleans()
GLOBAL_TTLS = st.sampled_from([1500.0, 4500.0])
ITEM_TTLS = st.sampled_from([None, 1500.0, 2500.0, 4500.0, 10500.0])
ADVANCES = st.sampled_from([1000.0, 2000.0, 5000.0])
INDEXES = st.integers(-7, 7)
DEFAULT = "default"
# Seconds the frozen clock may move during one example, a microsecond per reading (so
# remaining-TTL reports may be this much lower than the model's).
DRIFT = 0.01


def matches(real, model):
    """Exact equality with exact types, except that a float (remaining TTL) may be up to
    ``DRIFT`` seconds below the model's value."""
    if isinstance(model, float):
        return type(real) is float and model - DRIFT <= real <= model + 1e-6
    if isinstance(model, (tuple, list)):
        return (
            type(real) is type(model)
            and len(real) == len(model)
            and all(matches(a, b) for a, b in zip(real, model))
        )
    return type(real) is type(model) and real == model


def weigher(key, value):
    """The weigher of the weighed examples: 25 to 71 units an entry, a little more for longer
    reprs, so the memory limits above evict by weight as they do by ``__sizeof__``."""
    return 20 + 4 * len(repr(key)) + len(repr(value))


def canonical(removals):
    """Removals in a canonical order, for an operation whose removal order is not modelled."""
    return sorted(removals, key=repr)


def unordered(result):
    """An iteration result whose order is unspecified (Cache, RRCache), in a canonical order."""
    if result[0] == "ok":
        return ("ok", sorted(result[1], key=repr))
    return result


class CacheMachine(RuleBasedStateMachine):
    """Rules every class has. Subclasses name the class and mix in its extra rules."""

    NAME = "Cache"

    def __init__(self):
        super().__init__()
        self.cache = None
        self.model = None
        self.removed = []  # the listener's calls since the last step

    def on_evict(self, key, value, cause):
        self.removed.append((key, value, cause))

    @initialize(maxsize=MAXSIZES, maxmemory=MAXMEMORIES, ttl=GLOBAL_TTLS, weighed=WEIGHED)
    def setup(self, maxsize, maxmemory, ttl, weighed):
        cls, model_cls = getattr(cachebox, self.NAME), MODELS[self.NAME]
        weigh = weigher if weighed else None
        hooks = {"maxmemory": maxmemory, "on_evict": self.on_evict, "weigher": weigh}
        if self.NAME == "TTLCache":
            self.cache = cls(maxsize, ttl, **hooks)
            self.model = model_cls(maxsize, ttl, maxmemory, weigher=weigh)
        else:
            self.cache = cls(maxsize, **hooks)
            self.model = model_cls(maxsize, maxmemory, weigher=weigh)

    # ---- the comparison engine ----

    def _ttl_args(self, ttl):
        return (ttl,) if self.NAME == "VTTLCache" else ()

    def step(self, real_fn, *model_fns, normalize=None, unordered_removals=False):
        """Runs ``real_fn()`` on the cache and a model function on the model, and checks that
        both returned (or raised) the same, and that the listener was called for the removals
        the model made. Several model functions mean "the contract allows any of these": the
        first one that agrees with the real result, the removals and ``memory()`` is kept.
        ``RRCache`` searches for random picks that reproduce the real result, removals and
        contents."""
        normalize = normalize or (lambda result: result)
        order = canonical if unordered_removals else (lambda removals: removals)
        assert not self.removed, f"listener called outside any operation: {self.removed!r}"
        self.model.removals = []
        real = normalize(outcome(real_fn))
        removed, self.removed = order(self.removed), []
        if self.NAME == "RRCache":
            (model_fn,) = model_fns
            contents = dict(self.cache.items())
            # The keys the listener saw leave are the picks to try first.
            lost = set(self.model.data) - set(contents)
            self.model.preferred = lost | {k for k, _, cause in removed if cause != "replaced"}
            trial, result = self.model.explore(
                model_fn,
                lambda t, r: (
                    matches(real, normalize(r)) and t.data == contents and matches(removed, order(t.removals))
                ),
            )
            assert trial is not None, (
                f"real cache: {real!r}, contents {contents!r}, listener calls {removed!r}; no "
                f"sequence of random picks makes the model agree (its first attempt gave {result!r})"
            )
            self.model = trial
            return real
        tried = []
        for fn in model_fns:
            trial = copy.deepcopy(self.model) if len(model_fns) > 1 else self.model
            result = normalize(outcome(lambda: fn(trial)))  # noqa: B023 (called right here)
            agrees = matches(real, result) and matches(removed, order(trial.removals))
            if agrees and (len(model_fns) == 1 or trial.memory() == self.cache.memory()):
                self.model = trial
                return real
            tried.append((result, order(trial.removals)))
        raise AssertionError(
            f"real cache: {real!r}, listener calls {removed!r}; "
            f"model (each allowed variant: result, removals): {tried!r}"
        )

    def iteration_normalizer(self):
        return None if self.model.ORDERED else unordered

    def expiring_variants(self, method, *args):
        """Model calls for an operation that may skip or sweep expired entries (BEHAVIOUR.md §5.3)."""
        if self.model.EXPIRES:
            return [lambda m, s=sweep: getattr(m, method)(*args, sweep=s) for sweep in (False, True)]
        return [lambda m: getattr(m, method)(*args)]

    # ---- observers compared after every step ----

    #: Observers that must not change any state (BEHAVIOUR.md §6.1, §7.3). VTTL's ``len()`` sweeps, LFU,
    #: TTL and VTTL iteration sorts or sweeps: those are rules, not invariants.
    PURE_LEN = True
    PURE_ITERATION = True

    @invariant()
    def observers_agree(self):
        if self.cache is None:
            return
        c, m = self.cache, self.model
        assert c.memory() == m.memory(), f"memory(): real {c.memory()}, model {m.memory()}"
        assert c.is_full() is m.is_full(), f"is_full(): real {c.is_full()}, model {m.is_full()}"
        assert c.is_empty() is m.is_empty(), f"is_empty(): real {c.is_empty()}, model {m.is_empty()}"
        assert bool(c) is (not m.is_empty()), f"bool(): real {bool(c)}, model {not m.is_empty()}"
        assert c.capacity() >= len(m.data), f"capacity() {c.capacity()} < {len(m.data)} stored entries"
        if self.PURE_LEN:
            assert len(c) == m.len(), f"len(): real {len(c)}, model {m.len()}"
        if self.PURE_ITERATION:
            self.step(lambda: list(c.items()), lambda m: m.items(), normalize=self.iteration_normalizer())

    # ---- mapping rules ----

    @rule(key=KEYS, value=VALUES)
    def setitem(self, key, value):
        self.step(lambda: operator.setitem(self.cache, key, value), lambda m: m.setitem(key, value))

    @rule(key=KEYS, value=VALUES, ttl=ITEM_TTLS)
    def insert(self, key, value, ttl):
        args = self._ttl_args(ttl)
        self.step(lambda: self.cache.insert(key, value, *args), lambda m: m.insert(key, value, ttl))

    @rule(key=KEYS)
    def getitem(self, key):
        self.step(lambda: self.cache[key], lambda m: m.getitem(key))

    @rule(key=KEYS)
    def get(self, key):
        self.step(lambda: self.cache.get(key, DEFAULT), lambda m: m.get(key, DEFAULT))

    @rule(key=KEYS)
    def get_no_default(self, key):
        self.step(lambda: self.cache.get(key), lambda m: m.get(key))

    @rule(key=KEYS)
    def contains(self, key):
        self.step(lambda: key in self.cache, lambda m: m.contains(key))

    @rule(key=KEYS)
    def delitem(self, key):
        self.step(lambda: operator.delitem(self.cache, key), lambda m: m.delitem(key))

    @rule(key=KEYS)
    def pop(self, key):
        self.step(lambda: self.cache.pop(key, DEFAULT), lambda m: m.pop(key, DEFAULT))

    @rule(key=KEYS, value=VALUES, ttl=ITEM_TTLS)
    def setdefault(self, key, value, ttl):
        args = self._ttl_args(ttl)
        self.step(lambda: self.cache.setdefault(key, value, *args), lambda m: m.setdefault(key, value, ttl))

    @rule()
    def popitem(self):
        self.step(self.cache.popitem, *self.expiring_variants("popitem"))

    @rule(n=st.integers(-1, 7))
    def drain(self, n):
        self.step(lambda: self.cache.drain(n), *self.expiring_variants("drain", n))

    @rule(pairs=PAIRS, ttl=ITEM_TTLS)
    def update(self, pairs, ttl):
        args = self._ttl_args(ttl)
        self.step(lambda: self.cache.update(pairs, *args), lambda m: m.update(pairs, ttl))

    @rule(reuse=st.booleans())
    def clear(self, reuse):
        before = self.cache.capacity()
        self.step(lambda: self.cache.clear(reuse=reuse), lambda m: m.clear(reuse), unordered_removals=True)
        expected = before if reuse else 0
        assert self.cache.capacity() == expected, f"capacity() after clear(reuse={reuse})"

    @rule(kind=st.sampled_from(["items", "keys", "values"]))
    def iterate(self, kind):
        self.step(
            lambda: list(getattr(self.cache, kind)()),
            lambda m: getattr(m, kind)(),
            normalize=self.iteration_normalizer(),
        )

    @rule()
    def iterate_default(self):
        variants = [lambda m: m.list_keys()]
        if self.NAME == "VTTLCache":
            variants.append(lambda m: m.list_keys(hint_invalidates=True))
        self.step(lambda: list(self.cache), *variants, normalize=self.iteration_normalizer())

    @rule()
    def length(self):
        self.step(lambda: len(self.cache), lambda m: m.len())


class ShrinkRules:
    @rule()
    def shrink_to_fit(self):
        self.step(self.cache.shrink_to_fit, lambda m: m.shrink_to_fit())
        expected = hashbrown_capacity(len(self.model.data))
        assert self.cache.capacity() == expected, f"capacity() after shrink_to_fit(): expected {expected}"


class PeekRules:
    @rule(key=KEYS)
    def peek(self, key):
        self.step(lambda: self.cache.peek(key, DEFAULT), lambda m: m.peek(key, DEFAULT))


class FirstLastRules:
    @rule(n=INDEXES)
    def first(self, n):
        self.step(lambda: self.cache.first(n), lambda m: m.first(n))

    @rule()
    def first_default(self):
        self.step(self.cache.first, lambda m: m.first())

    @rule()
    def last(self):
        self.step(self.cache.last, lambda m: m.last())


class LRURules:
    @rule()
    def least_recently_used(self):
        self.step(self.cache.least_recently_used, lambda m: m.least_recently_used())

    @rule()
    def most_recently_used(self):
        self.step(self.cache.most_recently_used, lambda m: m.most_recently_used())


class LFURules:
    @rule(n=INDEXES)
    def least_frequently_used(self, n):
        self.step(lambda: self.cache.least_frequently_used(n), lambda m: m.least_frequently_used(n))

    @rule()
    def least_frequently_used_default(self):
        self.step(self.cache.least_frequently_used, lambda m: m.least_frequently_used())

    @rule()
    def items_with_frequency(self):
        self.step(lambda: list(self.cache.items_with_frequency()), lambda m: m.items_with_frequency())


class RandomKeyRules:
    @rule()
    def random_key(self):
        real = outcome(self.cache.random_key)
        live = self.model.keys()
        if live:
            assert real[0] == "ok" and real[1] in live, f"random_key() gave {real!r}; keys are {live!r}"
        else:
            assert real == ("raise", KeyError, ()), f"random_key() on an empty cache gave {real!r}"


class ExpiringRules:
    @rule(seconds=ADVANCES)
    def advance(self, seconds):
        _advance_clock(seconds)
        self.model.advance(seconds)

    @rule()
    def expire(self):
        self.step(self.cache.expire, lambda m: m.expire_now())

    @rule(key=KEYS)
    def get_with_expire(self, key):
        self.step(lambda: self.cache.get_with_expire(key, DEFAULT), lambda m: m.get_with_expire(key, DEFAULT))

    @rule(key=KEYS)
    def pop_with_expire(self, key):
        self.step(lambda: self.cache.pop_with_expire(key, DEFAULT), lambda m: m.pop_with_expire(key, DEFAULT))

    @rule()
    def popitem_with_expire(self):
        self.step(self.cache.popitem_with_expire, *self.expiring_variants("popitem_with_expire"))

    @rule()
    def items_with_expire(self):
        self.step(lambda: list(self.cache.items_with_expire()), lambda m: m.items_with_expire())


class CacheStateMachine(ShrinkRules, CacheMachine):
    NAME = "Cache"


class FIFOStateMachine(FirstLastRules, ShrinkRules, CacheMachine):
    NAME = "FIFOCache"

    @invariant()
    def ends_agree(self):
        if self.cache is not None:
            self.first_default()
            self.last()


class RRStateMachine(RandomKeyRules, ShrinkRules, CacheMachine):
    NAME = "RRCache"


class LRUStateMachine(PeekRules, LRURules, ShrinkRules, CacheMachine):
    NAME = "LRUCache"

    @invariant()
    def ends_agree(self):
        if self.cache is not None:
            self.least_recently_used()
            self.most_recently_used()


class LFUStateMachine(PeekRules, LFURules, ShrinkRules, CacheMachine):
    NAME = "LFUCache"
    PURE_ITERATION = False  # creating an iterator sorts (BEHAVIOUR.md §6.7)


class TTLStateMachine(FirstLastRules, ExpiringRules, ShrinkRules, CacheMachine):
    NAME = "TTLCache"
    PURE_ITERATION = False  # iteration sweeps (BEHAVIOUR.md §7.3)


class VTTLStateMachine(ExpiringRules, CacheMachine):
    NAME = "VTTLCache"
    PURE_LEN = False  # len() sweeps (BEHAVIOUR.md §7.3)
    PURE_ITERATION = False  # creating an iterator sorts (BEHAVIOUR.md §6.7)


TestCacheStateful = CacheStateMachine.TestCase
TestFIFOStateful = FIFOStateMachine.TestCase
TestRRStateful = RRStateMachine.TestCase
TestLRUStateful = LRUStateMachine.TestCase
TestLFUStateful = LFUStateMachine.TestCase
TestTTLStateful = TTLStateMachine.TestCase
TestVTTLStateful = VTTLStateMachine.TestCase
