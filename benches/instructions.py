"""Instructions per operation, counted by callgrind: a measure that load on the machine does not
move, for A/B comparisons of two builds (timings on shared machines vary by tens of percent).

Each case runs in a fresh interpreter under ``valgrind --tool=callgrind`` twice, once with its
setup only and once with setup plus N operations; the difference over N is the cost of one
operation, the Python loop around it included. ``PYTHONHASHSEED=0`` keeps both runs alike.

    python benches/instructions.py [--ops N] [--cases a,b] PYTHON [PYTHON ...]

Each PYTHON is an interpreter whose ``import cachebox`` is a build to measure; the table has a
column per interpreter, and a ratio to the first one.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

MAXSIZE = 10_000

# What each case does per operation, after filling a cache of MAXSIZE entries.
CASES = {
    "hit_Cache": "c[k]",
    "hit_LRUCache": "c[k]",
    "hit_TTLCache": "c[k]",
    "hit_LFUCache": "c[k]",
    "miss_LRUCache": "c.get(k)",
    "set_LRUCache": "c[k] = k",
    "set_FIFOCache": "c[k] = k",
    "set_TTLCache": "c[k] = k",
    "set_VTTLCache": "c[k] = k",
    "set_LFUCache": "c[k] = k",
    "decorator_hit": "f(k, 1)",
    "decorator_miss": "f(k, 1)",
}

CHILD = """
import sys
import cachebox

case, n, measured = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
N = {maxsize}
kind, _, name = case.partition("_")
if kind == "decorator":
    @cachebox.cached(cachebox.LRUCache(N))
    def f(a, b):
        return a

    for i in range(N):
        f(i, 1)
    hit = name == "hit"
else:
    cls = getattr(cachebox, name)
    c = cls(N, 3600) if cls is cachebox.TTLCache else cls(N)
    for i in range(N):
        c[i] = i
    hit = kind == "hit"
keys = [i % N for i in range(n)] if hit else list(range(N, N + n))


def run(keys, c=globals().get("c"), f=globals().get("f")):
    for k in keys:
        {op}


if measured:
    run(keys)
"""


def instructions(python, case, ops, measured):
    code = CHILD.format(maxsize=MAXSIZE, op=CASES[case])
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            python,
            "-c",
            code,
            case,
            str(ops),
            "1" if measured else "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        # Not the source tree: its `cachebox/` package, without the built module, would shadow
        # the installed one (`-c` puts the working directory first on `sys.path`).
        cwd=tempfile.gettempdir(),
        check=True,
    )
    match = re.search(r"refs:\s+([\d,]+)", proc.stderr)
    if not match:
        raise RuntimeError(f"no instruction count from callgrind:\n{proc.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pythons", nargs="+")
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)} (known: {', '.join(CASES)})")
    header = "| case | " + " | ".join(args.pythons) + " | ratio |"
    print(header)
    print("|---" * (len(args.pythons) + 2) + "|")
    for case in cases:
        counts = []
        for python in args.pythons:
            base = instructions(python, case, args.ops, measured=False)
            full = instructions(python, case, args.ops, measured=True)
            counts.append((full - base) / args.ops)
        ratio = counts[-1] / counts[0] if counts[0] else float("nan")
        cells = " | ".join(f"{c:.0f}" for c in counts)
        print(f"| {case} | {cells} | {ratio:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
