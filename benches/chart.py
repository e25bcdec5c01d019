"""The README chart of a benches/run.py result: grouped bars as SVG text (no plotting library)."""

from __future__ import annotations

import math
from typing import Any

from report import POLICY_NAMES, lib_title

COLORS = {
    "ours": "#e4572e",
    "cachebox-6.2.10": "#4c6a92",
    "cachetools": "#8fb339",
    "lru-dict": "#f2a541",
    "functools": "#7d5ba6",
    "dict": "#a0a0a0",
}
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
WIDTH = 980

# (label line 1, line 2, benchmark, {lib: row}); a lib missing from the results is left out
TIME_GROUPS: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "get_hit",
        "LRU",
        "get_hit",
        {"ours": "lru", "cachebox-6.2.10": "lru", "cachetools": "lru", "lru-dict": "lru", "dict": "cache"},
    ),
    (
        "get_miss",
        "LRU",
        "get_miss",
        {"ours": "lru", "cachebox-6.2.10": "lru", "cachetools": "lru", "lru-dict": "lru", "dict": "cache"},
    ),
    (
        "set_evict",
        "LRU",
        "set_evict",
        {"ours": "lru", "cachebox-6.2.10": "lru", "cachetools": "lru", "lru-dict": "lru"},
    ),
    ("set_evict", "LFU", "set_evict", {"ours": "lfu", "cachebox-6.2.10": "lfu", "cachetools": "lfu"}),
    ("get_hit", "TTL", "get_hit", {"ours": "ttl", "cachebox-6.2.10": "ttl", "cachetools": "ttl"}),
    ("set_evict", "VTTL", "set_evict", {"ours": "vttl", "cachebox-6.2.10": "vttl", "cachetools": "vttl"}),
    (
        "decorator_hit",
        "f(a, b)",
        "decorator_hit",
        {"ours": "lru", "cachebox-6.2.10": "lru", "cachetools": "lru", "functools": "lru", "dict": "lru"},
    ),
    (
        "decorator_miss",
        "f(a, b)",
        "decorator_miss",
        {"ours": "lru", "cachebox-6.2.10": "lru", "cachetools": "lru", "functools": "lru"},
    ),
]
MEMORY_LIBS = ["ours", "cachebox-6.2.10", "cachetools", "lru-dict", "functools", "dict"]


def esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(x: float, y: float, s: str, size: float = 12, anchor: str = "middle", **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"{extra}>{esc(s)}</text>'


def label(v: float) -> str:
    if v >= 100:
        return f"{v:,.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def cell_value(data: dict[str, Any], bench: str, row: str, lib: str) -> tuple[float | None, bool]:
    """(figure, present): present with no figure is a failed or timed-out case."""
    cell = data["results"].get(bench, {}).get(row, {}).get(lib)
    if cell is None:
        return None, False
    for key in ("ns", "bytes_per_entry"):
        if key in cell:
            return float(cell[key]), True
    return None, True


class Panel:
    """One grouped bar chart in the box (x, y, w, h): the plot area and its axis labels."""

    def __init__(self, x: float, y: float, w: float, h: float, log: bool, lo: float, hi: float) -> None:
        self.x, self.y, self.w, self.h = x, y, w, h
        self.log, self.lo, self.hi = log, lo, hi

    def ypos(self, v: float) -> float:
        if self.log:
            f = (math.log10(max(v, self.lo)) - math.log10(self.lo)) / (
                math.log10(self.hi) - math.log10(self.lo)
            )
        else:
            f = v / self.hi
        return self.y + self.h - f * self.h

    def grid(self, ticks: list[float], unit: str) -> list[str]:
        out = []
        for t in ticks:
            yy = self.ypos(t)
            out.append(
                f'<line x1="{self.x:.1f}" y1="{yy:.1f}" x2="{self.x + self.w:.1f}" y2="{yy:.1f}" '
                'stroke="#dddddd" stroke-width="1"/>'
            )
            out.append(text(self.x - 6, yy + 4, f"{t:,.0f}{unit}", 11, "end", fill="#555555"))
        base = self.y + self.h
        out.append(
            f'<line x1="{self.x:.1f}" y1="{base:.1f}" x2="{self.x + self.w:.1f}" y2="{base:.1f}" stroke="#333333"/>'
        )
        return out

    def groups(self, groups: list[tuple[str, str, list[tuple[str, float | None, bool]]]]) -> list[str]:
        out: list[str] = []
        gw = self.w / max(1, len(groups))
        base = self.y + self.h
        for i, (line1, line2, bars) in enumerate(groups):
            gx = self.x + i * gw
            bw = min(24.0, (gw - 14) / max(1, len(bars)))
            left = gx + (gw - bw * len(bars)) / 2
            for j, (lib, v, present) in enumerate(bars):
                bx = left + j * bw
                cx = bx + bw / 2
                if v is None:
                    if present:  # failed or hung: say so where the bar would be
                        out.append(
                            text(
                                cx + 4,
                                base - 4,
                                "failed",
                                10,
                                "start",
                                fill="#b00020",
                                transform=f"rotate(-90 {cx + 4:.1f} {base - 4:.1f})",
                            )
                        )
                    continue
                top = self.ypos(v)
                out.append(
                    f'<rect x="{bx + 1:.1f}" y="{top:.1f}" width="{bw - 2:.1f}" height="{base - top:.1f}" '
                    f'fill="{COLORS[lib]}"><title>{esc(lib)}: {esc(label(v))}</title></rect>'
                )
                weight = "bold" if lib == "ours" else "normal"
                ly = top - 4
                out.append(
                    text(
                        cx + 3.5,
                        ly,
                        label(v),
                        10,
                        "start",
                        fill="#222222",
                        font_weight=weight,
                        transform=f"rotate(-90 {cx + 3.5:.1f} {ly:.1f})",
                    )
                )
            out.append(text(gx + gw / 2, base + 16, line1, 12, fill="#222222"))
            out.append(text(gx + gw / 2, base + 30, line2, 11, fill="#555555"))
        return out


def _log_range(values: list[float]) -> tuple[float, float, list[float]]:
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = max(values) * 2.6  # headroom for the value labels above the bars
    ticks = [10.0**e for e in range(round(math.log10(lo)), math.floor(math.log10(hi)) + 1)]
    return lo, hi, ticks


def _linear_range(values: list[float]) -> tuple[float, float, list[float]]:
    top = max(values) * 1.35
    step = 10 ** math.floor(math.log10(top / 4))
    for m in (1, 2, 2.5, 5, 10):
        if top / (step * m) <= 6:
            step *= m
            break
    hi = math.ceil(top / step) * step
    return 0.0, hi, [step * i for i in range(round(hi / step) + 1)]


def render(data: dict[str, Any]) -> str:
    meta = data["meta"]
    libs = [lib for lib in COLORS if lib in meta.get("libs", {})]
    time_groups = []
    for line1, line2, bench, rows in TIME_GROUPS:
        bars = [(lib, *cell_value(data, bench, row, lib)) for lib, row in rows.items() if lib in libs]
        bars = [b for b in bars if b[2]]
        if bars:
            time_groups.append((line1, line2, bars))
    mem_groups = []
    for p in ("cache", "fifo", "rr", "lru", "lfu", "ttl", "vttl"):
        bars = []
        for lib in MEMORY_LIBS:
            row = data["results"].get("memory", {}).get(p, {})
            if lib in row and lib in libs:
                bars.append((lib, *cell_value(data, "memory", p, lib)))
        if bars:
            mem_groups.append((POLICY_NAMES[p], "", bars))

    parts: list[str] = []
    y = 0.0
    x0, w = 70.0, WIDTH - 90.0
    used = sorted({b[0] for g in time_groups + mem_groups for b in g[2]}, key=list(COLORS).index)
    # header: title, run line, legend
    parts.append(
        text(
            WIDTH / 2,
            26,
            "cachebox (ours) vs cachebox 6.2.10, cachetools, lru-dict, functools",
            17,
            font_weight="bold",
            fill="#111111",
        )
    )
    ours = meta.get("libs", {}).get("ours", {})
    sub = (
        f"{meta.get('mode', '')} run {meta.get('started', '')}, CPython {ours.get('python', '?')}, "
        f"{meta.get('cpus', '?')} CPUs, ours = cachebox {ours.get('version', '?')}; lower is better"
    )
    parts.append(text(WIDTH / 2, 46, sub, 12, fill="#555555"))
    lx, ly = x0, 60.0
    for lib in used:
        name = lib_title(data, lib) + (" (plain dict / plain call)" if lib == "dict" else "")
        span = 19 + 7.2 * len(name) + 22
        if lx + span > WIDTH - 10 and lx > x0:
            lx, ly = x0, ly + 20
        parts.append(f'<rect x="{lx:.1f}" y="{ly:.1f}" width="14" height="14" fill="{COLORS[lib]}"/>')
        parts.append(text(lx + 19, ly + 12, name, 12, "start", fill="#222222"))
        lx += span
    y = ly + 32
    if time_groups:
        vals = [b[1] for g in time_groups for b in g[2] if b[1]]
        lo, hi, ticks = _log_range(vals)
        parts.append(
            text(
                x0,
                y + 8,
                "time per operation (ns, log scale)",
                13,
                "start",
                font_weight="bold",
                fill="#111111",
            )
        )
        panel = Panel(x0, y + 20, w, 270, True, lo, hi)
        parts += panel.grid(ticks, "")
        parts += panel.groups(time_groups)
        y += 20 + 270 + 46
    if mem_groups:
        vals = [b[1] for g in mem_groups for b in g[2] if b[1]]
        lo, hi, ticks = _linear_range(vals)
        n = meta.get("settings", {}).get("memory_n", 0)
        parts.append(
            text(
                x0,
                y + 8,
                f"memory per entry (bytes, {n:,} int→int entries)",
                13,
                "start",
                font_weight="bold",
                fill="#111111",
            )
        )
        panel = Panel(x0, y + 20, w, 180, False, lo, hi)
        parts += panel.grid(ticks, "")
        parts += panel.groups(mem_groups)
        y += 20 + 180 + 34
    height = y + 8
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
        f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="{FONT}">'
    )
    bg = f'<rect x="0" y="0" width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>'
    return "\n".join([head, bg, *parts, "</svg>"]) + "\n"
