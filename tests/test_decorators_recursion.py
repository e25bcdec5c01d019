"""A decorated function calling itself: with other keys it works (in one thread or across
threads); with the same key the inner call raises ``RuntimeError`` at once instead of
deadlocking on its own per-key lock or recursing without end.

Every test runs in a subprocess (``subprocess_harness.run_isolated``), so a deadlock fails one
test instead of stalling the run.
"""

try:
    from .subprocess_harness import run_isolated
except ImportError:
    from subprocess_harness import run_isolated


def test_recursion_with_different_keys_works():
    run_isolated(
        """
        import cachebox

        @cachebox.cached(None)
        def fact(n):
            return 1 if n <= 1 else n * fact(n - 1)

        assert fact(10) == 3628800
        assert len(fact.cache) == 10
        assert fact.cache_info()[:2] == (0, 10)
        assert fact(12) == 479001600
        assert fact.cache_info()[:2] == (1, 12)

        @cachebox.cached(cachebox.LRUCache(0))
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        assert fib(80) == 23416728348467685

        class A:
            @cachebox.cachedmethod(None)
            def fact(self, n):
                return 1 if n <= 1 else n * self.fact(n - 1)

        assert A().fact(6) == 720
        """
    )


def test_recursion_with_the_same_key_raises_runtime_error():
    run_isolated(
        """
        import cachebox
        state = {"recurse": True, "calls": 0}

        @cachebox.cached(None)
        def f(n):
            state["calls"] += 1
            if state["recurse"]:
                return f(n)
            return n * 2

        try:
            f(1)
        except RecursionError as e:
            raise AssertionError("RecursionError instead of a detected re-entry: %r" % e)
        except RuntimeError:
            pass
        else:
            raise AssertionError("no RuntimeError")
        assert state["calls"] == 1, state      # raised on the first re-entry
        assert f.cache_info()[:2] == (0, 0)
        assert len(f.cache) == 0
        state["recurse"] = False
        assert f(1) == 2                        # the per-key lock was released
        assert f.cache_info()[:2] == (0, 1)
        """
    )


def test_recursion_same_key_error_is_raised_by_the_inner_call():
    run_isolated(
        """
        import cachebox

        @cachebox.cached(None)
        def f(n):
            try:
                return ("inner", f(n))
            except RuntimeError as e:
                return ("caught", type(e).__name__)

        assert f(1) == ("caught", "RuntimeError")
        assert f.cache[1] == ("caught", "RuntimeError")
        assert f(1) == ("caught", "RuntimeError")
        assert f.cache_info()[:2] == (1, 1)
        """
    )


def test_recursion_same_key_raises_for_cachedmethod_and_factory_mode():
    run_isolated(
        """
        import cachebox

        class A:
            def __init__(self):
                self.c = cachebox.LRUCache(0)

            @cachebox.cachedmethod(None)
            def m(self, x):
                return A().m(x)        # another instance, same key (self is dropped)

            @cachebox.cached(lambda self: self.c)
            def f(self, x):
                return self.f(x)

        for call in (lambda: A().m(1), lambda: A().f(1)):
            try:
                call()
            except RecursionError:
                raise AssertionError("RecursionError")
            except RuntimeError:
                pass
            else:
                raise AssertionError("no RuntimeError")
        """
    )


def test_recursion_with_different_keys_across_threads():
    run_isolated(
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        import cachebox
        threads = set()

        @cachebox.cached(None)
        def fact(n):
            threads.add(threading.get_ident())
            if n <= 1:
                return 1
            with ThreadPoolExecutor(1) as pool:
                return n * pool.submit(fact, n - 1).result(timeout=30)

        assert fact(8) == 40320
        assert len(threads) == 8
        assert fact.cache_info()[:2] == (0, 8)
        assert fact(8) == 40320
        """
    )
