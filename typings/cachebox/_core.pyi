"""Type stubs of `cachebox._core`, the native module (docs/BEHAVIOUR.md says what it does).

Hand-written and the single source of truth: `cachebox/_core.pyi` is a symlink to this file.
`make typecheck` runs `mypy.stubtest` against the built module, so names, signatures and
defaults cannot drift from the runtime; the types themselves are checked by the usage and
misuse files in `tests/typing/`.
"""

from collections.abc import Callable, Container, Coroutine, Generator, Hashable, Iterable, Iterator
from datetime import datetime, timedelta
from inspect import Signature
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    NamedTuple,
    NoReturn,
    Protocol,
    final,
    overload,
    type_check_only,
)

from typing_extensions import Concatenate, ParamSpec, Self, TypeAlias, TypeVar, disjoint_base

from cachebox.redis_tier import RedisTier

# The public API, which the package re-exports (`from ._core import *`).
__all__ = [
    "EVENT_HIT",
    "EVENT_MISS",
    "BaseCacheImpl",
    "Cache",
    "CacheInfo",
    "FIFOCache",
    "Frozen",
    "LFUCache",
    "LRUCache",
    "RRCache",
    "TTLCache",
    "TieredValue",
    "VTTLCache",
    "__version__",
    "cached",
    "cachedmethod",
    "is_cached",
    "make_hash_key",
    "make_key",
    "make_typed_key",
]

__version__: str

_KT = TypeVar("_KT", bound=Hashable)
_VT = TypeVar("_VT")
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
_KT_co = TypeVar("_KT_co", covariant=True)
_VT_co = TypeVar("_VT_co", covariant=True)

@type_check_only
class _SupportsItems(Protocol[_KT_co, _VT_co]):
    """Anything with an `items()` of pairs: a dict, another cache, a `Frozen`."""

    def items(self) -> Iterable[tuple[_KT_co, _VT_co]]: ...

# What the constructors and `update` accept (docs/BEHAVIOUR.md §2.3): an object with
# `.items()`, or an iterable of `(key, value)` tuples.
_Pairs: TypeAlias = _SupportsItems[_KT, _VT] | Iterable[tuple[_KT, _VT]]
# `VTTLCache`'s per-item TTL: seconds, a duration, a (naive, local) deadline, or never.
_VTTL: TypeAlias = float | timedelta | datetime | None
# Why an entry left a cache, as its listener is told (docs/BEHAVIOUR.md §3.7). Private: the
# runtime module has no such name, and stubtest refuses a public name the module lacks.
_EvictionCause: TypeAlias = Literal["size", "memory", "expired", "replaced", "explicit"]
# `on_evict(key, value, cause)`, called once per entry that left; what it returns is ignored.
_OnEvict: TypeAlias = Callable[[_KT, _VT, _EvictionCause], object]
# `weigher(key, value)`: the entry's charge against `maxmemory`, an int >= 0.
_Weigher: TypeAlias = Callable[[_KT, _VT], int]

# ---------------------------------------------------------------------------------------------
# Iterators. One native class per cache; they are not attributes of the module (only the
# methods that return them reach them), hence `type_check_only`. Single pass: they raise
# `RuntimeError` once the cache changes under them.

@type_check_only
class _CacheIteratorBase(Iterator[_T_co]):
    """The API of every cache iterator below (no such class exists at runtime)."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> _T_co: ...

@final
@type_check_only
class CacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class FIFOCacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class RRCacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class LRUCacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class LFUCacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class TTLCacheIterator(_CacheIteratorBase[_T_co]): ...

@final
@type_check_only
class VTTLCacheIterator(_CacheIteratorBase[_T_co]): ...

# ---------------------------------------------------------------------------------------------
# Caches

class BaseCacheImpl(Generic[_KT, _VT]):
    """Abstract base of every cache and of `Frozen`; only for `isinstance` and subclassing.

    Calling it directly raises `NotImplementedError`. It declares no methods: the API of the
    cache classes is in the `type_check_only` bases below, `Frozen` spells out its own.
    """

# The shared API of the seven cache classes. At runtime each cache class derives directly from
# `BaseCacheImpl` and defines every method itself; these bases exist only for the checkers
# (`type_check_only`), so that each cache class below declares only what is its own: its
# iterator types, its policy's methods and, where it differs, its constructor.

@type_check_only
class _CacheBase(BaseCacheImpl[_KT, _VT]):
    """What every cache class has; the writes are those of all but `VTTLCache` (no ttl)."""

    def __init__(
        self,
        maxsize: int,
        iterable: _Pairs[_KT, _VT] | None = None,
        *,
        capacity: int = 0,
        maxmemory: int = 0,
        on_evict: _OnEvict[_KT, _VT] | None = None,
        weigher: _Weigher[_KT, _VT] | None = None,
    ) -> None: ...
    @property
    def maxsize(self) -> int:
        """The size limit (`sys.maxsize` when created with 0)."""
    @property
    def maxmemory(self) -> int:
        """The memory limit in bytes (`sys.maxsize` when created with 0)."""
    @property
    def on_evict(self) -> _OnEvict[_KT, _VT] | None:
        """The listener told of every entry that leaves, or `None`."""
    @property
    def weigher(self) -> _Weigher[_KT, _VT] | None:
        """The function that weighs each entry instead of `__sizeof__`, or `None`."""
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: _KT, /) -> _VT: ...
    def __setitem__(self, key: _KT, value: _VT, /) -> None: ...
    def __delitem__(self, key: _KT, /) -> None: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __sizeof__(self) -> int: ...
    def __copy__(self) -> Self: ...
    def __deepcopy__(self, memo: dict[int, Any]) -> Self: ...
    def __getstate__(self) -> tuple[Any, ...]: ...
    def __setstate__(self, state: tuple[Any, ...]) -> None: ...
    def capacity(self) -> int: ...
    def memory(self) -> int:
        """The sum of the stored entries' weights.

        An entry weighs `weigher(key, value)`, or `key.__sizeof__() + value.__sizeof__()`
        when the cache has no weigher.
        """
    def is_empty(self) -> bool: ...
    def is_full(self) -> bool: ...
    def insert(self, key: _KT, value: _VT) -> _VT | None:
        """Sets `key` and returns the previous value, or `None` if it was absent."""
    @overload
    def get(self, key: _KT, default: None = None) -> _VT | None:
        """The value of `key`, or `default`."""
    @overload
    def get(self, key: _KT, default: _VT) -> _VT: ...
    @overload
    def get(self, key: _KT, default: _T) -> _VT | _T: ...
    @overload
    def pop(self, key: _KT, default: None = None) -> _VT | None:
        """Removes `key` and returns its value, or `default`; never raises `KeyError`."""
    @overload
    def pop(self, key: _KT, default: _VT) -> _VT: ...
    @overload
    def pop(self, key: _KT, default: _T) -> _VT | _T: ...
    @overload
    def setdefault(self: _CacheBase[_KT, _T | None], key: _KT, default: None = None) -> _T | None:
        """The value of `key`; if absent, inserts `default` and returns it."""
    @overload
    def setdefault(self, key: _KT, default: _VT) -> _VT: ...
    def popitem(self) -> tuple[_KT, _VT]:
        """Removes and returns the entry that would be evicted next; `KeyError` if empty."""
    def drain(self, n: int) -> int:
        """Pops up to `n` entries and returns how many were removed."""
    def update(self, iterable: _Pairs[_KT, _VT]) -> None: ...
    def clear(self, *, reuse: bool = False) -> None:
        """Removes every entry; `reuse=True` keeps the allocated capacity."""
    def shrink_to_fit(self) -> None: ...
    def copy(self) -> Self: ...

@type_check_only
class _PeekableCache(_CacheBase[_KT, _VT]):
    """`LRUCache` and `LFUCache`: reads that leave the policy alone."""

    @overload
    def peek(self, key: _KT, default: None = None) -> _VT | None:
        """Like `get`, without touching the eviction order."""
    @overload
    def peek(self, key: _KT, default: _VT) -> _VT: ...
    @overload
    def peek(self, key: _KT, default: _T) -> _VT | _T: ...

@type_check_only
class _OrderedCache(_CacheBase[_KT, _VT]):
    """`FIFOCache` and `TTLCache`: keys by insertion order."""

    def first(self, n: int = 0) -> _KT | None:
        """The key at position `n` of the order (negative counts from the end), or `None`."""
    def last(self) -> _KT | None:
        """The newest key, or `None` if empty."""

@type_check_only
class _ExpiringCache(_CacheBase[_KT, _VT]):
    """`TTLCache` and `VTTLCache`: the remaining time-to-live of entries."""

    @overload
    def get_with_expire(self, key: _KT, default: None = None) -> tuple[_VT | None, float]:
        """`(value, remaining seconds)`, or `(default, 0.0)`."""
    @overload
    def get_with_expire(self, key: _KT, default: _VT) -> tuple[_VT, float]: ...
    @overload
    def get_with_expire(self, key: _KT, default: _T) -> tuple[_VT | _T, float]: ...
    @overload
    def pop_with_expire(self, key: _KT, default: None = None) -> tuple[_VT | None, float]:
        """Like `get_with_expire`, and removes the entry."""
    @overload
    def pop_with_expire(self, key: _KT, default: _VT) -> tuple[_VT, float]: ...
    @overload
    def pop_with_expire(self, key: _KT, default: _T) -> tuple[_VT | _T, float]: ...
    def popitem_with_expire(self) -> tuple[_KT, _VT, float]:
        """Like `popitem`, with the remaining seconds as a third item."""
    def expire(self) -> None:
        """Removes the expired entries now."""

@disjoint_base
class Cache(_CacheBase[_KT, _VT]):
    """No eviction policy: inserting a new key into a full cache raises `OverflowError`."""

    def __iter__(self) -> CacheIterator[_KT]: ...
    def keys(self) -> CacheIterator[_KT]: ...
    def values(self) -> CacheIterator[_VT]: ...
    def items(self) -> CacheIterator[tuple[_KT, _VT]]: ...
    def popitem(self) -> NoReturn:
        """Always raises `NotImplementedError`: a `Cache` has no eviction order."""
    def drain(self, n: int) -> NoReturn:
        """Always raises `NotImplementedError`: a `Cache` has no eviction order."""

@disjoint_base
class FIFOCache(_OrderedCache[_KT, _VT]):
    """First in, first out: evicts the oldest inserted entry."""

    def __iter__(self) -> FIFOCacheIterator[_KT]: ...
    def keys(self) -> FIFOCacheIterator[_KT]: ...
    def values(self) -> FIFOCacheIterator[_VT]: ...
    def items(self) -> FIFOCacheIterator[tuple[_KT, _VT]]: ...

@disjoint_base
class RRCache(_CacheBase[_KT, _VT]):
    """Random replacement: evicts an entry chosen uniformly at random."""

    def __iter__(self) -> RRCacheIterator[_KT]: ...
    def keys(self) -> RRCacheIterator[_KT]: ...
    def values(self) -> RRCacheIterator[_VT]: ...
    def items(self) -> RRCacheIterator[tuple[_KT, _VT]]: ...
    def random_key(self) -> _KT:
        """A random key, without removing it; `KeyError` if empty."""

@disjoint_base
class LRUCache(_PeekableCache[_KT, _VT]):
    """Least recently used: evicts the entry unused for the longest time."""

    def __iter__(self) -> LRUCacheIterator[_KT]: ...
    def keys(self) -> LRUCacheIterator[_KT]: ...
    def values(self) -> LRUCacheIterator[_VT]: ...
    def items(self) -> LRUCacheIterator[tuple[_KT, _VT]]: ...
    def least_recently_used(self) -> _KT | None:
        """The key `popitem` would remove next, or `None` if empty."""
    def most_recently_used(self) -> _KT | None:
        """The most recently used key, or `None` if empty."""

@disjoint_base
class LFUCache(_PeekableCache[_KT, _VT]):
    """Least frequently used: evicts the entry read the fewest times."""

    def __iter__(self) -> LFUCacheIterator[_KT]: ...
    def keys(self) -> LFUCacheIterator[_KT]: ...
    def values(self) -> LFUCacheIterator[_VT]: ...
    def items(self) -> LFUCacheIterator[tuple[_KT, _VT]]: ...
    def least_frequently_used(self, n: int = 0) -> _KT | None:
        """The key at position `n` of the LFU order (negative counts from the end), or `None`."""
    def items_with_frequency(self) -> LFUCacheIterator[tuple[_KT, _VT, int]]:
        """`(key, value, frequency)` triples, least frequently used first."""

@disjoint_base
class TTLCache(_OrderedCache[_KT, _VT], _ExpiringCache[_KT, _VT]):
    """FIFO with one time-to-live for every entry; expired entries are invisible."""

    def __init__(
        self,
        maxsize: int,
        ttl: float | timedelta,
        iterable: _Pairs[_KT, _VT] | None = None,
        *,
        capacity: int = 0,
        maxmemory: int = 0,
        on_evict: _OnEvict[_KT, _VT] | None = None,
        weigher: _Weigher[_KT, _VT] | None = None,
    ) -> None: ...
    @property
    def ttl(self) -> float:
        """The time-to-live of every entry, in seconds."""
    def __iter__(self) -> TTLCacheIterator[_KT]: ...
    def keys(self) -> TTLCacheIterator[_KT]: ...
    def values(self) -> TTLCacheIterator[_VT]: ...
    def items(self) -> TTLCacheIterator[tuple[_KT, _VT]]: ...
    def items_with_expire(self) -> TTLCacheIterator[tuple[_KT, _VT, float]]:
        """`(key, value, remaining seconds)` triples of the live entries."""

@disjoint_base
class VTTLCache(_ExpiringCache[_KT, _VT]):
    """A time-to-live per entry; evicts the entry that expires soonest.

    Its writes take an optional `ttl` (seconds, a duration, a deadline, or `None` for never).
    """

    def __init__(
        self,
        maxsize: int,
        iterable: _Pairs[_KT, _VT] | None = None,
        ttl: _VTTL = None,
        *,
        capacity: int = 0,
        maxmemory: int = 0,
        on_evict: _OnEvict[_KT, _VT] | None = None,
        weigher: _Weigher[_KT, _VT] | None = None,
    ) -> None: ...
    def __iter__(self) -> VTTLCacheIterator[_KT]: ...
    def keys(self) -> VTTLCacheIterator[_KT]: ...
    def values(self) -> VTTLCacheIterator[_VT]: ...
    def items(self) -> VTTLCacheIterator[tuple[_KT, _VT]]: ...
    def items_with_expire(self) -> VTTLCacheIterator[tuple[_KT, _VT, float]]:
        """`(key, value, remaining seconds)` triples of the live entries."""
    def insert(self, key: _KT, value: _VT, ttl: _VTTL = None) -> _VT | None:
        """Sets `key` (expiring after `ttl`, or never) and returns the previous value or `None`."""
    @overload
    def setdefault(
        self: VTTLCache[_KT, _T | None], key: _KT, default: None = None, ttl: _VTTL = None
    ) -> _T | None:
        """The value of `key`; if absent, inserts `default` and returns it."""
    @overload
    def setdefault(self, key: _KT, default: _VT, ttl: _VTTL = None) -> _VT: ...
    def update(self, iterable: _Pairs[_KT, _VT], ttl: _VTTL = None) -> None: ...

# The seven cache classes, in the class table's order (for tests and tools that cover every class).
CACHE_CLASSES: tuple[type[BaseCacheImpl[Any, Any]], ...]

@disjoint_base
class Frozen(BaseCacheImpl[_KT, _VT]):
    """A read-only view of a cache: reads are proxied, writes raise `TypeError`.

    With `ignore=True` the writes do nothing and return `None` instead (`pop` included, whatever
    its default). Reads still touch the wrapped cache's policy (LRU order, LFU frequency).
    """

    ignore: bool
    def __new__(_cls, cls: BaseCacheImpl[_KT, _VT], ignore: bool = False) -> Self:
        """`cls` is the cache to wrap (not a `Frozen`); anything else raises `AssertionError`."""
    @property
    def cache(self) -> BaseCacheImpl[_KT, _VT]:
        """The wrapped cache (writable through this reference)."""
    @property
    def maxsize(self) -> int: ...
    @property
    def maxmemory(self) -> int: ...
    @property
    def on_evict(self) -> _OnEvict[_KT, _VT] | None: ...
    @property
    def weigher(self) -> _Weigher[_KT, _VT] | None: ...
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __getitem__(self, key: _KT, /) -> _VT: ...
    def __iter__(self) -> Iterator[_KT]: ...
    def __sizeof__(self) -> int: ...
    def capacity(self) -> int: ...
    def memory(self) -> int: ...
    def is_empty(self) -> bool: ...
    def is_full(self) -> bool: ...
    @overload
    def get(self, key: _KT, default: None = None) -> _VT | None: ...
    @overload
    def get(self, key: _KT, default: _VT) -> _VT: ...
    @overload
    def get(self, key: _KT, default: _T) -> _VT | _T: ...
    def keys(self) -> Iterator[_KT]: ...
    def values(self) -> Iterator[_VT]: ...
    def items(self) -> Iterator[tuple[_KT, _VT]]: ...
    # The writes: `TypeError("This cache is frozen.")`, or nothing at all with `ignore=True`.
    def __setitem__(self, key: _KT, value: _VT, /) -> None: ...
    def __delitem__(self, key: _KT, /) -> None: ...
    def insert(self, *args: Any, **kwargs: Any) -> None: ...
    def pop(self, *args: Any, **kwargs: Any) -> None: ...
    def setdefault(self, *args: Any, **kwargs: Any) -> None: ...
    def popitem(self) -> None: ...
    def drain(self, *args: Any, **kwargs: Any) -> None: ...
    def update(self, *args: Any, **kwargs: Any) -> None: ...
    def clear(self, *, reuse: bool = False) -> None: ...
    def shrink_to_fit(self) -> None: ...

# ---------------------------------------------------------------------------------------------
# Decorators

@final
class TieredValue:
    """What the first tier holds for a function with `l2=`: the value, and how long it may
    still be served (never past its copy in the second tier)."""

    @property
    def value(self) -> Any: ...
    @property
    def expires_in(self) -> float: ...

class CacheInfo(NamedTuple):
    """What `cache_info()` of a cached function returns."""

    hits: int
    misses: int
    maxsize: int
    length: int
    memory: int

EVENT_MISS: Final = 1
EVENT_HIT: Final = 2

def make_key(
    args: tuple[Any, ...], kwds: dict[str, Any], fasttype: Container[type[Any]] | None = ...
) -> Hashable:
    """The default key: `args`, plus `object` and the flattened `kwds` items if any.

    A single positional argument whose exact type is in `fasttype` (default `(int, str)`) is
    the key itself.
    """

def make_hash_key(args: tuple[Any, ...], kwds: dict[str, Any]) -> int:
    """`hash(make_key(args, kwds))`."""

def make_typed_key(args: tuple[Any, ...], kwds: dict[str, Any]) -> tuple[Any, ...]:
    """`make_key` without the fast path, followed by the type of every argument."""

def is_cached(func: object) -> bool:
    """Whether `func.cache` exists and is a cachebox cache."""

def _advance_clock(seconds: float) -> None:
    """Test hook: moves the TTL clock of every cache forward by `seconds`."""

def _freeze_clock(frozen: bool = True) -> None:
    """Test hook: stops (or restarts) the real TTL clock, so only `_advance_clock` moves time."""

def _followers(func: CachedFunction[..., Any, Any, Any, Any]) -> int:
    """Test hook: how many callers of `func` wait for another caller's computation."""

def _encode_key(key: object) -> bytes:
    """The shared tier's canonical encoding of a key (the same in every process)."""

def _decode_key(data: bytes) -> Any:
    """The key `_encode_key` encoded; `ValueError` for bytes it did not write."""

_R = TypeVar("_R")
_R_co = TypeVar("_R_co", covariant=True)
_S = TypeVar("_S")
_P = ParamSpec("_P")
_P2 = ParamSpec("_P2")
# The cache of a wrapper: a cache type, or `None` in factory mode (no `cache` attribute).
_C_co = TypeVar("_C_co", bound=BaseCacheImpl[Any, Any] | None, covariant=True)
_C2 = TypeVar("_C2", bound=BaseCacheImpl[Any, Any] | None)
_Cache = TypeVar("_Cache", bound=BaseCacheImpl[Any, Any])
# `l2=`: the second tier a decorator was given (`RedisTier`), or `None` without one. Only a
# coroutine function with a tier gets awaitable `cache_invalidate`/`cache_clear` results (its
# tier must have a `redis.asyncio` client; a sync function's, a sync one: the checkers cannot
# tell the two apart, as `RedisTier` takes any client).
_L2_co = TypeVar("_L2_co", bound=RedisTier | None, covariant=True, default=None)
# What `cache_invalidate(...)` and `cache_clear()` of a wrapper return: `bool` and `None`, or
# with an async tier the coroutines of them. The defaults keep `CachedFunction[P, R, C]` the
# wrapper of every function but a coroutine function with `l2=`.
_Inv_co = TypeVar("_Inv_co", covariant=True, default=bool)
_Clr_co = TypeVar("_Clr_co", covariant=True, default=None)
_Inv = TypeVar("_Inv")
_Clr = TypeVar("_Clr")

# `key_maker(args, kwds)` returns the key of a call (`None` stands for `make_key`).
_KeyMaker: TypeAlias = Callable[[tuple[Any, ...], dict[str, Any]], Hashable]
# `callback(event, key, value)`, with `event` one of `EVENT_MISS`, `EVENT_HIT`; an async
# wrapper awaits what it returns when that is awaitable.
_Callback: TypeAlias = Callable[[int, Any, Any], object]
# `ttl`: the lifetime of every stored result (seconds or a duration), or `ttl(key, value)`,
# which decides it per result (`None`: never expires).
_CallTTL: TypeAlias = float | timedelta | Callable[[Any, Any], float | timedelta | None]

@final
class CachedCall(Coroutine[Any, Any, _R_co]):
    """The awaitable that calling the wrapper of a coroutine function returns."""

    def __await__(self) -> Generator[Any, None, _R_co]: ...
    def send(self, value: Any) -> Any: ...
    @overload
    def throw(
        self, typ: type[BaseException], val: BaseException | object = None, tb: TracebackType | None = None
    ) -> Any: ...
    @overload
    def throw(self, typ: BaseException, val: None = None, tb: TracebackType | None = None) -> Any: ...
    def close(self) -> None: ...

@type_check_only
class _CacheAttribute:
    """`cache` of a wrapper: the cache given to the decorator (or the `FIFOCache` it made)."""

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(
        self, instance: _CachedWrapper[..., Any, _Cache, Any, Any], owner: type[Any] | None = None, /
    ) -> _Cache: ...

@type_check_only
class _CachedWrapper(Generic[_P, _R_co, _C_co, _Inv_co, _Clr_co]):
    """What a `CachedFunction` and a `BoundCachedFunction` both offer (no such class exists).

    `_P` and `_R_co` are the parameters and the return type of a call (for a coroutine function
    the return type is a `CachedCall` of its result); `_C_co` is the type of `cache`, or `None`
    when the decorator got a cache factory, which has no `cache`, `cache_info` or `cache_clear`.
    `_Inv_co` and `_Clr_co` are what `cache_invalidate` and `cache_clear()` return: `bool` and
    `None`, or for a coroutine function with `l2=` coroutines of them.
    """

    __name__: str
    __qualname__: str
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...
    def cache_invalidate(self, *args: _P.args, **kwargs: _P.kwargs) -> _Inv_co:
        """Removes the entry a call with these arguments would use; whether there was one.

        For a coroutine function with `l2=`, a coroutine of that (`await f.cache_invalidate(x)`).
        """
    # A descriptor rather than a property so that both checkers reject `cache` in factory
    # mode (mypy does not check a property's self-type against the TypeVar's bound).
    cache: ClassVar[_CacheAttribute]
    @property
    def cache_info(
        self: _CachedWrapper[..., Any, BaseCacheImpl[Any, Any], Any, Any],
    ) -> Callable[[], CacheInfo]:
        """`cache_info()`: `CacheInfo(hits, misses, maxsize, length, memory)`."""
    @property
    def cache_clear(
        self: _CachedWrapper[..., Any, BaseCacheImpl[Any, Any], Any, _Clr],
    ) -> Callable[[], _Clr]:
        """`cache_clear()`: empties the cache and resets the counters.

        For a coroutine function with `l2=`, it returns a coroutine (`await f.cache_clear()`).
        """
    @property
    def callback(self) -> _Callback | None: ...

@final
class CachedFunction(_CachedWrapper[_P, _R_co, _C_co, _Inv_co, _Clr_co]):
    """A memoized function: call it like the decorated one.

    Read through an instance it binds as a method does, to a `BoundCachedFunction`.
    """

    __wrapped__: Callable[_P, Any]
    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None, /) -> Self: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[_S, _P2], _R, _C2, _Inv, _Clr],
        instance: _S,
        owner: type[Any] | None = None,
        /,
    ) -> BoundCachedFunction[_P2, _R, _C2, _Inv, _Clr]: ...
    def __reduce__(self) -> str: ...

@final
class BoundCachedFunction(_CachedWrapper[_P, _R_co, _C_co, _Inv_co, _Clr_co]):
    """A `CachedFunction` bound to an instance: what `instance.method` is.

    Calling it (or its `cache_invalidate`) passes `__self__` as the first argument; every other
    attribute is the wrapper's, so `_P` leaves `self` out but `__wrapped__` still takes it.
    """

    __wrapped__: Callable[..., Any]
    @property
    def __self__(self) -> object: ...
    # The `CachedFunction` itself, typed by its base: mypy would apply `CachedFunction.__get__`
    # to a property's value, as if `__func__` were bound again.
    @property
    def __func__(self) -> _CachedWrapper[..., _R_co, _C_co, _Inv_co, _Clr_co]: ...
    @property
    def __signature__(self) -> Signature:
        """The wrapper's signature without its first parameter, as for a bound method."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, ...]: ...

@final
class Decorator(Generic[_C_co, _L2_co]):
    """What `cached(...)` and `cachedmethod(...)` return: apply it to a function.

    `_C_co` is the type of the wrappers' `cache`; `_L2_co` is the type of `l2=` (`None` without
    a second tier). A coroutine function with a tier gets awaitable `cache_invalidate` and
    `cache_clear` results; every other function gets a `bool` and `None`.
    """

    # A coroutine function with a tier (whose client must then be a `redis.asyncio` one): its
    # `cache_invalidate` and `cache_clear` return the coroutines of the tier's work. The ignores:
    # mypy sees that a coroutine function typed only as a plain callable would take the last
    # overload (`bool` and `None`) while the runtime returns coroutines; coroutine functions are
    # told apart by their return type here, as for `CachedCall`, and cannot be otherwise.
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self: Decorator[_C2, RedisTier], func: Callable[_P, Coroutine[Any, Any, _R]], /
    ) -> CachedFunction[_P, CachedCall[_R], _C2, Coroutine[Any, Any, bool], Coroutine[Any, Any, None]]: ...
    @overload
    def __call__(
        self: Decorator[_C2, None], func: Callable[_P, Coroutine[Any, Any, _R]], /
    ) -> CachedFunction[_P, CachedCall[_R], _C2]: ...
    # A decorator typed `Decorator[C, RedisTier | None]`: either result, which the caller tells
    # apart. (`cached(..., l2=maybe_tier)` gives the union of the two decorators instead.)
    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[_P, Coroutine[Any, Any, _R]], /
    ) -> CachedFunction[
        _P, CachedCall[_R], _C_co, bool | Coroutine[Any, Any, bool], None | Coroutine[Any, Any, None]
    ]: ...
    @overload
    def __call__(self, func: Callable[_P, _R], /) -> CachedFunction[_P, _R, _C_co]: ...

# `cached(cache)` keeps the type of the cache it is given, with `Any` keys and values (a call's
# key is whatever `key_maker` builds). `None` and a `dict` become a `FIFOCache`; a function is
# a cache factory, called with the first argument of every call (`lambda self: self.cache`).
# Only a `VTTLCache` keeps a lifetime per entry, so only its overload takes a `ttl` other than
# `None` (and the factory's: its cache is known per call, and checked then). Each kind of cache
# has two overloads, without a tier (`l2=None`, the default) and with one: the decorator's second
# type argument says which, and decides what `cache_invalidate` and `cache_clear` return (see
# `Decorator`). A tier typed `RedisTier | None` matches both: the checkers make the result the
# union of the two decorators, which mypy's strict mode calls an untyped decorator when it is
# applied with `@` (`disallow_untyped_decorators`), but not when it is called:
# `cached(cache, l2=tier)(func)`.
@overload
def cached(
    cache: None = None,
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cached(
    cache: None = None,
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: dict[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cached(
    cache: dict[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: Cache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[Cache[Any, Any], None]: ...
@overload
def cached(
    cache: Cache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[Cache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: FIFOCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cached(
    cache: FIFOCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: RRCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[RRCache[Any, Any], None]: ...
@overload
def cached(
    cache: RRCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[RRCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: LRUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[LRUCache[Any, Any], None]: ...
@overload
def cached(
    cache: LRUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[LRUCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: LFUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[LFUCache[Any, Any], None]: ...
@overload
def cached(
    cache: LFUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[LFUCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: TTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[TTLCache[Any, Any], None]: ...
@overload
def cached(
    cache: TTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[TTLCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: VTTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: None = None,
) -> Decorator[VTTLCache[Any, Any], None]: ...
@overload
def cached(
    cache: VTTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: RedisTier,
) -> Decorator[VTTLCache[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: Frozen[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[Frozen[Any, Any], None]: ...
@overload
def cached(
    cache: Frozen[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[Frozen[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: BaseCacheImpl[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[BaseCacheImpl[Any, Any], None]: ...
@overload
def cached(
    cache: BaseCacheImpl[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[BaseCacheImpl[Any, Any], RedisTier]: ...
@overload
def cached(
    cache: Callable[[Any], BaseCacheImpl[Any, Any]],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: None = None,
) -> Decorator[None, None]: ...
@overload
def cached(
    cache: Callable[[Any], BaseCacheImpl[Any, Any]],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: RedisTier,
) -> Decorator[None, RedisTier]: ...

# `cachedmethod` is `cached` for methods: the first argument (`self`) is left out of the key.
# It takes no cache factory; as with `cached`, only a `VTTLCache` takes a `ttl`, and each kind of
# cache has an overload without a tier and one with.
@overload
def cachedmethod(
    cache: None = None,
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: None = None,
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: dict[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: dict[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: Cache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[Cache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: Cache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[Cache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: FIFOCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[FIFOCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: FIFOCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[FIFOCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: RRCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[RRCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: RRCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[RRCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: LRUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[LRUCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: LRUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[LRUCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: LFUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[LFUCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: LFUCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[LFUCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: TTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[TTLCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: TTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[TTLCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: VTTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: None = None,
) -> Decorator[VTTLCache[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: VTTLCache[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: _CallTTL | None = None,
    l2: RedisTier,
) -> Decorator[VTTLCache[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: Frozen[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[Frozen[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: Frozen[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[Frozen[Any, Any], RedisTier]: ...
@overload
def cachedmethod(
    cache: BaseCacheImpl[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: None = None,
) -> Decorator[BaseCacheImpl[Any, Any], None]: ...
@overload
def cachedmethod(
    cache: BaseCacheImpl[Any, Any],
    key_maker: _KeyMaker | None = None,
    clear_reuse: bool = False,
    callback: _Callback | None = None,
    copy_level: int = 1,
    *,
    ttl: None = None,
    l2: RedisTier,
) -> Decorator[BaseCacheImpl[Any, Any], RedisTier]: ...
