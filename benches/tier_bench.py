"""The shared tier on one private redis-server, in one run: ratios, measured A/B alternating.

    python benches/tier_bench.py [--rounds N]

- L1 hit with and without ``l2=`` (the same ``LRUCache``, the same key);
- L2 hit (every call misses its first tier, which holds one entry, and Redis has the value)
  against the same read written by hand: ``pickle.loads(client.get(key))``;
- round trips per L2 hit and per miss (commands the client sends).

Prints a Markdown table; ``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_servers import RedisServer

import cachebox
from cachebox import LRUCache, cached

KEYS = 200
VALUE = {"sku": "A1", "price": 12.5, "tags": ["x", "y", "z"], "stock": 42}


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


def count_commands(client: redis.Redis) -> list[str]:
    sent: list[str] = []
    execute = client.execute_command

    def counting(*args, **kwargs):
        sent.append(args[0])
        return execute(*args, **kwargs)

    client.execute_command = counting  # type: ignore[method-assign]
    return sent


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


def run(server: RedisServer, rounds: int, json_path: str | None) -> None:
    tier = cachebox.RedisTier(client_for(server), namespace="bench", ttl=3600)
    deadline = time.monotonic() + 10
    while not tier.stats().subscribed and time.monotonic() < deadline:
        time.sleep(0.01)

    @cached(LRUCache(100))
    def plain(x):
        return VALUE

    @cached(LRUCache(100), l2=tier)
    def tiered(x):
        return VALUE

    @cached(LRUCache(1), l2=tier)
    def l2_only(x):
        return VALUE

    plain(1)
    tiered(1)
    for k in range(KEYS):
        l2_only(k)  # in Redis now; its first tier keeps one entry only
    by_hand = client_for(server)
    raw_keys = [f"hand:{k}" for k in range(KEYS)]
    for key in raw_keys:
        by_hand.set(key, pickle.dumps(VALUE, protocol=5))

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

    figures: dict[str, list[float]] = {"l1_plain": [], "l1_tiered": [], "l2_hit": [], "hand": []}
    for _ in range(rounds):
        # A/B alternating, so that both sides of each ratio see the same machine.
        figures["l1_plain"].append(per_call(l1_plain, 200_000))
        figures["l1_tiered"].append(per_call(l1_tiered, 200_000))
        figures["l2_hit"].append(per_call(l2_hit, 2_000))
        figures["hand"].append(per_call(hand_read, 2_000))
    best = {k: min(v) for k, v in figures.items()}
    l1_ratios = sorted(t / p for t, p in zip(figures["l1_tiered"], figures["l1_plain"]))
    l2_ratios = sorted(t / h for t, h in zip(figures["l2_hit"], figures["hand"]))

    sent = count_commands(tier.client)
    l2_only(0)
    hit_trips = len(sent)
    sent.clear()
    l2_only("new key")
    miss_trips = len(sent)
    assert l2_only.cache_info() is not None

    rows = [
        ("L1 hit, no l2", f"{best['l1_plain']:.0f} ns", ""),
        (
            "L1 hit, with l2",
            f"{best['l1_tiered']:.0f} ns",
            f"{l1_ratios[len(l1_ratios) // 2]:.3f}x (median of rounds)",
        ),
        ("read by hand: pickle.loads(client.get(k))", f"{best['hand'] / 1000:.1f} µs", ""),
        (
            "L2 hit",
            f"{best['l2_hit'] / 1000:.1f} µs",
            f"{l2_ratios[len(l2_ratios) // 2]:.3f}x the read by hand",
        ),
        ("round trips per L2 hit", str(hit_trips), ""),
        ("round trips per miss", str(miss_trips), ""),
    ]
    print(f"cachebox {cachebox.__version__}, Python {sys.version.split()[0]}, {rounds} rounds\n")
    print("| case | time | ratio |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if json_path:
        Path(json_path).write_text(
            json.dumps({"figures": figures, "hit_trips": hit_trips, "miss_trips": miss_trips})
        )


if __name__ == "__main__":
    main()
