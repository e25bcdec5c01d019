"""The shared tier with a ``redis.asyncio`` client and async functions, against a real server:
hits, one computation for many coroutines and tiers, invalidation and clearing (awaitables),
errors, and a stopped or absent server (every operation bounded by ``op_timeout``)."""

from __future__ import annotations

import asyncio
import random
import time

import pytest
import redis.asyncio as aredis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tier_helpers import client_for, count_round_trips, new_namespace

import cachebox
from cachebox import LRUCache, cached


def async_tier(server_port, ns, single_connection_client=False, **options):
    client = aredis.Redis(
        host="127.0.0.1",
        port=server_port,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 1),
        single_connection_client=single_connection_client,
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


def test_round_trips(redis_server):
    # A plain client's pooled connections carry the tier's packets straight: an L2 hit is one
    # packet (GET and PTTL), with no script; a miss adds the script that takes the lock and the
    # one that stores the value, until misses are all the binding sees.
    ns = new_namespace()

    async def main():
        a, b = async_tier(redis_server.port, ns), async_tier(redis_server.port, ns)
        assert await until(lambda: a.stats().subscribed and b.stats().subscribed)
        fa, fb = define(a, []), define(b, [])
        await fb("warm")
        await fa("warm")  # a hit: the binding still expects hits
        trips_a, trips_b = count_round_trips(a.client), count_round_trips(b.client)
        assert await fa("k1") == {"x": "k1"}
        assert trips_a == [["GET", "PTTL"], ["EVALSHA"], ["EVALSHA"]]
        assert await fb("k1") == {"x": "k1"}
        assert trips_b == [["GET", "PTTL"]]
        assert await fb("k1") == {"x": "k1"}  # an L1 hit: nothing
        assert trips_b == [["GET", "PTTL"]]
        cold = []
        for i in range(30):
            trips_a.clear()
            await fa(f"cold {i}")
            cold.append(list(trips_a))
        assert cold[-1] == [["EVALSHA"], ["EVALSHA"]]
        assert a.stats().errors == b.stats().errors == 0

    asyncio.run(main())


def test_round_trips_through_the_clients_own_path(redis_server):
    # A single-connection client, or a cluster's, sends the tier's commands itself: an L2 hit
    # is then the script that also takes the lock on a miss.
    from redis.asyncio.cluster import RedisCluster

    from cachebox.redis_tier import _AsyncDirectLane

    ns = new_namespace()

    async def main():
        assert _AsyncDirectLane.of(RedisCluster(host="127.0.0.1", port=redis_server.port)) is None
        a, b = (async_tier(redis_server.port, ns, single_connection_client=True) for _ in range(2))
        assert a._lane is None
        assert await until(lambda: a.stats().subscribed and b.stats().subscribed)
        fa, fb = define(a, []), define(b, [])
        await fa("warm")
        await fb("warm")
        trips_a, trips_b = count_round_trips(a.client), count_round_trips(b.client)
        assert await fa("k1") == {"x": "k1"}
        assert trips_a == [["EVALSHA"], ["EVALSHA"]]
        assert await fb("k1") == {"x": "k1"}
        assert trips_b == [["EVALSHA"]]
        for tier in (a, b):
            tier.close()
            await (getattr(tier.client, "aclose", None) or tier.client.close)()  # aclose: 5.0.1+

    asyncio.run(main())


def value_of(x):
    """A value that tells its key, some big enough to come in several reads."""
    return (x, b"%d" % x * (x % 5) * 20_000)


def test_cancellations_never_mix_up_replies(redis_server):
    # Calls cancelled at every point (before a send, between a send and its reply, within a
    # reply read in several parts) and calls that time out: every later call on the same
    # client gets its own value.
    ns = new_namespace()
    rng = random.Random(1234)

    async def main():
        # Short locks: a call cancelled after its script took the lock leaves it to expire.
        tier = async_tier(redis_server.port, ns, lock_timeout=0.3, lock_wait=0.3, op_timeout=1.0)
        assert tier._lane is not None
        assert await until(lambda: tier.stats().subscribed)

        @cached(LRUCache(1), l2=tier)  # one entry: nearly every call goes to Redis
        async def f(x):
            return value_of(x)

        keys = list(range(60))
        for k in keys[:40]:  # in Redis; the others are computed by the first call that lives
            await f(k)

        async def cancelled_after(k, steps):
            task = asyncio.ensure_future(f(k))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            return await task

        for _ in range(30):
            calls = []
            for _ in range(40):
                k = rng.choice(keys)
                if rng.random() < 0.5:
                    calls.append(asyncio.wait_for(f(k), rng.uniform(0, 0.002)))
                else:
                    calls.append(cancelled_after(k, rng.randrange(12)))
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    assert isinstance(outcome, (asyncio.CancelledError, asyncio.TimeoutError)), outcome
            checked = rng.sample(keys, 20)
            assert await asyncio.gather(*(f(k) for k in checked)) == [value_of(k) for k in checked]
        for k in keys:
            assert await f(k) == value_of(k)
        assert tier.stats().corrupt == 0

    asyncio.run(main())


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
@pytest.mark.parametrize("reads_before", [0, 1])
def test_a_connection_left_between_send_and_reply_is_dropped(redis_server, how, reads_before):
    # The task is interrupted after the packet went and before (all of) its replies are read:
    # the connection is closed before it goes back to the pool, whatever the client's version
    # does by itself (here, the read never starts).
    ns = new_namespace()

    async def main():
        tier, filler = async_tier(redis_server.port, ns, op_timeout=0.2), async_tier(redis_server.port, ns)
        assert await until(lambda: tier.stats().subscribed and filler.stats().subscribed)

        def define_values(tier):
            @cached(LRUCache(1), l2=tier)
            async def f(x):
                return value_of(x)

            return f

        fill, f = define_values(filler), define_values(tier)
        for k in (1, 2, 3):
            await fill(k)
        await f(3)  # found: the binding looks at values first (two replies to read)
        pool = tier.client.connection_pool
        get_connection = pool.get_connection
        victims = []

        async def interrupted_once(*a, **k):
            connection = await get_connection(*a, **k)
            if not victims:
                victims.append(connection)
                real_read = connection.read_response
                reads = []

                async def read_response(*a, **k):
                    if len(reads) < reads_before:
                        reads.append(1)
                        return await real_read(*a, **k)
                    if how == "cancelled":
                        asyncio.current_task().cancel()
                    await asyncio.sleep(5)

                connection.read_response = read_response
            return connection

        pool.get_connection = interrupted_once
        try:
            if how == "cancelled":
                with pytest.raises(asyncio.CancelledError):
                    await f(1)
            else:
                started = time.monotonic()
                assert await f(1) == value_of(1)  # computed: Redis did not answer in time
                assert time.monotonic() - started < 1.0
        finally:
            pool.get_connection = get_connection
        (victim,) = victims
        del victim.read_response
        assert not victim.is_connected
        for k in (2, 3, 1, 2):
            assert await f(k) == value_of(k)
        stats = tier.stats()
        assert stats.corrupt == 0 and stats.errors == (1 if how == "timed out" else 0)

    asyncio.run(main())


def test_script_flush_mid_run(redis_server):
    # The server forgets its scripts: a script sent straight on a connection fails, and the
    # client's script object loads it again; no call fails or counts an error.
    ns = new_namespace()
    flusher = client_for(redis_server)

    async def main():
        tier = async_tier(redis_server.port, ns)
        assert await until(lambda: tier.stats().subscribed)
        calls = []
        f = define(tier, calls)
        trips = count_round_trips(tier.client)
        for i in range(30):  # cold misses: the binding stops looking at values first
            flusher.script_flush()
            assert await f(i) == {"x": i}
        assert calls == list(range(30))
        f.cache.clear()
        for i in range(3):
            flusher.script_flush()
            trips.clear()
            assert await f(i) == {"x": i}  # an L2 hit, found by the script
            assert trips[0] == ["EVALSHA"]
        assert calls == list(range(30))
        stats = tier.stats()
        assert stats.errors == 0 and stats.hits == 3 and stats.misses == 30

    asyncio.run(main())
