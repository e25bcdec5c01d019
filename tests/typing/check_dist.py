"""Checks that built distributions ship the typing information (PEP 561).

Usage: `python tests/typing/check_dist.py DIST...` with wheels (`.whl`) and sdists (`.tar.gz`).
Each must contain `cachebox/py.typed` and a `cachebox/_core.pyi` identical to the source of truth
`typings/cachebox/_core.pyi` (in the repository, `cachebox/` only holds symlinks to it, which
maturin must have followed). Exits 0 when every file matches, 1 otherwise.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED = {name: (ROOT / "typings" / "cachebox" / name).read_bytes() for name in ("_core.pyi", "py.typed")}


def wheel_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as wheel:
        return {
            name: wheel.read(f"cachebox/{name}") for name in SHIPPED if f"cachebox/{name}" in wheel.namelist()
        }


def sdist_members(path: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(path) as sdist:
        for member in sdist.getmembers():
            parts = member.name.split("/")  # cachebox-<version>/cachebox/<name>
            if len(parts) == 3 and parts[1] == "cachebox" and parts[2] in SHIPPED and member.isfile():
                data = sdist.extractfile(member)
                if data is not None:
                    found[parts[2]] = data.read()
    return found


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: check_dist.py DIST...", file=sys.stderr)
        return 1
    problems: list[str] = []
    for arg in paths:
        path = Path(arg)
        members = wheel_members(path) if path.suffix == ".whl" else sdist_members(path)
        missing = [f"{path.name}: cachebox/{name} is missing" for name in SHIPPED if name not in members]
        differ = [
            f"{path.name}: cachebox/{name} differs from typings/cachebox/{name}"
            for name, expected in SHIPPED.items()
            if name in members and members[name] != expected
        ]
        problems += missing + differ
        if not missing and not differ:
            print(f"check_dist: {path.name} ships cachebox/py.typed and cachebox/_core.pyi")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
