"""Reference models of the seven cachebox policies.

Each model is a deliberately naive, pure-Python transcription of the contract,
``docs/BEHAVIOUR.md`` (§2-§10). Models mirror the public API: a model method raises the
exception the real method must raise (with the same arguments) and returns what it must return.
Sizes follow BEHAVIOUR.md §3.1: an entry costs ``key.__sizeof__() + value.__sizeof__()``, or
what the cache's ``weigher(key, value)`` returns when it has one (then the key passed to the
write is weighed, not the stored key it may be equal to).

Removals: every model records, in ``removals``, the ``(key, value, cause)`` of each entry that
leaves it, in the order they leave, as the cache's ``on_evict`` listener must be called: "size"
and "memory" for evictions (a victim taken while the cache holds ``maxsize`` entries counts as
"size", even if the memory limit alone would also have needed it), "expired" for a swept entry
and for the old value of an expired entry a write reuses, "replaced" for the old value of a
live key written again, "explicit" for ``del``, ``pop``, ``popitem``, ``drain`` and ``clear``.
The state machines empty ``removals`` before each operation and compare it with the listener's
calls after it.

Clock: the TTL models keep their own clock ``now`` that the tests move forward in step with
``cachebox._core._advance_clock``. Expiry instants are ``(time, seq)`` pairs: ``seq`` numbers the
writes, standing for the tick by which the cache clock moves between two writes made at the same
model time (the test run's frozen clock moves a microsecond per reading, as a running clock never
reads the same instant twice).

Random replacement: the model cannot know which entries the real cache picked, so
``RRModel.explore`` searches the sequences of picks for one under which the model returns what
the real cache returned and ends with the same contents.

These are the only policy models on the Python side: the state machines (``test_stateful.py``),
the replays of ``test_policies.py``, the unlimited-cache check of every class
(``mixins.ModelMixin``) and the consistency check of the bad-input and fuzz tests
(``nasty.assert_consistent``, for which inserts a policy refuses: :meth:`CacheModel.refuses`)
all use them. The Rust fuzz target over the store (``tests/fuzz/rust``) has a model of its own,
in Rust, below the Python API.

The helpers that are not models (class names, entry sizes, capacities, outcomes) are in
``cache_helpers.py``; running code in a child interpreter is ``subprocess_harness.py``'s.
"""

import sys

try:
    from .cache_helpers import OVERFLOW_MESSAGE, entry_size, outcome
except ImportError:
    from cache_helpers import OVERFLOW_MESSAGE, entry_size, outcome


def _resolve_index(n, length):
    """Python-style index ``n`` into a sequence of ``length`` items, or None when out of range."""
    if n < 0:
        n += length
    return n if 0 <= n < length else None


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


class CacheModel:
    """``Cache``: a bounded hash map that never evicts (order is not modelled)."""

    EVICTS = False
    EXPIRES = False
    ORDERED = False

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        self.maxsize = maxsize or sys.maxsize
        self.maxmemory = maxmemory or sys.maxsize
        self.weigher = weigher
        self.data = {}  # every stored entry, expired ones included
        self.weights = {}  # key -> what the entry is charged
        self.removals = []  # (key, value, cause) of each entry that left, in order

    # ---- policy hooks (overridden by the policies) ----

    def _order(self):
        """Stored keys in policy order (expired ones included)."""
        return list(self.data)

    def _on_new(self, key, ttl):
        """A new key was stored (at the newest end)."""

    def _on_write(self, key, ttl):
        """The value of a stored key (live or expired) was replaced by insert/[]=."""

    def _on_read(self, key):
        """A ``[]``/``get``/``in`` hit."""

    def _on_setdefault(self, key):
        """``setdefault`` found a live key."""

    def _on_remove(self, key):
        """``key`` left the store."""

    def _on_clear(self):
        """Everything left the store."""

    def _victim(self):
        """The key that ``popitem``/eviction removes now."""
        raise NotImplementedError()

    def _before_specific_removal(self):
        """Runs before ``pop``/``del`` removes a key (LFU/VTTL sort here)."""

    def _sweep(self):
        """Physically removes expired entries (TTL/VTTL)."""

    def _live(self, key):
        return key in self.data

    def _before_iteration(self):
        """Runs when an iterator is created (TTL sweeps, LFU/VTTL sort)."""

    def _settle(self):
        """Puts a lazily sorted order in order (LFU/VTTL)."""

    # ---- internals ----

    def _weigh(self, key, value):
        """What an entry written as ``key: value`` is charged."""
        return entry_size(key, value) if self.weigher is None else self.weigher(key, value)

    def _stored_key(self, key):
        """The key object stored for ``key`` (a write through an equal key keeps it)."""
        return next(k for k in self.data if k == key)

    def _remove(self, key, cause):
        self.removals.append((key, self.data[key], cause))
        del self.data[key]
        del self.weights[key]
        self._on_remove(key)

    def _evict_one(self, cause):
        self._remove(self._victim(), cause)

    def _live_keys(self):
        return [k for k in self._order() if self._live(k)]

    def _live_len(self):
        return sum(1 for k in self.data if self._live(k))

    def _nth_live(self, n):
        """The live key at index ``n`` of the policy order, or None."""
        keys = self._live_keys()
        i = _resolve_index(n, len(keys))
        return None if i is None else keys[i]

    # ---- the public API ----

    @classmethod
    def refuses(cls, size, stored, memory, maxsize, maxmemory):
        """Whether inserting a new key whose entry costs ``size`` raises ``OverflowError`` in a
        cache of this policy holding ``stored`` entries that cost ``memory`` together: an entry
        bigger than ``maxmemory`` never fits, and a policy that does not evict refuses what
        would go over a limit."""
        if size > maxmemory:
            return True
        return not cls.EVICTS and (stored >= maxsize or memory + size > maxmemory)

    def memory(self):
        return sum(self.weights.values())

    def len(self):
        return self._live_len()

    def is_empty(self):
        return self._live_len() == 0

    def is_full(self):
        return self._live_len() == self.maxsize or self.memory() >= self.maxmemory

    def insert(self, key, value, ttl=None):
        size = self._weigh(key, value)
        if size > self.maxmemory:
            raise OverflowError(OVERFLOW_MESSAGE)
        if key in self.data:
            # An existing entry (an expired one too) keeps its slot and key object.
            stored = self._stored_key(key)
            live = self._live(key)
            old = self.data[key]
            if self.weigher is None:
                size = entry_size(stored, value)  # charged with the key that stays
            if not self.EVICTS and self.memory() - self.weights[stored] + size > self.maxmemory:
                raise OverflowError(OVERFLOW_MESSAGE)
            self.data[stored] = value
            self.weights[stored] = size
            self.removals.append((stored, old, "replaced" if live else "expired"))
            self._on_write(stored, ttl)
            if self.EVICTS:
                while self.memory() > self.maxmemory:
                    self._evict_one("memory")
            return old if live else None
        if self.EVICTS:
            self._sweep()
            while len(self.data) >= self.maxsize or self.memory() + size > self.maxmemory:
                self._evict_one("size" if len(self.data) >= self.maxsize else "memory")
        elif self.refuses(size, len(self.data), self.memory(), self.maxsize, self.maxmemory):
            raise OverflowError(OVERFLOW_MESSAGE)
        self.data[key] = value
        self.weights[key] = size
        self._on_new(key, ttl)
        return None

    def setitem(self, key, value):
        self.insert(key, value)

    def get(self, key, default=None):
        if not self._live(key):
            return default
        self._on_read(key)
        return self.data[key]

    def getitem(self, key):
        if not self._live(key):
            raise KeyError(key)
        return self.get(key)

    def contains(self, key):
        if not self._live(key):
            return False
        self._on_read(key)
        return True

    def peek(self, key, default=None):
        return self.data[key] if self._live(key) else default

    def pop(self, key, default=None):
        if not self._live(key):
            return default
        self._before_specific_removal()
        value = self.data[key]
        self._remove(key, "explicit")
        return value

    def delitem(self, key):
        if not self._live(key):
            raise KeyError(key)
        self.pop(key)

    def setdefault(self, key, default=None, ttl=None):
        if self._live(key):
            self._on_setdefault(key)
            return self.data[key]
        self.insert(key, default, ttl)
        return default

    def popitem(self):
        if not self.EVICTS:
            raise NotImplementedError()
        if not self.data:
            raise KeyError()
        key = self._victim()
        value = self.data[key]
        self._remove(key, "explicit")
        return key, value

    def drain(self, n, **popitem_options):
        if not self.EVICTS:
            raise NotImplementedError()
        count = 0
        while count < n:
            try:
                self.popitem(**popitem_options)
            except KeyError:
                break
            count += 1
        return count

    def update(self, pairs, ttl=None):
        for key, value in pairs.items():
            self.insert(key, value, ttl)

    def clear(self, reuse=False):
        """Every stored entry leaves as "explicit", expired ones too (the order of a clear is
        not modelled: the machines compare its removals as a multiset)."""
        self.removals.extend((k, v, "explicit") for k, v in self.data.items())
        self.data.clear()
        self.weights.clear()
        self._on_clear()

    def items(self):
        self._before_iteration()
        return [(k, self.data[k]) for k in self._live_keys()]

    def keys(self):
        return [k for k, _ in self.items()]

    def list_keys(self, hint_invalidates=False):
        """``list(c)``: CPython creates the iterator, then calls ``len(c)`` for a length hint.
        Only ``VTTLCache.__len__`` changes anything (it sweeps, BEHAVIOUR.md §7.3). That sweep
        leaves iterators valid (§8.3); ``hint_invalidates`` models a fresh iterator it
        invalidates when it removed an entry, which the state machine accepts too. An iterator
        that survives it yields what it would have yielded anyway."""
        keys = self.keys()
        stored = len(self.data)
        self.len()
        if hint_invalidates and len(self.data) != stored:
            raise RuntimeError("cache changed during iteration")
        return keys

    def values(self):
        return [v for _, v in self.items()]

    def shrink_to_fit(self):
        """Only the expiry sweep is modelled; the tests check ``capacity()`` themselves."""
        self._sweep()


class _ListOrderModel(CacheModel):
    """A policy whose order is a plain list of keys, ``order[0]`` being evicted first."""

    EVICTS = True
    ORDERED = True

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self.order = []

    def _order(self):
        return list(self.order)

    def _on_new(self, key, ttl):
        self.order.append(key)

    def _on_remove(self, key):
        self.order.remove(key)

    def _on_clear(self):
        self.order.clear()

    def _victim(self):
        return self.order[0]

    def _move_to_end(self, key):
        self.order.remove(key)
        self.order.append(key)


class FIFOModel(_ListOrderModel):
    """``FIFOCache``: insertion order; updates keep the position."""

    def first(self, n=0):
        return self._nth_live(n)

    def last(self):
        return self.first(-1)


class NeedChoice(BaseException):
    """Raised by :class:`RRModel` when it must pick a random victim and has no script left."""

    def __init__(self, candidates):
        super().__init__(candidates)
        self.candidates = candidates


class RRModel(CacheModel):
    """``RRCache``: evicts (and pops) a uniformly random entry.

    The model cannot know the real random picks, so :meth:`explore` searches the sequences of
    picks for one that reproduces what the real cache did. Each attempt runs on a copy of the
    model with ``script`` holding the picks to make; running out of script raises
    :class:`NeedChoice`, which extends the search by one pick.
    """

    EVICTS = True
    MAX_ATTEMPTS = 5000

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self.script = []
        self.preferred = set()  # keys tried first as victims (those the real cache lost)

    def _victim(self):
        if self.script:
            return self.script.pop(0)
        # Lost keys first, smallest first: the most likely match, found on the first attempt.
        order = sorted(self.data, key=lambda k: (k not in self.preferred, self.weights[k], repr(k)))
        raise NeedChoice(order)

    def explore(self, op, accept):
        """Runs ``op(copy)`` on copies of this model for each sequence of random picks until
        ``accept(copy, result)`` holds, where ``result`` is ``op``'s return value or the
        exception it raised. Returns ``(copy, result)`` for the accepted attempt, or
        ``(None, first result)`` if no sequence of picks (within ``MAX_ATTEMPTS``) matches."""
        import copy

        pending = [[]]
        first = None
        for _ in range(self.MAX_ATTEMPTS):
            if not pending:
                break
            picks = pending.pop()
            trial = copy.deepcopy(self)
            trial.script = list(picks)
            try:
                result = outcome(lambda: op(trial))  # noqa: B023 (called right here)
            except NeedChoice as choice:
                # Depth first; the preferred candidate is tried first (pushed last).
                pending.extend(picks + [k] for k in reversed(choice.candidates))
                continue
            if first is None:
                first = result
            if accept(trial, result):
                trial.script = []
                return trial, result
        return None, first


class LRUModel(_ListOrderModel):
    """``LRUCache``: order from least to most recently used."""

    def _on_read(self, key):
        self._move_to_end(key)

    def _on_write(self, key, ttl):
        self._move_to_end(key)

    def _on_setdefault(self, key):
        self._move_to_end(key)

    def least_recently_used(self):
        return self.order[0] if self.order else None

    def most_recently_used(self):
        return self.order[-1] if self.order else None


class _LazySortModel(CacheModel):
    """BEHAVIOUR.md §6.7 literally: a list ``S``, appends at the end, a dirty flag, and a stable sort by
    ``_sort_key`` only before popitem/eviction, iterator creation, ``nth`` lookups, removal of a
    specific key and (VTTL) sweeps."""

    EVICTS = True
    ORDERED = True

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self.S = []
        self.dirty = False

    def _sort_key(self, key):
        raise NotImplementedError

    def _settle(self):
        if self.dirty:
            self.S.sort(key=self._sort_key)
            self.dirty = False

    def _order(self):
        return list(self.S)

    def _on_new(self, key, ttl):
        self.S.append(key)
        self.dirty = True

    def _on_remove(self, key):
        self.S.remove(key)

    def _on_clear(self):
        self.S.clear()
        self.dirty = False

    def _victim(self):
        self._settle()
        return self.S[0]

    _before_specific_removal = _before_iteration = _settle


class LFUModel(_LazySortModel):
    """``LFUCache``: frequency 0 on insert, +1 on a read hit, ``in`` hit and update."""

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self.freq = {}

    def _sort_key(self, key):
        return self.freq[key]

    def _on_new(self, key, ttl):
        self.freq[key] = 0
        super()._on_new(key, ttl)

    def _on_remove(self, key):
        del self.freq[key]
        super()._on_remove(key)

    def _on_clear(self):
        self.freq.clear()
        super()._on_clear()

    def _on_read(self, key):
        self.freq[key] += 1
        self.dirty = True

    def _on_write(self, key, ttl):
        self._on_read(key)

    def least_frequently_used(self, n=0):
        self._settle()
        return self._nth_live(n)

    def items_with_frequency(self):
        return [(k, v, self.freq[k]) for k, v in self.items()]


class _ExpiringMixin:
    """The model clock and the expiry bookkeeping shared by TTL and VTTL."""

    EXPIRES = True

    def _init_clock(self):
        self.now = 0.0
        self.seq = 0
        self.expire = {}  # key -> (time, seq), or None for "never"

    def advance(self, seconds):
        self.now += seconds

    def _expiry(self, ttl):
        if ttl is None:
            return None
        self.seq += 1
        return (self.now + ttl, self.seq)

    def _live(self, key):
        if key not in self.data:
            return False
        at = self.expire[key]
        return at is None or not at[0] < self.now

    def _sweep(self):
        for key in [k for k in self._order() if not self._live(k)]:
            self._remove(key, "expired")

    def remaining(self, key):
        """Seconds left for a live ``key`` (0.0 if it never expires)."""
        at = self.expire[key]
        return 0.0 if at is None else max(0.0, at[0] - self.now)

    def expire_now(self):
        """``expire()``."""
        self._sweep()

    def popitem(self, sweep=True):
        """Expired entries are never returned (BEHAVIOUR.md §5.3): they are swept first
        (``sweep=True``, what §7.3 has ``popitem`` do) or only skipped (``sweep=False``, which
        leaves their bytes in ``memory()``); the tests accept whichever the real cache did."""
        if sweep:
            self._sweep()
        self._settle()
        keys = self._live_keys()
        if not keys:
            raise KeyError()
        key = keys[0]
        value, left = self.data[key], self.remaining(key)
        self._remove(key, "explicit")
        self.last_popped_remaining = left
        return key, value

    def popitem_with_expire(self, sweep=True):
        key, value = self.popitem(sweep)
        return key, value, self.last_popped_remaining

    def get_with_expire(self, key, default=None):
        if not self._live(key):
            return default, 0.0
        return self.data[key], self.remaining(key)

    def pop_with_expire(self, key, default=None):
        if not self._live(key):
            return default, 0.0
        left = self.remaining(key)
        return self.pop(key), left

    def items_with_expire(self):
        return [(k, v, self.remaining(k)) for k, v in self.items()]


class TTLModel(_ExpiringMixin, _ListOrderModel):
    """``TTLCache``: FIFO order; a write moves the key to the back with expiry ``now + ttl``."""

    def __init__(self, maxsize=0, ttl=1.0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self.ttl = float(ttl)
        self._init_clock()

    def _on_new(self, key, ttl):
        super()._on_new(key, ttl)
        self.expire[key] = self._expiry(self.ttl)

    def _on_write(self, key, ttl):
        self._move_to_end(key)
        self.expire[key] = self._expiry(self.ttl)

    def _on_remove(self, key):
        del self.expire[key]
        super()._on_remove(key)

    def _on_clear(self):
        self.expire.clear()
        super()._on_clear()

    _before_iteration = _ExpiringMixin._sweep

    def first(self, n=0):
        self._sweep()
        return self._nth_live(n)

    def last(self):
        return self.first(-1)


class VTTLModel(_ExpiringMixin, _LazySortModel):
    """``VTTLCache``: per-key expiry; lazily sorted by expiry, "never" last (BEHAVIOUR.md §6.9)."""

    def __init__(self, maxsize=0, maxmemory=0, weigher=None):
        super().__init__(maxsize, maxmemory, weigher)
        self._init_clock()

    def _sort_key(self, key):
        at = self.expire[key]
        return (1, 0.0, 0) if at is None else (0,) + at

    def _on_new(self, key, ttl):
        self.expire[key] = self._expiry(ttl)
        super()._on_new(key, ttl)

    def _on_write(self, key, ttl):
        self.expire[key] = self._expiry(ttl)
        self.dirty = True

    def _on_remove(self, key):
        del self.expire[key]
        super()._on_remove(key)

    def _on_clear(self):
        self.expire.clear()
        super()._on_clear()

    def _sweep(self):
        self._settle()
        super()._sweep()

    def len(self):
        self._sweep()
        return len(self.data)


MODELS = {
    "Cache": CacheModel,
    "FIFOCache": FIFOModel,
    "RRCache": RRModel,
    "LRUCache": LRUModel,
    "LFUCache": LFUModel,
    "TTLCache": TTLModel,
    "VTTLCache": VTTLModel,
}
