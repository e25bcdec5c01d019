"""The subprocess harness itself (``subprocess_harness.py``): it must be able to fail, for each
kind of use, and a hung child must leave its stacks in the failure message."""

import pytest

try:
    from .subprocess_harness import HANG_TIMEOUT, assert_child_ok, check_child, run_code, run_isolated
except ImportError:
    from subprocess_harness import HANG_TIMEOUT, assert_child_ok, check_child, run_code, run_isolated


def test_run_isolated_reports_failures():
    # the helper itself must be able to fail
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_isolated("1 / 0")
    with pytest.raises(AssertionError, match="exit code 3"):
        run_isolated("import sys; sys.exit(3)")
    run_isolated("assert 1 + 1 == 2")


def test_run_isolated_needs_the_code_to_run_to_its_end_quietly():
    # os._exit(0) skips the completion marker: a clean status alone is not enough
    with pytest.raises(AssertionError, match="no completion marker"):
        run_isolated("import os; os._exit(0)")
    # a worker thread's uncaught exception goes to stderr only
    with pytest.raises(AssertionError, match="(?s)output on stderr.*in thread"):
        run_isolated(
            """
            import threading
            def fail():
                raise AssertionError("in thread")
            t = threading.Thread(target=fail)
            t.start()
            t.join()
            """
        )
    assert run_isolated("print('a'); print('b')") == ["a", "b"]


def test_assert_child_ok_reports_failures():
    # a module function, run by name: an error, output on stderr, or an early exit all fail
    with pytest.raises(
        AssertionError, match=r"(?s)operator.truediv\(1, 0\): exit code 1\n.*ZeroDivisionError"
    ):
        assert_child_ok("operator", "truediv", 1, 0)
    with pytest.raises(AssertionError, match="output on stderr"):
        assert_child_ok("warnings", "warn", "careful")
    with pytest.raises(AssertionError, match="exit code 4"):
        assert_child_ok("sys", "exit", 4)
    assert assert_child_ok("builtins", "print", "printed", "line") == ["printed line"]


def test_a_hung_child_dumps_its_stacks():
    # A child waiting forever, told to dump its stacks and exit after a second instead of
    # shortly before the timeout: what every hung child does, only sooner.
    child = run_code("import threading\nthreading.Event().wait()", timeout=HANG_TIMEOUT, dump_after=1)
    with pytest.raises(AssertionError, match="hung") as failure:
        check_child(child, "waiter")
    assert child.stderr.startswith("Timeout (")
    assert "in wait" in child.stderr
    assert "in wait" in str(failure.value)
