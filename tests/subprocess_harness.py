"""Running test code in a fresh interpreter, so that a hang, a deadlock or a crash fails one
test instead of stalling or killing the run.

One runner, :func:`run_code`, serves both kinds of use:

- a code string: :func:`run_isolated`; :func:`run_threads` and :func:`run_async_isolated` put
  a prelude of shared helpers (:data:`ARRIVALS`, :data:`ASYNC_ARRIVALS`) before it;
- a function of a module of this directory: :func:`assert_child_ok` hands the runner the code
  that imports the module and calls the function.

Either way the child runs in this directory with it first on ``sys.path``, with
``RUST_BACKTRACE=0`` (panic reports stay short), prints a completion marker as its last line,
and dumps every thread's stack and exits (``faulthandler``) :data:`DUMP_MARGIN` seconds before
the timeout, so the failure message of a hang shows where it is stuck. It passes only if it
exits with status 0 after printing the marker, and writes nothing on stderr.

This module imports nothing but the standard library, so a child interpreter that imports it
starts fast.
"""

import os
import subprocess
import sys
import textwrap
from typing import NamedTuple

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

#: Seconds a child interpreter may run before it counts as hung. Generous: it only catches a
#: hang or a deadlock, and a loaded machine runs a child many times slower than a quiet one.
HANG_TIMEOUT = 120

#: Seconds before the timeout at which a hung child dumps its threads' stacks and exits.
DUMP_MARGIN = 10

#: The last line a child prints when its code ran to the end.
DONE = "__cachebox_child_done__"

#: How ``faulthandler`` starts the stack dump of a child that ran out of time.
_DUMP_HEADER = "Timeout ("


class Child(NamedTuple):
    """What a child interpreter left: its exit code (``"timeout"`` if it had to be killed),
    its standard output and its standard error."""

    returncode: object
    stdout: str
    stderr: str


def _text(output):
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""


def run_code(code, timeout=HANG_TIMEOUT, flags=(), dump_after=None):
    """Runs ``code`` (a string of statements, not indented) in a fresh interpreter started with
    the command-line ``flags`` (``("-O",)``, say). Returns a :class:`Child`. The child dumps
    its stacks and exits after ``dump_after`` seconds (default: :data:`DUMP_MARGIN` before the
    timeout)."""
    if dump_after is None:
        dump_after = max(timeout - DUMP_MARGIN, 1)
    source = "\n".join(
        [
            "import faulthandler, sys",
            f"sys.path.insert(0, {TESTS_DIR!r})",
            f"faulthandler.dump_traceback_later({dump_after}, exit=True)",
            code,
            "faulthandler.cancel_dump_traceback_later()",
            f"print({DONE!r}, flush=True)",
        ]
    )
    env = dict(os.environ, RUST_BACKTRACE="0")
    try:
        proc = subprocess.run(
            [sys.executable, *flags, "-c", source],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=TESTS_DIR,
        )
    except subprocess.TimeoutExpired as e:  # pragma: no cover - only if even the dump hung
        stderr = _text(e.stderr) + f"\n[did not finish within {timeout} s, nor dump its stacks]"
        return Child("timeout", _text(e.stdout), stderr)
    return Child(proc.returncode, proc.stdout, proc.stderr)


def check_child(child, label):
    """Fails unless ``child`` exited with status 0 after printing :data:`DONE` last and wrote
    nothing on stderr (where a warning, or a thread's uncaught exception, would go). Returns
    the lines printed before the marker."""
    lines = child.stdout.splitlines()
    notes = []
    if child.returncode != 0:
        if _DUMP_HEADER in child.stderr or child.returncode == "timeout":
            notes.append("hung: the stacks on stderr show where")
    elif not lines or lines[-1] != DONE:
        notes.append("no completion marker last on stdout")
    elif child.stderr.strip():
        notes.append("output on stderr")
    else:
        return lines[:-1]
    raise AssertionError(
        f"{label}: exit code {child.returncode}"
        + "".join(f"; {n}" for n in notes)
        + f"\n--- stdout ---\n{child.stdout[-6000:]}\n--- stderr ---\n{child.stderr[-6000:]}"
    )


def run_isolated(code, timeout=HANG_TIMEOUT, flags=()):
    """Runs ``code`` (dedented) in a fresh interpreter and asserts a clean exit (see
    :func:`check_child`). Returns the lines ``code`` printed."""
    return check_child(run_code(textwrap.dedent(code), timeout, flags), "subprocess")


def assert_child_ok(module, function, *args, timeout=HANG_TIMEOUT):
    """Runs ``module.function(*args)`` (a module of this directory) in a fresh interpreter and
    asserts a clean exit (see :func:`check_child`). Returns the lines the function printed."""
    code = f"import {module}\n{module}.{function}(*{args!r})"
    return check_child(run_code(code, timeout), f"{module}.{function}{args!r}")


# Code shared by the thread tests of the decorators: a key maker of the user's own (so calls
# take the general path), and a way for a leader to wait until the other callers follow its
# computation. A follower shares the leader's outcome whenever the leader finishes, so the
# tests wait for that state itself (``_followers``), never for a time that a slow machine may
# overrun.
ARRIVALS = """
import threading, time, sys
import cachebox
from cachebox import EVENT_HIT, EVENT_MISS
from cachebox._core import _followers

def own_key_maker(args, kwds):
    return cachebox.make_key(args, kwds)

def wait_for_followers(func, n):
    deadline = time.monotonic() + 60
    while _followers(func) < n:
        assert time.monotonic() < deadline, "only %d of %d followers came" % (_followers(func), n)
        time.sleep(0.001)
"""


def run_threads(code):
    """:func:`run_isolated` with :data:`ARRIVALS` before ``code``."""
    run_isolated(ARRIVALS + textwrap.dedent(code))


# Code shared by the concurrent tests of the async decorators: a key maker counting the callers
# that reached the per-key lock, and a helper that lets every ready task run until they are all
# queued on it.
ASYNC_ARRIVALS = """
import asyncio, sys
import cachebox
from cachebox import EVENT_HIT, EVENT_MISS

arrived = 0

def counting_key_maker(args, kwds):
    global arrived
    arrived += 1
    return cachebox.make_key(args, kwds)

async def wait_for_arrivals(n):
    for _ in range(100000):
        if arrived >= n:
            break
        await asyncio.sleep(0)
    else:
        raise AssertionError("only %d of %d callers arrived" % (arrived, n))
    for _ in range(20):          # let them get from the key maker to the per-key lock
        await asyncio.sleep(0)

def reset_arrivals():
    global arrived
    arrived = 0

def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))
"""


def run_async_isolated(code):
    """:func:`run_isolated` with :data:`ASYNC_ARRIVALS` before ``code``."""
    run_isolated(ASYNC_ARRIVALS + textwrap.dedent(code))
