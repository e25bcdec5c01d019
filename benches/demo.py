"""`make demo`: the caches and the decorators at work, with a timing next to functools.lru_cache."""

from __future__ import annotations

import asyncio
import functools
import timeit

import cachebox


def section(title: str) -> None:
    print(f"\n== {title}")


def show_caches() -> None:
    section("Seven caches, one dict-like API")
    lru = cachebox.LRUCache(3)
    for key in "abc":
        lru[key] = key.upper()
    lru["a"]  # a use: 'a' becomes most recently used
    lru["d"] = "D"  # full: evicts the least recently used, 'b'
    print(f"LRUCache after touching 'a' and adding 'd': {lru}")

    fifo = cachebox.FIFOCache(3, {1: "one", 2: "two", 3: "three"})
    fifo[4] = "four"
    print(f"FIFOCache evicts the oldest:                {fifo}")

    lfu = cachebox.LFUCache(2)
    lfu["hot"], lfu["cold"] = 1, 2
    for _ in range(3):
        lfu["hot"]
    lfu["new"] = 3
    print(f"LFUCache keeps the frequently used:         {lfu}")

    ttl = cachebox.TTLCache(100, ttl=60)
    ttl["session"] = "token"
    value, left = ttl.get_with_expire("session")
    print(f"TTLCache: {value!r} expires in {left:.1f} s")

    vttl = cachebox.VTTLCache(100)
    vttl.insert("short", 1, ttl=5)
    vttl.insert("forever", 2)
    print(f"VTTLCache, per-key TTLs:                    {list(vttl.items_with_expire())}")

    bounded = cachebox.Cache(2, {1: 1, 2: 2})
    try:
        bounded[3] = 3
    except OverflowError as exc:
        print(f"Cache never evicts: OverflowError: {exc}")

    limited = cachebox.LRUCache(0, maxmemory=600)
    for i in range(10):
        limited[i] = "x" * 40
    print(f"maxmemory=600 keeps {len(limited)} entries using {limited.memory()} bytes")


def show_decorators() -> None:
    section("Memoizing decorators")

    @cachebox.cached(cachebox.LRUCache(maxsize=128))
    def fib(n: int) -> int:
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    print(f"fib(80) = {fib(80)}")
    print(f"fib.cache_info() = {fib.cache_info()}")

    calls = []

    @cachebox.cached(cachebox.TTLCache(100, ttl=30))
    async def fetch(url: str) -> str:
        calls.append(url)
        await asyncio.sleep(0.01)
        return f"<page {url}>"

    async def crowd() -> list:
        # Ten concurrent misses of one key: the function runs once, everyone gets the result.
        return await asyncio.gather(*(fetch("https://example.org") for _ in range(10)))

    pages = asyncio.run(crowd())
    print(f"10 concurrent awaits of one key: {len(set(pages))} distinct result, {len(calls)} call")


def show_timing() -> None:
    section("Timing: memoized f(a, b) hits, cachebox.cached vs functools.lru_cache")

    def plain(a: int, b: int) -> int:
        return a + b

    ours = cachebox.cached(cachebox.LRUCache(10_000))(plain)
    theirs = functools.lru_cache(maxsize=10_000)(plain)
    args = [(10**6 + i, i) for i in range(1000)]
    for a, b in args:
        ours(a, b)
        theirs(a, b)
    loop = "for a, b in args: f(a, b)"
    n = 200
    for label, f in (("cachebox.cached(LRUCache)", ours), ("functools.lru_cache", theirs)):
        best = min(timeit.repeat(loop, globals={"f": f, "args": args}, number=n, repeat=5))
        print(f"  {label:26s} {best / (n * len(args)) * 1e9:7.1f} ns per call")


def main() -> None:
    print(f"cachebox {cachebox.__version__}")
    show_caches()
    show_decorators()
    show_timing()


if __name__ == "__main__":
    main()
