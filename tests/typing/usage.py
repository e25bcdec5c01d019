"""Typed usage of cachebox: zero errors under `mypy --strict` and pyright strict.

`make typecheck` type-checks this file with both checkers and then runs it, so every
`assert_type` below is a type the stubs promise *and* a call the runtime accepts.
It is not a pytest module (no `test_` prefix); run it with `python tests/typing/usage.py`.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import time
from collections.abc import Callable, Coroutine, Hashable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn, Optional, Union

from typing_extensions import assert_type

from cachebox import (
    EVENT_HIT,
    EVENT_MISS,
    BaseCacheImpl,
    Cache,
    CacheInfo,
    FIFOCache,
    Frozen,
    LFUCache,
    LRUCache,
    RedisTier,
    RRCache,
    TieredValue,
    TierStats,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
    is_cached,
    make_hash_key,
    make_key,
    make_typed_key,
)

# isort: split
# `cachebox` does not export the wrapper types (`CachedFunction`, `BoundCachedFunction`,
# `CachedCall`, `Decorator`): annotations name them in `cachebox._core`. Imported from the
# package here, on a line of its own: in this repository pyright takes `cachebox._core` by the
# stub path (`typings/cachebox/_core.pyi`) for another module than the one the package imports
# (its symlink `cachebox/_core.pyi`), and mixing the two fails. Installed, they are one file.
from cachebox import _core  # pyright: ignore[reportPrivateUsage]

# --- Construction: annotate, or let the initial items fix the key and value types ----------

lru: LRUCache[int, str] = LRUCache(100)
inferred = LRUCache(0, {1: "one", 2: "two"})
assert_type(inferred, LRUCache[int, str])
from_pairs: FIFOCache[str, float] = FIFOCache(10, [("a", 1.5), ("b", 2.5)], capacity=10, maxmemory=1 << 20)
from_cache = RRCache(0, inferred)  # another cache works through its .items()
assert_type(from_cache, RRCache[int, str])
plain: Cache[str, bytes] = Cache(2)
lfu: LFUCache[str, int] = LFUCache(5)
ttl: TTLCache[str, list[int]] = TTLCache(50, timedelta(minutes=2))
ttl_seconds: TTLCache[int, int] = TTLCache(0, ttl=30)
vttl: VTTLCache[str, str] = VTTLCache(10, {"k": "v"}, ttl=timedelta(seconds=60))

assert_type(lru.maxsize, int)
assert_type(lru.maxmemory, int)
assert_type(ttl.ttl, float)
assert ttl.ttl == 120.0

# --- Reads and writes -----------------------------------------------------------------------

lru[1] = "one"
lru.insert(2, "two")
assert_type(lru.insert(3, "three"), Optional[str])
assert_type(lru[1], str)
assert_type(lru.get(1), Optional[str])
assert_type(lru.get(1, "fallback"), str)
assert_type(lru.get(9, 0), Union[str, int])
assert_type(lru.peek(2), Optional[str])
assert_type(lru.pop(3), Optional[str])
assert_type(lru.pop(3, None), Optional[str])
assert_type(lru.setdefault(4, "four"), str)
assert 1 in lru
assert "not an int" not in lru  # `in` takes any object, as with dict
del lru[4]

hit = lru.get(1)
if hit is not None:
    assert_type(hit, str)
    assert hit.upper() == "ONE"

optional_values: LRUCache[str, int | None] = LRUCache(0)
assert_type(optional_values.setdefault("x"), Optional[int])  # inserts None
assert optional_values["x"] is None

assert_type(len(lru), int)
assert_type(bool(lru), bool)
assert_type(lru.is_empty(), bool)
assert_type(lru.is_full(), bool)
assert_type(lru.capacity(), int)
assert_type(lru.memory(), int)
assert_type(lru == inferred, bool)

lru.update({5: "five", 6: "six"})
lru.update([(7, "seven")])
lru.update(inferred)
assert_type(lru.popitem(), tuple[int, str])
assert_type(lru.drain(2), int)
assert_type(lru.least_recently_used(), Optional[int])
assert_type(lru.most_recently_used(), Optional[int])
lru.shrink_to_fit()
lru.clear(reuse=True)
lru.clear()

# --- Iteration: typed, single-pass iterators ------------------------------------------------

inferred[3] = "three"
for key in inferred:
    assert_type(key, int)
for key, value in inferred.items():
    assert_type(key, int)
    assert_type(value, str)
keys: list[int] = list(inferred.keys())
values: list[str] = list(inferred.values())
assert keys == [1, 2, 3] and values == ["one", "two", "three"]
it: Iterator[tuple[int, str]] = inferred.items()
assert next(it) == (1, "one")

# --- Policy-specific methods ----------------------------------------------------------------

assert_type(from_pairs.first(), Optional[str])
assert_type(from_pairs.first(-1), Optional[str])
assert_type(from_pairs.last(), Optional[str])
assert_type(from_cache.random_key(), int)

lfu["a"] = 1
lfu["b"] = 2
assert lfu["a"] + lfu["a"] == 2
assert_type(lfu.least_frequently_used(), Optional[str])
assert_type(lfu.peek("a", 0), int)
for k, v, frequency in lfu.items_with_frequency():
    assert_type(k, str)
    assert_type(v, int)
    assert_type(frequency, int)

ttl["a"] = [1, 2]
value_and_ttl = ttl.get_with_expire("a")
assert_type(value_and_ttl, tuple[Optional[list[int]], float])
assert_type(ttl.get_with_expire("zz", []), tuple[list[int], float])
assert_type(ttl.pop_with_expire("zz"), tuple[Optional[list[int]], float])
assert_type(ttl.first(), Optional[str])
for name, numbers, remaining in ttl.items_with_expire():
    assert_type(name, str)
    assert_type(numbers, list[int])
    assert_type(remaining, float)
assert_type(ttl.popitem_with_expire(), tuple[str, list[int], float])
ttl.expire()

vttl.insert("forever", "v")
vttl.insert("seconds", "v", 30)
vttl.insert("duration", "v", ttl=timedelta(minutes=1))
vttl.insert("deadline", "v", datetime.now() + timedelta(hours=1))
vttl.update({"x": "y"}, ttl=5.5)
assert_type(vttl.setdefault("z", "w", ttl=10), str)
assert_type(vttl.get_with_expire("x"), tuple[Optional[str], float])
assert_type(vttl.popitem_with_expire(), tuple[str, str, float])

plain["k"] = b"v"
assert_type(plain.get("k"), Optional[bytes])

# --- Copies, pickling, subclasses, Frozen ---------------------------------------------------

assert_type(inferred.copy(), LRUCache[int, str])
assert_type(copy.copy(inferred), LRUCache[int, str])
assert_type(copy.deepcopy(ttl), TTLCache[str, list[int]])
restored: LRUCache[int, str] = pickle.loads(pickle.dumps(inferred))
assert restored == inferred


class Sessions(LRUCache[str, dict[str, Any]]):
    """A subclass that adds an attribute; `copy()` keeps the subclass."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self.label = "sessions"


sessions = Sessions(10)
sessions["alice"] = {"id": 1}
assert_type(sessions.copy(), Sessions)
assert_type(sessions.get("alice"), Optional[dict[str, Any]])
assert LRUCache[int, str] is LRUCache  # subscripting at runtime returns the class

frozen = Frozen(inferred)
assert_type(frozen, Frozen[int, str])
assert_type(frozen[1], str)
assert_type(frozen.get(2), Optional[str])
assert_type(frozen.cache, BaseCacheImpl[int, str])
assert_type(len(frozen), int)
assert_type(list(frozen.items()), list[tuple[int, str]])
ignoring = Frozen(inferred, ignore=True)
ignoring.insert(10, "ten")  # writes do nothing with ignore=True
assert 10 not in ignoring
ignoring.ignore = False

caches: list[BaseCacheImpl[int, str]] = [inferred, frozen, from_cache]
assert len(caches) == 3

# --- Decorators -----------------------------------------------------------------------------


@cached(LRUCache(maxsize=128))
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


assert_type(fib(30), int)
assert fib(30) == 832040
assert_type(fib.cache, LRUCache[Any, Any])
info = fib.cache_info()
assert_type(info, CacheInfo)
assert_type(info.hits, int)
hits, misses, maxsize, length, memory = info
assert_type(memory, int)
assert info.misses == 31 and length == 31
fib.cache_clear()
assert_type(fib.callback, Optional[Callable[[int, Any, Any], object]])
assert_type(fib.__wrapped__(3), Any)
assert fib.__name__ == "fib"
assert is_cached(fib)

events: list[tuple[int, Hashable, object]] = []


def record(event: int, key: Hashable, value: object) -> None:
    events.append((event, key, value))


@cached(None, key_maker=make_typed_key, callback=record, copy_level=2)
def scale(x: float, *, factor: float = 2.0) -> list[float]:
    return [x * factor]


assert_type(scale(1.5), list[float])
assert_type(scale(1.5, factor=3.0), list[float])
assert_type(scale.cache, FIFOCache[Any, Any])
assert [e for e, _, _ in events] == [EVENT_MISS, EVENT_MISS]
scale(1.5)
assert events[-1][0] == EVENT_HIT


def by_first(args: tuple[Any, ...], kwds: dict[str, Any]) -> Hashable:
    first: Hashable = args[0]
    return first


@cached({}, key_maker=by_first, clear_reuse=True)
def shout(word: str, times: int = 1) -> str:
    return word.upper() * times


assert_type(shout("hi"), str)
assert shout("hi", 3) == "HI"  # the key is only the first argument


@cached(TTLCache(0, ttl=60))
async def fetch(url: str) -> bytes:
    await asyncio.sleep(0)
    return url.encode()


async def main() -> None:
    data = await fetch("https://example.invalid")
    assert_type(data, bytes)
    both = await asyncio.gather(fetch("a"), fetch("a"))
    assert_type(both, tuple[bytes, bytes])
    first, second = both
    assert first == second == b"a"
    assert fetch.cache_info().hits >= 1
    removed = fetch.cache_invalidate("a")  # a plain method, not awaited
    assert_type(removed, bool)
    assert removed and not fetch.cache_invalidate("a")


asyncio.run(main())
assert_type(asyncio.run(fetch("b")), bytes)  # the awaitable is a coroutine


class Repository:
    def __init__(self) -> None:
        self.cache: LRUCache[Hashable, Any] = LRUCache(0)

    @cachedmethod(LRUCache(0))
    def lookup(self, name: str) -> int:
        return len(name)

    @cached(lambda self: self.cache)  # a cache factory: one cache per instance
    def per_instance(self, x: int) -> str:
        return str(x)

    @staticmethod
    @cached(None)
    def helper(x: int) -> int:
        return -x


repo = Repository()
assert_type(repo.lookup("abc"), int)
assert_type(Repository.lookup(repo, "abc"), int)
assert_type(repo.lookup.cache_info(), CacheInfo)
assert_type(Repository.lookup.cache, LRUCache[Any, Any])
assert_type(repo.per_instance(5), str)
assert repo.per_instance(5) == "5" and len(repo.cache) == 1
assert not is_cached(Repository.per_instance)
assert_type(Repository.helper(2), int)

# --- Entry control: eviction listeners and weighers -----------------------------------------

# The stub's own alias is private, so a listener spells the causes out (or takes a `str`).
EvictionCause = Literal["size", "memory", "expired", "replaced", "explicit"]
departures: list[tuple[int, str, EvictionCause]] = []


def note_departure(key: int, value: str, cause: EvictionCause) -> None:
    departures.append((key, value, cause))


def by_length(key: int, value: str) -> int:
    return len(value)


watched = LRUCache(2, on_evict=note_departure, weigher=by_length)
assert_type(watched, LRUCache[int, str])  # the hooks fix the key and value types too
watched[1] = "a"
watched[2] = "bb"
watched[1] = "aa"  # replaces "a"
watched[3] = "ccc"  # evicts 2, the least recently used
del watched[1]
assert departures == [(1, "a", "replaced"), (2, "bb", "size"), (1, "aa", "explicit")]
assert watched.memory() == 3  # the weigher's figure, not __sizeof__
assert_type(watched.on_evict, Optional[Callable[[int, str, EvictionCause], object]])
assert_type(watched.weigher, Optional[Callable[[int, str], int]])
assert watched.on_evict is note_departure and watched.weigher is by_length
assert_type(Frozen(watched).on_evict, Optional[Callable[[int, str, EvictionCause], object]])
assert Frozen(watched).weigher is by_length  # a Frozen view forwards both
assert LRUCache[int, str](2).on_evict is None
assert copy.copy(watched).on_evict is note_departure

pressure: list[Hashable] = []


def under_pressure(key: Hashable, value: object, cause: EvictionCause) -> bool:
    if cause in ("size", "memory"):  # the Literal narrows as a str would
        pressure.append(key)
    return True  # a listener's result is ignored


def log_any(key: object, value: object, cause: str) -> None:  # wider parameters are fine
    pass


bytes_bound: FIFOCache[str, bytes] = FIFOCache(
    0, maxmemory=10, on_evict=under_pressure, weigher=lambda k, v: len(v)
)
bytes_bound["a"] = b"123456"
bytes_bound["b"] = b"123456"  # 12 bytes > 10: "a" leaves
assert pressure == ["a"] and bytes_bound.memory() == 6
logged: TTLCache[str, int] = TTLCache(0, 60, capacity=4, maxmemory=0, on_evict=log_any)
plain_hooks: Cache[str, int] = Cache(0, on_evict=log_any, weigher=None)
random_hooks: RRCache[str, int] = RRCache(0, {"a": 1}, on_evict=under_pressure)
frequent_hooks: LFUCache[str, int] = LFUCache(0, weigher=lambda key, value: value)

expired: list[EvictionCause] = []
short_lived: VTTLCache[str, int] = VTTLCache(0, on_evict=lambda k, v, cause: expired.append(cause))
short_lived.insert("k", 1, ttl=0.001)
time.sleep(0.05)
short_lived.expire()
assert expired == ["expired"]

# --- Entry control: invalidation and per-call lifetimes -------------------------------------


@cached(LRUCache(0))
def area(width: int, height: int = 1) -> int:
    return width * height


assert area(2, 3) == 6
assert_type(area.cache_invalidate(2, 3), bool)
assert not area.cache_invalidate(2, 3)  # already gone
assert not area.cache_invalidate(2, height=3)  # another key than area(2, 3)


class Prices:
    def __init__(self) -> None:
        self.cache: VTTLCache[Hashable, Any] = VTTLCache(0)

    @cachedmethod(LRUCache(0))
    def price(self, item: str) -> float:
        return float(len(item))

    @cached(lambda self: self.cache, ttl=60)  # a factory's cache is checked per call
    def quote(self, item: str, *, currency: str = "EUR") -> str:
        return f"{len(item)} {currency}"


prices = Prices()
bound = prices.price  # a BoundCachedFunction: its parameters leave `self` out
assert_type(bound("tea"), float)
removed = bound.cache_invalidate("tea")  # the entry of prices.price("tea")
assert_type(removed, bool)
assert removed
assert not Prices.price.cache_invalidate(prices, "tea")  # unbound: self passed explicitly
assert_type(bound.__func__(prices, "tea"), float)  # the unbound wrapper: self first
assert bound.__self__ is prices and bound.__func__ is Prices.__dict__["price"]
assert bound == prices.price
assert_type(bound.cache_info(), CacheInfo)
assert_type(prices.quote("tea", currency="USD"), str)
assert prices.quote.cache_invalidate("tea", currency="USD")
assert not prices.quote.cache_invalidate("tea")


@cached(VTTLCache(100), ttl=60)
def token(user: str) -> str:
    return user[::-1]


@cachedmethod(VTTLCache(100), ttl=timedelta(minutes=5))
def session_of(self: object, user: str) -> str:
    return user


def lifetime(key: Hashable, value: str | None) -> float | None:
    return None if value is None else 30.0  # a missing user is remembered for good


@cached(VTTLCache(0), ttl=lifetime)
def user_name(uid: int) -> str | None:
    return "alice" if uid == 1 else None


@cached(VTTLCache(0), None, False, None, 1, ttl=lambda key, value: timedelta(seconds=value))
def slow_square(x: int) -> int:
    return x * x


assert_type(token("abc"), str)
assert 59 < token.cache.get_with_expire("abc")[1] <= 60
assert_type(token.cache, VTTLCache[Any, Any])
assert session_of(None, "bob") == "bob"
assert user_name(1) == "alice" and user_name(2) is None
assert 29 < user_name.cache.get_with_expire(1)[1] <= 30
assert user_name.cache.get_with_expire(2)[1] == 0.0  # never expires
assert slow_square(3) == 9 and 8 < slow_square.cache.get_with_expire(3)[1] <= 9
assert cached(VTTLCache(0), ttl=None)(area)(1) == 1

# --- A shared second tier: l2= -------------------------------------------------------------
#
# A sync function takes a tier with a sync client, and its `cache_invalidate`/`cache_clear`
# answer at once; a coroutine function takes one with a `redis.asyncio` client, and they return
# coroutines to await. No Redis server runs here: the clients below stand for a server that is
# down, so the tier fails open (docs/BEHAVIOUR.md §13.15): calls compute, the first tier keeps
# their results, invalidations still answer for it.


class DownRedis:
    """What the tier uses of a sync redis-py client, for a server that refuses connections."""

    def execute_command(self, *args: object, **kwargs: object) -> NoReturn:
        raise ConnectionError("Redis is down")

    def register_script(self, script: str) -> Callable[..., NoReturn]:
        return self.execute_command

    def get(self, name: str) -> NoReturn:
        raise ConnectionError("Redis is down")

    def pubsub(self) -> DownRedis:
        return self

    def subscribe(self, *channels: str) -> NoReturn:
        raise ConnectionError("Redis is down")

    def close(self) -> None:
        pass


class DownAsyncRedis:
    """The same for a `redis.asyncio` client, for a server that never answers: the tier cuts
    each operation short at its `op_timeout`. (Not one that refuses at once: `asyncio.run`
    would then cancel the tier's listener just as its subscribing failed, and `asyncio.wait_for`
    before Python 3.12 raises that failure instead of the cancellation, so the listener would
    retry and `asyncio.run` never return.)"""

    async def execute_command(self, *args: object, **kwargs: object) -> NoReturn:
        await asyncio.Event().wait()
        raise AssertionError("unreachable: the tier gives up first")

    def register_script(self, script: str) -> Callable[..., Coroutine[Any, Any, NoReturn]]:
        return self.execute_command

    async def get(self, name: str) -> NoReturn:
        await self.execute_command("GET", name)

    def pubsub(self) -> DownAsyncRedis:
        return self

    async def subscribe(self, *channels: str) -> NoReturn:
        await self.execute_command("SUBSCRIBE", *channels)

    async def aclose(self) -> None:
        pass


sync_tier = RedisTier(DownRedis(), namespace="usage", ttl=60)
async_tier = RedisTier(DownAsyncRedis(), namespace="usage-async", ttl=60, op_timeout=0.02)
assert_type(sync_tier, RedisTier)
assert_type(sync_tier.namespace, str)
assert_type(cached(LRUCache(0), l2=sync_tier), "_core.Decorator[LRUCache[Any, Any], RedisTier]")
assert_type(cached(LRUCache(0)), "_core.Decorator[LRUCache[Any, Any], None]")
untiered_decorator: _core.Decorator[LRUCache[Any, Any]] = cached(LRUCache(0))  # the default: None


@cached(LRUCache(0), l2=sync_tier)
def profile(uid: int) -> str:
    return f"user {uid}"


assert_type(profile(1), str)
assert profile(1) == "user 1"
assert_type(profile.cache, LRUCache[Any, Any])
stored = profile.cache[1]  # the first tier holds the value with its deadline
assert isinstance(stored, TieredValue) and stored.value == "user 1"
assert_type(stored.expires_in, float)
assert 0 < stored.expires_in <= 60
tier_ok: bool = profile.cache_invalidate(1)  # a sync function's tier answers at once
assert tier_ok and not profile.cache_invalidate(1)
profile.cache_clear()  # and returns None
stats = sync_tier.stats()
assert_type(stats, TierStats)
assert_type(stats.hits, int)
assert_type(stats.breaker, str)
assert_type(stats.subscribed, bool)
assert stats.hits == 0 and stats.misses == 0 and stats.errors >= 1  # Redis is down


@cached(TTLCache(0, ttl=60), l2=async_tier)
async def avatar(uid: int) -> bytes:
    await asyncio.sleep(0)
    return b"%d" % uid


class Catalog:
    @cachedmethod(LRUCache(0), l2=async_tier)
    async def price(self, item: str) -> float:
        await asyncio.sleep(0)
        return float(len(item))


@cached(LRUCache(0), l2=None)  # no tier, spelled out: plain results
async def untiered(uid: int) -> int:
    return uid


def maybe_tiered(
    tier: RedisTier | None,
) -> _core.CachedFunction[
    [int],
    _core.CachedCall[int],
    LRUCache[Any, Any],
    bool | Coroutine[Any, Any, bool],
    Coroutine[Any, Any, None] | None,
]:
    """A tier known only at run time: either kind of result, which the caller tells apart."""

    async def double(x: int) -> int:
        return 2 * x

    # Called, not applied with `@`: the decorator's type is a union here, which mypy's strict
    # mode takes for an untyped decorator.
    return cached(LRUCache(0), l2=tier)(double)


# The wrapper's last two type arguments are what `cache_invalidate` and `cache_clear` return.
avatar_wrapper: _core.CachedFunction[
    [int], _core.CachedCall[bytes], TTLCache[Any, Any], Coroutine[Any, Any, bool], Coroutine[Any, Any, None]
] = avatar


async def with_tiers() -> None:
    assert_type(await avatar(7), bytes)
    # With an async tier, a coroutine of the bool: awaiting it does the work.
    pending = assert_type(avatar.cache_invalidate(7), Coroutine[Any, Any, bool])
    ok = await pending
    assert_type(ok, bool)
    assert ok and not await avatar.cache_invalidate(7)
    clearing = assert_type(avatar.cache_clear(), Coroutine[Any, Any, None])
    await clearing
    await avatar.cache_clear()

    catalog = Catalog()
    assert_type(await catalog.price("tea"), float)
    bound_price: _core.BoundCachedFunction[
        [str],
        _core.CachedCall[float],
        LRUCache[Any, Any],
        Coroutine[Any, Any, bool],
        Coroutine[Any, Any, None],
    ] = catalog.price
    removed_price = await bound_price.cache_invalidate("tea")  # self comes from the binding
    assert_type(removed_price, bool)
    assert removed_price
    assert not await Catalog.price.cache_invalidate(catalog, "tea")  # unbound: self explicitly
    await catalog.price.cache_clear()
    assert_type(catalog.price.cache_info(), CacheInfo)

    assert_type(untiered.cache_invalidate(1), bool)  # no tier: not awaited
    assert_type(await untiered(1), int)
    for tier in (None, async_tier):
        double = maybe_tiered(tier)
        assert await double(2) == 4
        either = double.cache_invalidate(2)
        removed_double = either if isinstance(either, bool) else await either
        assert_type(removed_double, bool)
        assert removed_double


asyncio.run(with_tiers())
asyncio.run(avatar.cache_clear())  # a coroutine, as asyncio.run wants
assert async_tier.stats().errors >= 1

# Annotations of wrappers written with three type arguments fit every function but a coroutine
# function with a tier (the last two default to `bool` and `None`).
fib_again: _core.CachedFunction[[int], int, LRUCache[Any, Any]] = fib
fetch_again: _core.CachedFunction[[str], _core.CachedCall[bytes], TTLCache[Any, Any]] = fetch
price_again: _core.BoundCachedFunction[[str], float, LRUCache[Any, Any]] = prices.price
profile_again: _core.CachedFunction[[int], str, LRUCache[Any, Any]] = profile

# --- Key makers and constants ---------------------------------------------------------------

assert_type(make_key((1,), {}), Hashable)
assert_type(make_key((1.0,), {"a": 1}, fasttype=(int, str, float)), Hashable)
assert_type(make_hash_key((1, 2), {}), int)
assert_type(make_typed_key((1,), {}), tuple[Any, ...])
event: int = EVENT_HIT
assert_type(EVENT_MISS, Literal[1])
assert event == 2
print("usage.py: ok")
