"""Re-entrancy and lock-discipline tests (BEHAVIOUR.md §14).

Python code that runs while a cache is locked (a key's ``__eq__``, a GC pass it triggers) and
Python code that runs because of a cache operation (``__del__`` of a removed value, the iterable
given to ``update``) may call back into the same cache. That must raise ``RuntimeError`` or
work, and never hang. Every scenario runs in a child interpreter with a timeout
(``subprocess_harness.assert_child_ok``); the ``child_*`` functions are what the children run.
"""

import gc
import json
import threading
import time
import weakref

import pytest

try:
    from .cache_helpers import CLASS_NAMES, PYPY, collect_if_pypy, make_cache
    from .subprocess_harness import assert_child_ok
except ImportError:
    from cache_helpers import CLASS_NAMES, PYPY, collect_if_pypy, make_cache
    from subprocess_harness import assert_child_ok


class CollidingKey:
    """Keys that all share one hash, so a lookup runs ``__eq__`` (under the cache lock) against
    every stored ``CollidingKey``. ``__eq__`` first runs the class-wide hook ``on_eq``."""

    on_eq = None

    def __init__(self, n, hash_value=12345):
        self.n = n
        self.hash_value = hash_value

    def __hash__(self):
        return self.hash_value

    def __eq__(self, other):
        if CollidingKey.on_eq is not None:
            CollidingKey.on_eq()
        return isinstance(other, CollidingKey) and self.n == other.n

    def __repr__(self):
        return f"CollidingKey({self.n})"


def _outcome(fn):
    try:
        fn()
    except RuntimeError:
        return "RuntimeError"
    except BaseException as e:  # noqa: BLE001 (reported to the test, which fails on it)
        return repr(e)
    return "no error"


# ---------------------------------------------------------------------------------------------
# A key's __eq__ re-enters the cache
# ---------------------------------------------------------------------------------------------

INNER_CALLS = ("len", "get", "insert", "iterate")


def child_eq_reenters(name, inner):
    """For each outer operation, a probe key's ``__eq__`` calls ``inner`` on the same cache
    while the outer operation holds its lock. Prints, per outer operation, how it ended and
    whether the cache was intact and usable afterwards."""
    c = make_cache(name, 10)
    stored = CollidingKey(1)
    c[stored] = "one"
    c[0] = 0
    inner_calls = {
        "len": lambda: len(c),
        "get": lambda: c.get(0),
        "insert": lambda: c.insert(99, 99),
        "iterate": lambda: list(c.items()),
    }
    outer_calls = {
        "getitem": lambda p: c[p],
        "get": lambda p: c.get(p),
        "contains": lambda p: p in c,
        "pop": lambda p: c.pop(p),
        "delitem": lambda p: c.__delitem__(p),
        "setitem": lambda p: c.__setitem__(p, 1),
        "insert": lambda p: c.insert(p, 1),
        "setdefault": lambda p: c.setdefault(p, 1),
        "update": lambda p: c.update({p: 1}),
    }
    report = {}
    for outer_name, outer in outer_calls.items():
        CollidingKey.on_eq = inner_calls[inner]
        try:
            result = _outcome(lambda: outer(CollidingKey(2)))  # noqa: B023 (called right here)
        finally:
            CollidingKey.on_eq = None
        intact = len(c) == 2 and c[stored] == "one" and c.get(0) == 0 and 99 not in c
        report[outer_name] = [result, intact]
    print(json.dumps(report))


@pytest.mark.parametrize("inner", INNER_CALLS)
@pytest.mark.parametrize("name", CLASS_NAMES)
def test_key_eq_reentering_the_cache_raises_runtime_error(name, inner):
    (line,) = assert_child_ok("test_reentrancy", "child_eq_reenters", name, inner)
    report = json.loads(line)
    expected = {outer: ["RuntimeError", True] for outer in report}
    assert len(report) == 9
    assert report == expected, "outer operation -> [how it ended, cache intact afterwards]"


# ---------------------------------------------------------------------------------------------
# A removed value's __del__ uses the cache
# ---------------------------------------------------------------------------------------------


def child_del_uses_cache(name):
    """Values whose ``__del__`` reads and writes the cache they are being removed from, for
    every way a value can leave a cache. Prints the events whose operation raised, whose
    ``__del__`` failed, or whose value was never dropped."""
    c = make_cache(name, 0 if name == "Cache" else 3)
    log = []

    class Noisy:
        def __del__(self):
            try:
                len(c)
                c.get("absent")
                c["from_del"] = 1
                log.append("ok")
            except BaseException as e:  # noqa: BLE001 (reported to the test, which fails on it)
                log.append(repr(e))

    def evict():
        c["victim"] = Noisy()
        for i in range(200):  # RR evicts at random: insert until the Noisy value goes
            c[f"filler{i}"] = i
            if log:
                break

    events = {
        "replace": lambda: (c.__setitem__("victim", Noisy()), c.__setitem__("victim", 2)),
        "update": lambda: (c.__setitem__("victim", Noisy()), c.update({"victim": 3})),
        "pop": lambda: (c.__setitem__("victim", Noisy()), c.pop("victim")),
        "delitem": lambda: (c.__setitem__("victim", Noisy()), c.__delitem__("victim")),
        "clear": lambda: (c.__setitem__("victim", Noisy()), c.clear()),
        "clear_reuse": lambda: (c.__setitem__("victim", Noisy()), c.clear(reuse=True)),
    }
    if name != "Cache":
        events.update(
            evict=evict,
            popitem=lambda: (c.clear(), c.__setitem__("victim", Noisy()), c.popitem()),
            drain=lambda: (c.clear(), c.__setitem__("victim", Noisy()), c.drain(5)),
        )
    problems = {}
    for event, run in events.items():
        log.clear()
        result = _outcome(run)
        collect_if_pypy()  # PyPy runs __del__ when its collector frees the value
        if result != "no error" or log != ["ok"]:
            problems[event] = [result, list(log)]
    print(json.dumps(problems))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_del_of_a_removed_value_may_use_the_cache(name):
    (line,) = assert_child_ok("test_reentrancy", "child_del_uses_cache", name)
    assert json.loads(line) == {}, "event -> [how the operation ended, what __del__ logged]"


# ---------------------------------------------------------------------------------------------
# update() with the cache itself or with an iterable that uses the cache
# ---------------------------------------------------------------------------------------------


def child_update_self(name):
    c = make_cache(name, 10)
    c.update({1: "a", 2: "b", "k": 3})
    before = sorted(c.items(), key=repr)
    c.update(c)
    assert sorted(c.items(), key=repr) == before, "c.update(c) must be a no-op"
    assert len(c) == 3


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_update_with_itself_is_a_no_op(name):
    assert_child_ok("test_reentrancy", "child_update_self", name)


def child_update_with_reentrant_iterables(name):
    """``update`` consuming iterables that read or write the same cache. Prints one line per
    case as soon as it is done (so a hang shows which case hung): ``[case, "ok"]`` (then the
    contents are what pair-by-pair inserts give), ``[case, "RuntimeError"]``, or a
    description of anything else."""

    def case(label, fill, make_iterable, expected):
        c = make_cache(name, 0)
        c.update(fill)
        try:
            c.update(make_iterable(c))
        except RuntimeError:
            result = "RuntimeError"
        except BaseException as e:  # noqa: BLE001 (reported to the test, which fails on it)
            result = repr(e)
        else:
            contents = dict(c.items())
            result = "ok" if contents == expected else f"ok but contents {contents!r}"
        print(json.dumps([label, result]), flush=True)

    def reads_previous(c):
        for i in range(5):
            yield i, c.get(i - 1, 0) + 1

    def asks_len(c):
        for i in range(4):
            yield i, len(c)

    def writes_while_iterated(c):
        for i in range(3):
            c[100 + i] = i
            yield i, i

    case("reads_previous", {}, reads_previous, {0: 1, 1: 2, 2: 3, 3: 4, 4: 5})
    case("asks_len", {}, asks_len, {0: 0, 1: 1, 2: 2, 3: 3})
    case("writes_while_iterated", {}, writes_while_iterated, {100: 0, 0: 0, 101: 1, 1: 1, 102: 2, 2: 2})
    case(
        "new_keys_from_own_items",
        {1: 1, 2: 2},
        lambda c: ((k + 10, v) for k, v in c.items()),
        {1: 1, 2: 2, 11: 1, 12: 2},
    )
    case("own_items", {1: 1, 2: 2}, lambda c: c.items(), {1: 1, 2: 2})


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_update_with_an_iterable_using_the_cache_never_hangs(name):
    lines = assert_child_ok("test_reentrancy", "child_update_with_reentrant_iterables", name)
    report = dict(json.loads(line) for line in lines)
    assert len(report) == 5
    bad = {case: how for case, how in report.items() if how not in ("ok", "RuntimeError")}
    assert bad == {}, "each case must work (with the right contents) or raise RuntimeError"


# ---------------------------------------------------------------------------------------------
# Garbage collection while the cache is locked
# ---------------------------------------------------------------------------------------------


class _Tracked:
    pass


def child_gc_inside_eq(name):
    """``gc.collect()`` runs inside a key's ``__eq__`` while the cache is locked (a traversal
    must not block: BEHAVIOUR.md §14.5). Garbage that includes another cache, and the locked cache's own
    self-reference, are traversed; a collected object's ``__del__`` that uses the locked cache
    gets ``RuntimeError``."""
    gc.disable()  # only the collection inside __eq__ may find the garbage
    c = make_cache(name, 0)
    c["self"] = c
    del_log = []

    class Finalized:
        def __del__(self):
            try:
                len(c)
                del_log.append("no error")
            except RuntimeError:
                del_log.append("RuntimeError")

    # Garbage: a cache in a reference cycle, holding a tracked object and a finalizer. PyPy never
    # collects a cycle through an extension object, so there the cycle is a dict's.
    g = {} if PYPY else make_cache(name, 0)
    g["self"] = g
    tracked = _Tracked()
    g["tracked"] = tracked
    g["finalizer"] = Finalized()
    g["finalizer"].cycle = g
    garbage_ref = weakref.ref(tracked)
    del g, tracked

    c[CollidingKey(1, 777)] = "one"
    collected = []

    def collect():
        collected.append(gc.collect())

    CollidingKey.on_eq = collect
    try:
        found = c.get(CollidingKey(2, 777), "missing")
    finally:
        CollidingKey.on_eq = None
    assert collected and found == "missing", (collected, found)
    assert garbage_ref() is None, "the unreachable cache cycle was not collected"
    assert del_log == ["RuntimeError"], del_log
    assert len(c) == 2 and c["self"] is c


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_gc_collect_inside_eq_does_not_deadlock(name):
    assert_child_ok("test_reentrancy", "child_gc_inside_eq", name)


# ---------------------------------------------------------------------------------------------
# Cross-thread: the lock holder gives up the GIL inside __eq__
# ---------------------------------------------------------------------------------------------


def child_slow_eq_with_hammering_thread(name):
    """Two threads look up colliding keys whose ``__eq__`` sleeps (giving up the GIL while
    the cache is locked) while a third thread hammers the same cache and a fourth just counts.
    A thread that waited for the cache lock while keeping the GIL would deadlock this
    (BEHAVIOUR.md §14.4). Prints the work each thread finished."""
    c = make_cache(name, 0)

    class SleepyKey(CollidingKey):
        def __eq__(self, other):
            time.sleep(0.001)
            return super().__eq__(other)

        __hash__ = CollidingKey.__hash__

    for i in range(5):
        c[SleepyKey(i, 4242)] = i
    done = threading.Event()
    progress = {"slow": 0, "hammer": 0, "ticks": 0}

    def slow():
        for _ in range(40):
            assert c.get(SleepyKey(99, 4242), "miss") == "miss"
            progress["slow"] += 1

    def hammer():
        for i in range(3000):
            c[i % 50] = i
            c.get(i % 50)
            progress["hammer"] += 1

    def ticker():
        while not done.is_set():
            progress["ticks"] += 1
            time.sleep(0.0005)

    workers = [threading.Thread(target=f) for f in (slow, slow, hammer)]
    tick = threading.Thread(target=ticker)
    tick.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    tick.join()
    print(json.dumps(progress))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_lock_waiters_do_not_hold_the_gil(name):
    (line,) = assert_child_ok("test_reentrancy", "child_slow_eq_with_hammering_thread", name)
    progress = json.loads(line)
    assert progress["slow"] == 80 and progress["hammer"] == 3000, progress
    assert progress["ticks"] > 0, progress


# ---------------------------------------------------------------------------------------------
# Cache-to-cache equality whose key/value __eq__ uses the caches
# ---------------------------------------------------------------------------------------------


class _ReentrantValue:
    """A value whose ``__eq__`` asks both caches for their length."""

    caches = ()

    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        for cache in _ReentrantValue.caches:
            len(cache)
        return isinstance(other, _ReentrantValue) and self.n == other.n

    __hash__ = None


def child_equality_reentrant(name):
    """``a == b`` where value and key ``__eq__`` call ``len`` on both caches: must give the
    right answer or raise RuntimeError, never hang. Prints both outcomes."""
    a, b = make_cache(name, 0), make_cache(name, 0)
    _ReentrantValue.caches = (a, b)
    a[1] = _ReentrantValue(1)
    b[1] = _ReentrantValue(1)
    report = {}
    try:
        report["values"] = a == b
    except RuntimeError:
        report["values"] = "RuntimeError"
    a2, b2 = make_cache(name, 0), make_cache(name, 0)
    a2[CollidingKey(1, 555)] = 1
    b2[CollidingKey(1, 555)] = 1  # equal but distinct: probing b2 runs __eq__
    CollidingKey.on_eq = lambda: (len(a2), len(b2))
    try:
        report["keys"] = a2 == b2
    except RuntimeError:
        report["keys"] = "RuntimeError"
    finally:
        CollidingKey.on_eq = None
    print(json.dumps(report))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_cache_equality_with_reentrant_eq_never_hangs(name):
    (line,) = assert_child_ok("test_reentrancy", "child_equality_reentrant", name)
    report = json.loads(line)
    assert report["values"] in (True, "RuntimeError"), report
    assert report["keys"] in (True, "RuntimeError"), report


# ---------------------------------------------------------------------------------------------
# A decorated function's calls in flight: a key's __eq__ ends one of them
# ---------------------------------------------------------------------------------------------


def child_eq_abandons_an_async_leader():
    """A key's ``__eq__``, run while the decorated function's calls in flight are locked,
    drops the last reference to an async leader, which abandons its call from inside that
    lock. The call must still leave: a later caller of its key computes the value instead of
    following the finished call forever."""
    import asyncio

    import cachebox

    @cachebox.cached(None, key_maker=lambda args, kwds: args[0])
    async def func(x):
        await asyncio.sleep(0)
        return x

    holder = []

    class DropsTheLeader:
        def __hash__(self):
            return hash(1)  # meets the call in flight for 1

        def __eq__(self, other):
            holder.clear()
            # PyPy abandons the dropped leader only when its collector frees it: collect here,
            # so that it still happens under the lock.
            collect_if_pypy()
            return False

    async def main():
        leader = func(1)
        leader.send(None)  # leads the call for 1, suspended in the sleep
        holder.append(leader)
        del leader
        key = DropsTheLeader()
        assert await func(key) is key
        assert cachebox._core._followers(func) == 0
        # Another task, so that a call left behind would be followed, not refused as recursion.
        return await asyncio.ensure_future(func(1))

    assert asyncio.run(main()) == 1
    assert func.cache_info()[:2] == (0, 2)


def test_a_call_abandoned_under_the_pending_lock_leaves_the_map():
    assert_child_ok("test_reentrancy", "child_eq_abandons_an_async_leader")
