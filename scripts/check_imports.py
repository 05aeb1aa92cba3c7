#!/usr/bin/env python3
"""Import circles among the ``app`` modules, and imports out of ``app.fastws``.

    python scripts/check_imports.py [--root DIR] [--package app] [--deferred] [-v]
                                    [--allow "app.a -> app.b -> app.a"]...

Reads the source with ``ast`` (nothing is imported or run) and builds the graph
of module-level imports between the package's modules: ``import app.x``,
``from app.x import y`` (an edge to ``app.x.y`` when that is a module) and
relative imports. An import inside a function, or under ``if TYPE_CHECKING:``,
runs later or never, so it cannot leave a module half-initialised and does not
count towards a circle; ``-v`` lists those separately, with any circle they
would close. ``--deferred`` counts the ones inside functions too (they still
tie the two modules together, which is what issue 11 wants gone); imports
under ``TYPE_CHECKING`` never count.

Exits 1 when there is a circle that is not allowed, when ``app.fastws`` (a
package meant to stand alone) imports anything from the rest of ``app`` (any
import counts there, deferred or not), or when an ``--allow`` names a circle
that no longer exists (so the allowance goes once the circle does). ``--allow``
takes one circle as printed, starting from any of its modules.
"""

from __future__ import annotations

import argparse
import ast
import itertools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

STANDALONE = "fastws"  # app.fastws: imports nothing from app


# When an import runs: with the module, when a function is called, or never
# (under ``if TYPE_CHECKING:``, for type checkers only).
MODULE, FUNCTION, TYPING = "module", "function", "TYPE_CHECKING"
Kind = Literal["module", "function", "TYPE_CHECKING"]


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    kind: Kind

    @property
    def deferred(self) -> bool:
        return self.kind != MODULE


@dataclass
class Graph:
    modules: dict[str, Path]
    imports: list[Import] = field(default_factory=list)

    def edges(self, *kinds: Kind) -> dict[str, set[str]]:
        """Module → modules it imports by imports of these kinds."""
        graph: dict[str, set[str]] = {name: set() for name in self.modules}
        for imp in self.imports:
            if imp.kind in kinds:
                graph[imp.source].add(imp.target)
        return graph


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted name → file, for every module of ``package`` under ``root``."""
    modules: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def walk_imports(
    body: Sequence[ast.stmt], kind: Kind = MODULE
) -> Iterator[tuple[ast.Import | ast.ImportFrom, Kind]]:
    """Every import statement in ``body``, and when it runs."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # Decorators and defaults run with the module, but hold no imports.
            yield from walk_imports(node.body, TYPING if kind == TYPING else FUNCTION)
        elif isinstance(node, ast.If) and is_type_checking(node.test):
            yield from walk_imports(node.body, TYPING)
            yield from walk_imports(node.orelse, kind)
        else:
            # Class bodies and try/with/if/for blocks run with whatever holds them.
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    yield from walk_imports([child], kind)
                elif isinstance(child, ast.ExceptHandler | ast.match_case):
                    yield from walk_imports(child.body, kind)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute name ``from ... import`` reads from."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def targets(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: dict[str, Path]
) -> Iterator[str]:
    """The package's modules that ``node`` imports."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            name = alias.name
            while name and name not in known:  # import app.x.Thing is not valid, but be safe
                name = name.rpartition(".")[0]
            if name:
                yield name
        return
    base = resolve(module, is_package, node)
    for alias in node.names:
        if f"{base}.{alias.name}" in known:  # from app import metrics: the module
            yield f"{base}.{alias.name}"
        elif base in known:  # from app.db import Database: the module it comes from
            yield base


def build(root: Path, package: str) -> Graph:
    graph = Graph(find_modules(root, package))
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        for node, kind in walk_imports(tree.body):
            for target in sorted(set(targets(node, module, is_package, graph.modules))):
                if target != module:
                    graph.imports.append(Import(module, target, node.lineno, kind))
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One shortest circle through each strongly connected group of modules, as a path
    that ends where it starts: enough to show each tangle and where to cut it."""
    found: list[list[str]] = []
    for group in strongly_connected(edges):
        if len(group) == 1:
            (only,) = group
            if only not in edges[only]:
                continue
        start = min(group)
        found.append(shortest_circle(edges, start, group))
    return sorted(found)


def strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (no recursion limit to worry about)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return groups


def shortest_circle(edges: dict[str, set[str]], start: str, group: set[str]) -> list[str]:
    """Breadth-first from ``start`` back to itself, inside ``group``."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in sorted(edges[node] & group):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if child not in parent:
                    parent[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected group but on no circle")


def show(circle: Sequence[str]) -> str:
    return " -> ".join(circle)


def normalise(circle: Sequence[str]) -> tuple[str, ...]:
    """A circle as the same tuple whichever module it is written from."""
    ring = list(circle[:-1]) if len(circle) > 1 and circle[0] == circle[-1] else list(circle)
    turn = ring.index(min(ring))
    return tuple(ring[turn:] + ring[:turn])


def parse_circle(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.replace("→", "->").split("->")]
    if len(parts) < 2 or any(not p for p in parts):
        raise argparse.ArgumentTypeError(f"not a circle: {text!r} (write a -> b -> a)")
    return normalise(parts)


def standalone_violations(graph: Graph, package: str) -> list[Import]:
    """Imports from ``package.fastws`` into the rest of ``package``, deferred ones too:
    that code still depends on the app, and would import it when it runs."""
    inside = f"{package}.{STANDALONE}"
    mine = (inside, inside + ".")
    return [
        imp
        for imp in graph.imports
        if imp.source.startswith(mine) or imp.source == inside
        if not (imp.target == inside or imp.target.startswith(inside + "."))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    here = Path(__file__).resolve().parent.parent
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--root", type=Path, default=here, help="the directory holding the package")
    cli.add_argument("--package", default="app")
    cli.add_argument("--allow", type=parse_circle, action="append", default=[], metavar="CIRCLE")
    cli.add_argument(
        "--deferred", action="store_true", help="count imports inside functions towards circles"
    )
    cli.add_argument("-v", "--verbose", action="store_true", help="list deferred imports too")
    args = cli.parse_args(argv)

    graph = build(args.root, args.package)
    counted: tuple[Kind, ...] = (MODULE, FUNCTION) if args.deferred else (MODULE,)
    edges = graph.edges(*counted)
    failed = False
    allowed = set(args.allow)
    seen: set[tuple[str, ...]] = set()
    for circle in cycles(edges):
        key = normalise(circle)
        seen.add(key)
        if key in allowed:
            print(f"allowed import circle: {show(circle)}")
        else:
            print(f"import circle: {show(circle)}")
            failed = True
        if args.verbose:
            for source, target in itertools.pairwise(circle):
                imp = next(i for i in graph.imports if (i.source, i.target) == (source, target))
                print(f"    {source} -> {target}  ({where(graph, args.root, imp)})")
    for key in sorted(allowed - seen):
        # A circle that is gone but still allowed would let it come back unnoticed.
        print(f"--allow names no circle any more: {show([*key, key[0]])}; remove it")
        failed = True

    if args.verbose:
        later = [i for i in graph.imports if i.kind not in counted]
        print(f"imports not counted towards circles (in functions or TYPE_CHECKING): {len(later)}")
        for imp in later:
            print(f"    {imp.source} -> {imp.target}  ({where(graph, args.root, imp)}, {imp.kind})")
        for circle in cycles(graph.edges(MODULE, FUNCTION, TYPING)):
            if normalise(circle) not in seen:
                print(f"circle closed only by those: {show(circle)}")

    standalone = f"{args.package}.{STANDALONE}"
    if standalone not in graph.modules:
        print(f"{standalone} does not exist yet: not checking that it stands alone")
    else:
        for imp in standalone_violations(graph, args.package):
            print(f"{standalone} must not import {imp.target} ({where(graph, args.root, imp)})")
            failed = True

    verdict = "FAILED" if failed else "ok"
    print(f"{len(graph.modules)} modules, {len(graph.imports)} imports: {verdict}")
    return 1 if failed else 0


def where(graph: Graph, root: Path, imp: Import) -> str:
    return f"{graph.modules[imp.source].relative_to(root)}:{imp.line}"


if __name__ == "__main__":
    sys.exit(main())
