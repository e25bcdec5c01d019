"""Mistakes the stubs must catch: every line with a trailing `E: <reason>` comment is an error
for BOTH mypy and pyright, and no other line is an error for either (`check_misuse.py`).

Never run: several marked lines would fail at runtime, which is the point.
Keep each case on one line, so that both checkers report it on the marked line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from cachebox import (
    BaseCacheImpl,
    Cache,
    CacheInfo,
    Frozen,
    LFUCache,
    LRUCache,
    RedisTier,
    RRCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
)

lru: LRUCache[int, str] = LRUCache(10)
ttl: TTLCache[str, int] = TTLCache(10, 60)
vttl: VTTLCache[str, int] = VTTLCache(10)
frozen: Frozen[int, str] = Frozen(lru)
plain: Cache[int, int] = Cache(0)

# --- keys and values ------------------------------------------------------------------------

lru["one"] = "1"  # E: wrong key type
lru[1] = 1  # E: wrong value type
lru.insert(2, b"two")  # E: wrong value type for insert
lru.update({"k": "v"})  # E: update with wrong key type
LRUCache(10, [1, 2, 3])  # E: iterable of non-pairs
value: str = lru.get(1)  # E: get() without a default may return None
length: int = lru.get(1, 0)  # E: get(k, default) is V | D, not D
key: str = lru.popitem()[0]  # E: popitem() returns tuple[K, V]
bad_key_type: LRUCache[list[int], str] = LRUCache(0)  # E: keys must be hashable
first: int = ttl.first()  # E: first() may return None
remaining: int = ttl.get_with_expire("a")[1]  # E: the remaining TTL is a float
for _k, _v, _extra in lru.items():  # E: items() yields pairs
    pass
first_key: str = next(iter(lru))  # E: iteration yields keys

# --- constructors and arguments -------------------------------------------------------------

TTLCache(10)  # E: TTLCache requires a ttl
TTLCache(10, ttl="1m")  # E: ttl is seconds or a timedelta
VTTLCache(10, ttl=[1])  # E: VTTL ttl is a number, timedelta, datetime or None
vttl.insert("k", 1, ttl="soon")  # E: VTTL ttl of insert
lru.insert(3, "three", 5)  # E: only VTTLCache.insert takes a ttl
lru.clear(True)  # E: reuse is keyword-only
lru.drain()  # E: drain needs n
RRCache(maxsize="10")  # E: maxsize is an int
LFUCache(10, capacity=None)  # E: capacity is an int
Frozen(lru, ignore="yes")  # E: ignore is a bool

# --- unknown or read-only attributes --------------------------------------------------------

lru.peek_all(1)  # E: unknown attribute
lru.first()  # E: LRUCache has no first()
plain.peek(1)  # E: Cache has no peek()
frozen.peek(1)  # E: Frozen has no peek()
ttl.ttl = 5.0  # E: ttl is read-only
lru.maxsize = 5  # E: maxsize is read-only
is_less = lru < LRUCache[int, str](1)  # E: caches are not ordered


def read(base: BaseCacheImpl[int, str]) -> None:
    base.get(1)  # E: BaseCacheImpl declares no methods


# --- decorators -----------------------------------------------------------------------------


@cached(LRUCache(0))
def square(x: int) -> int:
    return x * x


@cached(lambda self: self.cache)
def factory_made(self: Any, x: int) -> int:
    return x


@cached(None)
async def fetch(url: str) -> bytes:
    return url.encode()


square("2")  # E: wrong argument to a cached function
square(1, 2)  # E: too many arguments
square(y=2)  # E: unknown keyword argument
result: str = square(2)  # E: the cached function returns int
hits: str = square.cache_info().hits  # E: CacheInfo fields are ints
_ = square.cache_info().hit  # E: CacheInfo has no field hit
square.cache = LRUCache(0)  # E: cache is read-only
square.cache_clear(True)  # E: cache_clear takes no argument
_ = factory_made.cache  # E: a factory-mode wrapper has no cache
factory_made.cache_info()  # E: nor cache_info
cachedmethod(lambda self: self.cache)  # E: cachedmethod takes no cache factory
cached(LRUCache(0), key_maker=lambda args: args)  # E: key_maker takes (args, kwds)
cached(LRUCache(0), callback=lambda event: None)  # E: callback takes (event, key, value)
cached(LRUCache(0), clear_reuse="yes", copy_level="deep")  # E: bool and int options
info: CacheInfo = square.cache  # E: cache is the cache, not its info


async def misuse_async() -> None:
    await square(3)  # E: awaiting a sync cached function result
    fetch("x").decode()  # E: the coroutine must be awaited first
    fetch(1)  # E: wrong argument to a cached coroutine function


async def text_of(url: str) -> str:
    return await fetch(url)  # E: the awaited result is bytes


# --- entry control --------------------------------------------------------------------------


def two_args(key: int, value: str) -> None:
    pass


def str_keys(key: str, value: str, cause: str) -> None:
    pass


def weigh_text(key: int, value: str) -> str:
    return value


def weigh_float(key: int, value: str) -> float:
    return 1.5


def any_cause(key: object, value: object, cause: str) -> None:
    pass


def ttl_of_key(key: object) -> float:
    return 5.0


def ttl_as_text(key: object, value: object) -> str:
    return "5"


def is_evicted(cause: Literal["size", "memory", "expired", "replaced", "explicit"]) -> bool:
    return cause == "evicted"  # E: not one of the five causes


watched: LRUCache[int, str] = LRUCache(10, on_evict=any_cause)
LRUCache[int, str](10, on_evict=two_args)  # E: a listener takes (key, value, cause)
LRUCache[int, str](10, on_evict=str_keys)  # E: the listener's key type must accept the keys
LRUCache[int, str](10, weigher=weigh_text)  # E: a weigher returns an int
LRUCache[int, str](10, weigher=weigh_float)  # E: not a float either
LRUCache[int, str](10, None, 0, 0, any_cause)  # E: on_evict is keyword-only
VTTLCache[int, str](10, weigher=len)  # E: a weigher takes (key, value)
listener = watched.on_evict
if listener is not None:
    listener(1, "one", "evicted")  # E: a listener is only told one of the five causes
watched.on_evict = any_cause  # E: on_evict is read-only
watched.weigher = None  # E: weigher is read-only
# A bool is an int, so only a use as some other type is a mistake a checker can see.
invalidated: str = square.cache_invalidate(2)  # E: cache_invalidate returns a bool
square.cache_invalidate("2")  # E: cache_invalidate takes the call's arguments
square.cache_invalidate()  # E: with the same arity
fetch.cache_invalidate(b"x")  # E: on coroutine functions too
cached(LRUCache(0), ttl=60)  # E: only a VTTLCache keeps a lifetime per entry
cached(None, ttl=60)  # E: nor does the FIFOCache that None makes
cachedmethod(TTLCache(0, 60), ttl=60)  # E: a TTLCache has one ttl for all
cached(VTTLCache(0), ttl="1m")  # E: ttl is seconds or a timedelta
cached(VTTLCache(0), ttl=datetime(2030, 1, 1))  # E: not a deadline
cached(VTTLCache(0), ttl=ttl_of_key)  # E: a ttl function takes (key, value)
cached(VTTLCache(0), ttl=ttl_as_text)  # E: and returns seconds, a timedelta or None
cached(VTTLCache(0), None, False, None, 1, 60)  # E: ttl is keyword-only


class Shop:
    @cachedmethod(LRUCache(0))
    def price(self, item: str) -> float:
        return 1.0


shop = Shop()
shop.price.cache_invalidate(shop, "tea")  # E: a bound method supplies self itself
Shop.price.cache_invalidate("tea")  # E: the unbound wrapper needs self


# --- a shared second tier: l2= --------------------------------------------------------------

tier = RedisTier(object(), namespace="misuse", ttl=60)


@cached(LRUCache(0), l2=tier)
def sync_tiered(x: int) -> int:
    return x


@cached(LRUCache(0), l2=tier)
async def async_tiered(x: int) -> int:
    return x


@cached(lambda self: self.cache, l2=tier)
async def async_factory(self: Any, x: int) -> int:
    return x


class Catalog:
    @cachedmethod(LRUCache(0), l2=tier)
    async def price(self, item: str) -> float:
        return 1.0


catalog = Catalog()


async def either(x: int) -> int:
    return x


def maybe(tier_or_none: RedisTier | None) -> bool:
    wrapper = cached(None, l2=tier_or_none)(either)
    return wrapper.cache_invalidate(1)  # E: a coroutine, unless the tier was None at run time


cached(LRUCache(0), l2="redis://localhost")  # E: l2 takes a RedisTier
cachedmethod(LRUCache(0), l2=LRUCache(0))  # E: the second tier is a RedisTier, not a cache
async_removed: bool = async_tiered.cache_invalidate(1)  # E: with an async tier, a coroutine of the bool
bound_removed: bool = catalog.price.cache_invalidate("tea")  # E: bound methods too
unbound_removed: bool = Catalog.price.cache_invalidate(catalog, "tea")  # E: and through the class
factory_removed: bool = async_factory.cache_invalidate(None, 1)  # E: and in factory mode
async_tiered.cache_invalidate(1)  # E: never awaited: nothing is invalidated
async_tiered.cache_clear()  # E: never awaited: nothing is cleared
async_factory.cache_clear()  # E: a factory-mode wrapper has no cache_clear, tier or not
sync_tiered.cache_invalidate("1")  # E: the call's arguments, tier or not


async def misuse_tiers() -> None:
    await sync_tiered.cache_invalidate(1)  # E: a sync function's tier answers at once
    await sync_tiered.cache_clear()  # E: and cache_clear returns None
    await fetch.cache_invalidate("x")  # E: without l2= a coroutine function's answer is a bool too
    await square.cache_clear()  # E: no tier: None
    catalog.price.cache_clear()  # E: a bound method's clear must be awaited too
    await async_tiered.cache_invalidate("1")  # E: the call's arguments


async def invalidated_text(x: int) -> str:
    return await async_tiered.cache_invalidate(x)  # E: the awaited result is a bool
