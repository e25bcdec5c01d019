"""Typed usage of cachebox: zero errors under `mypy --strict` and pyright strict.

`make typecheck` type-checks this file with both checkers and then runs it, so every
`assert_type` below is a type the stubs promise *and* a call the runtime accepts.
It is not a pytest module (no `test_` prefix); run it with `python tests/typing/usage.py`.
"""

from __future__ import annotations

import asyncio
import copy
import pickle
from collections.abc import Callable, Hashable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal, Optional, Union

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
    RRCache,
    TTLCache,
    VTTLCache,
    cached,
    cachedmethod,
    is_cached,
    make_hash_key,
    make_key,
    make_typed_key,
)

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

# --- Key makers and constants ---------------------------------------------------------------

assert_type(make_key((1,), {}), Hashable)
assert_type(make_key((1.0,), {"a": 1}, fasttype=(int, str, float)), Hashable)
assert_type(make_hash_key((1, 2), {}), int)
assert_type(make_typed_key((1,), {}), tuple[Any, ...])
event: int = EVENT_HIT
assert_type(EVENT_MISS, Literal[1])
assert event == 2
print("usage.py: ok")
