"""Lineage from records alone: parent chain, the mutated node, the score change."""

import math

from analysis.lineage import lineage, mutation, plot
from analysis.report import outcome_reasons
from gp import Genome
from gp.search import Record

ROOT = Genome.parse("t1 = exp(x); t2 = std_layer(x); t3 = div(x, t2)")
CHILD = Genome.parse("t1 = tanh(x); t2 = std_layer(x); t3 = max(t2, zero)")
GRANDCHILD = Genome.parse("t1 = tanh(x); t2 = std_group(x); t3 = max(t2, zero)")


def _rec(ordinal, genome, score, parent=None, status="ok", reason=None, stage=None):
    return Record(ordinal, str(genome), genome.key, status, None if score is None else (score, score),
                  parent=parent.key if parent is not None else None, reason=reason, stage=stage)


def _history():
    return [_rec(0, ROOT, 0.30), _rec(1, Genome.parse("t1 = exp(x); t2 = abs(x); t3 = neg(t2)"), None,
                                      status="rejected", reason="quality 0.1 after 4 steps", stage="quality"),
            _rec(2, CHILD, 0.35, parent=ROOT), _rec(3, CHILD, None, parent=ROOT, status="duplicate"),
            _rec(4, GRANDCHILD, 0.32, parent=CHILD)]


def test_mutation_names_the_live_node_and_counts_dead_ones():
    live, dead = mutation(ROOT, CHILD)
    assert live == ("t3: div(x, t2) -> max(t2, 0)",)
    assert dead == 1  # t1 changed, and neither output reads it


def test_lineage_walks_parents_back_to_the_root_with_score_changes():
    records = _history()
    steps = lineage(records, records[4])
    assert [s.child.ordinal for s in steps] == [0, 2, 4]
    assert steps[0].parent is None and steps[0].delta is None
    assert steps[1].parent.ordinal == 0 and math.isclose(steps[1].delta, 0.05)
    assert steps[2].changes == ("t2: std_layer(x) -> std_group(x)",) and math.isclose(steps[2].delta, -0.03)


def test_duplicates_are_never_parents():
    records = _history()
    assert lineage(records, records[4])[1].child.ordinal == 2  # not the duplicate 3


def test_lineage_plot_is_written(tmp_path):
    records = _history()
    path = plot(records, [records[2], records[4]], tmp_path / "lineage.png")
    assert path.stat().st_size > 5000


def test_failures_are_listed_beside_rejections():
    records = _history() + [_rec(5, ROOT, None, status="failed", reason="worker lost: exit code -9", stage="train")]
    rows = outcome_reasons(records)
    assert ("rejected", "quality", "quality 0.1", 1) in rows
    assert ("failed", "train", "worker lost: exit code -9", 1) in rows
