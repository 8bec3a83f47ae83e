"""One home for each shared notion: the status vocabulary, ranking by score, the executor protocol;
and no import cycle inside the search package."""

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
    assert layers_ranked(records) == ranked(records)
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


def _module_imports(path: Path) -> set[str]:
    """gp.search modules imported at module level (imports under ``if TYPE_CHECKING:`` excluded)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n.removeprefix("gp.search.") for n in names if n.startswith("gp.search.")}


def test_no_import_cycle_in_the_search_package():
    graph = {p.stem: _module_imports(p) for p in SEARCH.glob("*.py") if p.stem != "__init__"}
    assert "searcher" not in graph["engine"] and "engine" not in graph["searcher"]
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, f"import cycle: {' -> '.join(path + (module,))}"
        if module in done:
            return
        for dep in graph.get(module, ()):
            visit(dep, path + (module,))
        done.add(module)

    for module in graph:
        visit(module, ())
