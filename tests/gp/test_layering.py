"""One home for each shared notion: the status vocabulary, ranking by score, the executor protocol;
and no import cycle inside the search package: the engine never reaches the searcher, at any level."""

import ast
import math
from pathlib import Path

import numpy as np

import gp.search
from analysis import plots
from analysis.report import _top
from evaluation import result
from evaluation.layers import ranked as layers_ranked
from gp.search import RandomSearch, Record, Status, best_so_far, engine, executor, ranked, record

SEARCH = Path(gp.search.__file__).parent


def test_one_status_vocabulary():
    assert result.Status is record.Status is gp.search.Status
    assert record.STATUSES == ("ok", "rejected", "duplicate", "failed")
    assert (record.OK, record.REJECTED, record.DUPLICATE, record.FAILED) == tuple(Status)
    assert type(record.OK) is str  # records hold plain strings, as they are read back from JSON


def _records() -> list[Record]:
    def rec(i, status, objectives=None):
        return Record(i, f"g{i}", f"k{i}", status, objectives)

    return [rec(0, "rejected"), rec(1, "ok", (0.5, 0.7)), rec(2, "failed"), rec(3, "ok", (0.7, 0.5)),
            rec(4, "duplicate", (0.9, 0.9)), rec(5, "ok", (0.2, 0.4)), rec(6, "ok", (0.8, 0.8))]


def test_one_ranking_everywhere():
    records = _records()
    assert [r.ordinal for r in ranked(records)] == [6, 1, 3, 5]  # tie at 0.6: the earlier first; no duplicate
    assert _top(records, 2) == ranked(records)[:2]
    assert layers_ranked is ranked
    search = RandomSearch(seed=0)
    search.history = [r for r in records if r.evaluated]
    assert search.best(3) == ranked(records)[:3]


def test_best_so_far_counts_evaluations_only():
    curve = best_so_far(_records())
    assert math.isnan(curve[0]) and curve[1:] == [0.6, 0.6, 0.6, 0.6, 0.8]
    x, y = plots.best_so_far(_records())
    assert x.tolist() == [1, 2, 3, 4, 5, 6] and np.allclose(y[1:], curve[1:])


def test_serial_executor_has_one_home_and_its_old_names():
    from evaluation.executors import SerialExecutor as via_evaluation

    assert gp.search.SerialExecutor is engine.SerialExecutor is executor.SerialExecutor is via_evaluation
    assert engine.Outcome is executor.Outcome


def test_the_event_log_keeps_its_names_after_the_split():
    from gp.search import eventlog, events

    for name in ("AskWatch", "EventLog", "LogError", "evaluated", "read", "result_dict"):
        assert getattr(events, name) is getattr(eventlog, name)
    assert events.replay.__module__ == "gp.search.events"


WHERE = ("module", "type-checking", "nested")  # top level, under ``if TYPE_CHECKING:``, anywhere else


def _search_modules(node: ast.AST, package: Path) -> set[str]:
    """The modules of the search package an import statement names (``__init__`` for the package)."""
    def module_of(dotted: str, names: list[str]) -> set[str]:
        if dotted == "gp.search":  # from gp.search import events, ranked: a submodule, or the package's name
            return {n if (package / f"{n}.py").exists() else "__init__" for n in names}
        return {dotted.removeprefix("gp.search.").split(".")[0]} if dotted.startswith("gp.search.") else set()

    if isinstance(node, ast.Import):  # import gp.search.events
        return set().union(*({"__init__"} if a.name == "gp.search" else module_of(a.name, []) for a in node.names))
    if isinstance(node, ast.ImportFrom):
        dotted = ("gp.search" + (f".{node.module}" if node.module else "")) if node.level else (node.module or "")
        return module_of(dotted, [a.name for a in node.names])
    return set()


def _imports(path: Path) -> dict[str, set[str]]:
    """Modules of the search package that ``path`` imports, by where the import statement stands."""
    tree = ast.parse(path.read_text())
    where: dict[int, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            where |= {id(sub): "type-checking" for sub in ast.walk(node)}
        else:
            where[id(node)] = "module"
    found: dict[str, set[str]] = {w: set() for w in WHERE}
    for node in ast.walk(tree):
        found[where.get(id(node), "nested")] |= _search_modules(node, path.parent)
    return found


def _graph(package: Path = SEARCH) -> dict[str, dict[str, set[str]]]:
    return {p.stem: _imports(p) for p in package.glob("*.py")}


def _cycles(package: Path = SEARCH) -> list[str]:
    """Import cycles among the package's modules, counting imports at any level."""
    graph = {m: set().union(*found.values()) for m, found in _graph(package).items()}
    cycles, done = [], set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        if module in path:
            cycles.append(" -> ".join(path[path.index(module):] + (module,)))
            return
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, path + (module,))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())
    return cycles


def _reachable(package: Path, start: str) -> set[str]:
    """Modules ``start`` imports, directly or not, at any level (type-checking imports too)."""
    graph = {m: set().union(*found.values()) for m, found in _graph(package).items()}
    seen, todo = set(), [start]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def _layering_problems(package: Path = SEARCH) -> list[str]:
    problems = [f"import cycle: {c}" for c in _cycles(package)]
    problems += [f"{m} imports {sorted(found['nested'])} inside a function or block"
                 for m, found in _graph(package).items() if found["nested"]]
    reached = _reachable(package, "engine") & {"searcher", "events", "__init__"}
    problems += [f"the engine reaches {sorted(reached)}"] if reached else []
    return problems


def test_no_import_cycle_in_the_search_package():
    assert _cycles() == []


def test_the_engine_never_reaches_the_searcher_and_no_import_hides_in_a_function():
    """The engine drives any ask/tell object and writes the log without the searcher (or the replay
    in events, which needs it); the searcher uses the engine for ``run`` by a module-level import."""
    assert _layering_problems() == []
    assert "engine" in _graph()["searcher"]["module"]


def test_the_layering_check_catches_the_old_function_level_cycle(tmp_path):
    """The layout before: Searcher.run imported the engine inside the function, the engine imported
    events at module level, and events imported the searcher for replay."""
    (tmp_path / "__init__.py").write_text("from gp.search.engine import run_search\n")
    (tmp_path / "searcher.py").write_text("class Searcher:\n    def run(self):\n"
                                          "        from gp.search.engine import run_search\n")
    (tmp_path / "engine.py").write_text("from typing import TYPE_CHECKING\nfrom gp.search.events import AskWatch\n"
                                        "if TYPE_CHECKING:\n    from gp.search.searcher import Searcher\n")
    (tmp_path / "events.py").write_text("from gp.search.searcher import Searcher\n")
    problems = _layering_problems(tmp_path)
    assert "import cycle: engine -> events -> searcher -> engine" in problems
    assert "searcher imports ['engine'] inside a function or block" in problems
    assert "the engine reaches ['events', 'searcher']" in problems
