"""The shared tier on a local three-node Redis Cluster: keys of many slots, a value and its
lock in one slot (no CROSSSLOT errors), invalidation and clearing across two tiers."""

from __future__ import annotations

import pytest
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster as ClusterClient
from redis.retry import Retry
from tier_helpers import new_namespace, subscribed, wait_until

import cachebox
from cachebox import LRUCache, cached


@pytest.fixture(scope="module")
def cluster():
    from redis_servers import RedisCluster

    nodes = RedisCluster(3)
    yield nodes
    nodes.close()


def cluster_tier(cluster, ns):
    client = ClusterClient(
        host="127.0.0.1",
        port=cluster.port,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(NoBackoff(), 1),
    )
    tier = cachebox.RedisTier(client, namespace=ns, ttl=60)
    assert subscribed(tier)
    return tier


def define(tier, calls):
    @cached(LRUCache(1000), l2=tier)
    def f(x):
        calls.append(x)
        return ("value", x)

    return f


def test_a_tier_on_a_cluster(cluster):
    ns = new_namespace()
    a, b = cluster_tier(cluster, ns), cluster_tier(cluster, ns)
    calls_a, calls_b = [], []
    fa, fb = define(a, calls_a), define(b, calls_b)
    keys = list(range(60))  # spread over the three nodes' slots
    assert [fa(k) for k in keys] == [("value", k) for k in keys]
    assert [fb(k) for k in keys] == [("value", k) for k in keys]
    assert calls_b == [] and a.stats().errors == 0 and b.stats().errors == 0
    assert b.stats().hits == len(keys)
    # Invalidation and clearing reach the other tier through the cluster's pub/sub.
    assert fa.cache_invalidate(7) is True
    assert wait_until(lambda: 7 not in fb.cache)
    fb(7)
    assert calls_b == [7]
    fa.cache_clear()
    assert wait_until(lambda: len(fb.cache) == 0)
    fb(8)
    assert calls_b == [7, 8]


def test_an_async_tier_on_a_cluster(cluster):
    import asyncio

    from redis.asyncio.cluster import RedisCluster as AsyncClusterClient

    ns = new_namespace()
    if not callable(getattr(AsyncClusterClient, "pubsub", None)):
        # redis-py before 8 has no pub/sub on its async cluster client: the tier cannot hear
        # invalidations through it, and says so when it is built.
        async def refused():
            client = AsyncClusterClient(host="127.0.0.1", port=cluster.port, socket_timeout=1)
            with pytest.raises(TypeError, match="pubsub"):
                cachebox.RedisTier(client, namespace=ns, ttl=60)

        asyncio.run(refused())
        return

    async def main():
        tiers = [
            cachebox.RedisTier(
                AsyncClusterClient(host="127.0.0.1", port=cluster.port, socket_timeout=1),
                namespace=ns,
                ttl=60,
            )
            for _ in range(2)
        ]
        calls = [[], []]

        def define_async(tier, seen):
            @cached(LRUCache(1000), l2=tier)
            async def f(x):
                seen.append(x)
                return ("value", x)

            return f

        async def soon(condition):
            for _ in range(500):
                if condition():
                    return True
                await asyncio.sleep(0.01)
            return condition()

        fa, fb = (define_async(t, c) for t, c in zip(tiers, calls))
        await fa("warm")  # an async tier subscribes in the loop of its first call
        await fb("warm")
        assert await soon(lambda: all(t.stats().subscribed for t in tiers))
        calls[1].clear()
        keys = list(range(30))
        assert [await fa(k) for k in keys] == [("value", k) for k in keys]
        assert [await fb(k) for k in keys] == [("value", k) for k in keys]
        assert calls[1] == [] and tiers[1].stats().hits == len(keys) + 1
        # Invalidation and clearing reach the other tier through the cluster's pub/sub.
        assert await fa.cache_invalidate(3) is True
        assert await soon(lambda: 3 not in fb.cache)
        assert await fb(3) == ("value", 3)
        assert calls[1] == [3]
        await fa.cache_clear()
        assert await soon(lambda: len(fb.cache) == 0)
        assert await fb(4) == ("value", 4)
        assert calls[1] == [3, 4]
        assert all(t.stats().errors == 0 for t in tiers)
        for tier in tiers:
            await tier.client.aclose()

    asyncio.run(main())
