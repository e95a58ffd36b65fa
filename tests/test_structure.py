"""The package's shape, read with ``ast`` (nothing imported): no import cycle, no upward import, short
functions in the orchestrator.

Every ``import`` statement of a module counts, those inside functions too (an import deferred to the
first call is still a dependency). ``from X import name`` depends on the module ``X.name`` when that is
a module of lit_snn, else on ``X``; a package's ``X`` is its ``__init__``.

**Upward import.** For every package P of lit_snn, take P's *children*: each module directly in P and
each subpackage of P taken whole (with everything below it); P's own ``__init__`` is left out (it
re-exports its children, and a child may import those exports). The children must import each other
without a cycle. An *upward* import is an import from inside a subpackage S of P up to a module M of P
that closes such a cycle: M imports, directly or through other children of P, back into S. Such an
import makes the lower package depend on the code built on top of it: ``lit_snn/export/checkpoint.py``
importing ``lit_snn.runs`` was one (``runs`` imports ``orchestrate``, whose trials import
``neurobench``, which imports ``export``); the tests below check that this rule catches it. Importing
a module of P that leads nowhere back into S (``lit_snn.errors``, ``lit_snn.trial_record``,
``lit_snn.train`` from ``orchestrate``) is not upward.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import lit_snn

ROOT = Path(lit_snn.__file__).parent
MAX_FUNCTION_LINES = 60
# children's imports that close a cycle today, in files of other work in progress: (importer, imported) -> why
KNOWN_UPWARD = {
    ("lit_snn.neurons.cpu.warmup", "lit_snn.neurons.presets"):
        "the CPU kernels' warm-up builds neurons by preset (presets -> family -> cpu); it belongs beside presets",
}
# record names still spelled out in files of other work in progress: file -> the names
KNOWN_SPELLED = {"trial_queue.py": {"lit_snn.stale", "lit_snn.error", "lit_snn.closed_late"}}
# functions of lit_snn/orchestrate over MAX_FUNCTION_LINES today, in files of other work in progress
KNOWN_LONG: set[str] = set()


def _modules() -> dict[str, Path]:
    """Module name -> file, for every module of lit_snn (a package is named by its ``__init__``'s file)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the lit_snn modules its import statements name."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                targets.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                               for alias in node.names)
        graph[name] = set()
        for target in targets:
            while target not in modules and "." in target:  # lit_snn.x.y where y is a name in lit_snn.x
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _child(package: str, module: str) -> str | None:
    """The child of ``package`` that holds ``module`` (itself, or the subpackage above it); None outside
    ``package`` and for ``package``'s own ``__init__``."""
    if not module.startswith(package + "."):
        return None
    return f"{package}.{module[len(package) + 1:].split('.')[0]}"


def _upward(graph: dict[str, set[str]], modules: dict[str, Path], skip=frozenset()) -> list[str]:
    """For each package whose children import each other in a cycle: the cycle and the imports that
    make it (those of an ``__init__``-free child graph), as readable lines."""
    problems = []
    for package in sorted(m for m, path in modules.items() if path.name == "__init__.py"):
        children: dict[str, set[str]] = defaultdict(set)
        why: dict[tuple[str, str], list[str]] = defaultdict(list)
        for module, targets in graph.items():
            source = _child(package, module)
            for target in targets:
                sink = _child(package, target)
                if source and sink and source != sink and (module, target) not in skip:
                    children[source].add(sink)
                    why[source, sink].append(f"{module} -> {target}")
        for cycle in _cycles(dict(children)):
            edges = [e for a in cycle for b in cycle for e in why.get((a, b), [])]
            problems.append(f"in {package}: {', '.join(cycle)} import each other ({'; '.join(edges)})")
    return problems


def test_no_import_cycle_among_modules():
    assert _cycles(_imports(_modules())) == []


def test_no_upward_import():
    modules = _modules()
    graph = _imports(modules)
    assert _upward(graph, modules, skip=frozenset(KNOWN_UPWARD)) == []
    for importer, imported in KNOWN_UPWARD:  # an exception that is gone leaves the list
        assert imported in graph[importer], f"{importer} no longer imports {imported}: drop it from KNOWN_UPWARD"
        assert _upward(graph, modules), "the known upward imports no longer close a cycle: drop them"


def test_the_rule_catches_the_old_upward_import_of_export():
    """``export/checkpoint.py`` importing ``lit_snn.runs`` (as it did before ``lit_snn.trial_record``)."""
    modules = _modules()
    graph = _imports(modules)
    assert "lit_snn.runs" not in graph["lit_snn.export.checkpoint"]
    graph["lit_snn.export.checkpoint"] = graph["lit_snn.export.checkpoint"] | {"lit_snn.runs"}
    problems = _upward(graph, modules, skip=frozenset(KNOWN_UPWARD))
    assert any(p.startswith("in lit_snn:") and "lit_snn.export.checkpoint -> lit_snn.runs" in p for p in problems)


def test_cycle_finder_on_a_known_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": set(), "f": {"f"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_orchestrator_functions_are_short():
    long = {}
    for path in sorted((ROOT / "orchestrate").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.name}:{node.name}"] = length
    assert set(long) - KNOWN_LONG == set(), f"over {MAX_FUNCTION_LINES} lines: {long}"
    assert KNOWN_LONG - set(long) == set(), "shortened: drop them from KNOWN_LONG"


def test_the_record_is_named_once():
    """Every tag, attribute and file name of ``lit_snn.trial_record`` (those with a ``.`` or ``:``; ``key``
    is everyone's word) is written there only; the others import it."""
    import lit_snn.trial_record as record

    names = {value for name, value in vars(record).items()
             if name.isupper() and isinstance(value, str) and any(c in value for c in ".:")}
    assert {"config.yaml", "repro.torch_threads", "lit_snn.role", "lit_snn:point"} <= names
    spelled: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        if path.name != "trial_record.py":
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Constant) and node.value in names:
                    spelled[path.name].add(node.value)
    assert dict(spelled) == KNOWN_SPELLED
