"""The shared tier when Redis misbehaves: killed and restarted, stopped (slow), scripts
flushed, the pub/sub connection killed. Calls never fail, and each returns within a bound."""

from __future__ import annotations

import time

from tier_helpers import client_for, make_tier, new_namespace, wait_until

from cachebox import LRUCache, cached


def define(tier, calls, before=None):
    """``f(x)`` over ``tier``, the same function in every tier (``before`` runs first)."""

    @cached(LRUCache(1000), l2=tier)
    def f(x):
        calls.append(x)
        if before is not None:
            before(x)
        return x * 10

    return f


def test_server_killed_mid_run_and_restarted(fresh_redis_server):
    server = fresh_redis_server
    tier = make_tier(server, breaker_failures=2, breaker_cooldown=0.5)
    calls = []
    f = define(tier, calls)
    assert f(1) == 10
    assert wait_until(timeout=10.0, predicate=lambda: tier.stats().subscribed)
    server.kill()
    slowest = 0.0
    for i in range(2, 30):
        started = time.monotonic()
        assert f(i) == i * 10
        slowest = max(slowest, time.monotonic() - started)
    assert tier.stats().breaker in ("open", "half-open")
    assert tier.stats().errors >= 2
    # Each call costs at most a few timeouts (0.5 s each here) before the breaker opens.
    assert slowest < 5, slowest
    server.start()
    # The tier comes back by itself: the breaker closes, the subscription is back (and the
    # first tier was emptied then, since invalidations may have been missed).
    assert wait_until(
        timeout=10.0, predicate=lambda: (f(1000 + len(calls)), tier.stats().breaker == "closed")[1]
    )
    assert wait_until(timeout=10.0, predicate=lambda: tier.stats().subscribed)
    assert wait_until(timeout=10.0, predicate=lambda: 1 not in f.cache)
    before = tier.stats().hits + tier.stats().misses
    f(5000)
    assert tier.stats().misses + tier.stats().hits == before + 1


def test_server_stopped_is_slow_not_fatal(fresh_redis_server):
    server = fresh_redis_server
    tier = make_tier(server, breaker_failures=2, breaker_cooldown=30)
    calls = []
    f = define(tier, calls)
    f(0)
    server.pause()
    try:
        started = time.monotonic()
        for i in range(1, 10):
            assert f(i) == i * 10
        elapsed = time.monotonic() - started
        assert tier.stats().breaker == "open"
        # Two timed-out operations (0.5 s each, plus the client's own retries) open the breaker;
        # the rest cost nothing.
        assert elapsed < 10, elapsed
    finally:
        server.resume()


def test_script_flush_mid_run(redis_server):
    ns = new_namespace()
    tier = make_tier(redis_server, ns)
    calls = []
    f = define(tier, calls)
    f(1)
    client_for(redis_server).script_flush()
    f.cache.clear()
    assert f(1) == 10 and calls == [1]  # a hit after the scripts were loaded again
    assert f(2) == 20
    assert tier.stats().errors == 0


def test_pubsub_connection_killed(redis_server):
    ns = new_namespace()
    a, b = make_tier(redis_server, ns), make_tier(redis_server, ns)
    calls_a, calls_b = [], []
    fa, fb = define(a, calls_a), define(b, calls_b)
    fa(1)
    fb(1)
    assert wait_until(timeout=10.0, predicate=lambda: a.stats().subscribed and b.stats().subscribed)
    assert 1 in fb.cache
    client_for(redis_server).client_kill_filter(_type="pubsub")
    # b re-subscribes and empties its first tier (it may have missed messages meanwhile).
    assert wait_until(timeout=10.0, predicate=lambda: 1 not in fb.cache)
    assert wait_until(timeout=10.0, predicate=lambda: b.stats().subscribed)
    fb(1)
    assert 1 in fb.cache
    fa.cache_invalidate(1)
    assert wait_until(timeout=10.0, predicate=lambda: 1 not in fb.cache)


def test_a_full_server_refuses_the_value_and_the_lock_is_freed(fresh_redis_server):
    # Redis fills up (maxmemory, no eviction) while a computation runs: the value cannot be
    # stored, the caller gets it anyway, and the lock is released at once, so that another
    # process waiting for it goes on instead of waiting for the lock to expire (30 s here).
    import threading

    ns = new_namespace()
    admin = client_for(fresh_redis_server)
    a, b = make_tier(fresh_redis_server, ns), make_tier(fresh_redis_server, ns)
    calls_a, calls_b = [], []

    def fill_up(x):
        time.sleep(0.3)  # b comes meanwhile, and waits for this lock
        admin.config_set("maxmemory", 1)  # from now on the server refuses what needs memory

    f = define(a, calls_a, before=fill_up)
    g = define(b, calls_b)
    results = {}
    try:
        first = threading.Thread(target=lambda: results.setdefault("a", f(4)))
        first.start()
        time.sleep(0.1)  # a holds the lock
        started = time.monotonic()
        results["b"] = g(4)
        waited = time.monotonic() - started
        first.join(10)
    finally:
        admin.config_set("maxmemory", 0)
    assert results == {"a": 40, "b": 40}
    assert waited < 5, waited
    assert calls_a == [4] and calls_b == [4]  # nothing was stored: b computed too
    assert a.stats().errors >= 1
    assert b.stats().waits == 1
