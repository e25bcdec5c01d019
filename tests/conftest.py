"""Shared pytest configuration.

The TTL clock is frozen for the whole run: only ``cachebox._core._advance_clock`` moves it, so
every expiry a test checks (against a model or an expected instant) comes out the same however
slowly the machine runs. A test that needs the real clock running asks for the
``running_clock`` fixture and asserts with margins that hold on a loaded machine.

Hypothesis profiles (chosen with the environment variable ``CACHEBOX_HYPOTHESIS_PROFILE``):
- ``ci`` (default): sized so that ``tests/test_stateful.py`` runs in about a minute on 2 cores;
  it stops at the first bug found, so that shrinking one failure bounds the time a red run takes;
- ``slow``: ten times as many examples (about ten times the run time), reporting every distinct
  bug, for soak runs.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from cachebox._core import _freeze_clock

# A Rust panic prints a backtrace when RUST_BACKTRACE is set; hypothesis replays a failing
# example hundreds of times while shrinking, and symbolizing each backtrace is slow.
os.environ["RUST_BACKTRACE"] = "0"

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile(
    "ci", max_examples=200, stateful_step_count=100, report_multiple_bugs=False, **_COMMON
)
settings.register_profile("slow", max_examples=2000, stateful_step_count=100, **_COMMON)
settings.load_profile(os.environ.get("CACHEBOX_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True, scope="session")
def _frozen_clock():
    _freeze_clock(True)
    yield
    _freeze_clock(False)


@pytest.fixture
def running_clock():
    """The real clock, running, for this test only."""
    _freeze_clock(False)
    yield
    _freeze_clock(True)


@pytest.fixture(scope="session")
def redis_server():
    """A private redis-server for the whole run (the shared tier's tests)."""
    from redis_servers import RedisServer

    server = RedisServer()
    yield server
    server.close()


@pytest.fixture
def fresh_redis_server():
    """A private redis-server for one test, which may kill, pause or restart it."""
    from redis_servers import RedisServer

    server = RedisServer()
    yield server
    server.close()
