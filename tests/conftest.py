"""Shared pytest configuration.

Hypothesis profiles (chosen with the environment variable ``CACHEBOX_HYPOTHESIS_PROFILE``):
- ``ci`` (default): sized so that ``tests/test_stateful.py`` runs in about a minute on 2 cores;
  it stops at the first bug found, so that shrinking one failure bounds the time a red run takes;
- ``slow``: ten times as many examples (about ten times the run time), reporting every distinct
  bug, for soak runs.
"""

import os

from hypothesis import HealthCheck, settings

# A Rust panic prints a backtrace when RUST_BACKTRACE is set; hypothesis replays a failing
# example hundreds of times while shrinking, and symbolizing each backtrace is slow.
os.environ["RUST_BACKTRACE"] = "0"

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

settings.register_profile(
    "ci", max_examples=200, stateful_step_count=100, report_multiple_bugs=False, **_COMMON
)
settings.register_profile("slow", max_examples=2000, stateful_step_count=100, **_COMMON)
settings.load_profile(os.environ.get("CACHEBOX_HYPOTHESIS_PROFILE", "ci"))
