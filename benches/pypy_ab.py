"""`make bench-pypy`: cachebox against cachetools and `functools.lru_cache` on one interpreter
(meant for PyPy, where the project's yardstick cannot install its anchors), in one run.

Each case times the same loop for each library in a child process of its own (so one library's
JIT traces never serve another), `--repeats` times, interleaved, and keeps the fastest repeat.
It prints nanoseconds per operation and each peer's time over cachebox's (above 1: cachebox is
faster). Timings on a shared machine move from run to run: compare ratios of one run only.

    python benches/pypy_ab.py [--repeats N] [--ops N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SIZE = 1000

# case -> library -> the code a child runs: SETUP builds `c` (or `f`), LOOP runs `ops` operations.
CASES = {
    "get_hit": {
        "cachebox": (
            "import cachebox; c = cachebox.LRUCache({n}, {{i: i for i in range({n})}})",
            "c[i % {n}]",
        ),
        "cachetools": (
            "import cachetools; c = cachetools.LRUCache({n}); c.update((i, i) for i in range({n}))",
            "c[i % {n}]",
        ),
    },
    "get_miss": {
        "cachebox": (
            "import cachebox; c = cachebox.LRUCache({n}, {{i: i for i in range({n})}})",
            "c.get(-1 - i)",
        ),
        "cachetools": (
            "import cachetools; c = cachetools.LRUCache({n}); c.update((i, i) for i in range({n}))",
            "c.get(-1 - i)",
        ),
    },
    "set_evict": {
        "cachebox": (
            "import cachebox; c = cachebox.LRUCache({n}, {{i: i for i in range({n})}})",
            "c[{n} + i] = i",
        ),
        "cachetools": (
            "import cachetools; c = cachetools.LRUCache({n}); c.update((i, i) for i in range({n}))",
            "c[{n} + i] = i",
        ),
    },
    "decorator_hit": {
        "cachebox": (
            "import cachebox\n@cachebox.cached(cachebox.LRUCache({n}))\ndef f(x): return x",
            "f(i % {n})",
        ),
        "cachetools": (
            "import cachetools\n@cachetools.cached(cachetools.LRUCache({n}))\ndef f(x): return x",
            "f(i % {n})",
        ),
        "functools": ("import functools\n@functools.lru_cache({n})\ndef f(x): return x", "f(i % {n})"),
    },
    "decorator_miss": {
        "cachebox": ("import cachebox\n@cachebox.cached(cachebox.LRUCache({n}))\ndef f(x): return x", "f(i)"),
        "cachetools": (
            "import cachetools\n@cachetools.cached(cachetools.LRUCache({n}))\ndef f(x): return x",
            "f(i)",
        ),
        "functools": ("import functools\n@functools.lru_cache({n})\ndef f(x): return x", "f(i)"),
    },
}

CHILD = """
import time
{setup}
def run(ops, start):
    for i in range(start, start + ops):
        {loop}
run({ops}, 0)  # warm-up: lets the JIT compile the loop
t = time.perf_counter()
run({ops}, {ops})
print((time.perf_counter() - t) / {ops} * 1e9)
"""


def child(setup: str, loop: str, ops: int) -> float:
    code = CHILD.format(setup=setup.format(n=SIZE), loop=loop.format(n=SIZE), ops=ops)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ops", type=int, default=300_000)
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    for case, libs in CASES.items():
        best = {lib: float("inf") for lib in libs}
        for _ in range(args.repeats):
            for lib, (setup, loop) in libs.items():
                best[lib] = min(best[lib], child(setup, loop, args.ops))
        results[case] = best
    impl = f"{sys.implementation.name} {sys.version.split()[0]}"
    print(f"# {impl}, ns per operation (fastest of {args.repeats}), and peer / cachebox")
    print(f"{'case':<16}{'cachebox':>10}{'cachetools':>12}{'ratio':>7}{'functools':>11}{'ratio':>7}")
    for case, best in results.items():
        ours = best["cachebox"]
        row = f"{case:<16}{ours:>10.1f}"
        for peer in ("cachetools", "functools"):
            row += f"{best[peer]:>12.1f}{best[peer] / ours:>7.2f}" if peer in best else f"{'':>12}{'':>7}"
        print(row)
    print(json.dumps({"interpreter": impl, "ns_per_op": results, "time": time.strftime("%Y-%m-%d")}))


if __name__ == "__main__":
    main()
