"""One benchmark case for one library, in this process; `benches/run.py` drives it.

    PYTHON benches/cases.py LIB BENCH:KIND [--ops N] [--repeats N] [--budget-ms N] [--size N]
    PYTHON benches/cases.py LIB --info

LIB is `ours` or `cachebox` (both import `cachebox`: whichever the interpreter has),
`cachetools`, `lru-dict`, `functools` or `dict`. The result is one JSON line on stdout.

Each case runs in a fresh process started by run.py (with a timeout), so a crash or a hang
costs one case, and RSS measurements start from a clean interpreter. Operations are inlined
into generated loops (`for k in keys: c[k]`) so that the harness adds only the loop itself;
the cyclic GC is off while a pass is timed; the best pass is the figure (the median is kept
to show the spread). Standard library only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import sys
import threading
import time
from typing import Any, Callable

CLOCK = time.perf_counter_ns
BASE = 10**6  # every key is >= BASE: never one of the interpreter's shared small ints
MAXSIZE = 10_000  # maxsize of the timed caches
LONG_TTL = 3600.0  # nothing expires during a run
THREAD_OPS = 200_000  # per thread
THREAD_KEYS = 2 * MAXSIZE  # key space of the thread benchmark: about half the gets hit
GC_STRESS_N = 20_000


class Kind:
    """How to drive one cache class: a factory and the source of each operation.

    The operations are source text over the names `c` (cache), `k` (key), `v` (value) and
    `t` (a ttl, VTTL only), inlined into the timed loops; `ns` adds globals they may use.
    """

    def __init__(
        self,
        make: Callable[[int], Any],
        put: str = "c[k] = v",
        get_hit: str = "c[k]",
        get_miss: str = "c.get(k)",
        put_ttl: str | None = None,
        evicts: bool = True,
        ns: dict[str, Any] | None = None,
        note: str = "",
    ) -> None:
        self.make = make
        self.put = put
        self.get_hit = get_hit
        self.get_miss = get_miss
        self.put_ttl = put_ttl
        self.evicts = evicts
        self.ns = ns or {}
        self.note = note


def kind_of(class_name: str) -> str:
    """The benchmarks' name for a cache class: `FIFOCache` is `fifo`, `Cache` is `cache`."""
    return class_name[: -len("Cache")].lower() or "cache"


def cachebox_class_names() -> list[str]:
    """The cachebox classes, as the native class table lists them."""
    import cachebox

    return [cls.__name__ for cls in cachebox._core.CACHE_CLASSES]


def _cachebox_kinds() -> dict[str, Kind]:
    import cachebox as cb

    # Where a class is not driven as `cls(maxsize)` with `c[k] = v`; every other class of the
    # table gets the default row.
    special = {
        "Cache": Kind(lambda n: cb.Cache(n), evicts=False, note="Cache(maxsize): never evicts"),
        "TTLCache": Kind(lambda n: cb.TTLCache(n, LONG_TTL), note="TTLCache(maxsize, 3600)"),
        "VTTLCache": Kind(
            lambda n: cb.VTTLCache(n),
            put="c.insert(k, v, 3600.0)",
            put_ttl="c.insert(k, v, t)",
            note="VTTLCache(maxsize), insert(k, v, ttl)",
        ),
    }
    kinds = {}
    for cls in cb._core.CACHE_CLASSES:
        kinds[kind_of(cls.__name__)] = special.get(cls.__name__) or Kind(lambda n, cls=cls: cls(n))
    return kinds


def _cachetools_kinds() -> dict[str, Kind]:
    import cachetools as ct

    lock = threading.Lock()
    return {
        "cache": Kind(lambda n: ct.Cache(n), evicts=False, note="cachetools.Cache"),
        "fifo": Kind(lambda n: ct.FIFOCache(n)),
        "rr": Kind(lambda n: ct.RRCache(n)),
        "lru": Kind(lambda n: ct.LRUCache(n)),
        "lfu": Kind(lambda n: ct.LFUCache(n)),
        "ttl": Kind(lambda n: ct.TTLCache(n, LONG_TTL), note="TTLCache(maxsize, 3600)"),
        "vttl": Kind(
            lambda n: ct.TLRUCache(n, lambda _k, _v, now: now + LONG_TTL),
            note="TLRUCache(maxsize, ttu=now+3600): per-key expiry",
        ),
        # cachetools is not thread-safe on its own: the thread benchmark guards it with a lock
        "lru+lock": Kind(
            lambda n: ct.LRUCache(n),
            put="with L:\n    c[k] = v",
            get_hit="with L:\n    c[k]",
            get_miss="with L:\n    c.get(k)",
            ns={"L": lock},
            note="LRUCache behind a threading.Lock",
        ),
    }


def _lru_dict_kinds() -> dict[str, Kind]:
    from lru import LRU

    return {"lru": Kind(lambda n: LRU(n), note="lru.LRU(maxsize)")}


class DictHeap:
    """A dict plus a heapq of (expiry, key): the textbook O(log n) per-key-ttl structure."""

    def __init__(self) -> None:
        self.d: dict[Any, Any] = {}
        self.h: list[Any] = []

    def __len__(self) -> int:
        return len(self.d)


def _dict_kinds() -> dict[str, Kind]:
    import heapq

    return {
        "dict": Kind(lambda n: {}, evicts=False, note="plain dict, unbounded"),
        "dict+heap": Kind(
            lambda n: DictHeap(),
            put="c.d[k] = v",
            put_ttl="c.d[k] = v\nheappush(c.h, (t, k))",
            evicts=False,
            ns={"heappush": heapq.heappush},
            note="dict + heapq of (ttl, key), the vttl_scaling reference",
        ),
    }


def _cachebox_decorators() -> dict[str, Callable[[int], Callable]]:
    import cachebox as cb

    return {"lru": lambda n: cb.cached(cb.LRUCache(n))}


def _functools_decorators() -> dict[str, Callable[[int], Callable]]:
    import functools

    return {"lru": lambda n: functools.lru_cache(maxsize=n)}


def _cachetools_decorators() -> dict[str, Callable[[int], Callable]]:
    import cachetools as ct

    return {"lru": lambda n: ct.cached(ct.LRUCache(n))}


def _plain_call(n: int) -> Callable:
    return lambda f: f


LIBS: dict[str, dict[str, Callable[[], dict[str, Any]]]] = {
    "ours": {"kinds": _cachebox_kinds, "decorators": _cachebox_decorators},
    "cachebox": {"kinds": _cachebox_kinds, "decorators": _cachebox_decorators},
    "cachetools": {"kinds": _cachetools_kinds, "decorators": _cachetools_decorators},
    "lru-dict": {"kinds": _lru_dict_kinds, "decorators": dict},
    "functools": {"kinds": dict, "decorators": _functools_decorators},
    # the floor of the decorator benchmarks: calling f itself
    "dict": {"kinds": _dict_kinds, "decorators": lambda: {"call": _plain_call}},
}


def info(lib: str) -> dict[str, Any]:
    from importlib import metadata

    mod, dist = {
        "ours": ("cachebox", "cachebox"),
        "cachebox": ("cachebox", "cachebox"),
        "cachetools": ("cachetools", "cachetools"),
        "lru-dict": ("lru", "lru-dict"),
        "functools": ("functools", None),
        "dict": ("builtins", None),
    }[lib]
    m = __import__(mod)
    version = platform.python_version()
    if dist is not None:
        version = str(getattr(m, "__version__", "") or metadata.version(dist))
    out = {
        "version": version,
        "module_file": getattr(m, "__file__", None),
        "python": platform.python_version(),
        "executable": sys.executable,
        "implementation": platform.python_implementation(),
    }
    core = sys.modules.get("cachebox._core")
    if core is not None and getattr(core, "__file__", None):
        # which build exactly: a rebuild during a run shows up as a changed stamp
        st = os.stat(core.__file__)
        out["extension"] = core.__file__
        out["extension_stamp"] = f"{st.st_size} bytes, modified {time.ctime(st.st_mtime)}"
    return out


# ---------------------------------------------------------------------------------------------
# generated loops


def _indent(src: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in src.splitlines())


def _compile(src: str, ns: dict[str, Any], name: str) -> Callable:
    g = dict(ns)
    g["_clock"] = CLOCK
    exec(compile(src, "<bench:" + name + ">", "exec"), g)  # noqa: S102 (our own loop templates)
    return g[name]


def key_loop(op: str, ns: dict[str, Any]) -> Callable:
    """loop(c, keys) -> elapsed ns of `op` for each k in keys (v is k)."""
    src = (
        "def key_loop(c, keys, _clock=_clock):\n"
        "    t0 = _clock()\n"
        "    for k in keys:\n"
        "        v = k\n"
        f"{_indent(op, 8)}\n"
        "    return _clock() - t0\n"
    )
    return _compile(src, ns, "key_loop")


def pair_loop(op: str, ns: dict[str, Any], second: str = "v") -> Callable:
    """loop(c, pairs) -> elapsed ns of `op` for each (k, v) in pairs, or (k, t) with v = k."""
    head = "    for k, v in pairs:\n" if second == "v" else "    for k, t in pairs:\n        v = k\n"
    src = (
        "def pair_loop(c, pairs, _clock=_clock):\n"
        "    t0 = _clock()\n"
        f"{head}"
        f"{_indent(op, 8)}\n"
        "    return _clock() - t0\n"
    )
    return _compile(src, ns, "pair_loop")


def call_loop() -> Callable:
    src = (
        "def call_loop(g, pairs, _clock=_clock):\n"
        "    t0 = _clock()\n"
        "    for a, b in pairs:\n"
        "        g(a, b)\n"
        "    return _clock() - t0\n"
    )
    return _compile(src, {}, "call_loop")


def gc_off(fn: Callable, *args: Any) -> Any:
    """Run fn with the cyclic GC off (after a collection, so no debt is carried in)."""
    gc.collect()
    gc.disable()
    try:
        return fn(*args)
    finally:
        gc.enable()


class Timer:
    """Best-of-N passes; a pass is sized to about `budget_ms` from a short calibration."""

    def __init__(self, ops: int, repeats: int, budget_ms: float) -> None:
        self.max_ops = ops
        self.repeats = repeats
        self.budget_ns = budget_ms * 1e6

    def size(self, ns_per_op: float) -> int:
        want = self.budget_ns / max(ns_per_op, 1.0)
        return int(max(min(2_000, self.max_ops), min(self.max_ops, want)))

    def measure(self, run: Callable[[int], int], calibrate: Callable[[], float]) -> dict[str, Any]:
        """run(ops) -> elapsed ns of one pass of `ops` operations (builds its own input)."""
        ops = self.size(calibrate())
        run(min(ops, 20_000))  # warm-up
        per = sorted(run(ops) / ops for _ in range(self.repeats))
        return {
            "ns": round(per[0], 2),
            "median_ns": round(per[len(per) // 2], 2),
            "ops": ops,
            "repeats": self.repeats,
        }


class Keys:
    """Fresh int keys, never handed out twice."""

    def __init__(self, start: int) -> None:
        self.next = start

    def take(self, n: int) -> list[int]:
        first = self.next
        self.next += n
        return list(range(first, first + n))


def filled(kind: Kind, n: int) -> Any:
    c = kind.make(n)
    keys = list(range(BASE, BASE + n))
    pair_loop(kind.put, kind.ns)(c, zip(keys, keys))
    return c, keys


def _contains(c: Any, keys: list[int]) -> int:
    return sum(1 for k in keys if k in c)


# ---------------------------------------------------------------------------------------------
# benchmarks


def bench_get(kind: Kind, timer: Timer, hit: bool, size: int = MAXSIZE) -> dict[str, Any]:
    rng = random.Random(1)
    c, keys = filled(kind, size)
    if hit:
        # random probes over the present keys (the very objects stored, as a caller's would be)
        probe_keys = keys
        op = kind.get_hit
    else:
        probe_keys = list(range(50 * BASE, 50 * BASE + size))
        op = kind.get_miss
    found = _contains(c, probe_keys) if kind.ns == {} else None
    loop = key_loop(op, kind.ns)
    total = timer.max_ops
    probes = [probe_keys[rng.randrange(len(probe_keys))] for _ in range(total)]
    res = timer.measure(
        lambda ops: gc_off(loop, c, probes[:ops]),
        lambda: gc_off(loop, c, probes[:1000]) / 1000,
    )
    res["present"] = found
    res["len"] = len(c)
    if hit and found is not None and found != len(probe_keys):
        res["warning"] = f"only {found}/{len(probe_keys)} probe keys present"
    if not hit and found:
        res["warning"] = f"{found} miss probes present"
    return res


def bench_set_evict(kind: Kind, timer: Timer) -> dict[str, Any]:
    c, _ = filled(kind, MAXSIZE)
    loop = key_loop(kind.put, kind.ns)
    fresh = Keys(20 * BASE)

    def run(ops: int) -> int:
        keys = fresh.take(ops)
        return gc_off(loop, c, keys)

    res = timer.measure(run, lambda: run(1000) / 1000)
    res["len"] = len(c)
    if len(c) != MAXSIZE:
        res["warning"] = f"len {len(c)} after inserts into a full cache of {MAXSIZE}"
    return res


def _check_decorator(make: Callable[[int], Callable]) -> str | None:
    calls = []

    def f(a: int, b: int) -> int:
        calls.append(1)
        return a + b

    g = make(100)(f)
    pairs = [(BASE + i, 2 * BASE + i) for i in range(50)]
    first = [g(a, b) for a, b in pairs]
    n = len(calls)
    second = [g(a, b) for a, b in pairs]
    if first != second or first != [a + b for a, b in pairs]:
        return "wrong results"
    if make is not _plain_call and len(calls) != n:
        return f"{len(calls) - n} calls on cached arguments"
    return None


def bench_decorator(make: Callable[[int], Callable], timer: Timer, hit: bool) -> dict[str, Any]:
    def f(a: int, b: int) -> int:
        return a + b

    g = make(MAXSIZE)(f)
    loop = call_loop()
    pairs = [(BASE + i, 2 * BASE + i) for i in range(MAXSIZE)]
    for a, b in pairs:  # fill: every later miss evicts
        g(a, b)
    if hit:
        rng = random.Random(2)
        seq = [pairs[rng.randrange(MAXSIZE)] for _ in range(timer.max_ops)]

        def run(ops: int) -> int:
            return gc_off(loop, g, seq[:ops])
    else:
        fresh = Keys(30 * BASE)

        def run(ops: int) -> int:
            seq = [(k, k + 1) for k in fresh.take(ops)]
            return gc_off(loop, g, seq)

    res = timer.measure(run, lambda: run(1000) / 1000)
    problem = _check_decorator(make)
    if problem:
        res["warning"] = problem
    return res


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(lib: str, name: str, n: int) -> dict[str, Any]:
    """RSS growth per entry of a cache holding n int->int entries.

    Keys and values are created first and held in lists, so the baseline includes them and
    the delta is what the structure itself costs.
    """
    keys = list(range(BASE, BASE + n))
    values = [k + 1 for k in keys]
    gc.collect()
    gc.disable()
    before = _rss()
    if lib == "functools":
        import functools

        @functools.lru_cache(maxsize=n)
        def f(k: int) -> int:
            return values[k - BASE]

        for k in keys:
            f(k)
        held = f.cache_info().currsize
        keep: Any = f
    else:
        kind = LIBS[lib]["kinds"]()[name]
        keep = kind.make(n)
        pair_loop(kind.put, kind.ns)(keep, zip(keys, values))
        # One step of iteration: an order index built lazily (LFU and VTTL sort on demand)
        # exists from then on, so it is counted. (lru-dict's LRU is not iterable.)
        with contextlib.suppress(TypeError):
            next(iter(keep), None)
        held = len(keep)
    gc.collect()
    after = _rss()
    gc.enable()
    res = {"bytes_per_entry": round((after - before) / n, 1), "entries": n, "held": held}
    if held != n:
        res["warning"] = f"holds {held} of {n}"
    del keep
    return res


def bench_threads(kind: Kind, repeats: int) -> dict[str, Any]:
    """2 threads x THREAD_OPS mixed ops (3 gets : 1 set) on one cache vs the same in one thread."""
    c, _ = filled(kind, MAXSIZE)
    space = list(range(BASE, BASE + THREAD_KEYS))
    streams = []
    for seed in (11, 12):
        rng = random.Random(seed)
        streams.append([space[rng.randrange(THREAD_KEYS)] for _ in range(THREAD_OPS)])
    src = (
        "def worker(c, keys, out, start=None, _clock=_clock):\n"
        "    errors = 0\n"
        "    if start is not None:\n"
        "        start.wait()\n"
        "    t0 = _clock()\n"
        "    for i, k in enumerate(keys):\n"
        "        try:\n"
        "            if i % 4:\n"
        f"{_indent(kind.get_miss, 16)}\n"
        "            else:\n"
        "                v = k\n"
        f"{_indent(kind.put, 16)}\n"
        "        except Exception:\n"
        "            errors += 1\n"
        "    out.append((_clock() - t0, errors))\n"
    )
    worker = _compile(src, kind.ns, "worker")
    both = streams[0] + streams[1]
    one, two = [], []
    errors = 0
    gc.disable()
    try:
        for _ in range(repeats):
            out: list[Any] = []
            gc.collect()
            t0 = CLOCK()
            worker(c, both, out)
            one.append(CLOCK() - t0)
            errors += out[0][1]

            out = []
            start = threading.Barrier(3)
            ths = [threading.Thread(target=worker, args=(c, s, out, start)) for s in streams]
            for th in ths:
                th.start()
            gc.collect()
            start.wait()
            t0 = CLOCK()
            for th in ths:
                th.join()
            two.append(CLOCK() - t0)
            errors += sum(e for _, e in out)
    finally:
        gc.enable()
    res = {
        "one_thread_ms": round(min(one) / 1e6, 2),
        "two_threads_ms": round(min(two) / 1e6, 2),
        "ratio": round(min(two) / min(one), 3),
        "exceptions": errors,
    }
    if errors:
        res["warning"] = f"{errors} exceptions in the worker loops"
    return res


def bench_vttl_fill(kind: Kind, n: int, repeats: int) -> dict[str, Any]:
    """Per-insert cost of filling an empty cache with n entries of distinct ttls, random order."""
    if kind.put_ttl is None:
        raise SystemExit("no per-key ttl insert for this kind")
    rng = random.Random(3)
    ttls = [LONG_TTL + i * 1e-3 for i in range(n)]
    rng.shuffle(ttls)
    pairs = list(zip(range(BASE, BASE + n), ttls))
    loop = pair_loop(kind.put_ttl, kind.ns, second="t")
    per = []
    for _ in range(repeats):
        c = kind.make(n)
        per.append(gc_off(loop, c, pairs) / n)
        held = len(c)
        del c
    per.sort()
    res = {
        "ns": round(per[0], 2),
        "median_ns": round(per[len(per) // 2], 2),
        "entries": n,
        "repeats": repeats,
    }
    if held != n:
        res["warning"] = f"holds {held} of {n}"
    return res


def bench_gc_stress(kind: Kind) -> dict[str, Any]:
    """Fresh tuple keys and values inserted while the cyclic GC runs every 100 allocations."""
    gc.set_threshold(100, 5, 5)
    c = kind.make(MAXSIZE if kind.evicts else GC_STRESS_N)
    src = f"def stress(c, ints):\n    for i in ints:\n        k = (i, i + 1)\n        v = (i,)\n{_indent(kind.put, 8)}\n"
    stress = _compile(src, kind.ns, "stress")
    t0 = CLOCK()
    stress(c, range(BASE, BASE + GC_STRESS_N))
    gc.collect()
    return {"ok": True, "ms": round((CLOCK() - t0) / 1e6, 1), "len": len(c)}


def run_case(lib: str, case: str, args: argparse.Namespace) -> dict[str, Any]:
    bench, name = case.split(":", 1)
    timer = Timer(args.ops, args.repeats, args.budget_ms)
    if bench in ("decorator_hit", "decorator_miss"):
        make = LIBS[lib]["decorators"]()[name]
        return bench_decorator(make, timer, bench == "decorator_hit")
    if bench == "memory":
        return bench_memory(lib, name, args.size)
    kind = LIBS[lib]["kinds"]()[name]
    if bench == "get_hit":
        return bench_get(kind, timer, True)
    if bench == "get_miss":
        return bench_get(kind, timer, False)
    if bench == "set_evict":
        return bench_set_evict(kind, timer)
    if bench == "size_scaling":
        return bench_get(kind, timer, True, size=args.size)
    if bench == "threads":
        return bench_threads(kind, args.repeats)
    if bench == "vttl_scaling":
        return bench_vttl_fill(kind, args.size, args.repeats)
    if bench == "gc_stress":
        return bench_gc_stress(kind)
    raise SystemExit(f"unknown benchmark {bench!r}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lib", choices=sorted(LIBS))
    ap.add_argument("case", nargs="?", help="BENCH:KIND, e.g. get_hit:lru")
    ap.add_argument("--info", action="store_true", help="print the library's version and location")
    ap.add_argument("--ops", type=int, default=200_000, help="most operations in a timed pass")
    ap.add_argument("--repeats", type=int, default=5, help="timed passes (the best one counts)")
    ap.add_argument("--budget-ms", type=float, default=100.0, help="aimed duration of a pass")
    ap.add_argument("--size", type=int, default=MAXSIZE, help="entries (memory, *_scaling)")
    args = ap.parse_args(argv)
    if args.info:
        out = info(args.lib)
    elif args.case:
        t0 = time.time()
        out = run_case(args.lib, args.case, args)
        out["wall_s"] = round(time.time() - t0, 2)
    else:
        ap.error("give a case or --info")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
