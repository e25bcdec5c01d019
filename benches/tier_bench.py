"""The shared tier on one private redis-server, in one run: ratios, measured A/B alternating.

    python benches/tier_bench.py [--rounds N] [--json PATH]

cachebox's rows:

- L1 hit with and without ``l2=`` (the same ``LRUCache``, the same key);
- L2 hit (every call misses its first tier, which holds one entry, and Redis has the value)
  against the same read written by hand: ``pickle.loads(client.get(key))``;
- round trips per L2 hit and per miss (packets the client sends, whichever path of the
  client sends them: the tier writes some straight to a pooled connection).

Against two other libraries on the same server and workloads (each ratio is the peer's time over
cachebox's, the two timed one after the other in each round, median of rounds):

- warm read through Redis, sync: cachebox's L2 hit against dogpile.cache's Redis backend;
- warm read through Redis, async (``redis.asyncio``): cachebox against cashews, and against
  ``pickle.loads(await client.get(key))`` written by hand;
- cold miss (a key never seen before: read, compute, store), sync against dogpile.cache (with
  and without its ``distributed_lock``), async against cashews;
- round trips and commands per warm read and per cold miss, as the server counts them;
- stampede: how many times a 50 ms function runs when 8 threads (or tasks) ask for one cold
  key at once.

Prints a Markdown table; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import pickle
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis
import redis.asyncio
from cashews import Cache
from dogpile.cache import make_region
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_servers import RedisServer
from tier_helpers import count_round_trips

import cachebox
from cachebox import LRUCache, cached

KEYS = 200
VALUE = {"sku": "A1", "price": 12.5, "tags": ["x", "y", "z"], "stock": 42}
TTL = 3600
READS = 2_000  # calls per pass for a read through Redis
MISSES = 500  # calls per pass for a cold miss: two or more round trips each, and the run stays short
STAMPEDE = 8  # threads (or tasks) asking for one cold key at once


def client_for(server: RedisServer) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=server.port,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1),
    )


def per_call(fn, n: int) -> float:
    """Best of three passes of ``n`` calls, in ns per call, with the GC off."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(3):
            start = time.perf_counter_ns()
            fn(n)
            best = min(best, (time.perf_counter_ns() - start) / n)
    finally:
        gc.enable()
    return best


async def per_call_async(fn, n: int) -> float:
    """``per_call`` for a coroutine function ``fn(n)``, awaited in the running loop."""
    best = float("inf")
    gc.disable()
    try:
        for _ in range(3):
            start = time.perf_counter_ns()
            await fn(n)
            best = min(best, (time.perf_counter_ns() - start) / n)
    finally:
        gc.enable()
    return best


# Server-side counts: each library drives its own client (and cashews its own pool), so
# wrapping a client would count a different thing for each; Redis counts all three alike.
# `total_reads_processed` is the requests it read (a round trip each: a script, or a pipeline
# sent at once, is one); `total_commands_processed` also counts every redis.call() a Lua script
# makes, so a one-trip script shows as several commands.
def server_stats(info: redis.Redis) -> tuple[int, int]:
    stats = info.info("stats")
    return stats["total_reads_processed"], stats["total_commands_processed"]


def _less_info(first, second, third) -> tuple[int, int]:
    # The INFO before the call is a round trip and a command too: two INFOs in a row with
    # nothing between them count it, and it is taken off.
    (reads1, cmds1), (reads2, cmds2), (reads3, cmds3) = first, second, third
    return reads3 - reads2 - (reads2 - reads1), cmds3 - cmds2 - (cmds2 - cmds1)


def server_cost(info: redis.Redis, prepare, call, tries: int = 3) -> tuple[int, int]:
    """(round trips, commands) Redis counted for one ``call()``, ``prepare()`` done before:
    the least of ``tries`` (anything else on the server can only add)."""
    costs = []
    for _ in range(tries):
        prepare()
        first = server_stats(info)
        second = server_stats(info)
        call()
        costs.append(_less_info(first, second, server_stats(info)))
    return min(costs)


async def server_cost_async(info: redis.Redis, prepare, call, tries: int = 3) -> tuple[int, int]:
    """``server_cost`` for coroutine functions (INFO stays on a sync client: nothing else in
    the loop runs meanwhile)."""
    costs = []
    for _ in range(tries):
        await prepare()
        first = server_stats(info)
        second = server_stats(info)
        await call()
        costs.append(_less_info(first, second, server_stats(info)))
    return min(costs)


def stampede(fn, key) -> None:
    """``STAMPEDE`` threads call ``fn(key)`` at once."""
    barrier = threading.Barrier(STAMPEDE)

    def one():
        barrier.wait()
        fn(key)

    threads = [threading.Thread(target=one) for _ in range(STAMPEDE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    server = RedisServer()
    try:
        run(server, args.rounds, args.json)
    finally:
        server.close()


def dogpile_region(server: RedisServer, **lock):
    # dogpile's own expiry and Redis's (SETEX) both at the TTL, as cachebox's entries; the
    # client's timeouts as cachebox's client has them; pickle (dogpile's default serializer).
    # Without `lock`, dogpile guards a miss with a mutex of this process only.
    return make_region().configure(
        "dogpile.cache.redis",
        expiration_time=TTL,
        arguments={
            "host": "127.0.0.1",
            "port": server.port,
            "db": 0,
            "redis_expiration_time": TTL,
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
            **lock,
        },
    )


def run(server: RedisServer, rounds: int, json_path: str | None) -> None:
    tier = cachebox.RedisTier(client_for(server), namespace="bench", ttl=TTL)
    deadline = time.monotonic() + 10
    while not tier.stats().subscribed and time.monotonic() < deadline:
        time.sleep(0.01)
    info = client_for(server)
    region = dogpile_region(server)
    # A lock in Redis, as cachebox's tier takes one: the computation of a miss runs once across
    # processes (dogpile wants thread_local_lock off with it; 30 s is the tier's lock_timeout).
    locked_region = dogpile_region(server, distributed_lock=True, thread_local_lock=False, lock_timeout=30)

    @cached(LRUCache(100))
    def plain(x):
        return VALUE

    @cached(LRUCache(100), l2=tier)
    def tiered(x):
        return VALUE

    # LRUCache(1): the keys cycle over KEYS ints, so the first tier never hits and every call
    # goes to Redis, as every call of the peers (which have no first tier) does.
    @cached(LRUCache(1), l2=tier)
    def l2_only(x):
        return VALUE

    @region.cache_on_arguments(namespace="bench-dogpile")
    def dog_read(x):
        return VALUE

    # A cold miss: each call a key never seen (the counters below), so each reads, computes
    # and stores. LRUCache(1): a bigger first tier would only fill up with keys never asked again.
    @cached(LRUCache(1), l2=tier)
    def cb_miss(x):
        return VALUE

    @region.cache_on_arguments(namespace="bench-dogpile-miss")
    def dog_miss(x):
        return VALUE

    @locked_region.cache_on_arguments(namespace="bench-dogpile-lock")
    def dog_locked_miss(x):
        return VALUE

    plain(1)
    tiered(1)
    for k in range(KEYS):
        l2_only(k)  # in Redis now; its first tier keeps one entry only
        dog_read(k)
    by_hand = client_for(server)
    raw_keys = [f"hand:{k}" for k in range(KEYS)]
    for key in raw_keys:
        by_hand.set(key, pickle.dumps(VALUE, protocol=5))
    fresh = {name: itertools.count() for name in ("cachebox", "dogpile", "dogpile_lock")}

    def l1_plain(n):
        for _ in range(n):
            plain(1)

    def l1_tiered(n):
        for _ in range(n):
            tiered(1)

    def l2_hit(n):
        for i in range(n):
            l2_only(i % KEYS)

    def hand_read(n):
        get, loads = by_hand.get, pickle.loads
        for i in range(n):
            loads(get(raw_keys[i % KEYS]))

    def dog_hit(n):
        for i in range(n):
            dog_read(i % KEYS)

    def misses(fn, name):
        def loop(n):
            keys = fresh[name]
            for _ in range(n):
                fn(next(keys))

        return loop

    sync_cases = {
        "l2_hit": (l2_hit, READS),
        "hand": (hand_read, READS),
        "dogpile_hit": (dog_hit, READS),
        "miss": (misses(cb_miss, "cachebox"), MISSES),
        "dogpile_miss": (misses(dog_miss, "dogpile"), MISSES),
        "dogpile_lock_miss": (misses(dog_locked_miss, "dogpile_lock"), MISSES),
    }
    figures: dict[str, list[float]] = {"l1_plain": [], "l1_tiered": [], **{k: [] for k in sync_cases}}
    for _ in range(rounds):
        # A/B alternating, so that both sides of each ratio see the same machine.
        figures["l1_plain"].append(per_call(l1_plain, 200_000))
        figures["l1_tiered"].append(per_call(l1_tiered, 200_000))
        for name, (fn, n) in sync_cases.items():
            figures[name].append(per_call(fn, n))

    # Counted per packet on the client's connections: the tier sends an L2 hit past the
    # client's execute_command, which a wrapper of that would not see.
    sent = count_round_trips(tier.client)
    l2_only(0)
    hit_trips = len(sent)
    sent.clear()
    l2_only("new key")
    miss_trips = len(sent)
    sent.clear()
    assert l2_only.cache_info() is not None

    # The call before each measured one warms the connection, and leaves another key in
    # cachebox's one-entry first tier, so the measured read goes to Redis.
    trips: dict[str, dict[str, tuple[int, int]]] = {"warm": {}, "miss": {}}
    trips["warm"]["cachebox"] = server_cost(info, lambda: l2_only(1), lambda: l2_only(0))
    trips["warm"]["dogpile"] = server_cost(info, lambda: dog_read(1), lambda: dog_read(0))
    trips["miss"]["cachebox"] = server_cost(
        info, lambda: l2_only(1), lambda: cb_miss(next(fresh["cachebox"]))
    )
    trips["miss"]["dogpile"] = server_cost(
        info, lambda: dog_read(1), lambda: dog_miss(next(fresh["dogpile"]))
    )
    trips["miss"]["dogpile_lock"] = server_cost(
        info, lambda: dog_read(1), lambda: dog_locked_miss(next(fresh["dogpile_lock"]))
    )

    # Stampede: one cold key, STAMPEDE threads at once, a computation that takes 50 ms. All
    # threads are in this process, so dogpile's default mutex (this process's only) suffices
    # here; its distributed_lock and cachebox's lock in Redis would also hold across processes.
    ran: list[str] = []

    def slow(name):
        time.sleep(0.05)
        ran.append(name)  # list.append is atomic under the GIL
        return VALUE

    @cached(LRUCache(10), l2=tier)
    def cb_slow(x):
        return slow("cachebox")

    @region.cache_on_arguments(namespace="bench-dogpile-stampede")
    def dog_slow(x):
        return slow("dogpile")

    @locked_region.cache_on_arguments(namespace="bench-dogpile-lock-stampede")
    def dog_locked_slow(x):
        return slow("dogpile_lock")

    for fn in (cb_slow, dog_slow, dog_locked_slow):
        stampede(fn, "stampede")
    runs = {name: ran.count(name) for name in ("cachebox", "dogpile", "dogpile_lock")}

    # One event loop for every async round: the async tier's listener is a task of the loop
    # that uses it, and its client's connections belong to that loop.
    async_figures, async_trips, async_runs = asyncio.run(run_async(server, rounds, info, raw_keys))
    figures.update(async_figures)
    trips["warm"].update(async_trips["warm"])
    trips["miss"].update(async_trips["miss"])
    runs.update(async_runs)
    report(figures, trips, runs, hit_trips, miss_trips, rounds, json_path)


async def run_async(server: RedisServer, rounds: int, info: redis.Redis, raw_keys: list[str]):
    # Built in the running loop: the tier starts its listener as a task of this loop.
    atier = cachebox.RedisTier(
        redis.asyncio.Redis(host="127.0.0.1", port=server.port, socket_timeout=1),
        namespace="bench-async",
        ttl=TTL,
    )
    deadline = time.monotonic() + 10
    while not atier.stats().subscribed and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    # cashews' Redis backend is a plain one unless `client_side` is true (then it keeps a
    # local copy that Redis invalidates, and a warm read never reaches Redis): it is false by
    # default, and said here so that every call reaches Redis. Its other defaults are kept
    # (pickle; socket_timeout 1 s, as the other clients have it).
    peer = Cache()
    peer.setup(server.url, client_side=False)
    aclient = redis.asyncio.Redis(host="127.0.0.1", port=server.port, socket_timeout=1)

    # LRUCache(1) for the reason given for `l2_only`.
    @cached(LRUCache(1), l2=atier)
    async def a_read(x):
        return VALUE

    @peer(ttl="1h", prefix="bench-cashews")
    async def c_read(x):
        return VALUE

    @cached(LRUCache(1), l2=atier)
    async def a_miss(x):
        return VALUE

    @peer(ttl="1h", prefix="bench-cashews-miss")
    async def c_miss(x):
        return VALUE

    for k in range(KEYS):
        await a_read(k)
        await c_read(k)
    await aclient.get(raw_keys[0])
    fresh = {name: itertools.count() for name in ("cachebox", "cashews")}

    async def a_hit(n):
        for i in range(n):
            await a_read(i % KEYS)

    async def c_hit(n):
        for i in range(n):
            await c_read(i % KEYS)

    async def hand_read(n):
        get, loads = aclient.get, pickle.loads
        for i in range(n):
            loads(await get(raw_keys[i % KEYS]))

    def misses(fn, name):
        async def loop(n):
            keys = fresh[name]
            for _ in range(n):
                await fn(next(keys))

        return loop

    cases = {
        "async_l2_hit": (a_hit, READS),
        "async_hand": (hand_read, READS),
        "cashews_hit": (c_hit, READS),
        "async_miss": (misses(a_miss, "cachebox"), MISSES),
        "cashews_miss": (misses(c_miss, "cashews"), MISSES),
    }
    figures: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(rounds):
        # A/B alternating, as in the sync rounds.
        for name, (fn, n) in cases.items():
            figures[name].append(await per_call_async(fn, n))

    trips: dict[str, dict[str, tuple[int, int]]] = {"warm": {}, "miss": {}}
    trips["warm"]["cachebox_async"] = await server_cost_async(info, lambda: a_read(1), lambda: a_read(0))
    trips["warm"]["cashews"] = await server_cost_async(info, lambda: c_read(1), lambda: c_read(0))
    trips["miss"]["cachebox_async"] = await server_cost_async(
        info, lambda: a_read(1), lambda: a_miss(next(fresh["cachebox"]))
    )
    trips["miss"]["cashews"] = await server_cost_async(
        info, lambda: c_read(1), lambda: c_miss(next(fresh["cashews"]))
    )

    # Stampede: STAMPEDE tasks at once on one cold key. cashews' decorator is `protected` by
    # default (concurrent calls of one key in this process share one computation); across
    # processes it would take `lock=True`, not used here.
    ran: list[str] = []

    async def slow(name):
        await asyncio.sleep(0.05)
        ran.append(name)
        return VALUE

    @cached(LRUCache(10), l2=atier)
    async def a_slow(x):
        return await slow("cachebox_async")

    @peer(ttl="1h", prefix="bench-cashews-stampede")
    async def c_slow(x):
        return await slow("cashews")

    for fn in (a_slow, c_slow):
        await asyncio.gather(*(fn("stampede") for _ in range(STAMPEDE)))
    runs = {name: ran.count(name) for name in ("cachebox_async", "cashews")}

    atier.close()
    await peer.close()
    await aclient.aclose()
    await atier.client.aclose()
    return figures, trips, runs


def report(figures, trips, runs, hit_trips, miss_trips, rounds, json_path) -> None:
    best = {k: min(v) for k, v in figures.items()}

    def ratio(a: str, b: str) -> float:
        """The median over rounds of a's time over b's, both timed in the same round."""
        return median([x / y for x, y in zip(figures[a], figures[b])])

    def us(name: str) -> str:
        return f"{best[name] / 1000:.1f} µs"

    def vs_cachebox(peer: str, ours: str) -> str:
        return f"{ratio(peer, ours):.2f}x cachebox"

    def counted(where: str, name: str) -> str:
        round_trips, commands = trips[where][name]
        return f"{round_trips} / {commands}"

    rows = [
        ("L1 hit, no l2", f"{best['l1_plain']:.0f} ns", ""),
        (
            "L1 hit, with l2",
            f"{best['l1_tiered']:.0f} ns",
            f"{ratio('l1_tiered', 'l1_plain'):.3f}x (median of rounds)",
        ),
        ("read by hand: pickle.loads(client.get(k))", us("hand"), ""),
        ("L2 hit", us("l2_hit"), f"{ratio('l2_hit', 'hand'):.3f}x the read by hand"),
        ("round trips per L2 hit", str(hit_trips), ""),
        ("round trips per miss", str(miss_trips), ""),
        ("warm read, sync: cachebox (L2 hit)", us("l2_hit"), ""),
        ("warm read, sync: dogpile.cache", us("dogpile_hit"), vs_cachebox("dogpile_hit", "l2_hit")),
        ("warm read, async: by hand, pickle.loads(await client.get(k))", us("async_hand"), ""),
        (
            "warm read, async: cachebox (L2 hit)",
            us("async_l2_hit"),
            f"{ratio('async_l2_hit', 'async_hand'):.3f}x the read by hand",
        ),
        ("warm read, async: cashews", us("cashews_hit"), vs_cachebox("cashews_hit", "async_l2_hit")),
        ("cold miss, sync: cachebox", us("miss"), ""),
        ("cold miss, sync: dogpile.cache", us("dogpile_miss"), vs_cachebox("dogpile_miss", "miss")),
        (
            "cold miss, sync: dogpile.cache, distributed_lock",
            us("dogpile_lock_miss"),
            vs_cachebox("dogpile_lock_miss", "miss"),
        ),
        ("cold miss, async: cachebox", us("async_miss"), ""),
        ("cold miss, async: cashews", us("cashews_miss"), vs_cachebox("cashews_miss", "async_miss")),
    ]
    labels = {
        "cachebox": "cachebox",
        "cachebox_async": "cachebox, async",
        "dogpile": "dogpile.cache",
        "dogpile_lock": "dogpile.cache, distributed_lock",
        "cashews": "cashews",
    }
    for where, what in (("warm", "warm read"), ("miss", "cold miss")):
        for name, label in labels.items():
            if name in trips[where]:
                case = f"round trips / commands per {what}, server side: {label}"
                rows.append((case, counted(where, name), ""))
    for name, label in labels.items():
        rows.append((f"stampede, {STAMPEDE} callers, one cold key: {label}", f"ran {runs[name]}x", ""))

    print(f"cachebox {cachebox.__version__}, Python {sys.version.split()[0]}, {rounds} rounds\n")
    print("| case | time | ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        "\nServer side: round trips are the requests Redis read (total_reads_processed), commands "
        "what it ran (total_commands_processed, which counts each redis.call() of a Lua script "
        "too). Stampede: threads for sync, tasks for async; the function sleeps 50 ms."
    )
    if json_path:
        Path(json_path).write_text(
            json.dumps(
                {
                    "figures": figures,
                    "hit_trips": hit_trips,
                    "miss_trips": miss_trips,
                    "server": {
                        where: {
                            name: {"round_trips": rt, "commands": cmds} for name, (rt, cmds) in counts.items()
                        }
                        for where, counts in trips.items()
                    },
                    "stampede_runs": runs,
                }
            )
        )


if __name__ == "__main__":
    main()
