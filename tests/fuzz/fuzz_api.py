# ruff: noqa: B023 (every lambda below is called before its loop moves on)
"""Fuzz harness over cachebox's Python API: no input may crash it (BEHAVIOUR.md §15).

Each input is decoded into a cache (one of the seven classes, with fuzzed limits), a ``cached``
wrapper and a ``Frozen`` view over it, then a sequence of up to 64 operations with fuzzed keys,
values and numbers: plain objects, unhashable ones, and ``Nasty`` objects whose ``__hash__``,
``__eq__`` or ``__sizeof__`` raise, return nonsense, re-enter the cache or run the GC (see
``tests/nasty.py``). After every operation the cache must be consistent
(``nasty.assert_consistent``). A crash is any exception outside ``nasty.ALLOWED`` (a
``PanicException``, a ``SystemError``, ...) or a failed invariant (``AssertionError``).

Two ways to run it:

- with atheris (libFuzzer, coverage-guided on the Python side; the extension is not
  instrumented): ``python tests/fuzz/fuzz_api.py [libFuzzer flags] [corpus dir]``, e.g.
  ``-max_total_time=600``;
- without atheris, as a deterministic random-input smoke test: ``python tests/fuzz/fuzz_api.py
  --smoke SECONDS [--seed N]`` feeds inputs from a seeded RNG until the time is up, and on a
  failure prints the input (hex) and exits 1; ``--replay FILE`` runs one saved input.
"""

import argparse
import math
import os
import pickle
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for nasty.py and cache_helpers.py

os.environ.setdefault("RUST_BACKTRACE", "0")

import nasty
from cache_helpers import CLASS_NAMES, make_cache

import cachebox
from cachebox._core import _advance_clock

CLASSES = CLASS_NAMES
MAX_OPS = 64
#: FUZZ_TRACE=1 prints every operation (to replay a failure).
TRACE = bool(os.environ.get("FUZZ_TRACE"))
#: Operations run so far (reported by the smoke run).
STATS = {"ops": 0}

NUMBERS = (
    0, 1, 2, 3, 5, -1, -2, 7, 100, 3600, 3600.0, 0.5, 1e-300, 1.5,
    math.nan, math.inf, -math.inf, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64, 10**100, -(2**63),
    "3", None, True, b"x",
)  # fmt: skip
PLAIN = (
    0, 1, 2, 3, 7, 7.0, -1, 255, 256, 2**40, 2**64 + 7, 0.5, -0.0, math.nan, math.inf,
    "", "a", "b", "ab", "#", None, True, False, (), (1,), (1, "a"), ((7,),), b"", b"k", frozenset({1}),
)  # fmt: skip
MAXMEMORY = (0, 0, 0, 1, 60, 200, 1000, 10**6, 2**62)


class Reader:
    """Decodes fuzz bytes; past the end every read gives 0."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def more(self):
        return self.pos < len(self.data)

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def pick(self, seq):
        return seq[self.byte() % len(seq)]

    def number(self):
        b = self.byte()
        if b < 128:
            return NUMBERS[b % len(NUMBERS)]
        return b - 192  # small ints, negative ones included

    def obj(self, depth=0):
        b = self.byte()
        kind = b % 8
        if kind <= 2:
            return PLAIN[self.byte() % len(PLAIN)]
        if kind == 3:
            return self.byte() - 64
        if kind == 4:
            return self.pick((list, dict, set, bytearray, lambda: (1, [])))()
        if kind == 5 and depth < 2:
            return (self.obj(depth + 1), self.obj(depth + 1))
        return nasty.Nasty(
            self.byte() % 6,
            hash_mode=self.pick(nasty.HASH_MODES),
            eq_mode=self.pick(nasty.EQ_MODES),
            size_mode=self.pick(nasty.SIZE_MODES),
        )


KEY_MAKERS = (
    None,
    cachebox.make_key,
    cachebox.make_hash_key,
    cachebox.make_typed_key,
    lambda a, k: a[0] if a else 0,
)
EXTRA_OPS = ("call", "frozen_read", "frozen_write", "advance", "restore", "setstate", "info", "clear_wrapper")
OPS = {name: nasty.ops_for(name) + EXTRA_OPS for name in CLASSES}


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def allowed(fn, label, also=()):
    """Runs ``fn``; an exception outside ``nasty.ALLOWED`` (and ``also``) is a crash."""
    try:
        return fn()
    except BaseException as e:
        if nasty.is_forbidden(e) or not isinstance(e, nasty.ALLOWED + also):
            raise AssertionError(f"{label}: {nasty.describe(e)}") from e
        return None


def fuzzed_state(r, cache):
    """A state shaped like ``__getstate__``'s, with fuzzed fields (often malformed)."""
    with nasty.disarmed():
        good = cache.__getstate__()
    fields = list(good)
    for _ in range(r.byte() % 3):
        i = r.byte() % 6
        if i == 3:
            items = list(fields[3])
            for _ in range(r.byte() % 4):
                items.append((r.obj(), r.obj(), r.number()))
            fields[3] = items
        else:
            fields[i] = r.number()
    return tuple(fields)


def one_input(data):
    r = Reader(data)
    name = CLASSES[r.byte() % len(CLASSES)]
    maxsize = r.byte() % 9
    maxmemory = MAXMEMORY[r.byte() % len(MAXMEMORY)]
    cache = make_cache(name, maxsize, maxmemory=maxmemory)
    wrapper = cachebox.cached(cache, key_maker=r.pick(KEY_MAKERS), copy_level=r.byte() % 3)(
        lambda *a, **k: len(a)
    )
    frozen = cachebox.Frozen(cache, ignore=bool(r.byte() & 1))
    nasty.TARGET[0] = cache
    ops = OPS[name]
    try:
        for _ in range(MAX_OPS):
            if not r.more():
                break
            op = r.pick(ops)
            STATS["ops"] += 1
            key, value, number = r.obj(), r.obj(), r.number()
            label = f"{name}.{op}({key!r}, {value!r}, {number!r})"
            if TRACE:
                print(f"{label}  [maxsize={maxsize}, maxmemory={maxmemory}]", file=sys.stderr)
            if op == "call":
                nasty.apply_call(wrapper, key, value)
            elif op == "frozen_read":
                allowed(lambda: (frozen.get(key), key in frozen, len(frozen), list(frozen.items())), label)
            elif op == "frozen_write":
                allowed(lambda: frozen.insert(key, value), label)
            elif op == "advance":
                # Forward only, and process-wide: entries written so far may expire.
                _advance_clock(float(r.byte() % 5) * 1000.0)
            elif op == "restore":
                allowed(lambda: cache.__setstate__(cache.__getstate__()), label)
            elif op == "setstate":
                state = fuzzed_state(r, cache)
                target = cache if r.byte() & 1 else type(cache).__new__(type(cache))
                if TRACE:
                    print(
                        f"    state={state!r} on {'the cache' if target is cache else 'a blank'}",
                        file=sys.stderr,
                    )
                # A fuzzed capacity can ask for more memory than there is: MemoryError.
                allowed(lambda: target.__setstate__(state), f"{label} state={state!r}", (MemoryError,))
                if target is not cache:
                    try:
                        len(target)
                    except RuntimeError:
                        pass  # never configured
                    else:
                        nasty.assert_consistent(target, probe=True)
            elif op == "info":
                info = allowed(wrapper.cache_info, label)
                with nasty.disarmed():
                    check(
                        info is None or (info.length == len(cache) and info.memory == cache.memory()),
                        f"cache_info {info}",
                    )
            elif op == "clear_wrapper":
                allowed(wrapper.cache_clear, label)
            else:
                nasty.apply_op(cache, op, key, value, number)
            nasty.assert_consistent(cache, probe=False)
        nasty.assert_consistent(cache, probe=True)
        # A pickle round trip of what is left must load equal.
        with nasty.disarmed():
            try:
                back = pickle.loads(pickle.dumps(cache))
            except nasty.ALLOWED:
                back = None
            if back is not None:
                nasty.assert_consistent(back, probe=True)
    finally:
        nasty.TARGET[0] = None


def limit_memory():
    """Caps the address space (6 GiB), so that a fuzzed capacity of billions gives MemoryError
    instead of eating the machine."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, resource.RLIM_INFINITY))
    except (ImportError, ValueError, OSError):
        pass


def TestOneInput(data):
    one_input(data)


def smoke(seconds, seed):
    """Deterministic random inputs (input ``i`` comes from ``Random(seed * 10**9 + i)``) until
    ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    runs = 0
    while time.monotonic() < deadline:
        rng = random.Random(seed * 10**9 + runs)
        data = rng.randbytes(rng.randrange(1, 600))
        try:
            one_input(data)
        except BaseException:
            print(f"fuzz_api: input #{runs} (seed {seed}) failed; input hex:\n{data.hex()}", file=sys.stderr)
            raise
        runs += 1
    print(f"fuzz_api smoke: {runs} inputs, {STATS['ops']} operations in {seconds:g} s, no failure")


def main():
    limit_memory()
    if "--smoke" in sys.argv or "--replay" in sys.argv:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--smoke", type=float, help="seconds of random inputs (no atheris needed)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--replay", help="a file holding one input (a crash file from atheris)")
        args = parser.parse_args()
        if args.replay:
            with open(args.replay, "rb") as f:
                one_input(f.read())
            print("replay: no failure")
            return
        smoke(args.smoke, args.seed)
        return
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
