"""Checks that the stubs catch every mistake in `misuse.py`, with both checkers.

Every line of `misuse.py` marked `# E: <reason>` must get an error from mypy AND from pyright
(basedpyright, or pyright if that is what is installed), and no unmarked line may get an error
or a warning from either. Run with the interpreter that has the checkers installed
(`make typecheck` uses `.venv-typing`): `python tests/typing/check_misuse.py`.
Exits 0 when everything matches, 1 otherwise (listing each mismatch).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MISUSE = HERE / "misuse.py"
MARK = re.compile(r"#\s*E:\s*(?P<reason>\S.*)")
MYPY_LINE = re.compile(
    r"^(?P<path>[^:\n]+):(?P<line>\d+): (?P<severity>error|warning|note): (?P<message>.*)$"
)

# line number -> messages, for one checker
Reports = dict[int, list[str]]


def marked_lines() -> dict[int, str]:
    """The line numbers (1-based) of `misuse.py` whose comment is `# E: <reason>`."""
    marked: dict[int, str] = {}
    with MISUSE.open(encoding="utf-8") as source:
        for token in tokenize.generate_tokens(source.readline):
            match = MARK.fullmatch(token.string) if token.type == tokenize.COMMENT else None
            if match:
                marked[token.start[0]] = match.group("reason")
    return marked


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)


def mypy_reports() -> Reports:
    """mypy's errors per line of `misuse.py`, with the configuration of `pyproject.toml`."""
    proc = run([sys.executable, "-m", "mypy", "--no-pretty", "--no-error-summary", str(MISUSE)])
    if proc.returncode not in (0, 1):  # 2 is a crash or a usage error, not a type error
        sys.exit(f"mypy failed to run (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    reports: Reports = {}
    for line in proc.stdout.splitlines():
        match = MYPY_LINE.match(line)
        if match is None or match.group("severity") == "note":
            continue
        if Path(match.group("path")).resolve() != MISUSE:
            sys.exit(f"mypy reported an error outside misuse.py (a broken stub?):\n{line}")
        reports.setdefault(int(match.group("line")), []).append(match.group("message"))
    return reports


def pyright_command() -> list[str]:
    """basedpyright (bundles Node.js) or pyright, preferably from this interpreter's venv."""
    bindir = Path(sys.executable).parent
    for name in ("basedpyright", "pyright"):
        local = bindir / name
        found = str(local) if local.exists() else shutil.which(name)
        if found:
            return [found]
    sys.exit("neither basedpyright nor pyright is installed: pip install basedpyright")


def pyright_reports() -> Reports:
    """pyright's errors and warnings per line of `misuse.py` (`[tool.pyright]`, strict)."""
    command = [*pyright_command(), "--outputjson", "--pythonpath", sys.executable, str(MISUSE)]
    proc = run(command)
    try:
        output = json.loads(proc.stdout)
    except json.JSONDecodeError:
        sys.exit(f"pyright failed to run (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    reports: Reports = {}
    for diagnostic in output["generalDiagnostics"]:
        if diagnostic["severity"] not in ("error", "warning"):
            continue
        message = diagnostic["message"].splitlines()[0]
        if Path(diagnostic["file"]).resolve() != MISUSE:
            sys.exit(f"pyright reported a problem outside misuse.py (a broken stub?): {message}")
        reports.setdefault(diagnostic["range"]["start"]["line"] + 1, []).append(message)
    return reports


def main() -> int:
    marked = marked_lines()
    if not marked:
        print("check_misuse: no `# E:` line in misuse.py", file=sys.stderr)
        return 1
    checkers = {"mypy": mypy_reports(), "pyright": pyright_reports()}
    failures: list[str] = []
    for checker, reports in checkers.items():
        for number, reason in sorted(marked.items()):
            if number not in reports:
                failures.append(f"misuse.py:{number}: {checker} misses it ({reason})")
        for number, messages in sorted(reports.items()):
            if number not in marked:
                failures.extend(
                    f"misuse.py:{number}: {checker} reports an unmarked line: {m}" for m in messages
                )
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"check_misuse: {len(failures)} mismatches", file=sys.stderr)
        return 1
    print(f"check_misuse: all {len(marked)} marked lines are errors for mypy and pyright; no other line is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
