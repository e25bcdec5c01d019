"""The shared tier driven by valkey-py's clients (sync and asyncio) against the same server:
the tier uses only the API that client shares with redis-py."""

from __future__ import annotations

import asyncio

import valkey
import valkey.asyncio
from tier_helpers import count_round_trips, new_namespace, subscribed, wait_until

import cachebox
from cachebox import LRUCache, cached


def valkey_client(server):
    return valkey.Valkey(host="127.0.0.1", port=server.port, socket_timeout=0.5, socket_connect_timeout=0.5)


def define(tier, calls):
    @cached(LRUCache(100), l2=tier)
    def price(sku):
        calls.append(sku)
        return {"sku": sku}

    return price


def test_sync_valkey_client(redis_server):
    ns = new_namespace()
    a = cachebox.RedisTier(valkey_client(redis_server), namespace=ns, ttl=60)
    b = cachebox.RedisTier(valkey_client(redis_server), namespace=ns, ttl=60)
    assert subscribed(a, b)
    calls_a, calls_b = [], []
    price_a, price_b = define(a, calls_a), define(b, calls_b)
    price_a("warm")
    price_b("warm")
    sent = count_round_trips(b.client)
    assert price_a("A1") == {"sku": "A1"}
    assert price_b("A1") == {"sku": "A1"}  # an L2 hit: one packet
    assert calls_a == ["warm", "A1"] and calls_b == []
    assert sent == [["GET", "PTTL"]]
    # An invalidation reaches the other process's first tier.
    assert price_a.cache_invalidate("A1") is True
    assert wait_until(lambda: "A1" not in price_b.cache)
    price_b("A1")
    assert calls_b == ["A1"]
    price_b.cache_clear()
    assert wait_until(lambda: len(price_a.cache) == 0)
    for tier in (a, b):
        assert tier.stats().errors == 0


def define_async(tier, calls):
    @cached(LRUCache(100), l2=tier)
    async def price(sku):
        calls.append(sku)
        return {"sku": sku}

    return price


def test_async_valkey_client(redis_server):
    ns = new_namespace()

    async def main():
        a, b = (
            cachebox.RedisTier(
                valkey.asyncio.Valkey(host="127.0.0.1", port=redis_server.port, socket_timeout=0.5),
                namespace=ns,
                ttl=60,
            )
            for _ in range(2)
        )
        calls_a, calls_b = [], []
        price_a, price_b = define_async(a, calls_a), define_async(b, calls_b)
        await price_a("warm")  # an async tier subscribes in the loop of its first call
        await price_b("warm")
        for _ in range(500):
            if a.stats().subscribed and b.stats().subscribed:
                break
            await asyncio.sleep(0.01)
        assert await price_a("A1") == {"sku": "A1"}
        assert await price_b("A1") == {"sku": "A1"}  # an L2 hit
        assert calls_a == ["warm", "A1"] and calls_b == []
        assert "A1" in price_b.cache
        assert await price_a.cache_invalidate("A1") is True
        for _ in range(100):
            if "A1" not in price_b.cache:
                break
            await asyncio.sleep(0.01)
        assert "A1" not in price_b.cache
        assert await price_b("A1") == {"sku": "A1"}
        assert calls_b == ["A1"]
        await price_b.cache_clear()
        for tier in (a, b):
            assert tier.stats().errors == 0

    asyncio.run(main())
