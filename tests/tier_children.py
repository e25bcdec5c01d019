"""Worker processes of the shared tier's cross-process tests.

``python tier_children.py ROLE PORT NAMESPACE [ARGS...]`` runs one role against the server on
PORT; each role prints one JSON line with what it saw. Every role defines the function at
module level, so every process (whatever its ``PYTHONHASHSEED``) uses the same entries.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.retry import Retry

import cachebox

PORT = int(sys.argv[2])
NAMESPACE = sys.argv[3]
ARGS = sys.argv[4:]
CLIENT = redis.Redis(
    host="127.0.0.1", port=PORT, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
)
LOCK_TIMEOUT = float(ARGS[1]) if len(ARGS) > 1 else 10.0
TIER = cachebox.RedisTier(CLIENT, namespace=NAMESPACE, ttl=60, lock_timeout=LOCK_TIMEOUT)
COUNTER = f"{NAMESPACE}:test:computations"


ASYNC_CLIENT = redis.asyncio.Redis(
    host="127.0.0.1", port=PORT, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
)
ASYNC_TIER = cachebox.RedisTier(ASYNC_CLIENT, namespace=NAMESPACE, ttl=60, lock_timeout=LOCK_TIMEOUT)
ASYNC_COUNTER = f"{NAMESPACE}:test:async-computations"


@cachebox.cached(cachebox.LRUCache(100), l2=ASYNC_TIER)
async def compute_async(key, seconds):
    await ASYNC_CLIENT.incr(ASYNC_COUNTER)
    await asyncio.sleep(seconds)
    return {"key": key, "frozen": frozenset({key, "x", "y"})}


@cachebox.cached(cachebox.LRUCache(100), l2=TIER)
def compute(key, seconds):
    # The counter lives in Redis: it proves how many computations ran in all processes.
    CLIENT.incr(COUNTER)
    time.sleep(seconds)
    return {"key": key, "frozen": frozenset({key, "x", "y"})}


def stampede(threads: int, key: str, seconds: float) -> None:
    """Wait for the go signal, then call ``compute(key)`` from ``threads`` threads at once."""
    while not CLIENT.exists(f"{NAMESPACE}:test:go"):
        time.sleep(0.002)
    results = []

    def call():
        results.append(compute(key, seconds))

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ok = all(r == {"key": key, "frozen": frozenset({key, "x", "y"})} for r in results)
    print(json.dumps({"ok": ok, "results": len(results), "stats": TIER.stats()._asdict()}), flush=True)


def stampede_mixed(threads: int, coroutines: int, key: str, seconds: float) -> None:
    """Wait for the go signal, then call ``compute(key)`` from ``threads`` threads and, at the
    same time, ``compute_async(key)`` from ``coroutines`` coroutines of this process's loop."""
    while not CLIENT.exists(f"{NAMESPACE}:test:go"):
        time.sleep(0.002)
    results = []

    def call():
        results.append(compute(key, seconds))

    async def calls():
        return await asyncio.gather(*(compute_async(key, seconds) for _ in range(coroutines)))

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for w in workers:
        w.start()
    async_results = asyncio.run(calls())
    for w in workers:
        w.join()
    expected = {"key": key, "frozen": frozenset({key, "x", "y"})}
    ok = all(r == expected for r in results + list(async_results))
    report = {
        "ok": ok,
        "results": len(results),
        "async_results": len(async_results),
        "stats": TIER.stats()._asdict(),
        "async_stats": ASYNC_TIER.stats()._asdict(),
    }
    print(json.dumps(report), flush=True)


def hold(key: str, seconds: float) -> None:
    """Take the lock of ``key`` and compute for a long time (the test kills this process)."""
    print(json.dumps({"started": True}), flush=True)
    compute(key, seconds)


def call_once(key: str, seconds: float) -> None:
    started = time.monotonic()
    value = compute(key, seconds)
    print(json.dumps({"ok": value["key"] == key, "elapsed": time.monotonic() - started}), flush=True)


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "stampede":
        stampede(int(ARGS[0]), ARGS[2], float(ARGS[3]))
    elif role == "stampede-mixed":
        stampede_mixed(int(ARGS[0]), int(ARGS[2]), ARGS[3], float(ARGS[4]))
    elif role == "hold":
        hold(ARGS[0], float(ARGS[2]))
    elif role == "call":
        call_once(ARGS[0], float(ARGS[2]))
    else:
        raise SystemExit(f"unknown role {role}")
