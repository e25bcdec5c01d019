"""Decorated coroutine functions awaited concurrently: stampede protection (tasks of one key
share one computation and its exception, not a ``BaseException``), cancellation of the task
computing or of one waiting, tasks of different keys running side by side, recursion (same key:
``RuntimeError``; other keys: works, across tasks too) and several event loops in turn.

Every test runs in a subprocess (``subprocess_harness.run_async_isolated``), so a deadlock fails
one test only. The tasks synchronise on the callers that reached the key lock
(``wait_for_arrivals``).
"""

try:
    from .subprocess_harness import run_async_isolated
except ImportError:
    from subprocess_harness import run_async_isolated


def test_async_stampede_shares_one_exception():
    # upstream's protocol: gather of 5 tasks with a raising func
    run_async_isolated(
        """
        calls = 0
        batch = 5

        @cachebox.cached(None, key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            await wait_for_arrivals(batch)
            raise RuntimeError("failed call %d" % calls)

        async def one_batch():
            reset_arrivals()
            return await asyncio.gather(*[func(1) for _ in range(5)], return_exceptions=True)

        first = run(one_batch())
        assert calls == 1, calls
        assert all(type(e) is RuntimeError for e in first), first
        assert all(e is first[0] for e in first)
        assert str(first[0]) == "failed call 1"

        second = run(one_batch())
        assert calls == 2, calls
        assert all(e is second[0] for e in second)
        assert second[0] is not first[0]

        async def single():
            return await asyncio.gather(func(1), return_exceptions=True)

        batch = 1
        reset_arrivals()
        third = run(single())     # a fresh call runs func again: nothing stored is left
        assert calls == 3, calls
        assert str(third[0]) == "failed call 3"
        assert func.cache_info()[:2] == (0, 0)
        """
    )


def test_async_stampede_slow_success_runs_once():
    run_async_isolated(
        """
        calls = 0
        events = []

        async def callback(event, key, value):
            await asyncio.sleep(0)
            events.append(event)

        @cachebox.cached(cachebox.LRUCache(0), key_maker=counting_key_maker, callback=callback)
        async def func(x):
            global calls
            calls += 1
            await wait_for_arrivals(8)
            await asyncio.sleep(0.05)
            return [x, "computed"]

        async def main():
            return await asyncio.gather(*[func("k") for _ in range(8)])

        results = run(main())
        assert calls == 1, calls
        assert all(r == ["k", "computed"] for r in results), results
        assert len({id(r) for r in results}) == 8
        assert all(r is not func.cache["k"] for r in results)
        assert func.cache_info()[:2] == (7, 1)
        assert sorted(events) == [EVENT_MISS] + [EVENT_HIT] * 7
        """
    )


def test_async_ten_tasks_one_key_counts_one_miss_nine_hits():
    run_async_isolated(
        """
        calls = []

        @cachebox.cached(cachebox.FIFOCache(0))
        async def func(a, b):
            calls.append((a, b))
            await asyncio.sleep(0.02)
            return a + b

        async def main():
            return await asyncio.gather(*[func(2, 3) for _ in range(10)])

        assert run(main()) == [5] * 10
        assert calls == [(2, 3)]
        assert func.cache_info()[:3] == (9, 1, func.cache.maxsize)
        """
    )


def test_async_cancelled_owner_does_not_strand_waiters():
    run_async_isolated(
        """
        calls = 0

        @cachebox.cached(cachebox.LRUCache(0), key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(3600)   # until cancelled
            return "value %d" % calls

        async def call():
            return await func(1)

        async def main():
            owner = asyncio.ensure_future(call())
            await wait_for_arrivals(1)
            assert calls == 1
            waiters = [asyncio.ensure_future(call()) for _ in range(2)]
            await wait_for_arrivals(3)
            owner.cancel()
            results = await asyncio.wait_for(
                asyncio.gather(owner, *waiters, return_exceptions=True), 20)
            return results

        results = run(main())
        assert isinstance(results[0], asyncio.CancelledError), results
        assert results[1:] == ["value 2", "value 2"], results
        assert calls == 2, calls            # the next waiter computed
        assert func.cache_info()[:2] == (1, 1)
        assert func.cache[1] == "value 2"
        """
    )


def test_async_cancelled_owner_without_waiters_releases_the_key():
    run_async_isolated(
        """
        calls = 0

        @cachebox.cached(None, key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(3600)
            return calls

        async def main():
            t = asyncio.ensure_future(func(1))
            await wait_for_arrivals(1)
            t.cancel()
            try:
                await t
            except asyncio.CancelledError:
                pass
            else:
                raise AssertionError("not cancelled")
            return await asyncio.wait_for(func(1), 60)

        assert run(main()) == 2
        assert func.cache_info()[:2] == (0, 1)
        """
    )


def test_async_cancelled_waiter_does_not_disturb_the_others():
    run_async_isolated(
        """
        calls = 0
        released = None

        @cachebox.cached(None, key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            await wait_for_arrivals(3)
            await released.wait()        # until a waiter has been cancelled
            return "value"

        async def main():
            global released
            released = asyncio.Event()
            tasks = [asyncio.ensure_future(func(1)) for _ in range(3)]
            await wait_for_arrivals(3)
            tasks[1].cancel()
            released.set()
            return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)

        results = run(main())
        assert results[0] == "value" and results[2] == "value", results
        assert isinstance(results[1], asyncio.CancelledError), results
        assert calls == 1
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_async_base_exception_is_not_shared():
    run_async_isolated(
        """
        class Stop(BaseException):
            pass

        calls = 0

        @cachebox.cached(None, key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            if calls == 1:
                await wait_for_arrivals(3)
                raise Stop()
            return "value"

        async def main():
            return await asyncio.gather(*[func(1) for _ in range(3)], return_exceptions=True)

        results = run(main())
        assert isinstance(results[0], Stop), results
        assert results[1:] == ["value", "value"], results
        assert calls == 2, calls
        assert func.cache_info()[:2] == (1, 1)
        """
    )


def test_async_different_keys_run_concurrently():
    run_async_isolated(
        """
        seen = {}

        @cachebox.cached(None)
        async def func(key, events):
            a_running, b_running = events
            if key == "a":
                a_running.set()
                await asyncio.wait_for(b_running.wait(), 60)
                seen["a saw b"] = True
            else:
                await asyncio.wait_for(a_running.wait(), 60)
                b_running.set()
            return key

        async def main():
            events = (asyncio.Event(), asyncio.Event())
            # the events are part of the key; make it the same object for both calls
            return await asyncio.gather(func("a", events), func("b", events))

        assert run(main()) == ["a", "b"]
        assert seen == {"a saw b": True}
        assert func.cache_info()[:2] == (0, 2)
        """
    )


def test_async_recursion_with_the_same_key_raises_runtime_error():
    run_async_isolated(
        """
        state = {"recurse": True, "calls": 0}

        @cachebox.cached(None)
        async def f(n):
            state["calls"] += 1
            if state["recurse"]:
                return await f(n)
            return n * 2

        @cachebox.cached(None)
        async def g(n):
            try:
                return await g(n)
            except RuntimeError as e:
                return ("caught", type(e).__name__)

        async def main():
            try:
                await f(1)
            except RecursionError as e:
                raise AssertionError("RecursionError instead of a detected re-entry")
            except RuntimeError:
                pass
            else:
                raise AssertionError("no RuntimeError")
            assert state["calls"] == 1, state
            state["recurse"] = False
            assert await f(1) == 2
            assert await g(1) == ("caught", "RuntimeError")
            assert await g(1) == ("caught", "RuntimeError")

        run(main())
        assert f.cache_info()[:2] == (0, 1)
        assert g.cache_info()[:2] == (1, 1)
        """
    )


def test_async_recursion_with_different_keys_works():
    run_async_isolated(
        """
        tasks = set()

        @cachebox.cached(None)
        async def fact(n):
            return 1 if n <= 1 else n * await fact(n - 1)

        @cachebox.cached(None)
        async def fact_tasks(n):
            tasks.add(id(asyncio.current_task()))
            if n <= 1:
                return 1
            return n * await asyncio.ensure_future(fact_tasks(n - 1))

        async def main():
            assert await fact(10) == 3628800
            assert await fact_tasks(8) == 40320

        run(main())
        assert fact.cache_info()[:2] == (0, 10)
        assert fact_tasks.cache_info()[:2] == (0, 8)
        assert len(tasks) == 8
        """
    )


def test_async_works_across_event_loops():
    run_async_isolated(
        """
        calls = []

        @cachebox.cached(cachebox.LRUCache(0))
        async def func(x):
            calls.append(x)
            await asyncio.sleep(0.01)
            return x

        async def batch(key):
            return await asyncio.gather(*[func(key) for _ in range(4)])

        assert asyncio.run(batch(1)) == [1] * 4     # a contended key lock in loop 1
        assert calls == [1]
        func.cache.clear()                          # keeps whatever per-key state exists
        assert asyncio.run(asyncio.wait_for(batch(1), 60)) == [1] * 4   # same key, loop 2
        assert asyncio.run(asyncio.wait_for(batch(2), 60)) == [2] * 4   # new key, loop 3
        assert calls == [1, 1, 2]
        assert asyncio.run(func(2)) == 2
        assert func.cache_info()[:2] == (3 + 3 + 3 + 1, 3)
        """
    )


def test_async_shared_exception_across_loops_is_not_leaked():
    run_async_isolated(
        """
        calls = 0

        @cachebox.cached(None, key_maker=counting_key_maker)
        async def func(x):
            global calls
            calls += 1
            if calls == 1:
                await wait_for_arrivals(3)
                raise ValueError("first")
            return "ok"

        async def batch():
            return await asyncio.gather(*[func(1) for _ in range(3)], return_exceptions=True)

        first = run(batch())
        assert all(isinstance(e, ValueError) for e in first) and first[0] is first[1] is first[2]
        assert run(func(1)) == "ok"
        assert calls == 2
        """
    )
