"""A search's report: PNG plots and one HTML page, read from tracking only (it trains nothing)."""

from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from analysis import plots
from evaluation.tracking import Tracker, anchors_of, config_of
from gp import formula, zoo
from gp.genome import Genome
from gp.search import Record


def _top(records: list[Record], n: int) -> list[Record]:
    scored = [r for r in records if r.objectives is not None and r.evaluated]
    return sorted(scored, key=lambda r: (-r.mean, r.ordinal))[:n]


def _baseline(runs: dict[str, list[Record]]) -> float | None:
    """BN-ReLU's mean accuracy where a search of the experiment evaluated it."""
    key = zoo.get("bn_relu").key
    scores = [r.mean for records in runs.values() for r in records if r.key == key and r.objectives is not None]
    return max(scores) if scores else None


def write_report(tracker: Tracker, run: str, out: Path, *, top: int = 10) -> Path:
    """Write ``progress.png``, ``pareto.png``, ``rejections.png``, one drawing per top layer and
    ``report.html`` into ``out``; returns the HTML page's path."""
    run_id = tracker.resolve(run)
    parent = tracker.search_run(run_id)
    anchors = anchors_of(parent)
    algorithm = parent.data.tags.get("evonorm.algorithm", "search")
    records = tracker.history(run_id)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    runs = {f"{algorithm} (this run)": records}
    for other in tracker.searches():  # the newest search of another algorithm, for comparison
        other_alg = other.data.tags.get("evonorm.algorithm")
        if other.info.run_id != run_id and other_alg and other_alg != algorithm:
            runs[f"{other_alg} ({other.info.run_id[:8]})"] = tracker.history(other.info.run_id)
            break
    plots.progress(runs, out / "progress.png", _baseline(runs))
    plots.pareto(records, anchors, out / "pareto.png")
    plots.rejections(records, out / "rejections.png")
    best = _top(records, top)
    for rank, r in enumerate(best, 1):
        plots.draw_graph(Genome.parse(r.genome), out / f"layer-{rank:02d}.png")

    page = _html(run_id, tracker, parent, anchors, records, best, runs)
    path = out / "report.html"
    path.write_text(page)
    return path


def _html(run_id, tracker, parent, anchors, records, best, runs) -> str:
    e = html.escape
    counts = Counter(r.status for r in records)
    stages = Counter(r.stage for r in records if r.status == "rejected")
    reasons = Counter((r.stage, r.reason.split(" after ")[0][:80]) for r in records
                      if r.status == "rejected" and r.reason)
    search_cfg = config_of(parent)["search"]
    rows = "".join(
        f"<tr><td>{rank}</td><td>{r.ordinal}</td><td><code>{e(formula(Genome.parse(r.genome)))}</code></td>"
        + "".join(f"<td>{v:.3f}</td>" for v in r.objectives) + f"<td><b>{r.mean:.3f}</b></td>"
        f"<td><img src='layer-{rank:02d}.png' height='90'></td></tr>" for rank, r in enumerate(best, 1))
    reason_rows = "".join(f"<tr><td>{e(s or '')}</td><td>{e(t)}</td><td>{n}</td></tr>"
                          for (s, t), n in reasons.most_common(12))
    compared = ", ".join(e(k) for k in runs)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>evonorm report {e(run_id[:8])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} td,th{{padding:3px 8px;text-align:left}}
table{{border-collapse:collapse}} tr:nth-child(even){{background:#f4f4f4}} img{{max-width:100%}}</style></head>
<body>
<h1>evonorm search {e(parent.info.run_name or run_id)}</h1>
<p>run <code>{e(run_id)}</code> in {e(tracker.uri)}, experiment <b>{e(tracker.experiment)}</b>;
algorithm {e(search_cfg["algorithm"])}, criterion {e(search_cfg["criterion"])}, population
{search_cfg["population_size"]}, tournament {search_cfg["tournament_size"]}.</p>
<p>{len(records)} candidates: {", ".join(f"{n} {e(s)}" for s, n in counts.most_common())}.
Rejected by stage: {", ".join(f"{e(s or '?')} {n}" for s, n in stages.most_common()) or "none"}.</p>
<h2>Progress</h2><p>Best mean validation accuracy so far against candidates evaluated ({compared}).</p>
<img src="progress.png">
<h2>Top layers</h2>
<table><tr><th>#</th><th>candidate</th><th>formula</th>{"".join(f"<th>{e(a)}</th>" for a in anchors)}
<th>mean</th><th>graph</th></tr>{rows}</table>
<h2>Pareto fronts</h2><img src="pareto.png">
<h2>Rejections</h2><img src="rejections.png">
<table><tr><th>stage</th><th>reason</th><th>candidates</th></tr>{reason_rows}</table>
</body></html>
"""
