"""Side-by-side micro-benchmarks: this build vs cachebox 6.2.10, functools, cachetools, lru-dict.

    python benches/run.py [--quick] [--python PY | --wheel WHL] [--only b1,b2] [--libs l1,l2]
    python benches/run.py --from-json benches/results/latest.json   # re-render tables and chart

Our build is the `cachebox` that `--python` imports (default: the repo's .venv), or a wheel
installed into .venv-bench/ours. The peers come from PyPI into bench-only venvs under
.venv-bench/ (cachebox 6.2.10 has the same import name as ours, so it gets a venv of its own);
functools and dict run in the peers' venv. Every case runs in a fresh process (benches/cases.py)
with a timeout, one at a time (never in parallel: these are 2-core shared machines), case by
case across the libraries so the figures compared in a ratio are measured minutes apart at
most. Timings are ns per operation, best of several passes with the GC off. Only ratios from
one run mean anything on a noisy machine.

Writes benches/results/latest.json, latest.md (the tables printed) and latest.svg (the chart).
Our package is copied aside at the start and measured from the copy, so a rebuild in place during
the run (`make build`, another session) cannot mix two builds in one table (--no-snapshot: don't).
`--quick` takes 1.5 minutes on a 2-core machine, the full run about 10 (more under load).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import chart
import report

BENCH_VENV = ROOT / ".venv-bench"
CB6 = "cachebox==6.2.10"
PEERS = ["cachetools==8.0.2", "lru-dict==1.4.1"]

# library id -> (venv it runs in, adapter name in cases.py)
LIBS: dict[str, tuple[str, str]] = {
    "ours": ("ours", "ours"),
    "cachebox-6.2.10": ("cb6", "cachebox"),
    "cachetools": ("peers", "cachetools"),
    "lru-dict": ("peers", "lru-dict"),
    "functools": ("peers", "functools"),
    "dict": ("peers", "dict"),
}

POLICIES = ["cache", "fifo", "rr", "lru", "lfu", "ttl", "vttl"]
EVICTING = POLICIES[1:]
ALL_BENCHES = [
    "get_hit",
    "get_miss",
    "set_evict",
    "decorator_hit",
    "decorator_miss",
    "memory",
    "threads",
    "vttl_scaling",
    "size_scaling",
    "gc_stress",
]
TIMED = {"get_hit", "get_miss", "set_evict", "decorator_hit", "decorator_miss", "size_scaling"}

MODES: dict[str, dict[str, Any]] = {
    # ops: most ops in a pass; budget_ms: aimed pass length; rounds: the timed benchmarks run
    # this many times over (a fresh process each), the best round counts.
    "quick": {
        "ops": 100_000,
        "repeats": 5,
        "budget_ms": 30,
        "rounds": 3,
        "memory_n": 1_000_000,
        "sizes": [10_000, 1_000_000],
        "scaling_repeats": {10_000: 20, 1_000_000: 1},
        "thread_repeats": 7,
        "timeout": 60,
        "big_timeout": 120,
        "skip_memory": {"cachetools"},
    },
    "full": {
        "ops": 300_000,
        "repeats": 11,
        "budget_ms": 150,
        "rounds": 6,
        "memory_n": 1_000_000,
        "sizes": [10_000, 1_000_000],
        "scaling_repeats": {10_000: 50, 1_000_000: 5},
        "thread_repeats": 21,
        "timeout": 180,
        "big_timeout": 300,
        "skip_memory": set(),
    },
}


def plan(bench: str, mode: dict[str, Any]) -> list[tuple[str, dict[str, str], list[str]]]:
    """Rows of a benchmark: (row, {lib: kind in cases.py}, extra arguments)."""
    rows: list[tuple[str, dict[str, str], list[str]]] = []
    if bench in ("get_hit", "get_miss", "set_evict"):
        for p in POLICIES if bench != "set_evict" else EVICTING:
            libs = {"ours": p, "cachebox-6.2.10": p, "cachetools": p}
            if p == "lru":
                libs["lru-dict"] = "lru"
            if p == "cache" and bench != "set_evict":
                libs["dict"] = "dict"
            rows.append((p, libs, []))
    elif bench in ("decorator_hit", "decorator_miss"):
        libs = {"ours": "lru", "cachebox-6.2.10": "lru", "functools": "lru", "cachetools": "lru"}
        libs["dict"] = "call"
        rows.append(("lru", libs, []))
    elif bench == "memory":
        n = ["--size", str(mode["memory_n"])]
        for p in POLICIES:
            libs = {"ours": p, "cachebox-6.2.10": p, "cachetools": p}
            if p == "lru":
                libs.update({"lru-dict": "lru", "functools": "lru"})
            if p == "cache":
                libs["dict"] = "dict"
            for lib in mode["skip_memory"]:
                libs.pop(lib, None)
            rows.append((p, libs, n))
    elif bench == "threads":
        r = ["--repeats", str(mode["thread_repeats"])]
        for p in EVICTING:
            libs = {"ours": p}
            if p == "lru":
                libs.update({"cachebox-6.2.10": "lru", "lru-dict": "lru", "cachetools": "lru+lock"})
            rows.append((p, libs, r))
    elif bench == "vttl_scaling":
        for n in mode["sizes"]:
            args = ["--size", str(n), "--repeats", str(mode["scaling_repeats"][n])]
            libs = {"ours": "vttl", "cachebox-6.2.10": "vttl", "dict": "dict+heap"}
            rows.append((str(n), libs, args))
    elif bench == "size_scaling":
        for n in mode["sizes"]:
            libs = {"ours": "lru", "cachebox-6.2.10": "lru", "lru-dict": "lru", "dict": "dict"}
            rows.append((str(n), libs, ["--size", str(n)]))
    elif bench == "gc_stress":
        for p in POLICIES:
            rows.append((p, {"ours": p, "cachebox-6.2.10": p}, []))
    else:
        raise SystemExit(f"unknown benchmark {bench!r}; known: {', '.join(ALL_BENCHES)}")
    return rows


# ---------------------------------------------------------------------------------------------
# environments


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def py_version(python: str) -> str:
    out = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def ensure_venv(name: str, reqs: list[str], base: str, offline: bool, always: bool = False) -> str:
    """A venv .venv-bench/NAME holding reqs, rebuilt when reqs or the base interpreter change."""
    env = BENCH_VENV / name
    python = env / "bin" / "python"
    stamp = env / ".bench-requirements"
    want = "\n".join([f"# python {py_version(base)} ({base})", *reqs]) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == want and not always:
        return str(python)
    if offline:
        raise SystemExit(f"{env} is missing or stale and --offline was given")
    log(f"setting up {env}: {' '.join(reqs)}")
    same_base = stamp.exists() and stamp.read_text().splitlines()[:1] == want.splitlines()[:1]
    if not python.exists() or not same_base:
        shutil.rmtree(env, ignore_errors=True)
        subprocess.run([base, "-m", "venv", str(env)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    extra = ["--force-reinstall", "--no-deps"] if always else []
    subprocess.run(pip + extra + reqs, check=True)
    stamp.write_text(want)
    return str(python)


# python -> PYTHONPATH for its children: set for ours when its build is snapshotted
CHILD_PATH: dict[str, str] = {}


def child_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # each venv imports its own cachebox, nothing else
    env.pop("VIRTUAL_ENV", None)
    if python in CHILD_PATH:
        env["PYTHONPATH"] = CHILD_PATH[python]
    return env


def run_child(python: str, args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [python, str(HERE / "cases.py"), *args]
    try:
        p = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=timeout, env=child_env(python), cwd=HERE
        )
    except subprocess.TimeoutExpired:
        return {"error": f"TIMEOUT after {timeout:.0f} s (hung or too slow; killed)"}
    if p.returncode != 0:
        tail = (p.stderr.strip() or p.stdout.strip()).splitlines()[-3:]
        return {"error": f"exit {p.returncode}: " + " | ".join(tail)}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "unreadable output: " + p.stdout[-300:] + p.stderr[-300:]}


def _score(res: dict[str, Any]) -> float | None:
    for key in ("ns", "bytes_per_entry", "ratio"):
        if key in res:
            return float(res[key])
    return None


# ---------------------------------------------------------------------------------------------
# the run


def run_benchmarks(
    benches: list[str], mode: dict[str, Any], pythons: dict[str, str], started: float
) -> dict[str, dict[str, dict[str, Any]]]:
    results: dict[str, dict[str, dict[str, Any]]] = {}
    timing = [
        "--ops",
        str(mode["ops"]),
        "--repeats",
        str(mode["repeats"]),
        "--budget-ms",
        str(mode["budget_ms"]),
    ]
    for bench in benches:
        rounds = mode["rounds"] if bench in TIMED else 1
        rows = plan(bench, mode)
        cells: dict[str, dict[str, Any]] = {row: {} for row, _, _ in rows}
        hung: set[tuple[str, str]] = set()
        # Rounds go over the whole benchmark, so the rounds of one case are spread out in time
        # and a burst of load from elsewhere on the machine does not spoil all of them.
        for rnd in range(rounds):
            for row, libs, extra in rows:
                big = any(a == "--size" for a in extra) and bench != "gc_stress"
                timeout = mode["big_timeout"] if big else mode["timeout"]
                order = list(libs.items())
                for lib, kind in order if rnd % 2 == 0 else order[::-1]:  # no lib always first
                    if lib not in pythons or (row, lib) in hung:
                        continue  # a hang is not waited for twice
                    res = run_child(pythons[lib], [LIBS[lib][1], f"{bench}:{kind}", *timing, *extra], timeout)
                    if kind != row:
                        res["kind"] = kind
                    if res.get("error", "").startswith("TIMEOUT"):
                        hung.add((row, lib))
                    prev = cells[row].get(lib)
                    if prev is None:
                        cells[row][lib] = res
                        continue
                    new, old = _score(res), _score(prev)
                    seen = prev.pop("rounds", [old])
                    if new is not None and (old is None or new < old):
                        cells[row][lib] = res
                    cells[row][lib]["rounds"] = [*seen, new]
                if rnd == rounds - 1:
                    shown = ", ".join(f"{lib} {report.short(cell)}" for lib, cell in cells[row].items())
                    log(f"[{time.time() - started:6.1f} s] {bench}/{row}: {shown}")
            if rnd < rounds - 1:
                log(f"[{time.time() - started:6.1f} s] {bench}: round {rnd + 1}/{rounds} done")
        results[bench] = cells
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds, passes and ops (about 1.5 minutes)")
    ap.add_argument("--python", default=None, help="interpreter whose `import cachebox` is our build")
    ap.add_argument("--wheel", default=None, help="install this wheel of ours into .venv-bench/ours instead")
    ap.add_argument("--base-python", default="python3", help="interpreter for the bench venvs")
    ap.add_argument("--only", default="", help="comma list of benchmarks: " + ",".join(ALL_BENCHES))
    ap.add_argument("--skip", default="", help="comma list of benchmarks to leave out")
    ap.add_argument("--libs", default="", help="comma list of libraries: " + ",".join(LIBS))
    ap.add_argument("--sizes", default="", help="comma list of sizes for the *_scaling benchmarks")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of the timed benchmarks")
    ap.add_argument(
        "--no-snapshot",
        action="store_true",
        help="measure our build in place instead of a copy taken at the start",
    )
    ap.add_argument("--offline", action="store_true", help="never install: use the venvs as they are")
    ap.add_argument("--out-dir", default=str(HERE / "results"), help="where latest.{json,md,svg} go")
    ap.add_argument("--from-json", default=None, help="only re-render tables and chart from a result file")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(args.out_dir)
    if args.from_json:
        data = json.loads(Path(args.from_json).read_text())
        return emit(data, out_dir, write_json=False)

    mode = dict(MODES["quick" if args.quick else "full"])
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
        mode["sizes"] = sizes
        mode["scaling_repeats"] = {n: max(1, min(40, 10_000_000 // (n * 10))) for n in sizes}
    if args.rounds is not None:
        mode["rounds"] = args.rounds
    wanted = [b for b in args.only.split(",") if b] or ALL_BENCHES
    skip = {b for b in args.skip.split(",") if b}
    benches = [b for b in wanted if b not in skip]
    for b in benches:
        plan(b, mode)  # rejects unknown names before anything is installed
    libs = [lib for lib in args.libs.split(",") if lib] or list(LIBS)
    unknown = [lib for lib in libs if lib not in LIBS]
    if unknown:
        raise SystemExit(f"unknown libraries {unknown}; known: {', '.join(LIBS)}")
    if "ours" not in libs:
        libs.insert(0, "ours")

    started = time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    if load_start[0] > 0.5 * (os.cpu_count() or 1):
        log(f"note: load average {load_start[0]} before starting: other work will add noise")
    pythons: dict[str, str] = {}
    if args.wheel:
        wheel = str(Path(args.wheel).resolve())
        pythons["ours"] = ensure_venv("ours", [wheel], args.base_python, args.offline, always=True)
    else:
        default = ROOT / ".venv" / "bin" / "python"
        pythons["ours"] = args.python or (str(default) if default.exists() else sys.executable)
    venvs = {"cb6": [CB6], "peers": PEERS}
    made: dict[str, str | None] = {}
    for lib in libs:
        env = LIBS[lib][0]
        if lib == "ours":
            continue
        if env not in made:
            try:
                made[env] = ensure_venv(env, venvs[env], args.base_python, args.offline)
            except (subprocess.CalledProcessError, OSError) as e:
                log(f"WARNING: could not set up .venv-bench/{env} ({e}): {env} libraries left out")
                made[env] = None
        if made[env]:
            pythons[lib] = str(made[env])

    libinfo: dict[str, dict[str, Any]] = {}
    for lib in libs:
        if lib not in pythons:
            continue
        got = run_child(pythons[lib], [LIBS[lib][1], "--info"], 60)
        if "error" in got:
            if lib == "ours":
                raise SystemExit(f"our build does not import: {got['error']}")
            log(f"WARNING: {lib} does not import ({got['error']}); left out")
            pythons.pop(lib)
            continue
        libinfo[lib] = got
    ours = libinfo["ours"]
    snapshot = None
    if not args.wheel and not args.no_snapshot:
        snapshot = take_snapshot(pythons["ours"], ours)
        ours = libinfo["ours"]
    if ours.get("version") == "6.2.10" or "/.venv-bench/cb6/" in str(ours.get("module_file")):
        log("warning: `ours` imports cachebox 6.2.10 from PyPI, not this project's build")
    versions = {info.get("python") for info in libinfo.values()}
    if len(versions) > 1:
        log(f"warning: the libraries run on different Pythons {sorted(versions)}: ratios are unfair")
    log(f"ours: cachebox {ours.get('version')} from {ours.get('module_file')} (Python {ours.get('python')})")

    try:
        results = run_benchmarks(benches, mode, pythons, started)
    finally:
        if snapshot:
            shutil.rmtree(snapshot, ignore_errors=True)
    if snapshot:
        CHILD_PATH.pop(pythons["ours"], None)
        after = run_child(pythons["ours"], ["ours", "--info"], 60)
        if after.get("extension_stamp") != ours.get("source_stamp"):
            log(
                "note: the build in place was replaced during the run; this run measured the copy taken at the start"
            )
            ours["replaced_during_run"] = after.get("extension_stamp")
    else:
        after = run_child(pythons["ours"], ["ours", "--info"], 60)
        if after.get("extension_stamp") != ours.get("extension_stamp"):
            log(f"warning: our build changed during the run ({after.get('extension_stamp')}): rerun")
            ours["changed_during_run"] = after.get("extension_stamp")
    data = {
        "meta": {
            "mode": "quick" if args.quick else "full",
            "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            "wall_s": round(time.time() - started, 1),
            "machine": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
            "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in mode.items()},
            "libs": libinfo,
        },
        "results": results,
    }
    data["meta"]["settings"]["scaling_repeats"] = {str(k): v for k, v in mode["scaling_repeats"].items()}
    return emit(data, out_dir, write_json=True)


def take_snapshot(python: str, ours: dict[str, Any]) -> str | None:
    """Copy our package aside and run ours from the copy: a rebuild in place (another make
    target, another session) during the run must not change what is measured halfway."""
    pkg = Path(str(ours.get("module_file") or "")).parent
    if pkg.name != "cachebox" or not (pkg / "__init__.py").exists():
        log(f"note: no package directory to snapshot at {pkg}; measuring the build in place")
        return None
    root = tempfile.mkdtemp(prefix="cachebox-bench-")
    shutil.copytree(pkg, Path(root) / "cachebox", ignore=shutil.ignore_patterns("__pycache__"))
    CHILD_PATH[python] = root
    got = run_child(python, ["ours", "--info"], 60)
    if "error" in got or not str(got.get("module_file", "")).startswith(root):
        log(f"note: the snapshot of our build does not import ({got}); measuring the build in place")
        CHILD_PATH.pop(python, None)
        shutil.rmtree(root, ignore_errors=True)
        return None
    ours.update(got)
    ours["snapshot_of"] = str(pkg)
    ours["source_stamp"] = ours.get("extension_stamp")
    return root


def emit(data: dict[str, Any], out_dir: Path, write_json: bool) -> int:
    data["targets"] = report.targets(data)
    md = report.markdown(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    if write_json:
        (out_dir / "latest.json").write_text(json.dumps(data, indent=1) + "\n")
    (out_dir / "latest.md").write_text(md)
    (out_dir / "latest.svg").write_text(chart.render(data))
    print(md)
    log(f"wrote {out_dir}/{'latest.json, ' if write_json else ''}latest.md, latest.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
