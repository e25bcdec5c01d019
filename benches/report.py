"""Markdown tables, ratios and the speed targets from a benches/run.py result (a dict)."""

from __future__ import annotations

import math
from typing import Any

from cases import cachebox_class_names, kind_of

# The benchmarks' rows, one per cachebox class of the class table.
POLICY_NAMES = {kind_of(name): name for name in cachebox_class_names()}
LIB_ORDER = ["ours", "cachebox-6.2.10", "cachetools", "lru-dict", "functools", "dict"]
REF = "cachebox-6.2.10"

# what a peer's cell stands for when it is not the same class as the row's
KIND_NOTES = {
    ("cachetools", "vttl"): "cachetools has no per-key ttl class: its row is `TLRUCache(n, ttu=now+3600)`.",
    ("cachetools", "lru+lock"): "cachetools is not thread-safe: `LRUCache` behind a `threading.Lock`.",
    ("dict", "dict"): "dict: a plain `dict` (unbounded, nothing evicted).",
    (
        "dict",
        "dict+heap",
    ): "dict column: a `dict` plus a `heapq` of (ttl, key), a textbook O(log n) reference.",
    ("dict", "call"): "dict column: the undecorated call `f(a, b)`, the floor.",
    ("functools", "lru"): "functools: `functools.lru_cache(maxsize)`.",
}


def lib_title(data: dict[str, Any], lib: str) -> str:
    info = data["meta"]["libs"].get(lib, {})
    if lib == "ours":
        return f"ours ({info.get('version', '?')})"
    if lib == "cachebox-6.2.10":
        return "cachebox 6.2.10"
    if lib in ("cachetools", "lru-dict"):
        return f"{lib} {info.get('version', '')}".strip()
    if lib == "functools":
        return "functools.lru_cache"
    return lib


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "–"
    if x >= 100:
        s = f"{x:,.0f}"
    elif x >= 10:
        s = f"{x:.1f}"
    else:
        s = f"{x:.2f}"
    return s + unit


def ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return "failed" if math.isinf(x) else f"{x:.2f}x"


def short(cell: dict[str, Any]) -> str:
    """One cell, for progress lines and tables."""
    if "error" in cell:
        return "TIMEOUT" if cell["error"].startswith("TIMEOUT") else "ERROR"
    if "ratio" in cell:
        s = f"{cell['ratio']:.2f}x ({cell['two_threads_ms']:.0f} vs {cell['one_thread_ms']:.0f} ms)"
    elif "ok" in cell:
        s = f"ok ({cell['ms']:.0f} ms)"
    elif "bytes_per_entry" in cell:
        s = fmt(cell["bytes_per_entry"])
    else:
        s = fmt(cell.get("ns"))
    return s + (" ⚠" if cell.get("warning") else "")


def value(data: dict[str, Any], bench: str, row: str, lib: str) -> float | None:
    cell = data["results"].get(bench, {}).get(row, {}).get(lib)
    if not cell or "error" in cell:
        return None
    for key in ("ns", "bytes_per_entry", "ratio"):
        if key in cell:
            return float(cell[key])
    return None


def div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def growth(data: dict[str, Any], bench: str, lib: str) -> tuple[float | None, str]:
    """Cost at the largest size over cost at the smallest, and 'small -> big' for labels."""
    rows = data["results"].get(bench, {})
    sizes = sorted(int(r) for r in rows)
    if len(sizes) < 2:
        return None, ""
    lo, hi = str(sizes[0]), str(sizes[-1])
    return div(value(data, bench, hi, lib), value(data, bench, lo, lib)), f"{sizes[0]:,} → {sizes[-1]:,}"


# ---------------------------------------------------------------------------------------------
# tables

TITLES = {
    "get_hit": "get_hit: `c[k]` on present keys, random order, maxsize 10,000 (ns/op)",
    "get_miss": "get_miss: `c.get(k)` on absent keys, maxsize 10,000 (ns/op)",
    "set_evict": "set_evict: `c[k] = v` with new keys into a full cache of 10,000: every insert evicts (ns/op)",
    "decorator_hit": "decorator_hit: memoized `f(a, b)` over an LRU of 10,000, arguments cached (ns/call)",
    "decorator_miss": "decorator_miss: memoized `f(a, b)`, new arguments, cache full (ns/call)",
    "memory": "memory: RSS growth per entry holding {n} int→int entries, keys and values excluded (bytes)",
    "threads": "threads: 2 threads × 200k mixed ops (3 get : 1 set) on one cache vs the 400k in one thread",
    "vttl_scaling": "vttl_scaling: per-insert cost of filling an empty VTTLCache, distinct ttls (ns/insert)",
    "size_scaling": "size_scaling: `c[k]` on present keys, random probes, at maxsize n (ns/op)",
    "gc_stress": "gc_stress: 20k tuple-key inserts with the GC running every 100 allocations",
}


def libs_in(data: dict[str, Any], bench: str) -> list[str]:
    present = {lib for cells in data["results"].get(bench, {}).values() for lib in cells}
    return [lib for lib in LIB_ORDER if lib in present]


def bench_table(data: dict[str, Any], bench: str) -> list[str]:
    rows = data["results"].get(bench, {})
    if not rows:
        return []
    libs = libs_in(data, bench)
    title = TITLES[bench].format(n=f"{data['meta']['settings'].get('memory_n', 0):,}")
    first = "n" if bench.endswith("_scaling") else "policy"
    out = [f"### {title}", "", f"| {first} | " + " | ".join(lib_title(data, lib) for lib in libs) + " |"]
    out.append("|---|" + "---:|" * len(libs))
    notes: list[str] = []
    errors: list[str] = []
    for row, cells in rows.items():
        label = f"{int(row):,}" if row.isdigit() else POLICY_NAMES.get(row, row)
        line = []
        for lib in libs:
            cell = cells.get(lib)
            line.append(short(cell) if cell else "")
            if cell:
                note = KIND_NOTES.get((lib, cell.get("kind", row)))
                if note and row == "cache":
                    note = note[:-1] + ", in the `Cache` row."
                if note and note not in notes:
                    notes.append(note)
                if "error" in cell:
                    errors.append(f"{lib} {label}: {cell['error']}")
                elif cell.get("warning"):
                    errors.append(f"⚠ {lib} {label}: {cell['warning']}")
        out.append(f"| {label} | " + " | ".join(line) + " |")
    if bench.endswith("_scaling"):
        line = []
        for lib in libs:
            g, _ = growth(data, bench, lib)
            line.append(ratio(g))
        sizes = sorted(int(r) for r in rows)
        if len(sizes) > 1:
            out.append(f"| **growth {sizes[-1]:,} / {sizes[0]:,}** | " + " | ".join(line) + " |")
    out.append("")
    out += [f"- {n}" for n in notes + errors]
    if notes or errors:
        out.append("")
    return out


def compact(title: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table without the columns and rows that hold no figure (a partial run)."""
    empty = ("", "–", "– vs –")
    keep = [0] + [i for i in range(1, len(header)) if any(r[i] not in empty for r in rows)]
    rows = [r for r in rows if any(r[i] not in empty for i in keep[1:])]
    if len(keep) < 2 or not rows:
        return []
    out = [f"### {title}", "", "| " + " | ".join(header[i] for i in keep) + " |"]
    out.append("|---|" + "---:|" * (len(keep) - 1))
    out += ["| " + " | ".join(r[i] for i in keep) + " |" for r in rows]
    return [*out, ""]


def ratio_tables(data: dict[str, Any]) -> list[str]:
    def vs(bench: str, row: str, lib: str) -> str:
        return ratio(div(value(data, bench, row, "ours"), value(data, bench, row, lib)))

    benches = ("get_hit", "get_miss", "set_evict", "memory")
    out = compact(
        "ours / cachebox 6.2.10 (below 1: ours is faster or smaller)",
        ["policy", *benches],
        [[name] + [vs(b, p, REF) for b in benches] for p, name in POLICY_NAMES.items()],
    )
    rows = []
    for b in ("decorator_hit", "decorator_miss"):
        rows.append(
            [b, fmt(value(data, b, "lru", "ours"))]
            + [vs(b, "lru", lib) for lib in ("functools", REF, "cachetools", "dict")]
        )
    out += compact(
        "Decorators: ours `cached(LRUCache(10_000))` / the peers",
        [
            "case",
            "ours (ns/call)",
            "/ functools.lru_cache",
            "/ cachebox 6.2.10",
            "/ cachetools",
            "/ plain call",
        ],
        rows,
    )
    threads = f"{ratio(value(data, 'threads', 'lru', 'ours'))} vs {ratio(value(data, 'threads', 'lru', 'lru-dict'))}"
    out += compact(
        "LRU: ours `LRUCache` / lru-dict `LRU`",
        ["", *benches, "threads: 2 vs 1 (ours vs lru-dict)"],
        [["ours / lru-dict"] + [vs(b, "lru", "lru-dict") for b in benches] + [threads]],
    )
    return out


# ---------------------------------------------------------------------------------------------
# the performance targets the benchmarks are held to


def _worst(pairs: list[tuple[str, float | None]]) -> tuple[float | None, str, int]:
    known = [(r, name) for name, r in pairs if r is not None]
    if not known:
        return None, "", 0
    r, name = max(known)
    return r, name, len(known)


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: id, text, measured (text), ratio (the figure held to the limit), ok."""
    out: list[dict[str, Any]] = []

    def add(tid: str, text: str, r: float | None, limit: float, measured: str, strict: bool = False) -> None:
        ok = None if r is None else (r < limit if strict else r <= limit)
        if r is None:
            measured = "not measured"
        if r is not None and math.isinf(r):
            r = None  # one of our cases failed or hung: no figure, and the target fails
        if r is not None:
            r = round(r, 4)
        out.append({"id": tid, "target": text, "ratio": r, "limit": limit, "measured": measured, "ok": ok})

    def ours(bench: str, row: str) -> float | None:
        """Our figure; infinite when our case failed or hung (so the target cannot pass)."""
        cell = data["results"].get(bench, {}).get(row, {}).get("ours")
        if cell is not None and "error" in cell:
            return math.inf
        return value(data, bench, row, "ours")

    def over(mine: float | None, theirs: float | None) -> float | None:
        return math.inf if mine is not None and math.isinf(mine) else div(mine, theirs)

    def vs(bench: str, row: str, lib: str, ref: str) -> float | None:
        mine = ours(bench, row) if lib == "ours" else value(data, bench, row, lib)
        return over(mine, value(data, bench, row, ref))

    def ours_growth(bench: str) -> tuple[float | None, str]:
        rows = data["results"].get(bench, {})
        if any("error" in cells.get("ours", {}) for cells in rows.values()):
            return math.inf, ""
        return growth(data, bench, "ours")

    pairs = []
    for b in ("get_hit", "get_miss", "set_evict"):
        for p, name in POLICY_NAMES.items():
            if p in data["results"].get(b, {}):
                pairs.append((f"{b} {name}", vs(b, p, "ours", REF)))
    r, where, n = _worst(pairs)
    passing = sum(1 for _, x in pairs if x is not None and x <= 0.8)
    add(
        "1a",
        "every get/set op ≤ 0.8x cachebox 6.2.10",
        r,
        0.8,
        f"worst {ratio(r)} ({where}); {passing}/{n} ≤ 0.8x",
    )
    r = vs("get_hit", "lru", "ours", "lru-dict")
    add("1b", "LRU get_hit ≤ lru-dict", r, 1.0, ratio(r))
    r = vs("decorator_hit", "lru", "ours", "functools")
    add("2", "decorator_hit ≤ functools.lru_cache", r, 1.0, ratio(r))
    r = vs("decorator_miss", "lru", "ours", "functools")
    add("3", "decorator_miss ≤ 2.0x functools.lru_cache", r, 2.0, ratio(r))

    dict_b = value(data, "memory", "cache", "dict")
    r, where, _ = _worst([(POLICY_NAMES[p], over(ours("memory", p), dict_b)) for p in ("cache", "fifo")])
    add("4a", "memory: Cache, FIFOCache ≤ dict", r, 1.0, f"worst {ratio(r)} ({where}; dict {fmt(dict_b)} B)")
    r = vs("memory", "lru", "ours", REF)
    add("4b", "memory: LRUCache ≤ 0.75x cachebox 6.2.10", r, 0.75, ratio(r))
    r = vs("memory", "lru", "ours", "lru-dict")
    add("4c", "memory: LRUCache < lru-dict", r, 1.0, ratio(r), strict=True)
    r, where, _ = _worst([(POLICY_NAMES[p], vs("memory", p, "ours", REF)) for p in POLICY_NAMES])
    add("4d", "memory: every policy < cachebox 6.2.10", r, 1.0, f"worst {ratio(r)} ({where})", strict=True)

    r, sizes = ours_growth("vttl_scaling")
    ref, _ = growth(data, "vttl_scaling", REF)
    heap, _ = growth(data, "vttl_scaling", "dict")
    add(
        "5a",
        "VTTL O(log n): fill cost per insert ≤ 1.5x",
        r,
        1.5,
        f"{ratio(r)} ({sizes or 'a case of ours failed'}); cachebox 6.2.10 {ratio(ref)}, dict+heapq {ratio(heap)}",
    )
    r = vs("set_evict", "vttl", "ours", REF)
    add("5b", "VTTL set_evict ≤ 0.8x cachebox 6.2.10", r, 0.8, ratio(r))

    rows = data["results"].get("threads", {})
    r, where, _ = _worst([(POLICY_NAMES[p], ours("threads", p)) for p in rows])
    errs = sum(int(c.get("ours", {}).get("exceptions", 0)) for c in rows.values())
    text = f"worst {ratio(r)} ({where})" + (f"; {errs} exceptions" if errs else "")
    add("6a", "2 threads ≤ 1.1x one thread, same work", r if not errs else math.inf, 1.1, text)
    stress = data["results"].get("gc_stress", {})
    if stress:
        bad = [POLICY_NAMES[p] for p, c in stress.items() if not c.get("ours", {}).get("ok")]
        r = float(len(bad))
        add(
            "6b",
            "gc_stress finishes for every class",
            r,
            0.0,
            "all finish" if not bad else "fails: " + ", ".join(bad),
        )

    r, sizes = ours_growth("size_scaling")
    d, _ = growth(data, "size_scaling", "dict")
    add(
        "7",
        "get_hit growth ≤ a dict's growth",
        over(r, d),
        1.0,
        f"{ratio(r)} vs dict {ratio(d)} ({sizes or 'a case of ours failed'}): {ratio(over(r, d))}",
    )
    return out


def spread(data: dict[str, Any]) -> str:
    """How far apart the two best rounds of the timed cases are: the noise floor of the ratios."""
    gaps = []
    for bench, rows in data["results"].items():
        for row, cells in rows.items():
            for lib, cell in cells.items():
                got = sorted(x for x in cell.get("rounds", []) if x)
                if len(got) >= 2:
                    gaps.append((got[1] / got[0] - 1, f"{bench} {POLICY_NAMES.get(row, row)} {lib}"))
    if not gaps:
        return ""
    gaps.sort()
    mid, worst = gaps[len(gaps) // 2], gaps[-1]
    return (
        f"Noise: the two best rounds of a timed case differ by {mid[0]:.1%} (median over {len(gaps)} cases), "
        f"at most {worst[0]:.1%} ({worst[1]})."
    )


def targets_table(data: dict[str, Any]) -> list[str]:
    rows = data.get("targets") or targets(data)
    out = ["### Targets", "", "| # | target | measured | |", "|---|---|---|---|"]
    for t in rows:
        verdict = {True: "pass", False: "**FAIL**", None: "n/a"}[t["ok"]]
        out.append(f"| {t['id']} | {t['target']} | {t['measured']} | {verdict} |")
    count = {v: sum(1 for t in rows if t["ok"] is v) for v in (True, False, None)}
    summary = f"{count[True]} of {len(rows)} checks pass, {count[False]} fail"
    out += ["", summary + (f", {count[None]} not measured." if count[None] else ".")]
    noise = spread(data)
    if noise:
        out.append(noise)
    if data["meta"].get("mode") == "quick":
        out.append("Quick mode: fewer passes, more noise; the targets are judged on a full run.")
    return out + [""]


def markdown(data: dict[str, Any]) -> str:
    meta = data["meta"]
    libs = meta["libs"]
    ours = libs.get("ours", {})
    head = [
        f"## Benchmarks ({meta.get('mode')} run, {meta.get('started')}, {meta.get('wall_s')} s)",
        "",
        f"CPython {ours.get('python')} on {meta.get('machine')}, {meta.get('cpus')} CPUs"
        + (
            f" (load average {meta['load_average']['start'][0]} at the start, {meta['load_average']['end'][0]} at the end)"
            if meta.get("load_average")
            else ""
        )
        + ". "
        f"ours: cachebox {ours.get('version')} from `{ours.get('snapshot_of') or ours.get('module_file')}`"
        + (f" (extension {ours['extension_stamp']})" if ours.get("extension_stamp") else "")
        + (", measured from a copy taken at the start" if ours.get("snapshot_of") else "")
        + ". "
        + ", ".join(
            f"{lib_title(data, lib)} (Python {libs[lib].get('python')})"
            for lib in LIB_ORDER[1:]
            if lib in libs
        )
        + ". Timings are the best of several passes, GC off; lower is better. "
        "Absolute figures move 2-3x between runs on a shared machine: compare ratios within one run.",
        "",
    ]
    if ours.get("replaced_during_run"):
        head += [
            f"Note: the build in place was replaced during the run (now {ours['replaced_during_run']}).",
            "",
        ]
    if ours.get("changed_during_run"):
        head += [f"**Warning: our build changed during this run** (now {ours['changed_during_run']}).", ""]
    body: list[str] = []
    for bench in data["results"]:
        body += bench_table(data, bench)
    ratios = ratio_tables(data)
    if ratios:
        body += ["## Ratios", ""] + ratios
    body += targets_table(data)
    return "\n".join(head + body)
