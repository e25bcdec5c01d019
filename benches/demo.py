"""`make demo`: the caches (and, once built, the decorators) at work, side by side with functools."""

from __future__ import annotations

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


def show_timing() -> None:
    section("Timing: a memo table hit, cachebox.LRUCache vs functools.lru_cache")
    cache = cachebox.LRUCache(1000)

    @functools.lru_cache(maxsize=1000)
    def square(x: int) -> int:
        return x * x

    for i in range(1000):
        cache[i] = i * i
        square(i)
    n = 200_000
    ours = min(timeit.repeat("c[500]", globals={"c": cache}, number=n, repeat=5)) / n * 1e9
    theirs = min(timeit.repeat("f(500)", globals={"f": square}, number=n, repeat=5)) / n * 1e9
    print(f"  LRUCache[k]            {ours:7.1f} ns")
    print(f"  lru_cache-wrapped f(k) {theirs:7.1f} ns")


def main() -> None:
    print(f"cachebox {cachebox.__version__}")
    show_caches()
    show_timing()


if __name__ == "__main__":
    main()
