"""Fails if the top-level modules of ``src/`` import each other in a cycle.

A top-level module is a file directly in ``src/`` or a directory there (with everything under
it). It depends on every other top-level module its files name as ``crate::NAME``. The layers
stay one-way only while this graph has no cycle, so ``make lint`` runs this check.

Usage: ``python3 .ci/check_module_cycles.py [SRC_DIR]``; prints the graph with ``-v``.
"""

import pathlib
import re
import sys

CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
LINE_COMMENT = re.compile(r"//.*")


def module_graph(src):
    """``{module: {modules it names}}`` for the top-level modules of ``src``."""
    graph = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts == ("lib.rs",):
            continue  # the crate root declares and re-exports everything
        module = rel.parts[0].removesuffix(".rs")
        text = LINE_COMMENT.sub("", path.read_text())
        names = set(CRATE_PATH.findall(text)) - {module}
        graph.setdefault(module, set()).update(names)
    return graph


def find_cycle(graph):
    """One cycle as a list of modules (first == last), or ``None``."""
    state = {}  # module -> "open" while on the path, "done" after
    path = []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def main(argv):
    verbose = "-v" in argv
    args = [a for a in argv if a != "-v"]
    src = pathlib.Path(args[0] if args else pathlib.Path(__file__).resolve().parent.parent / "src")
    graph = module_graph(src)
    if verbose:
        for module in sorted(graph):
            print(f"{module} -> {', '.join(sorted(graph[module])) or '-'}")
    cycle = find_cycle(graph)
    if cycle:
        print("import cycle in src/: " + " -> ".join(cycle), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
