"""The report of a real (tiny) tracked search: lineage drawn, one self-contained HTML page."""

import dataclasses
import re

import pytest

from analysis.report import write_report
from evaluation import config as cfgmod
from evaluation.evaluate import Evaluator
from evaluation.experiment import Experiment
from evaluation.tracking import Tracker
from gp.search import SerialExecutor


@pytest.fixture(scope="module")
def smoke_search(tmp_path_factory, tiny_text):
    """A smoke search that mutates: four zoo layers fill the window of 4 at once, then 3 children;
    one tiny anchor on 300 images."""
    tmp = tmp_path_factory.mktemp("report")
    path = tmp / "tiny.toml"
    path.write_text(tiny_text)
    eval_cfg, search_cfg = cfgmod.load(str(path)), cfgmod.load_search(str(path))
    search_cfg = dataclasses.replace(search_cfg, budget=7,
                                     seed_layers=("bn_relu", "gn_relu", "evonorm_s0", "evonorm_b0"))
    exp = Experiment.create(tmp / "run", eval_cfg, search_cfg)
    tracker = Tracker(f"sqlite:///{tmp / 'mlflow.db'}", "report-tests")
    exp.run(SerialExecutor(Evaluator(eval_cfg)), tracker=tracker)
    return exp, tracker, tmp


def test_lineage_is_drawn_for_a_smoke_search(smoke_search):
    exp, tracker, tmp = smoke_search
    assert any(r.parent is not None for r in exp.searcher.history)  # the search mutated
    out = tmp / "rep"
    page = write_report(tracker, exp.run_id, out, top=5).read_text()
    assert (out / "lineage.png").stat().st_size > 5000
    assert "<h2>Lineage</h2>" in page and "mutation(s) from its root" in page


def test_html_report_has_no_external_image_reference(smoke_search):
    exp, tracker, tmp = smoke_search
    page = write_report(tracker, exp.run_id, tmp / "rep2", top=3).read_text()
    sources = re.findall(r"""\bsrc\s*=\s*["']([^"']*)""", page)
    assert len(sources) >= 5  # progress, top layers, lineage, Pareto, rejections
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"""\b(href|url)\s*[=(]\s*["']?(?!#)[^"')\s>]+\.(png|svg|jpg|css)""", page)
    assert "<th>outcome</th><th>stage</th><th>reason</th>" in page
