"""The shared tier across real processes: one computation for many processes and threads
(with different hash seeds), a lock holder killed mid-computation, a computation that outlasts
its lock, and a fork after the tier was built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from tier_helpers import client_for, make_tier, new_namespace

import cachebox
from cachebox import LRUCache, cached

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
CHILD_TIMEOUT = 120


def spawn(role, server, ns, *args, seed="0"):
    env = dict(os.environ, PYTHONHASHSEED=seed, RUST_BACKTRACE="0")
    return subprocess.Popen(
        [
            sys.executable,
            os.path.join(TESTS_DIR, "tier_children.py"),
            role,
            str(server.port),
            ns,
            *map(str, args),
        ],
        cwd=TESTS_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc):
    out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_one_computation_across_processes_and_threads(redis_server):
    ns = new_namespace()
    client = client_for(redis_server)
    procs = [
        spawn("stampede", redis_server, ns, 4, 10, "cold", 0.3, seed=str(seed)) for seed in (1, 2, 3, 77)
    ]
    time.sleep(1.0)  # let them import and start polling for the go signal
    client.set(f"{ns}:test:go", 1)
    reports = [finish(p) for p in procs]
    assert all(r["ok"] and r["results"] == 4 for r in reports), reports
    assert int(client.get(f"{ns}:test:computations")) == 1
    assert sum(r["stats"]["misses"] for r in reports) == 1


def test_a_killed_lock_holder_is_taken_over_within_lock_timeout(redis_server):
    ns = new_namespace()
    client = client_for(redis_server)
    holder = spawn("hold", redis_server, ns, "k", 1.0, 60)
    assert json.loads(holder.stdout.readline())["started"]
    deadline = time.monotonic() + 30
    while not client.get(f"{ns}:test:computations"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    waiter = spawn("call", redis_server, ns, "k", 1.0, 0)
    time.sleep(0.3)
    holder.kill()
    holder.communicate(timeout=CHILD_TIMEOUT)
    report = finish(waiter)
    assert report["ok"]
    # The waiter took over when the lock expired (1 s), not after waiting its full lock_wait.
    assert report["elapsed"] < 5, report
    assert int(client.get(f"{ns}:test:computations")) == 2


def test_a_computation_longer_than_lock_timeout(redis_server):
    ns = new_namespace()
    tier = make_tier(redis_server, ns, lock_timeout=0.2)
    other = make_tier(redis_server, ns, lock_timeout=0.2)
    calls = []

    def define(t):
        @cached(LRUCache(10), l2=t)
        def slow(x):
            calls.append(x)
            time.sleep(0.5)
            return x * 2

        return slow

    import threading

    a, b = define(tier), define(other)
    results = []
    first = threading.Thread(target=lambda: results.append(a(3)))
    first.start()
    time.sleep(0.05)
    results.append(b(3))  # waits 0.2 s at most, then computes itself
    first.join(10)
    assert results == [6, 6]
    assert len(calls) == 2
    assert tier.stats().errors == 0 and other.stats().errors == 0


def test_one_computation_across_processes_threads_and_coroutines(redis_server):
    # In each of four processes (each with its own hash seed) three threads call the sync
    # function and, meanwhile, five coroutines of the process's loop call the async one: each
    # function runs once in all.
    ns = new_namespace()
    client = client_for(redis_server)
    procs = [
        spawn("stampede-mixed", redis_server, ns, 3, 10, 5, "cold", 0.3, seed=str(seed))
        for seed in (5, 6, 7, 1234)
    ]
    time.sleep(1.0)
    client.set(f"{ns}:test:go", 1)
    reports = [finish(p) for p in procs]
    assert all(r["ok"] and r["results"] == 3 and r["async_results"] == 5 for r in reports), reports
    assert int(client.get(f"{ns}:test:computations")) == 1
    assert int(client.get(f"{ns}:test:async-computations")) == 1
    assert sum(r["stats"]["misses"] for r in reports) == 1
    assert sum(r["async_stats"]["misses"] for r in reports) == 1


def test_fork_after_the_tier_was_built(redis_server):
    ns = new_namespace()
    tier = make_tier(redis_server, ns)
    client = client_for(redis_server)
    counter = f"{ns}:test:forked"

    @cached(LRUCache(10), l2=tier)
    def f(x):
        client.incr(counter)
        return x + 1

    # First-tier copies expire with Redis's in a child too (a process of its own has an expiry
    # watch of its own; the parent's is running at the fork).
    short = make_tier(redis_server, ttl=0.3)
    g_calls = []

    @cached(LRUCache(10), l2=short)
    def g(x):
        g_calls.append(x)
        return x

    def expires_in_time(x):
        before = len(g_calls)
        g(x)
        started = time.monotonic()
        while len(g_calls) < before + 2:  # the copy it kept expires: computed again
            g(x)
            if time.monotonic() - started > 5:
                return False
        return True

    assert f(1) == 2  # the parent's listener and connections exist before the fork
    assert expires_in_time("parent")
    g("long-lived")
    pids = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                ok = f(1) == 2 and f(100 + i) == 101 + i
                f.cache_invalidate(1)
                deadline = time.monotonic() + 10
                while not tier.stats().subscribed and time.monotonic() < deadline:
                    time.sleep(0.01)
                ok = ok and expires_in_time(f"child {i}")
                if i == 0:  # and in a grandchild
                    grandchild = os.fork()
                    if grandchild == 0:
                        os._exit(0 if expires_in_time("grandchild") else 1)
                    _, status = os.waitpid(grandchild, 0)
                    ok = ok and os.waitstatus_to_exitcode(status) == 0
                code = 0 if ok and tier.stats().subscribed else 1
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    # Each child computed its own key; f(1) came from Redis (or the inherited first tier).
    assert int(client.get(counter)) >= 4
    assert isinstance(tier.stats(), cachebox.TierStats)
