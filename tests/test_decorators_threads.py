"""Decorated functions called from many threads: stampede protection (concurrent callers of
one key wait for one computation and share its result or its exception, but not a
``BaseException`` and not with later callers), different keys never block each other, a waiting
thread does not hold the interpreter, the counters stay exact, and ``cache_clear`` with a call
in flight.

Every test runs in a subprocess (``subprocess_harness.run_isolated``/``run_threads``), so a
deadlock fails one test instead of stalling the run. The callers synchronise on the state they
wait for (``_followers``, events, barriers).
"""

try:
    from .subprocess_harness import run_isolated, run_threads
except ImportError:
    from subprocess_harness import run_isolated, run_threads


def test_thread_stampede_shares_one_exception():
    # upstream's protocol: ThreadPoolExecutor, 5 workers, a raising func
    run_threads(
        """
        from concurrent.futures import ThreadPoolExecutor
        calls = 0
        batch_size = 5

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            wait_for_followers(func, batch_size - 1)
            raise RuntimeError("failed call %d" % calls)

        def batch():
            with ThreadPoolExecutor(max_workers=5) as pool:
                futures = [pool.submit(func, 1) for _ in range(5)]
                return [f.exception(timeout=30) for f in futures]

        first = batch()
        assert calls == 1, calls
        assert all(type(e) is RuntimeError for e in first), first
        assert all(e is first[0] for e in first), [id(e) for e in first]
        assert str(first[0]) == "failed call 1"

        second = batch()
        assert calls == 2, calls
        assert all(e is second[0] for e in second)
        assert second[0] is not first[0]
        assert str(second[0]) == "failed call 2"

        assert func.cache_info()[:2] == (0, 0)
        assert len(func.cache) == 0

        # a fresh, uncontended call runs func again (the stored exception is gone)
        batch_size = 1
        try:
            func(1)
        except RuntimeError as e:
            assert str(e) == "failed call 3", str(e)
        else:
            raise AssertionError("no RuntimeError")
        assert calls == 3
        """
    )


def test_thread_stampede_slow_success_runs_once():
    run_threads(
        """
        import threading
        calls = 0
        events = []

        @cachebox.cached(cachebox.LRUCache(0), key_maker=own_key_maker,
                         callback=lambda *e: events.append(e[0]))
        def func(x):
            global calls
            calls += 1
            wait_for_followers(func, 7)
            return [x, "computed"]

        results = [None] * 8
        barrier = threading.Barrier(8)

        def worker(i):
            barrier.wait(timeout=30)
            results[i] = func("k")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert calls == 1, calls
        assert all(r == ["k", "computed"] for r in results), results
        assert len({id(r) for r in results}) == 8      # everybody got a copy
        assert all(r is not func.cache["k"] for r in results)
        assert func.cache_info()[:3] == (7, 1, func.cache.maxsize)
        assert sorted(events) == [EVENT_MISS] + [EVENT_HIT] * 7
        """
    )


def test_ten_threads_one_key_counts_one_miss_nine_hits():
    run_threads(
        """
        import threading
        calls = []
        events = []

        @cachebox.cached(cachebox.FIFOCache(0), callback=lambda e, k, v: events.append((e, k, v)))
        def func(a, b):
            calls.append((a, b))
            time.sleep(0.05)
            return a + b

        barrier = threading.Barrier(10)
        results = []

        def worker():
            barrier.wait(timeout=30)
            results.append(func(2, 3))

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert calls == [(2, 3)]
        assert results == [5] * 10
        info = func.cache_info()
        assert (info.hits, info.misses, info.length) == (9, 1, 1), info
        assert sorted(events) == [(EVENT_MISS, (2, 3), 5)] + [(EVENT_HIT, (2, 3), 5)] * 9
        """
    )


def test_thread_stampede_base_exception_is_not_shared():
    run_threads(
        """
        import threading

        class Stop(BaseException):
            pass

        calls = 0

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            if calls == 1:
                wait_for_followers(func, 2)
                raise Stop("first")
            return "value"

        outcomes = []
        lock = threading.Lock()

        def worker():
            try:
                r = func(1)
            except BaseException as e:
                r = e
            with lock:
                outcomes.append(r)

        threads = [threading.Thread(target=worker) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        stops = [o for o in outcomes if isinstance(o, Stop)]
        values = [o for o in outcomes if o == "value"]
        assert len(stops) == 1 and len(values) == 2, outcomes
        assert calls == 2, calls          # the next waiter computed
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_thread_stampede_exception_not_shared_with_later_callers():
    run_threads(
        """
        import threading
        calls = 0

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            global calls
            calls += 1
            if calls == 1:
                wait_for_followers(func, 1)
                raise ValueError("shared")
            return "ok"

        errors = []

        def worker():
            try:
                func(1)
            except ValueError as e:
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert len(errors) == 2 and errors[0] is errors[1]
        assert calls == 1
        assert func(1) == "ok"             # nothing stored is left behind
        assert calls == 2
        """
    )


def test_different_keys_do_not_block_each_other():
    run_isolated(
        """
        import threading
        import cachebox
        a_running = threading.Event()
        b_running = threading.Event()
        seen = {}

        @cachebox.cached(None)
        def func(key):
            if key == "a":
                a_running.set()
                seen["a saw b"] = b_running.wait(60)
            else:
                assert a_running.wait(60)
                b_running.set()
            return key

        ta = threading.Thread(target=func, args=("a",))
        ta.start()
        assert a_running.wait(60)
        assert func("b") == "b"       # while "a" is still being computed
        ta.join(30)
        assert not ta.is_alive()
        assert seen == {"a saw b": True}
        assert func.cache_info()[:2] == (0, 2)
        """
    )


def test_waiting_thread_does_not_hold_the_interpreter():
    run_threads(
        """
        import threading
        release = threading.Event()
        running = threading.Event()
        progress = []

        @cachebox.cached(None, key_maker=own_key_maker)
        def func(x):
            running.set()
            assert release.wait(60)
            return x

        owner = threading.Thread(target=func, args=(1,))
        waiter = threading.Thread(target=func, args=(1,))
        owner.start()
        assert running.wait(60)
        waiter.start()
        wait_for_followers(func, 1)
        # the main thread keeps running Python while `waiter` is blocked on the key lock
        for i in range(1000):
            progress.append(i)
        release.set()
        owner.join(30)
        waiter.join(30)
        assert not owner.is_alive() and not waiter.is_alive()
        assert len(progress) == 1000
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_counters_are_exact_under_contention():
    run_isolated(
        """
        import threading
        import cachebox
        calls = []

        @cachebox.cached(None)
        def func(x):
            calls.append(x)
            return x

        barrier = threading.Barrier(8)

        def worker(seed):
            barrier.wait(timeout=30)
            for i in range(300):
                assert func((i * 7 + seed) % 20) == (i * 7 + seed) % 20

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert sorted(calls) == list(range(20))       # one computation per key
        assert func.cache_info()[:3] == (8 * 300 - 20, 20, func.cache.maxsize)
        """
    )


def test_cache_clear_while_a_key_is_in_flight():
    run_threads(
        """
        import threading
        release = threading.Event()
        running = threading.Event()
        calls = []

        @cachebox.cached(cachebox.LRUCache(0), key_maker=own_key_maker)
        def func(x):
            calls.append(x)
            if len(calls) == 1:
                running.set()
                assert release.wait(60)
            return x

        t = threading.Thread(target=func, args=(1,))
        t.start()
        assert running.wait(60)
        func.cache_clear()            # must not deadlock nor break the call in flight
        release.set()
        t.join(30)
        assert not t.is_alive()
        assert func(2) == 2
        assert func(1) == 1
        """
    )
