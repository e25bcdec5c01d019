"""Bad input: every public constructor, method, decorator and key maker called with malformed
arguments gets a Python exception of a sensible type (the one BEHAVIOUR.md §15.1 names, where
it names one), never a Rust panic (``pyo3_runtime.PanicException``), a ``SystemError``, an
abort or a hang, and the cache stays consistent afterwards (``nasty.assert_consistent``).

Every check runs in a child interpreter with a timeout (``subprocess_harness.assert_child_ok``),
so an abort or a hang fails one test. The checks live in ``bad_input_checks.py`` (table-driven batteries
that list every problem they find) and, for the hypothesis sequences of operations with "nasty"
arguments, below.

What is covered:
- numbers (NaN, +-inf, negative, zero, 2**63, 2**64, 10**100, non-numbers, raising
  ``__index__``/``__float__``) for maxsize, capacity, maxmemory, ttl (constructors, VTTL
  insert/setdefault/update), drain, first, least_frequently_used;
- keys: unhashable, ``__hash__`` raising / returning huge or non-int values / running GC,
  ``__eq__`` raising / returning non-bools (also ones whose ``__bool__`` raises) / re-entering
  the cache / running GC, for every method that takes a key, the constructors and the wrappers;
- ``__sizeof__`` raising, negative, non-int, 2**62, 2**70, bool, zero, re-entering;
- malformed ``__setstate__`` states, truncated pickles (every prefix) and random byte flips;
- wrong arity and unknown keywords for every public method, methods of an instance whose
  ``__init__`` never ran, ``Frozen``, ``BaseCacheImpl``, ``cached``/``cachedmethod``/``is_cached``,
  wrapper calls, ``cache_info``/``cache_clear``, the three key makers, ``update`` iterables.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

try:
    from .cache_helpers import CLASS_NAMES, make_cache
    from .subprocess_harness import HANG_TIMEOUT, assert_child_ok
except ImportError:
    from cache_helpers import CLASS_NAMES, make_cache
    from subprocess_harness import HANG_TIMEOUT, assert_child_ok


def run_battery(function, *args):
    """Runs ``bad_input_checks.function(*args)`` in a child; fails listing every problem."""
    lines = assert_child_ok("bad_input_checks", function, *args)
    problems = [line[len("PROBLEM: ") :] for line in lines if line.startswith("PROBLEM: ")]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
    return lines


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_numbers(name):
    run_battery("battery_numbers", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_bad_keys(name):
    run_battery("battery_keys", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_bad_sizeof(name):
    run_battery("battery_sizes", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_malformed_setstate(name):
    run_battery("battery_setstate", name)


def test_ttl_state_with_expiry_beyond_ttl():
    run_battery("battery_ttl_state_expiry_beyond_ttl")


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_truncated_and_corrupted_pickles(name):
    lines = run_battery("battery_pickle_corruption", name)
    # The flips must exercise loading, not only the pickle module's own checks.
    loaded = [int(line.split()[1]) for line in lines if line.startswith("INFO: ")]
    assert loaded and loaded[0] > 0, lines


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_signatures_and_unconfigured_instances(name):
    run_battery("battery_signatures", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_bad_iterables(name):
    run_battery("battery_iterables", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_odd_limits(name):
    run_battery("battery_limits_consistency", name)


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_gc_inside_callbacks(name):
    run_battery("battery_gc_during_ops", name)


def test_frozen_and_base():
    run_battery("battery_frozen_base")


def test_decorators():
    run_battery("battery_decorators")


def test_key_makers():
    run_battery("battery_key_makers")


# --------------------------------------------------------------------------------------------
# Hypothesis: sequences of operations with nasty arguments
# --------------------------------------------------------------------------------------------


def nasty_objects():
    """Keys and values of every kind: plain, unhashable, and ``Nasty`` in every mode."""
    import nasty

    # ASCII text only: a non-ASCII str grows (``__sizeof__`` counts its cached UTF-8 copy) the
    # first time something encodes it, e.g. pickle, after the cache charged its size.
    ascii_text = st.text(alphabet="ab#", max_size=2)
    plain = st.one_of(
        st.integers(-3, 12),
        ascii_text,
        st.floats(allow_nan=True, allow_infinity=True),
        st.none(),
        st.tuples(st.integers(0, 3), ascii_text),
    )
    unhashable = st.one_of(st.builds(list), st.builds(dict), st.builds(set), st.builds(lambda: (1, [])))
    bad = st.builds(
        nasty.Nasty,
        ident=st.integers(0, 5),
        hash_mode=st.sampled_from(nasty.HASH_MODES),
        eq_mode=st.sampled_from(nasty.EQ_MODES),
        size_mode=st.sampled_from(nasty.SIZE_MODES),
    )
    return st.one_of(plain, plain, unhashable, bad, bad, st.tuples(bad, plain))


NUMBERS = st.one_of(
    st.integers(-3, 8),
    st.sampled_from([math.nan, math.inf, -math.inf, 2**63, 2**64, 10**100, -(2**63), 1.5, "3", None, 3600.0]),
)


def run_nasty_sequences(name, examples):
    """Child side: ``examples`` hypothesis sequences of 5 to 30 operations on a ``name`` with
    nasty keys, values and numbers; every operation raises an allowed exception or works, and
    the cache is consistent after each one and usable at the end."""
    import nasty

    import cachebox

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(
        maxsize=st.integers(0, 6),
        maxmemory=st.sampled_from([0, 0, 300, 10**6]),
        ops=st.lists(
            st.tuples(
                st.sampled_from((*nasty.ops_for(name), "call")), nasty_objects(), nasty_objects(), NUMBERS
            ),
            min_size=5,
            max_size=30,
        ),
    )
    def sequences(maxsize, maxmemory, ops):
        cache = make_cache(name, maxsize, maxmemory=maxmemory)
        wrapper = cachebox.cached(cache)(lambda *args: args)
        nasty.TARGET[0] = cache
        try:
            for op, key, value, number in ops:
                if op == "call":
                    nasty.apply_call(wrapper, key, value)
                else:
                    nasty.apply_op(cache, op, key, value, number)
                nasty.assert_consistent(cache, probe=False)
            nasty.assert_consistent(cache, probe=True)
        finally:
            nasty.TARGET[0] = None

    sequences()


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_nasty_operation_sequences(name):
    assert_child_ok("test_bad_input", "run_nasty_sequences", name, 150, timeout=HANG_TIMEOUT * 2)
