"""The shared tier with a ``redis.asyncio`` client and async functions, against a real server:
hits, one computation for many coroutines and tiers, invalidation and clearing (awaitables),
errors, and a stopped or absent server (every operation bounded by ``op_timeout``)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tier_helpers import client_for, new_namespace

import cachebox
from cachebox import LRUCache, cached


def async_tier(server_port, ns, **options):
    client = aredis.Redis(
        host="127.0.0.1",
        port=server_port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
    )
    options.setdefault("ttl", 60)
    return cachebox.RedisTier(client, namespace=ns, **options)


def define(tier, calls, delay=0.0):
    @cached(LRUCache(100), l2=tier)
    async def fetch(x):
        calls.append(x)
        await asyncio.sleep(delay)
        return {"x": x}

    return fetch


async def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def test_hits_invalidation_and_clear(redis_server):
    ns = new_namespace()

    async def main():
        a, b = async_tier(redis_server.port, ns), async_tier(redis_server.port, ns)
        calls_a, calls_b = [], []
        fa, fb = define(a, calls_a), define(b, calls_b)
        assert await fa(1) == {"x": 1}
        assert await until(lambda: a.stats().subscribed and b.stats().subscribed)
        fa.cache.clear()
        assert await fa(1) == {"x": 1} and calls_a == [1]  # from Redis now
        assert await fb(1) == {"x": 1} and calls_b == []
        assert b.stats().hits == 1 and fb.cache_info().hits == 1
        assert await fb(1) == {"x": 1}
        invalidated = fa.cache_invalidate(1)
        assert asyncio.iscoroutine(invalidated) or hasattr(invalidated, "__await__")
        assert await invalidated is True
        assert await until(lambda: 1 not in fb.cache)
        assert await fb(1) == {"x": 1} and calls_b == [1]
        await fa(2)
        await fb(2)
        cleared = fa.cache_clear()
        assert await cleared is None
        assert await until(lambda: len(fb.cache) == 0)
        await fb(2)
        assert calls_b == [1, 2]

    asyncio.run(main())


def test_one_computation_for_coroutines_and_tiers(redis_server):
    ns = new_namespace()
    counter = f"{ns}:test:count"

    async def main():
        tiers = [async_tier(redis_server.port, ns) for _ in range(3)]
        client = aredis.Redis(host="127.0.0.1", port=redis_server.port)

        def define_counting(tier):
            @cached(LRUCache(10), l2=tier)
            async def cold(x):
                await client.incr(counter)
                await asyncio.sleep(0.3)
                return x * 2

            return cold

        funcs = [define_counting(t) for t in tiers]
        for t in tiers:
            assert await until(lambda t=t: t.stats().subscribed)
        results = await asyncio.gather(*(f(21) for f in funcs for _ in range(5)))
        assert results == [42] * 15
        assert int(await client.get(counter)) == 1
        assert sum(t.stats().waits for t in tiers) == 2

    asyncio.run(main())


def test_a_function_that_raises(redis_server):
    ns = new_namespace()

    async def main():
        tier = async_tier(redis_server.port, ns)
        seen = []

        @cached(LRUCache(10), l2=tier)
        async def boom(x):
            seen.append(x)
            raise KeyError(x)

        for _ in range(2):
            with pytest.raises(KeyError):
                await boom(1)
        assert seen == [1, 1]
        keys = [k async for k in aredis.Redis(port=redis_server.port).scan_iter(match=f"{ns}:*:l")]
        assert keys == []

    asyncio.run(main())


def test_a_stopped_server_costs_op_timeout_at_most(fresh_redis_server):
    server = fresh_redis_server
    ns = new_namespace()

    async def main():
        tier = async_tier(server.port, ns, op_timeout=0.2, breaker_failures=2, breaker_cooldown=30)
        calls = []
        f = define(tier, calls)
        await f(0)
        server.pause()
        try:
            started = time.monotonic()
            for i in range(1, 8):
                assert await f(i) == {"x": i}
            elapsed = time.monotonic() - started
            # Two operations time out (0.2 s each), then the breaker opens.
            assert elapsed < 2.0, elapsed
            assert tier.stats().breaker == "open"
        finally:
            server.resume()

    asyncio.run(main())


def test_an_absent_server():
    from redis_servers import free_port

    async def main():
        tier = async_tier(free_port(), new_namespace(), breaker_failures=2)
        calls = []
        f = define(tier, calls)
        assert [await f(i) for i in range(5)] == [{"x": i} for i in range(5)]
        assert calls == list(range(5))
        assert await f.cache_invalidate(3) is True  # the first tier had it
        assert tier.stats().errors >= 2

    asyncio.run(main())


def test_client_and_function_must_match(redis_server):
    async def f(x):
        return x

    async def main():
        # Built in a running loop: redis.asyncio's clients need one on 3.9.
        async_t = async_tier(redis_server.port, new_namespace())
        with pytest.raises(TypeError, match="sync function"):
            cached(LRUCache(1), l2=async_t)(lambda x: x)

    asyncio.run(main())
    sync_t = cachebox.RedisTier(client_for(redis_server), namespace=new_namespace(), ttl=1)
    with pytest.raises(TypeError, match="async function"):
        cached(LRUCache(1), l2=sync_t)(f)
